//! The one square-crop-and-resize filter of the crate, so that folder images and resized IDX/CIFAR
//! splits ([`resize_split`]) are filtered alike.
//!
//! The centre square (the longer side's excess split evenly, the odd pixel going to the right or bottom)
//! is resized with `image`'s Lanczos3, which is separable and scales its support with the reduction, so
//! a large downscale averages every source pixel instead of aliasing. It works on the stored sRGB values
//! directly, as PIL and torchvision do, and each channel plane is filtered on its own: the filter is
//! per-channel anyway, and planes are the CHW layout the batch gather reads.

use image::imageops::{self, FilterType};
use image::{ImageBuffer, Luma};

use super::split::Split;

pub const FILTER: FilterType = FilterType::Lanczos3;

/// The centre square of one `w`×`h` byte plane, resized to `side`×`side`, appended to `out`.
pub fn square_plane(plane: &[u8], w: usize, h: usize, side: usize, out: &mut Vec<u8>) {
    let img: ImageBuffer<Luma<u8>, &[u8]> =
        ImageBuffer::from_raw(w as u32, h as u32, plane).expect("a plane is w×h bytes");
    let s = w.min(h) as u32;
    let crop = imageops::crop_imm(&img, (w as u32 - s) / 2, (h as u32 - s) / 2, s, s);
    let resized = imageops::resize(&*crop, side as u32, side as u32, FILTER);
    out.extend_from_slice(resized.as_raw());
}

/// Brings every image of `split` to side×side with the same centre-crop + resize filter as folders
/// (used by models that want e.g. 64×64 from 28×28 Fashion-MNIST). Labels and channels are kept.
pub fn resize_split(split: &Split, side: usize) -> Split {
    let plane = split.h * split.w;
    let mut images = Vec::with_capacity(split.n * split.channels * side * side);
    for i in 0..split.n {
        for p in split.image(i).chunks_exact(plane) {
            square_plane(p, split.w, split.h, side, &mut images);
        }
    }
    Split { images, labels: split.labels.clone(), n: split.n, h: side, w: side, channels: split.channels }
}

//! One split of a dataset in host memory: images and their labels. The readers (IDX, CIFAR-10) make
//! these; the dataset lookup pairs two of them.

use anyhow::{bail, Result};

use super::idx::Images;

/// One split: `n` images of `channels`×`h`×`w` bytes (0 = background), image after image, and a label each.
#[derive(Debug, Clone)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub channels: usize,
}

impl Split {
    /// Pairs images with labels, refusing a count mismatch (naming both files).
    pub fn new(images: Images, labels: Vec<u8>, images_name: &str, labels_name: &str) -> Result<Split> {
        if labels.len() != images.n {
            bail!("{labels_name} has {} labels but {images_name} has {} images", labels.len(), images.n);
        }
        Ok(Split { images: images.pixels, labels, n: images.n, h: images.h, w: images.w, channels: 1 })
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.h * self.w
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.image_len();
        &self.images[i * len..(i + 1) * len]
    }
}

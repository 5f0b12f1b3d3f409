//! How [`super::Dataset::load`] brings a folder of images to one tensor shape and splits it. Its own file
//! so that the lookup (dataset.rs) and the folder loader (folder.rs) both read it without importing each
//! other.

use anyhow::{bail, Result};

/// The side a folder's images are brought to when [`LoadOptions::image_size`] is `None`.
pub const DEFAULT_IMAGE_SIZE: usize = 64;
/// Largest accepted side: 4096² × 3 bytes is 48 MiB an image, already more than any model here takes.
pub const MAX_IMAGE_SIZE: usize = 4096;

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Side of the square images a folder is brought to; None: 64. Ignored for IDX/CIFAR.
    pub image_size: Option<usize>,
    /// 1 or 3; None: 3 unless every image of the folder is greyscale. Ignored for IDX/CIFAR.
    pub channels: Option<usize>,
    /// Share of a folder's images held out as the test split (default 0.05), fixed by `seed`.
    pub test_fraction: f64,
    pub seed: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { image_size: None, channels: None, test_fraction: 0.05, seed: 0 }
    }
}

impl LoadOptions {
    /// Refuses values no dataset could use, whatever its format, so a typo fails before anything is read.
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = self.image_size {
            if !(1..=MAX_IMAGE_SIZE).contains(&s) {
                bail!("image size {s}: must be 1..={MAX_IMAGE_SIZE} pixels");
            }
        }
        if let Some(c) = self.channels {
            if c != 1 && c != 3 {
                bail!("channels {c}: must be 1 (greyscale) or 3 (RGB)");
            }
        }
        let f = self.test_fraction;
        if !(f.is_finite() && f > 0.0 && f < 1.0) {
            bail!("test fraction {f}: must be strictly between 0 and 1 (e.g. 0.05 holds out 5 % of the images)");
        }
        Ok(())
    }

    /// The side a folder's images are brought to.
    pub fn side(&self) -> usize {
        self.image_size.unwrap_or(DEFAULT_IMAGE_SIZE)
    }
}

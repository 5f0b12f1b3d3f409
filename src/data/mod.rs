//! Datasets in host memory: the IDX parser and the dataset lookup (docs/architecture.md, "The idea").

pub mod cifar;
pub mod dataset;
pub mod idx;
pub mod split;

pub use dataset::{Dataset, LoadOptions, DEBIAN_DIR};
pub use idx::{read_images, read_labels, write_idx, IdxError, Images};
pub use split::{resize_split, Split};

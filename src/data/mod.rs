//! Datasets in host memory: the IDX and CIFAR-10 readers, image folders and the dataset lookup
//! (docs/architecture.md, "The idea").

pub mod cifar;
pub mod dataset;
pub mod folder;
pub mod folder_cache;
pub mod idx;
pub mod options;
pub mod resize;
pub mod split;

pub use dataset::{Dataset, DEBIAN_DIR};
pub use idx::{read_images, read_labels, write_idx, IdxError, Images};
pub use options::LoadOptions;
pub use resize::resize_split;
pub use split::Split;

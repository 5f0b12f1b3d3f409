//! Scores of generated images: Inception Score and FID (stats.rs: the maths, in f64 on the host), the
//! trained classifier standing in for Inception (features.rs), and the scorer that compares images with
//! a real set (scorer.rs). It takes images, not models: the CLI hands a scorer to the GAN as a
//! [`crate::train::model::ImageScorer`], so no model imports this room.

pub mod features;
pub mod scorer;
pub mod stats;

pub use features::FeatureNet;
pub use scorer::{pad_to_32, real_images, Scorer, Scores};
pub use stats::{fid, frechet_distance, inception_score, mean_cov};

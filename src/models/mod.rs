//! The seeds' models, built from nn layers.

pub mod classifier;
pub mod gan;
pub mod gan_scores;
pub mod state;
pub mod vae;

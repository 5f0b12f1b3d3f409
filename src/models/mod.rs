//! The seeds' models, built from nn layers.

pub mod classifier;
pub mod gan;
pub mod state;
pub mod vae;

//! The seeds' models, built from nn layers.

pub mod state;
pub mod vae;

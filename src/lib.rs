//! Generative models trained end to end on the GPU through hand-written WGSL compute shaders.

pub mod bench;
pub mod data;
pub mod graph;
pub mod models;
pub mod nn;
pub mod ops;
pub mod runtime;
pub mod scores;
pub mod train;
pub mod tune;

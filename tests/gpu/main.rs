//! The integration tests: one binary, so the crate is linked once and the adapter opened once
//! (`common::gpu()` is the process's one device; its pipeline cache is shared by every test).
//!
//! One module per area. A new test file goes here as `tests/gpu/<name>.rs` plus a `mod <name>;` line
//! below, not as `tests/<name>.rs` (Cargo builds every `tests/*.rs` as its own binary, relinking the
//! crate). Only a test that needs a process to itself stays outside, and says why in its header:
//! tests/graph_counters.rs (counts the device's objects and the process's memory) and
//! tests/device_lost.rs (destroys a device). Tests that run the CLI use `env!("CARGO_BIN_EXE_gputrain")`
//! and belong here like any other.

// The helpers stay at tests/common/mod.rs, where the separate binaries include them too.
#[path = "../common/mod.rs"]
mod common;

mod adam;
mod adam_groups;
mod adapter_report;
mod ae;
mod autotune;
mod autotune_models;
mod batchnorm;
mod bce_logits;
mod checkpoint;
mod cifar;
mod classifier;
mod cli_gan;
mod cli_vae;
mod conv;
mod conv_gemm;
mod conv_transpose;
mod data;
mod dcgan64;
mod defaults;
mod elementwise;
mod folder;
mod fusion;
mod fuzz;
mod gan;
mod gan_fc;
mod gather;
mod graph;
mod graph_autoencoder;
mod graph_nets;
mod images;
mod loss;
mod matmul;
mod mse;
mod parallelism;
mod plots;
mod pool;
mod random;
mod reduce;
mod resize_conv;
mod run;
mod scores;
mod shaders;
mod tiled;
mod tiled_steps;
mod upsample;
mod vae;
mod vae_mlp;
mod xent;

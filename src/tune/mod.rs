//! The per-adapter autotuner: candidate kernel configurations of a shape class (GEMM tiles, split-K
//! factors) are timed on the adapter at first use, and the fastest is cached on disk per adapter,
//! driver and candidate set, so later runs start with it (docs/performance.md, "Autotuning").
//!
//! This module holds the generic part (mode, cache, timing) and the executor's resolution of tunable
//! passes; the ops supply keys and candidates (`ops::tuned`).

pub mod cache;
pub mod measure;
pub mod mode;
pub mod resolve;
pub mod tuner;

pub use cache::CANDIDATES_VERSION;
pub use measure::{time_calls, time_calls_on, zero_operands};
pub use mode::TuneMode;
pub use resolve::resolve;
pub use tuner::Tuner;

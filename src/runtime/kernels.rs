//! WGSL sources per kernel family and the pure description of a dispatch (`KernelCall`).
//!
//! Every kernel follows one binding convention so that one pipeline layout per storage-buffer count
//! serves all of them: binding 0 is a small uniform block of 32-bit parameters, bindings 1..=n are
//! storage buffers declared `read_write` (wgpu refuses a buffer bound read-only and read-write in the
//! same dispatch, and role buffers hold inputs and outputs side by side).

use anyhow::{bail, Result};

use super::tile::Tile;

/// WGSL prepended to every family: shared helpers such as the 2-D grid index.
pub const PRELUDE: &str = include_str!("../../shaders/common.wgsl");

/// Workgroup tree sums shared by the reduction families.
const TREE_SUM: &str = include_str!("../../shaders/tree_sum.wgsl");

/// Tile types, loads and stores shared by the direct convolution passes.
const CONV_COMMON: &str = include_str!("../../shaders/conv_common.wgsl");

/// The activations shared by the elementwise kernels and the tiled GEMM epilogues.
const ACTIVATION: &str = include_str!("../../shaders/activation.wgsl");

/// The split-K fold shared by the tiled matmul and the weight gradient.
const SPLIT_FOLD: &str = include_str!("../../shaders/split_fold.wgsl");

/// Parameters and bindings shared by the tiled convolution passes.
const TILED_CONV: &str = include_str!("../../shaders/tiled_conv_common.wgsl");

/// One shader module per kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Elementwise,
    Matmul,
    ConvForward,
    ConvBackwardInput,
    ConvBackwardWeight,
    Batchnorm,
    Loss,
    Reduce,
    Adam,
    Random,
    Gather,
    Pool,
    ConvGemm,
    TiledMatmul,
    TiledConvForward,
    TiledConvBackwardInput,
    TiledConvBackwardWeight,
    BiasGrad,
    Upsample,
    Mse,
    BceLogits,
}

impl Family {
    pub const ALL: [Family; 21] = [
        Family::Elementwise,
        Family::Matmul,
        Family::ConvForward,
        Family::ConvBackwardInput,
        Family::ConvBackwardWeight,
        Family::Batchnorm,
        Family::Loss,
        Family::Reduce,
        Family::Adam,
        Family::Random,
        Family::Gather,
        Family::Pool,
        Family::ConvGemm,
        Family::TiledMatmul,
        Family::TiledConvForward,
        Family::TiledConvBackwardInput,
        Family::TiledConvBackwardWeight,
        Family::BiasGrad,
        Family::Upsample,
        Family::Mse,
        Family::BceLogits,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Elementwise => "elementwise",
            Family::Matmul => "matmul",
            Family::ConvForward => "conv_forward",
            Family::ConvBackwardInput => "conv_backward_input",
            Family::ConvBackwardWeight => "conv_backward_weight",
            Family::Batchnorm => "batchnorm",
            Family::Loss => "loss",
            Family::Reduce => "reduce",
            Family::Adam => "adam",
            Family::Random => "random",
            Family::Gather => "gather",
            Family::Pool => "pool",
            Family::ConvGemm => "conv_gemm",
            Family::TiledMatmul => "tiled_matmul",
            Family::TiledConvForward => "tiled_conv_forward",
            Family::TiledConvBackwardInput => "tiled_conv_backward_input",
            Family::TiledConvBackwardWeight => "tiled_conv_backward_weight",
            Family::BiasGrad => "bias_grad",
            Family::Upsample => "upsample",
            Family::Mse => "mse",
            Family::BceLogits => "bce_logits",
        }
    }

    /// The family's WGSL files in order: the convolution passes share their tile code, the reductions
    /// their workgroup sums.
    fn parts(self) -> &'static [&'static str] {
        match self {
            Family::Elementwise => &[ACTIVATION, include_str!("../../shaders/elementwise.wgsl")],
            Family::Matmul => &[include_str!("../../shaders/matmul.wgsl")],
            Family::ConvForward => &[CONV_COMMON, include_str!("../../shaders/conv_forward.wgsl")],
            Family::ConvBackwardInput => &[CONV_COMMON, include_str!("../../shaders/conv_backward_input.wgsl")],
            Family::ConvBackwardWeight => &[CONV_COMMON, include_str!("../../shaders/conv_backward_weight.wgsl")],
            Family::Batchnorm => &[TREE_SUM, include_str!("../../shaders/batchnorm.wgsl")],
            Family::Loss => &[TREE_SUM, include_str!("../../shaders/loss.wgsl")],
            Family::Reduce => &[TREE_SUM, include_str!("../../shaders/reduce.wgsl")],
            Family::Adam => &[include_str!("../../shaders/adam.wgsl")],
            Family::Random => &[include_str!("../../shaders/random.wgsl")],
            Family::Gather => &[include_str!("../../shaders/gather.wgsl")],
            Family::Pool => &[include_str!("../../shaders/pool.wgsl")],
            Family::ConvGemm => &[include_str!("../../shaders/conv_gemm.wgsl")],
            Family::TiledMatmul => &[ACTIVATION, SPLIT_FOLD, include_str!("../../shaders/tiled_matmul.wgsl")],
            Family::TiledConvForward => {
                &[ACTIVATION, TILED_CONV, include_str!("../../shaders/tiled_conv_forward.wgsl")]
            }
            Family::TiledConvBackwardInput => {
                &[ACTIVATION, TILED_CONV, include_str!("../../shaders/tiled_conv_backward_input.wgsl")]
            }
            Family::TiledConvBackwardWeight => {
                &[ACTIVATION, SPLIT_FOLD, TILED_CONV, include_str!("../../shaders/tiled_conv_backward_weight.wgsl")]
            }
            Family::BiasGrad => &[TREE_SUM, include_str!("../../shaders/bias_grad.wgsl")],
            Family::Upsample => &[include_str!("../../shaders/upsample.wgsl")],
            Family::Mse => &[TREE_SUM, include_str!("../../shaders/mse.wgsl")],
            Family::BceLogits => &[TREE_SUM, include_str!("../../shaders/bce_logits.wgsl")],
        }
    }

    /// Whether the module is built without wgpu's runtime checks (bounds clamps on every access,
    /// guarded integer division, bounded loops). Only for families whose every index is already
    /// kept in range by the kernel itself (the GEMM core loads only m < M, n < N, k < K and stores
    /// only inside C; divisors are shape dimensions the ops refuse when zero), which the guard-region
    /// test checks on every kernel test's buffers. They also write every workgroup-memory element
    /// they read (the GEMM tiles, the bias trees), so their pipelines skip wgpu's zero fill.
    pub fn unchecked(self) -> bool {
        self.tiled() || matches!(self, Family::BiasGrad)
    }

    /// Whether the module is built around the GEMM core generated for a tile (`Tile::gemm_core`):
    /// one module per tile.
    pub fn tiled(self) -> bool {
        matches!(
            self,
            Family::TiledMatmul
                | Family::TiledConvForward
                | Family::TiledConvBackwardInput
                | Family::TiledConvBackwardWeight
        )
    }

    /// The complete WGSL module: prelude, the GEMM core of `tile` for the tiled families, then the
    /// family's files. Fails for a tiled family without a tile.
    pub fn source_for(self, tile: Option<&Tile>) -> Result<String> {
        let core = match (self.tiled(), tile) {
            (true, Some(t)) => t.gemm_core(),
            (true, None) => bail!("shader family {} needs a GEMM tile", self.name()),
            (false, _) => String::new(),
        };
        let parts = std::iter::once(PRELUDE).chain(std::iter::once(core.as_str())).chain(self.parts().iter().copied());
        Ok(parts.collect::<Vec<_>>().join("\n"))
    }
}

/// One compute dispatch, described without any GPU objects so that ops stay pure and testable:
/// the planner and the test launcher turn it into a pipeline, a bind group and a dispatch.
#[derive(Clone, Debug)]
pub struct KernelCall {
    pub family: Family,
    pub entry: &'static str,
    /// Uniform parameters as raw 32-bit words (u32 or f32 bits), in the WGSL struct's field order.
    pub params: Vec<u32>,
    /// `operands[i]` is bound at binding `i + 1`; the value indexes the op's operand list.
    pub operands: Vec<usize>,
    pub workgroups: [u32; 3],
    /// Floating-point operations performed, for GFLOP/s reports (0 where meaningless).
    pub flops: f64,
    /// The GEMM tile the module of a tiled family is generated for (`Family::tiled`); None for
    /// every other family.
    pub tile: Option<Tile>,
}

/// Builds a uniform parameter block field by field.
#[derive(Default, Clone, Debug)]
pub struct Params(pub Vec<u32>);

impl Params {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u(mut self, v: usize) -> Self {
        self.0.push(u32::try_from(v).expect("kernel parameter exceeds u32"));
        self
    }
    pub fn f(mut self, v: f32) -> Self {
        self.0.push(v.to_bits());
        self
    }
    pub fn words(self) -> Vec<u32> {
        self.0
    }
}

/// Workgroup counts for `threads` invocations in groups of `wg`, folded into a 2-D grid when one
/// dimension would exceed the adapter's 65 535 limit. Shaders recover the linear index with
/// `linear_id` from the prelude.
pub fn grid(op: &str, threads: usize, wg: u32) -> Result<[u32; 3]> {
    const MAX: u64 = 65_535;
    if threads == 0 {
        bail!("{op}: zero-sized dispatch (a tensor dimension is 0)");
    }
    let groups = (threads as u64).div_ceil(wg as u64);
    if groups <= MAX {
        return Ok([groups as u32, 1, 1]);
    }
    let y = groups.div_ceil(MAX);
    if y > MAX {
        bail!("{op}: {threads} invocations need {groups} workgroups, more than 65535 x 65535");
    }
    let x = groups.div_ceil(y);
    Ok([x as u32, y as u32, 1])
}

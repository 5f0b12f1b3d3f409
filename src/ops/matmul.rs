//! Matrix products: the three GEMMs of a Linear layer (PyTorch layout, y = x Wᵀ + b with W [out, in])
//! and its bias gradient, all row-major f32.
//!
//! One strided kernel (`matmul_forward` in shaders/matmul.wgsl) computes C[M,N] = op(A)·op(B) for every
//! combination of transposes, with an optional bias row and an optional accumulate-into-C; see the
//! shader's header for why it is shaped as it is on the software adapter.

use anyhow::{bail, Result};

use super::{elements, nonzero};
use crate::runtime::kernels::{grid, KernelCall, Params};
use crate::runtime::Family;

/// Rows of C per workgroup of `matmul_forward` (`TILE_M` in the shader).
pub const TILE_M: usize = 64;
/// Rows of C per workgroup of `matmul_forward_tall` (two blocks of `TILE_M`).
pub const TILE_M_TALL: usize = 2 * TILE_M;
/// Columns of C per workgroup (`TILE_N` in the shader: 8 lanes × 8 columns).
pub const TILE_N: usize = 64;

const FLAG_BIAS: u32 = 1;
const FLAG_ACCUMULATE: u32 = 2;
const FLAG_PORTABLE: u32 = 4;
const BIAS_WG: u32 = 64;

/// C[M,N] = op(A)·op(B) with op(A) [M,K] and op(B) [K,N]. `trans_a`: A is stored [K,M] (else [M,K]);
/// `trans_b`: B is stored [N,K] (else [K,N]). All row-major and contiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
}

impl MatmulShape {
    /// C = A·Bᵀ, A [M,K], B [N,K] (linear forward).
    pub fn nt(m: usize, n: usize, k: usize) -> Self {
        Self { m, n, k, trans_a: false, trans_b: true }
    }

    /// C = A·B, A [M,K], B [K,N] (linear backward input).
    pub fn nn(m: usize, n: usize, k: usize) -> Self {
        Self { m, n, k, trans_a: false, trans_b: false }
    }

    /// C = Aᵀ·B, A [K,M], B [K,N] (linear backward weight).
    pub fn tn(m: usize, n: usize, k: usize) -> Self {
        Self { m, n, k, trans_a: true, trans_b: false }
    }

    /// The shape of op(A)·op(B) for stored operands of dimensions `a` and `b`, refusing a mismatch of
    /// the inner dimension.
    pub fn infer(a: [usize; 2], b: [usize; 2], trans_a: bool, trans_b: bool) -> Result<Self> {
        let (m, ka) = if trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
        let (kb, n) = if trans_b { (b[1], b[0]) } else { (b[0], b[1]) };
        if ka != kb {
            bail!(
                "matmul: inner dimensions differ: op(A) is {m}x{ka} (A stored {}x{}{}), op(B) is {kb}x{n} \
                 (B stored {}x{}{})",
                a[0],
                a[1],
                if trans_a { ", transposed" } else { "" },
                b[0],
                b[1],
                if trans_b { ", transposed" } else { "" },
            );
        }
        Ok(Self { m, n, k: ka, trans_a, trans_b })
    }

    pub fn a_len(&self) -> usize {
        self.m * self.k
    }
    pub fn b_len(&self) -> usize {
        self.k * self.n
    }
    pub fn c_len(&self) -> usize {
        self.m * self.n
    }

    /// Element strides of A as [M,K] and of B seen as [N,K]: (a_row, a_k, b_col, b_k).
    fn strides(&self) -> [usize; 4] {
        let a = if self.trans_a { [1, self.m] } else { [self.k, 1] };
        let b = if self.trans_b { [self.k, 1] } else { [1, self.n] };
        [a[0], a[1], b[0], b[1]]
    }

    pub(crate) fn check(&self, op: &str) -> Result<()> {
        nonzero(op, &[("M", self.m), ("N", self.n), ("K", self.k)])?;
        elements(op, &[self.m, self.k])?;
        elements(op, &[self.k, self.n])?;
        elements(op, &[self.m, self.n])?;
        Ok(())
    }
}

/// Whether an M×N product runs on the 128-row tile (`matmul_forward_tall`). That tile does about 20%
/// less work per row (25% fewer loads per FMA; measured 12.3 vs 14.5 GFLOP/s at 1024³), so it is
/// taken when its ragged last tile wastes no more than that and at least 8 workgroups remain to keep
/// the software adapter's threads busy (lavapipe runs one workgroup per thread at a time).
pub fn uses_tall_tile(m: usize, n: usize) -> bool {
    let tall_rows = m.div_ceil(TILE_M_TALL) * TILE_M_TALL;
    let rows = m.div_ceil(TILE_M) * TILE_M;
    m.div_ceil(TILE_M_TALL) * n.div_ceil(TILE_N) >= 8 && tall_rows * 4 <= rows * 5
}

fn gemm(shape: MatmulShape, bias: bool, accumulate: bool, portable: bool) -> Result<Vec<KernelCall>> {
    let tall = uses_tall_tile(shape.m, shape.n);
    let (entry, tile_m) = if tall { ("matmul_forward_tall", TILE_M_TALL) } else { ("matmul_forward", TILE_M) };
    shape.check(entry)?;
    let groups = [shape.n.div_ceil(TILE_N), shape.m.div_ceil(tile_m)];
    if groups.iter().any(|&g| g > 65_535) {
        bail!("{entry}: {}x{} output needs {groups:?} workgroups, more than 65535 per dimension", shape.m, shape.n);
    }
    let [a_rs, a_ks, b_cs, b_ks] = shape.strides();
    let flags = (bias as u32 * FLAG_BIAS) | (accumulate as u32 * FLAG_ACCUMULATE) | (portable as u32 * FLAG_PORTABLE);
    let mn = (shape.m * shape.n) as f64;
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Matmul,
        entry,
        params: Params::new()
            .u(shape.m)
            .u(shape.n)
            .u(shape.k)
            .u(a_rs)
            .u(a_ks)
            .u(b_cs)
            .u(b_ks)
            .u(flags as usize)
            .words(),
        // Without a bias, C also fills the bias slot: the kernel never reads it then.
        operands: if bias { vec![0, 1, 2, 3] } else { vec![0, 1, 2, 2] },
        workgroups: [groups[0] as u32, groups[1] as u32, 1],
        flops: 2.0 * mn * shape.k as f64 + mn * (bias as u8 + accumulate as u8) as f64,
    }])
}

/// C (+)= op(A)·op(B) (+ bias broadcast over rows). Operands: `[a, b, c]`, or `[a, b, bias, c]` with
/// `bias` of length N when `bias` is set. With `accumulate` the product is added to C's contents.
pub fn matmul(shape: MatmulShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    gemm(shape, bias, accumulate, false)
}

/// `matmul` forced onto the kernel's portable path (the one adapters whose subgroups are not 8 wide
/// take), so tests can check it on any adapter. Same operands; bit-identical results.
pub fn matmul_portable(shape: MatmulShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    gemm(shape, bias, accumulate, true)
}

/// db[N] (+)= column sums of dY[M,N], summed over rows in order (deterministic).
/// Operands: `[dy, db]`.
pub fn bias_grad(m: usize, n: usize, accumulate: bool) -> Result<Vec<KernelCall>> {
    let entry = "matmul_backward_bias";
    nonzero(entry, &[("M", m), ("N", n)])?;
    elements(entry, &[m, n])?;
    Ok(vec![KernelCall {
        tile: None,
        family: Family::Matmul,
        entry,
        params: Params::new()
            .u(m)
            .u(n)
            .u(0)
            .u(0)
            .u(0)
            .u(0)
            .u(0)
            .u(accumulate as usize * FLAG_ACCUMULATE as usize)
            .words(),
        operands: vec![0, 1],
        workgroups: grid(entry, n, BIAS_WG)?,
        flops: (m * n) as f64,
    }])
}

/// y[batch, out] = x[batch, in] · W[out, in]ᵀ + b[out]. Operands: `[x, w, b, y]`.
pub fn linear_forward(batch: usize, in_features: usize, out_features: usize) -> Result<Vec<KernelCall>> {
    matmul(MatmulShape::nt(batch, out_features, in_features), true, false)
}

/// dx[batch, in] (+)= dy[batch, out] · W[out, in]. Operands: `[dy, w, dx]`.
pub fn linear_backward_input(
    batch: usize,
    in_features: usize,
    out_features: usize,
    accumulate: bool,
) -> Result<Vec<KernelCall>> {
    matmul(MatmulShape::nn(batch, in_features, out_features), false, accumulate)
}

/// dW[out, in] (+)= dy[batch, out]ᵀ · x[batch, in]. Operands: `[dy, x, dw]`.
pub fn linear_backward_weight(
    batch: usize,
    in_features: usize,
    out_features: usize,
    accumulate: bool,
) -> Result<Vec<KernelCall>> {
    matmul(MatmulShape::tn(out_features, in_features, batch), false, accumulate)
}

/// db[out] (+)= Σ over the batch of dy[batch, out]. Operands: `[dy, db]`.
pub fn linear_backward_bias(batch: usize, out_features: usize, accumulate: bool) -> Result<Vec<KernelCall>> {
    bias_grad(batch, out_features, accumulate)
}

/// op(A)·op(B) in f64, straight from the definition.
pub fn cpu_matmul(a: &[f64], b: &[f64], s: MatmulShape) -> Vec<f64> {
    assert_eq!(a.len(), s.a_len(), "cpu_matmul: A has {} elements, shape {s:?} needs {}", a.len(), s.a_len());
    assert_eq!(b.len(), s.b_len(), "cpu_matmul: B has {} elements, shape {s:?} needs {}", b.len(), s.b_len());
    let at = |i: usize, p: usize| if s.trans_a { a[p * s.m + i] } else { a[i * s.k + p] };
    let bt = |p: usize, j: usize| if s.trans_b { b[j * s.k + p] } else { b[p * s.n + j] };
    let mut c = vec![0.0; s.m * s.n];
    for i in 0..s.m {
        for j in 0..s.n {
            c[i * s.n + j] = (0..s.k).map(|p| at(i, p) * bt(p, j)).sum();
        }
    }
    c
}

/// Column sums of dy[m, n].
pub fn cpu_bias_grad(dy: &[f64], m: usize, n: usize) -> Vec<f64> {
    assert_eq!(dy.len(), m * n, "cpu_bias_grad: dy has {} elements, expected {m}x{n}", dy.len());
    (0..n).map(|j| (0..m).map(|i| dy[i * n + j]).sum()).collect()
}

/// y = x Wᵀ + b for x [batch, in], W [out, in], b [out].
pub fn cpu_linear_forward(x: &[f64], w: &[f64], b: &[f64], batch: usize, in_f: usize, out_f: usize) -> Vec<f64> {
    assert_eq!(b.len(), out_f, "cpu_linear_forward: bias has {} elements, expected {out_f}", b.len());
    let mut y = cpu_matmul(x, w, MatmulShape::nt(batch, out_f, in_f));
    for row in y.chunks_mut(out_f) {
        row.iter_mut().zip(b).for_each(|(v, bj)| *v += bj);
    }
    y
}

/// dx = dy · W.
pub fn cpu_linear_backward_input(dy: &[f64], w: &[f64], batch: usize, in_f: usize, out_f: usize) -> Vec<f64> {
    cpu_matmul(dy, w, MatmulShape::nn(batch, in_f, out_f))
}

/// dW = dyᵀ · x.
pub fn cpu_linear_backward_weight(dy: &[f64], x: &[f64], batch: usize, in_f: usize, out_f: usize) -> Vec<f64> {
    cpu_matmul(dy, x, MatmulShape::tn(out_f, in_f, batch))
}

//! The tiled kernel set's GEMM (shaders/tiled_gemm.wgsl + tiled_matmul.wgsl): tile shapes, their
//! choice per product, and the strided matmul built on them. The CPU reference is
//! `matmul::cpu_matmul`, shared with the lavapipe set.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::matmul::MatmulShape;
use crate::runtime::kernels::{KernelCall, Params};
use crate::runtime::{Family, KernelSet};

/// One tile configuration of the GEMM core: a workgroup of `wg_x × wg_y` invocations, each holding
/// `tm × 4·tn4` accumulators, computes a `rows() × cols()` block of C, staging K in slices of `bk`.
/// These become the shader's `override` constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub name: &'static str,
    pub wg_x: u32,
    pub wg_y: u32,
    pub tm: u32,
    pub tn4: u32,
    pub bk: u32,
}

/// Every configuration a model's products can get (`Tile::for_product`).
pub const TILES: [Tile; 3] = [Tile::LARGE, Tile::SMALL, Tile::THIN];

/// The workgroup memory every configuration must fit: WebGPU's default limit.
pub const WORKGROUP_BYTES: usize = 16 << 10;
/// Invocations per workgroup every configuration must fit: WebGPU's default limit.
pub const MAX_INVOCATIONS: u32 = 256;

impl Tile {
    /// 128×128 blocks, 8×8 accumulators per invocation: the most reuse per load, for products big
    /// enough to fill a GPU with them.
    pub const LARGE: Tile = Tile { name: "large", wg_x: 16, wg_y: 16, tm: 8, tn4: 2, bk: 8 };
    /// 64×64 blocks, 4×4 per invocation: the default, four times as many workgroups as `LARGE`.
    pub const SMALL: Tile = Tile { name: "small", wg_x: 16, wg_y: 16, tm: 4, tn4: 1, bk: 16 };
    /// 1×256 blocks for products with a handful of rows (a GEMV's shape), which would leave all but
    /// a few rows of a square tile empty.
    pub const THIN: Tile = Tile { name: "thin", wg_x: 64, wg_y: 1, tm: 1, tn4: 1, bk: 8 };

    pub fn rows(&self) -> usize {
        (self.wg_y * self.tm) as usize
    }

    pub fn cols(&self) -> usize {
        (self.wg_x * self.tn4 * 4) as usize
    }

    pub fn invocations(&self) -> u32 {
        self.wg_x * self.wg_y
    }

    /// Bytes of workgroup memory the core declares for this tile (tiled_gemm.wgsl: tile_a, tile_b).
    pub fn workgroup_bytes(&self) -> usize {
        let bk = self.bk as usize;
        4 * (bk * (self.rows() + 1) + bk * self.cols())
    }

    pub fn constants(&self) -> Vec<(&'static str, u32)> {
        vec![("WG_X", self.wg_x), ("WG_Y", self.wg_y), ("TM", self.tm), ("TN4", self.tn4), ("BK", self.bk)]
    }

    /// The configuration for an M×N output: `THIN` below 8 rows, `LARGE` once it still gives
    /// `LARGE_MIN_BLOCKS` workgroups, `SMALL` otherwise.
    pub fn for_product(m: usize, n: usize) -> Tile {
        if m < 8 {
            Tile::THIN
        } else if m.div_ceil(128) * n.div_ceil(128) >= LARGE_MIN_BLOCKS {
            Tile::LARGE
        } else {
            Tile::SMALL
        }
    }

    /// Workgroups for an M×N output, `z` deep, refusing grids past the 65 535 per dimension limit.
    pub fn workgroups(&self, op: &str, m: usize, n: usize, z: usize) -> Result<[u32; 3]> {
        let g = [n.div_ceil(self.cols()), m.div_ceil(self.rows()), z];
        if g.iter().any(|&d| d > 65_535) {
            bail!(
                "{op}: a {m}x{n} output in {}x{} blocks needs {g:?} workgroups, more than 65535 per dimension",
                self.rows(),
                self.cols()
            );
        }
        Ok([g[0] as u32, g[1] as u32, g[2] as u32])
    }

    pub fn describe(&self) -> String {
        format!(
            "{:<5} {}x{} block: {}x{} invocations x {}x{} accumulators, BK {}, {} B workgroup memory",
            self.name,
            self.rows(),
            self.cols(),
            self.wg_x,
            self.wg_y,
            self.tm,
            self.tn4 * 4,
            self.bk,
            self.workgroup_bytes()
        )
    }
}

/// `LARGE` blocks wanted before a product takes them: two per streaming multiprocessor of a large
/// GPU (an H100 or H200 has 132), so the bigger tile never leaves most of the chip idle.
const LARGE_MIN_BLOCKS: usize = 256;

/// Lines for `info`: the tile configurations of the tiled set.
pub fn describe_tiles() -> Vec<String> {
    TILES.iter().map(Tile::describe).collect()
}

/// The kernel set and its tile sizes, for config.json and `bench --json`.
pub fn kernel_set_json(set: KernelSet) -> Value {
    match set {
        KernelSet::Lavapipe => json!({ "set": set.name() }),
        KernelSet::Tiled => json!({
            "set": set.name(),
            "tiles": TILES.iter().map(|t| json!({
                "name": t.name, "rows": t.rows(), "cols": t.cols(), "wg_x": t.wg_x, "wg_y": t.wg_y,
                "tm": t.tm, "tn": t.tn4 * 4, "bk": t.bk,
            })).collect::<Vec<_>>(),
        }),
    }
}

const FLAG_BIAS: u32 = 1;
const FLAG_ACCUMULATE: u32 = 2;
const FLAG_BIAS_ROWS: u32 = 8;

/// C[M,N] (+)= A·Bᵀ (+ bias) over element strides: A[i,k] = a[i·a_rs + k·a_ks],
/// B[j,k] = b[j·b_cs + k·b_ks], C[i,j] = c[i·c_rs + j·c_cs] (shaders/tiled_matmul.wgsl).
#[derive(Clone, Copy, Debug)]
struct Strided {
    m: usize,
    n: usize,
    k: usize,
    a: [usize; 2],
    b: [usize; 2],
    c: [usize; 2],
    /// The bias is indexed by C's row (else its column), divided by `bias_div`.
    bias_rows: bool,
    bias_div: usize,
}

impl Strided {
    /// The same product computed as Cᵀ = B·Aᵀ: rows and columns of C trade places.
    fn transposed(self) -> Strided {
        Strided {
            m: self.n,
            n: self.m,
            a: self.b,
            b: self.a,
            c: [self.c[1], self.c[0]],
            bias_rows: !self.bias_rows,
            ..self
        }
    }
}

fn strided(s: Strided, bias: bool, accumulate: bool, tile: Option<Tile>) -> Result<KernelCall> {
    let entry = "matmul_tiled";
    super::nonzero(entry, &[("M", s.m), ("N", s.n), ("K", s.k)])?;
    // A single column would fill one column of every block: the transposed product fills rows.
    let swap = s.n < 4 && s.m > s.n;
    let s = if swap { s.transposed() } else { s };
    let tile = tile.unwrap_or_else(|| Tile::for_product(s.m, s.n));
    let flags =
        (bias as u32 * FLAG_BIAS) | (accumulate as u32 * FLAG_ACCUMULATE) | (s.bias_rows as u32 * FLAG_BIAS_ROWS);
    let mn = (s.m * s.n) as f64;
    Ok(KernelCall {
        family: Family::TiledMatmul,
        entry,
        params: Params::new()
            .u(s.m)
            .u(s.n)
            .u(s.k)
            .u(s.a[0])
            .u(s.a[1])
            .u(s.b[0])
            .u(s.b[1])
            .u(flags as usize)
            .u(s.c[0])
            .u(s.c[1])
            .u(s.bias_div)
            .words(),
        // The transposed product reads its A from the original B and its B from the original A.
        operands: match (bias, swap) {
            (true, false) => vec![0, 1, 2, 3],
            (true, true) => vec![1, 0, 2, 3],
            (false, false) => vec![0, 1, 2, 2],
            (false, true) => vec![1, 0, 2, 2],
        },
        workgroups: tile.workgroups(entry, s.m, s.n, 1)?,
        flops: 2.0 * mn * s.k as f64 + mn * (bias as u8 + accumulate as u8) as f64,
        constants: tile.constants(),
    })
}

/// C (+)= op(A)·op(B) (+ bias[N]) on the tiled core, row-major like `matmul::matmul`, with the same
/// operands: `[a, b, c]`, or `[a, b, bias, c]` with `bias`.
pub fn matmul(shape: MatmulShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    Ok(vec![strided(row_major(shape, 1)?, bias, accumulate, None)?])
}

/// `matmul` on a given tile configuration instead of the one chosen for the shape (tests, benches).
pub fn matmul_with(tile: Tile, shape: MatmulShape, bias: bool, accumulate: bool) -> Result<Vec<KernelCall>> {
    Ok(vec![strided(row_major(shape, 1)?, bias, accumulate, Some(tile))?])
}

fn row_major(shape: MatmulShape, bias_div: usize) -> Result<Strided> {
    shape.check("matmul_tiled")?;
    let (m, n, k) = (shape.m, shape.n, shape.k);
    let a = if shape.trans_a { [1, m] } else { [k, 1] };
    let b = if shape.trans_b { [k, 1] } else { [1, n] };
    Ok(Strided { m, n, k, a, b, c: [n, 1], bias_rows: false, bias_div })
}

/// As `matmul` with the bias indexed by C's column divided by `bias_div`: the transposed
/// convolution of a 1×1 input, whose [batch, Cout·k²] product adds bias[column / k²].
pub fn matmul_bias_groups(shape: MatmulShape, bias_div: usize, accumulate: bool) -> Result<Vec<KernelCall>> {
    Ok(vec![strided(row_major(shape, bias_div)?, true, accumulate, None)?])
}

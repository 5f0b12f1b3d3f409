// Tiled GEMM core of the tiled kernel set: C[M,N] = A[M,K]·B[K,N], written the way GPU GEMMs are
// (TF.js matmul_packed, llama.cpp's Vulkan matmul, CLBlast's SGEMM):
// - a workgroup of WG_X × WG_Y invocations computes a BM × BN block of C, BM = WG_Y·TM and
//   BN = WG_X·4·TN4;
// - K is walked in slices of BK staged through workgroup memory: every invocation loads a share of
//   the A slice (BM × BK) and the B slice (BK × BN), consecutive invocations reading consecutive
//   addresses of whichever index is contiguous in memory, so global loads coalesce;
// - each invocation accumulates a TM × 4·TN4 register tile: per k it reads TM scalars of A (the
//   same address across a row of invocations, a broadcast) and TN4 vec4 of B.
// Tile sizes are pipeline constants (src/ops/gemm.rs chooses them per shape). No subgroup
// operations: this runs on every backend. Barriers: each slice is written, barrier, read, barrier,
// all in uniform control flow (the slice loop depends only on the workgroup id and uniforms).
//
// The file compiled after this one supplies the operands through:
//   read_a(m, k), read_b(k, n)   element values, called only with m < M, n < N and k < K;
//   a_k_fast(), b_k_fast()       whether consecutive k are adjacent in memory (uniform);
//   write_c(m, n, v)             the epilogue (bias, accumulate, layout), only for m < M, n < N.

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override TM: u32 = 4u;
override TN4: u32 = 1u;
override BK: u32 = 16u;

// Upper bounds of TM and TN4: the register tile's declared size.
const MAX_TM: u32 = 8u;
const MAX_TN4: u32 = 2u;

// A slice stored k-major; each k row is padded by one float so that a k-contiguous load (consecutive
// invocations writing consecutive k, BM + 1 floats apart) spreads over the banks.
var<workgroup> tile_a: array<f32, BK * (WG_Y * TM + 1u)>;
// B slice stored k-major as vec4 along n, read four columns at a time.
var<workgroup> tile_b: array<vec4<f32>, BK * WG_X * TN4>;

// The extent of one GEMM: C block origin (m0, n0) and the k range [k0, k1) it reduces over.
struct GemmBlock {
    m: u32,
    n: u32,
    m0: u32,
    n0: u32,
    k0: u32,
    k1: u32,
}

fn load_slice(blk: GemmBlock, kt: u32, t: u32) {
    let bm = WG_Y * TM;
    let bn = WG_X * TN4 * 4u;
    let threads = WG_X * WG_Y;
    let a_fast = a_k_fast();
    for (var l = t; l < bm * BK; l += threads) {
        var mm = l / BK;
        var kk = l % BK;
        if (!a_fast) {
            mm = l % bm;
            kk = l / bm;
        }
        let m = blk.m0 + mm;
        let k = kt + kk;
        var v = 0.0;
        if (m < blk.m && k < blk.k1) {
            v = read_a(m, k);
        }
        tile_a[kk * (bm + 1u) + mm] = v;
    }
    let b_fast = b_k_fast();
    for (var l = t; l < bn * BK; l += threads) {
        var nn = l / BK;
        var kk = l % BK;
        if (!b_fast) {
            nn = l % bn;
            kk = l / bn;
        }
        let n = blk.n0 + nn;
        let k = kt + kk;
        var v = 0.0;
        if (n < blk.n && k < blk.k1) {
            v = read_b(k, n);
        }
        tile_b[kk * (bn / 4u) + nn / 4u][nn % 4u] = v;
    }
}

// Computes one block of C and hands every element inside C to write_c. `tx`, `ty`: the invocation's
// position in the workgroup. Every invocation of the workgroup must call this (it holds barriers).
fn gemm_block(blk: GemmBlock, tx: u32, ty: u32) {
    let bm = WG_Y * TM;
    let bn4 = WG_X * TN4;
    let t = ty * WG_X + tx;
    var acc: array<array<vec4<f32>, MAX_TN4>, MAX_TM>;
    for (var kt = blk.k0; kt < blk.k1; kt += BK) {
        load_slice(blk, kt, t);
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var bv: array<vec4<f32>, MAX_TN4>;
            for (var j = 0u; j < TN4; j++) {
                bv[j] = tile_b[kk * bn4 + j * WG_X + tx];
            }
            for (var i = 0u; i < TM; i++) {
                let av = vec4(tile_a[kk * (bm + 1u) + ty * TM + i]);
                for (var j = 0u; j < TN4; j++) {
                    acc[i][j] = fma(av, bv[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < TM; i++) {
        let m = blk.m0 + ty * TM + i;
        for (var j = 0u; j < TN4; j++) {
            let n = blk.n0 + (j * WG_X + tx) * 4u;
            for (var c = 0u; c < 4u; c++) {
                if (m < blk.m && n + c < blk.n) {
                    write_c(m, n + c, acc[i][j][c]);
                }
            }
        }
    }
}

// Rows and columns of C one workgroup covers.
fn block_rows() -> u32 {
    return WG_Y * TM;
}

fn block_cols() -> u32 {
    return WG_X * TN4 * 4u;
}

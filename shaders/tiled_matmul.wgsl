// Matmul family of the tiled kernel set, on the generated GEMM core (src/runtime/tile.rs):
//
//   C = act(A·Bᵀ (+ bias) (+ the old C when accumulating))
//
// with A seen as [M,K] and B as [N,K] through element strides, as in the lavapipe set's matmul.wgsl
// (A[i,k] = a[i·a_rs + k·a_ks], B[j,k] = b[j·b_cs + k·b_ks]), and C written through strides too
// (C[i,j] = c[i·c_rs + j·c_cs]) so the host can compute Cᵀ = B·Aᵀ instead when C has a single
// column (a GEMV would otherwise fill one column of every tile). The bias is indexed by C's
// column, or by its row when FLAG_BIAS_ROWS says the product was transposed, divided by bias_div
// (1 for a Linear layer; k² for a transposed convolution computed as one dense product).
//
// A product with a long K and few output blocks splits K into `splits` chunks (workgroup z takes
// chunk z): each writes its raw block to `partials` [splits, M, N] and matmul_tiled_fold adds them
// in a fixed order (split_fold.wgsl) and applies the epilogue. Deterministic, no atomics.

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    a_rs: u32,
    a_ks: u32,
    b_cs: u32,
    b_ks: u32,
    flags: u32, // FLAG_BIAS | FLAG_ACCUMULATE | FLAG_BIAS_ROWS
    c_rs: u32,
    c_cs: u32,
    bias_div: u32,
    splits: u32, // 1: the GEMM applies the epilogue itself
    chunk: u32,  // split-K: reduction length per split (a multiple of BK)
    lanes: u32,  // split-K fold: invocations per output
    act: u32,    // epilogue activation (activation.wgsl), applied last
    alpha: f32,  // its LeakyReLU slope
}

const FLAG_BIAS: u32 = 1u;
const FLAG_ACCUMULATE: u32 = 2u;
const FLAG_BIAS_ROWS: u32 = 8u;

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;

var<private> split: u32;

fn read_a(m: u32, k: u32) -> f32 {
    return a[m * p.a_rs + k * p.a_ks];
}

fn read_b(k: u32, n: u32) -> f32 {
    return b[n * p.b_cs + k * p.b_ks];
}

fn a_k_fast() -> bool {
    return p.a_ks == 1u;
}

fn b_k_fast() -> bool {
    return p.b_ks == 1u;
}

fn read_partial(i: u32) -> f32 {
    return partials[i];
}

fn write_c(m: u32, n: u32, v: f32) {
    if (p.splits > 1u) {
        partials[(split * p.m + m) * p.n + n] = v;
        return;
    }
    epilogue(m, n, v);
}

fn epilogue(m: u32, n: u32, v: f32) {
    var x = v;
    if ((p.flags & FLAG_BIAS) != 0u) {
        x += bias[select(n, m, (p.flags & FLAG_BIAS_ROWS) != 0u) / p.bias_div];
    }
    let i = m * p.c_rs + n * p.c_cs;
    if ((p.flags & FLAG_ACCUMULATE) != 0u) {
        x += c[i];
    }
    c[i] = apply_activation(p.act, p.alpha, x);
}

// Workgroup (x, y, z) computes the block of C at rows y·BM, columns x·BN over K chunk z.
@compute @workgroup_size(WG_X, WG_Y)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    split = wid.z;
    let k0 = wid.z * p.chunk;
    let k1 = min(p.k, k0 + p.chunk);
    let blk = GemmBlock(p.m, p.n, wid.y * block_rows(), wid.x * block_cols(), k0, k1);
    gemm_block(blk, lid.x, lid.y);
}

// C = epilogue(Σ over splits of partials), `lanes` invocations per element of C.
@compute @workgroup_size(SWG)
fn matmul_tiled_fold(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) li: u32) {
    let mn = p.m * p.n;
    let group = wid.y * nwg.x + wid.x;
    let s = fold_splits(group, li, mn, p.splits, p.lanes);
    let o = fold_output(group, li, p.lanes);
    if (li % p.lanes == 0u && o < mn) {
        let m = o / p.n;
        epilogue(m, o - m * p.n, s);
    }
}

// Matmul family of the tiled kernel set, on the GEMM core (tiled_gemm.wgsl):
//
//   C = A·Bᵀ (+ bias) (+ the old C when accumulating)
//
// with A seen as [M,K] and B as [N,K] through element strides, as in the lavapipe set's matmul.wgsl
// (A[i,k] = a[i·a_rs + k·a_ks], B[j,k] = b[j·b_cs + k·b_ks]), and C written through strides too
// (C[i,j] = c[i·c_rs + j·c_cs]) so the host can compute Cᵀ = B·Aᵀ instead when C has a single
// column (a GEMV would otherwise fill one column of every tile). The bias is indexed by C's
// column, or by its row when FLAG_BIAS_ROWS says the product was transposed, divided by bias_div
// (1 for a Linear layer; k² for a transposed convolution computed as one dense product).

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
}

const FLAG_BIAS: u32 = 1u;
const FLAG_ACCUMULATE: u32 = 2u;
const FLAG_BIAS_ROWS: u32 = 8u;

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

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

fn write_c(m: u32, n: u32, v: f32) {
    var x = v;
    if ((p.flags & FLAG_BIAS) != 0u) {
        x += bias[select(n, m, (p.flags & FLAG_BIAS_ROWS) != 0u) / p.bias_div];
    }
    let i = m * p.c_rs + n * p.c_cs;
    if ((p.flags & FLAG_ACCUMULATE) != 0u) {
        x += c[i];
    }
    c[i] = x;
}

// Workgroup (x, y) computes the block of C at rows y·BM, columns x·BN.
@compute @workgroup_size(WG_X, WG_Y)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let blk = GemmBlock(p.m, p.n, wid.y * block_rows(), wid.x * block_cols(), 0u, p.k);
    gemm_block(blk, lid.x, lid.y);
}

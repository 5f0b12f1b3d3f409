// Convolution forward as an implicit GEMM: M = Cout, N = batch·OH·OW, K = Cin·k².
// A = the weight [Cout, Cin·k²] (b2), B = im2col(x) (b1, read through the index map),
// C → y [batch, Cout, OH, OW] (b4) plus bias[co] (b3) with HAS_BIAS.

fn read_a(m: u32, k: u32) -> f32 {
    return b2[m * (p.cin * p.k * p.k) + k];
}

fn read_b(k: u32, n: u32) -> f32 {
    return im2col(k, n);
}

fn a_k_fast() -> bool {
    return true;
}

fn b_k_fast() -> bool {
    return false;
}

fn write_c(m: u32, n: u32, v: f32) {
    let ohw = p.oh * p.ow;
    let img = n / ohw;
    var x = v;
    if ((p.flags & HAS_BIAS) != 0u) {
        x += b3[m];
    }
    store_out((img * p.cout + m) * ohw + (n - img * ohw), x);
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv2d_forward_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let n = p.batch * p.oh * p.ow;
    let blk = GemmBlock(p.cout, n, wid.y * block_rows(), wid.x * block_cols(), 0u, p.cin * p.k * p.k);
    gemm_block(blk, lid.x, lid.y);
}

// Convolution weight gradient as an implicit GEMM: M = Cout, N = Cin·k², K = batch·OH·OW.
// A = dy [Cout, batch·OH·OW] (b2) through the index map, B = im2col(x)ᵀ (b1), C → dw (b4).
// The reduction is long and the output often small (the first layer's is 32 × 16 against K = 2^15
// at batch 128), so it is split into `splits` chunks along K, workgroup z taking one; each writes
// its partial block to b3 [splits, M, N] and conv2d_backward_weight_reduce folds the partials in a
// fixed order (deterministic, no atomics). With one split the GEMM writes dw directly.

fn read_a(m: u32, k: u32) -> f32 {
    let ohw = p.oh * p.ow;
    let img = k / ohw;
    return b2[(img * p.cout + m) * ohw + (k - img * ohw)];
}

fn read_b(k: u32, n: u32) -> f32 {
    return im2col(n, k);
}

fn a_k_fast() -> bool {
    return true;
}

fn b_k_fast() -> bool {
    return true;
}

var<private> split: u32;

fn write_c(m: u32, n: u32, v: f32) {
    let mn = p.cout * p.cin * p.k * p.k;
    let i = m * (p.cin * p.k * p.k) + n;
    if (p.splits > 1u) {
        b3[split * mn + i] = v;
    } else {
        store_out(i, v);
    }
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv2d_backward_weight_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    split = wid.z;
    let k = p.batch * p.oh * p.ow;
    let k0 = wid.z * p.chunk;
    let k1 = min(k, k0 + p.chunk);
    let blk = GemmBlock(p.cout, p.cin * p.k * p.k, wid.y * block_rows(), wid.x * block_cols(), k0, k1);
    gemm_block(blk, lid.x, lid.y);
}

fn read_partial(i: u32) -> f32 {
    return b3[i];
}

// dw[i] (+)= Σ over splits, in order, of b3[split, i] (split_fold.wgsl).
@compute @workgroup_size(SWG)
fn conv2d_backward_weight_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                 @builtin(local_invocation_index) li: u32) {
    let mn = p.cout * p.cin * p.k * p.k;
    let group = wid.y * nwg.x + wid.x;
    let s = fold_splits(group, li, mn, p.splits, p.lanes);
    let o = fold_output(group, li, p.lanes);
    if (li % p.lanes == 0u && o < mn) {
        store_out(o, s);
    }
}

// Binary cross-entropy on logits, ℓ = max(x, 0) − x·t + log1p(exp(−|x|)), and its gradient
// σ(x) − t. The forward reduces in two stages as loss.wgsl's do (a chunk per workgroup,
// then the partials folded), each in a fixed order, so the value is bit-identical between runs. The backward is elementwise; with `accumulate` = 1 it adds into its output.

struct Params {
    n: u32,          // elements
    accumulate: u32, // backward: 1 adds into the output, 0 overwrites it
    scale: f32,      // 1/numel (mean) or 1/batch (sum per item, mean over the batch)
    weight: f32,     // backward: the upstream gradient of the loss (1 at the end of the graph)
    chunk: u32,      // forward: elements per workgroup
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;

const EWG: u32 = 256u;

// log(1 + u) for u in [0, 1], which WGSL lacks: log(1 + u) loses u's low digits when 1 + u rounds
// (relative error 2^-24/u), and the rewrite log(w)·u/(w − 1) relies on the compiler keeping w − 1.
// Instead 2·atanh(s) with s = u/(2 + u) ≤ 1/3, by its odd series to s^15 (the next term is below
// 1.4e-9 of the sum): a few ulp over the whole range, branch-free.
fn log1p_unit(u: f32) -> f32 {
    let s = u / (2.0 + u);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0
        + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0)))))));
    return 2.0 * s * series;
}

// Slots: 1 logits, 2 target, 3 loss or partials. [w] = scale · Σ max(x, 0) − x·t + log1p(exp(−|x|)).
@compute @workgroup_size(RWG)
fn bce_logits_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    let r = chunk_range(wid.x, p.n, p.chunk);
    for (var i = r.x + lid; i < r.y; i = i + RWG) {
        let x = b1[i];
        acc = acc + (max(x, 0.0) - x * b2[i]) + log1p_unit(exp(-abs(x)));
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        b3[wid.x] = p.scale * total;
    }
}

// Slots: 1 logits, 2 target, 3 dlogits. dx = weight · scale · (σ(x) − t), σ from exp(−|x|) so that
// no exp overflows.
@compute @workgroup_size(256)
fn bce_logits_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, EWG);
    if (i >= p.n) { return; }
    let x = b1[i];
    let e = exp(-abs(x));
    let sig = select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
    let g = p.weight * p.scale * (sig - b2[i]);
    b3[i] = select(g, b3[i] + g, p.accumulate != 0u);
}

// Batch normalisation over NCHW (BatchNorm1d is H = W = 1), PyTorch semantics.
//
// Per-channel statistics run in two stages over a fixed partition (ops::reduce::Partition of the
// channel's M = N·H·W elements): workgroup (split, channel) summarises its chunk, each invocation
// walking a fixed stride of 64 and the workgroup folding its 64 summaries with a fixed-shape tree;
// then one workgroup per channel folds the channel's split summaries the same way. Results are
// bit-identical from run to run and independent of the adapter.
//
// Mean and variance come from one pass: each summary is (count, mean, M2) by Welford's update, and
// summaries merge by Chan's formula, which stays accurate for activations whose mean is large
// against their spread (the textbook E[x²] − mean² would cancel there).
//
// `saved` holds 2·C floats: saved[c] = batch mean, saved[C + c] = 1 / sqrt(biased var + eps).
//
// Storage bindings are named by slot; each entry documents which operand sits in which slot.
//
// A ReLU or LeakyReLU following the normalisation is applied here (`act`), saving a pass over the
// tensor each way; its derivative is read from the sign of the output y, which the backward binds.

struct Params {
    n: u32,
    c: u32,
    hw: u32,
    chw: u32, // c·hw: elements per batch item
    eps: f32,
    momentum: f32,
    act: u32, // ACT_*
    alpha: f32, // LeakyReLU slope
    parts: u32, // splits per channel of the statistics and gradient sums
    chunk: u32, // elements per split
    batch_block: u32, // elementwise passes: batch items per invocation
}

const ACT_NONE: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_LEAKY_RELU: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;
@group(0) @binding(5) var<storage, read_write> b5: array<f32>;
@group(0) @binding(6) var<storage, read_write> b6: array<f32>;
@group(0) @binding(7) var<storage, read_write> b7: array<f32>;
@group(0) @binding(8) var<storage, read_write> b8: array<f32>;

fn activate(v: f32) -> f32 {
    if (p.act == ACT_RELU) {
        return max(v, 0.0);
    }
    if (p.act == ACT_LEAKY_RELU) {
        return select(p.alpha * v, v, v > 0.0);
    }
    return v;
}

// The gradient reaching the normalisation's output: dy through the activation whose output is y.
fn through_act(dy: f32, y: f32) -> f32 {
    if (p.act == ACT_RELU) {
        return select(0.0, dy, y > 0.0);
    }
    if (p.act == ACT_LEAKY_RELU) {
        return select(p.alpha * dy, dy, y > 0.0);
    }
    return dy;
}

const EWG: u32 = 256u;

// One element added to a (count, mean, M2) summary (Welford).
fn welford_push(s: vec3<f32>, x: f32) -> vec3<f32> {
    let n = s.x + 1.0;
    let d = x - s.y;
    let mean = s.y + d / n;
    return vec3<f32>(n, mean, s.z + d * (x - mean));
}

// Two summaries merged (Chan, Golub and LeVeque); an empty one leaves the other unchanged.
fn welford_merge(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
    let n = a.x + b.x;
    if (n == 0.0) {
        return a;
    }
    let d = b.y - a.y;
    let f = b.x / n;
    return vec3<f32>(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}

var<workgroup> wtree: array<vec3<f32>, RWG>;

// The workgroup's summaries merged by a fixed-shape tree; every invocation gets the result.
fn tree_welford(lid: u32, v: vec3<f32>) -> vec3<f32> {
    wtree[lid] = v;
    workgroupBarrier();
    for (var k = RWG / 2u; k > 0u; k = k >> 1u) {
        if (lid < k) {
            wtree[lid] = welford_merge(wtree[lid], wtree[lid + k]);
        }
        workgroupBarrier();
    }
    let r = wtree[0];
    workgroupBarrier();
    return r;
}

// Slots: 1 x, 2 partials [C, parts, 3]. Workgroup (split, channel) writes its chunk's summary.
@compute @workgroup_size(RWG)
fn batchnorm_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ch = wid.y;
    let r = chunk_range(wid.x, p.n * p.hw, p.chunk);
    var s = vec3<f32>(0.0);
    var w = walk_start(r.x + lid, p.hw);
    for (var i = r.x + lid; i < r.y; i = i + RWG) {
        s = welford_push(s, b1[walk_index(w, ch, p.c, p.hw)]);
        walk_next(&w, p.hw);
    }
    let t = tree_welford(lid, s);
    if (lid == 0u) {
        let o = (ch * p.parts + wid.x) * 3u;
        b2[o] = t.x;
        b2[o + 1u] = t.y;
        b2[o + 2u] = t.z;
    }
}

// Slots: 1 partials, 2 running_mean, 3 running_var, 4 saved. One workgroup per channel merges the
// channel's split summaries in a fixed order and writes the statistics.
@compute @workgroup_size(RWG)
fn batchnorm_stats_finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ch = wid.y * nwg.x + wid.x;
    // Workgroups past the last channel (grid folding) still take part in the barriers.
    let valid = ch < p.c;
    var s = vec3<f32>(0.0);
    for (var z = lid; z < select(0u, p.parts, valid); z = z + RWG) {
        let o = (ch * p.parts + z) * 3u;
        s = welford_merge(s, vec3<f32>(b1[o], b1[o + 1u], b1[o + 2u]));
    }
    let t = tree_welford(lid, s);
    if (lid == 0u && valid) {
        let mf = t.x;
        b4[ch] = t.y;
        b4[p.c + ch] = inverseSqrt(t.z / mf + p.eps);
        // The running estimate uses the unbiased variance, as PyTorch does.
        let mom = p.momentum;
        b2[ch] = (1.0 - mom) * b2[ch] + mom * t.y;
        b3[ch] = (1.0 - mom) * b3[ch] + mom * (t.z / (mf - 1.0));
    }
}

// The elementwise passes give invocation j one (channel, spatial) position of the C·H·W plane and
// loop over a block of `batch_block` batch items (workgroup row y takes block y): the channel (one
// division) and its constants are computed once per invocation, and a large batch still spreads
// over many workgroups.

// The batch items [x, y) of workgroup row `wy`.
fn batch_range(wy: u32) -> vec2<u32> {
    let b0 = wy * p.batch_block;
    return vec2<u32>(b0, min(p.n, b0 + p.batch_block));
}

// Slots: 1 x, 2 gamma, 3 beta, 4 saved, 5 y.
@compute @workgroup_size(256)
fn batchnorm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = wid.x * EWG + lid;
    if (j >= p.chw) { return; }
    let bs = batch_range(wid.y);
    let ch = j / p.hw;
    let mean = b4[ch];
    let scale = b4[p.c + ch] * b2[ch];
    let shift = b3[ch];
    for (var b = bs.x; b < bs.y; b = b + 1u) {
        let i = b * p.chw + j;
        b5[i] = activate((b1[i] - mean) * scale + shift);
    }
}

// Slots: 1 x, 2 gamma, 3 beta, 4 running_mean, 5 running_var, 6 y.
@compute @workgroup_size(256)
fn batchnorm_eval_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = wid.x * EWG + lid;
    if (j >= p.chw) { return; }
    let bs = batch_range(wid.y);
    let ch = j / p.hw;
    let mean = b4[ch];
    let scale = inverseSqrt(b5[ch] + p.eps) * b2[ch];
    let shift = b3[ch];
    for (var b = bs.x; b < bs.y; b = b + 1u) {
        let i = b * p.chw + j;
        b6[i] = activate((b1[i] - mean) * scale + shift);
    }
}

// Slots: 1 x, 2 dy, 3 saved, 4 partials [C, parts, 2], 6 y (slot 5 unused). Workgroup (split,
// channel) writes its chunk's (Σ g·(x − mean), Σ g), g = dy through the activation.
@compute @workgroup_size(RWG)
fn batchnorm_backward_gamma_beta(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ch = wid.y;
    let r = chunk_range(wid.x, p.n * p.hw, p.chunk);
    let mean = b3[ch];
    var acc = vec2<f32>(0.0);
    var w = walk_start(r.x + lid, p.hw);
    for (var i = r.x + lid; i < r.y; i = i + RWG) {
        let k = walk_index(w, ch, p.c, p.hw);
        let g = through_act(b2[k], b6[k]);
        acc = acc + vec2<f32>(g * (b1[k] - mean), g);
        walk_next(&w, p.hw);
    }
    let s = tree_sum2(lid, acc);
    if (lid == 0u) {
        let o = (ch * p.parts + wid.x) * 2u;
        b4[o] = s.x;
        b4[o + 1u] = s.y;
    }
}

// Slots: 1 partials, 2 saved, 3 dgamma, 4 dbeta. One workgroup per channel adds the channel's split
// sums in a fixed order: dgamma = Σ g·x̂, dbeta = Σ g.
@compute @workgroup_size(RWG)
fn batchnorm_gamma_beta_finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ch = wid.y * nwg.x + wid.x;
    let valid = ch < p.c;
    var acc = vec2<f32>(0.0);
    for (var z = lid; z < select(0u, p.parts, valid); z = z + RWG) {
        let o = (ch * p.parts + z) * 2u;
        acc = acc + vec2<f32>(b1[o], b1[o + 1u]);
    }
    let s = tree_sum2(lid, acc);
    if (lid == 0u && valid) {
        // inv_std is applied once to the sum rather than to every term.
        b3[ch] = s.x * b2[p.c + ch];
        b4[ch] = s.y;
    }
}

// Slots: 1 x, 2 dy, 3 gamma, 4 saved, 5 dgamma, 6 dbeta, 7 dx, 8 y.
// dx = γ·inv_std·(g − dβ/M − x̂·dγ/M), with dγ, dβ from batchnorm_backward_gamma_beta.
@compute @workgroup_size(256)
fn batchnorm_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = wid.x * EWG + lid;
    if (j >= p.chw) { return; }
    let bs = batch_range(wid.y);
    let ch = j / p.hw;
    let inv_std = b4[p.c + ch];
    let inv_m = 1.0 / f32(p.n * p.hw);
    let mean = b4[ch];
    let k = b3[ch] * inv_std;
    let c1 = b6[ch] * inv_m;
    let c2 = b5[ch] * inv_m * inv_std;
    for (var b = bs.x; b < bs.y; b = b + 1u) {
        let i = b * p.chw + j;
        b7[i] = k * (through_act(b2[i], b8[i]) - c1 - (b1[i] - mean) * c2);
    }
}

// Batch normalisation over NCHW (BatchNorm1d is H = W = 1), PyTorch semantics.
//
// Per-channel statistics run one workgroup per channel: each invocation walks the channel's
// M = N·H·W elements in a fixed stride of 64, then the workgroup folds its 64 partials with a
// fixed-shape tree, so results are bit-identical from run to run.
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

// Walks the M = N·H·W elements of channel ch, invocation lid taking elements lid, lid + 64, ...
// The (batch, spatial) position advances incrementally, so there is no integer division per element
// (lavapipe scalarises u32 division; it made these passes several times slower).
struct Walk {
    b: u32,
    s: u32,
    db: u32,
    ds: u32,
}

fn walk_start(lid: u32) -> Walk {
    return Walk(lid / p.hw, lid % p.hw, RWG / p.hw, RWG % p.hw);
}

fn walk_index(w: Walk, ch: u32) -> u32 {
    return (w.b * p.c + ch) * p.hw + w.s;
}

fn walk_next(w: ptr<function, Walk>) {
    (*w).s = (*w).s + (*w).ds;
    (*w).b = (*w).b + (*w).db;
    if ((*w).s >= p.hw) {
        (*w).s = (*w).s - p.hw;
        (*w).b = (*w).b + 1u;
    }
}

// Slots: 1 x, 2 running_mean, 3 running_var, 4 saved. Variance from centred squares in a second pass
// over x (more accurate than E[x²] − mean² for activations with a large mean).
@compute @workgroup_size(RWG)
fn batchnorm_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ch = wid.y * nwg.x + wid.x;
    // Workgroups past the last channel (grid folding) still take part in the barriers.
    let valid = ch < p.c;
    let m = select(0u, p.n * p.hw, valid);
    var acc = 0.0;
    var w = walk_start(lid);
    for (var i = lid; i < m; i = i + RWG) {
        acc = acc + b1[walk_index(w, ch)];
        walk_next(&w);
    }
    let mean = tree_sum2(lid, vec2<f32>(acc, 0.0)).x / f32(p.n * p.hw);
    acc = 0.0;
    w = walk_start(lid);
    for (var i = lid; i < m; i = i + RWG) {
        let d = b1[walk_index(w, ch)] - mean;
        acc = acc + d * d;
        walk_next(&w);
    }
    let sq = tree_sum2(lid, vec2<f32>(acc, 0.0)).x;
    if (lid == 0u && valid) {
        let mf = f32(p.n * p.hw);
        let var_biased = sq / mf;
        b4[ch] = mean;
        b4[p.c + ch] = inverseSqrt(var_biased + p.eps);
        // The running estimate uses the unbiased variance, as PyTorch does.
        let mom = p.momentum;
        b2[ch] = (1.0 - mom) * b2[ch] + mom * mean;
        b3[ch] = (1.0 - mom) * b3[ch] + mom * (sq / (mf - 1.0));
    }
}

// The elementwise passes give invocation j one (channel, spatial) position of the C·H·W plane and
// loop over the batch: the channel (one division) and its constants are computed once per invocation.

// Slots: 1 x, 2 gamma, 3 beta, 4 saved, 5 y.
@compute @workgroup_size(256)
fn batchnorm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = linear_id(wid, nwg, lid, EWG);
    if (j >= p.chw) { return; }
    let ch = j / p.hw;
    let mean = b4[ch];
    let scale = b4[p.c + ch] * b2[ch];
    let shift = b3[ch];
    for (var b = 0u; b < p.n; b = b + 1u) {
        let i = b * p.chw + j;
        b5[i] = activate((b1[i] - mean) * scale + shift);
    }
}

// Slots: 1 x, 2 gamma, 3 beta, 4 running_mean, 5 running_var, 6 y.
@compute @workgroup_size(256)
fn batchnorm_eval_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = linear_id(wid, nwg, lid, EWG);
    if (j >= p.chw) { return; }
    let ch = j / p.hw;
    let mean = b4[ch];
    let scale = inverseSqrt(b5[ch] + p.eps) * b2[ch];
    let shift = b3[ch];
    for (var b = 0u; b < p.n; b = b + 1u) {
        let i = b * p.chw + j;
        b6[i] = activate((b1[i] - mean) * scale + shift);
    }
}

// Slots: 1 x, 2 dy, 3 saved, 4 dgamma, 5 dbeta, 6 y. Writes dgamma = Σ g·x̂ and dbeta = Σ g per channel,
// g = dy through the activation.
@compute @workgroup_size(RWG)
fn batchnorm_backward_gamma_beta(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ch = wid.y * nwg.x + wid.x;
    let valid = ch < p.c;
    let m = select(0u, p.n * p.hw, valid);
    let mean = b3[min(ch, p.c - 1u)];
    var acc = vec2<f32>(0.0);
    var w = walk_start(lid);
    for (var i = lid; i < m; i = i + RWG) {
        let k = walk_index(w, ch);
        let g = through_act(b2[k], b6[k]);
        acc = acc + vec2<f32>(g * (b1[k] - mean), g);
        walk_next(&w);
    }
    let s = tree_sum2(lid, acc);
    if (lid == 0u && valid) {
        // inv_std is applied once to the sum rather than to every term.
        b4[ch] = s.x * b3[p.c + ch];
        b5[ch] = s.y;
    }
}

// Slots: 1 x, 2 dy, 3 gamma, 4 saved, 5 dgamma, 6 dbeta, 7 dx, 8 y.
// dx = γ·inv_std·(g − dβ/M − x̂·dγ/M), with dγ, dβ from batchnorm_backward_gamma_beta.
@compute @workgroup_size(256)
fn batchnorm_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = linear_id(wid, nwg, lid, EWG);
    if (j >= p.chw) { return; }
    let ch = j / p.hw;
    let inv_std = b4[p.c + ch];
    let inv_m = 1.0 / f32(p.n * p.hw);
    let mean = b4[ch];
    let k = b3[ch] * inv_std;
    let c1 = b6[ch] * inv_m;
    let c2 = b5[ch] * inv_m * inv_std;
    for (var b = 0u; b < p.n; b = b + 1u) {
        let i = b * p.chw + j;
        b7[i] = k * (through_act(b2[i], b8[i]) - c1 - (b1[i] - mean) * c2);
    }
}

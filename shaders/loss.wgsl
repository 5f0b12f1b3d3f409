// Losses at the end of the training graph (BCE, the VAE's KL term) and the VAE's reparameterisation.
//
// Forward losses reduce to one scalar in two stages (ops::reduce::two_stage): workgroup w sums chunk
// w of the elements, each invocation a fixed stride-64 subset in order, then a fixed 6-level tree,
// and writes scale · Σ to slot 3 [w]; with several chunks a second dispatch folds those partials the
// same way. The value is bit-identical between runs.
// Backward entries are elementwise; with `accumulate` = 1 they add into their outputs instead of
// overwriting them (for tensors that receive gradient from several places, such as μ in the VAE).

struct Params {
    n: u32,          // elements
    accumulate: u32, // backward: 1 adds into the outputs, 0 overwrites them
    scale: f32,      // forward and backward: 1/numel (mean) or 1/batch (sum per item, mean over batch)
    weight: f32,     // backward: the upstream gradient of the loss (1 at the end of the graph)
    classes: u32,    // cross-entropy: logits per row (n counts rows there)
    chunk: u32,      // forward: elements (rows for cross-entropy) per workgroup
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;
@group(0) @binding(5) var<storage, read_write> b5: array<f32>;

const EWG: u32 = 256u;

// PyTorch's BCELoss clamps each log at -100 so that p = 0 or 1 gives a finite loss, and its
// backward divides by max(p·(1−p), 1e-12).
const LOG_FLOOR: f32 = -100.0;
const GRAD_EPS: f32 = 1e-12;

// log(v) clamped at -100; v <= 0 (including a flushed subnormal) maps to the floor, never to -inf/NaN.
fn clamped_log(v: f32) -> f32 {
    return select(LOG_FLOOR, max(log(v), LOG_FLOOR), v > 0.0);
}

// The value to write over `old` under the accumulate flag.
fn blend(old: f32, v: f32) -> f32 {
    return select(v, old + v, p.accumulate != 0u);
}

// Slots: 1 p, 2 t, 3 loss or partials. [w] = scale · Σ −(t·log p + (1−t)·log(1−p)).
@compute @workgroup_size(RWG)
fn bce_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    let r = chunk_range(wid.x, p.n, p.chunk);
    for (var i = r.x + lid; i < r.y; i = i + RWG) {
        let q = b1[i];
        let t = b2[i];
        acc = acc - (t * clamped_log(q) + (1.0 - t) * clamped_log(1.0 - q));
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        b3[wid.x] = p.scale * total;
    }
}

// Slots: 1 p, 2 t, 3 dp. dp = weight · scale · (p − t) / max(p·(1−p), 1e-12).
@compute @workgroup_size(256)
fn bce_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, EWG);
    if (i >= p.n) { return; }
    let q = b1[i];
    b3[i] = blend(b3[i], p.weight * p.scale * (q - b2[i]) / max(q * (1.0 - q), GRAD_EPS));
}

// Slots: 1 mu, 2 logvar, 3 loss or partials. [w] = scale · Σ (exp(logvar) − 1 − logvar + μ²), the host's
// scale carrying KL's ½.
@compute @workgroup_size(RWG)
fn kl_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    let r = chunk_range(wid.x, p.n, p.chunk);
    for (var i = r.x + lid; i < r.y; i = i + RWG) {
        let mu = b1[i];
        let lv = b2[i];
        acc = acc + (exp(lv) - 1.0 - lv + mu * mu);
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        b3[wid.x] = p.scale * total;
    }
}

// Slots: 1 mu, 2 logvar, 3 dmu, 4 dlogvar. dμ = weight·scale·μ, dlogvar = weight·scale·½(exp(logvar) − 1).
@compute @workgroup_size(256)
fn kl_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, EWG);
    if (i >= p.n) { return; }
    let k = p.weight * p.scale;
    b3[i] = blend(b3[i], k * b1[i]);
    b4[i] = blend(b4[i], k * 0.5 * (exp(b2[i]) - 1.0));
}

// Slots: 1 mu, 2 logvar, 3 eps, 4 z. z = μ + exp(½ logvar)·ε.
@compute @workgroup_size(256)
fn reparam_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, EWG);
    if (i >= p.n) { return; }
    b4[i] = b1[i] + exp(0.5 * b2[i]) * b3[i];
}

// Slots: 1 logvar, 2 eps, 3 dz, 4 dmu, 5 dlogvar. dμ = dz, dlogvar = dz·½·exp(½ logvar)·ε.
@compute @workgroup_size(256)
fn reparam_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, EWG);
    if (i >= p.n) { return; }
    let dz = b3[i];
    b4[i] = blend(b4[i], dz);
    b5[i] = blend(b5[i], dz * 0.5 * exp(0.5 * b1[i]) * b2[i]);
}

// Softmax cross-entropy over `classes` logits per row, with integer class labels stored as floats
// (gathered like pixels). Slots: 1 logits [n, classes], 2 labels [n], 3 loss or partials.
// [w] = scale · Σ_rows (logsumexp(z) − z[label]); the max is subtracted before exp so large
// logits cannot overflow.
fn row_logsumexp(row: u32) -> f32 {
    let base = row * p.classes;
    var m = b1[base];
    for (var k = 1u; k < p.classes; k = k + 1u) {
        m = max(m, b1[base + k]);
    }
    var s = 0.0;
    for (var k = 0u; k < p.classes; k = k + 1u) {
        s = s + exp(b1[base + k] - m);
    }
    return m + log(s);
}

@compute @workgroup_size(RWG)
fn xent_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    let range = chunk_range(wid.x, p.n, p.chunk);
    for (var r = range.x + lid; r < range.y; r = r + RWG) {
        let label = min(u32(b2[r]), p.classes - 1u);
        acc = acc + row_logsumexp(r) - b1[r * p.classes + label];
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        b3[wid.x] = p.scale * total;
    }
}

// Slots: 1 logits, 2 labels, 3 dlogits. dz = weight · scale · (softmax(z) − onehot(label)).
@compute @workgroup_size(256)
fn xent_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, EWG);
    if (i >= p.n * p.classes) { return; }
    let r = i / p.classes;
    let k = i % p.classes;
    let label = min(u32(b2[r]), p.classes - 1u);
    let prob = exp(b1[i] - row_logsumexp(r));
    b3[i] = blend(b3[i], p.weight * p.scale * (prob - select(0.0, 1.0, k == label)));
}

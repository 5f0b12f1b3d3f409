// Adam (PyTorch semantics, bias-corrected, optional L2 weight decay) over a flat parameter range in
// one dispatch. The step count lives on the GPU in `counters` so a frozen plan needs no per-step
// upload: Adam uses t = counters[slot] + 1 and `step_increment` (random.wgsl) advances it at the end of a step.

struct Params {
    n: u32,
    slot: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    ln_beta1: f32, // ln β computed in f64 on the host: f32 log near 1 loses most digits
    ln_beta2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> counters: array<u32>;

// 1 − eˣ for x ≤ 0 without the cancellation of 1 − pow(β, t) in f32, which in early steps
// (1 − 0.999ᵗ ≈ 0.001·t) costs ~1e-4 relative error in the bias correction. Taylor series of −expm1
// to x⁶ where |x| < 0.1 (truncation < 2e-11 relative).
fn one_minus_exp(x: f32) -> f32 {
    if (x < -0.1) {
        return 1.0 - exp(x);
    }
    return -x * (1.0 + x * (1.0 / 2.0 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0))))));
}

@compute @workgroup_size(256)
fn adam_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, 256u);
    if (i >= p.n) { return; }
    let t = f32(counters[p.slot] + 1u);
    let g = grad[i] + p.weight_decay * param[i];
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let bc1 = one_minus_exp(t * p.ln_beta1);
    let bc2 = one_minus_exp(t * p.ln_beta2);
    let denom = sqrt(vi) / sqrt(bc2) + p.eps;
    param[i] = param[i] - (p.lr / bc1) * mi / denom;
}

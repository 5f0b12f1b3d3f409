// Counter-based random numbers: Philox 4x32-10 keyed by the seed, with counter (index, step, stream, 0).
// The step is read from `counters` on the GPU, so a frozen plan draws fresh numbers every step with
// no upload, and identical (seed, step, stream, index) always give identical numbers.

struct Params {
    n: u32,
    slot: u32,     // counters[slot] is the step
    stream: u32,   // separates independent draws within one step
    seed_lo: u32,
    seed_hi: u32,
    a: f32,        // uniform: low bound;  normal: mean
    b: f32,        // uniform: high bound; normal: standard deviation
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> counters: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// High and low 32 bits of a 32×32-bit product, from 16-bit halves (WGSL has no 64-bit integers).
fn mul_hi_lo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 10u; r = r + 1u) {
        let p0 = mul_hi_lo(0xD2511F53u, c.x);
        let p1 = mul_hi_lo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

// 24 high bits to a float in (0, 1): never 0, so log() in Box–Muller is finite.
fn to_unit(x: u32) -> f32 {
    return (f32(x >> 8u) + 0.5) * (1.0 / 16777216.0);
}

fn draw(i: u32) -> vec4<u32> {
    return philox(vec4<u32>(i, counters[p.slot], p.stream, 0u), vec2<u32>(p.seed_lo, p.seed_hi));
}

@compute @workgroup_size(256)
fn uniform_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, 256u);
    if (i >= p.n) { return; }
    out[i] = p.a + (p.b - p.a) * to_unit(draw(i).x);
}

@compute @workgroup_size(256)
fn normal_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, 256u);
    if (i >= p.n) { return; }
    let r = draw(i);
    let u1 = to_unit(r.x);
    let u2 = to_unit(r.y);
    out[i] = p.a + p.b * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

// counters[slot] += 1, once at the end of a training step (also advances Adam's step count).
@compute @workgroup_size(1)
fn step_increment() {
    counters[p.slot] = counters[p.slot] + 1u;
}

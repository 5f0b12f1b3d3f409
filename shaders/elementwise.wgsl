// Activations (activation.wgsl) and simple arithmetic over flat f32 arrays. Backward passes take the forward output y
// (not the input), which is enough for every activation here and lets the planner free the input.

struct Params {
    n: u32,
    alpha: f32, // LeakyReLU slope, or the scalar of fill/scale
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const WG: u32 = 256u;

// a = x, b = y
@compute @workgroup_size(256)
fn relu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    b[i] = apply_activation(ACTIVATION_RELU, 0.0, a[i]);
}

@compute @workgroup_size(256)
fn leaky_relu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    b[i] = apply_activation(ACTIVATION_LEAKY_RELU, p.alpha, a[i]);
}

@compute @workgroup_size(256)
fn tanh_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    b[i] = apply_activation(ACTIVATION_TANH, 0.0, a[i]);
}

@compute @workgroup_size(256)
fn sigmoid_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    b[i] = apply_activation(ACTIVATION_SIGMOID, 0.0, a[i]);
}

// a = y, b = dy, c = dx
@compute @workgroup_size(256)
fn relu_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    c[i] = select(0.0, b[i], a[i] > 0.0);
}

@compute @workgroup_size(256)
fn leaky_relu_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    c[i] = select(p.alpha * b[i], b[i], a[i] > 0.0);
}

@compute @workgroup_size(256)
fn tanh_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    let y = a[i];
    c[i] = b[i] * (1.0 - y * y);
}

@compute @workgroup_size(256)
fn sigmoid_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    let y = a[i];
    c[i] = b[i] * y * (1.0 - y);
}

// c = a + b (gradient accumulation for tensors used twice)
@compute @workgroup_size(256)
fn add_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    c[i] = a[i] + b[i];
}

// a += b
@compute @workgroup_size(256)
fn accumulate_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    a[i] = a[i] + b[i];
}

// b = alpha * a
@compute @workgroup_size(256)
fn scale_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    b[i] = p.alpha * a[i];
}

// a = alpha
@compute @workgroup_size(256)
fn fill_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.n) { return; }
    a[i] = p.alpha;
}

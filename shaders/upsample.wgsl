// Nearest-neighbour upsampling ×2 (PyTorch's Upsample(scale_factor=2, mode='nearest')). The backward
// pass runs over the input and gathers its 2×2 block of dy, so every element of dx is written exactly
// once by one invocation (no atomics, no zero-fill pass) and the sum's order is fixed.

struct Params {
    planes: u32, // batch · channels
    h: u32,      // input height and width; the output is 2h × 2w
    w: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;

const WG: u32 = 256u;

// Slots: 1 x [planes, h, w], 2 y [planes, 2h, 2w].
@compute @workgroup_size(256)
fn upsample2x_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    let oh = 2u * p.h;
    let ow = 2u * p.w;
    if (i >= p.planes * oh * ow) { return; }
    let plane = i / (oh * ow);
    let y = (i / ow) % oh;
    let x = i % ow;
    b2[i] = b1[(plane * p.h + y / 2u) * p.w + x / 2u];
}

// Slots: 1 dy [planes, 2h, 2w], 2 dx [planes, h, w]. dx = Σ of dy over the 2×2 block, row by row.
@compute @workgroup_size(256)
fn upsample2x_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.planes * p.h * p.w) { return; }
    let plane = i / (p.h * p.w);
    let y = (i / p.w) % p.h;
    let x = i % p.w;
    let ow = 2u * p.w;
    let top = (plane * 2u * p.h + 2u * y) * ow + 2u * x;
    let g = ((b1[top] + b1[top + 1u]) + b1[top + ow]) + b1[top + ow + 1u];
    b2[i] = select(g, b2[i] + g, p.accumulate != 0u);
}

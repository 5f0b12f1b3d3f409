// 2×2 max-pooling with stride 2 (PyTorch's MaxPool2d(2)): odd trailing rows and columns are dropped.
// The backward pass runs over the input and recomputes each window's first maximum, so it needs no
// index buffer and writes every element of dx exactly once (no atomics, no zero-fill pass).

struct Params {
    planes: u32, // batch · channels
    h: u32,
    w: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;

const WG: u32 = 256u;

// Offset in x of the first maximum of output window (plane, oy, ox); NaN wins like PyTorch's max.
fn window_argmax(plane: u32, oy: u32, ox: u32) -> u32 {
    let base = plane * p.h * p.w + (2u * oy) * p.w + 2u * ox;
    var best = base;
    var v = b1[base];
    for (var k = 1u; k < 4u; k = k + 1u) {
        let o = base + (k / 2u) * p.w + (k % 2u);
        let c = b1[o];
        if (c > v || (c != c && v == v)) {
            v = c;
            best = o;
        }
    }
    return best;
}

// Slots: 1 x [planes, h, w], 2 y [planes, h/2, w/2].
@compute @workgroup_size(256)
fn maxpool_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    let oh = p.h / 2u;
    let ow = p.w / 2u;
    if (i >= p.planes * oh * ow) { return; }
    let plane = i / (oh * ow);
    let oy = (i / ow) % oh;
    let ox = i % ow;
    b2[i] = b1[window_argmax(plane, oy, ox)];
}

// Slots: 1 x, 2 dy [planes, h/2, w/2], 3 dx [planes, h, w]. dx = dy at each window's first maximum.
@compute @workgroup_size(256)
fn maxpool_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, WG);
    if (i >= p.planes * p.h * p.w) { return; }
    let plane = i / (p.h * p.w);
    let y = (i / p.w) % p.h;
    let x = i % p.w;
    let oh = p.h / 2u;
    let ow = p.w / 2u;
    var g = 0.0;
    if (y / 2u < oh && x / 2u < ow && window_argmax(plane, y / 2u, x / 2u) == i) {
        g = b2[(plane * oh + y / 2u) * ow + x / 2u];
    }
    b3[i] = select(g, b3[i] + g, p.accumulate != 0u);
}

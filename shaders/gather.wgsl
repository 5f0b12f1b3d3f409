// Batch gather: the training set stays on the GPU as packed u8 pixels; each step picks its images
// through a shuffled index list (uploaded once per epoch) and the step counter, normalises them to
// out = pixel·scale + shift, and pads them (padding is a pixel of value 0, docs/architecture.md "Numerics").

struct Params {
    batch: u32,
    channels: u32,
    src_h: u32,
    src_w: u32,
    out_h: u32,
    out_w: u32,
    pad_top: u32,
    pad_left: u32,
    n_images: u32,
    steps_per_epoch: u32,
    slot: u32,
    scale: f32,
    shift: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> images: array<u32>; // 4 pixels per word, little-endian
@group(0) @binding(2) var<storage, read_write> order: array<u32>;
@group(0) @binding(3) var<storage, read_write> counters: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn gather_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, 256u);
    let plane = p.out_h * p.out_w;
    if (i >= p.batch * p.channels * plane) { return; }
    let b = i / (p.channels * plane);
    let c = (i / plane) % p.channels;
    let y = i32((i % plane) / p.out_w) - i32(p.pad_top);
    let x = i32(i % p.out_w) - i32(p.pad_left);
    var pixel = 0u;
    if (y >= 0 && y < i32(p.src_h) && x >= 0 && x < i32(p.src_w)) {
        let row = (counters[p.slot] % p.steps_per_epoch) * p.batch + b;
        // Clamped so a bad index list can never read outside the dataset.
        let img = min(order[row], p.n_images - 1u);
        let offset = ((img * p.channels + c) * p.src_h + u32(y)) * p.src_w + u32(x);
        pixel = (images[offset / 4u] >> ((offset % 4u) * 8u)) & 0xffu;
    }
    out[i] = f32(pixel) * p.scale + p.shift;
}

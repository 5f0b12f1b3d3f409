// Bias gradients of the tiled kernel set: db[c] (+)= Σ over (n, i) of dy[n, c, i] for dy seen as
// [batch, channels, plane]. Deterministic: fixed partitions summed in a fixed order, no atomics.

struct BiasParams {
    batch: u32,
    channels: u32,
    plane: u32,
    flags: u32, // ACCUMULATE
}

const ACCUMULATE: u32 = 2u;
const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: BiasParams;
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;

var<workgroup> red: array<f32, WG>;

fn store(c: u32, v: f32) {
    var x = v;
    if ((p.flags & ACCUMULATE) != 0u) {
        x += db[c];
    }
    db[c] = x;
}

// plane = 1 (a Linear layer's [batch, out]): one invocation per channel walks the batch, so
// neighbouring invocations read neighbouring addresses.
@compute @workgroup_size(WG)
fn bias_grad_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) li: u32) {
    let c = linear_id(wid, nwg, li, WG);
    if (c >= p.channels) {
        return;
    }
    var s = 0.0;
    for (var n = 0u; n < p.batch; n++) {
        s += dy[n * p.channels + c];
    }
    store(c, s);
}

// Convolution planes: one workgroup per channel; invocation l sums elements l, l + WG, ... of each
// image's plane, then a fixed tree adds the WG partial sums.
@compute @workgroup_size(WG)
fn bias_grad_planes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) li: u32) {
    let c = wid.y * nwg.x + wid.x;
    var s = 0.0;
    if (c < p.channels) {
        for (var n = 0u; n < p.batch; n++) {
            let base = (n * p.channels + c) * p.plane;
            for (var i = li; i < p.plane; i += WG) {
                s += dy[base + i];
            }
        }
    }
    red[li] = s;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step /= 2u) {
        if (li < step) {
            red[li] += red[li + step];
        }
        workgroupBarrier();
    }
    if (li == 0u && c < p.channels) {
        store(c, red[0]);
    }
}

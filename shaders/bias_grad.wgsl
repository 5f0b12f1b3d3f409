// Bias gradients of the tiled kernel set: db[c] (+)= Σ over (n, i) of dy[n, c, i] for dy seen as
// [batch, channels, plane]. Deterministic: a fixed partition of the batch (rows) or of each
// channel's batch·plane elements (planes) into splits, each summed in a fixed order into a partials
// operand, then the splits added in a fixed order. No atomics.

struct BiasParams {
    batch: u32,
    channels: u32,
    plane: u32,
    flags: u32, // ACCUMULATE
    parts: u32, // splits
    chunk: u32, // rows (rows) or elements (planes) per split
}

const ACCUMULATE: u32 = 2u;
const CWG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: BiasParams;
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

fn store(c: u32, v: f32) {
    var x = v;
    if ((p.flags & ACCUMULATE) != 0u) {
        x += db[c];
    }
    db[c] = x;
}

// plane = 1 (a Linear layer's [batch, out]): workgroup (x, z) gives one invocation per column of
// block x, summing rows [z·chunk, (z + 1)·chunk) in order, so neighbouring invocations read
// neighbouring addresses. partials is [parts, channels].
@compute @workgroup_size(CWG)
fn bias_grad_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let c = wid.x * CWG + li;
    if (c >= p.channels) {
        return;
    }
    let r0 = wid.y * p.chunk;
    let r1 = min(p.batch, r0 + p.chunk);
    var s = 0.0;
    for (var n = r0; n < r1; n++) {
        s += dy[n * p.channels + c];
    }
    partials[wid.y * p.channels + c] = s;
}

// db[c] (+)= Σ over splits, in order, of the rows' partials.
@compute @workgroup_size(256)
fn bias_grad_rows_finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) li: u32) {
    let c = linear_id(wid, nwg, li, 256u);
    if (c >= p.channels) {
        return;
    }
    var s = 0.0;
    for (var z = 0u; z < p.parts; z++) {
        s += partials[z * p.channels + c];
    }
    store(c, s);
}

// Convolution planes: workgroup (split, channel) sums its chunk of the channel's batch·plane
// elements, invocation l taking elements l, l + 64, ... of the chunk, then a fixed tree.
// partials is [channels, parts].
@compute @workgroup_size(RWG)
fn bias_grad_planes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let c = wid.y;
    let r = chunk_range(wid.x, p.batch * p.plane, p.chunk);
    var s = 0.0;
    var w = walk_start(r.x + li, p.plane);
    for (var i = r.x + li; i < r.y; i += RWG) {
        s += dy[walk_index(w, c, p.channels, p.plane)];
        walk_next(&w, p.plane);
    }
    let total = tree_sum(li, s);
    if (li == 0u) {
        partials[c * p.parts + wid.x] = total;
    }
}

// One workgroup per channel adds its splits' partials with a fixed tree.
@compute @workgroup_size(RWG)
fn bias_grad_planes_finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) li: u32) {
    let c = wid.y * nwg.x + wid.x;
    let valid = c < p.channels;
    var s = 0.0;
    for (var z = li; z < select(0u, p.parts, valid); z += RWG) {
        s += partials[c * p.parts + z];
    }
    let total = tree_sum(li, s);
    if (li == 0u && valid) {
        store(c, total);
    }
}

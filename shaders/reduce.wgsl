// Deterministic reductions. Every invocation accumulates a fixed, strided subset of its chunk in a
// fixed order, then the workgroup folds the 64 partial sums with a fixed-shape tree: the result
// depends only on the input and its length, never on scheduling (no atomics).

struct Params {
    n: u32,     // elements to reduce (sum), or batch N (sum_channels)
    c: u32,     // channels (sum_channels)
    s: u32,     // spatial size per channel (sum_channels)
    scale: f32, // multiplies the result: 1 for sum, 1/len for mean
    chunk: u32, // elements per workgroup (sum_forward)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// out[w] = scale · Σ x[chunk w]: the partials of a long sum (one workgroup per chunk), or with one
// chunk the whole sum, which is also how the partials are folded.
@compute @workgroup_size(RWG)
fn sum_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = chunk_range(wid.x, p.n, p.chunk);
    var acc = 0.0;
    for (var i = r.x + lid; i < r.y; i = i + RWG) {
        acc = acc + x[i];
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        out[wid.x] = p.scale * total;
    }
}

// x is [n, c, s]; out[ch] = scale * sum over (n, s) of x[:, ch, :]. One workgroup per channel.
@compute @workgroup_size(RWG)
fn sum_channels_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ch = wid.y * nwg.x + wid.x;
    // Workgroups past the last channel (from grid folding) still join the barriers, then write nothing.
    let valid = ch < p.c;
    let m = select(0u, p.n * p.s, valid);
    var acc = 0.0;
    for (var i = lid; i < m; i = i + RWG) {
        let b = i / p.s;
        let sp = i - b * p.s;
        acc = acc + x[(b * p.c + ch) * p.s + sp];
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u && valid) {
        out[ch] = p.scale * total;
    }
}

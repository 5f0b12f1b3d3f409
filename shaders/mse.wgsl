// Mean squared error. The forward reduces in two stages as loss.wgsl's do (a chunk per workgroup,
// then the partials folded), each in a fixed order, so the value is bit-identical between runs. The backward is elementwise; with `accumulate` = 1 it adds into its output.

struct Params {
    n: u32,          // elements
    accumulate: u32, // backward: 1 adds into the output, 0 overwrites it
    scale: f32,      // 1/numel (mean) or 1/batch (sum per item, mean over the batch)
    weight: f32,     // backward: the upstream gradient of the loss (−1 gives the target's gradient)
    chunk: u32,      // forward: elements per workgroup
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;

const EWG: u32 = 256u;

// Slots: 1 pred, 2 target, 3 loss or partials. [w] = scale · Σ (pred − target)².
@compute @workgroup_size(RWG)
fn mse_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    let r = chunk_range(wid.x, p.n, p.chunk);
    for (var i = r.x + lid; i < r.y; i = i + RWG) {
        let d = b1[i] - b2[i];
        acc = acc + d * d;
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        b3[wid.x] = p.scale * total;
    }
}

// Slots: 1 pred, 2 target, 3 dpred. dpred = weight · scale · 2(pred − target).
@compute @workgroup_size(256)
fn mse_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, EWG);
    if (i >= p.n) { return; }
    let g = 2.0 * p.weight * p.scale * (b1[i] - b2[i]);
    b3[i] = select(g, b3[i] + g, p.accumulate != 0u);
}

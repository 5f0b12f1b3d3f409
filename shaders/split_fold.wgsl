// The fold of split-K partials, shared by the tiled matmul and the weight gradient: output o of
// `outputs` is Σ over splits z, in a fixed order, of partial z·outputs + o (read_partial, supplied
// by the family file). Each output gets `lanes` consecutive invocations (a power of two dividing
// SWG): lane l sums splits l, l + lanes, ..., then the lanes fold with a fixed tree, so many
// splits of a small output still spread over many workgroups, and the result never depends on
// scheduling.

const SWG: u32 = 64u;

var<workgroup> fold_tree: array<f32, SWG>;

// The output this invocation's segment folds in workgroup `group`.
fn fold_output(group: u32, lid: u32, lanes: u32) -> u32 {
    return group * (SWG / lanes) + lid / lanes;
}

// The sum for fold_output(...); meaningful in each segment's lane 0. Every invocation of the
// workgroup must call it (it holds barriers; `lanes` is uniform).
fn fold_splits(group: u32, lid: u32, outputs: u32, splits: u32, lanes: u32) -> f32 {
    let o = fold_output(group, lid, lanes);
    let lane = lid % lanes;
    var s = 0.0;
    if (o < outputs) {
        for (var z = lane; z < splits; z += lanes) {
            s += read_partial(z * outputs + o);
        }
    }
    fold_tree[lid] = s;
    workgroupBarrier();
    for (var k = lanes / 2u; k > 0u; k = k >> 1u) {
        if (lane < k) {
            fold_tree[lid] += fold_tree[lid + k];
        }
        workgroupBarrier();
    }
    return fold_tree[lid];
}

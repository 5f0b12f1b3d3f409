// Workgroup sums for the reduction families (batchnorm, losses, reduce, bias gradients), compiled
// before their files.
//
// 64 invocations rather than 256: lavapipe runs a workgroup on one CPU thread and pays a context
// switch per 8-lane group at every barrier, so a 256-wide 8-level tree costs ~35 us per workgroup
// against ~10 us here. Entry points that call these use @workgroup_size(RWG).
const RWG: u32 = 64u;

var<workgroup> tree: array<vec2<f32>, RWG>;

// Sum of `v` over the workgroup (two sums at once); every invocation gets the result.
fn tree_sum2(lid: u32, v: vec2<f32>) -> vec2<f32> {
    tree[lid] = v;
    workgroupBarrier();
    for (var k = RWG / 2u; k > 0u; k = k >> 1u) {
        if (lid < k) {
            tree[lid] = tree[lid] + tree[lid + k];
        }
        workgroupBarrier();
    }
    let r = tree[0];
    // Keeps a later call from overwriting tree[0] before everyone has read it.
    workgroupBarrier();
    return r;
}

// Sum of `v` over the workgroup; every invocation gets the result.
fn tree_sum(lid: u32, v: f32) -> f32 {
    return tree_sum2(lid, vec2<f32>(v, 0.0)).x;
}

// The elements [x, y) that workgroup `w` of a chunked reduction covers (ops::reduce::Partition).
fn chunk_range(w: u32, n: u32, chunk: u32) -> vec2<u32> {
    let start = min(n, w * chunk);
    return vec2<u32>(start, min(n, start + chunk));
}

// Walks elements m, m + RWG, ... of one channel of an [n, c, hw] tensor, m = b·hw + s counting the
// channel's n·hw elements. The (batch, spatial) position advances incrementally, so there is no
// integer division per element (lavapipe scalarises u32 division; it made these passes several
// times slower).
struct Walk {
    b: u32,
    s: u32,
    db: u32,
    ds: u32,
}

fn walk_start(m: u32, hw: u32) -> Walk {
    return Walk(m / hw, m % hw, RWG / hw, RWG % hw);
}

fn walk_index(w: Walk, ch: u32, c: u32, hw: u32) -> u32 {
    return (w.b * c + ch) * hw + w.s;
}

fn walk_next(w: ptr<function, Walk>, hw: u32) {
    (*w).s = (*w).s + (*w).ds;
    (*w).b = (*w).b + (*w).db;
    if ((*w).s >= hw) {
        (*w).s = (*w).s - hw;
        (*w).b = (*w).b + 1u;
    }
}

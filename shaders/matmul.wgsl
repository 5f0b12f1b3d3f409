// Matmul family: one strided GEMM serves the three products of a Linear layer, plus its bias gradient.
//
//   C[M,N] = A·Bᵀ  (+ bias[N] broadcast over rows) (+ the old C when accumulating)
//
// with A seen as [M,K] and B as [N,K] through element strides, so one kernel covers every transpose:
//   A[i,k] = a[i * a_rs + k * a_ks]        B[j,k] = b[j * b_cs + k * b_ks]
// (NT, linear forward: a_rs = K, a_ks = 1, b_cs = K, b_ks = 1; NN: b_cs = 1, b_ks = N; TN: a_rs = 1, a_ks = M).
//
// Why it looks like this (measured on lavapipe, Mesa 22.3, where a workgroup runs as 8-lane SIMD):
// every storage-buffer load from an address that is not a compile-time constant is emitted as a loop
// over the 8 lanes with a bounds check and a variable-index insert per component, ~20-25 cycles per
// loaded float, while an 8-wide FMA costs about one. Loads dominate (a plain register-blocked kernel
// spends 97% of its time in them; workgroup memory is no cheaper), so the kernel loads as little as
// possible per FMA:
// - a workgroup is exactly one subgroup of 8 lanes and computes a 64×64 tile of C (128×64 in the
//   `_tall` entry point);
// - each lane owns 8 columns and all rows of the tile (512 accumulators per 64 rows); it loads B for
//   its own columns but only 1 row in 8 of A: rows are shared by `subgroupBroadcast`, an extract and
//   a splat instead of a load. Per 4 k a lane loads 32 + 32 floats for 2048 FMAs (64 + 32 for 4096
//   in the tall tile), each value loaded once per workgroup;
// - vec4 loads gain nothing over scalar ones (the cost is per float), so the bindings are plain f32
//   arrays and any shape and stride works; edges clamp the indices (no branches in the k-loop) and
//   zero A past K;
// - the k-loop body must be straight-line code: loops over accumulator arrays are not unrolled by the
//   driver (2.7x slower), so the unrolling is spelled out through small by-value helpers. The
//   epilogue is the opposite: 512 unrolled stores took 40 s to compile, so it stores through
//   rotations inside two small loops.
// The variants tried and their speeds are listed in benches/matmul.rs.
// Where the subgroup is not exactly the 8 lanes (other adapters) a portable path computes the same
// tile with plain dot products: correct everywhere, fast only on the software adapter. The module
// needs the adapter's subgroup feature (wgpu::Features::SUBGROUP), which lavapipe has.

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    a_rs: u32, // A row stride (elements)
    a_ks: u32, // A k stride
    b_cs: u32, // B column stride (B's rows are C's columns)
    b_ks: u32, // B k stride
    flags: u32, // FLAG_BIAS | FLAG_ACCUMULATE | FLAG_PORTABLE
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
// matmul_forward: A, B, bias (read only with FLAG_BIAS), C. matmul_backward_bias: dY in `a`, db in `b`.
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// The tile shape is spelled out in the helpers below (8 row groups × 8 rows × 8 columns per lane per
// 64-row block); these name it for the index arithmetic and must match src/ops/matmul.rs.
const LANES: u32 = 8u; // invocations per workgroup = the subgroup size of the fast path
const GROUP_ROWS: u32 = 8u; // rows per broadcast group: one loaded by each lane
const TILE_M: u32 = 64u; // rows of C per workgroup (8 groups)
const LANE_COLS: u32 = 8u; // columns of C per lane
const TILE_N: u32 = 64u; // columns of C per workgroup
const FLAG_BIAS: u32 = 1u;
const FLAG_ACCUMULATE: u32 = 2u;
const FLAG_PORTABLE: u32 = 4u; // take the no-subgroup path even where the fast one works (for tests)

// One row of accumulators: a lane's 8 columns.
struct Row {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

// B at a lane's 8 columns for the 4 k of one step.
struct BStep {
    k0: Row,
    k1: Row,
    k2: Row,
    k3: Row,
}

// Accumulators of one 8-row group.
struct Rows8 {
    r0: Row,
    r1: Row,
    r2: Row,
    r3: Row,
    r4: Row,
    r5: Row,
    r6: Row,
    r7: Row,
}

// Element offsets of the 4 k of one step (clamped to K - 1) and which of them are real.
struct KStep {
    a: vec4<u32>,
    b: vec4<u32>,
    live: vec4<bool>,
}

fn k_step(k0: u32) -> KStep {
    let kv = vec4(k0) + vec4(0u, 1u, 2u, 3u);
    let kc = min(kv, vec4(p.k - 1u));
    return KStep(kc * p.a_ks, kc * p.b_ks, kv < vec4(p.k));
}

// A[row, k0..k0+4] for the row at element offset `ro`; zero past K so the clamped duplicates add nothing.
fn load_a(ro: u32, ks: KStep) -> vec4<f32> {
    let v = vec4(a[ro + ks.a.x], a[ro + ks.a.y], a[ro + ks.a.z], a[ro + ks.a.w]);
    return select(vec4(0.0), v, ks.live);
}

// B[cols, k] for the lane's 8 columns at one k (element offset `kb`).
fn load_b_row(cols: Offsets8, kb: u32) -> Row {
    let lo = vec4(b[cols.lo.x + kb], b[cols.lo.y + kb], b[cols.lo.z + kb], b[cols.lo.w + kb]);
    let hi = vec4(b[cols.hi.x + kb], b[cols.hi.y + kb], b[cols.hi.z + kb], b[cols.hi.w + kb]);
    return Row(lo, hi);
}

fn load_b(cols: Offsets8, ks: KStep) -> BStep {
    return BStep(load_b_row(cols, ks.b.x), load_b_row(cols, ks.b.y), load_b_row(cols, ks.b.z), load_b_row(cols, ks.b.w));
}

// acc += A[row, k0..k0+4] · B[cols, k0..k0+4]ᵀ for one row, `av` holding the row's 4 A values.
fn row_step(acc: Row, av: vec4<f32>, bs: BStep) -> Row {
    var r = acc;
    r.lo = fma(vec4(av.x), bs.k0.lo, r.lo);
    r.hi = fma(vec4(av.x), bs.k0.hi, r.hi);
    r.lo = fma(vec4(av.y), bs.k1.lo, r.lo);
    r.hi = fma(vec4(av.y), bs.k1.hi, r.hi);
    r.lo = fma(vec4(av.z), bs.k2.lo, r.lo);
    r.hi = fma(vec4(av.z), bs.k2.hi, r.hi);
    r.lo = fma(vec4(av.w), bs.k3.lo, r.lo);
    r.hi = fma(vec4(av.w), bs.k3.hi, r.hi);
    return r;
}

// One 8-row group, fast path: lane l loaded row l of the group into `mine`; broadcasting it from
// lane l hands every lane that row's A values.
fn group_step(acc: Rows8, mine: vec4<f32>, bs: BStep) -> Rows8 {
    return Rows8(
        row_step(acc.r0, subgroupBroadcast(mine, 0u), bs),
        row_step(acc.r1, subgroupBroadcast(mine, 1u), bs),
        row_step(acc.r2, subgroupBroadcast(mine, 2u), bs),
        row_step(acc.r3, subgroupBroadcast(mine, 3u), bs),
        row_step(acc.r4, subgroupBroadcast(mine, 4u), bs),
        row_step(acc.r5, subgroupBroadcast(mine, 5u), bs),
        row_step(acc.r6, subgroupBroadcast(mine, 6u), bs),
        row_step(acc.r7, subgroupBroadcast(mine, 7u), bs),
    );
}

// 64 rows of accumulators: 8 groups of 8.
struct Block {
    g0: Rows8,
    g1: Rows8,
    g2: Rows8,
    g3: Rows8,
    g4: Rows8,
    g5: Rows8,
    g6: Rows8,
    g7: Rows8,
}

// Eight element offsets: A offsets of a lane's row in each group of a block (row0 + 8g + lane), or B
// offsets of a lane's 8 columns.
struct Offsets8 {
    lo: vec4<u32>,
    hi: vec4<u32>,
}

// Rows clamped to M - 1, so edge tiles read valid rows whose results are then not stored.
fn block_rows(row0: u32, lane: u32) -> Offsets8 {
    let r = vec4(row0 + lane) + vec4(0u, 1u, 2u, 3u) * GROUP_ROWS;
    let last = vec4(p.m - 1u);
    return Offsets8(min(r, last) * p.a_rs, min(r + vec4(4u * GROUP_ROWS), last) * p.a_rs);
}

fn block_step(acc: Block, rows: Offsets8, ks: KStep, bs: BStep) -> Block {
    return Block(
        group_step(acc.g0, load_a(rows.lo.x, ks), bs),
        group_step(acc.g1, load_a(rows.lo.y, ks), bs),
        group_step(acc.g2, load_a(rows.lo.z, ks), bs),
        group_step(acc.g3, load_a(rows.lo.w, ks), bs),
        group_step(acc.g4, load_a(rows.hi.x, ks), bs),
        group_step(acc.g5, load_a(rows.hi.y, ks), bs),
        group_step(acc.g6, load_a(rows.hi.z, ks), bs),
        group_step(acc.g7, load_a(rows.hi.w, ks), bs),
    );
}

// Writes one row of the lane's 8 columns starting at `col`, adding bias / the old C as flagged.
fn store_row(v: Row, row: u32, col: u32, brow: Row) {
    if (row >= p.m) {
        return;
    }
    let lo = v.lo + brow.lo;
    let hi = v.hi + brow.hi;
    let base = row * p.n + col;
    put(base, col, lo.x);
    put(base + 1u, col + 1u, lo.y);
    put(base + 2u, col + 2u, lo.z);
    put(base + 3u, col + 3u, lo.w);
    put(base + 4u, col + 4u, hi.x);
    put(base + 5u, col + 5u, hi.y);
    put(base + 6u, col + 6u, hi.z);
    put(base + 7u, col + 7u, hi.w);
}

fn put(i: u32, col: u32, x: f32) {
    if (col >= p.n) {
        return;
    }
    if ((p.flags & FLAG_ACCUMULATE) != 0u) {
        c[i] = c[i] + x;
    } else {
        c[i] = x;
    }
}

// Stores the block row by row through rotations inside two small loops, so the driver compiles 8
// stores instead of 512 (unrolled, the epilogue alone took ~40 s to compile with accumulation).
fn store_block(acc: Block, row0: u32, col: u32, brow: Row) {
    var blk = acc;
    var row = row0;
    for (var q = 0u; q < TILE_M / GROUP_ROWS; q++) {
        var g = blk.g0;
        blk = Block(blk.g1, blk.g2, blk.g3, blk.g4, blk.g5, blk.g6, blk.g7, blk.g0);
        for (var r = 0u; r < GROUP_ROWS; r++) {
            store_row(g.r0, row, col, brow);
            g = Rows8(g.r1, g.r2, g.r3, g.r4, g.r5, g.r6, g.r7, g.r0);
            row += 1u;
        }
    }
}

fn bias_at(col: u32) -> f32 {
    return bias[min(col, p.n - 1u)];
}

// The bias of the lane's 8 columns, or zeros without FLAG_BIAS.
fn bias_row(col: u32) -> Row {
    if ((p.flags & FLAG_BIAS) == 0u) {
        return Row(vec4(0.0), vec4(0.0));
    }
    return Row(
        vec4(bias_at(col), bias_at(col + 1u), bias_at(col + 2u), bias_at(col + 3u)),
        vec4(bias_at(col + 4u), bias_at(col + 5u), bias_at(col + 6u), bias_at(col + 7u)),
    );
}

// B offsets of the lane's 8 columns from `col`, clamped like the rows.
fn col_offsets(col: u32) -> Offsets8 {
    let cv = vec4(col) + vec4(0u, 1u, 2u, 3u);
    let last = vec4(p.n - 1u);
    return Offsets8(min(cv, last) * p.b_cs, min(cv + vec4(4u), last) * p.b_cs);
}

// Portable path, taken where the subgroup is not exactly the workgroup's 8 lanes: the same outputs
// (lane l: rows row0 .. row0 + rows, columns col .. col + 8) as plain dot products. The k order and
// the FMAs are those of the fast path, so both give bit-identical results. Kept small on purpose:
// lavapipe cannot fold the subgroup-size test and compiles both paths.
fn portable(row0: u32, rows: u32, col: u32) {
    for (var i = 0u; i < rows * LANE_COLS; i++) {
        let row = row0 + i / LANE_COLS;
        let cj = col + i % LANE_COLS;
        if (row < p.m && cj < p.n) {
            var s = 0.0;
            for (var k = 0u; k < p.k; k++) {
                s = fma(a[row * p.a_rs + k * p.a_ks], b[cj * p.b_cs + k * p.b_ks], s);
            }
            put(row * p.n + cj, cj, s + select(0.0, bias[cj], (p.flags & FLAG_BIAS) != 0u));
        }
    }
}

fn use_fast(sg_size: u32) -> bool {
    // The broadcast path needs the workgroup to be exactly one subgroup; the choice is uniform.
    return sg_size == LANES && (p.flags & FLAG_PORTABLE) == 0u;
}

// C = A·Bᵀ over strided views (see the top of the file). Workgroup (x, y) computes C's 64×64 tile at
// rows 64y, columns 64x; lane l owns columns 64x + 8l .. 8l + 8 of all 64 rows.
@compute @workgroup_size(8)
fn matmul_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_size) sg_size: u32,
) {
    let row0 = wid.y * TILE_M;
    if (!use_fast(sg_size)) {
        portable(row0, TILE_M, wid.x * TILE_N + li * LANE_COLS);
        return;
    }
    let col = wid.x * TILE_N + sg_lane * LANE_COLS;
    let cols = col_offsets(col);
    let rows = block_rows(row0, sg_lane);
    var acc: Block;
    for (var s = 0u; s < (p.k + 3u) / 4u; s++) {
        let ks = k_step(s * 4u);
        acc = block_step(acc, rows, ks, load_b(cols, ks));
    }
    store_block(acc, row0, col, bias_row(col));
}

// The same with two 64-row blocks (a 128×64 tile): 25% fewer loads per FMA and 15-25% faster on
// large products, at twice the compile time (~4 s) and coarser edges; the host picks it for large M.
@compute @workgroup_size(8)
fn matmul_forward_tall(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_size) sg_size: u32,
) {
    let row0 = wid.y * (2u * TILE_M);
    if (!use_fast(sg_size)) {
        portable(row0, 2u * TILE_M, wid.x * TILE_N + li * LANE_COLS);
        return;
    }
    let col = wid.x * TILE_N + sg_lane * LANE_COLS;
    let cols = col_offsets(col);
    let rows0 = block_rows(row0, sg_lane);
    let rows1 = block_rows(row0 + TILE_M, sg_lane);
    var acc0: Block;
    var acc1: Block;
    for (var s = 0u; s < (p.k + 3u) / 4u; s++) {
        let ks = k_step(s * 4u);
        let bs = load_b(cols, ks);
        acc0 = block_step(acc0, rows0, ks, bs);
        acc1 = block_step(acc1, rows1, ks, bs);
    }
    let brow = bias_row(col);
    store_block(acc0, row0, col, brow);
    store_block(acc1, row0 + TILE_M, col, brow);
}

// db[j] (+)= Σ_i dY[i, j] over i in order: one invocation per column, deterministic. Reads dY
// [M, N] from binding 1 (`a`) and writes db [N] to binding 2 (`b`); uses m, n and FLAG_ACCUMULATE.
@compute @workgroup_size(64)
fn matmul_backward_bias(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let j = linear_id(wid, nwg, li, 64u);
    if (j >= p.n) {
        return;
    }
    var s = 0.0;
    for (var i = 0u; i < p.m; i++) {
        s += a[i * p.n + j];
    }
    if ((p.flags & FLAG_ACCUMULATE) != 0u) {
        s += b[j];
    }
    b[j] = s;
}

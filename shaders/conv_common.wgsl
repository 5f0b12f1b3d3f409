// 2-D convolution as implicit GEMMs (no im2col buffer). Layouts are PyTorch's: activations NCHW,
// weights [Cout, Cin, k, k]. Transposed convolution reuses these entries (see ops/conv_transpose.rs).
// This file holds what the passes share; each pass (conv_forward, conv_backward_input,
// conv_backward_weight .wgsl) is its own module, compiled after it.
//
// Why the kernels look like this (lavapipe, Mesa 22.3, 8-lane SIMD per subgroup): a storage load at a
// non-constant address runs a loop over the lanes and costs ~100 times an 8-wide FMA, so everything
// is arranged to load as little as possible per FMA:
//  - a workgroup is one subgroup of 8 lanes and computes CH = 32 channels of an output tile; each
//    lane owns ROWS x 4 pixels (one vec4 per row) and all 32 channels, i.e. 32 x ROWS accumulators;
//  - the 32 weights of a tap are loaded once per workgroup, 4 per lane, and handed to every lane by
//    subgroupBroadcast (an extract and a splat, not a load);
//  - consecutive taps kw, kw + stride of one row see the same pixels shifted by one column, so after
//    the first tap of each stride phase a row costs one new load instead of four;
//  - accumulators are by-value structs updated by small helpers: loops over an accumulator array
//    are not unrolled by the driver and put the whole tile in memory (5x slower, measured);
//  - the epilogue stores through rotations inside small loops to keep compile times short.
// Where the subgroup is not the workgroup's 8 lanes a portable path computes the same outputs with
// the same FMAs in the same order (bit-identical results), slowly.

struct Params {
    batch: u32,
    cin: u32,
    cout: u32,
    h: u32, // conv input height
    w: u32,
    oh: u32, // conv output height
    ow: u32,
    k: u32,
    stride: u32,
    pad: u32,
    flags: u32, // HAS_BIAS | ACCUMULATE | PORTABLE
    n_tiles: u32, // lanes along the pixel axis (one pixel tile each)
    m_tiles: u32, // channel blocks of CH
    ctiles: u32, // 4-column tiles per row
    aux0: u32,
    aux1: u32,
}

const HAS_BIAS: u32 = 1u;
const ACCUMULATE: u32 = 2u;
const PORTABLE: u32 = 4u; // take the no-subgroup path even where the fast one works (for tests)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;

// Tile shape; must match src/ops/conv.rs.
const LANES: u32 = 8u;
const CH: u32 = 32u; // channels per workgroup: 4 groups of 8
const ROWS: u32 = 4u; // rows of 4 columns per lane

// A lane's ROWS x 4 pixels of one channel.
struct Px {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

// Eight channels (one group) of a lane's pixels.
struct Ch8 {
    c0: Px,
    c1: Px,
    c2: Px,
    c3: Px,
    c4: Px,
    c5: Px,
    c6: Px,
    c7: Px,
}

// All CH channels: group j holds channels base + 8j .. base + 8j + 7.
struct Acc {
    g0: Ch8,
    g1: Ch8,
    g2: Ch8,
    g3: Ch8,
}

fn px_fma(a: Px, w: f32, x: Px) -> Px {
    let wv = vec4<f32>(w);
    return Px(fma(wv, x.r0, a.r0), fma(wv, x.r1, a.r1), fma(wv, x.r2, a.r2), fma(wv, x.r3, a.r3));
}

// Lane l holds the weight of channel l of the group in `mine`.
fn ch8_fma(a: Ch8, mine: f32, x: Px) -> Ch8 {
    return Ch8(
        px_fma(a.c0, subgroupBroadcast(mine, 0u), x),
        px_fma(a.c1, subgroupBroadcast(mine, 1u), x),
        px_fma(a.c2, subgroupBroadcast(mine, 2u), x),
        px_fma(a.c3, subgroupBroadcast(mine, 3u), x),
        px_fma(a.c4, subgroupBroadcast(mine, 4u), x),
        px_fma(a.c5, subgroupBroadcast(mine, 5u), x),
        px_fma(a.c6, subgroupBroadcast(mine, 6u), x),
        px_fma(a.c7, subgroupBroadcast(mine, 7u), x),
    );
}

// `w` holds this lane's weight in each of the 4 groups.
fn acc_fma(a: Acc, w: vec4<f32>, x: Px) -> Acc {
    return Acc(ch8_fma(a.g0, w.x, x), ch8_fma(a.g1, w.y, x), ch8_fma(a.g2, w.z, x), ch8_fma(a.g3, w.w, x));
}

// Weights b2[c * cstride + off] of this lane's 4 channels (element offsets `c` already clamped).
fn w_lane(c: vec4<u32>, off: u32) -> vec4<f32> {
    return vec4<f32>(b2[c.x + off], b2[c.y + off], b2[c.z + off], b2[c.w + off]);
}

// Element offsets c * cstride of the lane's channels base + lane + 8j, clamped to the last channel
// (edge blocks compute duplicates that are never stored).
fn lane_channels(base: u32, lane: u32, count: u32, cstride: u32) -> vec4<u32> {
    let c = vec4<u32>(base + lane) + vec4<u32>(0u, 8u, 16u, 24u);
    return min(c, vec4<u32>(count - 1u)) * cstride;
}

// One value of a row of b1 (`width` values at `base`), zero outside the row or for invalid rows.
fn b1_at(base: u32, col: i32, width: u32, row_ok: bool) -> f32 {
    let ok = row_ok && col >= 0 && col < i32(width);
    return select(0.0, b1[select(0u, base + u32(col), ok)], ok);
}

// Row offsets into b1 for a lane's ROWS rows, and which of them exist.
struct RowSet {
    base: vec4<u32>,
    ok: vec4<bool>,
}

// Columns c0, c0 + step, c0 + 2 step, c0 + 3 step of a row, and of each row of a set.
fn row4(base: u32, ok: bool, c0: i32, step: i32, width: u32) -> vec4<f32> {
    return vec4<f32>(b1_at(base, c0, width, ok), b1_at(base, c0 + step, width, ok),
                     b1_at(base, c0 + 2 * step, width, ok), b1_at(base, c0 + 3 * step, width, ok));
}

fn gather(rs: RowSet, c0: i32, step: i32, width: u32) -> Px {
    return Px(row4(rs.base.x, rs.ok.x, c0, step, width), row4(rs.base.y, rs.ok.y, c0, step, width),
              row4(rs.base.z, rs.ok.z, c0, step, width), row4(rs.base.w, rs.ok.w, c0, step, width));
}

// Each row shifted one column left, with the value at column c entering on the right.
fn push_right(x: Px, rs: RowSet, c: i32, width: u32) -> Px {
    return Px(vec4<f32>(x.r0.yzw, b1_at(rs.base.x, c, width, rs.ok.x)),
              vec4<f32>(x.r1.yzw, b1_at(rs.base.y, c, width, rs.ok.y)),
              vec4<f32>(x.r2.yzw, b1_at(rs.base.z, c, width, rs.ok.z)),
              vec4<f32>(x.r3.yzw, b1_at(rs.base.w, c, width, rs.ok.w)));
}

// Each row shifted one column right, with the value at column c entering on the left.
fn push_left(x: Px, rs: RowSet, c: i32, width: u32) -> Px {
    return Px(vec4<f32>(b1_at(rs.base.x, c, width, rs.ok.x), x.r0.xyz),
              vec4<f32>(b1_at(rs.base.y, c, width, rs.ok.y), x.r1.xyz),
              vec4<f32>(b1_at(rs.base.z, c, width, rs.ok.z), x.r2.xyz),
              vec4<f32>(b1_at(rs.base.w, c, width, rs.ok.w), x.r3.xyz));
}

fn use_fast(sg_size: u32) -> bool {
    return sg_size == LANES && (p.flags & PORTABLE) == 0u;
}

// Writes v (+ old value when accumulating) at b4[i].
fn put(i: u32, v: f32) {
    if ((p.flags & ACCUMULATE) != 0u) {
        b4[i] = b4[i] + v;
    } else {
        b4[i] = v;
    }
}

// Where a lane's ROWS x 4 pixels go in b4: pixel (row i, column j) of channel c is at
// row[i] + c * plane + col0 + j * step, stored if row_ok[i], col0 + j * step < width, c < channels.
struct Out4 {
    row: vec4<u32>,
    row_ok: vec4<bool>,
    col0: u32,
    step: u32,
    width: u32,
    plane: u32,
    channels: u32,
}

// Stores one channel's pixels (+ bias[c] with HAS_BIAS).
fn store_px(v: Px, c: u32, o: Out4) {
    if (c >= o.channels) {
        return;
    }
    var bias = 0.0;
    if ((p.flags & HAS_BIAS) != 0u) {
        bias = b3[c];
    }
    var r = v;
    for (var i = 0u; i < ROWS; i++) {
        if (o.row_ok[i]) {
            let q = r.r0 + vec4<f32>(bias);
            for (var j = 0u; j < 4u; j++) {
                let col = o.col0 + j * o.step;
                if (col < o.width) {
                    put(o.row[i] + c * o.plane + col, q[j]);
                }
            }
        }
        r = Px(r.r1, r.r2, r.r3, r.r0);
    }
}

// Stores all CH channels through rotations (8 stores compiled instead of 256).
fn store_acc(acc: Acc, c0: u32, o: Out4) {
    var a = acc;
    for (var j = 0u; j < 4u; j++) {
        var g = a.g0;
        a = Acc(a.g1, a.g2, a.g3, a.g0);
        for (var l = 0u; l < 8u; l++) {
            store_px(g.c0, c0 + 8u * j + l, o);
            g = Ch8(g.c1, g.c2, g.c3, g.c4, g.c5, g.c6, g.c7, g.c0);
        }
    }
}

// 2-D convolution as implicit GEMMs (no im2col buffer). Layouts are PyTorch's: activations NCHW,
// weights [Cout, Cin, k, k]. Transposed convolution reuses these entries (see ops/conv_transpose.rs).
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

// ---------------------------------------------------------------------------------------------
// conv2d_forward: Y[n, co, oh, ow] = sum over (ci, kh, kw) of W[co, ci, kh, kw] * X[n, ci, oh*s - p + kh,
// ow*s - p + kw] (+ bias[co]). GEMM M = Cout, N = batch*OH*OW, K = Cin*k*k.
// Bindings: x, w, bias (read only with HAS_BIAS), y. Workgroup (m, n): channels 32m.., lanes own the
// pixel tiles 8n + lane: 4 columns of ROWS consecutive flattened (image, output row) rows.

// A lane's pixel tile: first flattened row, first column, and the per-row input geometry.
struct FwdTile {
    row0: u32,
    ow0: u32,
    col0: i32, // input column of the tile's first pixel at tap 0
    xbase: vec4<u32>, // offset of X[n, 0, 0, 0] for each row
    ih0: vec4<i32>, // input row at tap 0
    row_ok: vec4<bool>,
}

fn fwd_tile(nt: u32) -> FwdTile {
    let row0 = (nt / p.ctiles) * ROWS;
    let ow0 = (nt % p.ctiles) * 4u;
    let rows = vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u);
    let s = i32(p.stride);
    return FwdTile(
        row0,
        ow0,
        i32(ow0) * s - i32(p.pad),
        (rows / p.oh) * (p.cin * p.h * p.w),
        vec4<i32>(rows % p.oh) * s - i32(p.pad),
        (rows < vec4<u32>(p.batch * p.oh)) & vec4<bool>(nt < p.n_tiles),
    );
}

// Rows of X for input channel ci at kernel row kh.
fn fwd_rows(t: FwdTile, ci: u32, kh: u32) -> RowSet {
    let ih = t.ih0 + i32(kh);
    let ok = t.row_ok & (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(p.h)));
    let base = t.xbase + ci * p.h * p.w + vec4<u32>(select(vec4<i32>(0), ih, ok)) * p.w;
    return RowSet(base, ok);
}

fn fwd_out(t: FwdTile) -> Out4 {
    let rows = vec4<u32>(t.row0) + vec4<u32>(0u, 1u, 2u, 3u);
    let row = (rows / p.oh) * p.cout * p.oh * p.ow + (rows % p.oh) * p.ow;
    return Out4(row, t.row_ok, t.ow0, 1u, p.ow, p.oh * p.ow, p.cout);
}

// Portable path: one channel's tile as plain sums in the fast path's order.
fn fwd_portable_channel(co: u32, t: FwdTile) -> Px {
    let cw = min(co, p.cout - 1u) * p.cin * p.k * p.k;
    var acc = Px(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var ci = 0u; ci < p.cin; ci++) {
        for (var kh = 0u; kh < p.k; kh++) {
            let rp = fwd_rows(t, ci, kh);
            let woff = cw + (ci * p.k + kh) * p.k;
            for (var ph = 0u; ph < min(p.stride, p.k); ph++) {
                for (var kw = ph; kw < p.k; kw += p.stride) {
                    acc = px_fma(acc, b2[woff + kw], gather(rp, t.col0 + i32(kw), i32(p.stride), p.w));
                }
            }
        }
    }
    return acc;
}

@compute @workgroup_size(8)
fn conv2d_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32,
                  @builtin(subgroup_size) sg_size: u32) {
    let g = wid.y * nwg.x + wid.x;
    let groups_n = (p.n_tiles + LANES - 1u) / LANES;
    let m = g / groups_n;
    if (m >= p.m_tiles) {
        return;
    }
    let co0 = m * CH;
    if (!use_fast(sg_size)) {
        let t = fwd_tile((g % groups_n) * LANES + li);
        for (var c = 0u; c < CH; c++) {
            store_px(fwd_portable_channel(co0 + c, t), co0 + c, fwd_out(t));
        }
        return;
    }
    // Out-of-range lanes keep running (with no valid rows) so that every broadcast has its source.
    let t = fwd_tile((g % groups_n) * LANES + lane);
    let kk = p.k * p.k;
    let wc = lane_channels(co0, lane, p.cout, p.cin * kk);
    let s = i32(p.stride);
    var acc: Acc;
    for (var ci = 0u; ci < p.cin; ci++) {
        for (var kh = 0u; kh < p.k; kh++) {
            let rp = fwd_rows(t, ci, kh);
            let woff = ci * kk + kh * p.k;
            for (var ph = 0u; ph < min(p.stride, p.k); ph++) {
                var x = gather(rp, t.col0 + i32(ph), s, p.w);
                acc = acc_fma(acc, w_lane(wc, woff + ph), x);
                for (var kw = ph + p.stride; kw < p.k; kw += p.stride) {
                    x = push_right(x, rp, t.col0 + i32(kw) + 3 * s, p.w);
                    acc = acc_fma(acc, w_lane(wc, woff + kw), x);
                }
            }
        }
    }
    store_acc(acc, co0, fwd_out(t));
}

// ---------------------------------------------------------------------------------------------
// conv2d_backward_input: dX[n, ci, ih, iw] = sum over (co, kh, kw) of W[co, ci, kh, kw] * dY[n, co, oh, ow]
// where ih = oh*s - p + kh, iw = ow*s - p + kw (+ bias[ci], used by transposed convolution).
// GEMM M = Cin, N = batch*H*W, K = Cout*k*k of which only taps with (ih + p - kh) divisible by s
// contribute. Pixels are split into the s*s classes (ih mod s, iw mod s): within a class the valid
// taps are the same (kh = (ih + p) mod s + j*s), so a lane's tile is ROWS x 4 pixels of one class
// (rows and columns s apart) and its dY values for tap kw + s are those of tap kw moved one column.
// Bindings: dy, w, bias (read only with HAS_BIAS), dx. Tiles are numbered class-major with
// aux1 = tiles per class (a multiple of 8) so that the lanes of a workgroup share the class and hence
// the taps and weights; aux0 = row tiles per image.

struct BwdTile {
    n: u32,
    ph: u32, // pixel class: ih mod s, iw mod s
    pw: u32,
    sr0: u32, // first row and column of the tile in the class's subsampled grid
    sc0: u32,
    row_ok: vec4<bool>,
}

fn bwd_tile(nt: u32) -> BwdTile {
    let cls = nt / p.aux1;
    let idx = nt % p.aux1;
    let ct = idx % p.ctiles;
    let q = idx / p.ctiles;
    let ph = cls / p.stride;
    let sr0 = (q % p.aux0) * ROWS;
    let ih = vec4<u32>(ph) + p.stride * (vec4<u32>(sr0) + vec4<u32>(0u, 1u, 2u, 3u));
    let valid = idx < p.batch * p.aux0 * p.ctiles && nt < p.n_tiles;
    return BwdTile(q / p.aux0, ph, cls % p.stride, sr0, ct * 4u, (ih < vec4<u32>(p.h)) & vec4<bool>(valid));
}

// dY rows of output channel co seen by the tile's rows at kernel row kh.
fn bwd_rows(t: BwdTile, co: u32, kh: u32) -> RowSet {
    let oh = (i32(t.ph + p.pad) - i32(kh)) / i32(p.stride) + vec4<i32>(vec4<u32>(t.sr0) + vec4<u32>(0u, 1u, 2u, 3u));
    let ok = t.row_ok & (oh >= vec4<i32>(0)) & (oh < vec4<i32>(i32(p.oh)));
    let base = ((t.n * p.cout + co) * p.oh + vec4<u32>(select(vec4<i32>(0), oh, ok))) * p.ow;
    return RowSet(base, ok);
}

// dY column of the tile's first column at kernel column kw.
fn bwd_col(t: BwdTile, kw: u32) -> i32 {
    return (i32(t.pw + p.pad) - i32(kw)) / i32(p.stride) + i32(t.sc0);
}

fn bwd_out(t: BwdTile) -> Out4 {
    let ih = vec4<u32>(t.ph) + p.stride * (vec4<u32>(t.sr0) + vec4<u32>(0u, 1u, 2u, 3u));
    let row = t.n * p.cin * p.h * p.w + select(vec4<u32>(0u), ih, t.row_ok) * p.w;
    return Out4(row, t.row_ok, t.pw + p.stride * t.sc0, p.stride, p.w, p.h * p.w, p.cin);
}

fn bwd_portable_channel(ci: u32, t: BwdTile) -> Px {
    let kk = p.k * p.k;
    let cw = min(ci, p.cin - 1u) * kk;
    var acc = Px(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var co = 0u; co < p.cout; co++) {
        for (var kh = (t.ph + p.pad) % p.stride; kh < p.k; kh += p.stride) {
            let rs = bwd_rows(t, co, kh);
            let woff = co * p.cin * kk + cw + kh * p.k;
            for (var kw = (t.pw + p.pad) % p.stride; kw < p.k; kw += p.stride) {
                acc = px_fma(acc, b2[woff + kw], gather(rs, bwd_col(t, kw), 1, p.ow));
            }
        }
    }
    return acc;
}

@compute @workgroup_size(8)
fn conv2d_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32,
                         @builtin(subgroup_size) sg_size: u32) {
    let g = wid.y * nwg.x + wid.x;
    let groups_n = (p.n_tiles + LANES - 1u) / LANES;
    let m = g / groups_n;
    if (m >= p.m_tiles) {
        return;
    }
    let ci0 = m * CH;
    if (!use_fast(sg_size)) {
        let t = bwd_tile((g % groups_n) * LANES + li);
        for (var c = 0u; c < CH; c++) {
            store_px(bwd_portable_channel(ci0 + c, t), ci0 + c, bwd_out(t));
        }
        return;
    }
    let t = bwd_tile((g % groups_n) * LANES + lane);
    let kk = p.k * p.k;
    let wc = lane_channels(ci0, lane, p.cin, kk);
    let kw0 = (t.pw + p.pad) % p.stride;
    var acc: Acc;
    for (var co = 0u; co < p.cout; co++) {
        for (var kh = (t.ph + p.pad) % p.stride; kh < p.k; kh += p.stride) {
            let rs = bwd_rows(t, co, kh);
            let woff = co * p.cin * kk + kh * p.k;
            var c0 = bwd_col(t, kw0);
            var x = gather(rs, c0, 1, p.ow);
            acc = acc_fma(acc, w_lane(wc, woff + kw0), x);
            for (var kw = kw0 + p.stride; kw < p.k; kw += p.stride) {
                // Tap kw reads dY one column to the left of tap kw - s.
                c0 -= 1;
                x = push_left(x, rs, c0, p.ow);
                acc = acc_fma(acc, w_lane(wc, woff + kw), x);
            }
        }
    }
    store_acc(acc, ci0, bwd_out(t));
}

// ---------------------------------------------------------------------------------------------
// conv2d_backward_weight: dW[co, ci, kh, kw] = sum over (n, oh, ow) of dY[n, co, oh, ow] * X[n, ci, ih, iw]
// with ih = oh*s - p + kh, iw = ow*s - p + kw. GEMM M = Cout, N = Cin*k*k, K = batch*OH*OW.
// Bindings: x, dy, dw. The same register tile as the other two, with roles exchanged: the 32 channels
// are output channels whose dY values are broadcast, and a lane's "pixels" are 4 (ci, kh) rows x 4
// kernel columns kw0..kw0+3. The K loop walks output pixels along rows, where the next pixel's X
// values are the previous ones moved by s columns (1 or 2 new loads for s = 1, 2).
// M*N is small and K large, so K is split: a workgroup is 8 subgroups, SPLITS (aux0) of them per tile
// group, subgroup j of a group taking the (image, output row) rows r = j mod SPLITS. The partial sums
// meet in workgroup memory and are added in split order: deterministic, no atomics.
// Tile numbering: ctiles = kernel-column tiles (ceil(k/4)), n_tiles = ceil(Cin*k/4) * ctiles lanes.

const BW_WG: u32 = 64u;
var<workgroup> red: array<f32, 4096>; // one chunk of 4 channels x 16 values for each of 64 lanes

struct BwtTile {
    tr0: u32, // first (ci, kh) row: tr = ci*k + kh
    kw0: u32,
    valid: bool,
}

fn bwt_tile(nt: u32) -> BwtTile {
    return BwtTile((nt / p.ctiles) * ROWS, (nt % p.ctiles) * 4u, nt < p.n_tiles);
}

// X rows of the tile's (ci, kh) rows for image n at output row oh.
fn bwt_rows(t: BwtTile, n: u32, oh: u32) -> RowSet {
    let tr = vec4<u32>(t.tr0) + vec4<u32>(0u, 1u, 2u, 3u);
    let ih = vec4<i32>(oh * p.stride + tr % p.k) - i32(p.pad);
    let ok = (tr < vec4<u32>(p.cin * p.k)) & (ih >= vec4<i32>(0)) & (ih < vec4<i32>(i32(p.h))) & vec4<bool>(t.valid);
    let base = ((n * p.cin + tr / p.k) * p.h + vec4<u32>(select(vec4<i32>(0), ih, ok))) * p.w;
    return RowSet(base, ok);
}

// Output channel offsets dY[0, c, 0, 0] of this lane's 4 channels (clamped).
fn bwt_dy_channels(co0: u32, lane: u32) -> vec4<u32> {
    return lane_channels(co0, lane, p.cout, p.oh * p.ow);
}

// Adds one output row (image n, row oh) to a lane's partial sums. Along the row the X columns move
// by s, so for s <= 2 the next pixel keeps 4 - s of the previous values.
fn bwt_row(acc0: Acc, t: BwtTile, dc: vec4<u32>, n: u32, oh: u32) -> Acc {
    let rs = bwt_rows(t, n, oh);
    let dyrow = n * p.cout * p.oh * p.ow + oh * p.ow;
    let c0 = i32(t.kw0) - i32(p.pad);
    var acc = acc0;
    var x: Px;
    for (var ow = 0u; ow < p.ow; ow++) {
        let c = c0 + i32(ow * p.stride);
        if (ow == 0u || p.stride > 2u) {
            x = gather(rs, c, 1, p.w);
        } else if (p.stride == 2u) {
            x = push_right(push_right(x, rs, c + 2, p.w), rs, c + 3, p.w);
        } else {
            x = push_right(x, rs, c + 3, p.w);
        }
        acc = acc_fma(acc, w_dy(dc, dyrow + ow), x);
    }
    return acc;
}

// Partial sums of one lane over the K rows r = split, split + splits, ...
fn bwt_partial(t: BwtTile, co0: u32, lane: u32, split: u32, splits: u32) -> Acc {
    let dc = bwt_dy_channels(co0, lane);
    var acc: Acc;
    for (var r = split; r < p.batch * p.oh; r += splits) {
        acc = bwt_row(acc, t, dc, r / p.oh, r % p.oh);
    }
    return acc;
}

// dY of this lane's 4 channels at one pixel.
fn w_dy(c: vec4<u32>, off: u32) -> vec4<f32> {
    return vec4<f32>(b2[c.x + off], b2[c.y + off], b2[c.z + off], b2[c.w + off]);
}

// Writes a channel's 16 values (4 rows x 4 kw) to workgroup memory at `at`.
fn red_put(v: Px, at: u32) {
    red[at] = v.r0.x; red[at + 1u] = v.r0.y; red[at + 2u] = v.r0.z; red[at + 3u] = v.r0.w;
    red[at + 4u] = v.r1.x; red[at + 5u] = v.r1.y; red[at + 6u] = v.r1.z; red[at + 7u] = v.r1.w;
    red[at + 8u] = v.r2.x; red[at + 9u] = v.r2.y; red[at + 10u] = v.r2.z; red[at + 11u] = v.r2.w;
    red[at + 12u] = v.r3.x; red[at + 13u] = v.r3.y; red[at + 14u] = v.r3.z; red[at + 15u] = v.r3.w;
}

// Portable path: one lane's channel block without broadcasts, in the fast path's order.
fn bwt_portable(t: BwtTile, co0: u32, split: u32, splits: u32) -> Acc {
    var acc: Acc;
    for (var l = 0u; l < LANES; l++) {
        let dc = bwt_dy_channels(co0, l);
        var part: Acc;
        for (var r = split; r < p.batch * p.oh; r += splits) {
            let rs = bwt_rows(t, r / p.oh, r % p.oh);
            let dyrow = (r / p.oh) * p.cout * p.oh * p.ow + (r % p.oh) * p.ow;
            for (var ow = 0u; ow < p.ow; ow++) {
                let x = gather(rs, i32(ow * p.stride + t.kw0) - i32(p.pad), 1, p.w);
                let d = w_dy(dc, dyrow + ow);
                part.g0.c0 = px_fma(part.g0.c0, d.x, x);
                part.g1.c0 = px_fma(part.g1.c0, d.y, x);
                part.g2.c0 = px_fma(part.g2.c0, d.z, x);
                part.g3.c0 = px_fma(part.g3.c0, d.w, x);
            }
        }
        // Lane l's channels land in slot c0 of each group; rotate them into place.
        acc = Acc(acc_rot_in(acc.g0, part.g0.c0), acc_rot_in(acc.g1, part.g1.c0), acc_rot_in(acc.g2, part.g2.c0),
                  acc_rot_in(acc.g3, part.g3.c0));
    }
    return acc;
}

// Shifts a group's channels down by one, entering `v` as channel 7 (after 8 calls: channel l = call l).
fn acc_rot_in(g: Ch8, v: Px) -> Ch8 {
    return Ch8(g.c1, g.c2, g.c3, g.c4, g.c5, g.c6, g.c7, v);
}

@compute @workgroup_size(64)
fn conv2d_backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sg_lane: u32,
                          @builtin(subgroup_size) sg_size: u32) {
    let splits = p.aux0;
    let groups_per_wg = BW_WG / (LANES * splits);
    let sub = li / LANES; // subgroup index in the workgroup
    let lane = li % LANES;
    let tg = (wid.y * nwg.x + wid.x) * groups_per_wg + sub / splits; // tile group: (m, 8 lanes of n)
    let groups_n = (p.n_tiles + LANES - 1u) / LANES;
    let m = min(tg / groups_n, p.m_tiles - 1u); // padding groups repeat the last block, never stored
    let co0 = m * CH;
    let t = bwt_tile((tg % groups_n) * LANES + lane);
    var acc: Acc;
    if (use_fast(sg_size)) {
        acc = bwt_partial(t, co0, sg_lane, sub % splits, splits);
    } else {
        acc = bwt_portable(t, co0, sub % splits, splits);
    }

    // Reduce over the splits of each tile group, 4 channels at a time (16 KiB of workgroup memory).
    for (var q = 0u; q < CH / 4u; q++) {
        // Channels 4q .. 4q + 3 sit in g0.c0..c3: the accumulators rotate by 4 channels per chunk.
        red_put(acc.g0.c0, li * 64u);
        red_put(acc.g0.c1, li * 64u + 16u);
        red_put(acc.g0.c2, li * 64u + 32u);
        red_put(acc.g0.c3, li * 64u + 48u);
        acc = Acc(Ch8(acc.g0.c4, acc.g0.c5, acc.g0.c6, acc.g0.c7, acc.g1.c0, acc.g1.c1, acc.g1.c2, acc.g1.c3),
                  Ch8(acc.g1.c4, acc.g1.c5, acc.g1.c6, acc.g1.c7, acc.g2.c0, acc.g2.c1, acc.g2.c2, acc.g2.c3),
                  Ch8(acc.g2.c4, acc.g2.c5, acc.g2.c6, acc.g2.c7, acc.g3.c0, acc.g3.c1, acc.g3.c2, acc.g3.c3),
                  Ch8(acc.g3.c4, acc.g3.c5, acc.g3.c6, acc.g3.c7, acc.g0.c0, acc.g0.c1, acc.g0.c2, acc.g0.c3));
        workgroupBarrier();
        // Each lane sums 64 / splits of the chunk's values, over the splits in order.
        for (var u = 0u; u < 64u / splits; u++) {
            let o = li + BW_WG * u; // (tile group in workgroup, lane, value) of the reduced chunk
            let tgi = o / (LANES * 64u);
            let ol = (o / 64u) % LANES;
            let e = o % 64u;
            var sum = 0.0;
            for (var sp = 0u; sp < splits; sp++) {
                sum += red[((tgi * splits + sp) * LANES + ol) * 64u + e];
            }
            let tgo = (wid.y * nwg.x + wid.x) * groups_per_wg + tgi;
            let mo = tgo / groups_n;
            let to = bwt_tile((tgo % groups_n) * LANES + ol);
            let co = mo * CH + 8u * (q / 2u) + 4u * (q % 2u) + e / 16u;
            let tr = to.tr0 + (e / 4u) % 4u;
            let kw = to.kw0 + e % 4u;
            if (mo < p.m_tiles && to.valid && co < p.cout && tr < p.cin * p.k && kw < p.k) {
                put((co * p.cin * p.k + tr) * p.k + kw, sum);
            }
        }
        workgroupBarrier();
    }
}

// ---------------------------------------------------------------------------------------------
// conv2d_bias_grad: db[c] = sum over (n, h, w) of dY[n, c, h, w]. One workgroup per channel: lane l
// sums the channel's pixels l, l + 64, ... of each image in order, then a fixed tree adds the 64
// partial sums. Bindings: dy, db. Uses batch, cout (channels), h, w and ACCUMULATE.
@compute @workgroup_size(64)
fn conv2d_bias_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) li: u32) {
    let c = wid.y * nwg.x + wid.x;
    let hw = p.h * p.w;
    var s = 0.0;
    if (c < p.cout) {
        for (var n = 0u; n < p.batch; n++) {
            let base = (n * p.cout + c) * hw;
            for (var i = li; i < hw; i += BW_WG) {
                s += b1[base + i];
            }
        }
    }
    red[li] = s;
    workgroupBarrier();
    for (var step = BW_WG / 2u; step > 0u; step /= 2u) {
        if (li < step) {
            red[li] += red[li + step];
        }
        workgroupBarrier();
    }
    if (li == 0u && c < p.cout) {
        var v = red[0];
        if ((p.flags & ACCUMULATE) != 0u) {
            v += b2[c];
        }
        b2[c] = v;
    }
}

// ---------------------------------------------------------------------------------------------
// conv2d_backward_input_k4s2: the input gradient for k = 4, stride 2 (any padding) when Cin is small,
// where the 32-channel tile above would mostly compute channels that do not exist. With k = 4, s = 2
// each dX pixel receives 4 taps, from the dY rows and columns floor(i/2) and floor(i/2) - 1 of its
// block: a lane owns an 8 x 8 block of dX (rows 2*oh0 - p .. + 8, columns likewise) of one input
// channel, reads the 5 x 5 dY window (oh0 - 1 .., ow0 - 1 ..) once per output channel and applies the
// 16 weights, shared by broadcast (2 loads per lane). Bindings as conv2d_backward_input. Tiles are
// numbered channel-major with aux1 tiles per channel (a multiple of 8) so that a workgroup shares
// its channel; aux0 = row blocks, ctiles = column blocks per image.

// Eight dX columns of a row (cols 0-3, 4-7) and five dY values of a window row (cols 0-3, 4).
struct Row8 {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

struct Win5 {
    a: vec4<f32>,
    e: f32,
}

struct Block8 {
    r0: Row8,
    r1: Row8,
    r2: Row8,
    r3: Row8,
    r4: Row8,
    r5: Row8,
    r6: Row8,
    r7: Row8,
}

// One dX row from one dY window row: column j gets dy[j/2 + 1] * w[j%2] + dy[j/2] * w[j%2 + 2], where
// `w` holds the kernel row's 4 weights.
fn k4s2_row(acc: Row8, d: Win5, w: vec4<f32>) -> Row8 {
    let w01 = w.xyxy;
    let w23 = w.zwzw;
    var lo = fma(d.a.yyzz, w01, acc.lo);
    lo = fma(d.a.xxyy, w23, lo);
    var hi = fma(vec4<f32>(d.a.ww, d.e, d.e), w01, acc.hi);
    hi = fma(d.a.zzww, w23, hi);
    return Row8(lo, hi);
}

// Row i of the block takes window rows i/2 + 1 (kernel row i%2) and i/2 (kernel row i%2 + 2).
fn k4s2_block(b: Block8, d0: Win5, d1: Win5, d2: Win5, d3: Win5, d4: Win5, w: mat4x4<f32>) -> Block8 {
    return Block8(
        k4s2_row(k4s2_row(b.r0, d1, w[0]), d0, w[2]),
        k4s2_row(k4s2_row(b.r1, d1, w[1]), d0, w[3]),
        k4s2_row(k4s2_row(b.r2, d2, w[0]), d1, w[2]),
        k4s2_row(k4s2_row(b.r3, d2, w[1]), d1, w[3]),
        k4s2_row(k4s2_row(b.r4, d3, w[0]), d2, w[2]),
        k4s2_row(k4s2_row(b.r5, d3, w[1]), d2, w[3]),
        k4s2_row(k4s2_row(b.r6, d4, w[0]), d3, w[2]),
        k4s2_row(k4s2_row(b.r7, d4, w[1]), d3, w[3]),
    );
}

fn k4s2_win(base: u32, oh: i32, ow0: i32) -> Win5 {
    let ok = oh >= 0 && oh < i32(p.oh);
    let b = base + u32(select(0, oh, ok)) * p.ow;
    return Win5(vec4<f32>(b1_at(b, ow0, p.ow, ok), b1_at(b, ow0 + 1, p.ow, ok), b1_at(b, ow0 + 2, p.ow, ok),
                          b1_at(b, ow0 + 3, p.ow, ok)), b1_at(b, ow0 + 4, p.ow, ok));
}

// The 16 weights W[co, ci, .., ..] as rows of a matrix: lane l loaded elements 2l and 2l + 1.
fn k4s2_weights(mine: vec2<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(
        vec4<f32>(subgroupBroadcast(mine.x, 0u), subgroupBroadcast(mine.y, 0u), subgroupBroadcast(mine.x, 1u),
                  subgroupBroadcast(mine.y, 1u)),
        vec4<f32>(subgroupBroadcast(mine.x, 2u), subgroupBroadcast(mine.y, 2u), subgroupBroadcast(mine.x, 3u),
                  subgroupBroadcast(mine.y, 3u)),
        vec4<f32>(subgroupBroadcast(mine.x, 4u), subgroupBroadcast(mine.y, 4u), subgroupBroadcast(mine.x, 5u),
                  subgroupBroadcast(mine.y, 5u)),
        vec4<f32>(subgroupBroadcast(mine.x, 6u), subgroupBroadcast(mine.y, 6u), subgroupBroadcast(mine.x, 7u),
                  subgroupBroadcast(mine.y, 7u)),
    );
}

fn k4s2_weights_direct(at: u32) -> mat4x4<f32> {
    return mat4x4<f32>(vec4<f32>(b2[at], b2[at + 1u], b2[at + 2u], b2[at + 3u]),
                       vec4<f32>(b2[at + 4u], b2[at + 5u], b2[at + 6u], b2[at + 7u]),
                       vec4<f32>(b2[at + 8u], b2[at + 9u], b2[at + 10u], b2[at + 11u]),
                       vec4<f32>(b2[at + 12u], b2[at + 13u], b2[at + 14u], b2[at + 15u]));
}

fn k4s2_store(v: Row8, ci: u32, n: u32, ih: i32, iw0: i32, ok: bool) {
    if (!ok || ih < 0 || ih >= i32(p.h)) {
        return;
    }
    var bias = 0.0;
    if ((p.flags & HAS_BIAS) != 0u) {
        bias = b3[ci];
    }
    let row = ((n * p.cin + ci) * p.h + u32(ih)) * p.w;
    for (var c = 0u; c < 8u; c++) {
        let iw = iw0 + i32(c);
        let q = select(v.hi, v.lo, c < 4u);
        if (iw >= 0 && iw < i32(p.w)) {
            put(row + u32(iw), q[c % 4u] + bias);
        }
    }
}

@compute @workgroup_size(8)
fn conv2d_backward_input_k4s2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sg_lane: u32,
                              @builtin(subgroup_size) sg_size: u32) {
    let fast = use_fast(sg_size);
    let lane = select(li, sg_lane, fast);
    let nt = (wid.y * nwg.x + wid.x) * LANES + lane;
    let ci = nt / p.aux1;
    let idx = nt % p.aux1;
    let ok = ci < p.cin && idx < p.batch * p.aux0 * p.ctiles;
    let n = idx / (p.aux0 * p.ctiles);
    let oh0 = i32((idx / p.ctiles) % p.aux0) * 4;
    let ow0 = i32(idx % p.ctiles) * 4;
    let cic = min(ci, p.cin - 1u);
    var b: Block8;
    for (var co = 0u; co < p.cout; co++) {
        let wat = (co * p.cin + cic) * 16u;
        var w: mat4x4<f32>;
        if (fast) {
            w = k4s2_weights(vec2<f32>(b2[wat + 2u * lane], b2[wat + 2u * lane + 1u]));
        } else {
            w = k4s2_weights_direct(wat);
        }
        let base = (n * p.cout + co) * p.oh * p.ow;
        b = k4s2_block(b, k4s2_win(base, oh0 - 1, ow0 - 1), k4s2_win(base, oh0, ow0 - 1),
                       k4s2_win(base, oh0 + 1, ow0 - 1), k4s2_win(base, oh0 + 2, ow0 - 1),
                       k4s2_win(base, oh0 + 3, ow0 - 1), w);
    }
    let ih0 = 2 * oh0 - i32(p.pad);
    let iw0 = 2 * ow0 - i32(p.pad);
    k4s2_store(b.r0, cic, n, ih0, iw0, ok);
    k4s2_store(b.r1, cic, n, ih0 + 1, iw0, ok);
    k4s2_store(b.r2, cic, n, ih0 + 2, iw0, ok);
    k4s2_store(b.r3, cic, n, ih0 + 3, iw0, ok);
    k4s2_store(b.r4, cic, n, ih0 + 4, iw0, ok);
    k4s2_store(b.r5, cic, n, ih0 + 5, iw0, ok);
    k4s2_store(b.r6, cic, n, ih0 + 6, iw0, ok);
    k4s2_store(b.r7, cic, n, ih0 + 7, iw0, ok);
}

// ---------------------------------------------------------------------------------------------
// conv2d_backward_input_dense: the input gradient when the output is 1 x 1, the input k x k and the
// padding 0 (a transposed convolution of a 1 x 1 input, k <= 4): every tap reaches exactly one input
// pixel, dX[n, ci, kh, kw] = sum over co of dY[n, co] * W[co, ci, kh, kw], a dense product that the
// general tile would run at 1/k^2 efficiency. A lane's tile is 4 images (rows) x the 4 columns kw of
// one kernel row kh, for 32 channels whose weight rows W[co, ci, kh, 0..3] are broadcast as vec4s.
// Tiles are numbered kh-major with aux1 tiles per kernel row (a multiple of 8).

fn px_fma_rows(a: Px, w: vec4<f32>, d: vec4<f32>) -> Px {
    return Px(fma(w, vec4<f32>(d.x), a.r0), fma(w, vec4<f32>(d.y), a.r1), fma(w, vec4<f32>(d.z), a.r2),
              fma(w, vec4<f32>(d.w), a.r3));
}

fn ch8_fma_rows(a: Ch8, mine: vec4<f32>, d: vec4<f32>) -> Ch8 {
    return Ch8(
        px_fma_rows(a.c0, subgroupBroadcast(mine, 0u), d),
        px_fma_rows(a.c1, subgroupBroadcast(mine, 1u), d),
        px_fma_rows(a.c2, subgroupBroadcast(mine, 2u), d),
        px_fma_rows(a.c3, subgroupBroadcast(mine, 3u), d),
        px_fma_rows(a.c4, subgroupBroadcast(mine, 4u), d),
        px_fma_rows(a.c5, subgroupBroadcast(mine, 5u), d),
        px_fma_rows(a.c6, subgroupBroadcast(mine, 6u), d),
        px_fma_rows(a.c7, subgroupBroadcast(mine, 7u), d),
    );
}

// W[co, ci, kh, 0..3] at element offset `at` (columns past k read as 0).
fn w_row(at: u32) -> vec4<f32> {
    let kw = vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.k);
    return select(vec4<f32>(0.0), vec4<f32>(b2[at], b2[at + min(1u, p.k - 1u)], b2[at + min(2u, p.k - 1u)],
                                            b2[at + min(3u, p.k - 1u)]), kw);
}

@compute @workgroup_size(8)
fn conv2d_backward_input_dense(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sg_lane: u32,
                               @builtin(subgroup_size) sg_size: u32) {
    let g = wid.y * nwg.x + wid.x;
    let groups_n = (p.n_tiles + LANES - 1u) / LANES;
    let m = g / groups_n;
    if (m >= p.m_tiles) {
        return;
    }
    let fast = use_fast(sg_size);
    let nt = (g % groups_n) * LANES + select(li, sg_lane, fast);
    let kh = min(nt / p.aux1, p.k - 1u);
    let n0 = (nt % p.aux1) * ROWS;
    let imgs = vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u);
    let ok = (imgs < vec4<u32>(p.batch)) & vec4<bool>(nt / p.aux1 < p.k);
    let dyat = min(imgs, vec4<u32>(p.batch - 1u)) * p.cout;
    let ci0 = m * CH;
    let kk = p.k * p.k;
    let o = Out4(imgs * p.cin * kk + kh * p.k, ok, 0u, 1u, p.k, kk, p.cin);
    if (!fast) {
        for (var c = 0u; c < CH; c++) {
            var px: Px;
            for (var co = 0u; co < p.cout; co++) {
                let d = vec4<f32>(b1[dyat.x + co], b1[dyat.y + co], b1[dyat.z + co], b1[dyat.w + co]);
                px = px_fma_rows(px, w_row((co * p.cin + min(ci0 + c, p.cin - 1u)) * kk + kh * p.k), d);
            }
            store_px(px, ci0 + c, o);
        }
        return;
    }
    let wc = lane_channels(ci0, sg_lane, p.cin, kk) + kh * p.k;
    var acc: Acc;
    for (var co = 0u; co < p.cout; co++) {
        let d = vec4<f32>(b1[dyat.x + co], b1[dyat.y + co], b1[dyat.z + co], b1[dyat.w + co]);
        let wo = co * p.cin * kk;
        acc = Acc(ch8_fma_rows(acc.g0, w_row(wc.x + wo), d), ch8_fma_rows(acc.g1, w_row(wc.y + wo), d),
                  ch8_fma_rows(acc.g2, w_row(wc.z + wo), d), ch8_fma_rows(acc.g3, w_row(wc.w + wo), d));
    }
    store_acc(acc, ci0, o);
}

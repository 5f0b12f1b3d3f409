// Compiled after common.wgsl and conv_common.wgsl (tile types, loads, stores; see runtime::kernels).
//
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

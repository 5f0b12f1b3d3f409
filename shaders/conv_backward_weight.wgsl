// Compiled after common.wgsl and conv_common.wgsl (tile types, loads, stores; see runtime::kernels).
//
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

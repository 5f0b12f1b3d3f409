// Compiled after common.wgsl and conv_common.wgsl (tile types, loads, stores; see runtime::kernels).
//
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

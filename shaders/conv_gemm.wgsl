// The data movement around a convolution lowered to the matmul (src/ops/conv_gemm.rs):
//   forward:        col = im2col(x); C[Cout, N·P] = W·col; y = planes_swap(C) (+ bias)
//   input gradient: dYᵀ = planes_swap(dy); dcol = Wᵀ·dYᵀ; dx = col2im(dcol)
// col is [Cin·k·k, N·OH·OW]: row kk = (ci, kh, kw), column r = (n, oh, ow), so the matmul reads it as
// a plain [K, N] operand and neighbouring invocations touch neighbouring pixels.
// These kernels are load/store bound and cheap next to the matmul they feed (one float moved per
// element; the matmul does Cout or Cin·k·k FMAs per element of col).

struct Params {
    batch: u32,
    cin: u32,
    h: u32,
    w: u32,
    out_h: u32,
    out_w: u32,
    k: u32,
    stride: u32,
    pad: u32,
    flags: u32,
    // planes_swap: src [outer, inner, plane] → dst [inner, outer, plane], bias indexed by outer.
    outer: u32,
    inner: u32,
    plane: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// The bits of conv_common.wgsl's flags (src/ops/conv.rs builds both).
const HAS_BIAS: u32 = 1u;
const ACCUMULATE: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> src: array<f32>;
// Unread without HAS_BIAS (the op binds another operand there).
@group(0) @binding(2) var<storage, read_write> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

fn finish(i: u32, v: f32, b: u32) {
    var out = v;
    if ((p.flags & HAS_BIAS) != 0u) {
        out += bias[b];
    }
    if ((p.flags & ACCUMULATE) != 0u) {
        out += dst[i];
    }
    dst[i] = out;
}

// floor(x / d) for x < 2^24 without an integer division: lavapipe runs integer division by a
// non-constant one lane at a time (measured: it made these kernels cost as much as the matmul),
// while the f32 division is one 8-wide instruction. Correctly rounded x / d is exact or rounds up
// across an integer, so one downward correction suffices.
fn udiv(x: u32, d: u32) -> u32 {
    let q = u32(f32(x) / f32(d));
    return select(q, q - 1u, q * d > x);
}

// dst = col of src (x [batch, cin, h, w]); zero where a tap falls into the padding. Workgroup row
// y is input channel ci; invocation x is column r = (n, oh, ow) and writes its k·k taps.
@compute @workgroup_size(256)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>) {
    let cols = p.batch * p.out_h * p.out_w;
    let r = gid.x;
    let ci = gid.y;
    if (r >= cols) { return; }
    let row = udiv(r, p.out_w); // n·out_h + oh
    let ow = r - row * p.out_w;
    let n = udiv(row, p.out_h);
    let oh = row - n * p.out_h;
    let ih0 = i32(oh * p.stride) - i32(p.pad);
    let iw0 = i32(ow * p.stride) - i32(p.pad);
    let plane = (n * p.cin + ci) * p.h;
    var at = ci * p.k * p.k * cols + r;
    for (var kh = 0u; kh < p.k; kh++) {
        let ih = ih0 + i32(kh);
        let row_ok = ih >= 0 && ih < i32(p.h);
        let base = (plane + u32(max(ih, 0))) * p.w;
        for (var kw = 0u; kw < p.k; kw++) {
            let iw = iw0 + i32(kw);
            var v = 0.0;
            if (row_ok && iw >= 0 && iw < i32(p.w)) {
                v = src[base + u32(iw)];
            }
            dst[at] = v;
            at += cols;
        }
    }
}

// dst (dx [batch, cin, h, w]) = sum over the taps that read each pixel of src (dcol), (+ bias[ci]).
// Workgroup row y is the plane n·cin + ci; invocation x is the pixel (ih, iw) in it. Only taps
// with kh ≡ ih + pad (mod stride) reach a pixel, so the loops start there and step by the stride.
@compute @workgroup_size(256)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x;
    if (q >= p.h * p.w) { return; }
    let plane = gid.y;
    let n = udiv(plane, p.cin);
    let ci = plane - n * p.cin;
    let ih = udiv(q, p.w);
    let iw = q - ih * p.w;
    let cols = p.batch * p.out_h * p.out_w;
    let th = ih + p.pad;
    let tw = iw + p.pad;
    let kh0 = th - udiv(th, p.stride) * p.stride;
    let kw0 = tw - udiv(tw, p.stride) * p.stride;
    var acc = 0.0;
    for (var kh = kh0; kh < p.k && kh <= th; kh += p.stride) {
        let oh = udiv(th - kh, p.stride);
        if (oh >= p.out_h) { continue; }
        for (var kw = kw0; kw < p.k && kw <= tw; kw += p.stride) {
            let ow = udiv(tw - kw, p.stride);
            if (ow >= p.out_w) { continue; }
            acc += src[((ci * p.k + kh) * p.k + kw) * cols + (n * p.out_h + oh) * p.out_w + ow];
        }
    }
    finish(plane * p.h * p.w + q, acc, ci);
}

// dst[b, a, q] = src[a, b, q] (+ bias[a]) for src [outer, inner, plane]. Workgroup row y is b;
// invocation x is a·plane + q.
@compute @workgroup_size(256)
fn planes_swap(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    if (x >= p.outer * p.plane) { return; }
    let b = gid.y;
    let a = udiv(x, p.plane);
    let q = x - a * p.plane;
    finish(b * p.outer * p.plane + x, src[(a * p.inner + b) * p.plane + q], a);
}

// Convolution input gradient (and the transposed convolution's forward pass) as implicit GEMMs, one
// per stride class: input pixels (ih, iw) with (ih + pad) mod s = ch and (iw + pad) mod s = cw only
// receive taps kh = ch + s·jh, kw = cw + s·jw, so each class is a dense GEMM with
//   M = Cin, N = batch·th·tw (the class's pixels), K = Cout·kj² (kj = ceil(k / s)),
// instead of one GEMM over all k² taps of which (s² - 1)/s² would be zero. Workgroup z is the class.
// A = the weight w[co, ci, kh, kw] (b2), B = dy (b1) through the index map, C → dx (b4) plus
// bias[ci] (b3) with HAS_BIAS.

struct StrideClass {
    ch: u32,
    cw: u32,
    // First input row / column of the class, and its offset to the matching output row / column.
    ih0: u32,
    iw0: u32,
    dh: u32,
    dw: u32,
}

var<private> cls: StrideClass;

fn stride_class(z: u32) -> StrideClass {
    let s = p.stride;
    let ch = z / s;
    let cw = z % s;
    let ih0 = (ch + s - p.pad % s) % s;
    let iw0 = (cw + s - p.pad % s) % s;
    return StrideClass(ch, cw, ih0, iw0, (ih0 + p.pad - ch) / s, (iw0 + p.pad - cw) / s);
}

// Tap (co, kh, kw) of reduction index k; kh or kw >= k marks a tap past the kernel's edge.
fn tap(k: u32) -> vec3<u32> {
    let kj2 = p.kj * p.kj;
    let co = k / kj2;
    let r = k - co * kj2;
    let jh = r / p.kj;
    let jw = r - jh * p.kj;
    return vec3(co, cls.ch + p.stride * jh, cls.cw + p.stride * jw);
}

fn read_a(m: u32, k: u32) -> f32 {
    let t = tap(k);
    if (t.y >= p.k || t.z >= p.k) {
        return 0.0;
    }
    return b2[((t.x * p.cin + m) * p.k + t.y) * p.k + t.z];
}

// (image, class row, class column) of pixel index n.
fn pixel(n: u32) -> vec3<u32> {
    let per = p.th * p.tw;
    let img = n / per;
    let q = n - img * per;
    let r = q / p.tw;
    return vec3(img, r, q - r * p.tw);
}

fn read_b(k: u32, n: u32) -> f32 {
    let t = tap(k);
    let px = pixel(n);
    let jh = (t.y - cls.ch) / p.stride;
    let jw = (t.z - cls.cw) / p.stride;
    // Output row oh = r + dh - jh (and likewise the column) must lie inside dy.
    if (t.y >= p.k || t.z >= p.k || px.y + cls.dh < jh || px.z + cls.dw < jw) {
        return 0.0;
    }
    let oy = px.y + cls.dh - jh;
    let ox = px.z + cls.dw - jw;
    if (oy >= p.oh || ox >= p.ow) {
        return 0.0;
    }
    return b1[((px.x * p.cout + t.x) * p.oh + oy) * p.ow + ox];
}

fn a_k_fast() -> bool {
    return false;
}

fn b_k_fast() -> bool {
    return false;
}

fn write_c(m: u32, n: u32, v: f32) {
    let px = pixel(n);
    let ih = cls.ih0 + p.stride * px.y;
    let iw = cls.iw0 + p.stride * px.z;
    if (ih >= p.h || iw >= p.w) {
        return;
    }
    var x = v;
    if ((p.flags & HAS_BIAS) != 0u) {
        x += b3[m];
    }
    store_out(((px.x * p.cin + m) * p.h + ih) * p.w + iw, x);
}

@compute @workgroup_size(WG_X, WG_Y)
fn conv2d_backward_input_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    cls = stride_class(wid.z);
    let n = p.batch * p.th * p.tw;
    let blk = GemmBlock(p.cin, n, wid.y * block_rows(), wid.x * block_cols(), 0u, p.cout * p.kj * p.kj);
    gemm_block(blk, lid.x, lid.y);
}

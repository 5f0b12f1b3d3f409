// Parameters and bindings shared by the tiled set's convolution passes (implicit GEMMs on
// the generated GEMM core: the im2col index map lives in each pass's read_a / read_b, no im2col buffer).
// Layouts are PyTorch's: activations NCHW, weights [Cout, Cin, k, k]; src/ops/conv_tiled.rs maps
// each pass (and the transposed convolution's) onto these entries.

struct ConvParams {
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
    flags: u32, // HAS_BIAS | ACCUMULATE
    chunk: u32, // split-K: reduction length per split (a multiple of BK)
    splits: u32, // split-K: number of splits (1: write the output directly)
    kj: u32, // input gradient: taps per kernel row of one stride class, ceil(k / stride)
    th: u32, // input gradient: rows of one stride class, ceil(h / stride)
    tw: u32, // input gradient: columns of one stride class
    lanes: u32, // split-K fold: invocations per output (split_fold.wgsl)
    act: u32, // output activation (activation.wgsl), applied last
    alpha: f32, // its LeakyReLU slope
}

const HAS_BIAS: u32 = 1u;
const ACCUMULATE: u32 = 2u;

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;

// Writes act(`v` plus the old value when accumulating) to b4[i].
fn store_out(i: u32, v: f32) {
    var x = v;
    if ((p.flags & ACCUMULATE) != 0u) {
        x += b4[i];
    }
    b4[i] = apply_activation(p.act, p.alpha, x);
}

// im2col(x)[tap, pixel] without the buffer: tap = (ci·k + kh)·k + kw, pixel = (image·OH + oy)·OW + ox;
// zero where the tap falls in the padding. x is b1.
fn im2col(tap: u32, pixel: u32) -> f32 {
    let kk = p.k * p.k;
    let ci = tap / kk;
    let r = tap - ci * kk;
    let kh = r / p.k;
    let kw = r - kh * p.k;
    let ohw = p.oh * p.ow;
    let img = pixel / ohw;
    let q = pixel - img * ohw;
    let oy = q / p.ow;
    let ox = q - oy * p.ow;
    // Unsigned wrap-around makes a row above or left of the image compare as out of range.
    let iy = oy * p.stride + kh - p.pad;
    let ix = ox * p.stride + kw - p.pad;
    if (oy * p.stride + kh < p.pad || ox * p.stride + kw < p.pad || iy >= p.h || ix >= p.w) {
        return 0.0;
    }
    return b1[((img * p.cin + ci) * p.h + iy) * p.w + ix];
}

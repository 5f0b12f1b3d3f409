// Parameters and bindings shared by the tiled set's convolution passes (implicit GEMMs on
// tiled_gemm.wgsl: the im2col index map lives in each pass's read_a / read_b, no im2col buffer).
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
}

const HAS_BIAS: u32 = 1u;
const ACCUMULATE: u32 = 2u;

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;

// Writes `v` (plus the old value when accumulating) to b4[i].
fn store_out(i: u32, v: f32) {
    var x = v;
    if ((p.flags & ACCUMULATE) != 0u) {
        x += b4[i];
    }
    b4[i] = x;
}

//! Activations fused into the tiled products' epilogues (`graph::fuse`) compute what the same graph
//! computes unfused, bit for bit: the loss and every parameter gradient after a step, through a
//! convolution, a transposed convolution, a split-K Linear (whose fold applies the activation) and a
//! plain Linear. The fused step runs no activation kernel of its own; the unfused one runs four.
use crate::common;

use common::*;
use gputrain::bench::dispatch_rows;
use gputrain::graph::{compile, Executor, Graph, Mode, ParamStore};
use gputrain::nn::{self, Conv, WeightInit};
use gputrain::ops::adam::AdamConfig;
use gputrain::ops::elementwise::Activation;
use gputrain::runtime::{BackendChoice, Gpu, KernelChoice};

const B: usize = 16;
const PARAMS: [&str; 8] =
    ["c.weight", "c.bias", "t.weight", "t.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"];

/// conv 1→4 + LeakyReLU, conv-transpose 4→2 + Tanh, Linear 512→8 + Sigmoid (K split: 16×8 outputs
/// against K = 512), Linear 8→3 + ReLU, summed. With `keep_pre`, every pre-activation tensor is also a
/// graph output, which keeps the activations unfused.
fn net(gpu: &Gpu, keep_pre: bool) -> Graph {
    let mut g = Graph::new(gpu.kernels());
    let x = g.external("x", &[B, 1, 8, 8]);
    let mut pre = Vec::new();
    let mut then = |g: &mut Graph, h, a| {
        pre.push(h);
        nn::act(g, h, a)
    };
    let h = nn::conv2d(&mut g, "c", x, Conv { out: 4, k: 3, stride: 1, pad: 1, bias: true }, WeightInit::Default);
    let h = then(&mut g, h.unwrap(), Activation::LeakyRelu(0.2));
    let h =
        nn::conv_transpose2d(&mut g, "t", h, Conv { out: 2, k: 4, stride: 2, pad: 1, bias: true }, WeightInit::Default);
    let h = then(&mut g, h.unwrap(), Activation::Tanh);
    let h = g.view(h, &[B, 2 * 16 * 16]).unwrap();
    let h = nn::linear(&mut g, "fc1", h, 8, WeightInit::Default).unwrap();
    let h = then(&mut g, h, Activation::Sigmoid);
    let h = nn::linear(&mut g, "fc2", h, 3, WeightInit::Default).unwrap();
    let h = then(&mut g, h, Activation::Relu);
    let l = nn::sum_loss(&mut g, h);
    g.add_loss("sum", l);
    if keep_pre {
        pre.iter().for_each(|&t| g.mark_output(t));
    }
    g
}

/// One training step: the loss bits, every parameter gradient's bits, and the activation dispatches.
fn step(gpu: &Gpu, keep_pre: bool) -> (Vec<u32>, Vec<Vec<u32>>, usize) {
    let mut g = net(gpu, keep_pre);
    let specs: Vec<_> = g.params.iter().collect();
    let store = ParamStore::new(gpu, &specs, 5).unwrap();
    let adam = AdamConfig::default();
    let steps = compile(&mut g, &store, Mode::Train { adam: &adam, end_of_step: true }).unwrap();
    let x = gpu.upload_f32("x", &to_f32(&rand_vec(9, B * 64, -1.0, 1.0))).unwrap();
    let mut exec = Executor::new(gpu, &g, &steps, &store, &[("x", x.whole())]).unwrap();
    let rows = dispatch_rows(&exec.prepared.iter().collect::<Vec<_>>(), None);
    let acts = rows
        .iter()
        .filter(|r| r.entry.ends_with("relu_forward") || r.entry == "tanh_forward" || r.entry == "sigmoid_forward")
        .count();
    exec.step(gpu, true).unwrap();
    let loss = exec.poll_losses(gpu, true).unwrap().pop().unwrap().values.iter().map(|v| v.to_bits()).collect();
    let grads = PARAMS.iter().map(|p| store.read_grad(gpu, p).unwrap().iter().map(|v| v.to_bits()).collect()).collect();
    (loss, grads, acts)
}

#[test]
fn fused_activations_give_the_unfused_results_bit_for_bit() {
    let gpu = Gpu::open(BackendChoice::resolve(None).unwrap(), KernelChoice::Tiled).unwrap();
    let (loss, grads, acts) = step(&gpu, false);
    let (loss_ref, grads_ref, acts_ref) = step(&gpu, true);
    assert_eq!((acts, acts_ref), (0, 4), "activation kernels fused / unfused");
    assert_eq!(loss, loss_ref, "loss");
    for ((name, g), r) in PARAMS.iter().zip(&grads).zip(&grads_ref) {
        assert!(g.iter().any(|&b| b != 0), "{name}: an all-zero gradient tests nothing");
        assert_eq!(g, r, "{name} gradient");
    }
}

//! The graph executor on a normalisation net: gradients equal the CPU references composed by hand;
//! same seed ⇒ bit-identical losses; oversize tensors are refused with the limit named.

use crate::common;

use common::*;
use gputrain::graph::{compile, Executor, Graph, Mode, ParamStore, TensorId};
use gputrain::nn::{self, WeightInit};
use gputrain::ops::adam::AdamConfig;
use gputrain::ops::batchnorm::{self, BatchNormShape, BnAct};
use gputrain::ops::elementwise::{self, Activation};
use gputrain::runtime::GpuBuffer;

const N: usize = 2;
const C: usize = 3;
const BS: BatchNormShape = BatchNormShape { n: N, c: C, h: 6, w: 6 };

/// x → BN+LeakyReLU (fused) → BN → Tanh → Σ (normalisation layers with trainable γ, β and running
/// stats).
fn net() -> (Graph, TensorId) {
    let mut g = Graph::new(common::gpu().kernel_set);
    let x = g.external("x", &[N, C, 6, 6]);
    let h = nn::batchnorm_act(&mut g, "bn1", x, true, WeightInit::Dcgan, BnAct::LeakyRelu(0.2)).unwrap();
    let h = nn::batchnorm(&mut g, "bn2", h, true, WeightInit::Dcgan).unwrap();
    let y = nn::act(&mut g, h, Activation::Tanh);
    let loss = nn::sum_loss(&mut g, y);
    g.add_loss("sum", loss);
    (g, x)
}

struct Setup {
    graph: Graph,
    store: ParamStore,
    exec: Executor,
    _x: GpuBuffer,
}

fn setup(seed: u64, adam: Option<&AdamConfig>) -> Setup {
    let gpu = gpu();
    let (mut graph, _) = net();
    let specs: Vec<_> = graph.params.iter().collect();
    let store = ParamStore::new(gpu, &specs, seed).unwrap();
    let cfg = AdamConfig { lr: 0.0, ..Default::default() };
    let mode = Mode::Train { adam: adam.unwrap_or(&cfg), end_of_step: true };
    let steps = compile(&mut graph, &store, mode).unwrap();
    let x = gpu.upload_f32("x", &to_f32(&rand_vec(seed + 100, N * C * 36, -1.0, 1.0))).unwrap();
    let exec = Executor::new(gpu, &graph, &steps, &store, &[("x", x.whole())]).unwrap();
    Setup { graph, store, exec, _x: x }
}

fn read(s: &Setup, name: &str) -> Vec<f64> {
    to_f64(&s.store.read(gpu(), name).unwrap())
}

fn grad(s: &Setup, name: &str) -> Vec<f64> {
    to_f64(&s.store.read_grad(gpu(), name).unwrap())
}

#[test]
fn gradients_match_composed_cpu_references() {
    // lr 0: Adam leaves the weights as initialised, so they are the ones the gradients belong to.
    let mut s = setup(7, None);
    s.exec.step(gpu(), true).unwrap();
    let loss_gpu = s.exec.poll_losses(gpu(), true).unwrap()[0].values[0] as f64;
    let x = to_f64(&to_f32(&rand_vec(107, N * C * 36, -1.0, 1.0)));
    let (g1, b1, g2, b2) = (read(&s, "bn1.weight"), read(&s, "bn1.bias"), read(&s, "bn2.weight"), read(&s, "bn2.bias"));
    let (r0, r1) = (vec![0.0; C], vec![1.0; C]);

    let lrelu = BnAct::LeakyRelu(0.2);
    let f1 = batchnorm::cpu_train_forward(&x, (&g1, &b1), &r0, &r1, &BS, lrelu);
    let a1 = f1.y.clone();
    let f2 = batchnorm::cpu_train_forward(&a1, (&g2, &b2), &r0, &r1, &BS, BnAct::Identity);
    let y = elementwise::cpu_forward(Activation::Tanh, &f2.y);
    let loss: f64 = y.iter().sum();

    let dy = vec![1.0; y.len()];
    let dh2 = elementwise::cpu_backward(Activation::Tanh, &y, &dy);
    let (da1, dg2, db2) = batchnorm::cpu_backward(&a1, &dh2, &g2, &BS, (BnAct::Identity, &[]));
    let (_, dg1, db1) = batchnorm::cpu_backward(&x, &da1, &g1, &BS, (lrelu, &a1));

    // f32 kernels against f64 references: per-channel sums of 72 terms of magnitude ≤ ~3, through
    // two normalisations, stay within ~1e-5 absolute; 1e-4 leaves room for tanh/exp ulps.
    assert!((loss_gpu - loss).abs() < 1e-4 * (1.0 + loss.abs()), "loss {loss_gpu} vs {loss}");
    assert_close("bn2.weight grad", &grad(&s, "bn2.weight"), &dg2, 1e-4, 1e-4);
    assert_close("bn2.bias grad", &grad(&s, "bn2.bias"), &db2, 1e-4, 1e-4);
    assert_close("bn1.weight grad", &grad(&s, "bn1.weight"), &dg1, 1e-4, 1e-4);
    assert_close("bn1.bias grad", &grad(&s, "bn1.bias"), &db1, 1e-4, 1e-4);
    // The running statistics were updated with momentum 0.1 from (0, 1).
    assert_close("bn1.running_mean", &read(&s, "bn1.running_mean"), &f1.running_mean, 1e-5, 1e-4);
    assert_close("bn2.running_var", &read(&s, "bn2.running_var"), &f2.running_var, 1e-5, 1e-4);
    // Those four are every trainable parameter of the net: no gradient went unchecked.
    let mut trainable: Vec<&str> = s.graph.params.iter().filter(|p| p.trainable).map(|p| p.name.as_str()).collect();
    trainable.sort_unstable();
    assert_eq!(trainable, ["bn1.bias", "bn1.weight", "bn2.bias", "bn2.weight"]);
}

fn losses(seed: u64, steps: usize) -> Vec<f32> {
    let g = gpu();
    let mut s = setup(seed, Some(&AdamConfig { lr: 0.01, ..Default::default() }));
    let mut out = Vec::new();
    for _ in 0..steps {
        s.exec.step(g, true).unwrap();
        out.extend(s.exec.poll_losses(g, true).unwrap().iter().map(|r| r.values[0]));
    }
    out
}

#[test]
fn same_seed_gives_bit_identical_losses_and_training_lowers_the_loss() {
    let a = losses(11, 30);
    let b = losses(11, 30);
    assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    assert_ne!(a, losses(12, 30), "a different seed must give different initial weights");
    // Minimising Σ tanh(·) with Adam (lr 0.01) lowers every β by ~0.01 per step: after 30 steps the
    // sum over 216 outputs has fallen by far more than 1.
    assert!(a[29] < a[0] - 1.0, "loss went from {} to {}", a[0], a[29]);
}

#[test]
fn tensor_larger_than_the_binding_limit_is_refused() {
    let g = gpu();
    let mut graph = Graph::new(common::gpu().kernel_set);
    // One million floats more than the adapter's binding limit holds (128 MiB on lavapipe and
    // WebGPU's default, 2 GiB on large GPUs).
    let millions = (g.limits.max_storage_buffer_binding_size / 4).div_ceil(1_000_000) as usize + 1;
    let x = graph.external("x", &[millions, 1, 1000, 1000]);
    let y = nn::act(&mut graph, x, Activation::Relu);
    let l = nn::sum_loss(&mut graph, y);
    graph.add_loss("sum", l);
    let store = ParamStore::new(g, &[], 0).unwrap();
    let steps = compile(&mut graph, &store, Mode::Forward).unwrap();
    let small = g.zeros("x", 16).unwrap();
    let e =
        Executor::new(g, &graph, &steps, &store, &[("x", small.whole())]).err().expect("must be refused").to_string();
    assert!(e.contains("max_storage_buffer_binding_size"), "{e}");
}

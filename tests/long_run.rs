//! Thousands of training steps create no wgpu objects and do not grow host memory. Own binary: wgpu's
//! object counters and the process's RSS are per process.

mod common;

use common::*;
use gputrain::graph::{compile, Executor, Graph, Mode, ParamStore};
use gputrain::nn::{self, WeightInit};
use gputrain::ops::adam::AdamConfig;
use gputrain::ops::elementwise::Activation;

/// Resident set size in bytes, from /proc (Linux); None elsewhere.
fn rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn memory_and_gpu_objects_stay_flat_over_thousands_of_steps() {
    let g = gpu();
    let mut graph = Graph::new();
    let x = graph.external("x", &[4, 1, 8, 8]);
    let t = graph.external("t", &[4, 1]);
    let h = nn::conv2d(&mut graph, "conv", x, 3, 4, 2, 1, true, WeightInit::Default).unwrap();
    let h = nn::batchnorm(&mut graph, "bn", h, true, WeightInit::Default).unwrap();
    let h = nn::act(&mut graph, h, Activation::Relu);
    let h = graph.view(h, &[4, 48]).unwrap();
    let h = nn::linear(&mut graph, "fc", h, 1, WeightInit::Default).unwrap();
    let p = nn::act(&mut graph, h, Activation::Sigmoid);
    let l = nn::bce(&mut graph, p, t, gputrain::ops::loss::BceReduction::Mean).unwrap();
    graph.add_loss("bce", l);
    let specs: Vec<_> = graph.params.iter().collect();
    let store = ParamStore::new(g, &specs, 1).unwrap();
    let adam = AdamConfig { lr: 1e-3, ..Default::default() };
    let steps = compile(&mut graph, &store, Mode::Train { adam: &adam, end_of_step: true }).unwrap();
    let xb = g.upload_f32("x", &to_f32(&rand_vec(1, 256, -1.0, 1.0))).unwrap();
    let tb = g.upload_f32("t", &[1.0, 0.0, 1.0, 0.0]).unwrap();
    let mut exec = Executor::new(g, &graph, &steps, &store, &[("x", xb.whole()), ("t", tb.whole())]).unwrap();

    let mut run = |n: usize| {
        for i in 0..n {
            exec.step(g, i % 10 == 9).unwrap();
            exec.poll_losses(g, false).unwrap();
        }
        exec.finish(g).unwrap();
        exec.poll_losses(g, true).unwrap();
    };
    // Warm-up: allocator pools, staging ring and driver caches reach their steady size.
    run(300);
    let (c0, m0) = (g.device.get_internal_counters().hal, rss());
    run(3000);
    let (c1, m1) = (g.device.get_internal_counters().hal, rss());
    assert_eq!(c0.buffers.read(), c1.buffers.read(), "buffers");
    assert_eq!(c0.bind_groups.read(), c1.bind_groups.read(), "bind groups");
    assert_eq!(c0.compute_pipelines.read(), c1.compute_pipelines.read(), "pipelines");
    assert_eq!(c0.buffer_memory.read(), c1.buffer_memory.read(), "GPU buffer memory");
    if let (Some(a), Some(b)) = (m0, m1) {
        // 3000 steps leaking even 1 KB each would add 3 MB; allow 2 MB of allocator noise.
        assert!(b < a + 2 * 1024 * 1024, "RSS grew from {a} to {b} bytes over 3000 steps");
    }
}

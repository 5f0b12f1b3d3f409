//! A training step is one submit with no uploads and creates no GPU objects, and thousands of steps
//! neither create wgpu objects nor grow host memory.
//!
//! Its own binary, not a module of tests/gpu/: it counts what the *process* allocates while it runs.
//! wgpu's object counters (buffers, bind groups, pipelines, buffer memory) belong to the device, and in
//! the shared harness `common::gpu()` is one device that every other test creates buffers and
//! pipelines on, concurrently, on the test threads; the resident set size belongs to the process,
//! which the other tests' allocations would grow. Either would make the counts wrong whenever another
//! test happened to run at the same time. So this is the binary's only test: nothing else allocates
//! while it counts.

mod common;

use common::*;
use gputrain::graph::{compile, Executor, Graph, Mode, ParamStore};
use gputrain::nn::{self, Conv, WeightInit};
use gputrain::ops::adam::AdamConfig;
use gputrain::ops::elementwise::Activation;

#[test]
fn steps_are_one_submit_and_allocate_nothing_even_over_thousands() {
    let g = gpu();
    let mut graph = Graph::new(g.kernel_set);
    let x = graph.external("x", &[4, 1, 8, 8]);
    let t = graph.external("t", &[4, 1]);
    let h = nn::conv2d(&mut graph, "conv", x, Conv { out: 3, k: 4, stride: 2, pad: 1, bias: false }, WeightInit::Dcgan)
        .unwrap();
    let h = nn::batchnorm(&mut graph, "bn", h, true, WeightInit::Dcgan).unwrap();
    let h = nn::act(&mut graph, h, Activation::LeakyRelu(0.2));
    let h = graph.view(h, &[4, 48]).unwrap();
    let h = nn::linear(&mut graph, "fc", h, 1, WeightInit::Default).unwrap();
    let p = nn::act(&mut graph, h, Activation::Sigmoid);
    let l = nn::bce(&mut graph, p, t, gputrain::ops::loss::BceReduction::Mean).unwrap();
    graph.add_loss("bce", l);
    let specs: Vec<_> = graph.params.iter().collect();
    let store = ParamStore::new(g, &specs, 1).unwrap();
    let steps = compile(&mut graph, &store, Mode::Train { adam: &AdamConfig::default(), end_of_step: true }).unwrap();
    let xb = g.upload_f32("x", &to_f32(&rand_vec(1, 256, -1.0, 1.0))).unwrap();
    let tb = g.upload_f32("t", &[1.0, 0.0, 1.0, 0.0]).unwrap();
    let mut exec = Executor::new(g, &graph, &steps, &store, &[("x", xb.whole()), ("t", tb.whole())]).unwrap();

    exec.step(g, true).unwrap();
    exec.finish(g).unwrap();
    exec.poll_losses(g, true).unwrap();
    let before = g.device.get_internal_counters().hal;
    for i in 0..20 {
        exec.step(g, i % 5 == 4).unwrap();
        exec.poll_losses(g, false).unwrap();
        let st = &exec.last_stats;
        assert_eq!((st.submits, st.bytes_uploaded), (1, 0));
        assert_eq!(st.dispatches, exec.prepared.len());
        assert_eq!(st.bytes_read_back, if i % 5 == 4 { 256 } else { 0 }, "losses are read back only when logging");
    }
    exec.finish(g).unwrap();
    let after = g.device.get_internal_counters().hal;
    assert_eq!(before.buffers.read(), after.buffers.read(), "buffers created during steps");
    assert_eq!(before.bind_groups.read(), after.bind_groups.read(), "bind groups created during steps");
    assert_eq!(before.compute_pipelines.read(), after.compute_pipelines.read(), "pipelines created during steps");

    // Long runs: after a warm-up (allocator pools, staging ring and driver caches at their steady size),
    // 3000 more steps change nothing.
    let mut run = |n: usize| {
        for i in 0..n {
            exec.step(g, i % 10 == 9).unwrap();
            exec.poll_losses(g, false).unwrap();
        }
        exec.finish(g).unwrap();
        exec.poll_losses(g, true).unwrap();
    };
    run(300);
    let (c0, m0) = (g.device.get_internal_counters().hal, rss());
    run(3000);
    let (c1, m1) = (g.device.get_internal_counters().hal, rss());
    assert_eq!(c0.buffers.read(), c1.buffers.read(), "buffers");
    assert_eq!(c0.bind_groups.read(), c1.bind_groups.read(), "bind groups");
    assert_eq!(c0.buffer_memory.read(), c1.buffer_memory.read(), "GPU buffer memory");
    if let (Some(a), Some(b)) = (m0, m1) {
        // 3000 steps leaking even 1 KB each would add 3 MB; allow 2 MB of allocator noise.
        assert!(b < a + 2 * 1024 * 1024, "RSS grew from {a} to {b} bytes over 3000 steps");
    }
}

/// Resident set size in bytes, from /proc (Linux); None elsewhere.
fn rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

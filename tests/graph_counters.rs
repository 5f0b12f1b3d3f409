//! A training step is one submit with no uploads and creates no GPU objects. wgpu's object counters are
//! per process, so this test has its own binary: no other test may create buffers while it counts.

mod common;

use common::*;
use gputrain::graph::{compile, Executor, Graph, Mode, ParamStore};
use gputrain::nn::{self, WeightInit};
use gputrain::ops::adam::AdamConfig;
use gputrain::ops::elementwise::Activation;

#[test]
fn a_step_is_one_submit_without_uploads_or_new_gpu_objects() {
    let g = gpu();
    let mut graph = Graph::new();
    let x = graph.external("x", &[4, 1, 8, 8]);
    let t = graph.external("t", &[4, 1]);
    let h = nn::conv2d(&mut graph, "conv", x, 3, 4, 2, 1, false, WeightInit::Dcgan).unwrap();
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
}

//! Compile-time fusion for the tiled kernel set: an activation whose input is used by nothing else
//! and comes straight out of a Linear, Conv2d or ConvTranspose2d runs in that product's epilogue
//! (shaders/activation.wgsl) instead of as a kernel of its own, saving a dispatch and a pass over the
//! tensor. The activation's expression is the elementwise kernel's, so the result is the same bit for
//! bit; the backward pass still runs the activation's gradient kernel, from the fused output.

use std::collections::{HashMap, HashSet};

use super::builder::Graph;
use super::op::Op;
use crate::runtime::KernelSet;

/// Fuses every eligible activation of `g` into its producer (`Op::Epilogue`); the activation's node
/// is removed and the producer writes the activation's output. Idempotent.
pub fn activations(g: &mut Graph) {
    if g.kernels.set != KernelSet::Tiled {
        return;
    }
    let mut uses = vec![0usize; g.tensors.len()];
    for n in &g.nodes {
        for t in &n.inputs {
            uses[t.0] += 1;
        }
    }
    // Tensors the host or the loss reports read must stay as they are.
    for t in g.outputs.iter().chain(g.reported().map(|(_, t)| t)) {
        uses[t.0] += 1;
    }
    let producer: HashMap<_, _> =
        g.nodes.iter().enumerate().flat_map(|(i, n)| n.outputs.first().map(|&t| (t, i))).collect();
    let mut fused = Vec::new();
    for (ai, node) in g.nodes.iter().enumerate() {
        let Op::Act(act) = node.op else { continue };
        let t = node.inputs[0];
        let Some(&pi) = producer.get(&t) else { continue };
        if g.nodes[pi].op.has_epilogue() && uses[t.0] == 1 && g.nodes[pi].outputs.len() == 1 {
            fused.push((pi, ai, act, node.outputs[0]));
        }
    }
    for &(pi, _, act, y) in &fused {
        let p = &mut g.nodes[pi];
        p.op = Op::Epilogue(Box::new(p.op.clone()), act);
        p.outputs[0] = y;
    }
    let removed: HashSet<usize> = fused.iter().map(|f| f.1).collect();
    let nodes = std::mem::take(&mut g.nodes);
    g.nodes = nodes.into_iter().enumerate().filter(|(i, _)| !removed.contains(i)).map(|(_, n)| n).collect();
}

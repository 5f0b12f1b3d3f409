//! The ops a graph records, each with its forward dispatches and its backward rule.

use anyhow::Result;

use super::autodiff::GradCtx;
use super::builder::{BoundCall, Graph, Node};
use crate::ops::elementwise::{self, Activation};
use crate::ops::gather::{self, GatherShape};
use crate::ops::random::{self, Distribution, RngKey};
use crate::runtime::KernelCall;

#[derive(Clone, Debug)]
pub enum Op {
    /// Same storage, new shape. Inputs `[x]`, outputs `[view]`.
    View,
    /// Batch from the GPU dataset. Inputs `[images, order, counters]`, outputs `[x]`.
    Gather(GatherShape),
    /// Random draws for this step. Inputs `[counters]`, outputs `[out]`.
    Random(Distribution, RngKey),
    /// Inputs `[x]`, outputs `[y]`.
    Act(Activation),
}

fn bind(calls: Vec<KernelCall>, args: Vec<super::TensorId>) -> Vec<BoundCall> {
    calls.into_iter().map(|call| BoundCall { call, args: args.clone() }).collect()
}

impl Op {
    pub fn differentiable(&self) -> bool {
        !matches!(self, Op::Gather(_) | Op::Random(..))
    }

    pub fn forward(&self, g: &Graph, node: &Node) -> Result<Vec<BoundCall>> {
        let (i, o) = (&node.inputs, &node.outputs);
        Ok(match self {
            Op::View => vec![],
            Op::Gather(s) => bind(gather::forward(s, 0)?, vec![i[0], i[1], i[2], o[0]]),
            Op::Random(d, key) => bind(random::fill(g.len(o[0]), *d, *key)?, vec![i[0], o[0]]),
            Op::Act(a) => bind(elementwise::forward(*a, g.len(i[0]))?, vec![i[0], o[0]]),
        })
    }

    pub fn backward(&self, ctx: &mut GradCtx<'_>, node: &Node) -> Result<()> {
        let (i, o) = (&node.inputs, &node.outputs);
        match self {
            Op::View => {
                if let Some(g) = ctx.grad(o[0]) {
                    ctx.alias_grad(i[0], g)?;
                }
            }
            Op::Gather(_) | Op::Random(..) => {}
            Op::Act(a) => {
                let Some(dy) = ctx.grad(o[0]) else { return Ok(()) };
                let t = ctx.target(i[0]);
                let n = ctx.graph.len(i[0]);
                ctx.emit(elementwise::backward(*a, n)?, vec![o[0], dy, t.write]);
                ctx.finish(t)?;
            }
        }
        Ok(())
    }
}

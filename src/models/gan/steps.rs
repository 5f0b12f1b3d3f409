//! The two graphs of one training iteration: the discriminator step and the generator step, both
//! drawing the same noise from the step counter.

use anyhow::Result;

use super::arch::{discriminator, generator};
use super::config::{Arch, GanConfig};
use crate::data::Split;
use crate::graph::{Graph, TensorId};
use crate::nn::{self, BnMode};
use crate::ops::elementwise::Activation;
use crate::ops::gather::GatherShape;
use crate::ops::loss::BceReduction;
use crate::ops::passes::Kernels;
use crate::ops::random::{Distribution, RngKey};

pub(super) fn noise_shape(arch: Arch, batch: usize, latent: usize) -> Vec<usize> {
    match arch {
        Arch::Dcgan => vec![batch, latent, 1, 1],
        Arch::Mlp | Arch::Fc => vec![batch, latent],
    }
}

fn noise(g: &mut Graph, cfg: &GanConfig) -> TensorId {
    let counters = g.external("counters", &[crate::graph::params::COUNTER_SLOTS]);
    let key = RngKey { seed: cfg.seed, slot: 0, stream: 1 };
    let normal = Distribution::Normal { mean: 0.0, std: 1.0 };
    nn::random(g, counters, &noise_shape(cfg.arch, cfg.batch_size, cfg.latent), normal, key)
}

/// Pixel bytes → [−1, 1], padded (DCGAN: 28 → 32) with the background value −1.
pub(super) fn gather_shape(split: &Split, batch: usize, steps: usize, pad: usize) -> GatherShape {
    crate::models::batch_shape(split, batch, steps, pad, (-1.0, 1.0))
}

/// BCE of D's output against `target`: of the logit for an arch whose D ends in one (the log-sum-exp
/// form), else of the probability.
fn d_loss(g: &mut Graph, cfg: &GanConfig, d: TensorId, target: TensorId) -> Result<TensorId> {
    if cfg.arch.logit_d() {
        nn::bce_with_logits(g, d, target)
    } else {
        nn::bce(g, d, target, BceReduction::Mean)
    }
}

/// D's output as a probability, for the logged D(x) and D(G(z)).
fn d_prob(g: &mut Graph, cfg: &GanConfig, d: TensorId) -> TensorId {
    if cfg.arch.logit_d() {
        nn::act(g, d, Activation::Sigmoid)
    } else {
        d
    }
}

/// D step: BCE(D(x), real_label) + BCE(D(G(z)), 0), G frozen. Returns (graph, real batch, fake batch).
pub(super) fn d_step(kernels: Kernels, cfg: &GanConfig, shape: &GatherShape) -> Result<(Graph, TensorId, TensorId)> {
    let mut g = Graph::new(kernels);
    let b = cfg.batch_size;
    let x = nn::gather(&mut g, "images", shape, 0)?;
    let real = g.external("real_label", &[b, 1, 1, 1]);
    let zeros = g.external("fake_label", &[b, 1, 1, 1]);
    let d_real = discriminator(&mut g, x, BnMode::Train, cfg)?;
    let l_real = d_loss(&mut g, cfg, d_real, real)?;
    let z = noise(&mut g, cfg);
    let fake = generator(&mut g, z, BnMode::Train, cfg, shape.channels)?;
    let d_fake = discriminator(&mut g, fake, BnMode::Train, cfg)?;
    let l_fake = d_loss(&mut g, cfg, d_fake, zeros)?;
    g.freeze("generator.");
    g.add_loss("d_real", l_real);
    g.add_loss("d_fake", l_fake);
    let (p_real, p_fake) = (d_prob(&mut g, cfg, d_real), d_prob(&mut g, cfg, d_fake));
    let (m_real, m_fake) = (nn::mean(&mut g, p_real), nn::mean(&mut g, p_fake));
    g.add_metric("D(x)", m_real);
    g.add_metric("D(G(z))", m_fake);
    g.mark_output(x);
    g.mark_output(fake);
    Ok((g, x, fake))
}

/// G step: BCE(D(G(z)), 1) through a frozen D (non-saturating loss).
pub(super) fn g_step(kernels: Kernels, cfg: &GanConfig, channels: usize) -> Result<Graph> {
    let mut g = Graph::new(kernels);
    let ones = g.external("g_label", &[cfg.batch_size, 1, 1, 1]);
    let z = noise(&mut g, cfg);
    let fake = generator(&mut g, z, BnMode::TrainNoStats, cfg, channels)?;
    let d = discriminator(&mut g, fake, BnMode::Train, cfg)?;
    let l = d_loss(&mut g, cfg, d, ones)?;
    g.freeze("discriminator.");
    g.add_loss("g", l);
    Ok(g)
}

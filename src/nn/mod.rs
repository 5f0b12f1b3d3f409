//! Layers as graph builders, with PyTorch's parameter names, layouts and default initialisation.

use anyhow::{bail, Result};

use crate::graph::{Graph, Init, Op, TensorId};
use crate::ops::batchnorm::BnAct;
use crate::ops::elementwise::Activation;
use crate::ops::gather::GatherShape;
use crate::ops::loss::BceReduction;
use crate::ops::mse::MseReduction;
use crate::ops::random::{Distribution, RngKey};

/// How a layer's weights start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightInit {
    /// PyTorch's default: kaiming-uniform with a = √5 (bound 1/√fan_in) and bias uniform ±1/√fan_in.
    Default,
    /// DCGAN: weights N(0, 0.02), no bias change (the DCGAN layers have none).
    Dcgan,
}

fn weight_init(init: WeightInit, fan_in: usize) -> Init {
    match init {
        WeightInit::Default => Init::Uniform(1.0 / (fan_in as f32).sqrt()),
        WeightInit::Dcgan => Init::Normal { mean: 0.0, std: 0.02 },
    }
}

fn dims4(g: &Graph, x: TensorId, layer: &str) -> Result<[usize; 4]> {
    match *g.shape(x) {
        [n, c, h, w] => Ok([n, c, h, w]),
        ref s => bail!("{layer}: expected an NCHW input, got shape {s:?}"),
    }
}

/// `{prefix}.weight` of `shape` and, with `bias`, `{prefix}.bias` of `outputs` values; the bias takes
/// PyTorch's uniform ±1/√fan_in whatever the weight initialisation.
fn weight_and_bias(
    g: &mut Graph,
    prefix: &str,
    shape: &[usize],
    (fan_in, outputs): (usize, usize),
    bias: bool,
    init: WeightInit,
) -> Result<Vec<TensorId>> {
    let mut v = vec![g.param(&format!("{prefix}.weight"), shape, weight_init(init, fan_in))?];
    if bias {
        v.push(g.param(&format!("{prefix}.bias"), &[outputs], Init::Uniform(1.0 / (fan_in as f32).sqrt()))?);
    }
    Ok(v)
}

/// A convolution's (or transposed convolution's) geometry: `out` channels, a square `k`×`k` kernel,
/// `stride` and `pad` on every side, as PyTorch's `Conv2d(in, out, k, stride, pad, bias=bias)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv {
    pub out: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub bias: bool,
}

/// Conv2d with PyTorch names `{prefix}.weight` [out, cin, k, k] and `{prefix}.bias`.
pub fn conv2d(g: &mut Graph, prefix: &str, x: TensorId, conv: Conv, init: WeightInit) -> Result<TensorId> {
    let Conv { out: cout, k, stride, pad, bias } = conv;
    let [n, cin, h, w] = dims4(g, x, prefix)?;
    let shape = crate::ops::conv::Conv2dShape { batch: n, cin, cout, h, w, k, stride, pad };
    shape.validate(prefix)?;
    let mut inputs = vec![x];
    inputs.extend(weight_and_bias(g, prefix, &[cout, cin, k, k], (cin * k * k, cout), bias, init)?);
    let y = g.transient(&format!("{prefix}.out"), &[n, cout, shape.out_h(), shape.out_w()]);
    g.push(Op::Conv2d(shape, bias), inputs, vec![y]);
    Ok(y)
}

/// ConvTranspose2d with PyTorch names `{prefix}.weight` [cin, out, k, k] and `{prefix}.bias`.
pub fn conv_transpose2d(g: &mut Graph, prefix: &str, x: TensorId, conv: Conv, init: WeightInit) -> Result<TensorId> {
    let Conv { out: cout, k, stride, pad, bias } = conv;
    let [n, cin, h, w] = dims4(g, x, prefix)?;
    let shape = crate::ops::conv_transpose::ConvTranspose2dShape { batch: n, cin, cout, h, w, k, stride, pad };
    shape.validate(prefix)?;
    // PyTorch computes fan_in of a transposed conv from weight.size(1) = cout.
    let mut inputs = vec![x];
    inputs.extend(weight_and_bias(g, prefix, &[cin, cout, k, k], (cout * k * k, cout), bias, init)?);
    let y = g.transient(&format!("{prefix}.out"), &[n, cout, shape.out_h(), shape.out_w()]);
    g.push(Op::ConvT2d(shape, bias), inputs, vec![y]);
    Ok(y)
}

/// Linear (y = x Wᵀ + b) with `{prefix}.weight` [out, in] and `{prefix}.bias` [out].
pub fn linear(g: &mut Graph, prefix: &str, x: TensorId, out: usize, init: WeightInit) -> Result<TensorId> {
    let [n, inp] = match *g.shape(x) {
        [n, i] => [n, i],
        ref s => bail!("{prefix}: expected a [batch, features] input, got {s:?}"),
    };
    let mut inputs = vec![x];
    inputs.extend(weight_and_bias(g, prefix, &[out, inp], (inp, out), true, init)?);
    let y = g.transient(&format!("{prefix}.out"), &[n, out]);
    g.push(Op::Linear { batch: n, inp, out }, inputs, vec![y]);
    Ok(y)
}

/// How a batchnorm layer normalises in one graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnMode {
    /// Batch statistics; the running statistics are updated (PyTorch's `train()`).
    Train,
    /// Batch statistics without touching the running ones: a second forward pass of the same batch
    /// in one training iteration (a GAN's generator step re-running G) must not count it twice.
    TrainNoStats,
    /// The running statistics (PyTorch's `eval()`).
    Eval,
}

impl From<bool> for BnMode {
    fn from(training: bool) -> BnMode {
        if training {
            BnMode::Train
        } else {
            BnMode::Eval
        }
    }
}

/// BatchNorm2d (or 1d on [N, C]) with `{prefix}.weight/.bias/.running_mean/.running_var`.
pub fn batchnorm(
    g: &mut Graph,
    prefix: &str,
    x: TensorId,
    mode: impl Into<BnMode>,
    init: WeightInit,
) -> Result<TensorId> {
    batchnorm_act(g, prefix, x, mode, init, BnAct::Identity)
}

/// `batchnorm` followed by a ReLU or LeakyReLU, computed by the batchnorm kernels (the pre-activation
/// tensor never exists).
pub fn batchnorm_act(
    g: &mut Graph,
    prefix: &str,
    x: TensorId,
    mode: impl Into<BnMode>,
    init: WeightInit,
    act: BnAct,
) -> Result<TensorId> {
    let mode = mode.into();
    let s = g.shape(x).to_vec();
    let (n, c, h, w) = match s[..] {
        [n, c, h, w] => (n, c, h, w),
        [n, c] => (n, c, 1, 1),
        _ => bail!("{prefix}: batchnorm needs [N, C, H, W] or [N, C], got {s:?}"),
    };
    let gamma_init = match init {
        WeightInit::Default => Init::Const(1.0),
        WeightInit::Dcgan => Init::Normal { mean: 1.0, std: 0.02 },
    };
    let gamma = g.param(&format!("{prefix}.weight"), &[c], gamma_init)?;
    let beta = g.param(&format!("{prefix}.bias"), &[c], Init::Const(0.0))?;
    let (rm, rv) = if mode == BnMode::TrainNoStats {
        // The kernel still reads and writes running statistics; give it scratch it may clobber.
        (g.transient(&format!("{prefix}.scratch_mean"), &[c]), g.transient(&format!("{prefix}.scratch_var"), &[c]))
    } else {
        (
            g.state(&format!("{prefix}.running_mean"), &[c], Init::Const(0.0))?,
            g.state(&format!("{prefix}.running_var"), &[c], Init::Const(1.0))?,
        )
    };
    let shape = crate::ops::batchnorm::BatchNormShape { n, c, h, w };
    let y = g.transient(&format!("{prefix}.out"), &s);
    if mode != BnMode::Eval {
        let saved = g.transient(&format!("{prefix}.saved"), &[2 * c]);
        g.push(Op::BatchNorm(shape, act), vec![x, gamma, beta, rm, rv], vec![y, saved]);
    } else {
        g.push(Op::BatchNormEval(shape, act), vec![x, gamma, beta, rm, rv], vec![y]);
    }
    Ok(y)
}

pub fn act(g: &mut Graph, x: TensorId, a: Activation) -> TensorId {
    let name = format!("{}.{a:?}", g.info(x).name);
    let shape = g.shape(x).to_vec();
    let y = g.transient(&name, &shape);
    g.push(Op::Act(a), vec![x], vec![y]);
    y
}

/// Loss = Σ x (a scalar), for tests and toy problems.
pub fn sum_loss(g: &mut Graph, x: TensorId) -> TensorId {
    let name = format!("{}.sum", g.info(x).name);
    let l = g.transient(&name, &[1]);
    g.push(Op::SumLoss, vec![x], vec![l]);
    l
}

/// A batch gathered on the GPU from the dataset bound as external `source` (u8 pixels packed four to a
/// word), through the external sample order "order", at the batch index held in counter `slot`.
pub fn gather(g: &mut Graph, source: &str, s: &GatherShape, slot: usize) -> Result<TensorId> {
    let data = g.external(source, &[(s.n_images * s.channels * s.src_h * s.src_w).div_ceil(4)]);
    let order = g.external("order", &[s.order_len()]);
    let counters = g.external("counters", &[crate::graph::params::COUNTER_SLOTS]);
    let x = g.transient(&format!("{source}.batch"), &[s.batch, s.channels, s.out_h(), s.out_w()]);
    g.push(Op::Gather(*s, slot), vec![data, order, counters], vec![x]);
    Ok(x)
}

/// Fresh random draws each step (keyed by the step counter in `key.slot`).
pub fn random(g: &mut Graph, counters: TensorId, shape: &[usize], d: Distribution, key: RngKey) -> TensorId {
    let out = g.transient(&format!("random.{}", key.stream), shape);
    g.push(Op::Random(d, key), vec![counters], vec![out]);
    out
}

fn same_shape(g: &Graph, what: &str, a: TensorId, b: TensorId) -> Result<()> {
    if g.shape(a) != g.shape(b) {
        bail!("{what}: shapes {:?} and {:?} differ", g.shape(a), g.shape(b));
    }
    Ok(())
}

/// z = μ + exp(½ logσ²)·ε.
pub fn reparameterize(g: &mut Graph, mu: TensorId, logvar: TensorId, eps: TensorId) -> Result<TensorId> {
    same_shape(g, "reparameterize (mu, logvar)", mu, logvar)?;
    same_shape(g, "reparameterize (mu, eps)", mu, eps)?;
    let shape = g.shape(mu).to_vec();
    let z = g.transient("z", &shape);
    g.push(Op::Reparam, vec![mu, logvar, eps], vec![z]);
    Ok(z)
}

/// Binary cross-entropy of probabilities `p` against `target` (same shape, first dimension the batch).
pub fn bce(g: &mut Graph, p: TensorId, target: TensorId, reduction: BceReduction) -> Result<TensorId> {
    same_shape(g, "bce", p, target)?;
    let batch = g.shape(p)[0];
    let per_item = g.len(p) / batch;
    let l = g.transient("bce", &[1]);
    g.push(Op::Bce { batch, per_item, reduction }, vec![p, target], vec![l]);
    Ok(l)
}

/// PyTorch's `BCEWithLogitsLoss()` (mean over all elements) of `logits` against `target` (same shape,
/// first dimension the batch), in the stable form that needs no sigmoid before it.
pub fn bce_with_logits(g: &mut Graph, logits: TensorId, target: TensorId) -> Result<TensorId> {
    same_shape(g, "bce_with_logits", logits, target)?;
    let batch = g.shape(logits)[0];
    let per_item = g.len(logits) / batch;
    let l = g.transient("bce_with_logits", &[1]);
    g.push(Op::BceLogits { batch, per_item, reduction: BceReduction::Mean }, vec![logits, target], vec![l]);
    Ok(l)
}

/// Squared error of `pred` against `target` (same shape, first dimension the batch): summed over each
/// item and averaged over the batch (an autoencoder's loss), or PyTorch's `MSELoss()` mean over every
/// element with `MseReduction::Mean`.
pub fn mse_loss(g: &mut Graph, pred: TensorId, target: TensorId, reduction: MseReduction) -> Result<TensorId> {
    same_shape(g, "mse_loss", pred, target)?;
    let batch = g.shape(pred)[0];
    let per_item = g.len(pred) / batch;
    let l = g.transient("mse", &[1]);
    g.push(Op::Mse { batch, per_item, reduction }, vec![pred, target], vec![l]);
    Ok(l)
}

/// The VAE's reconstruction term: BCE summed over each image's pixels, mean over the batch.
pub fn bce_sum_per_image(g: &mut Graph, p: TensorId, target: TensorId) -> Result<TensorId> {
    bce(g, p, target, BceReduction::SumPerItemMeanOverBatch)
}

/// KL(N(μ, σ²) ‖ N(0, I)) summed over latent dimensions, mean over the batch.
pub fn kl_divergence(g: &mut Graph, mu: TensorId, logvar: TensorId) -> Result<TensorId> {
    same_shape(g, "kl_divergence", mu, logvar)?;
    let &[batch, z] = g.shape(mu) else { bail!("kl_divergence: expected [batch, z], got {:?}", g.shape(mu)) };
    let l = g.transient("kl", &[1]);
    g.push(Op::Kl { batch, z }, vec![mu, logvar], vec![l]);
    Ok(l)
}

/// The mean of `x` as a scalar, for metrics reported beside the losses.
pub fn mean(g: &mut Graph, x: TensorId) -> TensorId {
    let name = format!("{}.mean", g.info(x).name);
    let m = g.transient(&name, &[1]);
    g.push(Op::Mean, vec![x], vec![m]);
    m
}

/// Softmax cross-entropy of `logits` [rows, classes] against `labels` [rows] (class indices as floats).
pub fn cross_entropy(g: &mut Graph, logits: TensorId, labels: TensorId) -> Result<TensorId> {
    let &[rows, classes] = g.shape(logits) else {
        bail!("cross_entropy: expected [rows, classes], got {:?}", g.shape(logits))
    };
    if g.len(labels) != rows {
        bail!("cross_entropy: {} labels for {rows} rows", g.len(labels));
    }
    let l = g.transient("xent", &[1]);
    g.push(Op::Xent { rows, classes }, vec![logits, labels], vec![l]);
    Ok(l)
}

/// MaxPool2d(2): 2×2 windows, stride 2, odd trailing rows and columns dropped.
pub fn maxpool2d(g: &mut Graph, x: TensorId) -> Result<TensorId> {
    let [n, c, h, w] = dims4(g, x, "maxpool2d")?;
    let shape = crate::ops::pool::PoolShape { planes: n * c, h, w };
    let name = format!("{}.pool", g.info(x).name);
    let y = g.transient(&name, &[n, c, h / 2, w / 2]);
    g.push(Op::MaxPool(shape), vec![x], vec![y]);
    Ok(y)
}

/// Upsample(scale_factor=2, mode='nearest'): every pixel becomes a 2×2 block.
pub fn upsample_nearest2x(g: &mut Graph, x: TensorId) -> Result<TensorId> {
    let [n, c, h, w] = dims4(g, x, "upsample_nearest2x")?;
    let shape = crate::ops::upsample::UpsampleShape { planes: n * c, h, w };
    let name = format!("{}.up", g.info(x).name);
    let y = g.transient(&name, &[n, c, 2 * h, 2 * w]);
    g.push(Op::Upsample2x(shape), vec![x], vec![y]);
    Ok(y)
}

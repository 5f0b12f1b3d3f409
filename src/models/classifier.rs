//! A small Fashion-MNIST classifier trained by this engine: the stand-in for Inception in the GAN's
//! Inception Score (its softmax) and FID (its 128-d penultimate features), since Inception weights
//! cannot be downloaded here. Inputs are 1×32×32 in [−1, 1], exactly what the generator produces.
//!
//! PyTorch equivalent (state_dict names `net.N.*`):
//! `nn.Sequential(Conv2d(1,32,4,2,1), BatchNorm2d(32), ReLU(), Conv2d(32,64,4,2,1), BatchNorm2d(64),
//! ReLU(), Flatten(), Linear(4096,128), ReLU(), Linear(128,10))`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

use super::core::Core;
use crate::data::{Dataset, Split};
use crate::graph::{compile, Executor, Graph, Mode, ParamStore, StepStats, TensorId};
use crate::nn::{self, BnMode, Conv, WeightInit};
use crate::ops::adam::AdamConfig;
use crate::ops::batchnorm::BnAct;
use crate::ops::elementwise::Activation;
use crate::ops::gather::{pack_u8, GatherShape};
use crate::runtime::launch::Prepared;
use crate::runtime::{Gpu, GpuBuffer};
use crate::train::checkpoint::{self, Checkpoint, TensorData};
use crate::train::model::{Evaluation, ImageBatch, TrainableModel};

pub const CLASSES: usize = 10;
pub const FEATURES: usize = 128;
/// Side of the images the network takes.
pub const SIDE: usize = 32;
const PAD: usize = 2;
const EVAL_SLOT: usize = 1;
/// The network on 1×32×32 images (28×28 padded by 2): returns (logits [B, 10], features [B, 128]).
/// The scores' feature network (scores/features.rs) is this one in eval mode.
pub fn net(g: &mut Graph, x: TensorId, bn: BnMode) -> Result<(TensorId, TensorId)> {
    let b = g.shape(x)[0];
    let mut h = x;
    for (i, cout) in [(0, 32), (3, 64)] {
        h = nn::conv2d(
            g,
            &format!("net.{i}"),
            h,
            Conv { out: cout, k: 4, stride: 2, pad: 1, bias: true },
            WeightInit::Default,
        )?;
        h = nn::batchnorm_act(g, &format!("net.{}", i + 1), h, bn, WeightInit::Default, BnAct::Relu)?;
    }
    let flat = g.view(h, &[b, 64 * 8 * 8])?;
    let f = nn::linear(g, "net.7", flat, FEATURES, WeightInit::Default)?;
    let f = nn::act(g, f, Activation::Relu);
    let logits = nn::linear(g, "net.9", f, CLASSES, WeightInit::Default)?;
    Ok((logits, f))
}

fn image_shape(split: &Split, batch: usize, steps: usize) -> GatherShape {
    super::batch_shape(split, batch, steps, PAD, (-1.0, 1.0))
}

/// Labels are gathered like 1×1 images, as class indices in floats.
fn label_shape(split: &Split, batch: usize, steps: usize) -> GatherShape {
    GatherShape { channels: 1, src_h: 1, src_w: 1, pad: 0, scale: 1.0, shift: 0.0, ..image_shape(split, batch, steps) }
}

/// A batch of images and labels gathered on the GPU from externals `images`, `labels`, `order`.
fn inputs(g: &mut Graph, split: &Split, batch: usize, steps: usize, slot: usize) -> Result<(TensorId, TensorId)> {
    let (is, ls) = (image_shape(split, batch, steps), label_shape(split, batch, steps));
    let x = nn::gather(g, "images", &is, slot)?;
    let y = nn::gather(g, "labels", &ls, slot)?;
    let y = g.view(y, &[batch])?;
    Ok((x, y))
}

/// The classifier's hyper-parameters: what `train classifier` takes, config.json records and `--resume`
/// reads back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassifierConfig {
    pub batch_size: usize,
    /// Adam's learning rate, kept as given (f64) so that config.json prints it so; Adam runs in f32.
    pub lr: f64,
    pub seed: u64,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig { batch_size: 128, lr: 1e-3, seed: 0 }
    }
}

impl ClassifierConfig {
    /// Refuses out-of-range hyper-parameters before the dataset and the GPU are touched.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size < 2 {
            bail!("--batch-size {}: the classifier needs at least 2 (batchnorm)", self.batch_size);
        }
        super::check_lr(self.lr)
    }
}

pub struct Classifier {
    cfg: ClassifierConfig,
    core: Core,
    train: Executor,
    eval: Executor,
    eval_logits: TensorId,
    eval_steps: usize,
    test_labels: Vec<u8>,
    test_images: Vec<u8>,
    _buffers: Vec<GpuBuffer>,
}

impl Classifier {
    pub fn new(gpu: &Gpu, cfg: &ClassifierConfig, data: &Dataset) -> Result<Classifier> {
        cfg.validate()?;
        let b = cfg.batch_size;
        for (name, s) in [("training", &data.train), ("test", &data.test)] {
            if s.h + 2 * PAD != SIDE || s.w + 2 * PAD != SIDE || s.channels != 1 {
                bail!(
                    "the classifier needs 1×28×28 images; the {name} set of {} has {}×{}×{}",
                    data.source,
                    s.channels,
                    s.h,
                    s.w
                );
            }
            if let Some(l) = s.labels.iter().find(|&&l| l as usize >= CLASSES) {
                bail!("the {name} set of {} has label {l}; the classifier knows {CLASSES} classes", data.source);
            }
        }
        if b < 2 || b > data.train.n || b > data.test.n {
            bail!(
                "--batch-size {b} must be between 2 and the smaller of the training ({}) and test ({}) set sizes",
                data.train.n,
                data.test.n
            );
        }
        let adam = AdamConfig { lr: cfg.lr as f32, ..Default::default() };
        adam.validate().context("--lr")?;
        let steps_per_epoch = data.train.n / b;
        let eval_steps = data.test.n / b;

        let mut tg = Graph::new(gpu.kernels());
        let (x, y) = inputs(&mut tg, &data.train, b, steps_per_epoch, 0)?;
        let (logits, _) = net(&mut tg, x, BnMode::Train)?;
        let l = nn::cross_entropy(&mut tg, logits, y)?;
        tg.add_loss("xent", l);
        let specs: Vec<_> = tg.params.iter().collect();
        let store = ParamStore::new(gpu, &specs, cfg.seed)?;
        let train_steps = compile(&mut tg, &store, Mode::Train { adam: &adam, end_of_step: true })?;

        let mut eg = Graph::new(gpu.kernels());
        let (x, y) = inputs(&mut eg, &data.test, b, eval_steps, EVAL_SLOT)?;
        let (eval_logits, _) = net(&mut eg, x, BnMode::Eval)?;
        let l = nn::cross_entropy(&mut eg, eval_logits, y)?;
        eg.add_loss("xent", l);
        eg.mark_output(eval_logits);
        let mut eval_list = compile(&mut eg, &store, Mode::Forward)?;
        crate::graph::autodiff::increment_slot(&mut eg, &mut eval_list, EVAL_SLOT);

        let up = |name: &str, bytes: &[u8]| gpu.upload(name, &pack_u8(bytes));
        let (train_images, train_labels) =
            (up("train-images", &data.train.images)?, up("train-labels", &data.train.labels)?);
        let (test_images, test_labels) = (up("test-images", &data.test.images)?, up("test-labels", &data.test.labels)?);
        let core = Core::new(gpu, store, (data.train.n, steps_per_epoch, b), cfg.seed)?;
        let test_order = gpu.upload("test-order", &(0..(eval_steps * b) as u32).collect::<Vec<_>>())?;
        let train = Executor::new(
            gpu,
            &tg,
            &train_steps,
            &core.store,
            &[("images", train_images.whole()), ("labels", train_labels.whole()), ("order", core.train_order.whole())],
        )?;
        let eval = Executor::new(
            gpu,
            &eg,
            &eval_list,
            &core.store,
            &[("images", test_images.whole()), ("labels", test_labels.whole()), ("order", test_order.whole())],
        )?;
        Ok(Classifier {
            cfg: cfg.clone(),
            core,
            train,
            eval,
            eval_logits,
            eval_steps,
            test_labels: data.test.labels.clone(),
            test_images: data.test.images[..64.min(data.test.n) * 28 * 28].to_vec(),
            _buffers: vec![train_images, train_labels, test_images, test_labels, test_order],
        })
    }

    /// Writes only the model tensors (no optimiser state) to `path`, via a temporary file.
    pub fn export_weights(&self, gpu: &Gpu, path: &Path) -> Result<()> {
        let tensors: Vec<_> = self.state(gpu)?.into_iter().filter(|(n, _)| !n.starts_with("optim.")).collect();
        checkpoint::save(path, &tensors, &Default::default())
    }
}

/// Index of the largest value of each row.
pub fn argmax_rows(x: &[f32], cols: usize) -> Vec<usize> {
    x.chunks(cols)
        .map(|r| r.iter().enumerate().fold((0, f32::NEG_INFINITY), |m, (i, &v)| if v > m.1 { (i, v) } else { m }).0)
        .collect()
}

impl TrainableModel for Classifier {
    fn kind(&self) -> &'static str {
        "classifier"
    }
    fn batch_size(&self) -> usize {
        self.cfg.batch_size
    }
    fn steps_per_epoch(&self) -> usize {
        self.core.steps_per_epoch
    }
    fn loss_names(&self) -> Vec<String> {
        vec!["xent".into()]
    }

    fn start_epoch(&mut self, gpu: &Gpu, epoch: usize) -> Result<()> {
        self.core.start_epoch(gpu, epoch)
    }

    fn step(&mut self, gpu: &Gpu, log: bool) -> Result<()> {
        self.train.step(gpu, log)?;
        self.core.global_step += 1;
        Ok(())
    }

    fn poll_losses(&mut self, gpu: &Gpu, wait: bool) -> Result<Vec<(u64, Vec<f32>)>> {
        Ok(self.train.poll_losses(gpu, wait)?.into_iter().map(|r| (r.steps, r.values)).collect())
    }

    fn global_step(&self) -> u64 {
        self.core.global_step
    }

    fn evaluate(&mut self, gpu: &Gpu) -> Result<Evaluation> {
        self.core.store.set_counter(gpu, EVAL_SLOT, 0);
        let b = self.cfg.batch_size;
        let mut correct = 0;
        for i in 0..self.eval_steps {
            self.eval.step(gpu, i + 1 == self.eval_steps)?;
            let pred = argmax_rows(&self.eval.read(gpu, self.eval_logits)?, CLASSES);
            let truth = &self.test_labels[i * b..(i + 1) * b];
            correct += pred.iter().zip(truth).filter(|(p, t)| **p == **t as usize).count();
        }
        let loss = self.eval.poll_losses(gpu, true)?.last().context("evaluation produced no loss")?.values[0];
        let acc = correct as f64 / (self.eval_steps * b) as f64;
        Ok(Evaluation { figures: vec![("accuracy".into(), acc), ("xent".into(), loss as f64)] })
    }

    fn samples(&mut self, _gpu: &Gpu) -> Result<ImageBatch> {
        // A classifier generates nothing: the grid shows the first test images it is evaluated on.
        let n = self.test_images.len() / (28 * 28);
        let data = self.test_images.iter().map(|&p| p as f32 / 255.0).collect();
        Ok(ImageBatch { data, nchw: [n, 1, 28, 28], range: (0.0, 1.0) })
    }

    fn reconstructions(&mut self, _gpu: &Gpu) -> Result<Option<ImageBatch>> {
        Ok(None)
    }

    fn state(&self, gpu: &Gpu) -> Result<Vec<(String, TensorData)>> {
        let step = self.core.global_step;
        self.core.state(gpu, &|_| step)
    }

    fn load(&mut self, gpu: &Gpu, ckpt: &Checkpoint) -> Result<()> {
        self.core.load(gpu, ckpt)
    }

    fn step_dispatches(&self) -> Vec<&Prepared> {
        self.train.prepared.iter().collect()
    }

    fn step_stats(&self) -> StepStats {
        self.train.last_stats.clone()
    }
}

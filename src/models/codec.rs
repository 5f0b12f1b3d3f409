//! The inference graphs the VAE and the autoencoder share: an encoder that maps chosen test images to
//! their codes, a decoder that maps given codes to images, and the test-set pass that gives the
//! figures and the reconstruction grid. Each is a graph compiled once over the model's parameter store;
//! the encoder and decoder are fed through one small buffer (image indices or codes) per call.

use anyhow::{bail, Context, Result};

use crate::graph::{compile, BoundCall, Executor, Graph, Mode, ParamStore, TensorId};
use crate::nn;
use crate::ops::gather::GatherShape;
use crate::runtime::buffers::Operand;
use crate::runtime::{Gpu, GpuBuffer};
use crate::train::model::ImageBatch;

/// Codes → images, up to `cap` codes per call (eval-mode batchnorm).
pub struct Decoder {
    exec: Executor,
    z: GpuBuffer,
    out: TensorId,
    latent: usize,
    cap: usize,
    /// [channels, height, width] of one image.
    image: [usize; 3],
    range: (f32, f32),
}

impl Decoder {
    /// `build(graph, z)` adds the decoder to `graph` and returns its output, [cap, c, h, w] in `range`.
    pub fn new(
        gpu: &Gpu,
        store: &ParamStore,
        (cap, latent): (usize, usize),
        range: (f32, f32),
        build: impl FnOnce(&mut Graph, TensorId) -> Result<TensorId>,
    ) -> Result<Decoder> {
        let mut g = Graph::new(gpu.kernels());
        let z_t = g.external("z", &[cap, latent]);
        let out = build(&mut g, z_t)?;
        g.mark_output(out);
        let s = g.shape(out).to_vec();
        let steps = compile(&mut g, store, Mode::Forward)?;
        let z = gpu.zeros("decode-z", (cap * latent) as u64 * 4)?;
        let exec = Executor::new(gpu, &g, &steps, store, &[("z", z.whole())])?;
        Ok(Decoder { exec, z, out, latent, cap, image: [s[1], s[2], s[3]], range })
    }

    /// Decodes 1 to `cap` codes of `latent` floats each.
    pub fn decode(&mut self, gpu: &Gpu, z: &[f32]) -> Result<ImageBatch> {
        let n = z.len() / self.latent;
        if n == 0 || n > self.cap || !z.len().is_multiple_of(self.latent) {
            bail!("decode: need 1 to {} codes of {} floats, got {} floats", self.cap, self.latent, z.len());
        }
        let mut padded = z.to_vec();
        padded.resize(self.cap * self.latent, 0.0);
        gpu.write(&self.z, &padded);
        self.exec.step(gpu, false)?;
        let mut data = self.exec.read(gpu, self.out)?;
        let [c, h, w] = self.image;
        data.truncate(n * c * h * w);
        Ok(ImageBatch { data, nchw: [n, c, h, w], range: self.range })
    }
}

/// Chosen test images → their codes (μ for the VAE), up to `cap` images per call.
pub struct Encoder {
    exec: Executor,
    order: GpuBuffer,
    code: TensorId,
    latent: usize,
    cap: usize,
    n_test: usize,
}

impl Encoder {
    /// `shape` gathers from the test split uploaded as `images`; `build(graph, x)` adds the encoder and
    /// returns the code tensor, [cap, latent].
    pub fn new(
        gpu: &Gpu,
        store: &ParamStore,
        (shape, slot): (&GatherShape, usize),
        images: Operand<'_>,
        build: impl FnOnce(&mut Graph, TensorId) -> Result<TensorId>,
    ) -> Result<Encoder> {
        let mut g = Graph::new(gpu.kernels());
        let x = nn::gather(&mut g, "images", shape, slot)?;
        let code = build(&mut g, x)?;
        g.mark_output(code);
        let latent = g.shape(code)[1];
        let steps = compile(&mut g, store, Mode::Forward)?;
        let order = gpu.zeros("encode-order", (shape.batch * 4) as u64)?;
        let exec = Executor::new(gpu, &g, &steps, store, &[("images", images), ("order", order.whole())])?;
        Ok(Encoder { exec, order, code, latent, cap: shape.batch, n_test: shape.n_images })
    }

    /// The codes of test images `indices` (1 to `cap` of them), `latent` floats each.
    pub fn encode(&mut self, gpu: &Gpu, indices: &[usize]) -> Result<Vec<f32>> {
        if indices.is_empty() || indices.len() > self.cap {
            bail!("encode: need 1 to {} test images, got {}", self.cap, indices.len());
        }
        if let Some(&i) = indices.iter().find(|&&i| i >= self.n_test) {
            bail!("encode: test image {i} does not exist (the test set has {} images)", self.n_test);
        }
        let mut order: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        order.resize(self.cap, 0);
        gpu.write(&self.order, &order);
        self.exec.step(gpu, false)?;
        let mut code = self.exec.read(gpu, self.code)?;
        code.truncate(indices.len() * self.latent);
        Ok(code)
    }
}

/// `frames` codes evenly spaced from `a` to `b` (both included), one after another.
pub fn interpolate(a: &[f32], b: &[f32], frames: usize) -> Vec<f32> {
    (0..frames)
        .flat_map(|k| {
            let t = if frames > 1 { k as f32 / (frames - 1) as f32 } else { 0.0 };
            a.iter().zip(b).map(move |(p, q)| p + t * (q - p))
        })
        .collect()
}

/// The test split run through a reconstructing model in eval mode: every whole batch for the figures,
/// or one batch for the originals-above-reconstructions grid. The graph gathers with counter slot
/// `slot`, which this resets before each pass.
pub struct TestPass {
    exec: Executor,
    _order: GpuBuffer,
    steps: usize,
    slot: usize,
    x: TensorId,
    recon: TensorId,
    batch: usize,
    /// [channels, height, width] of one image.
    image: [usize; 3],
}

impl TestPass {
    /// `graph` (already compiled into `list`, with the slot increment appended) gathers `steps`
    /// batches of `batch` test images, in order, from `images` into `x` and reconstructs them into
    /// `recon`.
    pub fn new(
        gpu: &Gpu,
        (graph, list): (&Graph, &[BoundCall]),
        store: &ParamStore,
        images: Operand<'_>,
        (steps, batch, slot): (usize, usize, usize),
        (x, recon): (TensorId, TensorId),
    ) -> Result<TestPass> {
        let order: Vec<u32> = (0..(steps * batch) as u32).collect();
        let order = gpu.upload("test-order", &order)?;
        let exec = Executor::new(gpu, graph, list, store, &[("images", images), ("order", order.whole())])?;
        let s = graph.shape(x);
        if s.len() != 4 {
            bail!("test pass: images of shape {s:?} are not NCHW");
        }
        Ok(TestPass { exec, _order: order, steps, slot, x, recon, batch, image: [s[1], s[2], s[3]] })
    }

    /// Runs every batch; returns `names`' averages over the test split, in order.
    pub fn figures(&mut self, gpu: &Gpu, store: &ParamStore, names: &[&str]) -> Result<Vec<f64>> {
        store.set_counter(gpu, self.slot, 0);
        for i in 0..self.steps {
            self.exec.step(gpu, i + 1 == self.steps)?;
        }
        let reports = self.exec.poll_losses(gpu, true)?;
        let r = reports.last().context("evaluation produced no loss report")?;
        names.iter().map(|n| Ok(self.exec.reported(r, n)? as f64)).collect()
    }

    /// The first `n` images of the first test batch above their reconstructions.
    pub fn reconstructions(&mut self, gpu: &Gpu, store: &ParamStore, n: usize) -> Result<ImageBatch> {
        store.set_counter(gpu, self.slot, 0);
        self.exec.step(gpu, true)?;
        self.exec.poll_losses(gpu, true)?;
        let x = self.exec.read(gpu, self.x)?;
        let r = self.exec.read(gpu, self.recon)?;
        let (n, [c, h, w]) = (n.min(self.batch), self.image);
        let per = c * h * w;
        let mut data = x[..n * per].to_vec();
        data.extend_from_slice(&r[..n * per]);
        Ok(ImageBatch { data, nchw: [2 * n, c, h, w], range: (0.0, 1.0) })
    }
}

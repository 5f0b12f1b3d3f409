//! The GAN's hyper-parameters and which of its two architectures to build.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::models::Upsampling;

/// Which GAN architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// PyTorch `examples/dcgan`'s transposed-conv generator and conv discriminator at 32×32 (28×28
    /// padded by 2) or 64×64, widths set by `ngf` and `ndf`.
    Dcgan,
    /// Fully connected generator (Linear+LeakyReLU+BatchNorm1d ×2, Linear+Tanh) and a conv + max-pool
    /// discriminator, on unpadded 28×28 images.
    Mlp,
    /// Fully connected G (100→128→256→512→784, LeakyReLU, Tanh) and D (784→512→256→128→1, LeakyReLU)
    /// whose logit is trained with BCE-with-logits, on unpadded 28×28 images.
    Fc,
}

impl Arch {
    pub fn parse(s: &str) -> Result<Arch> {
        match s {
            "dcgan" => Ok(Arch::Dcgan),
            "mlp" => Ok(Arch::Mlp),
            "fc" => Ok(Arch::Fc),
            _ => bail!("--arch {s}: expected dcgan, mlp or fc"),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::Dcgan => "dcgan",
            Arch::Mlp => "mlp",
            Arch::Fc => "fc",
        }
    }
    /// Whether D ends in a logit (trained with BCE-with-logits) rather than a sigmoid.
    pub fn logit_d(self) -> bool {
        self == Arch::Fc
    }
    /// D's `--weight-decay` when none is given: the fully connected GAN's L2 penalty of 1e-4.
    pub fn default_weight_decay(self) -> f64 {
        match self {
            Arch::Fc => 1e-4,
            Arch::Dcgan | Arch::Mlp => 0.0,
        }
    }
}

/// The image sides the DCGAN is built for: 32 (three upsampling layers after the first) and 64
/// (four, PyTorch's default).
pub const DCGAN_SIDES: [usize; 2] = [32, 64];

/// The GAN's hyper-parameters: what `train gan` takes, config.json records and `--resume` reads back.
/// Numbers are kept as given (f64) so that config.json prints them so; the GPU works in f32.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GanConfig {
    pub arch: Arch,
    pub batch_size: usize,
    pub lr: f64,
    pub latent: usize,
    pub seed: u64,
    /// Target for real images in the D loss (1 = none; 0.9 is one-sided smoothing).
    pub real_label: f64,
    /// Side of the DCGAN's images (32 or 64); the MLP and FC GANs are 28×28 whatever this says.
    pub image_size: usize,
    /// Width of the DCGAN generator's last hidden layer; the earlier ones double it (`examples/dcgan`'s ngf).
    pub ngf: usize,
    /// Width of the DCGAN discriminator's first layer; the later ones double it (`examples/dcgan`'s ndf).
    pub ndf: usize,
    /// How the DCGAN generator doubles its resolution after the first layer.
    pub upsample: Upsampling,
    /// L2 penalty on D's parameters (PyTorch Adam's `weight_decay`); G never has one.
    pub weight_decay: f64,
}

impl Default for GanConfig {
    fn default() -> Self {
        GanConfig {
            arch: Arch::Dcgan,
            batch_size: 128,
            lr: 2e-4,
            latent: 100,
            seed: 0,
            real_label: 1.0,
            image_size: 32,
            ngf: 64,
            ndf: 64,
            upsample: Upsampling::Transposed,
            weight_decay: 0.0,
        }
    }
}

impl GanConfig {
    /// Refuses out-of-range hyper-parameters before the dataset and the GPU are touched.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size < 2 {
            bail!("--batch-size {}: the GAN needs at least 2 (batchnorm normalises over the batch)", self.batch_size);
        }
        if self.latent == 0 {
            bail!("--latent must be at least 1");
        }
        crate::models::check_lr(self.lr)?;
        if !(self.real_label > 0.0 && self.real_label <= 1.0) {
            bail!("--label-smoothing {}: the real label must be in (0, 1], e.g. 0.9", self.real_label);
        }
        if self.arch == Arch::Dcgan && !DCGAN_SIDES.contains(&self.image_size) {
            bail!("--image-size {}: the DCGAN is built for 32 or 64 pixels", self.image_size);
        }
        if self.arch != Arch::Dcgan && self.upsample != Upsampling::Transposed {
            bail!("--upsample applies to the DCGAN's generator (--arch dcgan)");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail!("--weight-decay {}: must be a number ≥ 0", self.weight_decay);
        }
        if self.ngf == 0 || self.ndf == 0 {
            bail!("--ngf and --ndf must be at least 1 (got {} and {})", self.ngf, self.ndf);
        }
        Ok(())
    }

    /// Side of the images G makes and D judges.
    pub fn side(&self) -> usize {
        match self.arch {
            Arch::Dcgan => self.image_size,
            Arch::Mlp | Arch::Fc => 28,
        }
    }
}

//! The default architectures stay what they were: the first steps of the 32-px DCGAN, the MLP GAN and
//! the conv VAE under their default hyper-parameters (batch shrunk to 8 so the test is quick) give
//! exactly the losses recorded from the models as they stood before the image-size, width and
//! architecture flags were added. A change to initialisation, layer order, widths or padding moves
//! these numbers; a change that only reorganises code does not.
//!
//! The recorded bits are those of each kernel set on lavapipe (the suite's adapter); another adapter
//! rounds its transcendentals differently, so there the test compares against a run of the same model
//! rebuilt from an explicitly spelled-out config instead. They also fix the summation order of every
//! reduction (`ops::reduce::Partition` and the GEMM splits): changing a partition moves the losses by
//! a few ulp and is the one reason to record them anew (a failure prints the new bits).

use crate::common;

use gputrain::data::Dataset;
use gputrain::models::gan::{Arch, Gan, GanConfig};
use gputrain::models::vae::{Vae, VaeArch, VaeConfig};
use gputrain::models::Upsampling;
use gputrain::runtime::KernelSet;
use gputrain::train::model::TrainableModel;

fn tiny() -> Dataset {
    let d = Dataset::embedded().unwrap();
    Dataset { train: common::head(&d.train, 32), test: common::head(&d.test, 16), source: "tiny slice".into() }
}

fn gan_losses(cfg: &GanConfig) -> Vec<f32> {
    let gpu = common::gpu();
    let mut m = Gan::new(gpu, cfg, &tiny()).unwrap();
    m.start_epoch(gpu, 0).unwrap();
    let mut out = Vec::new();
    for _ in 0..3 {
        out.extend(m.step_discriminator(gpu).unwrap());
        out.extend(m.step_generator(gpu).unwrap());
    }
    out
}

fn vae_losses(cfg: &VaeConfig) -> Vec<f32> {
    let gpu = common::gpu();
    let mut m = Vae::new(gpu, cfg, &tiny()).unwrap();
    m.start_epoch(gpu, 0).unwrap();
    let mut out = Vec::new();
    for _ in 0..3 {
        m.step(gpu, true).unwrap();
        for (_, v) in m.poll_losses(gpu, true).unwrap() {
            out.extend(v);
        }
    }
    out
}

/// What the first three iterations report (each step's values in the model's report order), as f32
/// bits, recorded per kernel set on lavapipe.
const RECORDED: [(&str, KernelSet, &[u32]); 6] = [
    (
        "dcgan",
        KernelSet::Lavapipe,
        &[
            0x3f1c6113, 0x3fb8ddf4, 0x3f109ec8, 0x3f416c18, 0x40163d3a, 0x3e8d8bac, 0x3f031d50, 0x3f45350d, 0x3ec51bb6,
            0x40488992, 0x3dce8e06, 0x3e867d0a, 0x3f6819af, 0x3e699c7e, 0x406101fc,
        ],
    ),
    (
        "dcgan",
        KernelSet::Tiled,
        &[
            0x3f1c6118, 0x3fb8ddf9, 0x3f109ec8, 0x3f416c1a, 0x40163d39, 0x3e8d8b9d, 0x3f031d4b, 0x3f453512, 0x3ec51bb0,
            0x40488993, 0x3dce8ddd, 0x3e867d03, 0x3f6819b4, 0x3e699c79, 0x406101cc,
        ],
    ),
    (
        "mlp",
        KernelSet::Lavapipe,
        &[
            0x3f323320, 0x3f3319ce, 0x3eff4066, 0x3f00d2fb, 0x3f31788e, 0x3f316574, 0x3f318d6b, 0x3f0006f4, 0x3f000d42,
            0x3f3279e1, 0x3f31af42, 0x3f30b9c4, 0x3effc567, 0x3eff46ca, 0x3f330266,
        ],
    ),
    (
        "mlp",
        KernelSet::Tiled,
        &[
            0x3f323320, 0x3f3319ce, 0x3eff4066, 0x3f00d2fb, 0x3f31788d, 0x3f316574, 0x3f318d6a, 0x3f0006f4, 0x3f000d42,
            0x3f3279e1, 0x3f31af42, 0x3f30b9c5, 0x3effc567, 0x3eff46cb, 0x3f330266,
        ],
    ),
    (
        "vae",
        KernelSet::Lavapipe,
        &[0x44819958, 0x4481072c, 0x40922ba6, 0x445e68ff, 0x445a2f96, 0x41872d28, 0x44598c72, 0x445450e3, 0x41a771e3],
    ),
    (
        "vae",
        KernelSet::Tiled,
        &[0x44819958, 0x4481072c, 0x40922ba6, 0x445e68fe, 0x445a2f95, 0x41872d28, 0x44598c71, 0x445450e2, 0x41a771e2],
    ),
];

fn recorded(model: &str) -> Option<Vec<f32>> {
    let gpu = common::gpu();
    if !gpu.info.name.contains("llvmpipe") {
        return None;
    }
    let (_, _, bits) = RECORDED.iter().find(|(m, k, _)| *m == model && *k == gpu.kernel_set)?;
    Some(bits.iter().map(|b| f32::from_bits(*b)).collect())
}

fn check(model: &str, defaults: Vec<f32>, spelled_out: Vec<f32>) {
    assert_eq!(defaults, spelled_out, "{model}: the defaults are not the spelled-out architecture");
    if let Some(want) = recorded(model) {
        let bits: Vec<String> = defaults.iter().map(|v| format!("{:#010x}", v.to_bits())).collect();
        assert_eq!(defaults, want, "{model}: the default model's first losses moved; now [{}]", bits.join(", "));
    }
}

#[test]
fn the_default_dcgan_is_the_32_px_model_it_was() {
    let defaults = gan_losses(&GanConfig { batch_size: 8, ..Default::default() });
    let spelled = gan_losses(&GanConfig {
        arch: Arch::Dcgan,
        batch_size: 8,
        latent: 100,
        seed: 0,
        image_size: 32,
        ngf: 64,
        ndf: 64,
        upsample: Upsampling::Transposed,
        weight_decay: 0.0,
        ..Default::default()
    });
    check("dcgan", defaults, spelled);
}

#[test]
fn the_default_mlp_gan_is_the_model_it_was() {
    let defaults = gan_losses(&GanConfig { arch: Arch::Mlp, batch_size: 8, ..Default::default() });
    let spelled = gan_losses(&GanConfig { arch: Arch::Mlp, batch_size: 8, latent: 100, seed: 0, ..Default::default() });
    check("mlp", defaults, spelled);
}

#[test]
fn the_default_vae_is_the_conv_model_it_was() {
    let defaults = vae_losses(&VaeConfig { batch_size: 8, ..Default::default() });
    let spelled = vae_losses(&VaeConfig {
        arch: VaeArch::Conv,
        batch_size: 8,
        latent: 32,
        seed: 0,
        hidden: vec![400],
        upsample: Upsampling::Transposed,
        ..Default::default()
    });
    check("vae", defaults, spelled);
}

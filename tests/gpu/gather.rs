use crate::common;

use common::*;
use gputrain::ops::gather::{self, GatherShape};
use rand::{Rng, SeedableRng};

fn check(s: GatherShape, step: u32) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(step as u64);
    let pixels: Vec<u8> = (0..s.n_images * s.channels * s.src_h * s.src_w).map(|_| rng.random()).collect();
    let mut order: Vec<u32> = (0..s.n_images as u32).collect();
    order.reverse();
    order.truncate(s.order_len());
    let g = gpu();
    let images = g.upload("images", &gather::pack_u8(&pixels)).unwrap();
    let order_buf = g.upload("order", &order).unwrap();
    let counters = g.upload("counters", &[0u32, step]).unwrap();
    let out = g.zeros("out", s.out_len() as u64 * 4).unwrap();
    let ops = [images.whole(), order_buf.whole(), counters.whole(), out.whole()];
    g.run(&gather::forward(&s, 1).unwrap(), &ops).unwrap();
    let got = to_f64(&g.read_f32(out.whole()).unwrap());
    let want = gather::cpu_forward(&s, &pixels, &order, step as usize);
    // v·scale + shift for v ≤ 255 is exact to one f32 rounding (~1e-7 relative).
    assert_close(&format!("gather {s:?} step {step}"), &got, &want, 1e-6, 1e-6);
}

#[test]
fn gather_matches_cpu_reference() {
    let vae = GatherShape {
        batch: 3,
        channels: 1,
        src_h: 28,
        src_w: 28,
        pad: 2,
        n_images: 10,
        steps_per_epoch: 3,
        scale: 1.0 / 255.0,
        shift: 0.0,
    };
    for step in [0, 1, 2, 5] {
        check(vae, step);
    }
    // GAN normalisation to [-1, 1]: padding becomes -1.
    check(GatherShape { scale: 2.0 / 255.0, shift: -1.0, ..vae }, 4);
    // Colour images with odd sizes and no padding.
    check(
        GatherShape {
            batch: 2,
            channels: 3,
            src_h: 5,
            src_w: 7,
            pad: 0,
            n_images: 5,
            steps_per_epoch: 2,
            scale: 1.0,
            shift: 0.0,
        },
        1,
    );
}

#[test]
fn gather_refuses_more_batches_than_images() {
    let s = GatherShape {
        batch: 4,
        channels: 1,
        src_h: 2,
        src_w: 2,
        pad: 0,
        n_images: 5,
        steps_per_epoch: 2,
        scale: 1.0,
        shift: 0.0,
    };
    let e = gather::forward(&s, 0).unwrap_err().to_string();
    assert!(e.contains("gather_forward") && e.contains("dataset has 5"), "{e}");
}

#[test]
fn pack_u8_is_little_endian() {
    assert_eq!(gather::pack_u8(&[1, 2, 3, 4, 5]), vec![0x0403_0201, 5]);
}

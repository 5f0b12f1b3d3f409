//! `sample gan` as a user runs it: a checkpoint trained for two steps on the tiny IDX dataset of
//! cli_vae.rs, sampled past one generator batch as a PNG grid and as an .npy array in [−1, 1].

use image::GenericImageView;

use super::cli_vae::{cli, write_dataset};

#[test]
fn sample_gan_writes_grids_and_arrays_of_any_count() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_dataset(&dir.join("data"));
    let train = ["train", "gan", "--data", "data", "--batch-size", "8", "--max-steps", "2", "--score-samples", "0"];
    let (code, out, err) = cli(&[&train[..], &["--out", "run", "--quiet"]].concat(), dir);
    assert_eq!(code, 0, "{out}\n{err}");
    let ck = ["sample", "gan", "--checkpoint", "run/checkpoints/last.safetensors"];

    let (code, out, err) = cli(&[&ck[..], &["--n", "70", "--format", "npy"]].concat(), dir);
    assert_eq!(code, 0, "{out}\n{err}");
    let (shape, values) = crate::images::read_npy(&dir.join("samples.npy"));
    assert_eq!(shape, [70, 1, 32, 32]);
    assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)), "values outside [−1, 1]");
    // Images past the first generator batch are generated, not padding.
    let last = &values[69 * 1024..];
    assert!(last.iter().any(|&v| v != last[0]), "the 70th image is constant");

    let (code, _, err) = cli(&[&ck[..], &["--n", "7"]].concat(), dir);
    assert_eq!(code, 0, "{err}");
    assert_eq!(image::open(dir.join("samples.png")).unwrap().dimensions(), (3 * 34 + 2, 3 * 34 + 2));

    let (code, _, err) = cli(&[&ck[..], &["--n", "50001"]].concat(), dir);
    assert_eq!(code, 1);
    assert!(crate::common::error_line(&err).contains("--n 50001"), "{err}");
}

//! The training and test images in host memory, found in order: `--data DIR`, the Debian package's
//! directory ([`DEBIAN_DIR`]), then the Fashion-MNIST subset compiled into the binary (assets/). A
//! `--data DIR` without IDX or CIFAR-10 files is a folder of ordinary images ([`super::folder`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::folder;
use super::idx;
pub use super::options::LoadOptions;
pub use super::resize::resize_split;
use super::split::Split;

/// Where Debian's `fashion-mnist` package installs the full dataset.
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

const EMBEDDED: [(&str, &[u8]); 4] = [
    ("train-images-idx3-ubyte.gz", include_bytes!("../../assets/fashion-mnist-subset/train-images-idx3-ubyte.gz")),
    ("train-labels-idx1-ubyte.gz", include_bytes!("../../assets/fashion-mnist-subset/train-labels-idx1-ubyte.gz")),
    ("t10k-images-idx3-ubyte.gz", include_bytes!("../../assets/fashion-mnist-subset/t10k-images-idx3-ubyte.gz")),
    ("t10k-labels-idx1-ubyte.gz", include_bytes!("../../assets/fashion-mnist-subset/t10k-labels-idx1-ubyte.gz")),
];

/// The training and test splits and a description of where they came from.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub train: Split,
    pub test: Split,
    /// The directory used, or "embedded Fashion-MNIST subset (N train, M test)", or for an image folder
    /// "DIR (image folder: 1234 images → 64×64×3, 2 skipped, cached)".
    pub source: String,
}

impl Dataset {
    /// Looks up the dataset in order: `data_dir` if given (a failure there is an error, never a silent
    /// fallback), else [`DEBIAN_DIR`] if any of its files exist (a broken file there is an error too, so a
    /// damaged install is not mistaken for the small subset), else the embedded subset. `opts` is
    /// validated whatever the format; its image size and channels apply to image folders only.
    pub fn load(data_dir: Option<&Path>, opts: &LoadOptions) -> Result<Dataset> {
        opts.validate()?;
        if let Some(dir) = data_dir {
            return Dataset::from_dir_with(dir, opts).with_context(|| format!("loading --data {}", dir.display()));
        }
        let debian = Path::new(DEBIAN_DIR);
        if STEMS.iter().any(|s| find(debian, s).is_some()) {
            return Dataset::from_dir(debian).with_context(|| format!("loading {DEBIAN_DIR} (use --data DIR instead)"));
        }
        Dataset::embedded()
    }

    /// Reads CIFAR-10 binary batches if `dir` has them (see [`super::cifar`]), else `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
    /// `t10k-labels-idx1-ubyte` from `dir`, each optionally `.gz` (also accepted: the `.idx3-ubyte` spelling).
    /// A directory with none of these is an image folder, loaded with the default [`LoadOptions`].
    pub fn from_dir(dir: &Path) -> Result<Dataset> {
        Dataset::from_dir_with(dir, &LoadOptions::default())
    }

    /// [`Dataset::from_dir`] with `opts` for an image folder, whose warnings (skipped files, an
    /// unwritable cache) are printed to stderr.
    pub fn from_dir_with(dir: &Path, opts: &LoadOptions) -> Result<Dataset> {
        if !dir.is_dir() {
            bail!("{}: not a directory", dir.display());
        }
        let idx_present = STEMS.iter().any(|s| find(dir, s).is_some());
        if !idx_present && !super::cifar::present(dir) {
            let f = folder::load(dir, opts)?;
            for w in f.warnings(dir) {
                eprintln!("warning: {w}");
            }
            let how = if f.cached { "read from the image cache" } else { "decoded" };
            eprintln!("{}: {} images {how} in {:.1} s", dir.display(), f.n, f.seconds);
            let source = format!("{} ({})", dir.display(), f.describe());
            return Ok(Dataset { train: f.train, test: f.test, source });
        }
        if super::cifar::present(dir) && !idx_present {
            let (train, test) = super::cifar::load(dir)?;
            return Ok(Dataset { train, test, source: format!("{} (CIFAR-10 binary)", dir.display()) });
        }
        let mut paths = Vec::new();
        for stem in STEMS {
            let p = find(dir, stem).with_context(|| {
                format!("{}: no {stem} or {stem}.gz (nor the {} spelling)", dir.display(), dotted(stem))
            })?;
            paths.push(p);
        }
        let split = |images: &PathBuf, labels: &PathBuf| -> Result<Split> {
            let (ni, nl) = (images.display().to_string(), labels.display().to_string());
            Split::new(idx::read_images(images)?, idx::read_labels(labels)?, &ni, &nl)
        };
        let train = split(&paths[0], &paths[1])?;
        let test = split(&paths[2], &paths[3])?;
        check_same_dims(&train, &test, &paths[0].display().to_string(), &paths[2].display().to_string())?;
        Ok(Dataset { train, test, source: dir.display().to_string() })
    }

    /// The first 10 000 training and first 2 000 test images of Fashion-MNIST, compiled into the binary.
    pub fn embedded() -> Result<Dataset> {
        let name = |i: usize| format!("embedded {}", EMBEDDED[i].0);
        let split = |i: usize| -> Result<Split> {
            let images = idx::parse_images(EMBEDDED[i].1, &name(i))?;
            let labels = idx::parse_labels(EMBEDDED[i + 1].1, &name(i + 1))?;
            Split::new(images, labels, &name(i), &name(i + 1))
        };
        let train = split(0)?;
        let test = split(2)?;
        check_same_dims(&train, &test, &name(0), &name(2))?;
        let source = format!("embedded Fashion-MNIST subset ({} train, {} test)", train.n, test.n);
        Ok(Dataset { train, test, source })
    }
}

const STEMS: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/// `train-images-idx3-ubyte` → `train-images.idx3-ubyte`, the spelling of some redistributions.
fn dotted(stem: &str) -> String {
    match stem.rfind("-idx") {
        Some(i) => format!("{}.{}", &stem[..i], &stem[i + 1..]),
        None => stem.to_string(),
    }
}

fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    let d = dotted(stem);
    [format!("{stem}.gz"), stem.to_string(), format!("{d}.gz"), d]
        .into_iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

fn check_same_dims(train: &Split, test: &Split, train_name: &str, test_name: &str) -> Result<()> {
    if (train.h, train.w) != (test.h, test.w) {
        bail!("{train_name} has {}×{} images but {test_name} has {}×{}", train.h, train.w, test.h, test.w);
    }
    Ok(())
}

//! Image folders as datasets (src/data/folder.rs): formats, modes, crop and resize, channels, the cache,
//! skipped files, refusals and the seeded split. CPU only. Each test keeps its cache in its own
//! temporary directory through `load_with_cache`, rather than setting `$GPUTRAIN_CACHE_DIR`, which
//! would race with the other tests of this process.

use std::fs::{self, File};
use std::path::Path;
use std::time::Duration;

use gputrain::data::folder::{self, FolderData};
use gputrain::data::folder_cache;
use gputrain::data::{resize_split, Dataset, LoadOptions, Split};
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};

fn save(dir: &Path, rel: &str, img: DynamicImage, fmt: ImageFormat) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    img.save_with_format(&p, fmt).unwrap();
}

fn rgb(w: u32, h: u32, c: [u8; 3]) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_pixel(w, h, Rgb(c)))
}

fn grey(w: u32, h: u32, v: u8) -> DynamicImage {
    DynamicImage::ImageLuma8(ImageBuffer::from_pixel(w, h, Luma([v])))
}

/// An indexed PNG: a 3-colour palette, every pixel index 1.
fn save_palette_png(path: &Path, w: u32, h: u32, palette: [[u8; 3]; 3]) {
    let mut enc = png::Encoder::new(File::create(path).unwrap(), w, h);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_palette(palette.concat());
    let mut wr = enc.write_header().unwrap();
    wr.write_image_data(&vec![1u8; (w * h) as usize]).unwrap();
}

fn opts(side: usize, channels: Option<usize>) -> LoadOptions {
    LoadOptions { image_size: Some(side), channels, ..LoadOptions::default() }
}

fn load(dir: &Path, o: &LoadOptions, cache: &Path) -> FolderData {
    folder::load_with_cache(dir, o, Some(cache)).unwrap()
}

/// Image `i` of the folder (in sorted-name order), wherever the split put it.
fn image(f: &FolderData, i: usize) -> &[u8] {
    match f.test_index.binary_search(&i) {
        Ok(t) => f.test.image(t),
        Err(before) => f.train.image(i - before),
    }
}

fn by_name<'a>(f: &'a FolderData, name: &str) -> &'a [u8] {
    let i = f.names.iter().position(|n| n == name).unwrap_or_else(|| panic!("{name} not in {:?}", f.names));
    image(f, i)
}

/// Asserts that a CHW image is `colour` in every pixel, each byte within `tol`.
fn assert_uniform(px: &[u8], colour: &[u8], tol: u8, what: &str) {
    let plane = px.len() / colour.len();
    for (c, want) in colour.iter().enumerate() {
        for &v in &px[c * plane..(c + 1) * plane] {
            assert!(v.abs_diff(*want) <= tol, "{what}: channel {c} has {v}, expected {want} ± {tol}");
        }
    }
}

#[test]
fn every_format_and_mode_keeps_a_uniform_colour() {
    let (tmp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = tmp.path();
    save(d, "a_rgb.png", rgb(40, 30, [200, 30, 90]), ImageFormat::Png);
    save(d, "b_photo.jpg", rgb(17, 50, [40, 160, 220]), ImageFormat::Jpeg);
    save(d, "c.bmp", rgb(20, 20, [10, 250, 5]), ImageFormat::Bmp);
    save(d, "d.gif", rgb(33, 21, [255, 0, 0]), ImageFormat::Gif);
    save(d, "e.webp", rgb(25, 25, [0, 0, 255]), ImageFormat::WebP);
    let rgba = ImageBuffer::from_pixel(9, 14, Rgba([120, 60, 30, 255]));
    save(d, "f_opaque_rgba.png", DynamicImage::ImageRgba8(rgba), ImageFormat::Png);
    let half = ImageBuffer::from_pixel(12, 12, Rgba([200, 100, 50, 128]));
    save(d, "g_half_alpha.png", DynamicImage::ImageRgba8(half), ImageFormat::Png);
    save_palette_png(&d.join("h_palette.png"), 31, 19, [[1, 2, 3], [70, 140, 210], [9, 9, 9]]);
    let rgb16 = ImageBuffer::from_pixel(16, 10, Rgb([0x6464u16, 0xc8c8, 0x0a0a]));
    save(d, "i_rgb16.png", DynamicImage::ImageRgb16(rgb16), ImageFormat::Png);
    save(d, "nested/deeper/j_grey.png", grey(13, 13, 77), ImageFormat::Png);
    save(d, "UPPER.PNG", rgb(8, 8, [1, 2, 250]), ImageFormat::Png);

    let f = load(d, &opts(8, None), cache.path());
    assert_eq!(f.n, 11, "{:?} skipped {:?}", f.names, f.skipped);
    let mut sorted = f.names.clone();
    sorted.sort();
    assert_eq!(f.names, sorted, "images in sorted path order");
    assert!(f.skipped.is_empty(), "{:?}", f.skipped);
    assert_eq!((f.train.channels, f.train.h, f.train.w), (3, 8, 8), "one colour image makes the folder RGB");
    let cases: [(&str, [u8; 3], u8); 11] = [
        ("a_rgb.png", [200, 30, 90], 0),
        ("b_photo.jpg", [40, 160, 220], 3),
        ("c.bmp", [10, 250, 5], 0),
        ("d.gif", [255, 0, 0], 2),
        ("e.webp", [0, 0, 255], 0),
        ("f_opaque_rgba.png", [120, 60, 30], 0),
        // Composited over black: 200·128/255 = 100.4, 100·128/255 = 50.2, 50·128/255 = 25.1.
        ("g_half_alpha.png", [100, 50, 25], 0),
        ("h_palette.png", [70, 140, 210], 0),
        ("i_rgb16.png", [0x64, 0xc8, 0x0a], 0),
        ("nested/deeper/j_grey.png", [77, 77, 77], 0),
        ("UPPER.PNG", [1, 2, 250], 0),
    ];
    for (name, colour, tol) in cases {
        assert_uniform(by_name(&f, name), &colour, tol, name);
    }
    assert_eq!(f.train.n + f.test.n, 11);
    assert!(f.train.labels.iter().chain(&f.test.labels).all(|&l| l == 0));
}

#[test]
fn only_the_centre_square_is_kept() {
    let (tmp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // 60×20: the centre 20×20 is red, the 20-pixel sides blue; 20×61: the centre 20×21 rows green,
    // the odd extra row (which the crop leaves at the bottom) and the rest white.
    let wide =
        ImageBuffer::from_fn(60, 20, |x, _| if (20..40).contains(&x) { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
    save(tmp.path(), "wide.png", DynamicImage::ImageRgb8(wide), ImageFormat::Png);
    let tall =
        ImageBuffer::from_fn(
            20,
            61,
            |_, y| if (20..40).contains(&y) { Rgb([0, 255, 0]) } else { Rgb([255, 255, 255]) },
        );
    save(tmp.path(), "tall.png", DynamicImage::ImageRgb8(tall), ImageFormat::Png);
    for side in [8, 20, 37] {
        let f = load(tmp.path(), &opts(side, Some(3)), cache.path());
        assert_eq!(f.train.h, side);
        assert_uniform(by_name(&f, "wide.png"), &[255, 0, 0], 0, "wide");
        assert_uniform(by_name(&f, "tall.png"), &[0, 255, 0], 0, "tall");
    }
}

#[test]
fn downscaling_averages_instead_of_aliasing() {
    // A one-pixel checkerboard of 0 and 255: an antialiasing filter gives mid-grey, point sampling
    // would give 0 or 255.
    let (tmp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let board = ImageBuffer::from_fn(64, 64, |x, y| Luma([if (x + y) % 2 == 0 { 0u8 } else { 255 }]));
    save(tmp.path(), "board.png", DynamicImage::ImageLuma8(board.clone()), ImageFormat::Png);
    save(tmp.path(), "board2.png", DynamicImage::ImageLuma8(board), ImageFormat::Png);
    let f = load(tmp.path(), &opts(8, None), cache.path());
    assert_uniform(by_name(&f, "board.png"), &[128], 3, "checkerboard");
}

#[test]
fn greyscale_folder_is_one_channel_and_channels_can_be_forced() {
    let (tmp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = tmp.path();
    save(d, "l8.png", grey(30, 20, 200), ImageFormat::Png);
    let l16 = ImageBuffer::from_pixel(10, 10, Luma([0x2b2bu16]));
    save(d, "l16.png", DynamicImage::ImageLuma16(l16), ImageFormat::Png);
    save(d, "grey.jpg", grey(16, 16, 128), ImageFormat::Jpeg);
    let la = ImageBuffer::from_pixel(10, 10, LumaA([255u8, 51]));
    save(d, "la8.png", DynamicImage::ImageLumaA8(la), ImageFormat::Png);

    let f = load(d, &opts(6, None), cache.path());
    assert_eq!(f.train.channels, 1);
    assert_uniform(by_name(&f, "l8.png"), &[200], 0, "l8");
    assert_uniform(by_name(&f, "l16.png"), &[0x2b], 0, "l16");
    assert_uniform(by_name(&f, "grey.jpg"), &[128], 2, "grey jpeg");
    assert_uniform(by_name(&f, "la8.png"), &[51], 0, "la8 over black");

    let f3 = load(d, &opts(6, Some(3)), cache.path());
    assert_eq!(f3.train.channels, 3);
    assert_uniform(by_name(&f3, "l8.png"), &[200, 200, 200], 0, "l8 as RGB");

    // Red alone in a folder asked for 1 channel: Rec. 709 luma 0.2126·255 = 54.2.
    save(d, "red.png", rgb(7, 9, [255, 0, 0]), ImageFormat::Png);
    let f1 = load(d, &opts(6, Some(1)), cache.path());
    assert_eq!(f1.train.channels, 1);
    assert_uniform(by_name(&f1, "red.png"), &[54], 1, "red as luma");
    assert_eq!(load(d, &opts(6, None), cache.path()).train.channels, 3, "now one image has colour");
}

#[test]
fn second_load_comes_from_the_cache_until_a_file_changes() {
    let (tmp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = tmp.path();
    for i in 0..6u8 {
        save(d, &format!("class{}/{i}.png", i % 2), rgb(10 + i as u32, 12, [i * 40, 7, 9]), ImageFormat::Png);
    }
    let o = opts(8, None);
    let first = load(d, &o, cache.path());
    assert!(!first.cached);
    assert!(first.cache_warning.is_none(), "{:?}", first.cache_warning);

    // Garbage of the same size with the old mtime: a hit must not read the file at all.
    let p = d.join("class0/2.png");
    let (len, mtime) = (fs::metadata(&p).unwrap().len(), fs::metadata(&p).unwrap().modified().unwrap());
    fs::write(&p, vec![0xAB; len as usize]).unwrap();
    File::options().write(true).open(&p).unwrap().set_modified(mtime).unwrap();
    let hit = load(d, &o, cache.path());
    assert!(hit.cached);
    assert!(hit.skipped.is_empty(), "{:?}", hit.skipped);
    assert_eq!(
        (hit.train.images.clone(), hit.test.images.clone()),
        (first.train.images.clone(), first.test.images.clone())
    );
    assert!(hit.describe().ends_with(", cached"), "{}", hit.describe());

    // Touching the file invalidates: now it is decoded, found corrupt and skipped.
    File::options().write(true).open(&p).unwrap().set_modified(mtime + Duration::from_secs(5)).unwrap();
    let touched = load(d, &o, cache.path());
    assert!(!touched.cached);
    assert_eq!(touched.n, 5);
    assert_eq!(touched.skipped.len(), 1);

    // Rewriting it (new content, new size) and adding or removing a file each invalidate too.
    save(d, "class0/2.png", rgb(50, 12, [1, 2, 3]), ImageFormat::Png);
    let rewritten = load(d, &o, cache.path());
    assert!(!rewritten.cached && rewritten.n == 6);
    assert_uniform(by_name(&rewritten, "class0/2.png"), &[1, 2, 3], 0, "rewritten");
    assert!(load(d, &o, cache.path()).cached);
    save(d, "new.bmp", rgb(5, 5, [9, 9, 9]), ImageFormat::Bmp);
    let added = load(d, &o, cache.path());
    assert!(!added.cached && added.n == 7);
    fs::remove_file(d.join("class1/5.png")).unwrap();
    let removed = load(d, &o, cache.path());
    assert!(!removed.cached && removed.n == 6);
    // A different size or channel request is its own cache entry.
    assert!(!load(d, &opts(4, None), cache.path()).cached);
    assert!(load(d, &o, cache.path()).cached);
    // Only the split depends on the seed, so a new seed is still a hit.
    assert!(load(d, &LoadOptions { seed: 9, ..o.clone() }, cache.path()).cached);
}

#[test]
fn a_damaged_or_unwritable_cache_is_ignored() {
    let (tmp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for i in 0..4u8 {
        save(tmp.path(), &format!("{i}.png"), rgb(9, 9, [i, 100, 200]), ImageFormat::Png);
    }
    let o = opts(5, None);
    let first = load(tmp.path(), &o, cache.path());
    let files: Vec<_> = fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "one cache file, no temporary left: {files:?}");
    let bytes = fs::read(&files[0]).unwrap();
    for damaged in [bytes[..bytes.len() / 2].to_vec(), b"not a cache".to_vec(), Vec::new(), {
        let mut b = bytes.clone();
        let mid = b.len() / 2;
        b[mid] ^= 0xff;
        b
    }] {
        fs::write(&files[0], &damaged).unwrap();
        let again = load(tmp.path(), &o, cache.path());
        assert!(!again.cached, "a damaged cache ({} bytes) must be a miss", damaged.len());
        assert_eq!(again.train.images, first.train.images);
        assert!(load(tmp.path(), &o, cache.path()).cached, "and is rewritten");
    }

    // A cache "directory" that is a file: the load succeeds and says why nothing was cached.
    let blocker = cache.path().join("blocker");
    fs::write(&blocker, b"x").unwrap();
    let f = load(tmp.path(), &o, &blocker);
    assert!(!f.cached && f.n == 4);
    let w = f.cache_warning.clone().expect("a warning");
    assert!(w.contains("not written") && w.contains("blocker"), "{w}");
    assert!(f.warnings(tmp.path()).iter().any(|x| x.contains("not written")));
}

#[test]
fn cache_directory_comes_from_the_environment_or_the_platform() {
    assert_eq!(folder_cache::resolve_dir(Some("/some/where".into())).unwrap(), Path::new("/some/where"));
    if let Some(d) = folder_cache::resolve_dir(None) {
        assert!(d.ends_with("gputrain"), "{}", d.display());
    }
}

#[test]
fn corrupt_empty_hidden_and_other_files() {
    let (tmp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = tmp.path();
    for i in 0..3u8 {
        save(d, &format!("ok{i}.png"), rgb(6, 6, [i, i, i + 1]), ImageFormat::Png);
    }
    fs::write(d.join("bad.png"), b"\x89PNG\r\n\x1a\n garbage after a PNG signature").unwrap();
    fs::write(d.join("empty.jpg"), b"").unwrap();
    let mut truncated = Vec::new();
    rgb(64, 64, [5, 6, 7]).write_to(&mut std::io::Cursor::new(&mut truncated), ImageFormat::Png).unwrap();
    fs::create_dir_all(d.join("sub")).unwrap();
    fs::write(d.join("sub/truncated.png"), &truncated[..truncated.len() / 2]).unwrap();
    // Not counted: hidden files and folders, other extensions.
    fs::write(d.join(".hidden.png"), b"junk").unwrap();
    fs::create_dir_all(d.join(".thumbs")).unwrap();
    fs::write(d.join(".thumbs/t.png"), b"junk").unwrap();
    fs::write(d.join("notes.txt"), b"hello").unwrap();

    let f = load(d, &opts(4, None), cache.path());
    assert_eq!(f.n, 3);
    let names: Vec<&str> = f.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["bad.png", "empty.jpg", "sub/truncated.png"]);
    assert!(f.describe().contains("3 images → 4×4×3, 3 skipped"), "{}", f.describe());
    let w = f.warnings(d).join("\n");
    assert!(w.contains("3 file(s) skipped") && w.contains("bad.png") && w.contains("empty.jpg"), "{w}");
    // The skipped list survives a cache hit.
    let hit = load(d, &opts(4, None), cache.path());
    assert!(hit.cached);
    assert_eq!(hit.skipped, f.skipped);
}

#[test]
fn folders_without_images_are_refused_by_name() {
    let cache = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let e = format!("{:#}", Dataset::load(Some(empty.path()), &LoadOptions::default()).unwrap_err());
    assert!(e.contains(&empty.path().display().to_string()) && e.contains("no image files"), "{e}");

    let other = tempfile::tempdir().unwrap();
    fs::write(other.path().join("readme.txt"), b"no pictures").unwrap();
    fs::write(other.path().join(".secret.png"), b"hidden").unwrap();
    let e = format!("{:#}", folder::load_with_cache(other.path(), &opts(8, None), Some(cache.path())).err().unwrap());
    assert!(e.contains(&other.path().display().to_string()) && e.contains("no image files"), "{e}");

    let broken = tempfile::tempdir().unwrap();
    fs::write(broken.path().join("a.png"), b"nope").unwrap();
    fs::write(broken.path().join("b.jpg"), b"").unwrap();
    let e = format!("{:#}", folder::load_with_cache(broken.path(), &opts(8, None), Some(cache.path())).err().unwrap());
    assert!(e.contains(&broken.path().display().to_string()) && e.contains("none of its 2"), "{e}");

    let one = tempfile::tempdir().unwrap();
    save(one.path(), "only.png", grey(4, 4, 1), ImageFormat::Png);
    let e = format!("{:#}", folder::load_with_cache(one.path(), &opts(8, None), Some(cache.path())).err().unwrap());
    assert!(e.contains("at least 2"), "{e}");
}

#[test]
fn bad_options_are_refused_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    for f in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        let o = LoadOptions { test_fraction: f, ..LoadOptions::default() };
        let e = format!("{:#}", Dataset::load(Some(tmp.path()), &o).unwrap_err());
        assert!(e.contains("test fraction") && e.contains("between 0 and 1"), "{f}: {e}");
    }
    let e =
        format!("{:#}", Dataset::load(None, &LoadOptions { channels: Some(2), ..LoadOptions::default() }).unwrap_err());
    assert!(e.contains("channels 2"), "{e}");
    let e = format!(
        "{:#}",
        Dataset::load(None, &LoadOptions { image_size: Some(0), ..LoadOptions::default() }).unwrap_err()
    );
    assert!(e.contains("image size 0"), "{e}");
}

#[test]
fn split_sizes_follow_the_fraction_and_the_seed() {
    let (tmp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for i in 0..20u8 {
        save(tmp.path(), &format!("{i:02}.png"), grey(5, 5, i * 10), ImageFormat::Png);
    }
    let with = |fraction: f64, seed: u64| {
        let o = LoadOptions { image_size: Some(4), channels: None, test_fraction: fraction, seed };
        load(tmp.path(), &o, cache.path())
    };
    let a = with(0.25, 1);
    assert_eq!((a.train.n, a.test.n, a.test_index.len()), (15, 5, 5));
    assert_eq!(a.train.images.len(), 15 * 16);
    // Every image lands in exactly one split, and the test images are the ones test_index names.
    let mut values: Vec<u8> = a.train.images.chunks(16).chain(a.test.images.chunks(16)).map(|im| im[0]).collect();
    values.sort_unstable();
    assert_eq!(values, (0..20).map(|i| i * 10).collect::<Vec<u8>>());
    for (t, &i) in a.test_index.iter().enumerate() {
        assert_uniform(a.test.image(t), &[i as u8 * 10], 0, "test image");
    }
    assert_eq!(with(0.25, 1).test_index, a.test_index, "same seed, same split");
    let others: Vec<Vec<usize>> = (2..6).map(|s| with(0.25, s).test_index).collect();
    assert!(others.iter().any(|t| *t != a.test_index), "the seed moves the split");
    assert_eq!(with(0.01, 0).test.n, 1, "at least one test image");
    assert_eq!(with(0.99, 0).train.n, 1, "at least one training image");
    assert_eq!(with(0.5, 3).test.n, 10);
}

#[test]
fn resize_split_brings_fashion_mnist_to_64_like_a_folder() {
    let d = Dataset::embedded().unwrap();
    let small = Split {
        images: d.test.images[..4 * 784].to_vec(),
        labels: d.test.labels[..4].to_vec(),
        n: 4,
        ..d.test.clone()
    };
    let big = resize_split(&small, 64);
    assert_eq!((big.n, big.h, big.w, big.channels, big.images.len()), (4, 64, 64, 1, 4 * 64 * 64));
    assert_eq!(big.labels, small.labels);
    assert_eq!(resize_split(&small, 28).images, small.images, "same size is a copy");

    // The same image written as a PNG and loaded as a folder gives the same bytes: one filter.
    let (tmp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for i in 0..2 {
        let img = ImageBuffer::<Luma<u8>, _>::from_raw(28, 28, small.image(i).to_vec()).unwrap();
        save(tmp.path(), &format!("{i}.png"), DynamicImage::ImageLuma8(img), ImageFormat::Png);
    }
    let f = load(tmp.path(), &opts(64, None), cache.path());
    assert_eq!(f.train.channels, 1);
    for i in 0..2 {
        assert_eq!(by_name(&f, &format!("{i}.png")), big.image(i), "image {i}");
    }

    // A uniform 3-channel split stays uniform; a non-square one is centre-cropped.
    let uniform = Split {
        images: [vec![10u8; 12 * 20], vec![20; 12 * 20], vec![30; 12 * 20]].concat(),
        labels: vec![7],
        n: 1,
        h: 12,
        w: 20,
        channels: 3,
    };
    let r = resize_split(&uniform, 9);
    assert_eq!((r.h, r.w, r.channels), (9, 9, 3));
    assert_uniform(r.image(0), &[10, 20, 30], 0, "uniform split");
}

#[test]
fn large_photos_are_cropped_and_brought_down() {
    // A 3000×2000 photo whose centre 2000×2000 square is one colour and whose side bands another: only
    // the centre colour survives the crop and the ~31× reduction (JPEG moves each value a little).
    let (tmp, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let photo = ImageBuffer::from_fn(3000, 2000, |x, _| {
        if (500..2500).contains(&x) {
            Rgb([200u8, 40, 120])
        } else {
            Rgb([0u8, 255, 0])
        }
    });
    save(tmp.path(), "a.jpg", DynamicImage::ImageRgb8(photo.clone()), ImageFormat::Jpeg);
    save(tmp.path(), "b.jpg", DynamicImage::ImageRgb8(photo), ImageFormat::Jpeg);
    let f = load(tmp.path(), &opts(64, None), cache.path());
    assert_eq!(f.n, 2);
    for split in [&f.train, &f.test] {
        assert_eq!((split.h, split.w, split.channels), (64, 64, 3));
        for i in 0..split.n {
            assert_uniform(split.image(i), &[200, 40, 120], 6, "large photo");
        }
    }
}

"""PyTorch CPU reference for the numbers gputrain is compared against (not part of the build).

  python pytorch_models.py time [--device cpu|cuda] [--batch-size 32,128] [--mode eager,graph] [--json]
      # ms per VAE and DCGAN training step: median of --steps (50) synchronised steps after --warmup (10);
      # 'graph' replays the whole step as a CUDA graph (CUDA only); random images without Fashion-MNIST
  python pytorch_models.py matmul --device cuda --from-json gputrain_matmul.json [--shapes 1024,64x32x16]
      # torch.matmul f32 GFLOP/s with TF32 off and on, for the products `gputrain bench --matmul` timed
  python pytorch_models.py vae --seed 0    # 1 epoch of the VAE on Fashion-MNIST, test -ELBO per epoch
  python pytorch_models.py gan --seed 0 --like runs/gan-x/checkpoints/epoch_001.safetensors --save out.safetensors
      # 1 epoch of the DCGAN; writes its weights into a copy of a gputrain checkpoint, so that
      # `gputrain eval gan --checkpoint out.safetensors` scores PyTorch's generator with the same IS/FID

The modules are the README's; data, padding, loss and evaluation follow gputrain's:
images padded from 28x28 to 32x32 with background, per-image BCE sum + KL averaged over the batch,
test -ELBO in eval mode with z sampled from q(z|x). Needs torch and numpy; set OMP_NUM_THREADS to
match the cores gputrain had.
"""

import argparse
import gzip
import json
import os
import platform
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def idx_images(path):
    with gzip.open(path) as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        assert magic == 0x803, path
        x = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, 1, h, w)
    return torch.from_numpy(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))).float() / 255.0


class VAE(nn.Module):
    def __init__(self, z=32):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.ReLU())
        self.fc_mu, self.fc_logvar = nn.Linear(2048, z), nn.Linear(2048, z)
        self.decoder_fc = nn.Linear(z, 2048)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, 2, 1))

    def forward(self, x):
        h = self.encoder(x).flatten(1)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        d = F.relu(self.decoder_fc(z)).view(-1, 128, 4, 4)
        return torch.sigmoid(self.decoder(d)), mu, logvar


def vae_loss(p, x, mu, logvar):
    """(recon, kl), each summed per image and averaged over the batch."""
    b = x.shape[0]
    recon = F.binary_cross_entropy(p, x, reduction="sum") / b
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / b
    return recon, kl


def dcgan():
    g = nn.Sequential(
        nn.ConvTranspose2d(100, 256, 4, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
        nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, 2, 1, bias=False), nn.BatchNorm2d(256), nn.LeakyReLU(0.2),
        nn.Conv2d(256, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    return g, d


def parse_list(text, kind=int):
    return [kind(v) for v in text.split(",") if v.strip()]


def set_tf32(on):
    """TF32 for matmuls and cuDNN convolutions. torch >= 2.9 refuses a mix of its legacy and new
    precision APIs, so only one of them is touched."""
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "tf32" if on else "ieee"
        torch.backends.cudnn.conv.fp32_precision = "tf32" if on else "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on


def device_name(device):
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "cpu"


def sync_fn(device):
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def median_ms(step, sync, warmup, steps):
    """Median, min and max wall ms of `steps` calls of `step`, each synchronised, after `warmup`."""
    for _ in range(warmup):
        step()
    sync()
    t = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        t.append(1000 * (time.perf_counter() - t0))
    return statistics.median(t), min(t), max(t)


def timing_batch(batch, data_dir):
    """The first `batch` Fashion-MNIST training images (cycled if fewer), else uniform noise: the GPU
    machine has no dataset unless one is carried, and the step's cost does not depend on the pixels."""
    path = f"{data_dir}/train-images-idx3-ubyte.gz"
    if not os.path.exists(path):
        return torch.rand(batch, 1, 32, 32), "random"
    x = idx_images(path)
    return x[torch.arange(batch) % len(x)].contiguous(), "fashion-mnist"


def vae_step(batch, device, x, capturable):
    vae = VAE().to(device)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3, capturable=capturable)

    def step():
        opt.zero_grad(set_to_none=True)
        p, mu, logvar = vae(x)
        recon, kl = vae_loss(p, x, mu, logvar)
        (recon + kl).backward()
        opt.step()
    return step


def gan_step(batch, device, x, capturable):
    g, d = dcgan()
    g, d = g.to(device), d.to(device)
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=capturable)
    od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=capturable)
    real = x * 2 - 1
    ones = torch.ones(batch, 1, 1, 1, device=device)
    zeros = torch.zeros(batch, 1, 1, 1, device=device)

    # gputrain's GAN step: D on real and on detached fakes, then G through D.
    def step():
        z = torch.randn(batch, 100, 1, 1, device=device)
        od.zero_grad(set_to_none=True)
        fake = g(z)
        loss_d = F.binary_cross_entropy(d(real), ones) + F.binary_cross_entropy(d(fake.detach()), zeros)
        loss_d.backward()
        od.step()
        og.zero_grad(set_to_none=True)
        F.binary_cross_entropy(d(fake), ones).backward()
        og.step()
    return step


def cuda_graph(step):
    """The whole training step (forward, backward, Adam) captured once and replayed. The warm-up on a
    side stream creates Adam's state and cuDNN's plans before capture, as capture requires; grads set
    to None inside the step are re-created in the graph's pool, so each replay overwrites them."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def graph_step(make):
    """(step, method): a CUDA graph of the step, else torch.compile's reduce-overhead mode (which
    replays CUDA graphs of the compiled pieces), whichever this torch and GPU run."""
    try:
        return cuda_graph(make(True)), "torch.cuda.graph"
    except Exception as e:  # capture refuses some ops on some versions: try the compiler instead
        first = f"{type(e).__name__}: {e}"
    compiled = torch.compile(make(False), mode="reduce-overhead")
    compiled()
    return compiled, f"torch.compile(mode='reduce-overhead') (CUDA graph capture failed: {first})"


def time_steps(a):
    device = a.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch.cuda.is_available() is False (no GPU, or a CPU-only torch)")
    if device == "cuda":
        set_tf32(a.tf32 == "on")
    doc = {
        "torch": torch.__version__, "device": device, "tf32": a.tf32 if device == "cuda" else "n/a",
        "device_name": device_name(device),
        "cuda": torch.version.cuda, "threads": torch.get_num_threads(), "warmup": a.warmup,
        "steps": a.steps, "results": [], "skipped": [],
    }
    for mode in parse_list(a.mode, str):
        if mode not in ("eager", "graph"):
            raise SystemExit(f"--mode {mode}: expected eager or graph")
        if mode == "graph" and device != "cuda":
            doc["skipped"].append({"mode": mode, "reason": "CUDA graphs and reduce-overhead are CUDA-only"})
            print("graph mode is CUDA-only: skipped on cpu", file=sys.stderr)
            continue
        for model in parse_list(a.model, str):
            make_step = {"vae": vae_step, "gan": gan_step}.get(model)
            if make_step is None:
                raise SystemExit(f"--model {model}: expected vae or gan")
            for batch in parse_list(a.batch_size):
                row = {"model": model, "batch_size": batch, "mode": mode}
                try:
                    torch.manual_seed(0)
                    x, row["data"] = timing_batch(batch, a.data)
                    x = x.to(device)
                    make = lambda capturable: make_step(batch, device, x, capturable)  # noqa: E731
                    if mode == "eager":
                        step, row["method"] = make(False), "eager"
                    else:
                        step, row["method"] = graph_step(make)
                    med, lo, hi = median_ms(step, sync_fn(device), a.warmup, a.steps)
                    row.update({"ms_per_step": {"median": med, "min": lo, "max": hi},
                                "images_per_s": batch / (med / 1000)})
                    print(f"{model} batch {batch} {mode}: {med:.2f} ms/step median (min {lo:.2f}, max {hi:.2f}), "
                          f"{batch / (med / 1000):.0f} images/s [{row['method']}]", file=sys.stderr)
                except Exception as e:  # one failing configuration (e.g. out of memory) must not end the run
                    row["error"] = f"{type(e).__name__}: {e}"
                    print(f"{model} batch {batch} {mode}: FAILED {row['error']}", file=sys.stderr)
                doc["results"].append(row)
                if device == "cuda":
                    torch.cuda.empty_cache()
    if a.json:
        print(json.dumps(doc, indent=2))


def matmul_shapes(a):
    """[(label, m, n, k)] from --from-json (gputrain's `bench --matmul --json`, so both time the same
    products under the same labels) and --shapes (N or MxNxK)."""
    shapes = []
    for path in a.from_json or []:
        with open(path) as f:
            for r in json.load(f)["matmul"]:
                shapes.append((r["label"], r["m"], r["n"], r["k"]))
    for item in parse_list(a.shapes or "", str):
        d = [int(v) for v in item.split("x")]
        if len(d) not in (1, 3) or min(d) < 1:
            raise SystemExit(f"--shapes {item}: expected N or MxNxK")
        shapes.append((f"square {d[0]}", d[0], d[0], d[0]) if len(d) == 1 else (item, *d))
    return list(dict.fromkeys(shapes))


def time_matmul(a):
    device = a.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch.cuda.is_available() is False (no GPU, or a CPU-only torch)")
    shapes = matmul_shapes(a)
    if not shapes:
        raise SystemExit("matmul: no shapes (give --shapes and/or --from-json)")
    doc = {"torch": torch.__version__, "device": device, "threads": torch.get_num_threads(),
           "device_name": device_name(device),
           "matmul": [], "skipped": []}
    sync = sync_fn(device)
    for label, m, n, k in shapes:
        torch.manual_seed(0)
        x = torch.rand(m, k, device=device) * 2 - 1
        y = torch.rand(k, n, device=device) * 2 - 1
        out = torch.empty(m, n, device=device)
        for tf32 in parse_list(a.tf32, str):
            if tf32 not in ("off", "on"):
                raise SystemExit(f"--tf32 {tf32}: expected off or on")
            if device != "cuda":
                if tf32 == "on":
                    doc["skipped"].append({"label": label, "tf32": True, "reason": "TF32 is a CUDA mode"})
                    continue
            else:
                set_tf32(tf32 == "on")

            def run(reps):
                for _ in range(reps):
                    torch.matmul(x, y, out=out)
            run(3)
            sync()
            t0 = time.perf_counter()
            run(1)
            sync()
            # About 0.2 s of products per trial; the median of 5 trials, each synchronised.
            reps = max(3, min(1000, int(0.2 / max(time.perf_counter() - t0, 1e-6))))
            trials = []
            for _ in range(5):
                sync()
                t0 = time.perf_counter()
                run(reps)
                sync()
                trials.append((time.perf_counter() - t0) / reps)
            sec = statistics.median(trials)
            doc["matmul"].append({"label": label, "m": m, "n": n, "k": k, "tf32": tf32 == "on", "reps": reps,
                                  "ms": sec * 1e3, "gflops": 2 * m * n * k / sec / 1e9})
            print(f"{label:<40} {m:>6} {n:>6} {k:>6}  TF32 {tf32:<3} {sec * 1e3:9.3f} ms "
                  f"{2 * m * n * k / sec / 1e9:10.1f} GFLOP/s", file=sys.stderr)
        del x, y, out
    if a.json:
        print(json.dumps(doc, indent=2))


def train_vae(seed, epochs, batch, log_every):
    torch.manual_seed(seed)
    train = idx_images(f"{DATA}/train-images-idx3-ubyte.gz")
    test = idx_images(f"{DATA}/t10k-images-idx3-ubyte.gz")
    vae = VAE()
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    for epoch in range(1, epochs + 1):
        vae.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(train))
        # Full batches only, as gputrain does (60000 = 468 x 128 + 96).
        for s in range(len(train) // batch):
            x = train[order[s * batch:(s + 1) * batch]]
            opt.zero_grad()
            p, mu, logvar = vae(x)
            recon, kl = vae_loss(p, x, mu, logvar)
            (recon + kl).backward()
            opt.step()
            if log_every and (s + 1) % log_every == 0:
                print(f"  step {s + 1}: loss {recon.item() + kl.item():.2f} (recon {recon.item():.2f}, "
                      f"KL {kl.item():.2f})", flush=True)
        vae.eval()
        tot = np.zeros(2)
        with torch.no_grad():
            for s in range(0, len(test), 500):
                x = test[s:s + 500]
                p, mu, logvar = vae(x)
                recon, kl = vae_loss(p, x, mu, logvar)
                tot += np.array([recon.item(), kl.item()]) * len(x)
        recon, kl = tot / len(test)
        print(f"seed {seed} epoch {epoch}: test -ELBO {recon + kl:.2f} (recon {recon:.2f}, KL {kl:.2f}), "
              f"{time.perf_counter() - t0:.0f} s", flush=True)


def dcgan_init(m):
    # The DCGAN's initialisation (docs/architecture.md, Numerics): weights N(0, 0.02), batchnorm gamma N(1, 0.02), beta 0.
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def train_gan(seed, epochs, batch, log_every, like, save):
    torch.manual_seed(seed)
    train = idx_images(f"{DATA}/train-images-idx3-ubyte.gz") * 2 - 1
    g, d = dcgan()
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(batch, 1, 1, 1), torch.zeros(batch, 1, 1, 1)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(len(train))
        for s in range(len(train) // batch):
            real = train[order[s * batch:(s + 1) * batch]]
            z = torch.randn(batch, 100, 1, 1)
            od.zero_grad()
            fake = g(z)
            d_real, d_fake = d(real), d(fake.detach())
            loss_d = F.binary_cross_entropy(d_real, ones) + F.binary_cross_entropy(d_fake, zeros)
            loss_d.backward()
            od.step()
            og.zero_grad()
            loss_g = F.binary_cross_entropy(d(fake), ones)
            loss_g.backward()
            og.step()
            if log_every and (s + 1) % log_every == 0:
                print(f"  step {s + 1}: d_loss {loss_d.item():.4f} g_loss {loss_g.item():.4f} "
                      f"d_x {d_real.mean().item():.4f} d_g_z {d_fake.mean().item():.4f}", flush=True)
        print(f"seed {seed} epoch {epoch}: {time.perf_counter() - t0:.0f} s", flush=True)
        if save:
            save_gan(g, d, like, save.format(epoch=epoch))


def save_gan(g, d, like, path):
    """Writes G and D into a copy of the gputrain checkpoint `like`."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    # Everything gputrain's checkpoint holds (optimiser state, metadata) comes from `like`;
    # the model tensors are replaced by PyTorch's, under the same state_dict names.
    with safe_open(like, "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    state = {f"generator.{k}": v for k, v in g.state_dict().items()}
    state.update({f"discriminator.{k}": v for k, v in d.state_dict().items()})
    for k, v in state.items():
        assert k in tensors and tensors[k].shape == v.shape, k
        tensors[k] = v.detach().contiguous()
    save_file(tensors, path, metadata=meta)
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description="PyTorch reference for gputrain's training and timing figures")
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("time", help="ms per VAE / DCGAN training step")
    t.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    t.add_argument("--batch-size", default="128", help="comma-separated batch sizes")
    t.add_argument("--model", default="vae,gan", help="vae, gan or both, comma-separated")
    t.add_argument("--mode", default="eager", help="eager and/or graph (CUDA graph of the whole step), "
                   "comma-separated")
    t.add_argument("--steps", type=int, default=50, help="timed steps (median reported)")
    t.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    t.add_argument("--tf32", choices=["off", "on"], default="off",
                   help="CUDA: TF32 for matmuls and cuDNN convolutions (off: true f32, as gputrain computes)")
    t.add_argument("--data", default=DATA, help="Fashion-MNIST directory; random images when absent")
    t.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    m = sub.add_parser("matmul", help="torch.matmul f32 GFLOP/s for gputrain's matmul shapes")
    m.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    m.add_argument("--shapes", help="comma-separated N (N^3) or MxNxK")
    m.add_argument("--from-json", nargs="+", metavar="FILE",
                   help="the shapes of `gputrain bench --matmul ... --json` documents")
    m.add_argument("--tf32", default="off,on", help="off and/or on, comma-separated (CUDA only)")
    m.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    for name, what in [("vae", "1 epoch of the VAE"), ("gan", "1 epoch of the DCGAN")]:
        p = sub.add_parser(name, help=what)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--epochs", type=int, default=1)
        p.add_argument("--batch", type=int, default=128)
        p.add_argument("--log-every", type=int, default=0, help="print the training loss every N steps")
        if name == "gan":
            p.add_argument("--like", help="a gputrain GAN checkpoint to copy the layout and metadata from")
            p.add_argument("--save", help="where to write each epoch's weights as a gputrain checkpoint; "
                           "{epoch} in the name is replaced by the epoch number")
    a = ap.parse_args()
    if a.what == "time":
        if a.steps < 1 or a.warmup < 0:
            raise SystemExit("--steps must be at least 1 and --warmup at least 0")
        time_steps(a)
    elif a.what == "matmul":
        time_matmul(a)
    elif a.what == "gan":
        train_gan(a.seed, a.epochs, a.batch, a.log_every, a.like, a.save)
    else:
        train_vae(a.seed, a.epochs, a.batch, a.log_every)


if __name__ == "__main__":
    main()

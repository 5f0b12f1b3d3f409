"""PyTorch CPU reference for the numbers gputrain is compared against (not part of the build).

  python pytorch_models.py time            # ms per VAE and DCGAN training step, batch 128
  python pytorch_models.py vae --seed 0    # 1 epoch of the VAE on Fashion-MNIST, test -ELBO per epoch
  python pytorch_models.py gan --seed 0 --like runs/gan-x/checkpoints/epoch_001.safetensors --save out.safetensors
      # 1 epoch of the DCGAN; writes its weights into a copy of a gputrain checkpoint, so that
      # `gputrain eval gan --checkpoint out.safetensors` scores PyTorch's generator with the same IS/FID

The modules are the README's (DESIGN.md's); data, padding, loss and evaluation follow gputrain's:
images padded from 28x28 to 32x32 with background, per-image BCE sum + KL averaged over the batch,
test -ELBO in eval mode with z sampled from q(z|x). Needs torch and numpy; set OMP_NUM_THREADS to
match the cores gputrain had.
"""

import argparse
import gzip
import struct
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


def median_ms(step, warmup=3, reps=20):
    for _ in range(warmup):
        step()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        t.append(1000 * (time.perf_counter() - t0))
    return float(np.median(t)), min(t), max(t)


def time_steps(batch):
    x = torch.rand(batch, 1, 32, 32)
    vae = VAE()
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)

    def vae_step():
        opt.zero_grad()
        p, mu, logvar = vae(x)
        recon, kl = vae_loss(p, x, mu, logvar)
        (recon + kl).backward()
        opt.step()

    g, d = dcgan()
    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = x * 2 - 1
    ones, zeros = torch.ones(batch, 1, 1, 1), torch.zeros(batch, 1, 1, 1)

    def gan_step():
        z = torch.randn(batch, 100, 1, 1)
        od.zero_grad()
        fake = g(z)
        loss_d = F.binary_cross_entropy(d(real), ones) + F.binary_cross_entropy(d(fake.detach()), zeros)
        loss_d.backward()
        od.step()
        og.zero_grad()
        F.binary_cross_entropy(d(fake), ones).backward()
        og.step()

    for name, step in [("vae", vae_step), ("gan", gan_step)]:
        med, lo, hi = median_ms(step)
        print(f"{name} batch {batch}: {med:.1f} ms/step median (min {lo:.1f}, max {hi:.1f}), "
              f"{torch.get_num_threads()} threads")


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
    # DESIGN.md's DCGAN initialisation: weights N(0, 0.02), batchnorm gamma N(1, 0.02), beta 0.
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


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["time", "vae", "gan"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--log-every", type=int, default=0, help="print the training loss every N steps")
    ap.add_argument("--like", help="gan: a gputrain GAN checkpoint to copy the layout and metadata from")
    ap.add_argument("--save", help="gan: where to write each epoch's weights as a gputrain checkpoint; "
                    "{epoch} in the name is replaced by the epoch number")
    a = ap.parse_args()
    if a.what == "time":
        time_steps(a.batch)
    elif a.what == "gan":
        train_gan(a.seed, a.epochs, a.batch, a.log_every, a.like, a.save)
    else:
        train_vae(a.seed, a.epochs, a.batch, a.log_every)

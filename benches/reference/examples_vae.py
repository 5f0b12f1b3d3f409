"""PyTorch's examples/vae (the fully connected VAE) on Fashion-MNIST, for `gputrain train vae --arch mlp`.

  python examples_vae.py --seed 0 --epochs 10 [--hidden 400] [--latent 20] [--json out.jsonl]

The model, loss, optimiser and loop are examples/vae/main.py's (784-400-20, ReLU, sigmoid output,
BCE summed over pixels + KL, Adam 1e-3, batch 128, shuffled training batches, test loss = summed loss
over the test set / its size, z sampled in evaluation too); only the data loader differs: the IDX files
of Debian's dataset-fashion-mnist instead of torchvision's download, pixels / 255 unpadded. Not part
of the build; needs torch and numpy. Set OMP_NUM_THREADS to the cores you want it to use.
"""

import argparse
import gzip
import json
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim

DATA = "/usr/share/datasets/fashion-mnist"


def idx_images(path):
    with gzip.open(path) as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        assert magic == 0x803, path
        x = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, h * w)
    return torch.from_numpy(x.copy()).float() / 255.0


class VAE(nn.Module):
    """examples/vae's module; with several hidden widths the same shape stacked (gputrain's naming)."""

    def __init__(self, hidden=(400,), latent=20):
        super().__init__()
        if len(hidden) == 1:
            self.fc1 = nn.Linear(784, hidden[0])
            self.fc21 = nn.Linear(hidden[0], latent)
            self.fc22 = nn.Linear(hidden[0], latent)
            self.fc3 = nn.Linear(latent, hidden[0])
            self.fc4 = nn.Linear(hidden[0], 784)
            self.deep = False
        else:
            widths = [784, *hidden]
            enc = []
            for a, b in zip(widths, widths[1:]):
                enc += [nn.Linear(a, b), nn.ReLU()]
            self.encoder = nn.Sequential(*enc)
            self.fc_mu = nn.Linear(hidden[-1], latent)
            self.fc_logvar = nn.Linear(hidden[-1], latent)
            back = [latent, *reversed(hidden)]
            dec = []
            for a, b in zip(back, back[1:]):
                dec += [nn.Linear(a, b), nn.ReLU()]
            self.decoder = nn.Sequential(*dec, nn.Linear(hidden[0], 784))
            self.deep = True

    def encode(self, x):
        if self.deep:
            h = self.encoder(x)
            return self.fc_mu(h), self.fc_logvar(h)
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        if self.deep:
            return torch.sigmoid(self.decoder(z))
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", default="400")
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--data", default=DATA)
    p.add_argument("--json", help="append one JSON line per epoch to this file")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    train = idx_images(f"{a.data}/train-images-idx3-ubyte.gz")
    test = idx_images(f"{a.data}/t10k-images-idx3-ubyte.gz")
    model = VAE(tuple(int(h) for h in a.hidden.split(",")), a.latent)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, a.epochs + 1):
        t0 = time.time()
        model.train()
        total = 0.0
        for idx in torch.randperm(len(train)).split(a.batch_size):
            x = train[idx]
            opt.zero_grad()
            recon, mu, logvar = model(x)
            loss = loss_function(recon, x, mu, logvar)
            loss.backward()
            total += loss.item()
            opt.step()
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for x in test.split(a.batch_size):
                recon, mu, logvar = model(x)
                test_loss += loss_function(recon, x, mu, logvar).item()
        row = {
            "seed": a.seed,
            "epoch": epoch,
            "train_loss": total / len(train),
            "test_loss": test_loss / len(test),
            "seconds": time.time() - t0,
        }
        print(json.dumps(row), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

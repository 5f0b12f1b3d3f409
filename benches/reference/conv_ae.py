"""The convolutional autoencoder of `gputrain train ae` in PyTorch, on Fashion-MNIST, on the CPU.

  python conv_ae.py --seed 0 --epochs 5 [--latent 64] [--json out.jsonl]

Same module (the README's `AE`), initialisation (PyTorch's defaults, as gputrain's), loss (squared
error summed per image, mean over the batch), Adam 1e-3, batch 128, shuffled training batches with the
last partial batch dropped, and test figures as gputrain reports them: MSE per pixel over the whole
batches of the test set and PSNR = 10·log10(1/MSE). Not part of the build; needs torch and numpy.
"""

import argparse
import gzip
import json
import math
import struct
import time

import numpy as np
import torch
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"


def idx_images(path):
    with gzip.open(path) as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        assert magic == 0x803, path
        x = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, 1, h, w)
    return torch.from_numpy(x.copy()).float() / 255.0


class AE(nn.Module):
    def __init__(self, latent=64):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, latent))
        self.decoder = nn.Sequential(
            nn.Linear(latent, 64 * 7 * 7), nn.Unflatten(1, (64, 7, 7)),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(64, 1, 3, padding=1), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--data", default=DATA)
    p.add_argument("--json")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    train = idx_images(f"{a.data}/train-images-idx3-ubyte.gz")
    test = idx_images(f"{a.data}/t10k-images-idx3-ubyte.gz")
    b = a.batch_size
    test = test[: len(test) // b * b]
    model = AE(a.latent)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, a.epochs + 1):
        t0 = time.time()
        model.train()
        order = torch.randperm(len(train))[: len(train) // b * b]
        total = 0.0
        for idx in order.split(b):
            x = train[idx]
            opt.zero_grad()
            loss = ((model(x) - x) ** 2).sum() / b
            loss.backward()
            opt.step()
            total += loss.item()
        model.eval()
        sq = 0.0
        with torch.no_grad():
            for x in test.split(b):
                sq += ((model(x) - x) ** 2).sum().item()
        mse = sq / test.numel()
        row = {"seed": a.seed, "epoch": epoch, "train_loss": total / (len(order) // b), "test_mse": mse,
               "psnr": 10 * math.log10(1 / mse), "seconds": time.time() - t0}
        print(json.dumps(row), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

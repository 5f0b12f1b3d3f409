"""PyTorch's examples/dcgan on a folder of images, for `gputrain train gan --data DIR` (64 px).

  python examples_dcgan.py DIR --steps 300 [--ngf 64 --ndf 64 --batch-size 128 --nc 1 --seed 0]

The Generator, Discriminator, weights_init, Adam(2e-4, betas=(0.5, 0.999)), BCELoss and the training
loop are examples/dcgan/main.py's; the data is its ImageFolder pipeline (Resize(64), CenterCrop(64),
ToTensor, Normalize(0.5, 0.5)), greyscale when --nc 1. Every --log-every steps it prints what gputrain
logs: D loss, G loss, D(x), D(G(z)) and the diversity ratio (mean squared distance between the
generated images of the batch over that between the real ones). Not part of the build.
"""

import argparse
import json

import torch
import torch.nn as nn
import torchvision.datasets as dset
import torchvision.transforms as transforms


def weights_init(m):
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, nz, ngf, nc):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, x):
        return self.main(x)


class Discriminator(nn.Module):
    def __init__(self, ndf, nc):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


def diversity(x):
    f = x.flatten(1).double()
    d = torch.cdist(f, f) ** 2
    n = len(f)
    return d.sum().item() / (n * (n - 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--nz", type=int, default=100)
    p.add_argument("--nc", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--save", help="write a grid of 64 samples here at the end (PNG)")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    tf = [transforms.Resize(64), transforms.CenterCrop(64)]
    if a.nc == 1:
        tf.append(transforms.Grayscale(1))
    tf += [transforms.ToTensor(), transforms.Normalize((0.5,) * a.nc, (0.5,) * a.nc)]
    data = dset.ImageFolder(root=a.data, transform=transforms.Compose(tf))
    loader = torch.utils.data.DataLoader(data, batch_size=a.batch_size, shuffle=True, drop_last=True)
    netG, netD = Generator(a.nz, a.ngf, a.nc), Discriminator(a.ndf, a.nc)
    netG.apply(weights_init)
    netD.apply(weights_init)
    crit = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    step = 0
    while step < a.steps:
        for real, _ in loader:
            b = real.size(0)
            netD.zero_grad()
            out = netD(real)
            errD_real = crit(out, torch.full((b,), 1.0))
            errD_real.backward()
            d_x = out.mean().item()
            fake = netG(torch.randn(b, a.nz, 1, 1))
            out = netD(fake.detach())
            errD_fake = crit(out, torch.full((b,), 0.0))
            errD_fake.backward()
            d_g_z = out.mean().item()
            optD.step()
            netG.zero_grad()
            errG = crit(netD(fake), torch.full((b,), 1.0))
            errG.backward()
            optG.step()
            step += 1
            if step % a.log_every == 0:
                row = {"step": step, "d_loss": (errD_real + errD_fake).item(), "g_loss": errG.item(),
                       "d_x": d_x, "d_g_z": d_g_z, "diversity": diversity(fake.detach()) / diversity(real)}
                print(json.dumps(row), flush=True)
            if step >= a.steps:
                break
    if a.save:
        import torchvision.utils as vutils
        netG.eval()
        with torch.no_grad():
            vutils.save_image(netG(torch.randn(64, a.nz, 1, 1)), a.save, normalize=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch eager twin of lrmf's GLOW density training step (issue #13).

The step is the one lrmf/model's BenchmarkGLOWImageDensityStep (CPU) and
native/cuda's BenchmarkGLOWImageStepCUDA (GPU) time: on a batch of b
images of 32x32x1, ln p(x) by the multi-scale GLOW (lrmf/model/glowimage*.go)
and the gradient of -mean ln p with respect to every parameter; no optimiser
step. The model, level by level:

  squeeze 2x2 (c -> 4c), then K steps of
    ActNorm            y = (x + b) * exp(r) per channel, ln|det| = hw * sum r
    invertible 1x1     W = P L U (L unit lower, U upper with diagonal
                       sign * exp(logs)), assembled every step, ln|det| = hw * sum logs
    affine coupling    x = [xa | xb] (ca = c/2); (mu, r) = f(xa);
                       y = [xa | xb * sigmoid(r + 2) + mu], ln|det| = sum ln sigmoid(r + 2)
       f: edge-padded 3x3 conv (ca+1 -> F) + bias, ReLU, 1x1 conv (F -> F) + bias,
          ReLU, edge-padded 3x3 conv (F+1 -> 2(c-ca)) + bias, zero-initialised
          ("edge-padded": zero padding plus one extra input channel that is 1 on
          the padded border, OpenAI Glow's trick)
  then (all levels but the last) split: the last c - c/2 channels leave as z,
  the rest go on. ln p(x) = sum ln N(z; 0, I) + sum ln|det|.

Sizes: "default" is lrmf's CPU default (L = 3, K = 4, F = 32), "paper" the
paper's (3 x 8 x 512). Float32, TF32 off. Timing: warm-up steps, a device
synchronize, timed steps, a second synchronize. One JSON line per (size,
batch).

Usage: python3 tests/gpu/torch_glow.py [--device cuda] [--sizes default,paper] [--batch 64]
       python3 tests/gpu/torch_glow.py --device cpu --threads 1 --sizes default
"""

import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

SIZES = {"default": (3, 4, 32), "paper": (3, 8, 512)}


def edge_pad(x):
    """Zero-pad by one pixel and append a channel that is 1 on the border."""
    n, _, h, w = x.shape
    xp = F.pad(x, (1, 1, 1, 1))
    m = torch.ones(n, 1, h + 2, w + 2, device=x.device, dtype=x.dtype)
    m[:, :, 1:-1, 1:-1] = 0
    return torch.cat([xp, m], 1)


class ActNorm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.r = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x, ld):
        hw = x.shape[2] * x.shape[3]
        return (x + self.b) * torch.exp(self.r), ld + hw * self.r.sum()


class InvConv(nn.Module):
    def __init__(self, c, gen):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(c, c, generator=gen))
        p, l, u = torch.linalg.lu(q)
        s = torch.diagonal(u)
        self.register_buffer("p", p)
        self.register_buffer("sign", torch.sign(s))
        self.register_buffer("lmask", torch.tril(torch.ones(c, c), -1))
        self.register_buffer("eye", torch.eye(c))
        self.l = nn.Parameter(l * self.lmask)
        self.u = nn.Parameter(torch.triu(u, 1))
        self.logs = nn.Parameter(torch.log(torch.abs(s)))

    def forward(self, x, ld):
        hw = x.shape[2] * x.shape[3]
        w = self.p @ (self.l * self.lmask + self.eye) @ (
            torch.triu(self.u, 1) + torch.diag(self.sign * torch.exp(self.logs)))
        y = F.conv2d(x, w.view(*w.shape, 1, 1))
        return y, ld + hw * self.logs.sum()


class Coupling(nn.Module):
    def __init__(self, c, f):
        super().__init__()
        self.ca = c // 2
        cb = c - self.ca
        self.c1 = nn.Conv2d(self.ca + 1, f, 3)
        self.c2 = nn.Conv2d(f, f, 1)
        self.c3 = nn.Conv2d(f + 1, 2 * cb, 3)
        nn.init.zeros_(self.c3.weight)
        nn.init.zeros_(self.c3.bias)

    def forward(self, x, ld):
        xa, xb = x[:, :self.ca], x[:, self.ca:]
        h = F.relu(self.c1(edge_pad(xa)))
        h = F.relu(self.c2(h))
        h = self.c3(edge_pad(h))
        cb = xb.shape[1]
        mu, r = h[:, :cb], h[:, cb:]
        s = torch.sigmoid(r + 2)
        y = torch.cat([xa, xb * s + mu], 1)
        return y, ld + torch.log(s).flatten(1).sum(1)


class GLOW(nn.Module):
    def __init__(self, levels, steps, filters, c=1, seed=1):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.levels = nn.ModuleList()
        for l in range(levels):
            c *= 4
            mods = []
            for _ in range(steps):
                mods += [ActNorm(c), InvConv(c, gen), Coupling(c, filters)]
            self.levels.append(nn.ModuleList(mods))
            if l < levels - 1:
                c -= c - c // 2

    def log_prob(self, x):
        n = x.shape[0]
        ld = torch.zeros(n, device=x.device, dtype=x.dtype)
        logp = torch.zeros(n, device=x.device, dtype=x.dtype)
        for i, mods in enumerate(self.levels):
            x = F.pixel_unshuffle(x, 2)
            for m in mods:
                x, ld = m(x, ld)
            if i < len(self.levels) - 1:
                keep = x.shape[1] // 2
                z, x = x[:, keep:], x[:, :keep]
            else:
                z = x
            logp = logp - 0.5 * (z * z).flatten(1).sum(1) - 0.5 * math.log(2 * math.pi) * z[0].numel()
        return logp + ld


def time_step(dev, size, batch, warm, steps):
    levels, k, f = SIZES[size]
    model = GLOW(levels, k, f).to(dev)
    gen = torch.Generator().manual_seed(2)
    x = (torch.rand(batch, 1, 32, 32, generator=gen) * 2 - 1).to(dev)

    def step():
        for p in model.parameters():
            p.grad = None
        loss = -model.log_prob(x).mean()
        loss.backward()
        return loss

    for _ in range(warm):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) * 1000 / steps
    return {"device": str(dev), "size": size, "levels": levels, "steps": k, "filters": f,
            "batch": batch, "ms_per_step": round(ms, 3), "loss": float(loss),
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", default="default,paper")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch's default)")
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    for size in a.sizes.split(","):
        if size not in SIZES:
            sys.exit(f"torch_glow.py: unknown size {size!r} (want {', '.join(SIZES)})")
        print(json.dumps(time_step(dev, size, a.batch, a.warm, a.steps)), flush=True)


if __name__ == "__main__":
    main()

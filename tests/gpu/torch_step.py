#!/usr/bin/env python3
"""PyTorch eager baseline for one LRMF joint step with Real NVP (tests/gpu).

The step is the one lrmf's joint phase takes (lrmf/align.go, jointState.grad
and update) with the paper's network (lrmf.PaperRealNVP: 4 coupling blocks,
each an MLP dc -> 512 -> 512 -> 2dt with ReLU, soft-bounded exp scale with
bound 4, alternating halves) as both the flow T and the density S:

  xa = A[batch of b rows], xb = B[batch of b rows]
  y, logdet = T(xa)                        # flow on b rows
  logp = log N(S(cat(y, xb)); 0, I) + logdet_S   # density on 2b rows
  loss = c_AB - (sum(logp) + sum(logdet)) / b
  backward; ||g_T||, ||g_S||; read loss and norms on the host (lrmf checks
  they are finite every step); clip each model's gradient to norm 10; Adam.

Float32 throughout, TF32 off (cuBLAS SGEMM, as lrmf's cuda backend uses).
Timing: warm-up steps, a device synchronize, then `steps` steps and a
second synchronize. Prints one JSON object per (batch, variant) line:
variant "eager" uses torch.optim.Adam's default (foreach on CUDA, the
per-tensor loop on the CPU), "fused" uses Adam(fused=True) (CUDA only).

On the CPU (--device cpu) torch.set_num_threads(--threads) sets the
intra-op threads; its float32 GEMM is whatever libblas.so.3 the loader
finds (tests/bench/realnvp_vs_torch.sh points it at OpenBLAS: Debian's
default reference BLAS runs at ~1 GFLOP/s). The step is the same as on the
GPU; on both, T's first block computes no input gradient (xa needs none)
and θS's does, for all 2b rows, as lrmf does.

Usage: python3 tests/gpu/torch_step.py [--batches 2000,65536] [--json FILE]
       python3 tests/gpu/torch_step.py --device cpu --threads 1 --batches 256,2000 --variants eager
"""

import argparse
import json
import math
import sys
import time

import torch
from torch import nn


HIDDEN, DEPTH, BLOCKS, BOUND = 512, 2, 4, 4.0


class MLP(nn.Module):
    """in -> hidden (ReLU) x depth -> out (linear, zero-initialised)."""

    def __init__(self, n_in, hidden, depth, n_out):
        super().__init__()
        layers, fan = [], n_in
        for _ in range(depth):
            lin = nn.Linear(fan, hidden)
            nn.init.xavier_uniform_(lin.weight)  # Glorot uniform, as lrmf
            nn.init.zeros_(lin.bias)
            layers += [lin, nn.ReLU()]
            fan = hidden
        last = nn.Linear(fan, n_out)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        layers.append(last)
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Coupling(nn.Module):
    """Affine coupling: columns [t0, t0+dt) transformed given [c0, c0+dc)."""

    def __init__(self, d, k):
        super().__init__()
        half = d // 2
        if k % 2 == 0:
            self.c0, self.dc, self.t0, self.dt = 0, half, half, d - half
        else:
            self.c0, self.dc, self.t0, self.dt = d - half, half, 0, d - half
        self.net = MLP(self.dc, HIDDEN, DEPTH, 2 * self.dt)

    def forward(self, x):
        xc = x[:, self.c0:self.c0 + self.dc]
        h = self.net(xc)
        mu, r = h[:, :self.dt], h[:, self.dt:]
        alpha = BOUND * torch.tanh(r / BOUND)  # ln s, soft-bounded
        xt = x[:, self.t0:self.t0 + self.dt]
        yt = xt * torch.exp(alpha) + mu
        y = torch.cat([x[:, :self.t0], yt, x[:, self.t0 + self.dt:]], dim=1)
        return y, alpha.sum(dim=1)


class RealNVP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.blocks = nn.ModuleList([Coupling(d, k) for k in range(BLOCKS)])

    def forward(self, x):
        logdet = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for blk in self.blocks:
            x, ld = blk(x)
            logdet = logdet + ld
        return x, logdet


def log_density(flow, x):
    """ln N(f(x); 0, I) + ln|det df/dx|."""
    z, ld = flow(x)
    d = x.shape[1]
    return -0.5 * d * math.log(2 * math.pi) - 0.5 * (z * z).sum(dim=1) + ld


def moons(n, gen, device, rotate_deg=0.0):
    """Two interleaved half circles with noise 0.05 (as lrmf/data.Moons)."""
    n_out = n // 2
    t = math.pi * torch.rand(n, generator=gen, device=device)
    outer = torch.arange(n, device=device) < n_out
    x = torch.where(outer, torch.cos(t), 1 - torch.cos(t))
    y = torch.where(outer, torch.sin(t), 0.5 - torch.sin(t))
    pts = torch.stack([x, y], dim=1) + 0.05 * torch.randn(n, 2, generator=gen, device=device)
    if rotate_deg:
        c, s = math.cos(math.radians(rotate_deg)), math.sin(math.radians(rotate_deg))
        rot = torch.tensor([[c, s], [-s, c]], device=device)
        m = pts.mean(dim=0)
        pts = (pts - m) @ rot + m
    return pts.contiguous()


class Sampler:
    """Per-epoch permutation consumed batch by batch (as lrmf's sampler)."""

    def __init__(self, n, batch, gen, device):
        self.n, self.batch, self.gen, self.device = n, batch, gen, device
        self.pos, self.perm = n, None

    def next(self):
        if self.pos + self.batch > self.n:
            self.perm = torch.randperm(self.n, generator=self.gen, device=self.device)
            self.pos = 0
        out = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return out


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(batch, variant, warm, steps, device):
    torch.manual_seed(1)
    gen = torch.Generator(device=device)
    gen.manual_seed(1)
    n = max(2000, batch)
    a, b = moons(n, gen, device), moons(n, gen, device, rotate_deg=50)
    flow, dens = RealNVP(2).to(device), RealNVP(2).to(device)
    params_t, params_s = list(flow.parameters()), list(dens.parameters())
    kw = {"fused": True} if variant == "fused" else {}
    opt = torch.optim.Adam(params_t + params_s, lr=0.01, betas=(0.9, 0.999), eps=1e-8, **kw)
    sa, sb = Sampler(n, batch, gen, device), Sampler(n, batch, gen, device)
    cab = 0.0

    def step():
        xa, xb = a[sa.next()], b[sb.next()]
        y, logdet = flow(xa)
        logp = log_density(dens, torch.cat([y, xb], dim=0))
        loss = cab - (logp.sum() + logdet.sum()) / batch
        opt.zero_grad()
        loss.backward()
        # clip_grad_norm_ returns the pre-clip norm; lrmf reads the loss and
        # both norms back every step to test them for NaN/Inf: one sync.
        gt = torch.nn.utils.clip_grad_norm_(params_t, 10.0)
        gs = torch.nn.utils.clip_grad_norm_(params_s, 10.0)
        vals = torch.stack([loss.detach(), gt, gs]).tolist()
        if not all(math.isfinite(v) for v in vals):
            raise RuntimeError(f"diverged: {vals}")
        opt.step()

    for _ in range(warm):
        step()
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    sync(device)
    ms = 1000 * (time.perf_counter() - t0) / steps
    cpu_ms = 1000 * (time.process_time() - c0) / steps
    o = dict(Hidden=HIDDEN, Depth=DEPTH, Blocks=BLOCKS)
    f = 2 * (1 * o["Hidden"] + (o["Depth"] - 1) * o["Hidden"] ** 2 + 2 * 1 * o["Hidden"])
    flops = 3 * f * o["Blocks"] * 3 * batch
    return {"batch": batch, "variant": variant, "device": device.type, "threads": torch.get_num_threads(),
            "ms_per_step": round(ms, 4), "cpu_ms_per_step": round(cpu_ms, 4), "steps": steps, "tflops": round(flops / (ms / 1000) / 1e12, 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="2000,65536")
    ap.add_argument("--variants", default="", help="eager,fused (default; eager only on the CPU)")
    ap.add_argument("--json", default="")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch's default)")
    ap.add_argument("--warm", type=int, default=0, help="warm-up steps (0: 20, or 5 above batch 4096)")
    ap.add_argument("--steps", type=int, default=0, help="timed steps (0: 200, or 20 above batch 4096)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("torch_step: no CUDA device visible to PyTorch", file=sys.stderr)
            return 2
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}, "
              f"allow_tf32={torch.backends.cuda.matmul.allow_tf32}", file=sys.stderr)
    else:
        print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads", file=sys.stderr)
    device = torch.device(args.device)
    variants = args.variants or ("eager,fused" if args.device == "cuda" else "eager")
    out = open(args.json, "w") if args.json else None
    for batch in [int(x) for x in args.batches.split(",") if x]:
        warm, steps = (20, 200) if batch <= 4096 else (5, 20)
        warm, steps = args.warm or warm, args.steps or steps
        for variant in [v for v in variants.split(",") if v]:
            r = run(batch, variant, warm, steps, device)
            line = json.dumps(r)
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

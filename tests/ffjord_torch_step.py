#!/usr/bin/env python3
"""PyTorch eager baseline for one FFJORD LRMF joint step (issue 14).

The step is the one lrmf's joint phase takes (lrmf/joint.go, jointState.grad
and update) with FFJORD as both the flow T and the density S (the density
is the flow pulled back from N(0, I)), as BenchmarkFFJORDStepVsTorch in
lrmf/bench_test.go runs it: one transform whose dynamics is the MLP
[z, t] (D+1) -> 16 -> 16 -> 16 -> D with tanh, Glorot-uniform weights and
zero biases, integrated from t = 0 to 1 on the moons pair (D = 2):

  y, logdet = T(xa)                               # b rows
  logp = log N(S(cat(y, xb)); 0, I) + logdet_S    # 2b rows
  loss = -(sum(logp) + sum(logdet)) / b
  backward (through the solver's operations: discretise-then-optimise,
  what lrmf's recorded-step replay computes); clip each model's gradient
  to norm 10; Adam.

The trace of df/dz: by default (--impl tangent) as lrmf computes it, the
probes' tangents pushed through the layers next to the activations (one
matmul per layer for all of them); --impl autograd is FFJORD's reference
code (Grathwohl et al.: divergence_bf, D autograd passes; divergence_approx,
one vector-Jacobian product), much slower at D = 2. Hutchinson draws one
Rademacher probe per row and solve. Solvers:
classical RK4 with 10 steps, or Dormand-Prince 5(4) at atol = rtol = 1e-5,
h0 = 0.05, with one step size for the whole batch (torchdiffeq's batching)
accepted when every row's RMS error over [z, logdet] is <= 1 (lrmf
controls each row separately; the evaluation counts are printed).

float64 throughout (lrmf's kernels compute each row in double), 1 thread.
Timing: `warm` steps, then `steps` steps; prints one JSON object per
configuration: ms_per_step (median of the timed steps), nfe_per_row.

Usage: python3 tests/ffjord_torch_step.py [--batches 256,2000]
       [--solvers rk4,dopri5] [--traces exact,hutchinson]
       [--impl tangent|autograd] [--steps N] [--warm N]
"""

import argparse
import json
import math
import statistics
import time

import torch

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

DP_C = [0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0]
DP_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
DP_B = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0]
DP_BS = [5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40]


class Dynamics(torch.nn.Module):
    """f(z, t) = MLP([z, t]) with tanh hidden layers."""

    def __init__(self, d, hidden=(16, 16, 16)):
        super().__init__()
        sizes = [d + 1, *hidden, d]
        self.layers = torch.nn.ModuleList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            lin = torch.nn.Linear(a, b)
            torch.nn.init.xavier_uniform_(lin.weight)
            torch.nn.init.zeros_(lin.bias)
            self.layers.append(lin)

    def forward(self, t, z):
        h = torch.cat([z, t.expand(z.shape[0], 1)], dim=1)
        for i, lin in enumerate(self.layers):
            h = lin(h)
            if i + 1 < len(self.layers):
                h = torch.tanh(h)
        return h


class Aug:
    """The augmented field g(t, [z, l]) = [f, tr df/dz] (FFJORD's ODEfunc).

    impl "tangent" (the default) computes the trace as lrmf's kernels do:
    the tangents of the probes (e_1..e_D for the exact trace, the
    Rademacher probe for Hutchinson) are pushed through the layers with the
    activations, stacked along the batch so each layer is one matmul, and
    tr = sum_p probe_p . (J probe_p). impl "autograd" is FFJORD's reference
    code: divergence_bf (D autograd passes) and divergence_approx (one
    vector-Jacobian product)."""

    def __init__(self, f, trace, eps, impl):
        self.f, self.trace, self.eps, self.impl = f, trace, eps, impl
        self.nfe = 0

    def __call__(self, t, y):
        self.nfe += 1
        z = y[:, :-1]
        if self.impl == "tangent":
            dz, div = self.tangent(t, z)
        else:
            dz, div = self.autograd(t, z)
        return torch.cat([dz, div.unsqueeze(1)], dim=1)

    def tangent(self, t, z):
        n, d = z.shape
        layers = self.f.layers
        w0 = layers[0].weight  # out x (d+1)
        h = torch.tanh(layers[0](torch.cat([z, t.expand(n, 1)], dim=1)))
        if self.trace == "exact":
            # The tangent of probe e_p through layer 0 is column p of W_0,
            # the same for every row.
            ad = w0[:, :d].t().unsqueeze(1)  # d x 1 x out
            m = d
        else:
            ad = (self.eps @ w0[:, :d].t()).unsqueeze(0)  # 1 x n x out
            m = 1
        hd = (1 - h * h) * ad  # m x n x out
        for i, lin in enumerate(layers[1:], start=1):
            width = lin.weight.shape[0]
            x = torch.cat([h.unsqueeze(0), hd], dim=0).reshape(-1, lin.weight.shape[1])
            a = (x @ lin.weight.t()).reshape(m + 1, n, width)
            if i + 1 < len(layers):
                h = torch.tanh(a[0] + lin.bias)
                hd = (1 - h * h) * a[1:]
            else:
                dz, jv = a[0] + lin.bias, a[1:]
        if self.trace == "exact":
            div = jv.diagonal(dim1=0, dim2=2).sum(dim=1)  # sum_p (J e_p)_p
        else:
            div = (jv[0] * self.eps).sum(dim=1)
        return dz, div

    def autograd(self, t, z):
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.requires_grad_(True)
            dz = self.f(t, z)
            if self.trace == "exact":  # divergence_bf
                div = 0.0
                for i in range(z.shape[1]):
                    div = div + torch.autograd.grad(dz[:, i].sum(), z, create_graph=True)[0][:, i]
            else:  # divergence_approx
                e_dzdx = torch.autograd.grad(dz, z, self.eps, create_graph=True)[0]
                div = (e_dzdx * self.eps).sum(dim=1)
        return dz, div


def rk4(g, y, steps):
    h = 1.0 / steps
    for s in range(steps):
        t = torch.tensor([[s * h]])
        k1 = g(t, y)
        k2 = g(t + h / 2, y + h / 2 * k1)
        k3 = g(t + h / 2, y + h / 2 * k2)
        k4 = g(t + h, y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def dopri5(g, y, atol=1e-5, rtol=1e-5, h0=0.05, max_steps=200):
    t, h = 0.0, h0
    k = [g(torch.tensor([[t]]), y)]
    for _ in range(max_steps):
        if t >= 1.0:
            return y
        last = h >= 1.0 - t
        hs = 1.0 - t if last else h
        ks = [k[0]]
        for s in range(1, 7):
            acc = sum(a * kq for a, kq in zip(DP_A[s], ks))
            yn = y + hs * acc  # the last stage's input is the 5th-order solution
            ks.append(g(torch.tensor([[t + DP_C[s] * hs]]), yn))
        with torch.no_grad():
            e = hs * sum((b - bs) * kq for b, bs, kq in zip(DP_B, DP_BS, ks))
            sc = atol + rtol * torch.maximum(y.abs(), yn.abs())
            err = ((e / sc) ** 2).mean(dim=1).sqrt().max().item()
        if math.isfinite(err) and err <= 1.0:
            y, t, k = yn, (1.0 if last else t + hs), [ks[6]]
            fac = min(10.0, max(0.2, 0.9 * err ** -0.2)) if err > 0 else 10.0
        else:
            fac = max(0.2, 0.9 * err ** -0.2) if math.isfinite(err) else 0.2
        h = hs * fac
    raise RuntimeError("dopri5: max steps")


def flow(f, x, solver, trace, impl):
    eps = torch.randint(0, 2, x.shape).mul_(2).sub_(1).to(x.dtype) if trace == "hutchinson" else None
    g = Aug(f, trace, eps, impl)
    y0 = torch.cat([x, torch.zeros(x.shape[0], 1)], dim=1)
    y1 = rk4(g, y0, 10) if solver == "rk4" else dopri5(g, y0)
    return y1[:, :-1], y1[:, -1], g.nfe


def moons(n, noise, rng):
    t = torch.rand(n, generator=rng) * math.pi
    a = torch.stack([torch.cos(t), torch.sin(t)], 1)
    b = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    x = torch.where((torch.arange(n) % 2 == 0).unsqueeze(1), a, b)
    return x + noise * torch.randn(n, 2, generator=rng)


def run(batch, solver, trace, impl, steps, warm):
    torch.manual_seed(1)
    rng = torch.Generator().manual_seed(1)
    A = moons(max(2000, batch), 0.05, rng)
    B = moons(max(2000, batch), 0.05, rng) @ torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    T, S = Dynamics(2), Dynamics(2)
    opt = torch.optim.Adam(list(T.parameters()) + list(S.parameters()), lr=0.01)
    times, nfes = [], []
    for it in range(warm + steps):
        ia = torch.randint(0, A.shape[0], (batch,), generator=rng)
        ib = torch.randint(0, B.shape[0], (batch,), generator=rng)
        start = time.perf_counter()
        xa, xb = A[ia], B[ib]
        y, ldT, n1 = flow(T, xa, solver, trace, impl)
        z, ldS, n2 = flow(S, torch.cat([y, xb]), solver, trace, impl)
        logp = -0.5 * (z * z).sum(1) - math.log(2 * math.pi) + ldS
        loss = -(logp.sum() + ldT.sum()) / batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gT = torch.nn.utils.clip_grad_norm_(T.parameters(), 10.0)
        gS = torch.nn.utils.clip_grad_norm_(S.parameters(), 10.0)
        if not all(math.isfinite(v) for v in (loss.item(), gT.item(), gS.item())):
            raise RuntimeError("diverged")
        opt.step()
        if it >= warm:
            times.append(time.perf_counter() - start)
            nfes.append((n1 + n2) / 2)
    return {
        "batch": batch, "solver": solver, "trace": trace, "impl": impl, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "ms_per_step": 1e3 * statistics.median(times),
        "ms_min": 1e3 * min(times), "nfe_per_row": statistics.mean(nfes), "steps": steps,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="256,2000")
    ap.add_argument("--solvers", default="rk4,dopri5")
    ap.add_argument("--traces", default="exact,hutchinson")
    ap.add_argument("--impl", default="tangent", choices=["tangent", "autograd"])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warm", type=int, default=2)
    a = ap.parse_args()
    for b in map(int, a.batches.split(",")):
        for s in a.solvers.split(","):
            for tr in a.traces.split(","):
                print(json.dumps(run(b, s, tr, a.impl, a.steps, a.warm)), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The verdict sweep of issue #11: does `lrmf align` say `converged` exactly
when the alignment really happened?

Data are drawn here with numpy (random arm angles, three labelled blobs),
not by `lrmf data`, so lrmf has never seen them. Each run aligns A to B
with the lrmf command and is then judged against ground truth computed
here, independently of lrmf's own code:

  aligned  ⇔  label accuracy ≥ 0.95  and  MMD p > 0.05, where
  - label accuracy: the share of T(A) whose nearest neighbour in B carries
    the same label (moon arm or blob); judged also up to relabelling
    (the best permutation of B's labels), because the moons' half-turn
    symmetry and the blobs' near-equilateral means let a map that permutes
    the classes align the distributions, which no unsupervised method
    can see;
  - MMD p: a kernel two-sample test (Gaussian kernels at 1/16 … 1 times
    the median distance, aggregated by min-p, permutation p-value) of
    T(A') against B', where A' and B' are FRESH
    draws from the two distributions (2000 each, subsampled to 600) and T
    is applied with `lrmf apply`, so the test sees no training point.

The verdict agrees when it says `converged` for an aligned run and anything
else for a run that is not aligned.

That ground truth is one test on one sample. To measure its noise, T is
also applied to --fresh − 1 further fresh draws (default 10 in all); q,
the share of draws the test rejects, estimates how often the truth says
"not aligned" for this map. The summary gives the agreement a verdict
could reach if it knew each q (Σ min(q, 1 − q) disagreements), the
agreement of a verdict whose test were an independent replicate of the
truth's (Σ 2q(1 − q)), agreement against the median fresh p, and where
lrmf's own p-value ranks among the fresh ones (0.5: no bias). Usage:

  go build -o build/lrmf ./cmd/lrmf
  /usr/bin/python3 tests/sweep/sweep.py [--lrmf BIN] [--out DIR] [--only SUBSTR] [--jobs N]
                                        [--fresh K] [--extra "FLAGS"]

It prints a markdown table and writes DIR/sweep.json. Runs are independent;
--jobs runs several at once (each with --threads cores/jobs). Runs with
no flags use lrmf align's defaults (Real NVP, held-out 20%, two restarts);
negative controls are runs that cannot have aligned.
"""
import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
import time

import numpy as np

MOONS_CENTRE = np.array([0.5, 0.25])
BLOB_MEANS = np.array([[0.0, 0.0], [3.0, 0.5], [1.2, 2.8]])
BLOB_COVS = [np.array([[0.30, 0.12], [0.12, 0.15]]),
             np.array([[0.10, -0.05], [-0.05, 0.35]]),
             np.array([[0.25, 0.0], [0.0, 0.08]])]
BLOBS_CENTRE = BLOB_MEANS.mean(axis=0)


def moons(n, rng, noise=0.05):
    """Two moons with uniformly random angles (sklearn's make_moons uses an
    even grid), N(0, noise²) noise; label = arm."""
    n_out = n // 2
    t1 = rng.uniform(0, np.pi, n_out)
    t2 = rng.uniform(0, np.pi, n - n_out)
    x = np.r_[np.c_[np.cos(t1), np.sin(t1)], np.c_[1 - np.cos(t2), 1 - np.sin(t2) - 0.5]]
    x += rng.normal(0, noise, x.shape)
    y = np.r_[np.zeros(n_out, int), np.ones(n - n_out, int)]
    p = rng.permutation(n)
    return x[p], y[p], MOONS_CENTRE


def blobs(n, rng):
    """Three Gaussian blobs of different shapes; label = blob."""
    y = rng.integers(0, 3, n)
    x = np.empty((n, 2))
    for k in range(3):
        idx = y == k
        x[idx] = rng.multivariate_normal(BLOB_MEANS[k], BLOB_COVS[k], idx.sum())
    return x, y, BLOBS_CENTRE


def rotate(x, deg, centre):
    a = np.deg2rad(deg)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (x - centre) @ r.T + centre


def draw(kind, n, deg, seed):
    """A and B: B is an independent draw rotated by deg about the
    population centre (the same map for every draw)."""
    gen = moons if kind == "moons" else blobs
    ra, rb = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    a, la, _ = gen(n, ra)
    b, lb, c = gen(n, rb)
    return a, la, rotate(b, deg, c), lb


def label_accuracy(ta, la, b, lb):
    d2 = (ta * ta).sum(1)[:, None] - 2 * ta @ b.T + (b * b).sum(1)[None, :]
    return float((lb[d2.argmin(1)] == la).mean())


SCALES = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1)


def mmd_test(x, y, rng, perms=500, rows=600):
    """Unbiased MMD² with Gaussian kernels at SCALES × the median distance,
    aggregated by the min-p method (as lrmf/twosample, written anew here):
    each relabelling's per-scale p-values by ranks, its statistic the
    smallest of them, the p-value the share of relabellings (the observed
    one included) whose statistic is at most the observed one. Returns
    (MMD² at the median width, p)."""
    x = x[rng.permutation(len(x))[:rows]]
    y = y[rng.permutation(len(y))[:rows]]
    z = np.r_[x, y]
    n, m, N = len(x), len(y), len(x) + len(y)
    d2 = np.maximum((z * z).sum(1)[:, None] - 2 * z @ z.T + (z * z).sum(1)[None, :], 0)
    sigma2 = np.median(d2[np.triu_indices(N, 1)])
    labels = np.zeros((N, perms + 1))
    labels[:n, 0] = 1
    for p in range(1, perms + 1):
        labels[rng.permutation(N)[:n], p] = 1
    stats = []
    for c in SCALES:
        k = np.exp(-d2 / (2 * c * c * sigma2))
        np.fill_diagonal(k, 0)
        total = k.sum()
        v = k @ labels
        xx = (labels * v).sum(0)
        xy = ((1 - labels) * v).sum(0)
        yy = total - xx - 2 * xy
        stats.append(xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2 * xy / (n * m))
    stats = np.array(stats)  # scales × relabellings
    # p_s(r) = #{r': stat_s(r') >= stat_s(r)} / (R+1)
    srt = np.sort(stats, axis=1)
    ps = np.array([(perms + 1 - np.searchsorted(srt[i], stats[i], side="left")) / (perms + 1)
                   for i in range(len(SCALES))])
    t = ps.min(axis=0)
    return float(stats[-1, 0]), float((t <= t[0]).sum() / (perms + 1))


def save(path, x):
    np.savetxt(path, x, delimiter=",", fmt="%.17g")


def run_one(run, args):
    kind, deg, seed = run["data"], run["deg"], run["seed"]
    d = os.path.join(args.out, run["name"])
    os.makedirs(d, exist_ok=True)
    a, la, b, lb = draw(kind, 2000, deg, seed)
    save(os.path.join(d, "A.csv"), a)
    save(os.path.join(d, "B.csv"), b)
    cmd = [args.lrmf, "align", "--a", os.path.join(d, "A.csv"), "--b", os.path.join(d, "B.csv"),
           "--out", os.path.join(d, "out"), "--seed", str(seed), "--quiet", "--plots=false",
           "--threads", str(args.threads)] + run["flags"]
    # A finished run is reused when the script is run again with the same
    # command and the same binary (its report and exit status are kept
    # beside it).
    done = os.path.join(d, "done.json")
    prev = json.load(open(done)) if os.path.exists(done) else {}
    if prev.get("cmd") == cmd and prev.get("binary") == args.binary_hash:
        p = subprocess.CompletedProcess(cmd, prev["exit"], prev["stdout"], prev["stderr"])
        secs = prev["seconds"]
    else:
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True)
        secs = time.time() - t0
        json.dump(dict(cmd=cmd, binary=args.binary_hash, exit=p.returncode, stdout=p.stdout, stderr=p.stderr, seconds=secs),
                  open(done, "w"))
    res = dict(run, cmd=" ".join(cmd[1:]), exit=p.returncode, seconds=round(secs, 1))
    if p.returncode not in (0, 3):
        res.update(verdict="error", stderr=p.stderr[-2000:])
        return res
    rep = json.load(open(os.path.join(d, "out", "report.json")))
    res["verdict"] = rep["status"]
    res["sentence"] = rep.get("verdict")
    res["lrmf"] = rep.get("lrmf")
    res["lrmf_se"] = rep.get("lrmf_se")
    res["upper_bound"] = rep.get("upper_bound")
    res["lrmf_train"] = rep.get("lrmf_train")
    res["lrmf_mmd_p"] = (rep.get("two_sample") or {}).get("p")
    res["restarts"] = [(r["validation_lrmf"], r["lrmf"], r["steps"], r["stopped_by"]) for r in rep.get("restarts", [])]
    res["fits"] = [(rep[k]["steps"], rep[k]["stopped_by"]) for k in ("fit_a", "fit_b")]
    res["lrmf_seconds"] = rep.get("seconds")
    res["stdout"] = p.stdout.strip().splitlines()[:2]
    ta = np.loadtxt(os.path.join(d, "out", "transformed.csv"), delimiter=",", skiprows=1, ndmin=2)
    res["label_acc"] = label_accuracy(ta, la, b, lb)
    # Up to relabelling: the best accuracy over permutations of B's labels.
    # The moons are symmetric under a half-turn about their centre, which
    # swaps the arms, and the blobs' means are close to an equilateral
    # triangle: a map that permutes the classes can align the two
    # distributions as well as one that keeps them, and nothing in
    # unlabelled A and B can tell them apart. The verdict is about the
    # distributions, so it is judged both ways.
    res["label_acc_relabelled"] = max(label_accuracy(ta, la, b, np.array(perm)[lb])
                                      for perm in itertools.permutations(range(lb.max() + 1)))
    # Fresh draws for the two-sample ground truth: the first (seed + 1000)
    # is the ground truth; the others (seed + 2000, …) measure how noisy
    # that single test is for this map.
    ps = []
    for k in range(args.fresh):
        a2, _, b2, _ = draw(kind, 2000, deg, seed + 1000 * (k + 1))
        save(os.path.join(d, "A2.csv"), a2)
        q = subprocess.run([args.lrmf, "apply", "--model", os.path.join(d, "out", "checkpoint.lrmf"),
                            "--in", os.path.join(d, "A2.csv"), "--out", os.path.join(d, "TA2.csv"),
                            "--threads", str(args.threads)], capture_output=True, text=True)
        if q.returncode != 0:
            res.update(truth="error", stderr=q.stderr[-2000:])
            return res
        ta2 = np.loadtxt(os.path.join(d, "TA2.csv"), delimiter=",", skiprows=1, ndmin=2)
        mmd2, p = mmd_test(ta2, b2, np.random.default_rng([seed, 3, k]) if k else np.random.default_rng([seed, 3]))
        if k == 0:
            res["mmd2"], res["mmd_p"] = mmd2, p
        ps.append(p)
    # q: the share of fresh draws on which the test rejects, an estimate of
    # the probability that the single-draw ground truth says "not aligned"
    # for this map; lrmf_p_rank: the share of fresh p-values below lrmf's
    # own (uniform in [0, 1] if lrmf's test is as good as a fresh one).
    res["fresh_ps"] = ps
    res["reject_rate"] = sum(p <= 0.05 for p in ps) / len(ps)
    if res.get("lrmf_mmd_p") is not None:
        res["lrmf_p_rank"] = sum(p < res["lrmf_mmd_p"] for p in ps) / len(ps)
    res["fresh_median_p"] = float(np.median(ps))

    def judge(suffix, acc, p):
        aligned = acc >= 0.95 and p > 0.05
        res["truth" + suffix] = "aligned" if aligned else "not aligned"
        res["agree" + suffix] = (res["verdict"] == "converged") == aligned

    judge("", res["label_acc"], res["mmd_p"])
    judge("_relabelled", res["label_acc_relabelled"], res["mmd_p"])
    # The same truth with the median p over all fresh draws in place of
    # one draw's p: a property of the map rather than of one sample.
    judge("_median", res["label_acc"], res["fresh_median_p"])
    # Expected disagreements with the single-draw truth (none when the
    # labels already say not aligned): "floor", min(q, 1 − q), for a verdict
    # that knew the map's rejection rate q exactly; "replicate",
    # 2q(1 − q), for one whose test were an independent replicate of the
    # truth's (as many points, the same test).
    q = res["reject_rate"] if res["label_acc"] >= 0.95 else 0.0
    res["floor"], res["replicate"] = min(q, 1 - q), 2 * q * (1 - q)
    return res


def runs():
    out = []

    def add(name, data, deg, seed, flags, control=False):
        out.append(dict(name=name, data=data, deg=deg, seed=seed, flags=flags, control=control))

    for data in ("moons", "blobs"):
        for deg in (0, 30, 50, 70, 90):
            for seed in (1, 2):
                add(f"realnvp-{data}-{deg}-s{seed}", data, deg, seed, [])
    for data, deg in (("moons", 30), ("moons", 50), ("moons", 90), ("blobs", 50)):
        add(f"ffjord-{data}-{deg}", data, deg, 1, ["--flow", "ffjord", "--density", "ffjord"])
    for data in ("moons", "blobs"):
        add(f"affine-{data}-0", data, 0, 1, ["--flow", "affine", "--density", "gaussian"])
    # Negative controls: runs that cannot have aligned. T(x) = AᵀA·x + b is
    # symmetric positive definite, so it cannot rotate: at 70–90° it cannot
    # map A onto B (at 50° it shears A close enough that the ground truth
    # may call it aligned, so no control there). Thirty steps cannot align
    # anything rotated by 50° or more.
    for data, deg in (("moons", 70), ("moons", 90), ("blobs", 90)):
        add(f"control-affine-{data}-{deg}", data, deg, 1,
            ["--flow", "affine", "--density", "gaussian"], control=True)
    add("control-affine-realnvp-moons-90", "moons", 90, 1,
        ["--flow", "affine", "--density", "realnvp"], control=True)
    for data, deg in (("moons", 50), ("blobs", 90)):
        add(f"control-fewsteps-{data}-{deg}", data, deg, 1,
            ["--steps", "30", "--fit-steps", "30"], control=True)
    return out


def run_safe(run, args):
    """run_one, with a failure of the script itself recorded as the run's."""
    try:
        return run_one(run, args)
    except Exception as e:  # noqa: BLE001 — one bad run must not end the sweep
        return dict(run, verdict="error", stderr=repr(e), seconds=0)


def progress(r):
    print(json.dumps({k: r.get(k) for k in ("name", "verdict", "lrmf", "label_acc", "mmd_p", "reject_rate", "agree")}), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lrmf", default="build/lrmf")
    ap.add_argument("--out", default="build/sweep")
    ap.add_argument("--only", default="")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--fresh", type=int, default=10,
                    help="fresh draws per run: the first is the ground truth, the rest measure its noise")
    ap.add_argument("--extra", default="", help="flags appended to every run's lrmf align (experiments)")
    args = ap.parse_args()
    if args.threads == 0:
        args.threads = max(1, (os.cpu_count() or 1) // args.jobs)
    with open(args.lrmf, "rb") as f:
        args.binary_hash = hashlib.sha256(f.read()).hexdigest()
    todo = [r for r in runs() if args.only in r["name"]]
    for r in todo:
        r["flags"] = r["flags"] + args.extra.split()
    os.makedirs(args.out, exist_ok=True)
    results = []
    if args.jobs > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(args.jobs) as ex:
            for r in ex.map(lambda r: run_safe(r, args), todo):
                results.append(r)
                progress(r)
    else:
        for r in todo:
            r = run_safe(r, args)
            results.append(r)
            progress(r)
    json.dump(results, open(os.path.join(args.out, "sweep.json"), "w"), indent=1)
    print("| run | flags | verdict | LRMF (held-out) ± SE | train LRMF | lrmf MMD p | label acc | up to relabelling | fresh MMD p | fresh rejects (q) | median fresh p | truth | agree | agree up to relabelling | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v, f: "–" if v is None else format(v, f)
    for r in results:
        print(f"| {r['name']} | {' '.join(r['flags']) or 'default'} | {r.get('verdict')} | "
              f"{fmt(r.get('lrmf'), '.3f')} ± {fmt(r.get('lrmf_se'), '.3f')} | {fmt(r.get('lrmf_train'), '.3f')} | "
              f"{fmt(r.get('lrmf_mmd_p'), '.3f')} | {fmt(r.get('label_acc'), '.3f')} | {fmt(r.get('label_acc_relabelled'), '.3f')} | "
              f"{fmt(r.get('mmd_p'), '.3f')} | {fmt(r.get('reject_rate'), '.1f')} | {fmt(r.get('fresh_median_p'), '.3f')} | {r.get('truth')} | {'yes' if r.get('agree') else 'NO'} | "
              f"{'yes' if r.get('agree_relabelled') else 'NO'} | {r['seconds']} |")
    n = len(results)
    agree = sum(1 for r in results if r.get("agree"))
    agree_rl = sum(1 for r in results if r.get("agree_relabelled"))
    controls = [r for r in results if r["control"]]
    bad = sum(1 for r in controls if r.get("verdict") == "converged")
    floor = sum(r.get("floor", 0) for r in results)
    replicate = sum(r.get("replicate", 0) for r in results)
    agree_med = sum(1 for r in results if r.get("agree_median"))
    ranks = [r["lrmf_p_rank"] for r in results if r.get("lrmf_p_rank") is not None and r.get("reject_rate", 1) < 1]
    print(f"\nground-truth noise ({args.fresh} fresh draws per run): a verdict that knew each map's rejection rate q "
          f"would still disagree with the single-draw truth in {floor:.1f} of {n} runs on average (ceiling "
          f"{100 * (n - floor) / max(n, 1):.0f}%), one whose test were an independent replicate of the truth's in "
          f"{replicate:.1f} ({100 * (n - replicate) / max(n, 1):.0f}%); {agree_med} of {n} verdicts ({100 * agree_med / max(n, 1):.0f}%) agree with "
          f"the truth judged by the median fresh p; lrmf's p-value ranks at {np.mean(ranks) if ranks else float('nan'):.2f} "
          f"on average among the fresh ones (0.5: as good as a fresh sample; {len(ranks)} runs where some fresh draw accepts)")
    print(f"{agree} of {n} verdicts agree with the ground truth ({100 * agree / max(n, 1):.0f}%); "
          f"{agree_rl} of {n} ({100 * agree_rl / max(n, 1):.0f}%) with labels judged up to relabelling; "
          f"negative controls called converged: {bad} of {len(controls)}")
    for r in results:
        if not r.get("agree"):
            print(f"disagrees: {r['name']}: {r.get('sentence') or r.get('stderr')}")


if __name__ == "__main__":
    main()

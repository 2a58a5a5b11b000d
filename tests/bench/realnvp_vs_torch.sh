#!/usr/bin/env bash
# tests/bench/realnvp_vs_torch.sh — the Real NVP LRMF joint step (paper
# network: 4 blocks × 2 × 512 ReLU, float32) in lrmf and in PyTorch eager on
# this CPU, measured back to back, and the table BENCHMARKS.md quotes.
#
# One round runs, for every batch and thread count, lrmf's
# BenchmarkRealNVPStep (lrmf/bench_test.go) and then tests/gpu/torch_step.py
# --device cpu on the same step, each with its warm-up untimed; rounds
# repeat that, so the two are interleaved and each ratio compares figures
# taken a few seconds apart. The table gives medians over rounds of wall
# ms/step and of CPU ms/step (user + system of the process: on a shared
# machine a 1-thread step's CPU time is its cost, its wall time adds the
# waits for a core), and the median of the per-round ratios lrmf / torch.
#
# Usage: bash tests/bench/realnvp_vs_torch.sh [ROUNDS]
#   env: BATCHES="256 2000"  THREADS="1 2"  STEPS (timed steps per run, 10)
#        LRMF_BENCH_FILTER (extra -test.bench suffix, e.g. for bf16 runs)
#        TORCH_BLAS_DIR (the libblas.so.3 torch loads; default Debian's
#        OpenBLAS, apt-get install libopenblas0-pthread: Debian's default
#        reference BLAS runs torch's GEMM at ~1 GFLOP/s)
#        OPENBLAS_CORETYPE (default SkylakeX on AVX-512 CPUs: OpenBLAS
#        0.3.21 does not know Zen 5 and falls back to its Haswell kernels)
#        PYTHON (default /usr/bin/python3, Debian's python3-torch)
# Raw lines go to $OUT (default build/bench-realnvp)/raw.txt, lrmf's
# go test -bench lines to $OUT/lrmf.bench (benchstat's input).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${1:-3}
BATCHES=${BATCHES:-"256 2000"}
THREADS=${THREADS:-"1 2"}
STEPS=${STEPS:-10}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${OUT:-build/bench-realnvp}
TORCH_BLAS_DIR=${TORCH_BLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-pthread}
mkdir -p "$OUT"
raw="$OUT/raw.txt"
: >"$raw"
: >"$OUT/lrmf.bench"

if grep -qw avx512f /proc/cpuinfo; then
	export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}
fi
if [[ -e $TORCH_BLAS_DIR/libblas.so.3 ]]; then
	torch_env=(env "LD_LIBRARY_PATH=$TORCH_BLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
else
	echo "realnvp_vs_torch: $TORCH_BLAS_DIR/libblas.so.3 not found: torch uses the system libblas.so.3 (see the GEMM probe below)" >&2
	torch_env=(env)
fi

bin="$OUT/lrmf.test"
go test -c -o "$bin" ./lrmf/

{
	echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
	echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, family $(lscpu | sed -n 's/^CPU family: *//p') model $(lscpu | sed -n 's/^Model: *//p')"
	echo "flags: $(for f in avx2 fma avx512f avx512_bf16; do grep -qw $f /proc/cpuinfo && printf '%s ' $f; done)"
	echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "nice: $(nice)"
	echo "go: $(go version | cut -d' ' -f3), torch: $("${torch_env[@]}" "$PYTHON" -c 'import torch; print(torch.__version__)')"
	"${torch_env[@]}" OPENBLAS_NUM_THREADS=1 "$PYTHON" - <<'PY'
import time, torch
torch.set_num_threads(1)
a, b = torch.randn(2000, 512), torch.randn(512, 512)
for _ in range(3):
    a @ b
t = time.process_time()
for _ in range(20):
    a @ b
dt = (time.process_time() - t) / 20
blas = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l})
print(f"torch GEMM probe 2000x512x512, 1 thread: {2*2000*512*512/dt/1e9:.1f} GFLOP/s (CPU time); BLAS: {' '.join(blas) or 'none mapped'}")
PY
} | tee "$OUT/env.txt"

for r in $(seq "$ROUNDS"); do
	for b in $BATCHES; do
		for t in $THREADS; do
			line=$("$bin" -test.run '^$' -test.bench "^BenchmarkRealNVPStep\$/^paper\$/^float32\$/^threads=$t\$/^batch=$b\$${LRMF_BENCH_FILTER:-}" \
				-test.benchtime "${STEPS}x" | grep '^BenchmarkRealNVPStep' | head -1)
			ms=$(awk '{for (i = 2; i < NF; i++) if ($(i+1) == "ns/op") print $i / 1e6}' <<<"$line")
			cpu=$(awk '{for (i = 2; i < NF; i++) if ($(i+1) == "cpu-ms/step") print $i}' <<<"$line")
			echo "$line" >>"$OUT/lrmf.bench"
			echo "lrmf $r $b $t $ms $cpu" | tee -a "$raw"
			js=$("${torch_env[@]}" OPENBLAS_NUM_THREADS="$t" OMP_NUM_THREADS="$t" "$PYTHON" tests/gpu/torch_step.py \
				--device cpu --threads "$t" --batches "$b" --warm 2 --steps "$STEPS" 2>/dev/null | tail -1)
			tms=$(sed -n 's/.*"ms_per_step": \([0-9.]*\).*/\1/p' <<<"$js")
			tcpu=$(sed -n 's/.*"cpu_ms_per_step": \([0-9.]*\).*/\1/p' <<<"$js")
			echo "torch $r $b $t $tms $tcpu" | tee -a "$raw"
		done
	done
done

# benchstat's summary of lrmf's go test -bench lines (one per round), when
# it is installed (go install golang.org/x/perf/cmd/benchstat@latest).
bs=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
if [[ -x $bs ]]; then
	"$bs" "$OUT/lrmf.bench" | tee "$OUT/benchstat.txt"
fi

# Table: medians over rounds, and the median of the per-round ratios.
"$PYTHON" - "$raw" <<'PY' | tee "$OUT/table.md"
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
d = {}
for who, r, b, t, ms, cpu in rows:
    d[(who, int(r), int(b), int(t))] = (float(ms), float(cpu))
keys = sorted({(b, t) for _, _, b, t in d})
rounds = sorted({r for _, r, _, _ in d})
med = lambda xs: st.median(xs) if xs else float("nan")
print("| batch | threads | lrmf ms/step (wall) | torch ms/step (wall) | ratio (wall) | lrmf CPU ms/step | torch CPU ms/step | ratio (CPU) | rounds |")
print("|---|---|---|---|---|---|---|---|---|")
for b, t in keys:
    pairs = [(d[("lrmf", r, b, t)], d[("torch", r, b, t)]) for r in rounds if ("lrmf", r, b, t) in d and ("torch", r, b, t) in d]
    lw, tw = [p[0][0] for p in pairs], [p[1][0] for p in pairs]
    lc, tc = [p[0][1] for p in pairs], [p[1][1] for p in pairs]
    rw = [a / c for a, c in zip(lw, tw)]
    rc = [a / c for a, c in zip(lc, tc)]
    print(f"| {b} | {t} | {med(lw):.1f} | {med(tw):.1f} | {med(rw):.2f} | {med(lc):.1f} | {med(tc):.1f} | {med(rc):.2f} | {len(pairs)} |")
for who in ("lrmf", "torch"):
    for b in sorted({b for b, _ in keys}):
        one = [d[(who, r, b, 1)][0] for r in rounds if (who, r, b, 1) in d]
        two = [d[(who, r, b, 2)][0] for r in rounds if (who, r, b, 2) in d]
        if one and two:
            print(f"{who} b={b}: 2 threads {med([x / y for x, y in zip(one, two)]):.2f}× faster than 1 (wall, median of rounds)")
PY
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/env.txt"

#!/usr/bin/env bash
# tests/gpu/run.sh — everything the lent GPU machine runs, in one call.
#
# Needs no Go: it runs tests/gpu/bin/cuda.test, which tests/gpu/prepare.sh
# builds on the development machine (the kernel fatbin is embedded in it).
# Steps, most important first, each under a timeout, all within a ~5 minute
# deadline (DEADLINE seconds, default 300; later optional steps are skipped
# when time runs short):
#   1. environment (nvidia-smi, driver, cuBLAS found)        -> env.txt
#   2. conformance suite + lrmf.Align smoke runs + unit tests -> tests.log
#   3. benchmarks: GEMM, launch cost, Real NVP LRMF step,
#      FFJORD solves (RK4(10) + backward, Dormand–Prince), and
#      FFJORD at D = 32 on the batched path, GLOW density step -> bench.log
#   4. PyTorch eager baselines (tests/gpu/torch_step.py,
#      tests/gpu/torch_glow.py)                     -> torch.log, torch_glow.log
#   5. optional: CMake -DLRMF_CUDA=ON build + ctest (nvcc 13) -> ctest.log
#   6. summary table                                          -> summary.md
# Logs go to $OUT (default build/gpu-out). Exit status: 0 when the tests
# passed, 1 otherwise (the benchmarks and baselines only inform).
#
# On the development machine:  bash tests/gpu/prepare.sh
# Then, with the device tool:  run  command="bash tests/gpu/run.sh"
#                                   carry=["tests/gpu/bin"]  timeout_s=420
set -uo pipefail
cd "$(dirname "$0")/../.."

OUT=${OUT:-$PWD/build/gpu-out}
mkdir -p "$OUT"
BIN=${BIN:-tests/gpu/bin/cuda.test}
DEADLINE=${DEADLINE:-300}
SECONDS=0

log() { printf '[run.sh %3ds] %s\n' "$SECONDS" "$*" >&2; }

# left MAX: seconds for the next step, at most MAX, 0 when the deadline has
# passed.
left() {
	local rest=$((DEADLINE - SECONDS))
	((rest < 0)) && rest=0
	echo $((rest < $1 ? rest : $1))
}

if [[ ! -x $BIN ]]; then
	echo "run.sh: $BIN is missing: run 'bash tests/gpu/prepare.sh' on the build machine and carry tests/gpu/bin" >&2
	exit 2
fi

# ---- 1. environment ------------------------------------------------------
{
	date -u
	uname -a
	nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || echo "nvidia-smi failed"
	nvidia-smi 2>&1 | head -15
	command -v nvcc >/dev/null && nvcc --version | tail -2
	command -v cmake >/dev/null && cmake --version | head -1
	python3 --version 2>&1
} >"$OUT/env.txt" 2>&1

# cuBLAS is dlopened by name; point the loader at a directory that has it
# when it is not on the default path (CUDA toolkit, or PyTorch's wheels).
find_cublas() {
	local d
	if ldconfig -p 2>/dev/null | grep -qE 'libcublas\.so\.(13|12|11) '; then
		echo "(default path)"
		return
	fi
	for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 \
		/usr/local/cuda-*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
		if compgen -G "$d/libcublas.so.1[1-3]*" >/dev/null; then
			echo "$d"
			return
		fi
	done
	python3 - <<'PY' 2>/dev/null
import glob, os, site
dirs = site.getsitepackages() + [site.getusersitepackages()]
for base in dirs:
    for pat in ("nvidia/cublas/lib", "nvidia/cu13/lib", "nvidia/cu12/lib", "torch/lib"):
        d = os.path.join(base, pat)
        if glob.glob(os.path.join(d, "libcublas.so.1[1-3]*")):
            print(d)
            raise SystemExit
PY
}
cublas_dir=$(find_cublas)
if [[ -n $cublas_dir && $cublas_dir != "(default path)" ]]; then
	export LD_LIBRARY_PATH="$cublas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
echo "cuBLAS directory: ${cublas_dir:-not found (GEMM falls back to lrmf_k_gemm)}" >>"$OUT/env.txt"
log "environment written; cuBLAS: ${cublas_dir:-not found}"

status=0

# ---- 2. tests ------------------------------------------------------------
t=$(left 150)
log "tests (timeout ${t}s)"
timeout "$t" "$BIN" -test.v -test.count 1 -test.timeout "${t}s" >"$OUT/tests.log" 2>&1
rc=$?
((rc != 0)) && status=1
if grep -q 'no CUDA device: skipping' "$OUT/tests.log"; then
	status=1
	log "the test binary found no usable GPU: $(head -1 "$OUT/tests.log")"
fi
log "tests: exit $rc"

# ---- 3. benchmarks -------------------------------------------------------
: >"$OUT/bench.log"
# bench_run BUDGET MIN LABEL NAME BENCHTIME: runs Benchmark NAME into bench.log
# under a timeout of at most BUDGET seconds, when at least MIN are left.
bench_run() {
	local t
	t=$(left "$1")
	((t > $2)) || return 0
	log "benchmarks: $3 (timeout ${t}s)"
	timeout "$t" "$BIN" -test.run '^$' -test.bench "^Benchmark$4\$" -test.benchtime "$5" >>"$OUT/bench.log" 2>&1
	log "$3: exit $?"
}
bench_run 90 10 "GEMM" Gemm 10x
bench_run 20 5 "launch cost" Launch 20000x
bench_run 120 10 "Real NVP step" RealNVPStepCUDA 1x
# 8 cases (RK4 and Dormand–Prince, batch 2000 and 65536, exact and
# Hutchinson trace), each a warm-up and 5 timed solve + backward.
bench_run 60 10 "FFJORD solves" ODE 5x
# Networks beyond the row kernels' frame: native.BatchedODE at D = 32,
# [64, 64, 64], batch 256 and 2000 (8 cases, a warm-up and 3 timed each).
bench_run 60 10 "FFJORD batched path, D = 32" ODEBatched 3x
# Issue 13: one GLOW density step (LogProb + Backward) on 64 images of
# 32×32×1, the CPU default (3 × 4 × 32) and the paper's (3 × 8 × 512).
bench_run 60 10 "GLOW density step" GLOWImageStepCUDA 1x

# ---- 4. PyTorch baseline -------------------------------------------------
t=$(left 100)
if ((t > 10)) && python3 -c 'import torch' 2>/dev/null; then
	log "PyTorch baseline (timeout ${t}s)"
	timeout "$t" python3 tests/gpu/torch_step.py --batches 2000,65536 >"$OUT/torch.log" 2>&1
	log "torch: exit $?"
else
	echo "skipped (no time left or no torch)" >"$OUT/torch.log"
fi
t=$(left 60)
if ((t > 10)) && python3 -c 'import torch' 2>/dev/null; then
	log "PyTorch GLOW baseline (timeout ${t}s)"
	timeout "$t" python3 tests/gpu/torch_glow.py --device cuda --sizes default,paper >"$OUT/torch_glow.log" 2>&1
	log "torch GLOW: exit $?"
else
	echo "skipped (no time left or no torch)" >"$OUT/torch_glow.log"
fi

# ---- 5. CMake CUDA build + ctest (optional) ------------------------------
t=$(left 120)
if ((t > 30)) && [[ ${LRMF_SKIP_CTEST:-0} != 1 ]] && command -v cmake >/dev/null && command -v nvcc >/dev/null; then
	log "CMake CUDA build + ctest (timeout ${t}s)"
	bdir=$(mktemp -d)
	timeout "$t" bash -c "cmake -S . -B '$bdir' -DCMAKE_BUILD_TYPE=Release -DLRMF_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 &&
		cmake --build '$bdir' -j \"\$(nproc)\" && ctest --test-dir '$bdir' --output-on-failure" >"$OUT/ctest.log" 2>&1
	rc=$?
	log "ctest: exit $rc"
	echo "exit status $rc" >>"$OUT/ctest.log"
else
	echo "skipped (no time left, LRMF_SKIP_CTEST=1, or no cmake/nvcc)" >"$OUT/ctest.log"
fi

# ---- 6. summary ----------------------------------------------------------
num() { awk -v key="$2" -v unit="$3" 'index($1, key) { for (i = 2; i < NF; i++) if ($(i+1) == unit) { print $i; exit } }' "$1"; }
bench() { num "$OUT/bench.log" "$1" "$2"; }
torchms() { grep -F "\"batch\": $1, \"variant\": \"$2\"" "$OUT/torch.log" 2>/dev/null | sed -n 's/.*"ms_per_step": \([0-9.]*\).*/\1/p' | head -1; }
pass=$(grep -c -- '--- PASS' "$OUT/tests.log")
fail=$(grep -c -- '--- FAIL' "$OUT/tests.log")
conf_pass=$(grep -cE -- '--- PASS: TestConformance/' "$OUT/tests.log")
conf_fail=$(grep -cE -- '--- FAIL: TestConformance/' "$OUT/tests.log")
engine=$(grep -m1 -o 'GEMM engine .*' "$OUT/tests.log" | sed 's/GEMM engine //')
ctest_line=$(grep -E 'tests passed|tests failed' "$OUT/ctest.log" | tail -1)
{
	echo "## lrmf cuda backend on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
	echo
	grep -m1 'no CUDA device: skipping' "$OUT/tests.log"
	echo "GEMM engine: ${engine:-unknown}"
	echo
	echo "| check | result |"
	echo "|---|---|"
	echo "| all tests (--- PASS / --- FAIL lines) | $pass passed, $fail failed |"
	echo "| kernel parity (TestConformance subtests) | $conf_pass passed, $conf_fail failed |"
	for c in affine-gaussian realnvp-gaussian realnvp-realnvp; do
		echo "| lrmf.Align cuda vs cpu: $c | $(grep -m1 -E -- "--- (PASS|FAIL): TestAlignMatchesCPU/$c " "$OUT/tests.log" | awk '{sub(":", "", $2); print $2}') |"
	done
	# Issue 15's fused kernels: lrmf_k_gemm_epi + lrmf_k_col_sum (GemmEx on
	# strided windows, with cuBLAS and with lrmf_k_gemm) and
	# lrmf_k_sum_squares (one read-back per arena) against the reference.
	echo "| fused kernel parity (TestConformance GemmEx, SumSquares subtests) | $(grep -cE -- '--- PASS: TestConformance/.*(GemmEx|SumSquares)' "$OUT/tests.log") passed, $(grep -cE -- '--- FAIL: TestConformance/.*(GemmEx|SumSquares)' "$OUT/tests.log") failed |"
	echo "| FFJORD kernel parity (TestConformance/ODE subtests) | $(grep -cE -- '--- PASS: TestConformance/(GemmKernel/)?ODE ' "$OUT/tests.log") passed, $(grep -cE -- '--- FAIL: TestConformance/(GemmKernel/)?ODE ' "$OUT/tests.log") failed |"
	# lrmf_k_mul: the batched FFJORD path's elementwise products (fresh
	# output and in place) against the reference.
	echo "| elementwise product parity (TestConformance/Mul subtests) | $(grep -cE -- '--- PASS: TestConformance/(GemmKernel/)?Mul ' "$OUT/tests.log") passed, $(grep -cE -- '--- FAIL: TestConformance/(GemmKernel/)?Mul ' "$OUT/tests.log") failed |"
	echo "| image kernel parity, GLOW (TestConformance/Image subtests) | $(grep -cE -- '--- PASS: TestConformance/(GemmKernel/)?Image ' "$OUT/tests.log") passed, $(grep -cE -- '--- FAIL: TestConformance/(GemmKernel/)?Image ' "$OUT/tests.log") failed |"
	for c in TestODEMatchesCPU TestODETapeOwnership TestODELimits TestODEBatchedMatchesCPU TestFFJORDDensityD32; do
		echo "| $c | $(grep -m1 -E -- "--- (PASS|FAIL): $c " "$OUT/tests.log" | awk '{sub(":", "", $2); print $2}') |"
	done
	echo "| ctest (CMake -DLRMF_CUDA=ON) | ${ctest_line:-see ctest.log} |"
	echo
	grep -oE '[a-z-]+: LRMF cuda .*' "$OUT/tests.log" | sed 's/^/    /'
	echo
	echo "| LRMF step, paper Real NVP | ours ms/step | PyTorch eager ms/step | PyTorch fused-Adam ms/step | ours launches/step | ours syncs/step |"
	echo "|---|---|---|---|---|---|"
	for b in 2000 65536; do
		echo "| batch $b | $(bench "RealNVPStepCUDA/batch=$b" ms/step) | $(torchms "$b" eager) | $(torchms "$b" fused) | $(bench "RealNVPStepCUDA/batch=$b" launches/step) | $(bench "RealNVPStepCUDA/batch=$b" syncs/step) |"
	done
	echo
	echo "| GEMM (float32) | cuBLAS TFLOP/s | lrmf_k_gemm TFLOP/s |"
	echo "|---|---|---|"
	for s in 2048x2048x2048 8192x8192x8192 131072x512x512; do
		echo "| $s | $(bench "Gemm/cublas/$s" TFLOP/s) | $(bench "Gemm/kernel/$s" TFLOP/s) |"
	done
	echo
	echo "| FFJORD, dynamics [3, 16, 16, 16, 2] | ms per solve + backward | f evals/row (forward) | steps/row |"
	echo "|---|---|---|---|"
	for sv in rk4 dopri5; do
		for b in 2000 65536; do
			for tr in exact hutchinson; do
				key="ODE/$sv/batch=$b/$tr"
				label="RK4(10)"
				[[ $sv == dopri5 ]] && label="Dormand–Prince (tol 1e-5)"
				echo "| $label, batch $b, $tr trace | $(bench "$key" ms/solve+bwd) | $(bench "$key" nfe/row) | $(bench "$key" steps/row) |"
			done
		done
	done
	echo
	echo "| FFJORD batched path, dynamics [33, 64, 64, 64, 32] | ms per solve + backward | f evals/row (forward) | steps/row |"
	echo "|---|---|---|---|"
	for sv in rk4 dopri5; do
		for b in 256 2000; do
			for tr in exact hutchinson; do
				key="ODEBatched/$sv/batch=$b/$tr"
				label="RK4(10)"
				[[ $sv == dopri5 ]] && label="Dormand–Prince (tol 1e-5)"
				echo "| $label, batch $b, $tr trace | $(bench "$key" ms/solve+bwd) | $(bench "$key" nfe/row) | $(bench "$key" steps/row) |"
			done
		done
	done
	echo
	echo "| GLOW density step, 64 images of 32×32×1 | ours ms/step | PyTorch eager ms/step | ours launches/step | ours copies/step | ours syncs/step |"
	echo "|---|---|---|---|---|---|"
	for sz in default paper; do
		key="GLOWImageStepCUDA/size=$sz/batch=64"
		tms=$(grep -F "\"size\": \"$sz\"" "$OUT/torch_glow.log" 2>/dev/null | sed -n 's/.*"ms_per_step": \([0-9.]*\).*/\1/p' | head -1)
		echo "| $sz ($([[ $sz == paper ]] && echo '3 × 8 × 512' || echo '3 × 4 × 32')) | $(bench "$key" ms/step) | $tms | $(bench "$key" launches/step) | $(bench "$key" copies/step) | $(bench "$key" syncs/step) |"
	done
	echo
	echo "host cost per call: Axpy launch $(bench 'Launch/Axpy' ns/op) ns, Dot with read-back $(bench 'Launch/Dot' ns/op) ns"
	echo
	echo "elapsed ${SECONDS}s; logs: env.txt tests.log bench.log torch.log torch_glow.log ctest.log"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
if ((status != 0)); then
	echo
	echo "failures (first 40 lines):"
	grep -E -- '--- FAIL|_test.go:[0-9]+:|panic' "$OUT/tests.log" | head -40
fi
exit $status

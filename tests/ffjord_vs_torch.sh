#!/usr/bin/env bash
# tests/ffjord_vs_torch.sh — lrmf's FFJORD joint step next to PyTorch eager
# doing the same step (issue 14), back to back per configuration so that a
# load change on a shared machine hits both sides alike.
#
# For each configuration (batch × solver × trace) it runs
#   go test -bench 'FFJORDStepVsTorch/path=$PATHS/batch=B/SOLVER/TRACE' -count N
# (lrmf/bench_test.go: one [16, 16, 16] tanh transform for T and θS,
# float32 tensors, 1 thread; each sample the mean of 2 steps after one
# untimed step), then tests/ffjord_torch_step.py for the same
# step (N timed steps after 2 warm-up steps, 1 thread), and prints one line:
# the medians, the ratio lrmf / PyTorch and the evaluations per row of
# each. The raw `go test` output goes to $OUT/go.txt (benchstat input), the
# PyTorch lines to $OUT/torch.jsonl.
#
# Usage: bash tests/ffjord_vs_torch.sh [-n N] [-b 256,2000] [-s rk4,dopri5]
#        [-t exact,hutchinson] [-p auto] [-o OUTDIR]
# PYTHON (default /usr/bin/python3) must import torch.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
n=6 batches=256,2000 solvers=rk4,dopri5 traces=exact,hutchinson path=auto
out=build/ffjord_vs_torch
while getopts n:b:s:t:p:o: opt; do
	case $opt in
	n) n=$OPTARG ;;
	b) batches=$OPTARG ;;
	s) solvers=$OPTARG ;;
	t) traces=$OPTARG ;;
	p) path=$OPTARG ;;
	o) out=$OPTARG ;;
	*) exit 2 ;;
	esac
done
py=${PYTHON:-/usr/bin/python3}
mkdir -p "$out"
: >"$out/go.txt"
: >"$out/torch.jsonl"
go test -c -o "$out/lrmf.test" ./lrmf/
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'),$(uptime | sed 's/.*load average: / load /')"
printf '%-32s %12s %12s %8s %10s %10s\n' config lrmf_ms torch_ms ratio lrmf_NFE torch_NFE
IFS=, read -ra bs <<<"$batches"
IFS=, read -ra ss <<<"$solvers"
IFS=, read -ra ts <<<"$traces"
for b in "${bs[@]}"; do
	for s in "${ss[@]}"; do
		for t in "${ts[@]}"; do
			cfg="batch=$b/$s/$t"
			g=$(cd lrmf && LRMF_BENCH_ODE_PATHS=$path "../$out/lrmf.test" -test.run XXX -test.benchmem \
				-test.bench "FFJORDStepVsTorch/path=$path/$cfg\$" -test.count "$n" -test.benchtime 2x)
			grep '^Benchmark' <<<"$g" >>"$out/go.txt"
			gms=$(grep '^Benchmark' <<<"$g" | awk '{print $3/1e6}' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
			gnfe=$(grep '^Benchmark' <<<"$g" | head -1 | awk '{for (i=1;i<=NF;i++) if ($i=="NFE/row") print $(i-1)}')
			j=$("$py" tests/ffjord_torch_step.py --batches "$b" --solvers "$s" --traces "$t" --steps "$n" --warm 2)
			echo "$j" >>"$out/torch.jsonl"
			tms=$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["ms_per_step"])' "$j")
			tnfe=$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["nfe_per_row"])' "$j")
			printf '%-32s %12.1f %12.1f %8.3f %10s %10s\n' "$cfg" "$gms" "$tms" \
				"$(awk -v a="$gms" -v b="$tms" 'BEGIN {print a/b}')" "$gnfe" "$tnfe"
		done
	done
done
echo "#$(uptime | sed 's/.*load average: / load /'); go test output: $out/go.txt (benchstat $out/go.txt)"

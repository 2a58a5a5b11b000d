#!/usr/bin/env bash
# tests/gpu/prepare.sh — builds, on the development machine, what
# tests/gpu/run.sh runs on the lent GPU machine (which has no Go):
#   tests/gpu/bin/cuda.test  the native/cuda test binary, kernels embedded,
# after checking the kernels' signatures (check_params.sh) and the FFJORD
# kernels' logic on the host (csrc/cuda/ode_emu_test.cc).
# Needs Go and nvcc (Debian's CUDA 11.8 is enough: the binary needs only
# libcuda.so.1 at load time and dlopens cuBLAS 13/12/11 at run time).
set -euo pipefail
cd "$(dirname "$0")/../.."

bash csrc/cuda/build_fatbin.sh native/cuda/lrmf_kernels.fatbin
bash csrc/cuda/check_params.sh native/cuda/lrmf_kernels.fatbin
# The FFJORD kernels' logic against the CPU kernels, emulated on the host
# (csrc/cuda/ode_emu_test.cc; under a second), before device time is spent.
emu=$(mktemp -d)
"${CC:-cc}" -O2 -std=gnu11 -Icsrc/include -c -o "$emu/lrmf_cpu.o" csrc/cpu/lrmf_cpu.c
"${CXX:-g++}" -std=c++17 -O2 -Wall -Wno-unknown-pragmas -Icsrc/cuda -Icsrc/include -o "$emu/ode_emu" \
	csrc/cuda/ode_emu_test.cc "$emu/lrmf_cpu.o" -lm
"$emu/ode_emu"
rm -rf "$emu"
mkdir -p tests/gpu/bin
go test -tags cuda -c -o tests/gpu/bin/cuda.test ./native/cuda/

echo "libraries needed at load time:"
readelf -d tests/gpu/bin/cuda.test | awk '/NEEDED/ {print "  " $NF}'
size=$(stat -c %s tests/gpu/bin/cuda.test)
echo "tests/gpu/bin/cuda.test: $((size / 1024 / 1024)) MiB (the device call carries at most 64 MiB)"

# Without a GPU here the binary must say so in one line and exit 0.
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi >/dev/null 2>&1; then
	out=$(tests/gpu/bin/cuda.test -test.run '^$' 2>&1) || { echo "the test binary failed here: $out" >&2; exit 1; }
	echo "here (no GPU): $out"
fi
cat <<'MSG'
Now run on the GPU machine (one call, ~3-5 minutes):
  run  command="bash tests/gpu/run.sh"  carry=["tests/gpu/bin"]  timeout_s=420
Logs come back from $OUT: summary.md env.txt tests.log bench.log torch.log ctest.log
MSG

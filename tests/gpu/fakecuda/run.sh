#!/usr/bin/env bash
# tests/gpu/fakecuda/run.sh — runs native/cuda's tests without a GPU, on a
# CPU stand-in for libcuda.so.1 (fakecuda.c): device memory is host memory
# and every lrmf_k_* launch runs the cpu backend's C kernel of the same
# name. It checks the Go backend's host logic — kernel arguments and their
# order, launch shapes, view offsets, copies, the memory pool, context
# handling across goroutines — and, in TestFakeDriverBitIdentical, that a
# whole lrmf.Align run matches the float32 cpu backend to the bit. It does
# not check the CUDA kernels, cuBLAS or real asynchrony (tests/gpu/run.sh
# on a GPU does). Needs gcc, Go and cuda.h (nvidia-cuda-dev).
#
# Usage: bash tests/gpu/fakecuda/run.sh [extra test-binary flags]
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
out="$root/build/fakecuda"
mkdir -p "$out"
# -z defs: a kernel of the list (csrc/include/lrmf_kernel_list.def) without
# its run_<name> handler in fakecuda.c is an undefined symbol, hence an error.
"${CC:-cc}" -shared -fPIC -O2 -std=gnu11 -Wall -Wl,-z,defs -Icsrc/include -o "$out/libcuda.so.1" \
	tests/gpu/fakecuda/fakecuda.c csrc/cpu/lrmf_cpu.c -lm
[[ -f native/cuda/lrmf_kernels.fatbin ]] || bash csrc/cuda/build_fatbin.sh native/cuda/lrmf_kernels.fatbin
go test -tags cuda -c -o "$out/cuda.test" ./native/cuda/
cd native/cuda
# cuBLAS would try the real driver: the stand-in runs GEMM on lrmf_k_gemm.
LD_LIBRARY_PATH="$out${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" LRMF_CUDA_GEMM=kernel \
	"$out/cuda.test" -test.count 1 "$@"
echo "fakecuda: native/cuda tests passed on the CPU stand-in driver"

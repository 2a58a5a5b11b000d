#!/usr/bin/env bash
# build_fatbin.sh [OUT] — compiles csrc/cuda/lrmf_kernels.cu into the fatbin
# that native/cuda loads with cuModuleLoadData (default OUT:
# native/cuda/lrmf_kernels.fatbin, relative to the repository root).
#
# Targets: sm_80 and sm_90 machine code (A100, H100/H200) plus compute_90
# PTX, which the driver JIT-compiles for newer GPUs. Works with nvcc 11.8
# (Debian) and nvcc 13. NVCC overrides the compiler, NVCC_EXTRA adds flags
# (e.g. NVCC_EXTRA="-Xcompiler -Wall").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-native/cuda/lrmf_kernels.fatbin}
# A relative OUT given on the command line is relative to the caller's
# directory; the default is relative to the repository root.
if [[ $# -ge 1 && $out != /* ]]; then
  out="$PWD/$out"
fi
cd "$root"
mkdir -p "$(dirname "$out")"

# shellcheck disable=SC2086 # NVCC_EXTRA is a list of flags
"${NVCC:-nvcc}" -fatbin -O3 \
  -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_90,code=sm_90 \
  -gencode arch=compute_90,code=compute_90 \
  ${NVCC_EXTRA:-} \
  -o "$out" csrc/cuda/lrmf_kernels.cu
echo "build_fatbin: wrote $out"

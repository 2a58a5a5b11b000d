#!/usr/bin/env bash
# check_params.sh [FATBIN|PTX] — checks the PTX kernel signatures of the lrmf
# CUDA kernels against the kernel list (csrc/include/lrmf_kernel_list.def,
# the parameter letters of lrmf_kernels.h's launch contract): every
# `.entry lrmf_k_*` exists with an unmangled name, and each parameter is
# 8 bytes and of the documented kind (u = int64/pointer as .u64/.s64/.b64,
# f = double as .f64), because the Go launcher copies every argument as
# 8 raw bytes. Default input: native/cuda/lrmf_kernels.fatbin. Needs
# cuobjdump (CUOBJDUMP=...) for a fatbin. Exit status 0 only if all match.
set -euo pipefail

in=${1:-native/cuda/lrmf_kernels.fatbin}
if [[ ! -f $in ]]; then
  echo "check_params: $in: no such file (build it with csrc/cuda/build_fatbin.sh)" >&2
  exit 2
fi
if [[ $in == *.ptx ]]; then
  ptx=$(cat "$in")
else
  ptx=$("${CUOBJDUMP:-cuobjdump}" -ptx "$in")
fi

# The contract: kernel name and one letter per parameter, in order, from
# the kernel list's LRMF_CUDA_KERNEL(name, rule, units, "letters") lines.
list="$(dirname "${BASH_SOURCE[0]}")/../include/lrmf_kernel_list.def"
expected=$(sed -n 's/^LRMF_CUDA_KERNEL(\([a-z0-9_]*\), .*, "\([uf]*\)")$/\1 \2/p' "$list" |
  awk '{ printf "%s", $1; n = split($2, c, ""); for (i = 1; i <= n; i++) printf " %s", c[i]; print "" }')
entries=$(grep -c '^LRMF_CUDA_KERNEL(' "$list")
if [[ $(grep -c . <<<"$expected") -ne $entries ]]; then
  echo "check_params: $list: $entries LRMF_CUDA_KERNEL lines, but only $(grep -c . <<<"$expected") parse as one-line entries" >&2
  exit 2
fi

# Signatures found in the PTX: "name letters..." (x = anything not 8 bytes).
# A fatbin may hold several PTX copies; identical lines are merged.
found=$(awk '
  /\.entry[ \t]+[A-Za-z_0-9$]+[ \t]*\(/ {
    name = $0
    sub(/.*\.entry[ \t]+/, "", name); sub(/[ \t]*\(.*/, "", name)
    sig = name; inside = 1
    if ($0 ~ /\)/) { print sig; inside = 0 }
    next
  }
  inside && /\.param/ {
    t = $0; sub(/.*\.param[ \t]+/, "", t); sub(/[ \t].*/, "", t); sub(/,$/, "", t)
    if (t == ".u64" || t == ".s64" || t == ".b64") l = "u"
    else if (t == ".f64") l = "f"
    else l = "x(" t ")"
    sig = sig " " l
  }
  inside && /\)/ { print sig; inside = 0 }
' <<<"$ptx" | sort -u)

fail=0
nexp=0
while read -r name rest; do
  [[ -z $name ]] && continue
  nexp=$((nexp + 1))
  want="lrmf_k_$name $rest"
  got=$(grep -E "^lrmf_k_$name( |$)" <<<"$found" || true)
  if [[ -z $got ]]; then
    echo "MISSING  lrmf_k_$name"
    fail=1
  elif [[ $(wc -l <<<"$got") -ne 1 ]]; then
    echo "DIFFERENT SIGNATURES lrmf_k_$name:"; echo "$got"
    fail=1
  elif [[ $got != "$want" ]]; then
    echo "MISMATCH lrmf_k_$name: got '${got#* }', want '$rest'"
    fail=1
  fi
done <<<"$expected"

# Entries nobody expects (a typo, a mangled C++ name, a new kernel not in
# the table) fail too: the table must stay complete.
while read -r name _; do
  [[ -z $name ]] && continue
  if ! grep -qE "^${name#lrmf_k_}( |$)" <<<"$expected" || [[ $name != lrmf_k_* ]]; then
    echo "UNEXPECTED entry $name"
    fail=1
  fi
done <<<"$found"

if [[ $fail -ne 0 ]]; then
  echo "check_params: FAILED"
  exit 1
fi
echo "check_params: $nexp kernels, every parameter 8 bytes and as documented"

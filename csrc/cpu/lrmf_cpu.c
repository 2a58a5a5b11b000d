/*
 * lrmf_cpu.c — the CPU implementation of lrmf.h.
 *
 * The kernel bodies live once in kernels.inc (GEMM in gemm.inc, Adam and
 * the sums of squares in optim.inc); this file
 * instantiates them for float (_f32) and double (_f64). bindings/lrmf_cpu.c
 * includes this file so that cgo compiles it as part of the Go package.
 */
#include "lrmf.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define T float
#define S f32
#include "kernels.inc"
#include "gemm.inc"
#include "optim.inc"
#include "ode.inc"
#include "gmm.inc"
#include "conv.inc"
#undef T
#undef S

#define T double
#define S f64
#include "kernels.inc"
#include "gemm.inc"
#include "optim.inc"
#include "ode.inc"
#include "gmm.inc"
#include "conv.inc"
#undef T
#undef S

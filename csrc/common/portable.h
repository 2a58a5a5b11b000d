/*
 * portable.h — what the shared row code (rows.inc, ode_rows.inc) needs to
 * compile unchanged as C11 (the CPU kernels, cgo) and as CUDA C++ (the GPU
 * kernels, and the .cu compiled as host C++ by the emulation tests).
 * Needs <math.h> and <stdint.h>.
 */
#ifndef LRMF_PORTABLE_H
#define LRMF_PORTABLE_H

/* A function of the shared row code. Under nvcc it is a device function
 * only: the .cu calls these from kernels, and the Dormand–Prince tableau
 * they read (LRMF_TABLE) lives in device memory. */
#ifdef __CUDACC__
#define LRMF_HD static __device__
#define LRMF_TABLE static __device__ const
#else
#define LRMF_HD static inline
#define LRMF_TABLE static const
#endif

/* C's restrict; C++ has only the extension. */
#ifdef __cplusplus
#define LRMF_RESTRICT __restrict__
#else
#define LRMF_RESTRICT restrict
#endif

#define LRMF_CAT_(a, b) a##_##b
#define LRMF_CAT(a, b) LRMF_CAT_(a, b)
/* LRMF_ROW(coupling_fwd) -> lrmf_row_coupling_fwd_f32 (S = f32): the names
 * of the shared row functions, one set per element type. */
#define LRMF_ROW(name) LRMF_CAT(lrmf_row_##name, S)

/* Maths in the element's own precision (tanhf for float, tanh for
 * double), so float kernels never round-trip through double where nothing
 * is accumulated. */
#ifdef __cplusplus
#define LRMF_MATH1(fn)                                                         \
  LRMF_HD float lrmf_##fn(float x) { return fn##f(x); }                        \
  LRMF_HD double lrmf_##fn(double x) { return fn(x); }
LRMF_MATH1(tanh)
LRMF_MATH1(exp)
LRMF_MATH1(log1p)
LRMF_MATH1(log)
LRMF_MATH1(cosh)
LRMF_MATH1(fabs)
LRMF_MATH1(sqrt)
#undef LRMF_MATH1
#define LRMF_TANH(x) lrmf_tanh(x)
#define LRMF_EXP(x) lrmf_exp(x)
#define LRMF_LOG1P(x) lrmf_log1p(x)
#define LRMF_LOG(x) lrmf_log(x)
#define LRMF_COSH(x) lrmf_cosh(x)
#define LRMF_FABS(x) lrmf_fabs(x)
#define LRMF_SQRT(x) lrmf_sqrt(x)
#else
#define LRMF_TANH(x) _Generic((x), float: tanhf, default: tanh)(x)
#define LRMF_EXP(x) _Generic((x), float: expf, default: exp)(x)
#define LRMF_LOG1P(x) _Generic((x), float: log1pf, default: log1p)(x)
#define LRMF_LOG(x) _Generic((x), float: logf, default: log)(x)
#define LRMF_COSH(x) _Generic((x), float: coshf, default: cosh)(x)
#define LRMF_FABS(x) _Generic((x), float: fabsf, default: fabs)(x)
#define LRMF_SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)
#endif

#endif /* LRMF_PORTABLE_H */

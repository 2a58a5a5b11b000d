/*
 * lrmf_kernels.h — the launch contract of lrmf's float32 CUDA kernels
 * (lrmf_kernels.cu): the GPU's ABI. It is not lrmf.h (the CPU's C ABI):
 * names, parameters and error handling differ, as listed below. Every
 * kernel here is an LRMF_CUDA_KERNEL entry of the kernel list
 * (csrc/include/lrmf_kernel_list.def), which also holds its launch rule and
 * parameter letters; a test keeps this header, the .cu and the list in
 * step.
 *
 * The Go side (native/cuda) loads lrmf_kernels.fatbin with cuModuleLoadData
 * and launches these kernels by name with cuLaunchKernel. To keep that
 * launcher trivial every kernel is extern "C" (unmangled name) and EVERY
 * parameter is exactly 8 bytes: int64_t sizes and flags, double scalars,
 * pointers (csrc/cuda/check_params.sh verifies this on the PTX).
 *
 * Semantics: each kernel computes what the _f32 CPU kernel of the same name
 * in csrc/include/lrmf.h computes (same shapes, same overwrite vs "+=",
 * same double accumulation of sums), by construction where a row's
 * arithmetic is concerned: both run the same row functions
 * (csrc/common/rows.inc, ode_rows.inc). The differences:
 *  - No argument checks and no status: the caller validates sizes, leading
 *    dimensions and pointers first, exactly as lrmf.h specifies.
 *  - A double parameter whose lrmf.h type is T (fill value, axpy alpha,
 *    logdet_l, ldm, bound, gemm alpha/beta) is rounded to float on entry,
 *    as the f32 CPU kernel receives it; adam's hyper-parameters stay double.
 *  - lrmf_gauss_bwd is split in two launches (dx; dmu and dl), and
 *    lrmf_bias_relu_bwd in two (bias_relu_bwd_dz, then bias_grad on dz).
 *  - A launch whose grid would be 0 (units or outputs == 0, m or n == 0)
 *    must be skipped: gridDim 0 is a launch error, and in each such case the
 *    CPU kernel writes nothing either. The S kernels always launch (n == 0
 *    writes *out = 0); C kernels with n == 0 rows still launch (they zero
 *    their outputs).
 *
 * Launch rules (block and grid are 1-D unless stated):
 *  R(units)   blockDim = 256, gridDim = min(ceil(units/256), 65535). The
 *             kernel runs a grid-stride loop over `units`, so any grid works.
 *  C(outputs) blockDim = 256, gridDim = outputs (≤ 2^31−1). Block o computes
 *             output o: a strided loop over rows into a double per thread,
 *             then a fixed shared-memory tree reduction (no atomics), so the
 *             result is bitwise reproducible. Blocks also stride over
 *             outputs, so a smaller grid is correct too.
 *  S          blockDim = 1024, gridDim = 1. One block reduces all n elements
 *             in a fixed order (thread t takes t, t+1024, ...; then a tree),
 *             in double, and writes one double.
 *  G(m, n)    blockDim = (16, 16), gridDim = (ceil(n/16), ceil(m/16)): one
 *             16×16 tile of C per block. Blocks stride over tiles, so
 *             gridDim.y may be capped at 65535 when m > 1 048 560.
 *  O(n, np)   blockDim = 128, gridDim = min(ceil(n/128), 65535), and
 *             sharedMem = 8·np bytes of dynamic shared memory (np = θ's
 *             length for dims): the FFJORD kernels. One thread per row
 *             (rows stride over the grid), θ staged as double in shared
 *             memory; n == 0 must be skipped. The only rule with dynamic
 *             shared memory; every other launch passes 0.
 *
 * Smaller blocks (any size) also give correct results (the kernels are
 * compiled with __launch_bounds__ of the rule's block size, so larger ones
 * fail to launch), but only the rule fixes the summation order of C and S.
 *
 * Kernel table ("f*" = float*, "cf*" = const float*, "i32*" = const
 * int32_t*, "i64*" = int64_t* in device memory, "d*" = double*; all
 * sizes int64_t; NULLABLE = may be 0):
 *
 * kernel                    parameters (in order)                    rule
 * ------------------------- ---------------------------------------- ---------
 * lrmf_k_fill               n, double v, f* x                        R(n)
 * lrmf_k_axpy               n, double alpha, cf* x, f* y             R(n)
 * lrmf_k_mul                n, cf* a, cf* b, f* out (may be a or b)  R(n)
 * lrmf_k_dot                n, cf* x, cf* y, d* out                  S
 * lrmf_k_sum                n, cf* x, d* out                         S
 * lrmf_k_bias_add           n, d, cf* bias, f* y                     R(n*d)
 * lrmf_k_bias_grad          n, d, cf* dy, f* db                      C(d)
 * lrmf_k_relu_fwd           n, cf* x, f* y                           R(n)
 * lrmf_k_relu_bwd           n, cf* x, cf* dy, f* dx                  R(n)
 * lrmf_k_tanh_fwd           n, cf* x, f* y                           R(n)
 * lrmf_k_tanh_bwd           n, cf* y, cf* dy, f* dx                  R(n)
 * lrmf_k_bias_relu_fwd      n, d, cf* bias, f* y                     R(n*d)
 * lrmf_k_bias_relu_bwd_dz   n, d, cf* y, cf* dy, f* dz               R(n*d)
 * lrmf_k_gemm_epi           m, n, cf* bias (NULLABLE), relu,         R(m*n)
 *                           cf* mask (NULLABLE), f* c, ldc
 * lrmf_k_col_sum            m, n, cf* c, ldc, f* out                 C(n)
 * lrmf_k_sum_squares        nseg, i64* ends, cf* x, d* out           C(nseg)
 * lrmf_k_gauss_logp         n, d, cf* x, cf* mu, cf* l,              R(n)
 *                           double logdet_l, f* u, f* logp
 * lrmf_k_gauss_bwd_dx       n, d, cf* l, cf* u, cf* dlogp, f* dx     R(n)
 * lrmf_k_gauss_bwd_params   n, d, cf* x, cf* mu, cf* l, cf* u,       C(d+d*d)
 *                           cf* dlogp, f* dmu, f* dl
 * lrmf_k_logdet_acc         n, d, cf* s, f* logdet                   R(n)
 * lrmf_k_affine_fwd         n, d, cf* x, cf* m, cf* b, double ldm,   R(n)
 *                           f* y, f* logdet (NULLABLE)
 * lrmf_k_affine_inv         n, d, cf* y, cf* minv, cf* b, f* x       R(n)
 * lrmf_k_adam               n, f* p, cf* g, f* m, f* v, double lr,   R(n)
 *                           double beta1, double beta2, double eps,
 *                           double bc1, double bc2
 * lrmf_k_gather_rows        n, d, cf* src, i32* idx, f* dst          R(n*d)
 * lrmf_k_copy_cols          n, d, c0, k, cf* src, f* dst             R(n*k)
 * lrmf_k_add_cols           n, d, c0, k, cf* src, f* dst             R(n*k)
 * lrmf_k_coupling_fwd       n, d, t0, dt, kind, double bound,        R(n)
 *                           cf* x, cf* h, f* y, f* logdet (NULLABLE)
 * lrmf_k_coupling_inv       n, d, t0, dt, kind, double bound,        R(n)
 *                           cf* y, cf* h, f* x
 * lrmf_k_coupling_bwd       n, d, t0, dt, kind, double bound,        R(n)
 *                           cf* x, cf* h, cf* dy, cf* dlogdet,
 *                           f* dx (NULLABLE), f* dh
 * lrmf_k_actnorm_fwd        n, d, kind, cf* x, cf* r, cf* b, f* y,   R(n)
 *                           f* logdet (NULLABLE)
 * lrmf_k_actnorm_inv        n, d, kind, cf* y, cf* r, cf* b, f* x    R(n)
 * lrmf_k_actnorm_bwd_dx     n, d, kind, cf* r, cf* dy, f* dx         R(n*d)
 * lrmf_k_actnorm_bwd_params n, d, kind, cf* x, cf* r, cf* b, cf* dy, C(d)
 *                           cf* dlogdet (NULLABLE), f* dr, f* db
 * lrmf_k_lu_solve           n, d, cf* lu, i32* perm, cf* y, f* x     R(n)
 * lrmf_k_gemm               trans_a, trans_b, m, n, k, double alpha, G(m, n)
 *                           cf* a, lda, cf* b, ldb, double beta,
 *                           f* c, ldc
 * lrmf_k_ode_fwd            n, nl, i64* dims, cf* theta, double t,  O(n, np)
 *                           cf* z, k, cf* eps (NULLABLE), f* dz,
 *                           f* trace
 * lrmf_k_ode_vjp            n, nl, i64* dims, cf* theta, double t,  O(n, np)
 *                           cf* z, k, cf* eps (NULLABLE), cf* az,
 *                           cf* atr, f* gz, d* gpart
 * lrmf_k_ode_gsum           n, np, d* gpart, f* gtheta              C(np)
 * lrmf_k_ode_rk4            n, nl, i64* dims, cf* theta, double t0, O(n, np)
 *                           double t1, steps, cf* z0, k,
 *                           cf* eps (NULLABLE), f* z1, f* logdet,
 *                           d* states (NULLABLE)
 * lrmf_k_ode_rk4_bwd        n, nl, i64* dims, cf* theta, double t0, O(n, np)
 *                           double t1, steps, k, cf* eps (NULLABLE),
 *                           d* states, cf* a1, cf* ald, f* gz0,
 *                           d* gpart
 * lrmf_k_ode_dopri5         n, nl, i64* dims, cf* theta, double t0, O(n, np)
 *                           double t1, double atol, double rtol,
 *                           double h0, max_steps, cf* z0, k,
 *                           cf* eps (NULLABLE), f* z1, f* logdet,
 *                           d* tape (NULLABLE), i64* info
 * lrmf_k_ode_dopri5_bwd     n, nl, i64* dims, cf* theta, max_steps,  O(n, np)
 *                           k, cf* eps (NULLABLE), d* tape,
 *                           i64* info, cf* a1, cf* ald, f* gz0,
 *                           d* gpart
 * lrmf_k_im2col             n, h, w, c, k, edge, cf* x, p0, p1,      R((p1−p0)·
 *                           f* cols                                  k²·(c+edge))
 * lrmf_k_conv2d_flip        cin, cout, k, edge, cf* wt, f* wf        R(k²·cout·cin)
 * lrmf_k_squeeze            n, h, w, c, cf* x, f* y                  R(n·h·w·c)
 * lrmf_k_unsqueeze          n, h, w, c, cf* y, f* x                  R(n·h·w·c)
 *
 * Notes per kernel:
 *  - gauss_bwd_params: block o < d gives dmu[o]; block d + r*d + c gives
 *    dl[r*d + c]. Both are overwritten (n == 0 writes zeros).
 *  - bias_relu_bwd_dz: dz = dy·[y > 0] (dz may alias dy); db is then
 *    lrmf_k_bias_grad(n, d, dz, db).
 *  - gemm_epi, col_sum: lrmf_gemm_ep_ws_f32's epilogue as passes after
 *    the product (cuBLAS or lrmf_k_gemm) on the m×n window c whose rows
 *    are ldc apart: gemm_epi applies z += bias[j], relu, z·[mask[i·n+j] > 0]
 *    in that order; col_sum then gives out[j] = Σ_i c[i,j] (float).
 *  - sum_squares: out[s] = Σ x[j]² over [ends[s−1], ends[s]) (ends[−1] =
 *    0), in double; the ends are device memory (int64).
 *  - gather_rows: a negative idx[i] leaves row i of dst unwritten (the CPU
 *    kernel returns EINVAL instead); validate idx before the call.
 *  - coupling_*: kind 1 = LRMF_SCALE_EXP (needs bound > 0), 2 =
 *    LRMF_SCALE_SIGMOID. An invalid (kind, bound) makes the kernel write
 *    nothing. With dt == 0, h, dlogdet and dh are not read (may be 0).
 *    y may be x (fwd), x may be y (inv), dx may be dy (bwd).
 *  - actnorm_*: kind 1 = LRMF_ACTNORM_EXP, 2 = LRMF_ACTNORM_SOFTPLUS; an
 *    unknown kind makes the kernel write nothing. y may be x (fwd), x may
 *    be y (inv). lrmf_actnorm_bwd is split in two launches: bwd_params
 *    (dr, db; overwritten, n == 0 zeroes them; b, x, dy not read when
 *    n == 0) first, then bwd_dx when dx is wanted (it may overwrite dy).
 *  - lu_solve: x must not alias y; perm (d int32 in device memory) is
 *    validated by the caller (0 ≤ perm[k] < d).
 *  - gemm: the simple fallback SGEMM (16×16 shared-memory tiles, float
 *    accumulation, row-major as lrmf.h: C = alpha·op(A)·op(B) + beta·C).
 *    trans_x != 0 means op(X) = Xᵀ. beta == 0 does not read C; k == 0 gives
 *    C = beta·C. Correct for any sizes and leading dimensions, but far from
 *    cuBLAS speed (no register tiling).
 *  - Elementwise kernels allow in-place use as lrmf.h states (y == x,
 *    dx == dy); other outputs must not alias inputs.
 *  - ode_* (FFJORD, lrmf.h's LRMF_DECLARE_ODE and _BWD for float): dims
 *    (nl int64s) is in device memory; k == 0 is the exact trace (eps not
 *    read). The caller checks dims against lrmf.h's rules AND the frame
 *    limits below (LRMF_K_ODE_*), which the kernels do not check. Every
 *    row is computed in double, as on the CPU. t of ode_fwd/ode_vjp is
 *    rounded to float (a T in lrmf.h); t0, t1, atol, rtol, h0 are double.
 *    Layouts differ from the CPU's so that a warp's threads (consecutive
 *    rows) touch consecutive addresses ("row-minor"):
 *      gpart  double np×n: row i's θ-gradient, parameter p at p·n + i;
 *             lrmf_k_ode_gsum then writes gtheta[p] = Σ_i (block-tree
 *             order). ode_vjp and the *_bwd kernels overwrite it.
 *      states double steps×D×n: RK4 start state of step s, component j
 *             of row i at (s·D + j)·n + i.
 *      tape   double max_steps×(D+2)×n: accepted step m of row i,
 *             [t, signed h, z (D)], component c at (m·(D+2) + c)·n + i.
 *      info   int64 3×n: info[i] = row i's status (LRMF_K_ODE_OK or a
 *             failure below), info[n+i] its f evaluations, info[2n+i]
 *             its accepted steps (the count ode_dopri5_bwd replays).
 *    Status per row instead of the CPU's first-failure-stops-the-batch:
 *    every row runs; a failed row leaves z1/logdet unwritten. The host
 *    reports the failure of the lowest failing row.
 *  - im2col, conv2d_flip, squeeze, unsqueeze (images, lrmf.h's "Images"):
 *    exact copies, so equal to the CPU's to the bit; the convolutions are
 *    built from them and GEMMs by the host (native/cuda/image.go).
 */
#ifndef LRMF_KERNELS_H
#define LRMF_KERNELS_H

#include <stdint.h>

/* Launch-rule constants (shared with the Go side by documentation). */
#define LRMF_K_BLOCK 256      /* R and C blockDim */
#define LRMF_K_GRID_MAX 65535 /* R gridDim cap */
#define LRMF_K_SBLOCK 1024    /* S blockDim */
#define LRMF_K_TILE 16        /* G blockDim is TILE×TILE, one C tile each */

/* FFJORD kernels: block size of the O rule and the per-thread frame
 * limits, checked by the caller: D ≤ 8, tangent directions m (D exact, k
 * Hutchinson) ≤ 8, every width ≤ 32, Σ hidden widths ≤ 96, m·Σ hidden ≤
 * 384, nl ≤ 8 entries of dims, np ≤ 6144 (θ as double in 48 KiB of
 * shared memory; the other limits imply np ≤ 5864). */
#define LRMF_K_OBLOCK 128
#define LRMF_K_ODE_MAXD 8
#define LRMF_K_ODE_MAXM 8
#define LRMF_K_ODE_MAXW 32
#define LRMF_K_ODE_MAXSH 96
#define LRMF_K_ODE_MAXMSH 384
#define LRMF_K_ODE_MAXNL 8
#define LRMF_K_ODE_MAXP 6144

/* Per-row status of lrmf_k_ode_dopri5 (lrmf.h's values; lrmf_kernels.cu
 * asserts they are equal, here and for the scale kinds). */
#define LRMF_K_ODE_OK 0
#define LRMF_K_ODE_UNDERFLOW (-2)
#define LRMF_K_ODE_NONFINITE (-3)
#define LRMF_K_ODE_MAXSTEPS (-4)

/* Scale kinds of the coupling kernels (same values as lrmf.h). */
#define LRMF_K_SCALE_EXP 1
#define LRMF_K_SCALE_SIGMOID 2

/* ActNorm scale kinds (same values as lrmf.h). */
#define LRMF_K_ACTNORM_EXP 1
#define LRMF_K_ACTNORM_SOFTPLUS 2

#ifdef __CUDACC__
/* Declarations for CUDA code that links lrmf_cuda_kernels (the .cu includes
 * this header, so a mismatch with the definitions does not compile). */
#define LRMF_K extern "C" __global__

LRMF_K void lrmf_k_fill(int64_t n, double v, float *x);
LRMF_K void lrmf_k_axpy(int64_t n, double alpha, const float *x, float *y);
LRMF_K void lrmf_k_mul(int64_t n, const float *a, const float *b, float *out);
LRMF_K void lrmf_k_dot(int64_t n, const float *x, const float *y, double *out);
LRMF_K void lrmf_k_sum(int64_t n, const float *x, double *out);
LRMF_K void lrmf_k_bias_add(int64_t n, int64_t d, const float *bias, float *y);
LRMF_K void lrmf_k_bias_grad(int64_t n, int64_t d, const float *dy, float *db);
LRMF_K void lrmf_k_relu_fwd(int64_t n, const float *x, float *y);
LRMF_K void lrmf_k_relu_bwd(int64_t n, const float *x, const float *dy,
                            float *dx);
LRMF_K void lrmf_k_tanh_fwd(int64_t n, const float *x, float *y);
LRMF_K void lrmf_k_tanh_bwd(int64_t n, const float *y, const float *dy,
                            float *dx);
LRMF_K void lrmf_k_bias_relu_fwd(int64_t n, int64_t d, const float *bias,
                                 float *y);
LRMF_K void lrmf_k_bias_relu_bwd_dz(int64_t n, int64_t d, const float *y,
                                    const float *dy, float *dz);
LRMF_K void lrmf_k_gemm_epi(int64_t m, int64_t n, const float *bias,
                            int64_t relu, const float *mask, float *c,
                            int64_t ldc);
LRMF_K void lrmf_k_col_sum(int64_t m, int64_t n, const float *c, int64_t ldc,
                           float *out);
LRMF_K void lrmf_k_sum_squares(int64_t nseg, const int64_t *ends,
                               const float *x, double *out);
LRMF_K void lrmf_k_gauss_logp(int64_t n, int64_t d, const float *x,
                              const float *mu, const float *l, double logdet_l,
                              float *u, float *logp);
LRMF_K void lrmf_k_gauss_bwd_dx(int64_t n, int64_t d, const float *l,
                                const float *u, const float *dlogp, float *dx);
LRMF_K void lrmf_k_gauss_bwd_params(int64_t n, int64_t d, const float *x,
                                    const float *mu, const float *l,
                                    const float *u, const float *dlogp,
                                    float *dmu, float *dl);
LRMF_K void lrmf_k_logdet_acc(int64_t n, int64_t d, const float *s,
                              float *logdet);
LRMF_K void lrmf_k_affine_fwd(int64_t n, int64_t d, const float *x,
                              const float *m, const float *b, double ldm,
                              float *y, float *logdet);
LRMF_K void lrmf_k_affine_inv(int64_t n, int64_t d, const float *y,
                              const float *minv, const float *b, float *x);
LRMF_K void lrmf_k_adam(int64_t n, float *p, const float *g, float *m, float *v,
                        double lr, double beta1, double beta2, double eps,
                        double bc1, double bc2);
LRMF_K void lrmf_k_gather_rows(int64_t n, int64_t d, const float *src,
                               const int32_t *idx, float *dst);
LRMF_K void lrmf_k_copy_cols(int64_t n, int64_t d, int64_t c0, int64_t k,
                             const float *src, float *dst);
LRMF_K void lrmf_k_add_cols(int64_t n, int64_t d, int64_t c0, int64_t k,
                            const float *src, float *dst);
LRMF_K void lrmf_k_coupling_fwd(int64_t n, int64_t d, int64_t t0, int64_t dt,
                                int64_t kind, double bound, const float *x,
                                const float *h, float *y, float *logdet);
LRMF_K void lrmf_k_coupling_inv(int64_t n, int64_t d, int64_t t0, int64_t dt,
                                int64_t kind, double bound, const float *y,
                                const float *h, float *x);
LRMF_K void lrmf_k_coupling_bwd(int64_t n, int64_t d, int64_t t0, int64_t dt,
                                int64_t kind, double bound, const float *x,
                                const float *h, const float *dy,
                                const float *dlogdet, float *dx, float *dh);
LRMF_K void lrmf_k_actnorm_fwd(int64_t n, int64_t d, int64_t kind,
                               const float *x, const float *r, const float *b,
                               float *y, float *logdet);
LRMF_K void lrmf_k_actnorm_inv(int64_t n, int64_t d, int64_t kind,
                               const float *y, const float *r, const float *b,
                               float *x);
LRMF_K void lrmf_k_actnorm_bwd_dx(int64_t n, int64_t d, int64_t kind,
                                  const float *r, const float *dy, float *dx);
LRMF_K void lrmf_k_actnorm_bwd_params(int64_t n, int64_t d, int64_t kind,
                                      const float *x, const float *r,
                                      const float *b, const float *dy,
                                      const float *dlogdet, float *dr,
                                      float *db);
LRMF_K void lrmf_k_lu_solve(int64_t n, int64_t d, const float *lu,
                            const int32_t *perm, const float *y, float *x);
LRMF_K void lrmf_k_gemm(int64_t trans_a, int64_t trans_b, int64_t m, int64_t n,
                        int64_t k, double alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, double beta, float *c,
                        int64_t ldc);
LRMF_K void lrmf_k_ode_fwd(int64_t n, int64_t nl, const int64_t *dims,
                           const float *theta, double t, const float *z,
                           int64_t k, const float *eps, float *dz,
                           float *trace);
LRMF_K void lrmf_k_ode_vjp(int64_t n, int64_t nl, const int64_t *dims,
                           const float *theta, double t, const float *z,
                           int64_t k, const float *eps, const float *az,
                           const float *atr, float *gz, double *gpart);
LRMF_K void lrmf_k_ode_gsum(int64_t n, int64_t np, const double *gpart,
                            float *gtheta);
LRMF_K void lrmf_k_ode_rk4(int64_t n, int64_t nl, const int64_t *dims,
                           const float *theta, double t0, double t1,
                           int64_t steps, const float *z0, int64_t k,
                           const float *eps, float *z1, float *logdet,
                           double *states);
LRMF_K void lrmf_k_ode_rk4_bwd(int64_t n, int64_t nl, const int64_t *dims,
                               const float *theta, double t0, double t1,
                               int64_t steps, int64_t k, const float *eps,
                               const double *states, const float *a1,
                               const float *ald, float *gz0, double *gpart);
LRMF_K void lrmf_k_ode_dopri5(int64_t n, int64_t nl, const int64_t *dims,
                              const float *theta, double t0, double t1,
                              double atol, double rtol, double h0,
                              int64_t max_steps, const float *z0, int64_t k,
                              const float *eps, float *z1, float *logdet,
                              double *tape, int64_t *info);
LRMF_K void lrmf_k_ode_dopri5_bwd(int64_t n, int64_t nl, const int64_t *dims,
                                  const float *theta, int64_t max_steps,
                                  int64_t k, const float *eps,
                                  const double *tape, const int64_t *info,
                                  const float *a1, const float *ald,
                                  float *gz0, double *gpart);
LRMF_K void lrmf_k_im2col(int64_t n, int64_t h, int64_t w, int64_t c,
                          int64_t k, int64_t edge, const float *x, int64_t p0,
                          int64_t p1, float *cols);
LRMF_K void lrmf_k_conv2d_flip(int64_t cin, int64_t cout, int64_t k,
                               int64_t edge, const float *wt, float *wf);
LRMF_K void lrmf_k_squeeze(int64_t n, int64_t h, int64_t w, int64_t c,
                           const float *x, float *y);
LRMF_K void lrmf_k_unsqueeze(int64_t n, int64_t h, int64_t w, int64_t c,
                             const float *y, float *x);

#endif /* __CUDACC__ */

#endif /* LRMF_KERNELS_H */

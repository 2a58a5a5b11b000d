/*
 * lrmf_kernels.cu — float32 CUDA kernels of lrmf; see lrmf_kernels.h for the
 * parameter table and launch rules, csrc/include/lrmf.h for the maths.
 *
 * The arithmetic of a row that the CPU kernels compute too is not here but
 * in csrc/common/rows.inc and ode_rows.inc, included below with T = float
 * and shared with csrc/cpu: each kernel here maps threads to rows (or
 * elements, or outputs) and calls the same row function as the CPU kernel
 * of the same name. What is GPU-only is the walk over the batch, the
 * reductions across threads (C and S rules), the tiled GEMM, and the
 * FFJORD kernels' staging of θ and per-row layouts.
 *
 * Built into a fatbin (build_fatbin.sh) that the Go side loads with the
 * driver API; every parameter is 8 bytes so its launcher needs no types.
 */
#include "lrmf_kernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* lrmf.h for the constants both ABIs share (scale kinds, ODE status codes,
 * ln 2π), which the row code uses; lrmf_kernels.h repeats the values for
 * callers that include it alone, and these asserts keep them equal. */
#include "../include/lrmf.h"
static_assert(LRMF_K_SCALE_EXP == LRMF_SCALE_EXP &&
                  LRMF_K_SCALE_SIGMOID == LRMF_SCALE_SIGMOID,
              "scale kinds differ between lrmf.h and lrmf_kernels.h");
static_assert(LRMF_K_ACTNORM_EXP == LRMF_ACTNORM_EXP &&
                  LRMF_K_ACTNORM_SOFTPLUS == LRMF_ACTNORM_SOFTPLUS,
              "ActNorm kinds differ between lrmf.h and lrmf_kernels.h");
static_assert(LRMF_K_ODE_OK == LRMF_OK &&
                  LRMF_K_ODE_UNDERFLOW == LRMF_ODE_UNDERFLOW &&
                  LRMF_K_ODE_NONFINITE == LRMF_ODE_NONFINITE &&
                  LRMF_K_ODE_MAXSTEPS == LRMF_ODE_MAXSTEPS,
              "ODE status codes differ between lrmf.h and lrmf_kernels.h");

#include "../common/portable.h"
#define T float
#define S f32
#include "../common/rows.inc"

/* Grid-stride loop over [0, units): correct for any 1-D grid, so the R rule
 * may cap gridDim at 65535. 64-bit indices: n·d can exceed 2^31. */
#define LRMF_K_FOR(i, units)                                                   \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;             \
       i < (units); i += (int64_t)blockDim.x * gridDim.x)

/* Register caps matching the launch rules (a 1024-thread launch fails if
 * the compiler used more than 64 registers per thread). */
#define LRMF_K_R __launch_bounds__(LRMF_K_BLOCK)
#define LRMF_K_S __launch_bounds__(LRMF_K_SBLOCK)
#define LRMF_K_G __launch_bounds__(LRMF_K_TILE *LRMF_K_TILE)

/* Sum of v over the block's threads in a fixed tree order (deterministic,
 * no atomics). Any blockDim.x ≤ 1024; every thread must call it; all get
 * the result. */
static __device__ double lrmf_k_block_sum(double v) {
  __shared__ double sh[1024];
  const unsigned t = threadIdx.x, nt = blockDim.x;
  sh[t] = v;
  __syncthreads();
  unsigned p = 1;
  while (p < nt)
    p <<= 1;
  for (unsigned s = p >> 1; s > 0; s >>= 1) {
    if (t < s && t + s < nt)
      sh[t] += sh[t + s];
    __syncthreads();
  }
  const double r = sh[0];
  __syncthreads(); /* sh is reused by the caller's next output */
  return r;
}

/* ---- elementwise and BLAS-1 ---------------------------------------------- */

LRMF_K LRMF_K_R void lrmf_k_fill(int64_t n, double v, float *x) {
  const float fv = (float)v;
  LRMF_K_FOR(i, n) x[i] = fv;
}

LRMF_K LRMF_K_R void lrmf_k_axpy(int64_t n, double alpha, const float *x,
                                 float *y) {
  const float a = (float)alpha;
  LRMF_K_FOR(i, n) y[i] += a * x[i];
}

/* out may be a or b: each thread reads its element before writing it. */
LRMF_K LRMF_K_R void lrmf_k_mul(int64_t n, const float *a, const float *b,
                                float *out) {
  LRMF_K_FOR(i, n) out[i] = a[i] * b[i];
}

/* S rule: a single block, so the order of the sum is fixed by n alone. */
LRMF_K LRMF_K_S void lrmf_k_dot(int64_t n, const float *x, const float *y,
                                double *out) {
  if (blockIdx.x != 0)
    return;
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    acc += (double)x[i] * (double)y[i];
  acc = lrmf_k_block_sum(acc);
  if (threadIdx.x == 0)
    *out = acc;
}

LRMF_K LRMF_K_S void lrmf_k_sum(int64_t n, const float *x, double *out) {
  if (blockIdx.x != 0)
    return;
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    acc += (double)x[i];
  acc = lrmf_k_block_sum(acc);
  if (threadIdx.x == 0)
    *out = acc;
}

LRMF_K LRMF_K_R void lrmf_k_bias_add(int64_t n, int64_t d, const float *bias,
                                     float *y) {
  LRMF_K_FOR(e, n * d) y[e] += bias[e % d];
}

/* C rule: block j owns db[j]; threads stride over rows. */
LRMF_K LRMF_K_R void lrmf_k_bias_grad(int64_t n, int64_t d, const float *dy,
                                      float *db) {
  for (int64_t j = blockIdx.x; j < d; j += gridDim.x) {
    double acc = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      acc += (double)dy[i * d + j];
    acc = lrmf_k_block_sum(acc);
    if (threadIdx.x == 0)
      db[j] = (float)acc;
  }
}

/* In-place use (y == x, dx == dy) is allowed: each element is read before
 * it is written by the same thread, hence no __restrict__. */
LRMF_K LRMF_K_R void lrmf_k_relu_fwd(int64_t n, const float *x, float *y) {
  LRMF_K_FOR(i, n) y[i] = LRMF_ROW(relu)(x[i]);
}

LRMF_K LRMF_K_R void lrmf_k_relu_bwd(int64_t n, const float *x,
                                     const float *dy, float *dx) {
  LRMF_K_FOR(i, n) dx[i] = LRMF_ROW(relu_grad)(x[i], dy[i]);
}

LRMF_K LRMF_K_R void lrmf_k_tanh_fwd(int64_t n, const float *x, float *y) {
  LRMF_K_FOR(i, n) y[i] = LRMF_TANH(x[i]);
}

LRMF_K LRMF_K_R void lrmf_k_tanh_bwd(int64_t n, const float *y,
                                     const float *dy, float *dx) {
  LRMF_K_FOR(i, n) dx[i] = LRMF_ROW(tanh_grad)(y[i], dy[i]);
}

LRMF_K LRMF_K_R void lrmf_k_bias_relu_fwd(int64_t n, int64_t d,
                                          const float *bias, float *y) {
  LRMF_K_FOR(e, n * d) y[e] = LRMF_ROW(relu)(y[e] + bias[e % d]);
}

/* The epilogue of native's GemmEx (lrmf_gemm_ep_ws's, as a pass after the
 * cuBLAS product): the m×n window at c (rows ldc apart), bias (n), mask
 * (m×n, contiguous) NULLABLE. The steps are lrmf_gemm_ep_ws's, in its
 * order and roundings, so the window ends as the CPU's. */
LRMF_K LRMF_K_R void lrmf_k_gemm_epi(int64_t m, int64_t n, const float *bias,
                                     int64_t relu, const float *mask,
                                     float *c, int64_t ldc) {
  LRMF_K_FOR(e, m * n) {
    const int64_t i = e / n, j = e % n;
    float z = c[i * ldc + j];
    if (bias != NULL)
      z = z + bias[j];
    if (relu)
      z = LRMF_ROW(relu)(z);
    if (mask != NULL)
      z = LRMF_ROW(relu_grad)(mask[e], z);
    c[i * ldc + j] = z;
  }
}

/* C rule: out[j] = Σ_i c[i·ldc + j] of an m×n window (GemmEx's column
 * sums; m == 0 writes zeros). */
LRMF_K LRMF_K_R void lrmf_k_col_sum(int64_t m, int64_t n, const float *c,
                                    int64_t ldc, float *out) {
  for (int64_t j = blockIdx.x; j < n; j += gridDim.x) {
    double acc = 0.0;
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x)
      acc += (double)c[i * ldc + j];
    acc = lrmf_k_block_sum(acc);
    if (threadIdx.x == 0)
      out[j] = (float)acc;
  }
}

/* C rule: out[s] = Σ x[j]² over segment s = [ends[s−1], ends[s]) (ends[−1]
 * = 0): the squared norms of the parameters of an arena, read back in one
 * copy. */
LRMF_K LRMF_K_R void lrmf_k_sum_squares(int64_t nseg, const int64_t *ends,
                                        const float *x, double *out) {
  for (int64_t s = blockIdx.x; s < nseg; s += gridDim.x) {
    const int64_t a = s > 0 ? ends[s - 1] : 0, b = ends[s];
    double acc = 0.0;
    for (int64_t j = a + threadIdx.x; j < b; j += blockDim.x)
      acc += (double)x[j] * (double)x[j];
    acc = lrmf_k_block_sum(acc);
    if (threadIdx.x == 0)
      out[s] = acc;
  }
}

/* The elementwise half of lrmf_bias_relu_bwd; db comes from bias_grad(dz),
 * whose C rule keeps the column sums deterministic. */
LRMF_K LRMF_K_R void lrmf_k_bias_relu_bwd_dz(int64_t n, int64_t d,
                                             const float *y, const float *dy,
                                             float *dz) {
  LRMF_K_FOR(e, n * d) dz[e] = LRMF_ROW(relu_grad)(y[e], dy[e]);
}

/* ---- Gaussian base density ----------------------------------------------- */

/* One thread per sample: u_i = L(x_i − mu) and logp_i in one pass. */
LRMF_K LRMF_K_R void lrmf_k_gauss_logp(int64_t n, int64_t d, const float *x,
                                       const float *mu, const float *l,
                                       double logdet_l, float *u,
                                       float *logp) {
  const double c0 = -0.5 * (double)d * LRMF_LN_2PI + (double)(float)logdet_l;
  LRMF_K_FOR(i, n) logp[i] = LRMF_ROW(gauss_logp)(i, d, x, mu, l, c0, u);
}

/* dx_i = −w_i Lᵀ u_i, one thread per sample, one column of g_i at a time
 * (the CPU takes 64; each column's sum is the same). */
LRMF_K LRMF_K_R void lrmf_k_gauss_bwd_dx(int64_t n, int64_t d, const float *l,
                                         const float *u, const float *dlogp,
                                         float *dx) {
  LRMF_K_FOR(i, n) {
    const double w = (double)dlogp[i];
    for (int64_t c = 0; c < d; c++) {
      double g;
      LRMF_ROW(gauss_g)(i, d, c, 1, l, u, &g);
      dx[i * d + c] = (float)(-w * g);
    }
  }
}

/* C rule over d + d·d outputs: block o < d reduces dmu[o] = Σ_i w_i g_i[o],
 * block d + r·d + c reduces dl[r,c] = −Σ_i w_i u_i[r] (x_i[c] − mu[c]).
 * Recomputing g_i[o] per block costs n·d per output, as the CPU's dx pass. */
LRMF_K LRMF_K_R void lrmf_k_gauss_bwd_params(int64_t n, int64_t d,
                                             const float *x, const float *mu,
                                             const float *l, const float *u,
                                             const float *dlogp, float *dmu,
                                             float *dl) {
  const int64_t outs = d + d * d;
  for (int64_t o = blockIdx.x; o < outs; o += gridDim.x) {
    double acc = 0.0;
    if (o < d) {
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        double g;
        LRMF_ROW(gauss_g)(i, d, o, 1, l, u, &g);
        acc += (double)dlogp[i] * g;
      }
    } else {
      const int64_t e = o - d, r = e / d, c = e - r * d;
      const double muc = n > 0 ? (double)mu[c] : 0.0; /* mu may be NULL */
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const double wu = (double)dlogp[i] * (double)u[i * d + r];
        acc += wu * ((double)x[i * d + c] - muc);
      }
    }
    acc = lrmf_k_block_sum(acc); /* o is uniform over the block */
    if (threadIdx.x == 0) {
      if (o < d)
        dmu[o] = (float)acc;
      else
        dl[o - d] = (float)(-acc);
    }
  }
}

/* ---- flows: log-dets, affine layer, Adam --------------------------------- */

LRMF_K LRMF_K_R void lrmf_k_logdet_acc(int64_t n, int64_t d, const float *s,
                                       float *logdet) {
  LRMF_K_FOR(i, n) LRMF_ROW(logdet_acc)(i, d, s, logdet);
}

/* One thread per sample; d == 0 still adds ldm (x, y are then empty). */
LRMF_K LRMF_K_R void lrmf_k_affine_fwd(int64_t n, int64_t d, const float *x,
                                       const float *m, const float *b,
                                       double ldm, float *y, float *logdet) {
  const float fl = (float)ldm;
  LRMF_K_FOR(i, n) {
    LRMF_ROW(affine_fwd)(i, d, x, m, b, y);
    if (logdet != NULL)
      logdet[i] += fl;
  }
}

LRMF_K LRMF_K_R void lrmf_k_affine_inv(int64_t n, int64_t d, const float *y,
                                       const float *minv, const float *b,
                                       float *x) {
  LRMF_K_FOR(i, n) LRMF_ROW(affine_inv)(i, d, y, minv, b, x);
}

LRMF_K LRMF_K_R void lrmf_k_adam(int64_t n, float *p, const float *g,
                                 float *m, float *v, double lr, double beta1,
                                 double beta2, double eps, double bc1,
                                 double bc2) {
  const double om1 = 1.0 - beta1, om2 = 1.0 - beta2;
  LRMF_K_FOR(i, n)
  LRMF_ROW(adam)(i, p, g, m, v, beta1, om1, beta2, om2, lr, bc1, bc2, eps);
}

/* ---- row and column moves ------------------------------------------------ */

/* A negative index cannot report EINVAL here: its row is left unwritten
 * rather than read out of bounds. */
LRMF_K LRMF_K_R void lrmf_k_gather_rows(int64_t n, int64_t d, const float *src,
                                        const int32_t *idx, float *dst) {
  LRMF_K_FOR(e, n * d) {
    const int64_t i = e / d, j = e - i * d;
    const int64_t r = (int64_t)idx[i];
    if (r >= 0)
      dst[e] = src[r * d + j];
  }
}

LRMF_K LRMF_K_R void lrmf_k_copy_cols(int64_t n, int64_t d, int64_t c0,
                                      int64_t k, const float *src,
                                      float *dst) {
  LRMF_K_FOR(e, n * k) {
    const int64_t i = e / k, j = e - i * k;
    dst[e] = src[i * d + c0 + j];
  }
}

LRMF_K LRMF_K_R void lrmf_k_add_cols(int64_t n, int64_t d, int64_t c0,
                                     int64_t k, const float *src, float *dst) {
  LRMF_K_FOR(e, n * k) {
    const int64_t i = e / k, j = e - i * k;
    dst[i * d + c0 + j] += src[e];
  }
}

/* ---- affine coupling ----------------------------------------------------- */

/* The CPU's validity rule: an invalid pair makes the kernels write nothing,
 * as EINVAL does there (a NaN bound fails bound > 0). */
static __device__ __forceinline__ bool lrmf_k_scale_ok(int64_t kind,
                                                       float bound) {
  return kind == LRMF_K_SCALE_SIGMOID ||
         (kind == LRMF_K_SCALE_EXP && bound > 0.0f);
}

/* One thread per sample. kind is validated before it is narrowed to int. */
LRMF_K LRMF_K_R void lrmf_k_coupling_fwd(int64_t n, int64_t d, int64_t t0,
                                         int64_t dt, int64_t kind,
                                         double bound, const float *x,
                                         const float *h, float *y,
                                         float *logdet) {
  const float fb = (float)bound;
  if (!lrmf_k_scale_ok(kind, fb))
    return;
  LRMF_K_FOR(i, n)
  LRMF_ROW(coupling_fwd)(i, d, t0, dt, (int)kind, fb, x, h, y, logdet);
}

LRMF_K LRMF_K_R void lrmf_k_coupling_inv(int64_t n, int64_t d, int64_t t0,
                                         int64_t dt, int64_t kind,
                                         double bound, const float *y,
                                         const float *h, float *x) {
  const float fb = (float)bound;
  if (!lrmf_k_scale_ok(kind, fb))
    return;
  LRMF_K_FOR(i, n) LRMF_ROW(coupling_inv)(i, d, t0, dt, (int)kind, fb, y, h, x);
}

LRMF_K LRMF_K_R void lrmf_k_coupling_bwd(int64_t n, int64_t d, int64_t t0,
                                         int64_t dt, int64_t kind,
                                         double bound, const float *x,
                                         const float *h, const float *dy,
                                         const float *dlogdet, float *dx,
                                         float *dh) {
  const float fb = (float)bound;
  if (!lrmf_k_scale_ok(kind, fb))
    return;
  LRMF_K_FOR(i, n)
  LRMF_ROW(coupling_bwd)(i, d, t0, dt, (int)kind, fb, x, h, dy, dlogdet, dx,
                         dh);
}

/* ---- Glow: ActNorm and the LU layer's inverse ----------------------------- */

/* The CPU's rule: an unknown ActNorm kind makes the kernels write nothing,
 * as EINVAL does there. */
static __device__ __forceinline__ bool lrmf_k_actnorm_ok(int64_t kind) {
  return kind == LRMF_ACTNORM_EXP || kind == LRMF_ACTNORM_SOFTPLUS;
}

/* One thread per sample. Each thread recomputes s_j (the CPU computes it
 * once per column chunk: the same function of r_j, so the same value) and
 * the row's log-det Σ_j ln s_j in the CPU's order. y may be x. */
LRMF_K LRMF_K_R void lrmf_k_actnorm_fwd(int64_t n, int64_t d, int64_t kind,
                                        const float *x, const float *r,
                                        const float *b, float *y,
                                        float *logdet) {
  if (!lrmf_k_actnorm_ok(kind))
    return;
  LRMF_K_FOR(i, n) {
    for (int64_t j = 0; j < d; j++) {
      float lns, dlns;
      const float s = LRMF_ROW(actnorm_scale)((int)kind, r[j], &lns, &dlns);
      y[i * d + j] = LRMF_ROW(actnorm_fwd)(x[i * d + j], b[j], s);
    }
    if (logdet != NULL && d > 0)
      logdet[i] = (float)((double)logdet[i] +
                          LRMF_ROW(actnorm_lnsum)(d, (int)kind, r));
  }
}

LRMF_K LRMF_K_R void lrmf_k_actnorm_inv(int64_t n, int64_t d, int64_t kind,
                                        const float *y, const float *r,
                                        const float *b, float *x) {
  if (!lrmf_k_actnorm_ok(kind))
    return;
  LRMF_K_FOR(i, n) {
    for (int64_t j = 0; j < d; j++) {
      float lns, dlns;
      const float s = LRMF_ROW(actnorm_scale)((int)kind, r[j], &lns, &dlns);
      x[i * d + j] = LRMF_ROW(actnorm_inv)(y[i * d + j], b[j], s);
    }
  }
}

/* The input-gradient half of lrmf_actnorm_bwd: dx = dy·s_j per element.
 * With dx == dy it overwrites dy, so the host launches
 * lrmf_k_actnorm_bwd_params first. */
LRMF_K LRMF_K_R void lrmf_k_actnorm_bwd_dx(int64_t n, int64_t d, int64_t kind,
                                           const float *r, const float *dy,
                                           float *dx) {
  if (!lrmf_k_actnorm_ok(kind))
    return;
  LRMF_K_FOR(e, n * d) {
    float lns, dlns;
    const float s = LRMF_ROW(actnorm_scale)((int)kind, r[e % d], &lns, &dlns);
    dx[e] = LRMF_ROW(actnorm_dx)(dy[e], s);
  }
}

/* C rule over d outputs: block j reduces Σ_i dy_ij, Σ_i dy_ij (x_ij + b_j)
 * and Σ_i dlogdet_i (dlogdet may be 0: zero) in fixed tree order and writes
 * dr[j] and db[j] with the CPU's formula (rows.inc). n == 0 gives the empty
 * sums. */
LRMF_K LRMF_K_R void lrmf_k_actnorm_bwd_params(
    int64_t n, int64_t d, int64_t kind, const float *x, const float *r,
    const float *b, const float *dy, const float *dlogdet, float *dr,
    float *db) {
  if (!lrmf_k_actnorm_ok(kind))
    return;
  for (int64_t j = blockIdx.x; j < d; j += gridDim.x) {
    double sdy = 0.0, sdyx = 0.0, w = 0.0;
    const double bj = n > 0 ? (double)b[j] : 0.0; /* b may be 0 when n == 0 */
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const double g = (double)dy[i * d + j];
      sdy += g;
      sdyx += g * ((double)x[i * d + j] + bj);
      if (dlogdet != NULL)
        w += (double)dlogdet[i];
    }
    sdy = lrmf_k_block_sum(sdy); /* j is uniform over the block */
    sdyx = lrmf_k_block_sum(sdyx);
    w = lrmf_k_block_sum(w);
    if (threadIdx.x == 0)
      LRMF_ROW(actnorm_grads)((int)kind, r[j], sdy, sdyx, w, dr + j, db + j);
  }
}

/* One thread per sample: forward then back substitution (rows.inc). The
 * caller checks perm's range, as lrmf_lu_solve_f32 does. */
LRMF_K LRMF_K_R void lrmf_k_lu_solve(int64_t n, int64_t d, const float *lu,
                                     const int32_t *perm, const float *y,
                                     float *x) {
  LRMF_K_FOR(i, n) LRMF_ROW(lu_solve)(i, d, lu, perm, y, x);
}

/* ---- fallback SGEMM ------------------------------------------------------ */

/* C = alpha·op(A)·op(B) + beta·C, row-major. Each 16×16 block computes one
 * 16×16 tile of C (thread (tx, ty) owns C[row0+ty, col0+tx]) by walking k in
 * 16-wide slices staged in shared memory. Loads are laid out so that
 * consecutive tx read consecutive addresses whether or not the operand is
 * transposed; the +1 column pads away bank conflicts of the transposed
 * stores. Blocks stride over tiles, so the grid may be capped. */
LRMF_K LRMF_K_G void lrmf_k_gemm(int64_t trans_a, int64_t trans_b, int64_t m,
                                 int64_t n, int64_t k, double alpha,
                                 const float *a, int64_t lda, const float *b,
                                 int64_t ldb, double beta, float *c,
                                 int64_t ldc) {
  __shared__ float as[LRMF_K_TILE][LRMF_K_TILE + 1]; /* as[row][p] */
  __shared__ float bs[LRMF_K_TILE][LRMF_K_TILE + 1]; /* bs[p][col] */
  const int tx = threadIdx.x, ty = threadIdx.y;
  const float fa = (float)alpha, fb = (float)beta;
  for (int64_t r0 = (int64_t)blockIdx.y * LRMF_K_TILE; r0 < m;
       r0 += (int64_t)gridDim.y * LRMF_K_TILE) {
    for (int64_t c0 = (int64_t)blockIdx.x * LRMF_K_TILE; c0 < n;
         c0 += (int64_t)gridDim.x * LRMF_K_TILE) {
      float acc = 0.0f;
      for (int64_t p0 = 0; p0 < k; p0 += LRMF_K_TILE) {
        if (trans_a == 0) { /* op(A)[row, p] = a[row·lda + p] */
          const int64_t row = r0 + ty, p = p0 + tx;
          as[ty][tx] = (row < m && p < k) ? a[row * lda + p] : 0.0f;
        } else { /* op(A)[row, p] = a[p·lda + row] */
          const int64_t row = r0 + tx, p = p0 + ty;
          as[tx][ty] = (row < m && p < k) ? a[p * lda + row] : 0.0f;
        }
        if (trans_b == 0) { /* op(B)[p, col] = b[p·ldb + col] */
          const int64_t p = p0 + ty, col = c0 + tx;
          bs[ty][tx] = (p < k && col < n) ? b[p * ldb + col] : 0.0f;
        } else { /* op(B)[p, col] = b[col·ldb + p] */
          const int64_t p = p0 + tx, col = c0 + ty;
          bs[tx][ty] = (p < k && col < n) ? b[col * ldb + p] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int q = 0; q < LRMF_K_TILE; q++)
          acc += as[ty][q] * bs[q][tx];
        __syncthreads(); /* before the next slice overwrites the tiles */
      }
      const int64_t row = r0 + ty, col = c0 + tx;
      if (row < m && col < n) {
        float *cij = c + row * ldc + col;
        /* beta == 0 stores without reading C (NaN in C must not leak). */
        *cij = fb == 0.0f ? fa * acc : fa * acc + fb * *cij;
      }
    }
  }
}

/* ---- FFJORD: dynamics, VJP and fused batch solvers ------------------------
 *
 * A row's arithmetic (evaluation with tangents, VJP, RK4 and Dormand–Prince
 * steps and their reverse) is csrc/common/ode_rows.inc, the code the CPU
 * kernels run (csrc/cpu/ode.inc): every row in double, inputs and θ
 * widened from float, outputs rounded to float once. What is GPU-only:
 *
 * Thread mapping (launch rule O in lrmf_kernels.h): one thread integrates
 * one row from start to end, so a whole batch is one launch and each row
 * keeps its own adaptive step sequence with no divergence between rows'
 * control flow beyond the step count. The MLP is small ([D+1, 16, 16, 16,
 * D] in the paper), so a row's activations and tangents fit a fixed
 * per-thread frame (lrmf_k_ode_ws, in local memory, which the hardware
 * interleaves across a warp's threads); the block stages θ once, widened to
 * double, in dynamic shared memory (8·np bytes, TH = double), where every
 * thread of a warp reads the same address (a broadcast). The size limits
 * LRMF_K_ODE_* bound that frame; the caller checks them.
 *
 * Layouts are row-minor (a row's records at offset i, stride n), so a
 * warp's threads touch consecutive addresses. θ-gradients: each thread
 * accumulates its row's gradient in gpart (double, np×n: parameter p of
 * row i at gpart[p·n + i]), and lrmf_k_ode_gsum reduces over rows with the
 * fixed tree of the C rule: deterministic, no atomics. */

#define TH double
#define LRMF_IX int
#include "../common/ode_rows.inc"

#ifndef LRMF_K_DYNAMIC_SHARED
/* The launch's dynamic shared memory (sharedMem bytes). */
#define LRMF_K_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

#define LRMF_K_O __launch_bounds__(LRMF_K_OBLOCK)

/* One row's frame (lrmf_ode_frame's storage, sized by the limits). */
typedef struct {
  double x[LRMF_K_ODE_MAXD + 1];                   /* [z, t] */
  double h[LRMF_K_ODE_MAXSH];                      /* h_l */
  double ad[LRMF_K_ODE_MAXMSH];                    /* ȧ_l^p */
  double tmp[LRMF_K_ODE_MAXW];                     /* a tangent's output */
  double ab[LRMF_K_ODE_MAXW], ab2[LRMF_K_ODE_MAXW]; /* ā */
  double adb[LRMF_K_ODE_MAXM * LRMF_K_ODE_MAXW];   /* ǡ^p (stride maxw) */
  double adb2[LRMF_K_ODE_MAXM * LRMF_K_ODE_MAXW];
} lrmf_k_ode_ws;

static __device__ __forceinline__ lrmf_ode_frame
lrmf_k_ode_frame(lrmf_k_ode_ws *w) {
  lrmf_ode_frame f = {w->x,  w->h,   w->ad,  w->tmp,
                      w->ab, w->ab2, w->adb, w->adb2};
  return f;
}

/* Reads dims (device memory, nl ≤ LRMF_K_ODE_MAXNL entries) into dm, fills
 * sz and stages θ into sth (every thread of the block must call it: it
 * ends with a barrier). */
static __device__ void lrmf_k_ode_setup(int64_t nl, const int64_t *dims,
                                        int64_t k, const float *theta,
                                        int64_t *dm, lrmf_ode_dims *sz,
                                        double *sth) {
  for (int l = 0; l < (int)nl; l++)
    dm[l] = dims[l];
  lrmf_ode_dims_of(nl, dm, k, sz);
  for (int p = threadIdx.x; p < sz->np; p += blockDim.x)
    sth[p] = (double)theta[p];
  __syncthreads();
}

/* The start of every FFJORD kernel: θ staged (sth), dims (dm) and the
 * sizes (sz) read, this thread's frame (w, fr), D. A macro rather than a
 * function so that the compiler sees sth as shared memory and fr as fixed
 * offsets into w. */
#define LRMF_K_ODE_BEGIN(nl, dims, k, theta)                                   \
  LRMF_K_DYNAMIC_SHARED(double, sth);                                          \
  int64_t dm[LRMF_K_ODE_MAXNL];                                                \
  lrmf_ode_dims sz;                                                            \
  lrmf_k_ode_setup(nl, dims, k, theta, dm, &sz, sth);                          \
  lrmf_k_ode_ws w;                                                             \
  const lrmf_ode_frame fr = lrmf_k_ode_frame(&w);                              \
  const int D = sz.d

/* Row i's column of gpart (np×n), zeroed: the θ-gradient the row adds to. */
static __device__ __forceinline__ double *
lrmf_k_ode_gcol(const lrmf_ode_dims *sz, double *gpart, int64_t n, int64_t i) {
  double *g = gpart + i;
  for (int p = 0; p < sz->np; p++)
    g[p * n] = 0.0;
  return g;
}

/* dz[i] = f(z[i], t), trace[i] = divergence (lrmf_odefunc_fwd_f32). */
LRMF_K LRMF_K_O void lrmf_k_ode_fwd(int64_t n, int64_t nl, const int64_t *dims,
                                    const float *theta, double t,
                                    const float *z, int64_t k,
                                    const float *eps, float *dz,
                                    float *trace) {
  LRMF_K_ODE_BEGIN(nl, dims, k, theta);
  const double tf = (double)(float)t; /* t is a T in lrmf.h */
  double f[LRMF_K_ODE_MAXD + 1];
  LRMF_K_FOR(i, n) {
    for (int j = 0; j < D; j++)
      w.x[j] = (double)z[i * D + j];
    w.x[D] = tf;
    const float *v = k > 0 ? eps + i * k * D : NULL;
    const double tr = LRMF_ROW(ode_fwd)(&sz, dm, sth, v, &fr, f);
    for (int j = 0; j < D; j++)
      dz[i * D + j] = (float)f[j];
    trace[i] = (float)tr;
  }
}

/* VJP of Λ = Σ az·f + Σ atr·tr (lrmf_odefunc_vjp_f32): gz (n×D) and each
 * row's θ-gradient in gpart (np×n doubles; then lrmf_k_ode_gsum). */
LRMF_K LRMF_K_O void lrmf_k_ode_vjp(int64_t n, int64_t nl, const int64_t *dims,
                                    const float *theta, double t,
                                    const float *z, int64_t k,
                                    const float *eps, const float *az,
                                    const float *atr, float *gz,
                                    double *gpart) {
  LRMF_K_ODE_BEGIN(nl, dims, k, theta);
  const double tf = (double)(float)t;
  double f[LRMF_K_ODE_MAXD + 1], azd[LRMF_K_ODE_MAXD], gzd[LRMF_K_ODE_MAXD];
  LRMF_K_FOR(i, n) {
    double *g = lrmf_k_ode_gcol(&sz, gpart, n, i);
    for (int j = 0; j < D; j++) {
      w.x[j] = (double)z[i * D + j];
      azd[j] = (double)az[i * D + j];
    }
    w.x[D] = tf;
    const float *v = k > 0 ? eps + i * k * D : NULL;
    (void)LRMF_ROW(ode_fwd)(&sz, dm, sth, v, &fr, f);
    LRMF_ROW(ode_vjp)(&sz, dm, sth, v, &fr, azd, (double)atr[i], gzd, g, n);
    for (int j = 0; j < D; j++)
      gz[i * D + j] = (float)gzd[j];
  }
}

/* gtheta[p] = Σ_i gpart[p·n + i] (C(np) rule: block p reduces parameter p
 * in double in a fixed order; n == 0 writes zeros). */
LRMF_K LRMF_K_R void lrmf_k_ode_gsum(int64_t n, int64_t np,
                                     const double *gpart, float *gtheta) {
  for (int64_t p = blockIdx.x; p < np; p += gridDim.x) {
    double acc = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      acc += gpart[p * n + i];
    acc = lrmf_k_block_sum(acc);
    if (threadIdx.x == 0)
      gtheta[p] = (float)acc;
  }
}

/* Fixed-step RK4 (lrmf_ode_rk4_save_f32) of the whole batch in one launch;
 * states (NULL: not recorded) receives each step's start state z, double,
 * steps×D×n: component j of row i at step s at states[(s·D + j)·n + i]. */
LRMF_K LRMF_K_O void lrmf_k_ode_rk4(int64_t n, int64_t nl, const int64_t *dims,
                                    const float *theta, double t0, double t1,
                                    int64_t steps, const float *z0, int64_t k,
                                    const float *eps, float *z1,
                                    float *logdet, double *states) {
  LRMF_K_ODE_BEGIN(nl, dims, k, theta);
  double st[LRMF_ODE_RK4_ST * (LRMF_K_ODE_MAXD + 1)];
  const double h = (t1 - t0) / (double)steps;
  LRMF_K_FOR(i, n) {
    const float *v = k > 0 ? eps + i * k * D : NULL;
    LRMF_ROW(ode_rk4)(&sz, dm, sth, v, &fr, st, t0, h, steps, i, z0, z1,
                      logdet, states, i, n);
  }
}

/* Gradients through a recorded RK4 solve (lrmf_ode_rk4_bwd_f32): per row,
 * the steps in reverse from the stored start states (layout of
 * lrmf_k_ode_rk4); gz0 (n×D) and each row's θ-gradient in gpart. */
LRMF_K LRMF_K_O void lrmf_k_ode_rk4_bwd(int64_t n, int64_t nl,
                                        const int64_t *dims,
                                        const float *theta, double t0,
                                        double t1, int64_t steps, int64_t k,
                                        const float *eps,
                                        const double *states, const float *a1,
                                        const float *ald, float *gz0,
                                        double *gpart) {
  LRMF_K_ODE_BEGIN(nl, dims, k, theta);
  double f[LRMF_K_ODE_MAXD + 1],
      bw[LRMF_ODE_RK4_BW * (LRMF_K_ODE_MAXD + 1)];
  const double h = (t1 - t0) / (double)steps;
  LRMF_K_FOR(i, n) {
    const float *v = k > 0 ? eps + i * k * D : NULL;
    double *g = lrmf_k_ode_gcol(&sz, gpart, n, i);
    LRMF_ROW(ode_rk4_bwd)(&sz, dm, sth, v, &fr, f, bw, t0, h, steps, i,
                          states, i, n, a1, ald, gz0, g, n);
  }
}

/* Adaptive Dormand–Prince 5(4) (lrmf_ode_dopri5_save_f32), every row with
 * its own step sequence, the whole batch in one launch. Each row ends with
 *   info[i]       = LRMF_K_ODE_OK or the row's failure (LRMF_K_ODE_*),
 *   info[n + i]   = its f evaluations (1 + 6·attempts),
 *   info[2n + i]  = its accepted steps,
 * and, when it succeeded, z1 and logdet (a failed row leaves them
 * unwritten; unlike the CPU kernel the other rows still run). tape (NULL:
 * not recorded) receives accepted step m of row i, [t, signed h, z at the
 * step start], as component c at tape[(m·(D+2) + c)·n + i] (double,
 * max_steps·(D+2)·n). */
LRMF_K LRMF_K_O void lrmf_k_ode_dopri5(
    int64_t n, int64_t nl, const int64_t *dims, const float *theta, double t0,
    double t1, double atol, double rtol, double h0, int64_t max_steps,
    const float *z0, int64_t k, const float *eps, float *z1, float *logdet,
    double *tape, int64_t *info) {
  LRMF_K_ODE_BEGIN(nl, dims, k, theta);
  double st[LRMF_ODE_DP5_ST * (LRMF_K_ODE_MAXD + 1)];
  LRMF_K_FOR(i, n) {
    const float *v = k > 0 ? eps + i * k * D : NULL;
    int64_t evals = 0, racc = 0;
    info[i] = LRMF_ROW(ode_dopri5)(&sz, dm, sth, v, &fr, st, t0, t1, atol,
                                   rtol, h0, max_steps, i, z0, z1, logdet,
                                   tape, i, n, &evals, &racc);
    info[n + i] = evals;
    info[2 * n + i] = racc;
  }
}

/* Gradients through a recorded Dormand–Prince solve
 * (lrmf_ode_dopri5_bwd_f32): row i replays its info[2n + i] accepted steps
 * of tape (layouts of lrmf_k_ode_dopri5) in reverse, backpropagating
 * through each 5th-order update; gz0 (n×D) and each row's θ-gradient in
 * gpart. A count outside [0, max_steps] (the caller validates it) is
 * clamped rather than read out of bounds. */
LRMF_K LRMF_K_O void lrmf_k_ode_dopri5_bwd(
    int64_t n, int64_t nl, const int64_t *dims, const float *theta,
    int64_t max_steps, int64_t k, const float *eps, const double *tape,
    const int64_t *info, const float *a1, const float *ald, float *gz0,
    double *gpart) {
  LRMF_K_ODE_BEGIN(nl, dims, k, theta);
  double f[LRMF_K_ODE_MAXD + 1],
      bw[LRMF_ODE_DP5_BW * (LRMF_K_ODE_MAXD + 1)];
  LRMF_K_FOR(i, n) {
    const float *v = k > 0 ? eps + i * k * D : NULL;
    double *g = lrmf_k_ode_gcol(&sz, gpart, n, i);
    int64_t na = info[2 * n + i];
    na = na < 0 ? 0 : (na > max_steps ? max_steps : na);
    LRMF_ROW(ode_dopri5_bwd)(&sz, dm, sth, v, &fr, f, bw, na, i, tape, i, n,
                             a1, ald, gz0, g, n);
  }
}

/* ---- images (GLOW) ------------------------------------------------------- */

/* The convolutions are these data movements plus cuBLAS GEMMs (the host
 * chunks the pixels): the im2col rows of pixels [p0, p1) of x
 * (lrmf_im2col_f32), one element per unit; the taps outside the image read
 * nothing (the edge channel is 1 there). */
LRMF_K LRMF_K_R void lrmf_k_im2col(int64_t n, int64_t h, int64_t w, int64_t c,
                                   int64_t k, int64_t edge, const float *x,
                                   int64_t p0, int64_t p1, float *cols) {
  (void)n;
  const int64_t ce = c + edge, kk = k * k * ce, r = (k - 1) / 2, hw = h * w;
  LRMF_K_FOR(e, (p1 - p0) * kk) {
    const int64_t p = p0 + e / kk, col = e % kk, t = col / ce, ci = col % ce;
    const int64_t b = p / hw, i = p % hw / w, j = p % w;
    const int64_t yy = i + t / k - r, xx = j + t % k - r;
    const bool in = yy >= 0 && yy < h && xx >= 0 && xx < w;
    cols[e] = ci == c ? (in ? 0.0f : 1.0f)
                      : (in ? x[((b * h + yy) * w + xx) * c + ci] : 0.0f);
  }
}

/* The input gradient's weights (lrmf_conv2d_flip_f32), one element of wf
 * per unit. */
LRMF_K LRMF_K_R void lrmf_k_conv2d_flip(int64_t cin, int64_t cout, int64_t k,
                                        int64_t edge, const float *wt,
                                        float *wf) {
  const int64_t ce = cin + edge, kk = k * k, oc = cout * cin;
  LRMF_K_FOR(e, kk * oc) {
    const int64_t t = e / oc, co = e % oc / cin, ci = e % cin;
    wf[e] = wt[((kk - 1 - t) * ce + ci) * cout + co];
  }
}

/* lrmf_squeeze_f32, one element of y per unit. */
LRMF_K LRMF_K_R void lrmf_k_squeeze(int64_t n, int64_t h, int64_t w, int64_t c,
                                    const float *x, float *y) {
  const int64_t h2 = h / 2, w2 = w / 2, c4 = 4 * c;
  LRMF_K_FOR(e, n * h * w * c) {
    const int64_t pix = e / c4, ch = e % c4, ci = ch / 4, q = ch % 4;
    const int64_t b = pix / (h2 * w2), i = pix % (h2 * w2) / w2, j = pix % w2;
    y[e] = x[((b * h + 2 * i + q / 2) * w + 2 * j + q % 2) * c + ci];
  }
}

/* lrmf_unsqueeze_f32, one element of x per unit. */
LRMF_K LRMF_K_R void lrmf_k_unsqueeze(int64_t n, int64_t h, int64_t w,
                                      int64_t c, const float *y, float *x) {
  const int64_t h2 = h / 2, w2 = w / 2, c4 = 4 * c;
  LRMF_K_FOR(e, n * h * w * c) {
    const int64_t pix = e / c, ci = e % c;
    const int64_t b = pix / (h * w), i = pix % (h * w) / w, j = pix % w;
    x[e] = y[((b * h2 + i / 2) * w2 + j / 2) * c4 + ci * 4 + (i % 2) * 2 + j % 2];
  }
}

#undef T
#undef TH
#undef S

/*
 * lrmf_kernels.cu — float32 CUDA kernels of lrmf; see lrmf_kernels.h for the
 * parameter table and launch rules, csrc/include/lrmf.h for the maths, and
 * csrc/cpu/kernels.inc for the CPU code each kernel mirrors (same formulas
 * in the same order, so results agree to float rounding).
 *
 * Built into a fatbin (build_fatbin.sh) that the Go side loads with the
 * driver API; every parameter is 8 bytes so its launcher needs no types.
 */
#include "lrmf_kernels.h"

#include <math.h>
#include <stdint.h>

#define LRMF_K_LN_2PI 1.83787706640934548356

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
  LRMF_K_FOR(i, n) {
    const float v = x[i];
    y[i] = v > 0.0f ? v : 0.0f;
  }
}

LRMF_K LRMF_K_R void lrmf_k_relu_bwd(int64_t n, const float *x,
                                     const float *dy, float *dx) {
  LRMF_K_FOR(i, n) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

LRMF_K LRMF_K_R void lrmf_k_tanh_fwd(int64_t n, const float *x, float *y) {
  LRMF_K_FOR(i, n) y[i] = tanhf(x[i]);
}

LRMF_K LRMF_K_R void lrmf_k_tanh_bwd(int64_t n, const float *y,
                                     const float *dy, float *dx) {
  LRMF_K_FOR(i, n) {
    const float yi = y[i];
    dx[i] = dy[i] * (1.0f - yi * yi);
  }
}

LRMF_K LRMF_K_R void lrmf_k_bias_relu_fwd(int64_t n, int64_t d,
                                          const float *bias, float *y) {
  LRMF_K_FOR(e, n * d) {
    const float v = y[e] + bias[e % d];
    y[e] = v > 0.0f ? v : 0.0f;
  }
}

/* The elementwise half of lrmf_bias_relu_bwd; db comes from bias_grad(dz),
 * whose C rule keeps the column sums deterministic. */
LRMF_K LRMF_K_R void lrmf_k_bias_relu_bwd_dz(int64_t n, int64_t d,
                                             const float *y, const float *dy,
                                             float *dz) {
  LRMF_K_FOR(e, n * d) dz[e] = y[e] > 0.0f ? dy[e] : 0.0f;
}

/* ---- Gaussian base density ----------------------------------------------- */

/* One thread per sample: u_i = L(x_i − mu) and logp_i in one pass, with
 * the row sums in double as on the CPU. */
LRMF_K LRMF_K_R void lrmf_k_gauss_logp(int64_t n, int64_t d, const float *x,
                                       const float *mu, const float *l,
                                       double logdet_l, float *u,
                                       float *logp) {
  const double c0 =
      -0.5 * (double)d * LRMF_K_LN_2PI + (double)(float)logdet_l;
  LRMF_K_FOR(i, n) {
    const float *xi = x + i * d;
    float *ui = u + i * d;
    double sq = 0.0;
    for (int64_t r = 0; r < d; r++) {
      const float *lr = l + r * d;
      double s = 0.0;
      for (int64_t c = 0; c < d; c++)
        s += (double)lr[c] * ((double)xi[c] - (double)mu[c]);
      ui[r] = (float)s;
      sq += s * s;
    }
    logp[i] = (float)(c0 - 0.5 * sq);
  }
}

/* dx_i = −w_i Lᵀ u_i, one thread per sample. */
LRMF_K LRMF_K_R void lrmf_k_gauss_bwd_dx(int64_t n, int64_t d, const float *l,
                                         const float *u, const float *dlogp,
                                         float *dx) {
  LRMF_K_FOR(i, n) {
    const float *ui = u + i * d;
    float *dxi = dx + i * d;
    const double w = (double)dlogp[i];
    for (int64_t c = 0; c < d; c++) {
      double g = 0.0;
      for (int64_t r = 0; r < d; r++)
        g += (double)l[r * d + c] * (double)ui[r];
      dxi[c] = (float)(-w * g);
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
        const float *ui = u + i * d;
        double g = 0.0;
        for (int64_t r = 0; r < d; r++)
          g += (double)l[r * d + o] * (double)ui[r];
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
  LRMF_K_FOR(i, n) {
    const float *si = s + i * d;
    double acc = 0.0;
    for (int64_t j = 0; j < d; j++)
      acc += (double)si[j];
    logdet[i] = (float)((double)logdet[i] + acc);
  }
}

/* One thread per sample; d == 0 still adds ldm (x, y are then empty). */
LRMF_K LRMF_K_R void lrmf_k_affine_fwd(int64_t n, int64_t d, const float *x,
                                       const float *m, const float *b,
                                       double ldm, float *y, float *logdet) {
  const float fl = (float)ldm;
  LRMF_K_FOR(i, n) {
    const float *xi = x + i * d;
    float *yi = y + i * d;
    for (int64_t r = 0; r < d; r++) {
      const float *mr = m + r * d;
      double s = (double)b[r];
      for (int64_t c = 0; c < d; c++)
        s += (double)mr[c] * (double)xi[c];
      yi[r] = (float)s;
    }
    if (logdet != NULL)
      logdet[i] += fl;
  }
}

LRMF_K LRMF_K_R void lrmf_k_affine_inv(int64_t n, int64_t d, const float *y,
                                       const float *minv, const float *b,
                                       float *x) {
  LRMF_K_FOR(i, n) {
    const float *yi = y + i * d;
    float *xi = x + i * d;
    for (int64_t r = 0; r < d; r++) {
      const float *mr = minv + r * d;
      double s = 0.0;
      for (int64_t c = 0; c < d; c++)
        s += (double)mr[c] * ((double)yi[c] - (double)b[c]);
      xi[r] = (float)s;
    }
  }
}

/* In double like the CPU: β1·m + (1−β1)·g cancels when g opposes m. */
LRMF_K LRMF_K_R void lrmf_k_adam(int64_t n, float *p, const float *g,
                                 float *m, float *v, double lr, double beta1,
                                 double beta2, double eps, double bc1,
                                 double bc2) {
  const double om1 = 1.0 - beta1, om2 = 1.0 - beta2;
  LRMF_K_FOR(i, n) {
    const double gi = (double)g[i];
    const double mi = beta1 * (double)m[i] + om1 * gi;
    const double vi = beta2 * (double)v[i] + om2 * gi * gi;
    m[i] = (float)mi;
    v[i] = (float)vi;
    p[i] = (float)((double)p[i] - lr * (mi / bc1) / (sqrt(vi / bc2) + eps));
  }
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

/* s(r), ln s and (if dlns) ∂ln s/∂r without cancellation — the CPU's
 * coupling_scale in float:
 *  exp:     ln s = bound·tanh(r/bound), ∂ln s/∂r = 1/cosh²(r/bound);
 *  sigmoid: z = r + 2, e = exp(−|z|), ln s = min(z, 0) − log1p(e),
 *           ∂ln s/∂r = 1 − s = sigmoid(−z). */
static __device__ __forceinline__ float
lrmf_k_scale(int64_t kind, float bound, float r, float *lns, float *dlns) {
  if (kind == LRMF_K_SCALE_EXP) {
    const float uu = r / bound;
    const float a = bound * tanhf(uu);
    if (dlns != NULL) {
      const float c = coshf(uu);
      *dlns = 1.0f / (c * c);
    }
    *lns = a;
    return expf(a);
  }
  const float z = r + 2.0f;
  const float e = expf(-fabsf(z));
  const float inv = 1.0f / (1.0f + e);
  *lns = (z < 0.0f ? z : 0.0f) - log1pf(e);
  if (dlns != NULL)
    *dlns = z >= 0.0f ? e * inv : inv;
  return z >= 0.0f ? inv : e * inv;
}

/* One thread per sample; the log-det of the row is summed (in double) in
 * the same pass that writes y. y may be x. */
LRMF_K LRMF_K_R void lrmf_k_coupling_fwd(int64_t n, int64_t d, int64_t t0,
                                         int64_t dt, int64_t kind,
                                         double bound, const float *x,
                                         const float *h, float *y,
                                         float *logdet) {
  const float fb = (float)bound;
  if (!lrmf_k_scale_ok(kind, fb))
    return;
  LRMF_K_FOR(i, n) {
    const float *xi = x + i * d;
    float *yi = y + i * d;
    if (yi != xi) {
      for (int64_t j = 0; j < t0; j++)
        yi[j] = xi[j];
      for (int64_t j = t0 + dt; j < d; j++)
        yi[j] = xi[j];
    }
    double acc = 0.0;
    if (dt > 0) {
      const float *mu = h + i * 2 * dt;
      const float *r = mu + dt;
      for (int64_t j = 0; j < dt; j++) {
        float lns;
        const float s = lrmf_k_scale(kind, fb, r[j], &lns, NULL);
        yi[t0 + j] = xi[t0 + j] * s + mu[j];
        acc += (double)lns;
      }
    }
    if (logdet != NULL)
      logdet[i] = (float)((double)logdet[i] + acc);
  }
}

LRMF_K LRMF_K_R void lrmf_k_coupling_inv(int64_t n, int64_t d, int64_t t0,
                                         int64_t dt, int64_t kind,
                                         double bound, const float *y,
                                         const float *h, float *x) {
  const float fb = (float)bound;
  if (!lrmf_k_scale_ok(kind, fb))
    return;
  LRMF_K_FOR(i, n) {
    const float *yi = y + i * d;
    float *xi = x + i * d;
    if (xi != yi) {
      for (int64_t j = 0; j < t0; j++)
        xi[j] = yi[j];
      for (int64_t j = t0 + dt; j < d; j++)
        xi[j] = yi[j];
    }
    if (dt > 0) {
      const float *mu = h + i * 2 * dt;
      const float *r = mu + dt;
      for (int64_t j = 0; j < dt; j++) {
        float lns;
        const float s = lrmf_k_scale(kind, fb, r[j], &lns, NULL);
        xi[t0 + j] = (yi[t0 + j] - mu[j]) / s;
      }
    }
  }
}

/* dx may be dy (each dy element is read before dx is written) or NULL. */
LRMF_K LRMF_K_R void lrmf_k_coupling_bwd(int64_t n, int64_t d, int64_t t0,
                                         int64_t dt, int64_t kind,
                                         double bound, const float *x,
                                         const float *h, const float *dy,
                                         const float *dlogdet, float *dx,
                                         float *dh) {
  const float fb = (float)bound;
  if (!lrmf_k_scale_ok(kind, fb))
    return;
  LRMF_K_FOR(i, n) {
    const float *dyi = dy + i * d;
    float *dxi = dx != NULL ? dx + i * d : NULL;
    if (dxi != NULL && dxi != dyi) {
      for (int64_t j = 0; j < t0; j++)
        dxi[j] = dyi[j];
      for (int64_t j = t0 + dt; j < d; j++)
        dxi[j] = dyi[j];
    }
    if (dt == 0)
      continue;
    const float *xt = x + i * d + t0;
    const float *r = h + i * 2 * dt + dt;
    float *dmu = dh + i * 2 * dt;
    float *dr = dmu + dt;
    const float wl = dlogdet[i];
    for (int64_t j = 0; j < dt; j++) {
      float lns, dlns;
      const float s = lrmf_k_scale(kind, fb, r[j], &lns, &dlns);
      const float g = dyi[t0 + j];
      dmu[j] = g;
      dr[j] = (g * xt[j] * s + wl) * dlns; /* ∂s/∂r = s·∂ln s/∂r */
      if (dxi != NULL)
        dxi[t0 + j] = g * s;
    }
  }
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
 * The twins of csrc/cpu/ode.inc (the derivation of the forward tangents and
 * of the VJP with its tanh'' term is there, and the code below follows it
 * line by line). As on the CPU every row is computed in double: inputs and
 * θ are widened from float, outputs rounded to float once.
 *
 * Thread mapping (launch rule O in lrmf_kernels.h): one thread integrates
 * one row from start to end, so a whole batch is one launch and each row
 * keeps its own adaptive step sequence with no divergence between rows'
 * control flow beyond the step count. The MLP is small ([D+1, 16, 16, 16,
 * D] in the paper), so a row's activations and tangents fit a fixed
 * per-thread frame (lrmf_k_ode_ws, in local memory, which the hardware
 * interleaves across a warp's threads); the block stages θ once, widened to
 * double, in dynamic shared memory (8·np bytes), where every thread of a
 * warp reads the same address (a broadcast). The size limits LRMF_K_ODE_*
 * bound that frame; the caller checks them.
 *
 * θ-gradients: each thread accumulates its row's gradient in gpart (double,
 * np×n: parameter p of row i at gpart[p·n + i], so a warp's threads touch
 * consecutive addresses), and lrmf_k_ode_gsum reduces over rows with the
 * fixed tree of the C rule: deterministic, no atomics. */

#ifndef LRMF_K_DYNAMIC_SHARED
/* The launch's dynamic shared memory (sharedMem bytes). */
#define LRMF_K_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

#define LRMF_K_O __launch_bounds__(LRMF_K_OBLOCK)

/* Sizes derived from dims (the caller validated them against the limits). */
typedef struct {
  int nl;   /* entries of dims */
  int d;    /* state size D */
  int m;    /* tangent directions: D (exact) or k (Hutchinson) */
  int sh;   /* Σ hidden widths */
  int maxw; /* max over dims */
  int np;   /* parameters */
} lrmf_k_ode_sz;

/* One row's evaluation state (lrmf_ode_sizes' workspace without θ-gradient
 * and solver parts, which live in gpart and in each kernel's frame). */
typedef struct {
  double x[LRMF_K_ODE_MAXD + 1];                 /* [z, t] */
  double h[LRMF_K_ODE_MAXSH];                    /* h_l */
  double ad[LRMF_K_ODE_MAXMSH];                  /* ȧ_l^p */
  double tmp[LRMF_K_ODE_MAXW];                   /* a tangent's output */
  double ab[LRMF_K_ODE_MAXW], ab2[LRMF_K_ODE_MAXW]; /* ā */
  double adb[LRMF_K_ODE_MAXM * LRMF_K_ODE_MAXW];  /* ǡ^p (stride maxw) */
  double adb2[LRMF_K_ODE_MAXM * LRMF_K_ODE_MAXW];
} lrmf_k_ode_ws;

/* Dormand–Prince 5(4) tableau (csrc/cpu/ode.inc). */
static __device__ const double lrmf_k_dp_c[7] = {0.0, 1.0 / 5, 3.0 / 10,
                                                 4.0 / 5, 8.0 / 9, 1.0, 1.0};
static __device__ const double lrmf_k_dp_a[7][6] = {
    {0, 0, 0, 0, 0, 0},
    {1.0 / 5, 0, 0, 0, 0, 0},
    {3.0 / 40, 9.0 / 40, 0, 0, 0, 0},
    {44.0 / 45, -56.0 / 15, 32.0 / 9, 0, 0, 0},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729, 0, 0},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176,
     -5103.0 / 18656, 0},
    {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
static __device__ const double lrmf_k_dp_b[7] = {
    35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0};
static __device__ const double lrmf_k_dp_bs[7] = {
    5179.0 / 57600,     0,           7571.0 / 16695, 393.0 / 640,
    -92097.0 / 339200, 187.0 / 2100, 1.0 / 40};

/* Reads dims (device memory, nl ≤ LRMF_K_ODE_MAXNL entries) into dm, fills
 * sz and stages θ into sth (every thread of the block must call it: it
 * ends with a barrier). */
static __device__ void lrmf_k_ode_setup(int64_t nl, const int64_t *dims,
                                        int64_t k, const float *theta,
                                        int64_t *dm, lrmf_k_ode_sz *sz,
                                        double *sth) {
  sz->nl = (int)nl;
  sz->sh = 0;
  sz->maxw = 0;
  sz->np = 0;
  for (int l = 0; l < sz->nl; l++) {
    dm[l] = dims[l];
    const int w = (int)dm[l];
    if (w > sz->maxw)
      sz->maxw = w;
    if (l > 0 && l < sz->nl - 1)
      sz->sh += w;
    if (l > 0)
      sz->np += (int)dm[l - 1] * w + w;
  }
  sz->d = (int)dm[sz->nl - 1];
  sz->m = k > 0 ? (int)k : sz->d;
  for (int p = threadIdx.x; p < sz->np; p += blockDim.x)
    sth[p] = (double)theta[p];
  __syncthreads();
}

/* One row's forward (ode_row_fwd): with x = [z, t] in w->x, computes f (D,
 * into fout) and returns the divergence; keeps h_l and ȧ_l^p for the VJP.
 * v is the row's probes (k×D floats) or NULL (exact trace). */
static __device__ double lrmf_k_ode_row_fwd(const lrmf_k_ode_sz *sz,
                                            const int64_t *dims,
                                            const double *theta,
                                            const float *v, lrmf_k_ode_ws *w,
                                            double *fout) {
  const int nl = sz->nl, D = sz->d, m = sz->m;
  const double *in = w->x;
  double *tmp = w->tmp;
  int toff = 0, hoff = 0, hprev = 0;
  double tr = 0.0;
  for (int l = 0; l + 1 < nl; l++) {
    const int din = (int)dims[l], dout = (int)dims[l + 1];
    const bool last = l + 2 == nl;
    const double *W = theta + toff, *b = W + din * dout;
    double *out = last ? fout : w->h + hoff;
    for (int j = 0; j < dout; j++)
      out[j] = b[j];
    for (int i = 0; i < din; i++) {
      const double xi = in[i];
      const double *Wi = W + i * dout;
      for (int j = 0; j < dout; j++)
        out[j] += xi * Wi[j];
    }
    if (!last)
      for (int j = 0; j < dout; j++)
        out[j] = tanh(out[j]);
    for (int p = 0; p < m; p++) {
      double *tout = last ? tmp : w->ad + m * hoff + p * dout;
      if (l == 0) {
        if (v == NULL) {
          const double *Wp = W + p * dout; /* [e_p, 0] W_0 */
          for (int j = 0; j < dout; j++)
            tout[j] = Wp[j];
        } else {
          const float *vp = v + p * D;
          for (int j = 0; j < dout; j++)
            tout[j] = 0.0;
          for (int i = 0; i < D; i++) {
            const double vi = (double)vp[i];
            const double *Wi = W + i * dout;
            for (int j = 0; j < dout; j++)
              tout[j] += vi * Wi[j];
          }
        }
      } else {
        /* ḣ_{l−1}^p = s ⊙ ȧ_{l−1}^p, then ȧ_l^p = ḣ W_l. */
        const double *hp = w->h + hprev;
        const double *adp = w->ad + m * hprev + p * din;
        double *acc = last ? tmp : tout;
        double *hd = w->ab2; /* scratch: unused in the forward */
        for (int i = 0; i < din; i++)
          hd[i] = (1.0 - hp[i] * hp[i]) * adp[i];
        for (int j = 0; j < dout; j++)
          acc[j] = 0.0;
        for (int i = 0; i < din; i++) {
          const double hi = hd[i];
          const double *Wi = W + i * dout;
          for (int j = 0; j < dout; j++)
            acc[j] += hi * Wi[j];
        }
      }
      if (last) {
        if (v == NULL)
          tr += tmp[p];
        else {
          const float *vp = v + p * D;
          double s = 0.0;
          for (int j = 0; j < D; j++)
            s += (double)vp[j] * tmp[j];
          tr += s;
        }
      }
    }
    if (!last) {
      hprev = hoff;
      hoff += dout;
    }
    in = out;
    toff += din * dout + dout;
  }
  return v == NULL ? tr : tr / (double)m;
}

/* One row's VJP after lrmf_k_ode_row_fwd on the same row (ode_row_vjp):
 * adds the θ-gradient of Λ = az·f + atr·tr to g[p·gs] (the row's column of
 * gpart) and writes z̄ (D) to zbar. Each weight's contributions (primal and
 * tangents) are summed in a register before the one update of g. */
static __device__ void lrmf_k_ode_row_vjp(const lrmf_k_ode_sz *sz,
                                          const int64_t *dims,
                                          const double *theta,
                                          const float *v, lrmf_k_ode_ws *w,
                                          const double *az, double atr,
                                          double *zbar, double *g,
                                          int64_t gs) {
  const int nl = sz->nl, D = sz->d, m = sz->m, maxw = sz->maxw;
  double *ab = w->ab, *ab2 = w->ab2, *adb = w->adb, *adb2 = w->adb2;
  const double c = v == NULL ? atr : atr / (double)m;
  for (int j = 0; j < D; j++)
    ab[j] = az[j];
  for (int p = 0; p < m; p++) {
    double *q = adb + p * maxw;
    if (v == NULL) {
      for (int j = 0; j < D; j++)
        q[j] = 0.0;
      q[p] = c;
    } else {
      const float *vp = v + p * D;
      for (int j = 0; j < D; j++)
        q[j] = c * (double)vp[j];
    }
  }
  int toff = sz->np, hoff = sz->sh;
  for (int l = nl - 2; l >= 0; l--) {
    const int din = (int)dims[l], dout = (int)dims[l + 1];
    toff -= din * dout + dout;
    const double *W = theta + toff;
    double *gW = g + (int64_t)toff * gs, *gb = gW + (int64_t)din * dout * gs;
    for (int j = 0; j < dout; j++)
      gb[j * gs] += ab[j];
    if (l == 0) {
      const double *x = w->x;
      for (int i = 0; i < din; i++) {
        for (int j = 0; j < dout; j++) {
          double s = x[i] * ab[j];
          if (i < D) { /* the tangent inputs [v_p, 0] */
            if (v == NULL) {
              s += adb[i * maxw + j];
            } else {
              for (int p = 0; p < m; p++)
                s += (double)v[p * D + i] * adb[p * maxw + j];
            }
          }
          gW[(int64_t)(i * dout + j) * gs] += s;
        }
      }
      for (int i = 0; i < D; i++) {
        const double *Wi = W + i * dout;
        double s = 0.0;
        for (int j = 0; j < dout; j++)
          s += Wi[j] * ab[j];
        zbar[i] = s;
      }
      return;
    }
    /* Input of layer l is h_{l−1}, its tangents ḣ^p = s ⊙ ȧ^p. */
    hoff -= din;
    const double *h = w->h + hoff;
    const double *ad = w->ad + m * hoff;
    for (int i = 0; i < din; i++) {
      const double hi = h[i], si = 1.0 - hi * hi;
      for (int j = 0; j < dout; j++) {
        double s = hi * ab[j];
        for (int p = 0; p < m; p++)
          s += si * ad[p * din + i] * adb[p * maxw + j];
        gW[(int64_t)(i * dout + j) * gs] += s;
      }
    }
    /* h̄ = ā Wᵀ, ḣ̄^p = ǡ^p Wᵀ, then through tanh. */
    for (int i = 0; i < din; i++) {
      const double *Wi = W + i * dout;
      double hb = 0.0;
      for (int j = 0; j < dout; j++)
        hb += Wi[j] * ab[j];
      const double si = 1.0 - h[i] * h[i];
      double cross = 0.0;
      for (int p = 0; p < m; p++) {
        const double *q = adb + p * maxw;
        double hdb = 0.0;
        for (int j = 0; j < dout; j++)
          hdb += Wi[j] * q[j];
        cross += hdb * ad[p * din + i];
        adb2[p * maxw + i] = si * hdb;
      }
      ab2[i] = si * hb - 2.0 * h[i] * si * cross;
    }
    double *t1 = ab;
    ab = ab2;
    ab2 = t1;
    t1 = adb;
    adb = adb2;
    adb2 = t1;
  }
}

/* g(t, y) of the augmented state y = [z, l] (D+1): out = [f(z, t), tr]. */
static __device__ void lrmf_k_ode_eval(const lrmf_k_ode_sz *sz,
                                       const int64_t *dims,
                                       const double *theta, const float *v,
                                       lrmf_k_ode_ws *w, double t,
                                       const double *y, double *out) {
  const int D = sz->d;
  for (int j = 0; j < D; j++)
    w->x[j] = y[j];
  w->x[D] = t;
  out[D] = lrmf_k_ode_row_fwd(sz, dims, theta, v, w, out);
}

/* One stage's reverse (ode_stage_bwd): re-runs g at (t, Y), then adds
 * (∂g/∂Y)ᵀ kb to yb (D) and the θ part to g; zb is D doubles of scratch. */
static __device__ void lrmf_k_ode_stage_bwd(const lrmf_k_ode_sz *sz,
                                            const int64_t *dims,
                                            const double *theta,
                                            const float *v, lrmf_k_ode_ws *w,
                                            double t, const double *Y,
                                            const double *kb, double *yb,
                                            double *zb, double *g,
                                            int64_t gs) {
  double f[LRMF_K_ODE_MAXD + 1];
  const int D = sz->d;
  lrmf_k_ode_eval(sz, dims, theta, v, w, t, Y, f);
  lrmf_k_ode_row_vjp(sz, dims, theta, v, w, kb, kb[D], zb, g, gs);
  for (int j = 0; j < D; j++)
    yb[j] += zb[j];
}

static __device__ bool lrmf_k_ode_finite(int n, const double *y) {
  for (int j = 0; j < n; j++)
    if (!isfinite(y[j]))
      return false;
  return true;
}

/* dz[i] = f(z[i], t), trace[i] = divergence (lrmf_odefunc_fwd_f32). */
LRMF_K LRMF_K_O void lrmf_k_ode_fwd(int64_t n, int64_t nl, const int64_t *dims,
                                    const float *theta, double t,
                                    const float *z, int64_t k,
                                    const float *eps, float *dz,
                                    float *trace) {
  LRMF_K_DYNAMIC_SHARED(double, sth);
  int64_t dm[LRMF_K_ODE_MAXNL];
  lrmf_k_ode_sz sz;
  lrmf_k_ode_setup(nl, dims, k, theta, dm, &sz, sth);
  const int D = sz.d;
  const double tf = (double)(float)t; /* t is a T in lrmf.h */
  lrmf_k_ode_ws w;
  double f[LRMF_K_ODE_MAXD + 1];
  LRMF_K_FOR(i, n) {
    for (int j = 0; j < D; j++)
      w.x[j] = (double)z[i * D + j];
    w.x[D] = tf;
    const float *v = k > 0 ? eps + i * k * D : NULL;
    const double tr = lrmf_k_ode_row_fwd(&sz, dm, sth, v, &w, f);
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
  LRMF_K_DYNAMIC_SHARED(double, sth);
  int64_t dm[LRMF_K_ODE_MAXNL];
  lrmf_k_ode_sz sz;
  lrmf_k_ode_setup(nl, dims, k, theta, dm, &sz, sth);
  const int D = sz.d;
  const double tf = (double)(float)t;
  lrmf_k_ode_ws w;
  double f[LRMF_K_ODE_MAXD + 1], azd[LRMF_K_ODE_MAXD], gzd[LRMF_K_ODE_MAXD];
  LRMF_K_FOR(i, n) {
    double *g = gpart + i;
    for (int p = 0; p < sz.np; p++)
      g[p * n] = 0.0;
    for (int j = 0; j < D; j++) {
      w.x[j] = (double)z[i * D + j];
      azd[j] = (double)az[i * D + j];
    }
    w.x[D] = tf;
    const float *v = k > 0 ? eps + i * k * D : NULL;
    (void)lrmf_k_ode_row_fwd(&sz, dm, sth, v, &w, f);
    lrmf_k_ode_row_vjp(&sz, dm, sth, v, &w, azd, (double)atr[i], gzd, g, n);
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
  LRMF_K_DYNAMIC_SHARED(double, sth);
  int64_t dm[LRMF_K_ODE_MAXNL];
  lrmf_k_ode_sz sz;
  lrmf_k_ode_setup(nl, dims, k, theta, dm, &sz, sth);
  const int D = sz.d, d1 = D + 1;
  lrmf_k_ode_ws w;
  double st[6 * (LRMF_K_ODE_MAXD + 1)];
  double *y = st, *k1 = st + d1, *k2 = st + 2 * d1, *k3 = st + 3 * d1,
         *k4 = st + 4 * d1, *yt = st + 5 * d1;
  const double h = (t1 - t0) / (double)steps;
  LRMF_K_FOR(i, n) {
    const float *v = k > 0 ? eps + i * k * D : NULL;
    for (int j = 0; j < D; j++)
      y[j] = (double)z0[i * D + j];
    y[D] = 0.0;
    for (int64_t s = 0; s < steps; s++) {
      /* t at step s from t0 directly, so no drift accumulates. */
      const double t = t0 + (double)s * h;
      if (states != NULL)
        for (int j = 0; j < D; j++)
          states[(s * D + j) * n + i] = y[j];
      lrmf_k_ode_eval(&sz, dm, sth, v, &w, t, y, k1);
      for (int j = 0; j < d1; j++)
        yt[j] = y[j] + 0.5 * h * k1[j];
      lrmf_k_ode_eval(&sz, dm, sth, v, &w, t + 0.5 * h, yt, k2);
      for (int j = 0; j < d1; j++)
        yt[j] = y[j] + 0.5 * h * k2[j];
      lrmf_k_ode_eval(&sz, dm, sth, v, &w, t + 0.5 * h, yt, k3);
      for (int j = 0; j < d1; j++)
        yt[j] = y[j] + h * k3[j];
      lrmf_k_ode_eval(&sz, dm, sth, v, &w, t + h, yt, k4);
      for (int j = 0; j < d1; j++)
        y[j] += h / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
    }
    for (int j = 0; j < D; j++)
      z1[i * D + j] = (float)y[j];
    logdet[i] = (float)y[D];
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
  LRMF_K_DYNAMIC_SHARED(double, sth);
  int64_t dm[LRMF_K_ODE_MAXNL];
  lrmf_k_ode_sz sz;
  lrmf_k_ode_setup(nl, dims, k, theta, dm, &sz, sth);
  const int D = sz.d, d1 = D + 1;
  lrmf_k_ode_ws w;
  /* Y_1..Y_4 (stage inputs), K (one stage value, then Ȳ), K̄_1..K̄_4. */
  double Y[4 * (LRMF_K_ODE_MAXD + 1)], K[LRMF_K_ODE_MAXD + 1],
      Kb[4 * (LRMF_K_ODE_MAXD + 1)];
  double y[LRMF_K_ODE_MAXD], yb[LRMF_K_ODE_MAXD], zb[LRMF_K_ODE_MAXD];
  const double h = (t1 - t0) / (double)steps;
  const double wts[4] = {1.0 / 6.0, 2.0 / 6.0, 2.0 / 6.0, 1.0 / 6.0};
  const double ts[4] = {0.0, 0.5, 0.5, 1.0};
  /* Y_{q+1} = y + h·cs[q]·K_q: K̄_q += h cs[q] Ȳ_{q+1}. */
  const double cs[4] = {0.5, 0.5, 1.0, 0.0};
  LRMF_K_FOR(i, n) {
    const float *v = k > 0 ? eps + i * k * D : NULL;
    double *g = gpart + i;
    for (int p = 0; p < sz.np; p++)
      g[p * n] = 0.0;
    const double la = (double)ald[i];
    for (int j = 0; j < D; j++)
      yb[j] = (double)a1[i * D + j];
    for (int64_t s = steps - 1; s >= 0; s--) {
      const double t = t0 + (double)s * h;
      for (int j = 0; j < D; j++)
        y[j] = states[(s * D + j) * n + i];
      /* Rebuild the stage inputs exactly as the forward did. */
      for (int j = 0; j < D; j++)
        Y[j] = y[j];
      Y[D] = 0.0;
      lrmf_k_ode_eval(&sz, dm, sth, v, &w, t, Y, K);
      for (int j = 0; j < D; j++)
        Y[d1 + j] = y[j] + 0.5 * h * K[j];
      Y[d1 + D] = 0.0;
      lrmf_k_ode_eval(&sz, dm, sth, v, &w, t + 0.5 * h, Y + d1, K);
      for (int j = 0; j < D; j++)
        Y[2 * d1 + j] = y[j] + 0.5 * h * K[j];
      Y[2 * d1 + D] = 0.0;
      lrmf_k_ode_eval(&sz, dm, sth, v, &w, t + 0.5 * h, Y + 2 * d1, K);
      for (int j = 0; j < D; j++)
        Y[3 * d1 + j] = y[j] + h * K[j];
      Y[3 * d1 + D] = 0.0;
      /* y' = y + h/6 (K1 + 2K2 + 2K3 + K4). */
      for (int q = 0; q < 4; q++) {
        for (int j = 0; j < D; j++)
          Kb[q * d1 + j] = h * wts[q] * yb[j];
        Kb[q * d1 + D] = h * wts[q] * la;
      }
      for (int q = 3; q >= 0; q--) {
        double *Yb = K; /* Ȳ_q, D */
        for (int j = 0; j < D; j++)
          Yb[j] = 0.0;
        lrmf_k_ode_stage_bwd(&sz, dm, sth, v, &w, t + ts[q] * h, Y + q * d1,
                             Kb + q * d1, Yb, zb, g, n);
        for (int j = 0; j < D; j++)
          yb[j] += Yb[j];
        if (q > 0)
          for (int j = 0; j < D; j++)
            Kb[(q - 1) * d1 + j] += h * cs[q - 1] * Yb[j];
      }
    }
    for (int j = 0; j < D; j++)
      gz0[i * D + j] = (float)yb[j];
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
  LRMF_K_DYNAMIC_SHARED(double, sth);
  int64_t dm[LRMF_K_ODE_MAXNL];
  lrmf_k_ode_sz sz;
  lrmf_k_ode_setup(nl, dims, k, theta, dm, &sz, sth);
  const int D = sz.d, d1 = D + 1;
  lrmf_k_ode_ws w;
  double st[10 * (LRMF_K_ODE_MAXD + 1)];
  double *y = st, *K = st + d1, *yn = st + 8 * d1, *yt = st + 9 * d1;
  const double span = fabs(t1 - t0), dir = t1 >= t0 ? 1.0 : -1.0;
  LRMF_K_FOR(i, n) {
    const float *v = k > 0 ? eps + i * k * D : NULL;
    for (int j = 0; j < D; j++)
      y[j] = (double)z0[i * D + j];
    y[D] = 0.0;
    double t = t0, h = h0 < span ? h0 : span;
    int64_t attempts = 0, racc = 0, evals = 0;
    int64_t rc = LRMF_K_ODE_OK;
    if (span > 0) {
      lrmf_k_ode_eval(&sz, dm, sth, v, &w, t, y, K);
      evals++;
      if (!lrmf_k_ode_finite(d1, K) || !lrmf_k_ode_finite(d1, y))
        rc = LRMF_K_ODE_NONFINITE;
    }
    while (rc == LRMF_K_ODE_OK && span > 0 && dir * (t1 - t) > 0) {
      if (attempts >= max_steps) {
        rc = LRMF_K_ODE_MAXSTEPS;
        break;
      }
      if (h < 1e-12 * span) {
        rc = LRMF_K_ODE_UNDERFLOW;
        break;
      }
      const double rem = dir * (t1 - t);
      const bool last = h >= rem;
      const double hs = last ? rem : h, hh = dir * hs;
      for (int s = 1; s < 7; s++) {
        for (int j = 0; j < d1; j++) {
          double acc = 0.0;
          for (int q = 0; q < s; q++)
            acc += lrmf_k_dp_a[s][q] * K[q * d1 + j];
          yt[j] = y[j] + hh * acc;
        }
        lrmf_k_ode_eval(&sz, dm, sth, v, &w, t + lrmf_k_dp_c[s] * hh, yt,
                        K + s * d1);
        evals++;
      }
      for (int j = 0; j < d1; j++)
        yn[j] = yt[j];
      /* RMS error norm over the augmented state (z and l). */
      double e2 = 0.0;
      for (int j = 0; j < d1; j++) {
        double e = 0.0;
        for (int q = 0; q < 7; q++)
          e += (lrmf_k_dp_b[q] - lrmf_k_dp_bs[q]) * K[q * d1 + j];
        const double ay = fabs(y[j]), an = fabs(yn[j]);
        const double sc = atol + rtol * (ay > an ? ay : an);
        const double r = hh * e / sc;
        e2 += r * r;
      }
      const double err = sqrt(e2 / (double)d1);
      attempts++;
      if (isfinite(err) && err <= 1.0) {
        if (tape != NULL) {
          /* racc < attempts ≤ max_steps: the entry exists. */
          double *e = tape + racc * (D + 2) * n + i;
          e[0] = t;
          e[n] = hh;
          for (int j = 0; j < D; j++)
            e[(2 + j) * n] = y[j];
        }
        racc++;
        for (int j = 0; j < d1; j++) {
          y[j] = yn[j];
          K[j] = K[6 * d1 + j]; /* FSAL */
        }
        t = last ? t1 : t + hh;
        if (!lrmf_k_ode_finite(d1, y) || !lrmf_k_ode_finite(d1, K)) {
          rc = LRMF_K_ODE_NONFINITE;
          break;
        }
        double fac = err > 0 ? 0.9 * pow(err, -0.2) : 10.0;
        fac = fac > 10.0 ? 10.0 : (fac < 0.2 ? 0.2 : fac);
        h = hs * fac;
      } else {
        double fac = isfinite(err) ? 0.9 * pow(err, -0.2) : 0.2;
        fac = fac < 0.2 ? 0.2 : fac;
        h = hs * fac;
      }
    }
    info[i] = rc;
    info[n + i] = evals;
    info[2 * n + i] = racc;
    if (rc == LRMF_K_ODE_OK) {
      for (int j = 0; j < D; j++)
        z1[i * D + j] = (float)y[j];
      logdet[i] = (float)y[D];
    }
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
  LRMF_K_DYNAMIC_SHARED(double, sth);
  int64_t dm[LRMF_K_ODE_MAXNL];
  lrmf_k_ode_sz sz;
  lrmf_k_ode_setup(nl, dims, k, theta, dm, &sz, sth);
  const int D = sz.d, d1 = D + 1;
  lrmf_k_ode_ws w;
  /* Y_0..Y_5 (stage inputs), K_0..K_4, K̄_0..K̄_5. */
  double Y[6 * (LRMF_K_ODE_MAXD + 1)], K[5 * (LRMF_K_ODE_MAXD + 1)],
      Kb[6 * (LRMF_K_ODE_MAXD + 1)];
  double y[LRMF_K_ODE_MAXD], yb[LRMF_K_ODE_MAXD], Yb[LRMF_K_ODE_MAXD],
      zb[LRMF_K_ODE_MAXD];
  LRMF_K_FOR(i, n) {
    const float *v = k > 0 ? eps + i * k * D : NULL;
    double *g = gpart + i;
    for (int p = 0; p < sz.np; p++)
      g[p * n] = 0.0;
    const double la = (double)ald[i];
    for (int j = 0; j < D; j++)
      yb[j] = (double)a1[i * D + j];
    int64_t na = info[2 * n + i];
    na = na < 0 ? 0 : (na > max_steps ? max_steps : na);
    for (int64_t m = na - 1; m >= 0; m--) {
      const double *e = tape + m * (D + 2) * n + i;
      const double t = e[0], hh = e[n];
      for (int j = 0; j < D; j++)
        y[j] = e[(2 + j) * n];
      for (int j = 0; j < D; j++)
        Y[j] = y[j];
      Y[D] = 0.0;
      /* The forward's stages K_0..K_4 (K_0 = g(y), the FSAL value), and
       * the stage inputs Y_1..Y_5. */
      for (int s = 0; s < 5; s++) {
        if (s > 0) {
          for (int j = 0; j < D; j++) {
            double acc = 0.0;
            for (int q = 0; q < s; q++)
              acc += lrmf_k_dp_a[s][q] * K[q * d1 + j];
            Y[s * d1 + j] = y[j] + hh * acc;
          }
          Y[s * d1 + D] = 0.0;
        }
        lrmf_k_ode_eval(&sz, dm, sth, v, &w, t + lrmf_k_dp_c[s] * hh,
                        Y + s * d1, K + s * d1);
      }
      for (int j = 0; j < D; j++) {
        double acc = 0.0;
        for (int q = 0; q < 5; q++)
          acc += lrmf_k_dp_a[5][q] * K[q * d1 + j];
        Y[5 * d1 + j] = y[j] + hh * acc;
      }
      Y[5 * d1 + D] = 0.0;
      for (int q = 0; q < 6; q++) {
        for (int j = 0; j < D; j++)
          Kb[q * d1 + j] = hh * lrmf_k_dp_b[q] * yb[j];
        Kb[q * d1 + D] = hh * lrmf_k_dp_b[q] * la;
      }
      for (int s = 5; s >= 0; s--) {
        for (int j = 0; j < D; j++)
          Yb[j] = 0.0;
        lrmf_k_ode_stage_bwd(&sz, dm, sth, v, &w, t + lrmf_k_dp_c[s] * hh,
                             Y + s * d1, Kb + s * d1, Yb, zb, g, n);
        for (int j = 0; j < D; j++)
          yb[j] += Yb[j];
        for (int q = 0; q < s; q++)
          for (int j = 0; j < D; j++)
            Kb[q * d1 + j] += hh * lrmf_k_dp_a[s][q] * Yb[j];
      }
    }
    for (int j = 0; j < D; j++)
      gz0[i * D + j] = (float)yb[j];
  }
}

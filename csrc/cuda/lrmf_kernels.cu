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

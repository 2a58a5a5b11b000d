/*
 * lrmf.h — the C ABI of lrmf's CPU compute kernels, for C users and for
 * cgo (package bindings).
 *
 * One header per ABI: this one is the CPU's (csrc/cpu, C11, every kernel
 * in float and double, argument checks and status codes). The GPU kernels
 * have their own ABI, the launch contract of csrc/cuda/lrmf_kernels.h
 * (float32 lrmf_k_* kernels launched by name, 8-byte parameters, no
 * status). What the two share is one kernel list
 * (csrc/include/lrmf_kernel_list.def) and one source for the arithmetic of
 * a row (csrc/common/rows.inc and ode_rows.inc), so that lrmf_k_<op>
 * computes what lrmf_<op>_f32 computes; and the constants below.
 *
 * Conventions (all kernels):
 *  - Matrices are row-major. GEMM takes explicit leading dimensions (the
 *    distance in elements between consecutive rows); every other kernel
 *    works on contiguous buffers, so an n×d matrix has leading dimension d.
 *  - Sizes are int64_t and may be 0 (the call then returns LRMF_OK and is
 *    a no-op when all its outputs are empty; outputs that are not empty
 *    still follow the formula, an empty sum being 0: GEMM with k == 0 sets
 *    C = beta*C, bias_grad with n == 0 zeroes db, dot/sum with n == 0 set
 *    *out = 0); a negative size, a leading dimension smaller than the row
 *    length, or a NULL pointer that the kernel needs gives LRMF_EINVAL and
 *    writes nothing.
 *  - Each kernel exists as _f32 (float) and _f64 (double) with identical
 *    semantics; both are generated from one source. Sums over a batch or a
 *    row (log-likelihoods, log-dets, parameter gradients, bias gradients)
 *    accumulate in double whatever the element type.
 *  - "out" buffers are overwritten unless the description says "+=".
 *    Outputs never alias inputs unless stated.
 *  - Kernels are pure functions of their arguments: they allocate nothing,
 *    keep no state and start no threads. Callers split a batch into row
 *    blocks for parallelism and combine per-block partial sums themselves,
 *    in a fixed order, so results are reproducible.
 */
#ifndef LRMF_H
#define LRMF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes returned by every kernel. */
#define LRMF_OK 0
#define LRMF_EINVAL (-1) /* bad size, leading dimension or NULL pointer */
/* Typed failures of the adaptive ODE solver (lrmf_ode_dopri5): */
#define LRMF_ODE_UNDERFLOW (-2) /* step size below 1e-12·|t1 − t0| */
#define LRMF_ODE_NONFINITE (-3) /* NaN/Inf in the state or in f at it */
#define LRMF_ODE_MAXSTEPS (-4)  /* max_steps step attempts in one row */

/* ln(2π), used by the Gaussian log-density. */
#define LRMF_LN_2PI 1.83787706640934548356

/* Scale functions s(r) of an affine coupling (lrmf_coupling_*):
 *  LRMF_SCALE_EXP:     s = exp(α), α = bound·tanh(r/bound), bound > 0, so
 *                      ln s = α ∈ (−bound, bound) and one step cannot overflow;
 *  LRMF_SCALE_SIGMOID: s = sigmoid(r + 2) (GLOW), s ∈ (0, 1),
 *                      ln s = −softplus(−(r + 2)); bound is ignored. */
#define LRMF_SCALE_EXP 1
#define LRMF_SCALE_SIGMOID 2

/* Scale functions s(r) of ActNorm (lrmf_actnorm_*), per feature:
 *  LRMF_ACTNORM_EXP:      s = exp(r) (Glow's code: r is the log-scale), so
 *                         ln s = r and ∂ln s/∂r = 1;
 *  LRMF_ACTNORM_SOFTPLUS: s = softplus(r + 2) = ln(1 + e^(r+2)) (the LRMF
 *                         authors' Glow), ∂s/∂r = sigmoid(r + 2). */
#define LRMF_ACTNORM_EXP 1
#define LRMF_ACTNORM_SOFTPLUS 2

#define LRMF_DECLARE(T, S)                                                     \
  /* C = alpha*op(A)*op(B) + beta*C. op(A) is m×k, op(B) is k×n, C is m×n.     \
   * op(X) = X when trans_x == 0, Xᵀ otherwise (A is then stored k×m).        \
   * With beta == 0, C is not read (NaN in C does not propagate). */         \
  int lrmf_gemm_##S(int trans_a, int trans_b, int64_t m, int64_t n,            \
                    int64_t k, T alpha, const T *a, int64_t lda, const T *b,   \
                    int64_t ldb, T beta, T *c, int64_t ldc);                   \
                                                                               \
  /* Elements of workspace lrmf_gemm_ws_##S needs for these sizes (0 when    \
   * m, n or k is 0; LRMF_EINVAL for a negative size). Bounded by the block  \
   * sizes (a few MiB at most), not by m·n·k. */                              \
  int64_t lrmf_gemm_work_##S(int64_t m, int64_t n, int64_t k);                 \
                                                                               \
  /* lrmf_gemm_##S using work (lwork elements, any alignment, contents       \
   * ignored and overwritten) to pack A and B: the fast path. LRMF_EINVAL if  \
   * lwork < lrmf_gemm_work_##S(m, n, k) or work is NULL while needed. Each  \
   * concurrent call needs its own work. */                                    \
  int lrmf_gemm_ws_##S(int trans_a, int trans_b, int64_t m, int64_t n,         \
                       int64_t k, T alpha, const T *a, int64_t lda,            \
                       const T *b, int64_t ldb, T beta, T *c, int64_t ldc,     \
                       T *work, int64_t lwork);                                \
                                                                               \
  /* lrmf_gemm_ws_##S with an epilogue: each element z of the result        \
   * (z = alpha·op(A)·op(B) + beta·C, z = beta·C when k == 0) becomes          \
   *   z += bias[j]                    (bias: n, or NULL)                     \
   *   z = max(z, 0)                   (relu != 0)                            \
   *   z = mask[i,j] > 0 ? z : 0       (mask: m×n with leading dimension      \
   *                                    ldm ≥ n, or NULL; ReLU's backward)     \
   * in this order, each step rounded to T as a separate pass would round     \
   * it, and is stored in C; when colsum (n doubles) is not NULL,             \
   * colsum[j] = Σ_i z[i,j], summed in double in row order (overwritten;      \
   * m == 0 zeroes it). The epilogue is applied to each tile of C right       \
   * after its last store, so it costs no pass over C. Same work and rules    \
   * as lrmf_gemm_ws_##S; bias, mask and colsum must not overlap C. Row        \
   * windows of one product (A, C and mask offset by the same rows) give the  \
   * same elements as the whole product. */                                   \
  int lrmf_gemm_ep_ws_##S(int trans_a, int trans_b, int64_t m, int64_t n,      \
                          int64_t k, T alpha, const T *a, int64_t lda,         \
                          const T *b, int64_t ldb, T beta, T *c, int64_t ldc,  \
                          const T *bias, int relu, const T *mask, int64_t ldm, \
                          double *colsum, T *work, int64_t lwork);             \
                                                                               \
  /* y[i,j] += bias[j];  y is n×d, bias is d. */                               \
  int lrmf_bias_add_##S(int64_t n, int64_t d, const T *bias, T *y);            \
                                                                               \
  /* db[j] = Σ_i dy[i,j];  dy is n×d, db is d (overwritten). */                \
  int lrmf_bias_grad_##S(int64_t n, int64_t d, const T *dy, T *db);            \
                                                                               \
  /* y = max(x, 0) elementwise over n elements; y may alias x. */              \
  int lrmf_relu_fwd_##S(int64_t n, const T *x, T *y);                          \
                                                                               \
  /* dx = dy where x > 0, else 0; dx may alias dy. */                          \
  int lrmf_relu_bwd_##S(int64_t n, const T *x, const T *dy, T *dx);            \
                                                                               \
  /* y = tanh(x) elementwise; y may alias x. */                                \
  int lrmf_tanh_fwd_##S(int64_t n, const T *x, T *y);                          \
                                                                               \
  /* dx = dy * (1 - y²) where y = tanh(x); dx may alias dy. */                 \
  int lrmf_tanh_bwd_##S(int64_t n, const T *y, const T *dy, T *dx);            \
                                                                               \
  /* Batched full-covariance Gaussian log-density, parameterised by           \
   * mu (d) and L (d×d) with LᵀL = Σ⁻¹ (lrmf uses L = Σ^{-1/2}):              \
   *   u_i    = L (x_i − mu)                         u is n×d (out)           \
   *   logp_i = −(d/2) ln 2π + logdet_l − ½‖u_i‖²    logp is n (out)          \
   * x is n×d; logdet_l = ln|det L| is computed by the caller. u is kept     \
   * for lrmf_gauss_bwd. */                                                    \
  int lrmf_gauss_logp_##S(int64_t n, int64_t d, const T *x, const T *mu,       \
                          const T *l, T logdet_l, T *u, T *logp);              \
                                                                               \
  /* Backward of lrmf_gauss_logp for upstream weights w = dlogp (n):           \
   *   g_i  = Lᵀ u_i                                                          \
   *   dx_i = −w_i g_i                      dx n×d (out; may be NULL: skip)   \
   *   dmu  = Σ_i w_i g_i                   dmu d (out)                       \
   *   dl   = −Σ_i w_i u_i (x_i − mu)ᵀ      dl d×d (out)                      \
   * dl is the data term only: the gradient of ln|det L| is L⁻ᵀ·Σ_i w_i,      \
   * which the caller adds (it needs an inverse, a host-side operation). */    \
  int lrmf_gauss_bwd_##S(int64_t n, int64_t d, const T *x, const T *mu,        \
                         const T *l, const T *u, const T *dlogp, T *dx,        \
                         T *dmu, T *dl);                                       \
                                                                               \
  /* Per-sample log-det accumulation: logdet[i] += Σ_j s[i,j];  s is n×d     \
   * (e.g. the log-scales of a coupling layer), logdet is n. */                \
  int lrmf_logdet_acc_##S(int64_t n, int64_t d, const T *s, T *logdet);        \
                                                                               \
  /* Affine flow forward: y_i = M x_i + b;  logdet[i] += ldm, where ldm =     \
   * ln|det M| is computed by the caller. x, y are n×d, M is d×d, b is d;    \
   * logdet (n) may be NULL. y must not alias x. */                            \
  int lrmf_affine_fwd_##S(int64_t n, int64_t d, const T *x, const T *m,        \
                          const T *b, T ldm, T *y, T *logdet);                 \
                                                                               \
  /* Affine flow inverse: x_i = Minv (y_i − b);  Minv = M⁻¹ (d×d) is          \
   * computed by the caller. x must not alias y. */                            \
  int lrmf_affine_inv_##S(int64_t n, int64_t d, const T *y, const T *minv,     \
                          const T *b, T *x);                                   \
                                                                               \
  /* Adam update of n parameters (Kingma & Ba, 2015):                         \
   *   m = beta1 m + (1−beta1) g;   v = beta2 v + (1−beta2) g²                \
   *   p −= lr · (m / bc1) / (sqrt(v / bc2) + eps)                            \
   * with bias corrections bc1 = 1 − beta1^t, bc2 = 1 − beta2^t from the     \
   * caller (t counts from 1). p, m, v are updated in place. The hyper-     \
   * parameters are double and the update is computed in double: 0.9f is   \
   * not 0.9, and the rounding would show in m where g cancels it. */       \
  int lrmf_adam_##S(int64_t n, T *p, const T *g, T *m, T *v, double lr,        \
                    double beta1, double beta2, double eps, double bc1,        \
                    double bc2);                                               \
                                                                               \
  /* y += alpha·x over n elements. */                                          \
  int lrmf_axpy_##S(int64_t n, T alpha, const T *x, T *y);                     \
                                                                               \
  /* out[i] = a[i]·b[i] over n elements (the elementwise product, rounded      \
   * once); out may be a or b. */                                              \
  int lrmf_mul_##S(int64_t n, const T *a, const T *b, T *out);                 \
                                                                               \
  /* x[i] = value over n elements. */                                          \
  int lrmf_fill_##S(int64_t n, T value, T *x);                                 \
                                                                               \
  /* *out = Σ_i x[i] y[i], accumulated in double (y == x gives ‖x‖²). */       \
  int lrmf_dot_##S(int64_t n, const T *x, const T *y, double *out);            \
                                                                               \
  /* *out = Σ_i x[i], accumulated in double. */                                \
  int lrmf_sum_##S(int64_t n, const T *x, double *out);                        \
                                                                               \
  /* Sums of squares by segments, restricted to the elements [lo, hi) of x:    \
   * segment s is [ends[s−1], ends[s]) (ends[−1] = 0, ends nondecreasing),     \
   *   out[s] = Σ_{j ∈ segment s, lo ≤ j < hi} x[j]²   (out: nseg doubles)     \
   * each accumulated in double in a fixed order (32 running sums over the     \
   * whole 32-element blocks, added pairwise, then the rest in index order:    \
   * the same bits whatever instruction set runs it); empty                    \
   * intersections give 0. x holds at least hi elements (not checked: only     \
   * [lo, hi) is read). 0 ≤ lo ≤ hi, else LRMF_EINVAL; callers split [0, N)    \
   * into ranges and add the partials per segment. */                          \
  int lrmf_sum_squares_##S(int64_t lo, int64_t hi, const T *x, int64_t nseg,   \
                           const int64_t *ends, double *out);                  \
                                                                               \
  /* Row gather: dst[i,:] = src[idx[i],:] for i < n; src has at least        \
   * max(idx)+1 rows of d elements (not checked: the caller validates idx). */ \
  int lrmf_gather_rows_##S(int64_t n, int64_t d, const T *src,                 \
                           const int32_t *idx, T *dst);                        \
                                                                               \
  /* Fused bias + ReLU, in place: y[i,j] = max(y[i,j] + bias[j], 0);           \
   * y is n×d, bias is d. */                                                   \
  int lrmf_bias_relu_fwd_##S(int64_t n, int64_t d, const T *bias, T *y);       \
                                                                               \
  /* Backward of lrmf_bias_relu_fwd, given its output y (n×d):                 \
   *   dz = dy·[y > 0]        dz n×d (out; may alias dy)                       \
   *   db[j] = Σ_i dz[i,j]    db d (out; n == 0 zeroes it)                     \
   */                                                                          \
  int lrmf_bias_relu_bwd_##S(int64_t n, int64_t d, const T *y, const T *dy,    \
                             T *dz, T *db);                                    \
                                                                               \
  /* Column slice: dst = src[:, c0:c0+k];  src is n×d, dst n×k.                \
   * c0, k ≥ 0 and c0 + k ≤ d, else LRMF_EINVAL. */                            \
  int lrmf_copy_cols_##S(int64_t n, int64_t d, int64_t c0, int64_t k,          \
                         const T *src, T *dst);                                \
                                                                               \
  /* Column scatter-add: dst[:, c0:c0+k] += src;  src is n×k, dst n×d.         \
   * c0, k ≥ 0 and c0 + k ≤ d, else LRMF_EINVAL. */                            \
  int lrmf_add_cols_##S(int64_t n, int64_t d, int64_t c0, int64_t k,           \
                        const T *src, T *dst);                                 \
                                                                               \
  /* Affine coupling (Real NVP) forward on columns [t0, t0+dt) of x (n×d),     \
   * with h (n×2dt) = [mu | r] from the conditioner (mu = h[:, :dt],           \
   * r = h[:, dt:]) and s = s(r) the scale function kind (LRMF_SCALE_*):       \
   *   y[:, t0+j] = x[:, t0+j]·s(r[:, j]) + mu[:, j]   (j < dt)                \
   *   y = x on every other column                       y n×d (out; may be x) \
   *   logdet[i] += Σ_j ln s(r[i,j])                     logdet n (or NULL)    \
   * t0, dt ≥ 0, t0 + dt ≤ d, a known kind and, for LRMF_SCALE_EXP,            \
   * bound > 0, else LRMF_EINVAL. */                                           \
  int lrmf_coupling_fwd_##S(int64_t n, int64_t d, int64_t t0, int64_t dt,      \
                            int kind, T bound, const T *x, const T *h, T *y,   \
                            T *logdet);                                        \
                                                                               \
  /* Inverse of lrmf_coupling_fwd (h computed from the untouched columns):     \
   *   x[:, t0+j] = (y[:, t0+j] − mu[:, j]) / s(r[:, j]);  x = y elsewhere.    \
   * x is n×d (out; may be y). Same argument rules as lrmf_coupling_fwd. */    \
  int lrmf_coupling_inv_##S(int64_t n, int64_t d, int64_t t0, int64_t dt,      \
                            int kind, T bound, const T *y, const T *h, T *x);  \
                                                                               \
  /* Backward of lrmf_coupling_fwd at x, h for upstream dy (n×d) and           \
   * dlogdet (n), with s, ∂s/∂r and ∂ln s/∂r taken at r[i,j]:                  \
   *   dx = dy on the untouched columns, dx[:, t0+j] = dy[:, t0+j]·s           \
   *                                     dx n×d (out; may be dy; NULL: skip)   \
   *   dh[:, j]    = dy[:, t0+j]                                               \
   *   dh[:, dt+j] = dy[:, t0+j]·x[:, t0+j]·∂s/∂r + dlogdet_i·∂ln s/∂r         \
   *                                     dh n×2dt (out)                        \
   * EXP: ∂ln s/∂r = 1 − tanh²(r/bound); SIGMOID: ∂ln s/∂r = 1 − s; both       \
   * ∂s/∂r = s·∂ln s/∂r. Same argument rules as lrmf_coupling_fwd. */          \
  int lrmf_coupling_bwd_##S(int64_t n, int64_t d, int64_t t0, int64_t dt,      \
                            int kind, T bound, const T *x, const T *h,         \
                            const T *dy, const T *dlogdet, T *dx, T *dh);   \
                                                                               \
  /* ActNorm (Glow) forward, per feature j < d with s_j = s(r_j) the scale    \
   * function kind (LRMF_ACTNORM_*):                                          \
   *   y[i,j] = (x[i,j] + b[j])·s_j          y n×d (out; may be x)            \
   *   logdet[i] += Σ_j ln s_j               logdet n (or NULL: skip)         \
   * x is n×d, r and b are d. A known kind, else LRMF_EINVAL. */               \
  int lrmf_actnorm_fwd_##S(int64_t n, int64_t d, int kind, const T *x,         \
                           const T *r, const T *b, T *y, T *logdet);           \
                                                                               \
  /* Inverse of lrmf_actnorm_fwd: x[i,j] = y[i,j]/s_j − b[j];  x n×d (out;     \
   * may be y). Same argument rules as lrmf_actnorm_fwd. */                    \
  int lrmf_actnorm_inv_##S(int64_t n, int64_t d, int kind, const T *y,         \
                           const T *r, const T *b, T *x);                      \
                                                                               \
  /* Backward of lrmf_actnorm_fwd at x for upstream dy (n×d) and dlogdet (n,   \
   * or NULL: zero), with s_j, ∂ln s_j/∂r_j taken at r_j:                      \
   *   dx[i,j] = dy[i,j]·s_j        dx n×d (out; may be dy; NULL: skip)        \
   *   db[j]   = s_j·Σ_i dy[i,j]                          db d (out)           \
   *   dr[j]   = ∂ln s_j·(s_j·Σ_i dy[i,j](x[i,j] + b[j]) + Σ_i dlogdet[i])     \
   *                                                      dr d (out)           \
   * (∂s/∂r = s·∂ln s/∂r). Sums in double; n == 0 zeroes db and dr. Same      \
   * argument rules as lrmf_actnorm_fwd. */                                    \
  int lrmf_actnorm_bwd_##S(int64_t n, int64_t d, int kind, const T *x,         \
                           const T *r, const T *b, const T *dy,                \
                           const T *dlogdet, T *dx, T *dr, T *db);             \
                                                                               \
  /* Row-wise solve with a pivoted LU factorisation W = P·L·U (d×d):           \
   *   x_i = W⁻¹ y_i = U⁻¹ L⁻¹ Pᵀ y_i       x, y n×d (x out; must not alias y) \
   * lu (d×d) holds L strictly below its diagonal (L's unit diagonal is not    \
   * stored) and U on and above it; perm (d) is P as indices, P[perm[k], k] =  \
   * 1, so (Pᵀ y)_k = y[perm[k]]. Forward then back substitution, each         \
   * element's sum in double. Every perm[k] in [0, d), else LRMF_EINVAL (that  \
   * perm is a permutation, and U's diagonal non-zero, is the caller's to      \
   * ensure). */                                                               \
  int lrmf_lu_solve_##S(int64_t n, int64_t d, const T *lu,                     \
                        const int32_t *perm, const T *y, T *x);

LRMF_DECLARE(float, f32)
LRMF_DECLARE(double, f64)

#undef LRMF_DECLARE

/* ---- FFJORD: the dynamics MLP and its ODE solvers ---------------------------
 *
 * (The GPU's lrmf_k_ode_* kernels run the same row code,
 * csrc/common/ode_rows.inc, one thread per row, with row-minor layouts for
 * their tapes and per-row status words; see csrc/cuda/lrmf_kernels.h.)
 *
 * Dynamics f(z, t; θ): an MLP on x = [z, t] (length D+1) with sizes
 * dims = [D+1, H1, ..., HL, D] (nl = L+2 entries, every entry ≥ 1,
 * dims[0] == dims[nl−1] + 1): hidden layers tanh, output linear.
 * θ is one flat vector: for layer l = 0..L, W_l (dims[l]×dims[l+1],
 * row-major, so a_{l+1} = in·W_l + b_l) then b_l (dims[l+1]); its length
 * is lrmf_odefunc_nparams_*(nl, dims).
 *
 * Divergence tr(∂f/∂z): exact when k == 0 (D forward-mode tangents e_j;
 * eps is then ignored and may be NULL), else the Hutchinson estimate
 * (1/k) Σ_p ε_pᵀ (∂f/∂z) ε_p with the k probes of each row in eps (n×k×D,
 * row i's probes at eps + i·k·D).
 *
 * work: a caller workspace of lwork doubles, lwork ≥
 * lrmf_odefunc_work_*(nl, dims, k), needed when n > 0 (one size serves all
 * ODE kernels and paths; it does not depend on n: rows are processed one,
 * or one vector of rows, at a time; contents ignored and overwritten; one
 * per concurrent call). Every row is computed in double whatever T is;
 * rows are independent, so callers may split a batch into row blocks (the
 * θ-gradient of each block is then a partial sum to add up). EINVAL for
 * bad dims, k < 0, lwork too small, a NULL needed pointer, an isa the CPU
 * lacks, or (solvers) bad step parameters.
 *
 * isa: the code path (LRMF_ODE_*, below). LRMF_ODE_AUTO takes the widest
 * the CPU runs; the others force one (tests, benchmarks). The portable
 * path is the per-row code shared with the GPU (csrc/common/ode_rows.inc);
 * the AVX2 and AVX-512 paths (x86-64, csrc/cpu/ode_vec.inc) run 4 or 8 rows
 * per vector instruction, each row in its own lane with its own t, step
 * size and Dormand–Prince decisions. All compute in double and agree to
 * rounding (their tanh differs by < 3e-16, their sums by association); a
 * given path and row split is deterministic. */
#define LRMF_ODE_AUTO 0     /* the widest path this CPU runs */
#define LRMF_ODE_PORTABLE 1 /* one row at a time */
#define LRMF_ODE_AVX2 2     /* 4 rows per AVX2+FMA vector */
#define LRMF_ODE_AVX512 3   /* 8 rows per AVX-512F vector */
#define LRMF_DECLARE_ODE(T, S)                                                 \
  /* Workspace doubles for any ODE kernel with these dims and k (k = 0:     \
   * exact trace); LRMF_EINVAL for bad dims or k < 0. */                      \
  int64_t lrmf_odefunc_work_##S(int64_t nl, const int64_t *dims, int64_t k);   \
                                                                               \
  /* Length of θ for these dims; LRMF_EINVAL for bad dims. */                \
  int64_t lrmf_odefunc_nparams_##S(int64_t nl, const int64_t *dims);           \
                                                                               \
  /* The path isa selects on this CPU (LRMF_ODE_AUTO: the widest it runs),   \
   * or LRMF_EINVAL when the CPU or the build lacks it. */                    \
  int lrmf_ode_isa_##S(int isa);                                               \
                                                                               \
  /* dz[i] = f(z[i], t), trace[i] = tr(∂f/∂z)(z[i], t) (exact or            \
   * Hutchinson, see above). z, dz n×D; trace n. */                           \
  int lrmf_odefunc_fwd_##S(int64_t n, int64_t nl, const int64_t *dims,         \
                           const T *theta, T t, const T *z, int64_t k,         \
                           const T *eps, T *dz, T *trace, double *work,        \
                           int64_t lwork, int isa);                            \
                                                                               \
  /* VJP of Λ = Σ_i az[i]·f(z[i], t) + Σ_i atr[i]·trace[i] (same trace      \
   * estimator as the forward, so with probes it includes ε):                 \
   *   gz = ∂Λ/∂z (n×D, out), gtheta = ∂Λ/∂θ (out, summed over the n rows   \
   * in double; n == 0 zeroes it). The trace term brings in tanh''.         \
   * az n×D, atr n. */                                                         \
  int lrmf_odefunc_vjp_##S(int64_t n, int64_t nl, const int64_t *dims,         \
                           const T *theta, T t, const T *z, int64_t k,         \
                           const T *eps, const T *az, const T *atr, T *gz,     \
                           T *gtheta, double *work, int64_t lwork, int isa);   \
                                                                               \
  /* Fixed-step classical RK4 from t0 to t1 in `steps` ≥ 1 equal steps        \
   * (t1 < t0 integrates backwards) of the augmented state [z, l],            \
   * d[z, l]/dt = [f(z, t), tr(∂f/∂z)], z(t0) = z0, l(t0) = 0:                 \
   *   z1 = z(t1) (n×D, out), logdet = l(t1) = ∫ tr dt (n, out),              \
   *   *nfe = 4·steps·n (f evaluations, all rows; NULL: skip).                \
   * The probes of a row (k > 0) stay fixed over the whole solve. */          \
  int lrmf_ode_rk4_##S(int64_t n, int64_t nl, const int64_t *dims,             \
                       const T *theta, double t0, double t1, int64_t steps,    \
                       const T *z0, int64_t k, const T *eps, T *z1,            \
                       T *logdet, int64_t *nfe, double *work, int64_t lwork,   \
                       int isa);                                               \
                                                                               \
  /* Adaptive Dormand–Prince 5(4) on the same augmented ODE as ode_rk4.       \
   * Step control is per row (each row has its own step sequence, so rows    \
   * stay independent and a row-block split does not change results): the   \
   * error is the RMS over the D+1 components of err_j / (atol + rtol·       \
   * max(|y_j|, |y_new_j|)); a step is accepted when it is ≤ 1, and the next \
   * step is h·clamp(0.9·err^(−1/5), 0.2, 10) (0.2 after a non-finite error).\
   * The first step is min(h0, |t1 − t0|); the last is clipped to land on t1.\
   * atol, rtol ≥ 0 with atol + rtol > 0, h0 > 0, max_steps ≥ 1, finite t0,  \
   * t1, else LRMF_EINVAL. Failures (the batch stops at the first failing    \
   * row; outputs are then unspecified):                                     \
   *   LRMF_ODE_NONFINITE  z0, or f/tr at an accepted state, not finite;     \
   *   LRMF_ODE_UNDERFLOW  the step size fell below 1e-12·|t1 − t0|;         \
   *   LRMF_ODE_MAXSTEPS   a row made max_steps step attempts (accepted or   \
   *                       rejected) without reaching t1.                    \
   * *nfe (f evaluations) and *naccept (accepted steps) are totals over the  \
   * rows processed (NULL: skip); with FSAL, nfe = 1 + 6·attempts per row. */ \
  int lrmf_ode_dopri5_##S(int64_t n, int64_t nl, const int64_t *dims,          \
                          const T *theta, double t0, double t1, double atol,   \
                          double rtol, double h0, int64_t max_steps,           \
                          const T *z0, int64_t k, const T *eps, T *z1,         \
                          T *logdet, int64_t *nfe, int64_t *naccept,           \
                          double *work, int64_t lwork, int isa);

LRMF_DECLARE_ODE(float, f32)
LRMF_DECLARE_ODE(double, f64)

/* Gradients through a solve (discretize-then-optimize: the exact reverse of
 * the computed steps). For L = Σ a1·z1 + Σ ald·logdet:
 *   gz0 = ∂L/∂z0 (n×D, out), gtheta = ∂L/∂θ (out, summed over rows in
 *   double; n == 0 zeroes it); a1 n×D, ald n; same dims, θ, k, eps as the
 *   forward. work as above (lrmf_odefunc_work_*).
 * RK4: lrmf_ode_rk4_save is lrmf_ode_rk4 that also stores each row's step
 * start states z in `states` (double, n×steps×D: row i, step s at
 * states + (i·steps + s)·D); lrmf_ode_rk4_bwd replays the steps backwards
 * from them (per step: 3 evaluations of g to rebuild the stage inputs, then
 * 4 × (evaluation + VJP); *nfe, *nvjp are those counts, NULL: skip).
 * Dormand–Prince: lrmf_ode_dopri5_save is lrmf_ode_dopri5 that also records
 * each row's accepted steps in `tape` (double, n×max_steps×(D+2): row i's
 * step m at tape + (i·max_steps + m)·(D+2) is [t, signed h, z at the step
 * start (D)]) and their count in nacc[i] (n); lrmf_ode_dopri5_bwd
 * backpropagates exactly through the 5th-order update of each accepted
 * step in reverse (5 evaluations to rebuild the stages, then 6 × (evaluation
 * + VJP) per step); the error estimate and step-size control are not
 * differentiated (the step sequence is treated as a constant). EINVAL also
 * for nacc[i] outside [0, max_steps]. */
#define LRMF_DECLARE_ODE_BWD(T, S)                                             \
  int lrmf_ode_rk4_save_##S(int64_t n, int64_t nl, const int64_t *dims,        \
                            const T *theta, double t0, double t1,              \
                            int64_t steps, const T *z0, int64_t k,             \
                            const T *eps, T *z1, T *logdet, double *states,    \
                            int64_t *nfe, double *work, int64_t lwork,         \
                            int isa);                                          \
  int lrmf_ode_rk4_bwd_##S(int64_t n, int64_t nl, const int64_t *dims,         \
                           const T *theta, double t0, double t1,               \
                           int64_t steps, int64_t k, const T *eps,             \
                           const double *states, const T *a1, const T *ald,    \
                           T *gz0, T *gtheta, int64_t *nfe, int64_t *nvjp,     \
                           double *work, int64_t lwork, int isa);              \
  int lrmf_ode_dopri5_save_##S(                                                \
      int64_t n, int64_t nl, const int64_t *dims, const T *theta, double t0,   \
      double t1, double atol, double rtol, double h0, int64_t max_steps,       \
      const T *z0, int64_t k, const T *eps, T *z1, T *logdet, double *tape,    \
      int64_t *nacc, int64_t *nfe, int64_t *naccept, double *work,             \
      int64_t lwork, int isa);                                                 \
  int lrmf_ode_dopri5_bwd_##S(                                                 \
      int64_t n, int64_t nl, const int64_t *dims, const T *theta,              \
      int64_t max_steps, int64_t k, const T *eps, const double *tape,          \
      const int64_t *nacc, const T *a1, const T *ald, T *gz0, T *gtheta,       \
      int64_t *nfe, int64_t *nvjp, double *work, int64_t lwork, int isa);

LRMF_DECLARE_ODE_BWD(float, f32)
LRMF_DECLARE_ODE_BWD(double, f64)

#undef LRMF_DECLARE_ODE_BWD

#undef LRMF_DECLARE_ODE

/* ---- Gaussian mixture (CPU only so far) -----------------------------------
 *
 * K components with full covariance, parameterised like lrmf_gauss_*:
 * component c has mean mu_c (row c of the K×d mu) and L_c (rows
 * [c·d, (c+1)·d) of the (K·d)×d l) with L_cᵀL_c = Σ_c⁻¹, and weight
 * π_c = softmax(logits)_c (logits: K unconstrained log-weights). A
 * diagonal covariance is the special case of a diagonal L_c. logdet_l[c] =
 * ln|det L_c| is computed by the caller. Every row is computed in double
 * (max-shifted logsumexp); rows are independent, so callers may split a
 * batch into row blocks (the sums of the backward are then partials to add
 * up). K ≥ 1 else LRMF_EINVAL. */
#define LRMF_DECLARE_GMM(T, S)                                                 \
  /* For each row x_i of the n×d x:                                          \
   *   u_ic    = L_c (x_i − mu_c)            u n×(K·d) (out; u_ic at          \
   *                                         u + (i·K + c)·d)                  \
   *   lp_ic   = ln π_c − (d/2) ln 2π + logdet_l[c] − ½‖u_ic‖²                 \
   *   logp_i  = logsumexp_c lp_ic           logp n (out)                      \
   *   resp_ic = exp(lp_ic − logp_i)         resp n×K (out)                    \
   * u and resp are kept for lrmf_gmm_bwd. */                                  \
  int lrmf_gmm_logp_##S(int64_t n, int64_t d, int64_t k, const T *x,           \
                        const T *mu, const T *l, const T *logits,              \
                        const T *logdet_l, T *u, T *resp, T *logp);            \
                                                                               \
  /* Backward of lrmf_gmm_logp for upstream dlogp (n), with                  \
   * w_ic = dlogp_i·resp_ic and g_ic = L_cᵀ u_ic:                              \
   *   dx_i       = −Σ_c w_ic g_ic            dx n×d (out; NULL: skip)        \
   *   dmu_c      = Σ_i w_ic g_ic             dmu K×d (out)                    \
   *   dl_c       = −Σ_i w_ic u_ic (x_i − mu_c)ᵀ   dl (K·d)×d (out)            \
   *   dlogits_c  = Σ_i w_ic − π_c Σ_i dlogp_i     dlogits K (out)             \
   *   wsum_c     = Σ_i w_ic                  wsum K (out)                     \
   * dl is the data term only: the ln|det L_c| term is wsum_c·L_c⁻ᵀ, which    \
   * the caller adds. n == 0 zeroes every sum. */                              \
  int lrmf_gmm_bwd_##S(int64_t n, int64_t d, int64_t k, const T *x,            \
                       const T *mu, const T *l, const T *logits, const T *u,   \
                       const T *resp, const T *dlogp, T *dx, T *dmu, T *dl,    \
                       T *dlogits, T *wsum);

LRMF_DECLARE_GMM(float, f32)
LRMF_DECLARE_GMM(double, f64)

#undef LRMF_DECLARE_GMM

/* ---- Images: convolution and squeeze (GLOW) --------------------------------
 *
 * An image batch is n×h×w×c in NHWC order (channels fastest): pixel
 * p = (b·h + i)·w + j of image b is row p of an (n·h·w)×c matrix, so a
 * per-channel operation on images is the row-wise operation on that matrix.
 *
 * Convolution: k×k kernel (k odd, 1 ≤ k ≤ 63), stride 1, "same" output
 * size (zero padding of r = (k−1)/2 pixels), no bias. The input has
 * ce = cin + edge channels: with edge = 1 an extra channel is appended
 * that is 1 where a tap falls in the padding and 0 inside the image
 * (OpenAI Glow's add_edge_padding), so the network can tell the border
 * from dark pixels; it is built on the fly, never stored. Weights wt are
 * (k·k·ce)×cout, row (ky·k + kx)·ce + ci, so
 *   y[p, co] = Σ_{ky,kx,ci} col(p)[(ky·k + kx)·ce + ci] · wt[(ky·k+kx)·ce + ci, co]
 * where col(p) is row p of the im2col matrix (lrmf_im2col). Every kernel
 * here computes output rows [p0, p1) of the n·h·w (0 ≤ p0 ≤ p1 ≤ n·h·w)
 * and reads the whole input batch, so callers split a batch into row
 * ranges without copying halos; the products are GEMMs (lrmf_gemm_ws),
 * accumulated in T like them. Sizes: n, h, w ≥ 0, 0 ≤ cin, cout ≤ 2^20,
 * n·h·w ≤ 2^42, edge 0 or 1, else LRMF_EINVAL. work: lwork elements,
 * lwork ≥ lrmf_conv2d_work_*(cin, cout, k, edge) (a few MiB, independent
 * of n, h, w), one per concurrent call, contents ignored. */
#define LRMF_DECLARE_IMG(T, S)                                                 \
  /* Rows [p0, p1) of the im2col matrix of x (n×h×w×c): cols is             \
   * (p1−p0)×(k·k·(c+edge)), row p−p0 = the k×k neighbourhood of pixel p,    \
   * tap (ky, kx) at columns [(ky·k + kx)·(c+edge), +c) = x[b, i+ky−r,       \
   * j+kx−r, :], zero outside the image, then (edge) 1 outside, 0 inside. */ \
  int lrmf_im2col_##S(int64_t n, int64_t h, int64_t w, int64_t c, int64_t k,   \
                      int64_t edge, const T *x, int64_t p0, int64_t p1,        \
                      T *cols);                                                \
                                                                               \
  /* Workspace elements the three lrmf_conv2d_* kernels need for these       \
   * sizes (LRMF_EINVAL for bad ones). */                                     \
  int64_t lrmf_conv2d_work_##S(int64_t cin, int64_t cout, int64_t k,           \
                               int64_t edge);                                  \
                                                                               \
  /* y rows [p0, p1) = conv(x): y[p, :] = col(p)·wt. x n×h×w×cin, wt         \
   * (k·k·(cin+edge))×cout, y (n·h·w)×cout (only rows [p0, p1) written). */   \
  int lrmf_conv2d_fwd_##S(int64_t n, int64_t h, int64_t w, int64_t cin,        \
                          int64_t cout, int64_t k, int64_t edge, const T *x,   \
                          const T *wt, int64_t p0, int64_t p1, T *y, T *work,  \
                          int64_t lwork);                                      \
                                                                               \
  /* The input gradient's weights: wf (k²·cout × cin) = wt flipped in       \
   * space and transposed per tap,                                           \
   *   wf[((ky·k + kx)·cout + co)·cin + ci] =                                \
   *     wt[(((k−1−ky)·k + (k−1−kx))·(cin+edge) + ci)·cout + co]             \
   * (the edge channel's rows dropped), so dx = conv(dy, wf) without edge.   \
   * wf must not alias wt. Sizes as lrmf_conv2d_work. */                      \
  int lrmf_conv2d_flip_##S(int64_t cin, int64_t cout, int64_t k, int64_t edge, \
                           const T *wt, T *wf);                                \
                                                                               \
  /* Input gradient of lrmf_conv2d_fwd for upstream dy ((n·h·w)×cout), rows  \
   * [p0, p1) of dx ((n·h·w)×cin):                                          \
   *   dx[q, ci] = Σ_{p, tap: p + off(tap) = q} dy[p, :]·wt[(tap, ci), :]ᵀ    \
   * computed as the convolution of dy with the weights flipped in space and \
   * transposed per tap (the edge channel's rows do not enter). */            \
  int lrmf_conv2d_bwd_data_##S(int64_t n, int64_t h, int64_t w, int64_t cin,   \
                               int64_t cout, int64_t k, int64_t edge,          \
                               const T *dy, const T *wt, int64_t p0,           \
                               int64_t p1, T *dx, T *work, int64_t lwork);     \
                                                                               \
  /* Weight gradient of lrmf_conv2d_fwd over pixels [p0, p1):                \
   *   dw = Σ_{p0 ≤ p < p1} col(p)ᵀ dy[p, :]   dw (k·k·(cin+edge))×cout (out; \
   * p0 == p1 zeroes it). x n×h×w×cin, dy (n·h·w)×cout. */                   \
  int lrmf_conv2d_bwd_filter_##S(int64_t n, int64_t h, int64_t w, int64_t cin, \
                                 int64_t cout, int64_t k, int64_t edge,        \
                                 const T *x, const T *dy, int64_t p0,          \
                                 int64_t p1, T *dw, T *work, int64_t lwork);   \
                                                                               \
  /* Squeeze (Glow's squeeze2d): x n×h×w×c → y n×(h/2)×(w/2)×(4c),           \
   *   y[b, i, j, ci·4 + dy·2 + dx] = x[b, 2i+dy, 2j+dx, ci].                \
   * h and w even, c ≤ 2^20, else LRMF_EINVAL. y must not alias x. */        \
  int lrmf_squeeze_##S(int64_t n, int64_t h, int64_t w, int64_t c,             \
                       const T *x, T *y);                                      \
                                                                               \
  /* Inverse of lrmf_squeeze (and its transpose, so also its backward):      \
   * y n×(h/2)×(w/2)×(4c) → x n×h×w×c; h, w, c are x's. Same rules. */        \
  int lrmf_unsqueeze_##S(int64_t n, int64_t h, int64_t w, int64_t c,           \
                         const T *y, T *x);

LRMF_DECLARE_IMG(float, f32)
LRMF_DECLARE_IMG(double, f64)

#undef LRMF_DECLARE_IMG

#ifdef __cplusplus
}
#endif

#endif /* LRMF_H */

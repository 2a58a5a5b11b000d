/*
 * test_kernels.c — plain-C tests of the CPU kernels (no framework).
 *
 * Every kernel, in f32 and f64, is compared with a naive double-precision
 * computation on pseudo-random inputs, and its EINVAL paths are checked
 * (including that a rejected call writes nothing). Prints one line per
 * kernel and type, then "N passed, N failed"; exits non-zero on failure.
 *
 * The typed test bodies are written once: this file includes itself with
 * TK_T/TK_S defined, the way csrc/cpu/lrmf_cpu.c includes kernels.inc.
 */
#ifndef TK_T /* ---- untyped part: helpers, then the two instantiations ---- */

#include "lrmf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Uniform in [-1, 1) from a 64-bit LCG (Knuth's MMIX constants). */
static double rnd(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(*s >> 11) * 0x1.0p-53 * 2.0 - 1.0;
}

/* |got − want| ≤ tol·(1 + scale), where scale bounds the magnitudes that
 * went into want (e.g. Σ|terms| of a sum), so one tolerance per type fits
 * every kernel. NaN never passes. */
static int near(double got, double want, double tol, double scale) {
  return fabs(got - want) <= tol * (1.0 + fabs(scale));
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  return p;
}

/* Count a failed check; print the first few with their location. */
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      if (errs < 5)                                                            \
        printf("    %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      errs++;                                                                  \
    }                                                                          \
  } while (0)

#define TK_SENTINEL 12345.0

#define TK_CAT_(a, b) a##_##b
#define TK_CAT(a, b) TK_CAT_(a, b)
#define K(name) TK_CAT(lrmf_##name, TK_S)    /* kernel under test */
#define TEST(name) TK_CAT(test_##name, TK_S) /* its test */

#define TK_T float
#define TK_S f32
#define TK_EPS 1.1920929e-07
#include "test_kernels.c" /* this file, typed part */
#undef TK_T
#undef TK_S
#undef TK_EPS

#define TK_T double
#define TK_S f64
#define TK_EPS 2.220446049250313e-16
#include "test_kernels.c" /* this file, typed part */
#undef TK_T
#undef TK_S
#undef TK_EPS

typedef int (*test_fn)(void);

int main(void) {
  static const struct {
    const char *name;
    test_fn f32, f64;
  } tests[] = {
#define ENTRY(n) {#n, test_##n##_f32, test_##n##_f64}
      ENTRY(gemm),       ENTRY(bias_add),    ENTRY(bias_grad),
      ENTRY(relu_fwd),   ENTRY(relu_bwd),    ENTRY(tanh_fwd),
      ENTRY(tanh_bwd),   ENTRY(gauss_logp),  ENTRY(gauss_bwd),
      ENTRY(logdet_acc), ENTRY(affine_fwd),  ENTRY(affine_inv),
      ENTRY(adam),       ENTRY(axpy),        ENTRY(fill),
      ENTRY(dot),        ENTRY(sum),         ENTRY(gather_rows),
#undef ENTRY
  };
  int passed = 0, failed = 0;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    for (int ty = 0; ty < 2; ty++) {
      const int errs = ty == 0 ? tests[i].f32() : tests[i].f64();
      printf("%-12s %s: %s", tests[i].name, ty == 0 ? "f32" : "f64",
             errs ? "FAIL" : "ok");
      if (errs)
        printf(" (%d failed checks)", errs);
      printf("\n");
      if (errs)
        failed++;
      else
        passed++;
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

#else /* ---- typed part, included once per element type ---- */

#define T TK_T
#define TOL (64.0 * TK_EPS)

static T *TK_CAT(rand_buf, TK_S)(size_t n, uint64_t *seed) {
  T *p = xmalloc(n * sizeof(T));
  for (size_t i = 0; i < n; i++)
    p[i] = (T)rnd(seed);
  return p;
}
#define RAND(n) TK_CAT(rand_buf, TK_S)((size_t)(n), &seed)

static T *TK_CAT(const_buf, TK_S)(size_t n, double v) {
  T *p = xmalloc(n * sizeof(T));
  for (size_t i = 0; i < n; i++)
    p[i] = (T)v;
  return p;
}
#define CONST(n, v) TK_CAT(const_buf, TK_S)((size_t)(n), (v))

static int TK_CAT(all_equal, TK_S)(const T *p, size_t n, double v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (T)v)
      return 0;
  return 1;
}
#define UNTOUCHED(p, n) TK_CAT(all_equal, TK_S)((p), (size_t)(n), TK_SENTINEL)

static int TEST(gemm)(void) {
  int errs = 0;
  uint64_t seed = 11;
  /* Sizes around and across the 64×64 tile, plus k == 0. */
  static const int64_t sizes[][3] = {{1, 1, 1},    {3, 5, 7},    {2, 3, 0},
                                     {37, 131, 70}, {65, 64, 129}, {4, 67, 3}};
  static const double betas[] = {0.0, 1.0, -0.7};
  const double alpha = 1.3;
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    const int64_t m = sizes[si][0], n = sizes[si][1], k = sizes[si][2];
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        for (size_t bi = 0; bi < 3; bi++) {
          const double beta = betas[bi];
          const int64_t ar = ta ? k : m, ac = ta ? m : k;
          const int64_t br = tb ? n : k, bc = tb ? k : n;
          const int64_t lda = ac + 3, ldb = bc + 1, ldc = n + 2;
          T *a = RAND(ar * lda), *b = RAND(br * ldb);
          T *c = CONST(m * ldc, TK_SENTINEL);
          double *want = xmalloc((size_t)(m * n) * sizeof(double));
          double *scale = xmalloc((size_t)(m * n) * sizeof(double));
          for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
              /* beta == 0: poison C, it must not be read. */
              c[i * ldc + j] = beta == 0.0 ? (T)NAN : (T)rnd(&seed);
              double s = 0.0, sa = 0.0;
              for (int64_t p = 0; p < k; p++) {
                const double av = ta ? a[p * lda + i] : a[i * lda + p];
                const double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
                sa += fabs(av * bv);
              }
              want[i * n + j] = alpha * s;
              scale[i * n + j] = (double)(k + 4) * (fabs(alpha) * sa + 1.0);
              if (beta != 0.0) {
                want[i * n + j] += beta * (double)c[i * ldc + j];
                scale[i * n + j] += fabs(beta * (double)c[i * ldc + j]);
              }
            }
          const int rc = K(gemm)(ta, tb, m, n, k, (T)alpha, a, lda, b, ldb,
                                 (T)beta, c, ldc);
          CHECK(rc == LRMF_OK);
          int bad = 0;
          for (int64_t i = 0; i < m; i++) {
            for (int64_t j = 0; j < n; j++)
              bad += !near((double)c[i * ldc + j], want[i * n + j], TK_EPS,
                           scale[i * n + j]);
            for (int64_t j = n; j < ldc; j++) /* padding untouched */
              bad += c[i * ldc + j] != (T)TK_SENTINEL;
          }
          if (bad && errs < 5)
            printf("    gemm m=%lld n=%lld k=%lld ta=%d tb=%d beta=%g: %d bad\n",
                   (long long)m, (long long)n, (long long)k, ta, tb, beta, bad);
          CHECK(bad == 0);
          free(a);
          free(b);
          free(c);
          free(want);
          free(scale);
        }
  }

  /* EINVAL writes nothing; empty C is a no-op even with NULLs. */
  T a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 2, 3, 4, 5, 6};
  T c[4] = {(T)TK_SENTINEL, (T)TK_SENTINEL, (T)TK_SENTINEL, (T)TK_SENTINEL};
  CHECK(K(gemm)(0, 0, -1, 2, 3, 1, a, 3, b, 2, 0, c, 2) == LRMF_EINVAL);
  CHECK(K(gemm)(0, 0, 2, -2, 3, 1, a, 3, b, 2, 0, c, 2) == LRMF_EINVAL);
  CHECK(K(gemm)(0, 0, 2, 2, -3, 1, a, 3, b, 2, 0, c, 2) == LRMF_EINVAL);
  CHECK(K(gemm)(0, 0, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2) == LRMF_EINVAL);
  CHECK(K(gemm)(1, 0, 2, 2, 3, 1, a, 1, b, 2, 0, c, 2) == LRMF_EINVAL);
  CHECK(K(gemm)(0, 0, 2, 2, 3, 1, a, 3, b, 1, 0, c, 2) == LRMF_EINVAL);
  CHECK(K(gemm)(0, 1, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2) == LRMF_EINVAL);
  CHECK(K(gemm)(0, 0, 2, 2, 3, 1, a, 3, b, 2, 0, c, 1) == LRMF_EINVAL);
  CHECK(K(gemm)(0, 0, 2, 2, 3, 1, NULL, 3, b, 2, 0, c, 2) == LRMF_EINVAL);
  CHECK(K(gemm)(0, 0, 2, 2, 3, 1, a, 3, NULL, 2, 0, c, 2) == LRMF_EINVAL);
  CHECK(K(gemm)(0, 0, 2, 2, 3, 1, a, 3, b, 2, 0, NULL, 2) == LRMF_EINVAL);
  CHECK(UNTOUCHED(c, 4));
  CHECK(K(gemm)(0, 0, 0, 2, 3, 1, NULL, 3, NULL, 2, 0, NULL, 2) == LRMF_OK);
  CHECK(K(gemm)(0, 0, 2, 0, 3, 1, NULL, 3, NULL, 0, 0, NULL, 0) == LRMF_OK);
  CHECK(K(gemm)(0, 0, 2, 2, 0, 1, NULL, 0, NULL, 2, 0, c, 2) == LRMF_OK);
  CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 0);
  return errs;
}

static int TEST(bias_add)(void) {
  int errs = 0;
  uint64_t seed = 12;
  const int64_t n = 7, d = 131;
  T *bias = RAND(d), *y = RAND(n * d), *y0 = xmalloc((size_t)(n * d) * sizeof(T));
  memcpy(y0, y, (size_t)(n * d) * sizeof(T));
  CHECK(K(bias_add)(n, d, bias, y) == LRMF_OK);
  for (int64_t i = 0; i < n * d; i++)
    CHECK(near(y[i], (double)y0[i] + (double)bias[i % d], TOL, 2.0));
  T *s = CONST(n * d, TK_SENTINEL);
  CHECK(K(bias_add)(-1, d, bias, s) == LRMF_EINVAL);
  CHECK(K(bias_add)(n, -1, bias, s) == LRMF_EINVAL);
  CHECK(K(bias_add)(n, d, NULL, s) == LRMF_EINVAL);
  CHECK(K(bias_add)(n, d, bias, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n * d));
  CHECK(K(bias_add)(0, d, NULL, NULL) == LRMF_OK);
  free(bias);
  free(y);
  free(y0);
  free(s);
  return errs;
}

static int TEST(bias_grad)(void) {
  int errs = 0;
  uint64_t seed = 13;
  const int64_t n = 33, d = 150; /* d crosses the 64-column chunk */
  T *dy = RAND(n * d), *db = CONST(d, TK_SENTINEL);
  CHECK(K(bias_grad)(n, d, dy, db) == LRMF_OK);
  for (int64_t j = 0; j < d; j++) {
    double s = 0.0, sa = 0.0;
    for (int64_t i = 0; i < n; i++) {
      s += dy[i * d + j];
      sa += fabs((double)dy[i * d + j]);
    }
    CHECK(near(db[j], s, TOL, sa));
  }
  /* Double accumulation: 1 + 2⁻²⁵ rounds back to 1 in float, so a float
   * accumulator would return 1 instead of 1 + (n−1)·2⁻²⁵. */
  for (int64_t i = 0; i < n * d; i++)
    dy[i] = i < d ? (T)1 : (T)0x1.0p-25;
  CHECK(K(bias_grad)(n, d, dy, db) == LRMF_OK);
  CHECK(TK_CAT(all_equal, TK_S)(db, (size_t)d, (double)(T)(1.0 + (double)(n - 1) * 0x1.0p-25)));
  T *s = CONST(d, TK_SENTINEL);
  CHECK(K(bias_grad)(-1, d, dy, s) == LRMF_EINVAL);
  CHECK(K(bias_grad)(n, -1, dy, s) == LRMF_EINVAL);
  CHECK(K(bias_grad)(n, d, NULL, s) == LRMF_EINVAL);
  CHECK(K(bias_grad)(n, d, dy, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, d));
  /* An empty batch sums to zero. */
  CHECK(K(bias_grad)(0, d, NULL, s) == LRMF_OK);
  CHECK(TK_CAT(all_equal, TK_S)(s, (size_t)d, 0.0));
  CHECK(K(bias_grad)(n, 0, NULL, NULL) == LRMF_OK);
  free(dy);
  free(db);
  free(s);
  return errs;
}

static int TEST(relu_fwd)(void) {
  int errs = 0;
  uint64_t seed = 14;
  const int64_t n = 1001;
  T *x = RAND(n), *y = CONST(n, TK_SENTINEL);
  x[0] = 0;
  CHECK(K(relu_fwd)(n, x, y) == LRMF_OK);
  for (int64_t i = 0; i < n; i++)
    CHECK(y[i] == (x[i] > 0 ? x[i] : (T)0));
  CHECK(K(relu_fwd)(n, x, x) == LRMF_OK); /* in place */
  for (int64_t i = 0; i < n; i++)
    CHECK(x[i] == y[i]);
  T *s = CONST(n, TK_SENTINEL);
  CHECK(K(relu_fwd)(-1, x, s) == LRMF_EINVAL);
  CHECK(K(relu_fwd)(n, NULL, s) == LRMF_EINVAL);
  CHECK(K(relu_fwd)(n, x, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n));
  CHECK(K(relu_fwd)(0, NULL, NULL) == LRMF_OK);
  free(x);
  free(y);
  free(s);
  return errs;
}

static int TEST(relu_bwd)(void) {
  int errs = 0;
  uint64_t seed = 15;
  const int64_t n = 1001;
  T *x = RAND(n), *dy = RAND(n), *dx = CONST(n, TK_SENTINEL);
  x[0] = 0;
  CHECK(K(relu_bwd)(n, x, dy, dx) == LRMF_OK);
  for (int64_t i = 0; i < n; i++)
    CHECK(dx[i] == (x[i] > 0 ? dy[i] : (T)0));
  CHECK(K(relu_bwd)(n, x, dy, dy) == LRMF_OK); /* in place */
  for (int64_t i = 0; i < n; i++)
    CHECK(dy[i] == dx[i]);
  T *s = CONST(n, TK_SENTINEL);
  CHECK(K(relu_bwd)(-1, x, dy, s) == LRMF_EINVAL);
  CHECK(K(relu_bwd)(n, NULL, dy, s) == LRMF_EINVAL);
  CHECK(K(relu_bwd)(n, x, NULL, s) == LRMF_EINVAL);
  CHECK(K(relu_bwd)(n, x, dy, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n));
  CHECK(K(relu_bwd)(0, NULL, NULL, NULL) == LRMF_OK);
  free(x);
  free(dy);
  free(dx);
  free(s);
  return errs;
}

static int TEST(tanh_fwd)(void) {
  int errs = 0;
  uint64_t seed = 16;
  const int64_t n = 1001;
  T *x = RAND(n), *y = CONST(n, TK_SENTINEL);
  for (int64_t i = 0; i < n; i++)
    x[i] *= 5; /* reach the saturated tails too */
  CHECK(K(tanh_fwd)(n, x, y) == LRMF_OK);
  for (int64_t i = 0; i < n; i++)
    CHECK(near(y[i], tanh((double)x[i]), TOL, 1.0));
  CHECK(K(tanh_fwd)(n, x, x) == LRMF_OK); /* in place */
  for (int64_t i = 0; i < n; i++)
    CHECK(x[i] == y[i]);
  T *s = CONST(n, TK_SENTINEL);
  CHECK(K(tanh_fwd)(-1, x, s) == LRMF_EINVAL);
  CHECK(K(tanh_fwd)(n, NULL, s) == LRMF_EINVAL);
  CHECK(K(tanh_fwd)(n, x, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n));
  CHECK(K(tanh_fwd)(0, NULL, NULL) == LRMF_OK);
  free(x);
  free(y);
  free(s);
  return errs;
}

static int TEST(tanh_bwd)(void) {
  int errs = 0;
  uint64_t seed = 17;
  const int64_t n = 1001;
  T *y = RAND(n), *dy = RAND(n), *dx = CONST(n, TK_SENTINEL);
  CHECK(K(tanh_bwd)(n, y, dy, dx) == LRMF_OK);
  for (int64_t i = 0; i < n; i++)
    CHECK(near(dx[i], (double)dy[i] * (1.0 - (double)y[i] * y[i]), TOL, 1.0));
  CHECK(K(tanh_bwd)(n, y, dy, dy) == LRMF_OK); /* in place */
  for (int64_t i = 0; i < n; i++)
    CHECK(dy[i] == dx[i]);
  T *s = CONST(n, TK_SENTINEL);
  CHECK(K(tanh_bwd)(-1, y, dy, s) == LRMF_EINVAL);
  CHECK(K(tanh_bwd)(n, NULL, dy, s) == LRMF_EINVAL);
  CHECK(K(tanh_bwd)(n, y, NULL, s) == LRMF_EINVAL);
  CHECK(K(tanh_bwd)(n, y, dy, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n));
  CHECK(K(tanh_bwd)(0, NULL, NULL, NULL) == LRMF_OK);
  free(y);
  free(dy);
  free(dx);
  free(s);
  return errs;
}

static int TEST(gauss_logp)(void) {
  int errs = 0;
  uint64_t seed = 18;
  static const int64_t dims[] = {1, 5, 70};
  for (size_t di = 0; di < 3; di++) {
    const int64_t n = 9, d = dims[di];
    T *x = RAND(n * d), *mu = RAND(d), *l = RAND(d * d);
    T *u = CONST(n * d, TK_SENTINEL), *logp = CONST(n, TK_SENTINEL);
    const T ld = (T)0.37;
    CHECK(K(gauss_logp)(n, d, x, mu, l, ld, u, logp) == LRMF_OK);
    for (int64_t i = 0; i < n; i++) {
      double sq = 0.0, sqs = 0.0;
      for (int64_t r = 0; r < d; r++) {
        double s = 0.0, sa = 0.0;
        for (int64_t c = 0; c < d; c++) {
          const double t = (double)l[r * d + c] * ((double)x[i * d + c] - mu[c]);
          s += t;
          sa += fabs(t);
        }
        CHECK(near(u[i * d + r], s, TOL, sa));
        sq += s * s;
        sqs += sa * sa;
      }
      const double want = -0.5 * (double)d * LRMF_LN_2PI + (double)ld - 0.5 * sq;
      CHECK(near(logp[i], want, TOL, sqs + (double)d * LRMF_LN_2PI));
    }
    T *s = CONST(n * d, TK_SENTINEL), *s2 = CONST(n, TK_SENTINEL);
    CHECK(K(gauss_logp)(-1, d, x, mu, l, ld, s, s2) == LRMF_EINVAL);
    CHECK(K(gauss_logp)(n, -1, x, mu, l, ld, s, s2) == LRMF_EINVAL);
    CHECK(K(gauss_logp)(n, d, NULL, mu, l, ld, s, s2) == LRMF_EINVAL);
    CHECK(K(gauss_logp)(n, d, x, NULL, l, ld, s, s2) == LRMF_EINVAL);
    CHECK(K(gauss_logp)(n, d, x, mu, NULL, ld, s, s2) == LRMF_EINVAL);
    CHECK(K(gauss_logp)(n, d, x, mu, l, ld, NULL, s2) == LRMF_EINVAL);
    CHECK(K(gauss_logp)(n, d, x, mu, l, ld, s, NULL) == LRMF_EINVAL);
    CHECK(UNTOUCHED(s, n * d) && UNTOUCHED(s2, n));
    /* d == 0: every sample has density exp(logdet_l). */
    CHECK(K(gauss_logp)(n, 0, NULL, NULL, NULL, ld, NULL, s2) == LRMF_OK);
    CHECK(TK_CAT(all_equal, TK_S)(s2, (size_t)n, (double)ld));
    CHECK(K(gauss_logp)(0, d, NULL, NULL, NULL, ld, NULL, NULL) == LRMF_OK);
    free(x);
    free(mu);
    free(l);
    free(u);
    free(logp);
    free(s);
    free(s2);
  }
  return errs;
}

static int TEST(gauss_bwd)(void) {
  int errs = 0;
  uint64_t seed = 19;
  static const int64_t dims[] = {1, 5, 70};
  for (size_t di = 0; di < 3; di++) {
    const int64_t n = 9, d = dims[di];
    T *x = RAND(n * d), *mu = RAND(d), *l = RAND(d * d), *u = RAND(n * d);
    T *w = RAND(n);
    T *dx = CONST(n * d, TK_SENTINEL), *dmu = CONST(d, TK_SENTINEL);
    T *dl = CONST(d * d, TK_SENTINEL);
    CHECK(K(gauss_bwd)(n, d, x, mu, l, u, w, dx, dmu, dl) == LRMF_OK);
    for (int64_t c = 0; c < d; c++) {
      double am = 0.0, ams = 0.0;
      for (int64_t i = 0; i < n; i++) {
        double g = 0.0, gs = 0.0;
        for (int64_t r = 0; r < d; r++) {
          g += (double)l[r * d + c] * u[i * d + r];
          gs += fabs((double)l[r * d + c] * u[i * d + r]);
        }
        CHECK(near(dx[i * d + c], -(double)w[i] * g, TOL, gs));
        am += (double)w[i] * g;
        ams += gs;
      }
      CHECK(near(dmu[c], am, TOL, ams));
    }
    for (int64_t r = 0; r < d; r++)
      for (int64_t c = 0; c < d; c++) {
        double s = 0.0, sa = 0.0;
        for (int64_t i = 0; i < n; i++) {
          const double t = (double)w[i] * u[i * d + r] * ((double)x[i * d + c] - mu[c]);
          s -= t;
          sa += fabs(t);
        }
        CHECK(near(dl[r * d + c], s, TOL, sa));
      }
    /* dx == NULL gives the same dmu and dl. */
    T *dmu2 = CONST(d, 0), *dl2 = CONST(d * d, 0);
    CHECK(K(gauss_bwd)(n, d, x, mu, l, u, w, NULL, dmu2, dl2) == LRMF_OK);
    CHECK(memcmp(dmu, dmu2, (size_t)d * sizeof(T)) == 0);
    CHECK(memcmp(dl, dl2, (size_t)(d * d) * sizeof(T)) == 0);

    T *s = CONST(n * d, TK_SENTINEL), *s2 = CONST(d, TK_SENTINEL);
    T *s3 = CONST(d * d, TK_SENTINEL);
    CHECK(K(gauss_bwd)(-1, d, x, mu, l, u, w, s, s2, s3) == LRMF_EINVAL);
    CHECK(K(gauss_bwd)(n, -1, x, mu, l, u, w, s, s2, s3) == LRMF_EINVAL);
    CHECK(K(gauss_bwd)(n, d, NULL, mu, l, u, w, s, s2, s3) == LRMF_EINVAL);
    CHECK(K(gauss_bwd)(n, d, x, NULL, l, u, w, s, s2, s3) == LRMF_EINVAL);
    CHECK(K(gauss_bwd)(n, d, x, mu, NULL, u, w, s, s2, s3) == LRMF_EINVAL);
    CHECK(K(gauss_bwd)(n, d, x, mu, l, NULL, w, s, s2, s3) == LRMF_EINVAL);
    CHECK(K(gauss_bwd)(n, d, x, mu, l, u, NULL, s, s2, s3) == LRMF_EINVAL);
    CHECK(K(gauss_bwd)(n, d, x, mu, l, u, w, s, NULL, s3) == LRMF_EINVAL);
    CHECK(K(gauss_bwd)(n, d, x, mu, l, u, w, s, s2, NULL) == LRMF_EINVAL);
    CHECK(UNTOUCHED(s, n * d) && UNTOUCHED(s2, d) && UNTOUCHED(s3, d * d));
    /* An empty batch sums to zero. */
    CHECK(K(gauss_bwd)(0, d, NULL, NULL, NULL, NULL, NULL, NULL, s2, s3) == LRMF_OK);
    CHECK(TK_CAT(all_equal, TK_S)(s2, (size_t)d, 0.0));
    CHECK(TK_CAT(all_equal, TK_S)(s3, (size_t)(d * d), 0.0));
    CHECK(K(gauss_bwd)(n, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL) == LRMF_OK);
    free(x);
    free(mu);
    free(l);
    free(u);
    free(w);
    free(dx);
    free(dmu);
    free(dl);
    free(dmu2);
    free(dl2);
    free(s);
    free(s2);
    free(s3);
  }
  return errs;
}

static int TEST(logdet_acc)(void) {
  int errs = 0;
  uint64_t seed = 20;
  const int64_t n = 17, d = 40;
  T *s = RAND(n * d), *ld = RAND(n), *ld0 = xmalloc((size_t)n * sizeof(T));
  memcpy(ld0, ld, (size_t)n * sizeof(T));
  CHECK(K(logdet_acc)(n, d, s, ld) == LRMF_OK);
  for (int64_t i = 0; i < n; i++) {
    double a = ld0[i], sa = fabs((double)ld0[i]);
    for (int64_t j = 0; j < d; j++) {
      a += s[i * d + j];
      sa += fabs((double)s[i * d + j]);
    }
    CHECK(near(ld[i], a, TOL, sa));
  }
  /* Double accumulation, as in bias_grad (one rounding at the end). */
  for (int64_t i = 0; i < n * d; i++)
    s[i] = i % d == 0 ? (T)1 : (T)0x1.0p-25;
  for (int64_t i = 0; i < n; i++)
    ld[i] = 0;
  CHECK(K(logdet_acc)(n, d, s, ld) == LRMF_OK);
  CHECK(TK_CAT(all_equal, TK_S)(ld, (size_t)n, (double)(T)(1.0 + (double)(d - 1) * 0x1.0p-25)));
  T *z = CONST(n, TK_SENTINEL);
  CHECK(K(logdet_acc)(-1, d, s, z) == LRMF_EINVAL);
  CHECK(K(logdet_acc)(n, -1, s, z) == LRMF_EINVAL);
  CHECK(K(logdet_acc)(n, d, NULL, z) == LRMF_EINVAL);
  CHECK(K(logdet_acc)(n, d, s, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(z, n));
  CHECK(K(logdet_acc)(0, d, NULL, NULL) == LRMF_OK);
  CHECK(K(logdet_acc)(n, 0, NULL, z) == LRMF_OK && UNTOUCHED(z, n));
  free(s);
  free(ld);
  free(ld0);
  free(z);
  return errs;
}

static int TEST(affine_fwd)(void) {
  int errs = 0;
  uint64_t seed = 21;
  const int64_t n = 13, d = 23;
  T *x = RAND(n * d), *m = RAND(d * d), *b = RAND(d);
  T *y = CONST(n * d, TK_SENTINEL), *ld = RAND(n);
  T *ld0 = xmalloc((size_t)n * sizeof(T));
  memcpy(ld0, ld, (size_t)n * sizeof(T));
  const T ldm = (T)-0.625;
  CHECK(K(affine_fwd)(n, d, x, m, b, ldm, y, ld) == LRMF_OK);
  for (int64_t i = 0; i < n; i++) {
    for (int64_t r = 0; r < d; r++) {
      double s = b[r], sa = fabs((double)b[r]);
      for (int64_t c = 0; c < d; c++) {
        s += (double)m[r * d + c] * x[i * d + c];
        sa += fabs((double)m[r * d + c] * x[i * d + c]);
      }
      CHECK(near(y[i * d + r], s, TOL, sa));
    }
    CHECK(near(ld[i], (double)ld0[i] + ldm, TOL, 2.0));
  }
  T *y2 = CONST(n * d, 0);
  CHECK(K(affine_fwd)(n, d, x, m, b, ldm, y2, NULL) == LRMF_OK);
  CHECK(memcmp(y, y2, (size_t)(n * d) * sizeof(T)) == 0);
  T *s = CONST(n * d, TK_SENTINEL), *s2 = CONST(n, TK_SENTINEL);
  CHECK(K(affine_fwd)(-1, d, x, m, b, ldm, s, s2) == LRMF_EINVAL);
  CHECK(K(affine_fwd)(n, -1, x, m, b, ldm, s, s2) == LRMF_EINVAL);
  CHECK(K(affine_fwd)(n, d, NULL, m, b, ldm, s, s2) == LRMF_EINVAL);
  CHECK(K(affine_fwd)(n, d, x, NULL, b, ldm, s, s2) == LRMF_EINVAL);
  CHECK(K(affine_fwd)(n, d, x, m, NULL, ldm, s, s2) == LRMF_EINVAL);
  CHECK(K(affine_fwd)(n, d, x, m, b, ldm, NULL, s2) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n * d) && UNTOUCHED(s2, n));
  CHECK(K(affine_fwd)(0, d, NULL, NULL, NULL, ldm, NULL, NULL) == LRMF_OK);
  /* d == 0: y is empty but the log-det still gains ldm. */
  T *z = CONST(n, 1.0);
  CHECK(K(affine_fwd)(n, 0, NULL, NULL, NULL, ldm, NULL, z) == LRMF_OK);
  CHECK(TK_CAT(all_equal, TK_S)(z, (size_t)n, (double)((T)1 + ldm)));
  free(x);
  free(m);
  free(b);
  free(y);
  free(ld);
  free(ld0);
  free(y2);
  free(s);
  free(s2);
  free(z);
  return errs;
}

static int TEST(affine_inv)(void) {
  int errs = 0;
  uint64_t seed = 22;
  const int64_t n = 13, d = 23;
  T *y = RAND(n * d), *mi = RAND(d * d), *b = RAND(d), *x = CONST(n * d, TK_SENTINEL);
  CHECK(K(affine_inv)(n, d, y, mi, b, x) == LRMF_OK);
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < d; r++) {
      double s = 0.0, sa = 0.0;
      for (int64_t c = 0; c < d; c++) {
        const double t = (double)mi[r * d + c] * ((double)y[i * d + c] - b[c]);
        s += t;
        sa += fabs(t);
      }
      CHECK(near(x[i * d + r], s, TOL, sa));
    }
  T *s = CONST(n * d, TK_SENTINEL);
  CHECK(K(affine_inv)(-1, d, y, mi, b, s) == LRMF_EINVAL);
  CHECK(K(affine_inv)(n, -1, y, mi, b, s) == LRMF_EINVAL);
  CHECK(K(affine_inv)(n, d, NULL, mi, b, s) == LRMF_EINVAL);
  CHECK(K(affine_inv)(n, d, y, NULL, b, s) == LRMF_EINVAL);
  CHECK(K(affine_inv)(n, d, y, mi, NULL, s) == LRMF_EINVAL);
  CHECK(K(affine_inv)(n, d, y, mi, b, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n * d));
  CHECK(K(affine_inv)(0, d, NULL, NULL, NULL, NULL) == LRMF_OK);
  free(y);
  free(mi);
  free(b);
  free(x);
  free(s);
  return errs;
}

static int TEST(adam)(void) {
  int errs = 0;
  uint64_t seed = 23;
  const int64_t n = 257;
  const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const double bc1 = 1.0 - pow(b1, 4), bc2 = 1.0 - pow(b2, 4);
  T *p = RAND(n), *g = RAND(n), *m = RAND(n), *v = RAND(n);
  for (int64_t i = 0; i < n; i++)
    v[i] = v[i] * v[i]; /* second moments are non-negative */
  double *p0 = xmalloc((size_t)n * sizeof(double));
  double *wp = xmalloc((size_t)n * sizeof(double));
  double *wm = xmalloc((size_t)n * sizeof(double));
  double *wv = xmalloc((size_t)n * sizeof(double));
  for (int64_t i = 0; i < n; i++) {
    p0[i] = p[i];
    wm[i] = b1 * m[i] + (1 - b1) * g[i];
    wv[i] = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
    wp[i] = p[i] - lr * (wm[i] / bc1) / (sqrt(wv[i] / bc2) + eps);
  }
  CHECK(K(adam)(n, p, g, m, v, (T)lr, (T)b1, (T)b2, (T)eps, (T)bc1, (T)bc2) == LRMF_OK);
  for (int64_t i = 0; i < n; i++) {
    CHECK(near(m[i], wm[i], TOL, 1.0));
    CHECK(near(v[i], wv[i], TOL, 1.0));
    /* Scale by the step size: the update's error is relative to it. */
    CHECK(near(p[i], wp[i], TOL, fabs(wp[i]) + fabs(wp[i] - p0[i])));
  }
  T *s = CONST(n, TK_SENTINEL), *s2 = CONST(n, TK_SENTINEL), *s3 = CONST(n, TK_SENTINEL);
  CHECK(K(adam)(-1, s, g, s2, s3, 1, 0.9f, 0.9f, 1, 1, 1) == LRMF_EINVAL);
  CHECK(K(adam)(n, NULL, g, s2, s3, 1, 0.9f, 0.9f, 1, 1, 1) == LRMF_EINVAL);
  CHECK(K(adam)(n, s, NULL, s2, s3, 1, 0.9f, 0.9f, 1, 1, 1) == LRMF_EINVAL);
  CHECK(K(adam)(n, s, g, NULL, s3, 1, 0.9f, 0.9f, 1, 1, 1) == LRMF_EINVAL);
  CHECK(K(adam)(n, s, g, s2, NULL, 1, 0.9f, 0.9f, 1, 1, 1) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n) && UNTOUCHED(s2, n) && UNTOUCHED(s3, n));
  CHECK(K(adam)(0, NULL, NULL, NULL, NULL, 1, 0.9f, 0.9f, 1, 1, 1) == LRMF_OK);
  free(p);
  free(g);
  free(m);
  free(v);
  free(p0);
  free(wp);
  free(wm);
  free(wv);
  free(s);
  free(s2);
  free(s3);
  return errs;
}

static int TEST(axpy)(void) {
  int errs = 0;
  uint64_t seed = 24;
  const int64_t n = 1001;
  T *x = RAND(n), *y = RAND(n), *y0 = xmalloc((size_t)n * sizeof(T));
  memcpy(y0, y, (size_t)n * sizeof(T));
  CHECK(K(axpy)(n, (T)-1.5, x, y) == LRMF_OK);
  for (int64_t i = 0; i < n; i++)
    CHECK(near(y[i], (double)y0[i] - 1.5 * x[i], TOL, 3.0));
  T *s = CONST(n, TK_SENTINEL);
  CHECK(K(axpy)(-1, 1, x, s) == LRMF_EINVAL);
  CHECK(K(axpy)(n, 1, NULL, s) == LRMF_EINVAL);
  CHECK(K(axpy)(n, 1, x, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n));
  CHECK(K(axpy)(0, 1, NULL, NULL) == LRMF_OK);
  free(x);
  free(y);
  free(y0);
  free(s);
  return errs;
}

static int TEST(fill)(void) {
  int errs = 0;
  const int64_t n = 1001;
  T *x = CONST(n + 1, TK_SENTINEL);
  CHECK(K(fill)(n, (T)-2.25, x) == LRMF_OK);
  CHECK(TK_CAT(all_equal, TK_S)(x, (size_t)n, -2.25));
  CHECK(x[n] == (T)TK_SENTINEL);
  CHECK(K(fill)(-1, 0, x) == LRMF_EINVAL);
  CHECK(K(fill)(n, 0, NULL) == LRMF_EINVAL);
  CHECK(TK_CAT(all_equal, TK_S)(x, (size_t)n, -2.25));
  CHECK(K(fill)(0, 0, NULL) == LRMF_OK);
  free(x);
  return errs;
}

static int TEST(dot)(void) {
  int errs = 0;
  uint64_t seed = 25;
  const int64_t n = 10007;
  T *x = RAND(n), *y = RAND(n);
  double want = 0.0, sa = 0.0, want2 = 0.0, got = TK_SENTINEL;
  for (int64_t i = 0; i < n; i++) {
    want += (double)x[i] * y[i];
    sa += fabs((double)x[i] * y[i]);
    want2 += (double)x[i] * x[i];
  }
  /* Products of floats are exact in double, so f32 matches tightly too. */
  CHECK(K(dot)(n, x, y, &got) == LRMF_OK);
  CHECK(near(got, want, 1e-12, sa));
  CHECK(K(dot)(n, x, x, &got) == LRMF_OK);
  CHECK(near(got, want2, 1e-12, want2));
  got = TK_SENTINEL;
  CHECK(K(dot)(-1, x, y, &got) == LRMF_EINVAL);
  CHECK(K(dot)(n, NULL, y, &got) == LRMF_EINVAL);
  CHECK(K(dot)(n, x, NULL, &got) == LRMF_EINVAL);
  CHECK(K(dot)(n, x, y, NULL) == LRMF_EINVAL);
  CHECK(got == TK_SENTINEL);
  CHECK(K(dot)(0, NULL, NULL, &got) == LRMF_OK && got == 0.0);
  free(x);
  free(y);
  return errs;
}

static int TEST(sum)(void) {
  int errs = 0;
  uint64_t seed = 26;
  const int64_t n = 10007;
  T *x = RAND(n);
  double want = 0.0, sa = 0.0, got = TK_SENTINEL;
  for (int64_t i = 0; i < n; i++) {
    want += x[i];
    sa += fabs((double)x[i]);
  }
  CHECK(K(sum)(n, x, &got) == LRMF_OK);
  CHECK(near(got, want, 1e-12, sa));
  /* Double accumulation: 1 + n·2⁻³⁰ is exact in double, lost in float. */
  for (int64_t i = 0; i < n; i++)
    x[i] = (T)0x1.0p-30;
  x[0] = 1;
  CHECK(K(sum)(n, x, &got) == LRMF_OK);
  CHECK(got == 1.0 + (double)(n - 1) * 0x1.0p-30);
  got = TK_SENTINEL;
  CHECK(K(sum)(-1, x, &got) == LRMF_EINVAL);
  CHECK(K(sum)(n, NULL, &got) == LRMF_EINVAL);
  CHECK(K(sum)(n, x, NULL) == LRMF_EINVAL);
  CHECK(got == TK_SENTINEL);
  CHECK(K(sum)(0, NULL, &got) == LRMF_OK && got == 0.0);
  free(x);
  return errs;
}

static int TEST(gather_rows)(void) {
  int errs = 0;
  uint64_t seed = 27;
  const int64_t rows = 11, n = 25, d = 9;
  T *src = RAND(rows * d), *dst = CONST(n * d, TK_SENTINEL);
  int32_t idx[25];
  for (int64_t i = 0; i < n; i++)
    idx[i] = (int32_t)((i * 7 + 3) % rows);
  CHECK(K(gather_rows)(n, d, src, idx, dst) == LRMF_OK);
  for (int64_t i = 0; i < n; i++)
    CHECK(memcmp(dst + i * d, src + idx[i] * d, (size_t)d * sizeof(T)) == 0);
  T *s = CONST(n * d, TK_SENTINEL);
  CHECK(K(gather_rows)(-1, d, src, idx, s) == LRMF_EINVAL);
  CHECK(K(gather_rows)(n, -1, src, idx, s) == LRMF_EINVAL);
  CHECK(K(gather_rows)(n, d, NULL, idx, s) == LRMF_EINVAL);
  CHECK(K(gather_rows)(n, d, src, NULL, s) == LRMF_EINVAL);
  CHECK(K(gather_rows)(n, d, src, idx, NULL) == LRMF_EINVAL);
  idx[n - 1] = -1; /* a negative index is rejected before any write */
  CHECK(K(gather_rows)(n, d, src, idx, s) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n * d));
  CHECK(K(gather_rows)(0, d, NULL, NULL, NULL) == LRMF_OK);
  free(src);
  free(dst);
  free(s);
  return errs;
}

#undef RAND
#undef CONST
#undef UNTOUCHED
#undef TOL
#undef T

#endif /* TK_T */

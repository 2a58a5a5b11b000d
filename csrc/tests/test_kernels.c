/*
 * test_kernels.c — plain-C tests of the CPU kernels (no framework).
 *
 * Every kernel, in f32 and f64, is compared with a naive double-precision
 * computation on pseudo-random inputs, and its EINVAL paths are checked
 * (including that a rejected call writes nothing). Prints one line per
 * kernel and type, then "N passed, N failed"; exits non-zero on failure.
 * Inputs come from the seed LRMF_TEST_SEED (default 1; see tk_seed).
 *
 * The typed test bodies are written once: this file includes itself with
 * TK_T/TK_S defined, the way csrc/cpu/lrmf_cpu.c includes kernels.inc.
 */
#ifndef TK_T /* ---- untyped part: helpers, then the two instantiations ---- */

#include "lrmf.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The run's seed N: LRMF_TEST_SEED (a decimal uint64, or "random" for one
 * from the clock) or 1, printed with the replay command when a test fails,
 * like the Go tests' internal/testseed. Test `id` draws from the stream
 * tk_seed(id); N = 1 gives each test the stream it always had (id). */
static uint64_t tk_run_seed = 1;

static uint64_t tk_seed(uint64_t id) {
  return id + (tk_run_seed - 1) * 0x9E3779B97F4A7C15ULL;
}

/* Reads LRMF_TEST_SEED into tk_run_seed; 0 if it is malformed. */
static int tk_seed_from_env(void) {
  const char *v = getenv("LRMF_TEST_SEED");
  if (v == NULL || *v == '\0')
    return 1;
  if (strcmp(v, "random") == 0) {
    tk_run_seed = (uint64_t)time(NULL) * 2654435761ULL ^ (uint64_t)clock();
    return 1;
  }
  char *end;
  errno = 0;
  const unsigned long long u = strtoull(v, &end, 10);
  if (errno != 0 || *end != '\0' || v[0] == '-' || v[0] == '+')
    return 0;
  tk_run_seed = (uint64_t)u;
  return 1;
}

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
      ENTRY(adam),       ENTRY(axpy),        ENTRY(mul),
      ENTRY(fill),
      ENTRY(dot),        ENTRY(sum),         ENTRY(gather_rows),
      ENTRY(bias_relu_fwd), ENTRY(bias_relu_bwd), ENTRY(copy_cols),
      ENTRY(add_cols),   ENTRY(coupling_fwd), ENTRY(coupling_inv),
      ENTRY(coupling_bwd), ENTRY(odefunc_fwd), ENTRY(odefunc_vjp),
      ENTRY(ode_rk4),    ENTRY(ode_dopri5), ENTRY(gemm_ep), ENTRY(sum_squares),
      ENTRY(actnorm_fwd), ENTRY(actnorm_inv), ENTRY(actnorm_bwd), ENTRY(lu_solve),
      ENTRY(conv2d),     ENTRY(squeeze),
#undef ENTRY
  };
  if (!tk_seed_from_env()) {
    fprintf(stderr, "LRMF_TEST_SEED=%s: want a decimal uint64 or \"random\"\n",
            getenv("LRMF_TEST_SEED"));
    return 2;
  }
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
  if (failed)
    printf("random inputs drawn from seed %llu; replay with "
           "LRMF_TEST_SEED=%llu\n",
           (unsigned long long)tk_run_seed, (unsigned long long)tk_run_seed);
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
  uint64_t seed = tk_seed(11);
  /* Sizes around and across the micro-tile (12×32 f32, 12×16 f64), its
   * short-panel copies, the skinny path (n ≤ 12), the blocks (MC 144/72,
   * KC 512, NC 1024/512; 24×64×160/64 without workspace), plus k == 0.
   * ws = 1 runs lrmf_gemm_ws with exactly lrmf_gemm_work elements. */
  static const int64_t sizes[][3] = {
      {1, 1, 1},     {3, 5, 7},     {2, 3, 0},       {37, 131, 70},
      {65, 64, 129}, {4, 67, 3},    {13, 33, 2},     {145, 67, 513},
      {25, 1025, 9}, {37, 7, 600},  {4, 300, 520},   {9, 12, 70},
      {30, 161, 1030}};
  static const double betas[] = {0.0, 1.0, -0.7};
  const double alpha = 1.3;
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    const int64_t m = sizes[si][0], n = sizes[si][1], k = sizes[si][2];
    for (int ws = 0; ws < 2; ws++)
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
            const int64_t lw = K(gemm_work)(m, n, k);
            CHECK(lw >= 0);
            T *w = CONST(lw, NAN);
            const int rc =
                ws ? K(gemm_ws)(ta, tb, m, n, k, (T)alpha, a, lda, b, ldb,
                                (T)beta, c, ldc, w, lw)
                   : K(gemm)(ta, tb, m, n, k, (T)alpha, a, lda, b, ldb, (T)beta,
                             c, ldc);
            CHECK(rc == LRMF_OK);
            free(w);
            int bad = 0;
            for (int64_t i = 0; i < m; i++) {
              for (int64_t j = 0; j < n; j++)
                bad += !near((double)c[i * ldc + j], want[i * n + j], TK_EPS,
                             scale[i * n + j]);
              for (int64_t j = n; j < ldc; j++) /* padding untouched */
                bad += c[i * ldc + j] != (T)TK_SENTINEL;
            }
            if (bad && errs < 5)
              printf("    gemm%s m=%lld n=%lld k=%lld ta=%d tb=%d beta=%g: %d "
                     "bad\n",
                     ws ? "_ws" : "", (long long)m, (long long)n, (long long)k,
                     ta, tb, beta, bad);
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

  /* Workspace: sizes, too little or NULL work is EINVAL and writes nothing,
   * none is needed for empty C or k == 0. */
  CHECK(K(gemm_work)(-1, 2, 3) == LRMF_EINVAL);
  CHECK(K(gemm_work)(2, 0, 3) == 0 && K(gemm_work)(2, 2, 0) == 0);
  const int64_t lw = K(gemm_work)(2, 2, 3);
  CHECK(lw > 0);
  CHECK(K(gemm_work)(1 << 20, 1 << 20, 1 << 20) ==
        K(gemm_work)(1 << 21, 1 << 21, 1 << 21)); /* bounded by the blocks */
  CHECK(K(gemm_work)(1 << 20, 1 << 20, 1 << 20) < ((int64_t)1 << 21));
  T *w = CONST(lw, 0);
  for (int i = 0; i < 4; i++)
    c[i] = (T)TK_SENTINEL;
  CHECK(K(gemm_ws)(0, 0, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2, w, lw - 1) ==
        LRMF_EINVAL);
  CHECK(K(gemm_ws)(0, 0, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2, NULL, lw) ==
        LRMF_EINVAL);
  CHECK(K(gemm_ws)(0, 0, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2, w, lw) ==
        LRMF_EINVAL);
  CHECK(K(gemm_ws)(0, 0, 2, 2, 3, 1, NULL, 3, b, 2, 0, c, 2, w, lw) ==
        LRMF_EINVAL);
  CHECK(UNTOUCHED(c, 4));
  CHECK(K(gemm_ws)(0, 0, 0, 2, 3, 1, NULL, 3, NULL, 2, 0, NULL, 2, NULL, 0) ==
        LRMF_OK);
  CHECK(K(gemm_ws)(0, 0, 2, 2, 0, 1, NULL, 0, NULL, 2, 0, c, 2, NULL, 0) ==
        LRMF_OK);
  CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 0);
  /* {1,2,3;4,5,6}·{1,2;3,4;5,6} = {22,28;49,64}. */
  CHECK(K(gemm_ws)(0, 0, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2, w, lw) == LRMF_OK);
  CHECK(c[0] == 22 && c[1] == 28 && c[2] == 49 && c[3] == 64);
  free(w);
  return errs;
}

/* lrmf_gemm_ep_ws: the epilogue's steps in order on a small exact case,
 * its argument rules, and m == 0 zeroing the column sums. */
static int TEST(gemm_ep)(void) {
  int errs = 0;
  const T a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 2, 3, 4, 5, 6};
  const T bias[2] = {-30, 1}, mask[4] = {1, -1, 0, 1};
  T c[4];
  double cs[2] = {TK_SENTINEL, TK_SENTINEL};
  const int64_t lw = K(gemm_work)(2, 2, 3);
  T *w = CONST(lw, 0);
  /* {22,28;49,64} + bias = {-8,29;19,65}; relu = {0,29;19,65}. */
  CHECK(K(gemm_ep_ws)(0, 0, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2, bias, 1, NULL, 0,
                      cs, w, lw) == LRMF_OK);
  CHECK(c[0] == 0 && c[1] == 29 && c[2] == 19 && c[3] == 65);
  CHECK(cs[0] == 19 && cs[1] == 94);
  /* The mask keeps (0,0) and (1,1) only: {22,0;0,64}. */
  CHECK(K(gemm_ep_ws)(0, 0, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2, NULL, 0, mask, 2,
                      cs, w, lw) == LRMF_OK);
  CHECK(c[0] == 22 && c[1] == 0 && c[2] == 0 && c[3] == 64);
  CHECK(cs[0] == 22 && cs[1] == 64);
  for (int i = 0; i < 4; i++)
    c[i] = (T)TK_SENTINEL;
  CHECK(K(gemm_ep_ws)(0, 0, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2, NULL, 0, mask, 1,
                      cs, w, lw) == LRMF_EINVAL); /* ldm < n */
  CHECK(K(gemm_ep_ws)(0, 0, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2, NULL, 0, NULL, 0,
                      cs, w, lw - 1) == LRMF_EINVAL);
  CHECK(UNTOUCHED(c, 4));
  cs[0] = cs[1] = TK_SENTINEL;
  CHECK(K(gemm_ep_ws)(0, 0, 0, 2, 3, 1, NULL, 3, NULL, 2, 0, NULL, 2, NULL, 0,
                      NULL, 0, cs, NULL, 0) == LRMF_OK);
  CHECK(cs[0] == 0 && cs[1] == 0);
  free(w);
  return errs;
}

/* lrmf_sum_squares: segments clipped to [lo, hi), empty ones, the rules. */
static int TEST(sum_squares)(void) {
  int errs = 0;
  const T x[5] = {1, 2, 3, 4, 5};
  const int64_t ends[3] = {1, 1, 4}, bad[2] = {2, 1};
  double out[3] = {TK_SENTINEL, TK_SENTINEL, TK_SENTINEL};
  CHECK(K(sum_squares)(0, 4, x, 3, ends, out) == LRMF_OK);
  CHECK(out[0] == 1 && out[1] == 0 && out[2] == 29);
  CHECK(K(sum_squares)(2, 5, x, 3, ends, out) == LRMF_OK);
  CHECK(out[0] == 0 && out[1] == 0 && out[2] == 25);
  out[0] = TK_SENTINEL;
  CHECK(K(sum_squares)(3, 2, x, 3, ends, out) == LRMF_EINVAL);
  CHECK(K(sum_squares)(0, 2, x, 2, bad, out) == LRMF_EINVAL);
  CHECK(K(sum_squares)(-1, 2, x, 3, ends, out) == LRMF_EINVAL);
  CHECK(out[0] == TK_SENTINEL);
  /* A long segment: every element counts (1 + 2 + ... over 100003 ones). */
  const int64_t n = 100003, one[1] = {n};
  T *y = CONST(n, 1);
  CHECK(K(sum_squares)(0, n, y, 1, one, out) == LRMF_OK);
  CHECK(out[0] == (double)n);
  free(y);
  return errs;
}

static int TEST(bias_add)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(12);
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
  uint64_t seed = tk_seed(13);
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
  uint64_t seed = tk_seed(14);
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
  uint64_t seed = tk_seed(15);
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
  uint64_t seed = tk_seed(16);
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
  uint64_t seed = tk_seed(17);
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
  uint64_t seed = tk_seed(18);
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
  uint64_t seed = tk_seed(19);
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
  uint64_t seed = tk_seed(20);
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
  uint64_t seed = tk_seed(21);
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
  uint64_t seed = tk_seed(22);
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
  uint64_t seed = tk_seed(23);
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
  CHECK(K(adam)(n, p, g, m, v, lr, b1, b2, eps, bc1, bc2) == LRMF_OK);
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
  uint64_t seed = tk_seed(24);
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

/* out = a⊙b, also in place (out = a, out = b): each element read before it
 * is written. */
static int TEST(mul)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(25);
  const int64_t n = 1001;
  T *a = RAND(n), *b = RAND(n), *out = CONST(n, TK_SENTINEL);
  CHECK(K(mul)(n, a, b, out) == LRMF_OK);
  for (int64_t i = 0; i < n; i++)
    CHECK(out[i] == (T)(a[i] * b[i]));
  CHECK(K(mul)(n, a, out, out) == LRMF_OK); /* out = b */
  for (int64_t i = 0; i < n; i++)
    CHECK(out[i] == (T)(a[i] * (T)(a[i] * b[i])));
  T *a0 = xmalloc((size_t)n * sizeof(T));
  memcpy(a0, a, (size_t)n * sizeof(T));
  CHECK(K(mul)(n, a, b, a) == LRMF_OK); /* out = a */
  for (int64_t i = 0; i < n; i++)
    CHECK(a[i] == (T)(a0[i] * b[i]));
  free(a0);
  T *s = CONST(n, TK_SENTINEL);
  CHECK(K(mul)(-1, a, b, s) == LRMF_EINVAL);
  CHECK(K(mul)(n, NULL, b, s) == LRMF_EINVAL);
  CHECK(K(mul)(n, a, NULL, s) == LRMF_EINVAL);
  CHECK(K(mul)(n, a, b, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n));
  CHECK(K(mul)(0, NULL, NULL, NULL) == LRMF_OK);
  free(a);
  free(b);
  free(out);
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
  uint64_t seed = tk_seed(25);
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
  uint64_t seed = tk_seed(26);
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
  uint64_t seed = tk_seed(27);
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

static int TEST(bias_relu_fwd)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(28);
  const int64_t n = 7, d = 131;
  T *bias = RAND(d), *y = RAND(n * d), *y0 = xmalloc((size_t)(n * d) * sizeof(T));
  y[3] = -bias[3]; /* y + bias == 0 exactly */
  memcpy(y0, y, (size_t)(n * d) * sizeof(T));
  CHECK(K(bias_relu_fwd)(n, d, bias, y) == LRMF_OK);
  for (int64_t i = 0; i < n * d; i++) {
    const double v = (double)y0[i] + (double)bias[i % d];
    CHECK(near(y[i], v > 0 ? v : 0.0, TOL, 2.0));
    CHECK(y[i] >= 0);
  }
  CHECK(y[3] == 0);
  T *s = CONST(n * d, TK_SENTINEL);
  CHECK(K(bias_relu_fwd)(-1, d, bias, s) == LRMF_EINVAL);
  CHECK(K(bias_relu_fwd)(n, -1, bias, s) == LRMF_EINVAL);
  CHECK(K(bias_relu_fwd)(n, d, NULL, s) == LRMF_EINVAL);
  CHECK(K(bias_relu_fwd)(n, d, bias, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n * d));
  CHECK(K(bias_relu_fwd)(0, d, NULL, NULL) == LRMF_OK);
  CHECK(K(bias_relu_fwd)(n, 0, NULL, NULL) == LRMF_OK);
  free(bias);
  free(y);
  free(y0);
  free(s);
  return errs;
}

static int TEST(bias_relu_bwd)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(29);
  const int64_t n = 33, d = 150; /* d crosses the 64-column chunk */
  T *y = RAND(n * d), *dy = RAND(n * d);
  T *dz = CONST(n * d, TK_SENTINEL), *db = CONST(d, TK_SENTINEL);
  for (int64_t i = 0; i < n * d; i += 7)
    y[i] = 0; /* the boundary passes no gradient */
  CHECK(K(bias_relu_bwd)(n, d, y, dy, dz, db) == LRMF_OK);
  for (int64_t i = 0; i < n * d; i++)
    CHECK(dz[i] == (y[i] > 0 ? dy[i] : (T)0));
  for (int64_t j = 0; j < d; j++) {
    double s = 0.0, sa = 0.0;
    for (int64_t i = 0; i < n; i++) {
      s += dz[i * d + j];
      sa += fabs((double)dz[i * d + j]);
    }
    CHECK(near(db[j], s, TOL, sa));
  }
  /* In place (dz == dy) gives the same dz and db. */
  T *db2 = CONST(d, TK_SENTINEL);
  CHECK(K(bias_relu_bwd)(n, d, y, dy, dy, db2) == LRMF_OK);
  CHECK(memcmp(dy, dz, (size_t)(n * d) * sizeof(T)) == 0);
  CHECK(memcmp(db, db2, (size_t)d * sizeof(T)) == 0);
  /* Double accumulation, as for bias_grad. */
  for (int64_t i = 0; i < n * d; i++) {
    y[i] = 1;
    dy[i] = i < d ? (T)1 : (T)0x1.0p-25;
  }
  CHECK(K(bias_relu_bwd)(n, d, y, dy, dz, db) == LRMF_OK);
  CHECK(TK_CAT(all_equal, TK_S)(db, (size_t)d, (double)(T)(1.0 + (double)(n - 1) * 0x1.0p-25)));
  T *s = CONST(n * d, TK_SENTINEL), *s2 = CONST(d, TK_SENTINEL);
  CHECK(K(bias_relu_bwd)(-1, d, y, dy, s, s2) == LRMF_EINVAL);
  CHECK(K(bias_relu_bwd)(n, -1, y, dy, s, s2) == LRMF_EINVAL);
  CHECK(K(bias_relu_bwd)(n, d, NULL, dy, s, s2) == LRMF_EINVAL);
  CHECK(K(bias_relu_bwd)(n, d, y, NULL, s, s2) == LRMF_EINVAL);
  CHECK(K(bias_relu_bwd)(n, d, y, dy, NULL, s2) == LRMF_EINVAL);
  CHECK(K(bias_relu_bwd)(n, d, y, dy, s, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n * d) && UNTOUCHED(s2, d));
  /* An empty batch zeroes db. */
  CHECK(K(bias_relu_bwd)(0, d, NULL, NULL, NULL, s2) == LRMF_OK);
  CHECK(TK_CAT(all_equal, TK_S)(s2, (size_t)d, 0.0));
  CHECK(K(bias_relu_bwd)(n, 0, NULL, NULL, NULL, NULL) == LRMF_OK);
  free(y);
  free(dy);
  free(dz);
  free(db);
  free(db2);
  free(s);
  free(s2);
  return errs;
}

static int TEST(copy_cols)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(30);
  const int64_t n = 11, d = 9;
  T *src = RAND(n * d);
  static const int64_t cols[][2] = {{0, 9}, {0, 1}, {2, 4}, {8, 1}, {5, 4}};
  for (size_t ci = 0; ci < sizeof cols / sizeof cols[0]; ci++) {
    const int64_t c0 = cols[ci][0], k = cols[ci][1];
    T *dst = CONST(n * k + 1, TK_SENTINEL);
    CHECK(K(copy_cols)(n, d, c0, k, src, dst) == LRMF_OK);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < k; j++)
        CHECK(dst[i * k + j] == src[i * d + c0 + j]);
    CHECK(dst[n * k] == (T)TK_SENTINEL);
    free(dst);
  }
  T *s = CONST(n * d, TK_SENTINEL);
  CHECK(K(copy_cols)(-1, d, 0, 2, src, s) == LRMF_EINVAL);
  CHECK(K(copy_cols)(n, -1, 0, 0, src, s) == LRMF_EINVAL);
  CHECK(K(copy_cols)(n, d, -1, 2, src, s) == LRMF_EINVAL);
  CHECK(K(copy_cols)(n, d, 0, -2, src, s) == LRMF_EINVAL);
  CHECK(K(copy_cols)(n, d, 6, 4, src, s) == LRMF_EINVAL);
  CHECK(K(copy_cols)(n, d, 0, 10, src, s) == LRMF_EINVAL);
  CHECK(K(copy_cols)(n, d, INT64_MAX, 2, src, s) == LRMF_EINVAL);
  CHECK(K(copy_cols)(n, d, 10, 0, NULL, NULL) == LRMF_EINVAL);
  CHECK(K(copy_cols)(n, d, 0, 2, NULL, s) == LRMF_EINVAL);
  CHECK(K(copy_cols)(n, d, 0, 2, src, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n * d));
  CHECK(K(copy_cols)(n, d, 9, 0, NULL, NULL) == LRMF_OK);
  CHECK(K(copy_cols)(0, d, 1, 2, NULL, NULL) == LRMF_OK);
  free(src);
  free(s);
  return errs;
}

static int TEST(add_cols)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(31);
  const int64_t n = 11, d = 9;
  static const int64_t cols[][2] = {{0, 9}, {0, 1}, {2, 4}, {8, 1}, {5, 4}};
  for (size_t ci = 0; ci < sizeof cols / sizeof cols[0]; ci++) {
    const int64_t c0 = cols[ci][0], k = cols[ci][1];
    T *src = RAND(n * k), *dst = RAND(n * d), *dst0 = xmalloc((size_t)(n * d) * sizeof(T));
    memcpy(dst0, dst, (size_t)(n * d) * sizeof(T));
    CHECK(K(add_cols)(n, d, c0, k, src, dst) == LRMF_OK);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < d; j++) {
        const int in = j >= c0 && j < c0 + k;
        if (in)
          CHECK(near(dst[i * d + j], (double)dst0[i * d + j] + src[i * k + j - c0], TOL, 2.0));
        else
          CHECK(dst[i * d + j] == dst0[i * d + j]);
      }
    free(src);
    free(dst);
    free(dst0);
  }
  T *src = RAND(n * d), *s = CONST(n * d, TK_SENTINEL);
  CHECK(K(add_cols)(-1, d, 0, 2, src, s) == LRMF_EINVAL);
  CHECK(K(add_cols)(n, -1, 0, 0, src, s) == LRMF_EINVAL);
  CHECK(K(add_cols)(n, d, -1, 2, src, s) == LRMF_EINVAL);
  CHECK(K(add_cols)(n, d, 0, -2, src, s) == LRMF_EINVAL);
  CHECK(K(add_cols)(n, d, 6, 4, src, s) == LRMF_EINVAL);
  CHECK(K(add_cols)(n, d, INT64_MAX, 2, src, s) == LRMF_EINVAL);
  CHECK(K(add_cols)(n, d, 0, 2, NULL, s) == LRMF_EINVAL);
  CHECK(K(add_cols)(n, d, 0, 2, src, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n * d));
  CHECK(K(add_cols)(n, d, 9, 0, NULL, NULL) == LRMF_OK);
  CHECK(K(add_cols)(0, d, 1, 2, NULL, NULL) == LRMF_OK);
  free(src);
  free(s);
  return errs;
}

/* Coupling shapes {d, t0, dt} and the scale kinds, shared by the three
 * coupling tests; the naive scale is the textbook formula in double. */
static const int64_t TK_CAT(cpl_shapes, TK_S)[][3] = {
    {2, 0, 1}, {2, 1, 1}, {5, 0, 2}, {5, 3, 2}, {5, 1, 3}, {4, 2, 0}};
#define CPL_SHAPES TK_CAT(cpl_shapes, TK_S)
#define CPL_NSHAPES (sizeof CPL_SHAPES / sizeof CPL_SHAPES[0])
#define CPL_BOUND 3.0

#ifndef TK_CPL_ONCE
#define TK_CPL_ONCE
/* s(r), ln s and ∂ln s/∂r of kind in double, directly from the definitions. */
static double cpl_scale(int kind, double bound, double r, double *lns,
                        double *dlns) {
  if (kind == LRMF_SCALE_EXP) {
    const double th = tanh(r / bound);
    *lns = bound * th;
    *dlns = 1.0 - th * th;
    return exp(*lns);
  }
  const double s = 1.0 / (1.0 + exp(-(r + 2.0)));
  *lns = log(s);
  *dlns = 1.0 - s;
  return s;
}
#endif

/* x n×d, h n×2dt with r in ±6 so the exp bound (3) saturates. */
static void TK_CAT(cpl_inputs, TK_S)(int64_t n, int64_t d, int64_t dt, T **x,
                                     T **h, uint64_t *seed) {
  *x = TK_CAT(rand_buf, TK_S)((size_t)(n * d), seed);
  *h = TK_CAT(rand_buf, TK_S)((size_t)(n * 2 * dt), seed);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < dt; j++)
      (*h)[i * 2 * dt + dt + j] *= 6;
}
#define CPL_INPUTS(n, d, dt, x, h) TK_CAT(cpl_inputs, TK_S)((n), (d), (dt), (x), (h), &seed)

static int TEST(coupling_fwd)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(32);
  const int64_t n = 9;
  for (int kind = LRMF_SCALE_EXP; kind <= LRMF_SCALE_SIGMOID; kind++)
    for (size_t si = 0; si < CPL_NSHAPES; si++) {
      const int64_t d = CPL_SHAPES[si][0], t0 = CPL_SHAPES[si][1], dt = CPL_SHAPES[si][2];
      T *x, *h;
      CPL_INPUTS(n, d, dt, &x, &h);
      T *y = CONST(n * d, TK_SENTINEL), *ld = RAND(n), *ld0 = xmalloc((size_t)n * sizeof(T));
      memcpy(ld0, ld, (size_t)n * sizeof(T));
      CHECK(K(coupling_fwd)(n, d, t0, dt, kind, (T)CPL_BOUND, x, h, y, ld) == LRMF_OK);
      for (int64_t i = 0; i < n; i++) {
        double acc = 0.0, acca = 0.0;
        for (int64_t j = 0; j < d; j++) {
          if (j < t0 || j >= t0 + dt) {
            CHECK(y[i * d + j] == x[i * d + j]);
            continue;
          }
          double lns, dlns;
          const double mu = h[i * 2 * dt + j - t0], r = h[i * 2 * dt + dt + j - t0];
          const double s = cpl_scale(kind, CPL_BOUND, r, &lns, &dlns);
          const double want = (double)x[i * d + j] * s + mu;
          CHECK(near(y[i * d + j], want, TOL, fabs((double)x[i * d + j] * s) + fabs(mu)));
          acc += lns;
          acca += fabs(lns);
        }
        CHECK(near(ld[i], (double)ld0[i] + acc, TOL, fabs((double)ld0[i]) + acca));
      }
      /* NULL logdet, and in place (y == x): the same y. */
      T *y2 = xmalloc((size_t)(n * d) * sizeof(T));
      memcpy(y2, x, (size_t)(n * d) * sizeof(T));
      CHECK(K(coupling_fwd)(n, d, t0, dt, kind, (T)CPL_BOUND, y2, h, y2, NULL) == LRMF_OK);
      CHECK(memcmp(y, y2, (size_t)(n * d) * sizeof(T)) == 0);
      free(x);
      free(h);
      free(y);
      free(y2);
      free(ld);
      free(ld0);
    }

  /* ln s accumulates in double: 40 steps of 2⁻²⁶ are lost one by one in a
   * float 1 but not in a double sum (exp kind, ln s = tanh(r) ≈ r). */
  {
    const int64_t d = 40;
    T *x = CONST(d, 1), *h = CONST(2 * d, 0), *y = CONST(d, 0), *ld = CONST(1, 1);
    for (int64_t j = 0; j < d; j++)
      h[d + j] = (T)0x1.0p-26;
    CHECK(K(coupling_fwd)(1, d, 0, d, LRMF_SCALE_EXP, 1, x, h, y, ld) == LRMF_OK);
    CHECK(ld[0] == (T)(1.0 + 40.0 * 0x1.0p-26));
    free(x);
    free(h);
    free(y);
    free(ld);
  }

  /* Argument errors write nothing; the bound matters only for exp. */
  T *x = RAND(6), *h = RAND(6), *s = CONST(6, TK_SENTINEL), *s2 = CONST(2, TK_SENTINEL);
  const int e = LRMF_SCALE_EXP, g = LRMF_SCALE_SIGMOID;
  CHECK(K(coupling_fwd)(-1, 3, 0, 1, e, 1, x, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, -3, 0, 1, e, 1, x, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, -1, 1, e, 1, x, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, 0, -1, e, 1, x, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, 2, 2, e, 1, x, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, INT64_MAX, 1, e, 1, x, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, 0, 1, 0, 1, x, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, 0, 1, 3, 1, x, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, 0, 1, e, 0, x, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, 0, 1, e, -1, x, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, 0, 1, e, (T)NAN, x, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(0, 3, 0, 1, e, 0, NULL, NULL, NULL, NULL) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, 0, 1, e, 1, NULL, h, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, 0, 1, e, 1, x, NULL, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_fwd)(2, 3, 0, 1, e, 1, x, h, NULL, s2) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, 6) && UNTOUCHED(s2, 2));
  CHECK(K(coupling_fwd)(2, 3, 0, 1, g, 0, x, h, s, s2) == LRMF_OK);
  CHECK(K(coupling_fwd)(0, 3, 0, 1, g, 0, NULL, NULL, NULL, NULL) == LRMF_OK);
  CHECK(K(coupling_fwd)(2, 0, 0, 0, e, 1, NULL, NULL, NULL, NULL) == LRMF_OK);
  /* dt == 0 needs no h: y = x, logdet unchanged. */
  T *s3 = CONST(2, 0.5);
  CHECK(K(coupling_fwd)(2, 3, 1, 0, e, 1, x, NULL, s, s3) == LRMF_OK);
  CHECK(memcmp(s, x, 6 * sizeof(T)) == 0 && s3[0] == (T)0.5 && s3[1] == (T)0.5);
  free(x);
  free(h);
  free(s);
  free(s2);
  free(s3);
  return errs;
}

static int TEST(coupling_inv)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(33);
  const int64_t n = 9;
  for (int kind = LRMF_SCALE_EXP; kind <= LRMF_SCALE_SIGMOID; kind++)
    for (size_t si = 0; si < CPL_NSHAPES; si++) {
      const int64_t d = CPL_SHAPES[si][0], t0 = CPL_SHAPES[si][1], dt = CPL_SHAPES[si][2];
      T *y, *h;
      CPL_INPUTS(n, d, dt, &y, &h);
      T *x = CONST(n * d, TK_SENTINEL), *y2 = CONST(n * d, TK_SENTINEL);
      CHECK(K(coupling_inv)(n, d, t0, dt, kind, (T)CPL_BOUND, y, h, x) == LRMF_OK);
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
          if (j < t0 || j >= t0 + dt) {
            CHECK(x[i * d + j] == y[i * d + j]);
            continue;
          }
          double lns, dlns;
          const double mu = h[i * 2 * dt + j - t0], r = h[i * 2 * dt + dt + j - t0];
          const double s = cpl_scale(kind, CPL_BOUND, r, &lns, &dlns);
          const double want = ((double)y[i * d + j] - mu) / s;
          CHECK(near(x[i * d + j], want, TOL, (fabs((double)y[i * d + j]) + fabs(mu)) / s));
        }
      /* The forward of the inverse gives y back. */
      CHECK(K(coupling_fwd)(n, d, t0, dt, kind, (T)CPL_BOUND, x, h, y2, NULL) == LRMF_OK);
      for (int64_t i = 0; i < n * d; i++)
        CHECK(near(y2[i], y[i], TOL, 2.0));
      /* In place (x == y). */
      CHECK(K(coupling_inv)(n, d, t0, dt, kind, (T)CPL_BOUND, y, h, y) == LRMF_OK);
      CHECK(memcmp(x, y, (size_t)(n * d) * sizeof(T)) == 0);
      free(x);
      free(y);
      free(y2);
      free(h);
    }
  T *y = RAND(6), *h = RAND(6), *s = CONST(6, TK_SENTINEL);
  const int e = LRMF_SCALE_EXP;
  CHECK(K(coupling_inv)(-1, 3, 0, 1, e, 1, y, h, s) == LRMF_EINVAL);
  CHECK(K(coupling_inv)(2, -3, 0, 1, e, 1, y, h, s) == LRMF_EINVAL);
  CHECK(K(coupling_inv)(2, 3, -1, 1, e, 1, y, h, s) == LRMF_EINVAL);
  CHECK(K(coupling_inv)(2, 3, 0, -1, e, 1, y, h, s) == LRMF_EINVAL);
  CHECK(K(coupling_inv)(2, 3, 1, 3, e, 1, y, h, s) == LRMF_EINVAL);
  CHECK(K(coupling_inv)(2, 3, 0, 1, 7, 1, y, h, s) == LRMF_EINVAL);
  CHECK(K(coupling_inv)(2, 3, 0, 1, e, 0, y, h, s) == LRMF_EINVAL);
  CHECK(K(coupling_inv)(2, 3, 0, 1, e, 1, NULL, h, s) == LRMF_EINVAL);
  CHECK(K(coupling_inv)(2, 3, 0, 1, e, 1, y, NULL, s) == LRMF_EINVAL);
  CHECK(K(coupling_inv)(2, 3, 0, 1, e, 1, y, h, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, 6));
  CHECK(K(coupling_inv)(0, 3, 0, 1, e, 1, NULL, NULL, NULL) == LRMF_OK);
  CHECK(K(coupling_inv)(2, 3, 3, 0, LRMF_SCALE_SIGMOID, -1, y, NULL, s) == LRMF_OK);
  CHECK(memcmp(s, y, 6 * sizeof(T)) == 0);
  free(y);
  free(h);
  free(s);
  return errs;
}

static int TEST(coupling_bwd)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(34);
  const int64_t n = 9;
  for (int kind = LRMF_SCALE_EXP; kind <= LRMF_SCALE_SIGMOID; kind++)
    for (size_t si = 0; si < CPL_NSHAPES; si++) {
      const int64_t d = CPL_SHAPES[si][0], t0 = CPL_SHAPES[si][1], dt = CPL_SHAPES[si][2];
      T *x, *h;
      CPL_INPUTS(n, d, dt, &x, &h);
      T *dy = RAND(n * d), *wl = RAND(n);
      T *dx = CONST(n * d, TK_SENTINEL), *dh = CONST(n * 2 * dt, TK_SENTINEL);
      CHECK(K(coupling_bwd)(n, d, t0, dt, kind, (T)CPL_BOUND, x, h, dy, wl, dx, dh) == LRMF_OK);
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
          if (j < t0 || j >= t0 + dt) {
            CHECK(dx[i * d + j] == dy[i * d + j]);
            continue;
          }
          const int64_t jj = j - t0;
          double lns, dlns;
          const double r = h[i * 2 * dt + dt + jj];
          const double s = cpl_scale(kind, CPL_BOUND, r, &lns, &dlns);
          const double g = dy[i * d + j], xv = x[i * d + j];
          CHECK(near(dx[i * d + j], g * s, TOL, fabs(g * s)));
          CHECK(dh[i * 2 * dt + jj] == dy[i * d + j]);
          const double want = g * xv * s * dlns + (double)wl[i] * dlns;
          CHECK(near(dh[i * 2 * dt + dt + jj], want,
                     TOL, fabs(g * xv * s * dlns) + fabs((double)wl[i] * dlns)));
        }
      /* dx == NULL gives the same dh; dx == dy (in place) the same dx. */
      T *dh2 = CONST(n * 2 * dt, TK_SENTINEL);
      CHECK(K(coupling_bwd)(n, d, t0, dt, kind, (T)CPL_BOUND, x, h, dy, wl, NULL, dh2) == LRMF_OK);
      CHECK(memcmp(dh, dh2, (size_t)(n * 2 * dt) * sizeof(T)) == 0);
      CHECK(K(coupling_bwd)(n, d, t0, dt, kind, (T)CPL_BOUND, x, h, dy, wl, dy, dh2) == LRMF_OK);
      CHECK(memcmp(dh, dh2, (size_t)(n * 2 * dt) * sizeof(T)) == 0);
      CHECK(memcmp(dx, dy, (size_t)(n * d) * sizeof(T)) == 0);
      free(x);
      free(h);
      free(dy);
      free(wl);
      free(dx);
      free(dh);
      free(dh2);
    }
  /* ∂ln s/∂r far in the tails: 1/cosh² for exp, sigmoid(−z) for sigmoid,
   * both tiny but accurate where 1 − tanh² or 1 − s would cancel to 0. */
  {
    T x[2] = {1, 1}, h[4] = {0, 0, 30, 30}, dy[2] = {0, 0}, wl[1] = {1}, dh[4];
    CHECK(K(coupling_bwd)(1, 2, 0, 2, LRMF_SCALE_EXP, 1, x, h, dy, wl, NULL, dh) == LRMF_OK);
    const double c = cosh(30.0);
    CHECK(fabs((double)dh[2] * (c * c) - 1.0) < 1e-5);
    CHECK(dh[2] == dh[3]);
    CHECK(K(coupling_bwd)(1, 2, 0, 2, LRMF_SCALE_SIGMOID, 0, x, h, dy, wl, NULL, dh) == LRMF_OK);
    CHECK(fabs((double)dh[2] / exp(-32.0) - 1.0) < 1e-5);
  }
  T *x = RAND(6), *h = RAND(6), *dy = RAND(6), *wl = RAND(2);
  T *s = CONST(6, TK_SENTINEL), *s2 = CONST(6, TK_SENTINEL);
  const int e = LRMF_SCALE_EXP;
  CHECK(K(coupling_bwd)(-1, 3, 0, 1, e, 1, x, h, dy, wl, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_bwd)(2, -3, 0, 1, e, 1, x, h, dy, wl, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_bwd)(2, 3, -1, 1, e, 1, x, h, dy, wl, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_bwd)(2, 3, 0, -1, e, 1, x, h, dy, wl, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_bwd)(2, 3, 3, 1, e, 1, x, h, dy, wl, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_bwd)(2, 3, 0, 1, -2, 1, x, h, dy, wl, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_bwd)(2, 3, 0, 1, e, -3, x, h, dy, wl, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_bwd)(2, 3, 0, 1, e, 1, NULL, h, dy, wl, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_bwd)(2, 3, 0, 1, e, 1, x, NULL, dy, wl, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_bwd)(2, 3, 0, 1, e, 1, x, h, NULL, wl, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_bwd)(2, 3, 0, 1, e, 1, x, h, dy, NULL, s, s2) == LRMF_EINVAL);
  CHECK(K(coupling_bwd)(2, 3, 0, 1, e, 1, x, h, dy, wl, s, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, 6) && UNTOUCHED(s2, 6));
  CHECK(K(coupling_bwd)(0, 3, 0, 1, e, 1, NULL, NULL, NULL, NULL, NULL, NULL) == LRMF_OK);
  /* dt == 0: only dx = dy, nothing else needed. */
  CHECK(K(coupling_bwd)(2, 3, 1, 0, e, 1, NULL, NULL, dy, NULL, s, NULL) == LRMF_OK);
  CHECK(memcmp(s, dy, 6 * sizeof(T)) == 0);
  free(x);
  free(h);
  free(dy);
  free(wl);
  free(s);
  free(s2);
  return errs;
}


/* ---- FFJORD ------------------------------------------------------------- */

/* Λ = Σ az·f + Σ atr·tr by the f64 forward kernel on double inputs (the
 * reference the VJP is differenced against). */
static double TK_CAT(ode_loss, TK_S)(int64_t n, int64_t nl, const int64_t *dims,
                                     const double *th, const double *z,
                                     int64_t k, const double *eps,
                                     const double *az, const double *atr,
                                     double *work, int64_t lw) {
  const int64_t d = dims[nl - 1];
  double *f = xmalloc((size_t)(n * d) * sizeof(double));
  double *tr = xmalloc((size_t)n * sizeof(double));
  lrmf_odefunc_fwd_f64(n, nl, dims, th, 0.3, z, k, eps, f, tr, work, lw, LRMF_ODE_AUTO);
  double s = 0.0;
  for (int64_t i = 0; i < n * d; i++)
    s += az[i] * f[i];
  for (int64_t i = 0; i < n; i++)
    s += atr[i] * tr[i];
  free(f);
  free(tr);
  return s;
}

static int TEST(odefunc_fwd)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(41);
  static const int64_t dims[] = {3, 4, 5, 2};
  const int64_t nl = 4, n = 3, d = 2;
  const int64_t np = K(odefunc_nparams)(nl, dims);
  CHECK(np == 3 * 4 + 4 + 4 * 5 + 5 + 5 * 2 + 2);
  const int64_t lw = K(odefunc_work)(nl, dims, d);
  CHECK(lw > 0 && K(odefunc_work)(nl, dims, 0) > 0);
  double *work = xmalloc((size_t)lw * sizeof(double));
  T *th = RAND(np), *z = RAND(n * d), *f = CONST(n * d, TK_SENTINEL);
  T *tr = CONST(n, TK_SENTINEL), *tr2 = CONST(n, TK_SENTINEL);
  CHECK(K(odefunc_fwd)(n, nl, dims, th, (T)0.3, z, 0, NULL, f, tr, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
  /* Naive forward in double, and the trace by central differences. */
  double x[3], a1[4], a2[5], out[2];
#define ODE_NAIVE(zz)                                                          \
  do {                                                                         \
    x[0] = (zz)[0];                                                            \
    x[1] = (zz)[1];                                                            \
    x[2] = 0.3;                                                                \
    for (int j = 0; j < 4; j++) {                                              \
      a1[j] = th[12 + j];                                                      \
      for (int q = 0; q < 3; q++)                                              \
        a1[j] += x[q] * th[q * 4 + j];                                         \
      a1[j] = tanh(a1[j]);                                                     \
    }                                                                          \
    for (int j = 0; j < 5; j++) {                                              \
      a2[j] = th[16 + 20 + j];                                                 \
      for (int q = 0; q < 4; q++)                                              \
        a2[j] += a1[q] * th[16 + q * 5 + j];                                   \
      a2[j] = tanh(a2[j]);                                                     \
    }                                                                          \
    for (int j = 0; j < 2; j++) {                                              \
      out[j] = th[41 + 10 + j];                                                \
      for (int q = 0; q < 5; q++)                                              \
        out[j] += a2[q] * th[41 + q * 2 + j];                                  \
    }                                                                          \
  } while (0)
  for (int64_t i = 0; i < n; i++) {
    double zz[2] = {z[i * d], z[i * d + 1]};
    ODE_NAIVE(zz);
    CHECK(near(f[i * d], out[0], TOL, 4.0) && near(f[i * d + 1], out[1], TOL, 4.0));
    double trfd = 0.0;
    for (int j = 0; j < 2; j++) {
      const double z0 = zz[j];
      zz[j] = z0 + 1e-5;
      ODE_NAIVE(zz);
      const double p = out[j];
      zz[j] = z0 - 1e-5;
      ODE_NAIVE(zz);
      trfd += (p - out[j]) / 2e-5;
      zz[j] = z0;
    }
    CHECK(near(tr[i], trfd, 1e-6, 4.0));
  }
#undef ODE_NAIVE
  /* Hutchinson with the D unit vectors as probes gives tr/D. */
  T *eps = CONST(n * d * d, 0.0);
  for (int64_t i = 0; i < n; i++)
    for (int64_t p = 0; p < d; p++)
      eps[(i * d + p) * d + p] = 1;
  CHECK(K(odefunc_fwd)(n, nl, dims, th, (T)0.3, z, d, eps, f, tr2, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
  for (int64_t i = 0; i < n; i++)
    CHECK(near(tr2[i], (double)tr[i] / (double)d, TOL, 4.0));
  /* EINVAL writes nothing. */
  T *s = CONST(n * d, TK_SENTINEL), *s2 = CONST(n, TK_SENTINEL);
  static const int64_t bad1[] = {3, 4, 3}, bad2[] = {3, 0, 2};
  CHECK(K(odefunc_fwd)(-1, nl, dims, th, 0, z, 0, NULL, s, s2, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, 1, dims, th, 0, z, 0, NULL, s, s2, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, 3, bad1, th, 0, z, 0, NULL, s, s2, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, 3, bad2, th, 0, z, 0, NULL, s, s2, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, nl, NULL, th, 0, z, 0, NULL, s, s2, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, nl, dims, th, 0, z, -1, NULL, s, s2, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, nl, dims, th, 0, z, 2, NULL, s, s2, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, nl, dims, th, 0, z, 0, NULL, s, s2, work, 1, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, nl, dims, th, 0, z, 0, NULL, s, s2, NULL, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, nl, dims, NULL, 0, z, 0, NULL, s, s2, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, nl, dims, th, 0, NULL, 0, NULL, s, s2, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, nl, dims, th, 0, z, 0, NULL, NULL, s2, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(odefunc_fwd)(n, nl, dims, th, 0, z, 0, NULL, s, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n * d) && UNTOUCHED(s2, n));
  CHECK(K(odefunc_fwd)(0, nl, dims, NULL, 0, NULL, 0, NULL, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
  free(work);
  free(th);
  free(z);
  free(f);
  free(tr);
  free(tr2);
  free(eps);
  free(s);
  free(s2);
  return errs;
}

static int TEST(odefunc_vjp)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(43);
  static const int64_t dims[] = {4, 6, 5, 3};
  const int64_t nl = 4, n = 2, d = 3;
  const int64_t np = K(odefunc_nparams)(nl, dims);
  for (int64_t k = 0; k <= 2; k += 2) {
    const int64_t lw = K(odefunc_work)(nl, dims, k);
    double *work = xmalloc((size_t)lw * sizeof(double));
    T *th = RAND(np), *z = RAND(n * d), *eps = RAND(n * 2 * d);
    T *az = RAND(n * d), *atr = RAND(n);
    T *gz = CONST(n * d, TK_SENTINEL), *gth = CONST(np, TK_SENTINEL);
    CHECK(K(odefunc_vjp)(n, nl, dims, th, (T)0.3, z, k, k ? eps : NULL, az, atr, gz, gth, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
    /* Central differences of the f64 forward on the same (rounded) values. */
    double *thd = xmalloc((size_t)np * sizeof(double)), *zd = xmalloc((size_t)(n * d) * sizeof(double));
    double *ed = xmalloc((size_t)(n * 2 * d) * sizeof(double));
    double *azd = xmalloc((size_t)(n * d) * sizeof(double)), atrd[2];
    for (int64_t i = 0; i < np; i++)
      thd[i] = th[i];
    for (int64_t i = 0; i < n * d; i++) {
      zd[i] = z[i];
      azd[i] = az[i];
    }
    for (int64_t i = 0; i < n * 2 * d; i++)
      ed[i] = eps[i];
    atrd[0] = atr[0];
    atrd[1] = atr[1];
    const double st = 1e-6;
    for (int which = 0; which < 2; which++) {
      double *v = which ? thd : zd;
      const T *g = which ? gth : gz;
      const int64_t len = which ? np : n * d;
      for (int64_t i = 0; i < len; i++) {
        const double v0 = v[i];
        v[i] = v0 + st;
        const double lp = TK_CAT(ode_loss, TK_S)(n, nl, dims, thd, zd, k, k ? ed : NULL, azd, atrd, work, lw);
        v[i] = v0 - st;
        const double lm = TK_CAT(ode_loss, TK_S)(n, nl, dims, thd, zd, k, k ? ed : NULL, azd, atrd, work, lw);
        v[i] = v0;
        const double want = (lp - lm) / (2 * st);
        CHECK(near(g[i], want, TOL > 1e-6 ? TOL : 1e-6, want));
      }
    }
    T *s = CONST(np, TK_SENTINEL);
    CHECK(K(odefunc_vjp)(n, nl, dims, th, 0, z, k, k ? eps : NULL, az, atr, gz, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
    CHECK(K(odefunc_vjp)(n, nl, dims, th, 0, z, k, k ? eps : NULL, NULL, atr, gz, s, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
    CHECK(K(odefunc_vjp)(n, nl, dims, th, 0, z, k, k ? eps : NULL, az, NULL, gz, s, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
    CHECK(K(odefunc_vjp)(n, nl, dims, th, 0, z, k, k ? eps : NULL, az, atr, NULL, s, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
    CHECK(UNTOUCHED(s, np));
    /* n == 0 zeroes gtheta. */
    CHECK(K(odefunc_vjp)(0, nl, dims, NULL, 0, NULL, k, NULL, NULL, NULL, NULL, s, NULL, 0, LRMF_ODE_AUTO) == LRMF_OK);
    CHECK(TK_CAT(all_equal, TK_S)(s, (size_t)np, 0.0));
    free(s);
    free(work);
    free(th);
    free(z);
    free(eps);
    free(az);
    free(atr);
    free(gz);
    free(gth);
    free(thd);
    free(zd);
    free(ed);
    free(azd);
  }
  return errs;
}

/* dims {2, 1}: f = a·z + b (θ = [a, 0, b]) has z(t) = (z0 + b/a)e^{a t} − b/a
 * and logdet = a·(t1 − t0). */
static int TEST(ode_rk4)(void) {
  int errs = 0;
  static const int64_t dims[] = {2, 1};
  const double a = 0.7, b = -0.3;
  T th[3] = {(T)a, 0, (T)b}, z[2] = {1, (T)-0.5}, z1[2], ld[2];
  const int64_t lw = K(odefunc_work)(2, dims, 0);
  double *work = xmalloc((size_t)lw * sizeof(double));
  int64_t nfe = -1;
  CHECK(K(ode_rk4)(2, 2, dims, th, 0.0, 1.0, 100, z, 0, NULL, z1, ld, &nfe, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
  CHECK(nfe == 800);
  for (int i = 0; i < 2; i++) {
    const double ta = (double)(T)a, tb = (double)(T)b;
    CHECK(near(z1[i], ((double)z[i] + tb / ta) * exp(ta) - tb / ta, 1e-9 > TOL ? 1e-9 : TOL, 3.0));
    CHECK(near(ld[i], ta, TOL, 1.0));
  }
  T s[2] = {(T)TK_SENTINEL, (T)TK_SENTINEL};
  CHECK(K(ode_rk4)(2, 2, dims, th, 0.0, 1.0, 0, z, 0, NULL, s, ld, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(ode_rk4)(2, 2, dims, th, 0.0, NAN, 4, z, 0, NULL, s, ld, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(ode_rk4)(2, 2, dims, th, 0.0, 1.0, 4, NULL, 0, NULL, s, ld, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(ode_rk4)(2, 2, dims, th, 0.0, 1.0, 4, z, 0, NULL, s, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, 2));
  /* Gradients through the solve: one step multiplies z by R(x) = 1 + x +
   * x²/2 + x³/6 + x⁴/24 (x = a·h), so ∂z1/∂z0 = R^steps; ∂logdet/∂a =
   * t1 − t0. The saved states start at z0. */
  {
    double states[2 * 100];
    T a1[2] = {1, -2}, ald[2] = {1, 1}, gz[2], gth[3];
    int64_t nvjp = -1;
    CHECK(K(ode_rk4_save)(2, 2, dims, th, 0.0, 1.0, 100, z, 0, NULL, z1, ld, states, &nfe, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
    CHECK(states[0] == (double)z[0] && states[100] == (double)z[1]);
    CHECK(K(ode_rk4_bwd)(2, 2, dims, th, 0.0, 1.0, 100, 0, NULL, states, a1, ald, gz, gth, &nfe, &nvjp, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
    CHECK(nfe == 7 * 100 * 2 && nvjp == 4 * 100 * 2);
    const double x = (double)(T)a / 100;
    const double r = pow(1 + x + x * x / 2 + x * x * x / 6 + x * x * x * x / 24, 100);
    CHECK(near(gz[0], r, TOL, 3.0) && near(gz[1], -2 * r, TOL, 6.0));
    T zero[2] = {0, 0};
    CHECK(K(ode_rk4_bwd)(2, 2, dims, th, 0.0, 1.0, 100, 0, NULL, states, zero, ald, gz, gth, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
    CHECK(gz[0] == 0 && gz[1] == 0 && near(gth[0], 2.0, TOL, 2.0) && gth[1] == 0 && gth[2] == 0);
    CHECK(K(ode_rk4_save)(2, 2, dims, th, 0.0, 1.0, 100, z, 0, NULL, z1, ld, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
    CHECK(K(ode_rk4_bwd)(2, 2, dims, th, 0.0, 1.0, 100, 0, NULL, NULL, a1, ald, gz, gth, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
    CHECK(K(ode_rk4_bwd)(2, 2, dims, th, 0.0, 1.0, 100, 0, NULL, states, a1, ald, gz, NULL, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
    /* n == 0 zeroes gtheta. */
    gth[0] = 7;
    CHECK(K(ode_rk4_bwd)(0, 2, dims, th, 0.0, 1.0, 100, 0, NULL, NULL, NULL, NULL, NULL, gth, NULL, NULL, NULL, 0, LRMF_ODE_AUTO) == LRMF_OK);
    CHECK(gth[0] == 0);
  }
  free(work);
  return errs;
}

static int TEST(ode_dopri5)(void) {
  int errs = 0;
  static const int64_t dims[] = {2, 1};
  const double a = 0.7, b = -0.3;
  T th[3] = {(T)a, 0, (T)b}, z[2] = {1, (T)-0.5}, z1[2], ld[2];
  const int64_t lw = K(odefunc_work)(2, dims, 0);
  double *work = xmalloc((size_t)lw * sizeof(double));
  int64_t nfe = -1, acc = -1;
  CHECK(K(ode_dopri5)(2, 2, dims, th, 1.0, -1.0, 1e-12, 1e-12, 0.1, 10000, z, 0, NULL, z1, ld, &nfe, &acc, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
  CHECK(acc > 0 && nfe >= 2 + 6 * acc && (nfe - 2) % 6 == 0);
  for (int i = 0; i < 2; i++) {
    const double ta = (double)(T)a, tb = (double)(T)b;
    CHECK(near(z1[i], ((double)z[i] + tb / ta) * exp(-2 * ta) - tb / ta, 1e-9 > TOL ? 1e-9 : TOL, 3.0));
    CHECK(near(ld[i], -2 * ta, TOL, 2.0));
  }
  /* Typed failures. */
  CHECK(K(ode_dopri5)(2, 2, dims, th, 0, 1, 1e-12, 1e-12, 1e-4, 1, z, 0, NULL, z1, ld, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_ODE_MAXSTEPS);
  CHECK(K(ode_dopri5)(2, 2, dims, th, 0, 1, 1e-300, 0, 0.1, 1000, z, 0, NULL, z1, ld, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_ODE_UNDERFLOW);
  T thn[3] = {(T)a, (T)NAN, (T)b};
  CHECK(K(ode_dopri5)(2, 2, dims, thn, 0, 1, 1e-6, 1e-6, 0.1, 1000, z, 0, NULL, z1, ld, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_ODE_NONFINITE);
  /* EINVAL. */
  T s[2] = {(T)TK_SENTINEL, (T)TK_SENTINEL};
  CHECK(K(ode_dopri5)(2, 2, dims, th, 0, 1, 0, 0, 0.1, 10, z, 0, NULL, s, ld, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(ode_dopri5)(2, 2, dims, th, 0, 1, -1, 1e-6, 0.1, 10, z, 0, NULL, s, ld, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(ode_dopri5)(2, 2, dims, th, 0, 1, 1e-6, 1e-6, 0, 10, z, 0, NULL, s, ld, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(ode_dopri5)(2, 2, dims, th, 0, 1, 1e-6, 1e-6, 0.1, 0, z, 0, NULL, s, ld, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(K(ode_dopri5)(2, 2, dims, th, 0, INFINITY, 1e-6, 1e-6, 0.1, 10, z, 0, NULL, s, ld, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, 2));
  /* t0 == t1: identity, logdet 0, no evaluations. */
  CHECK(K(ode_dopri5)(2, 2, dims, th, 0.5, 0.5, 1e-6, 1e-6, 0.1, 10, z, 0, NULL, z1, ld, &nfe, &acc, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
  CHECK(z1[0] == z[0] && z1[1] == z[1] && ld[0] == 0 && ld[1] == 0 && nfe == 0 && acc == 0);
  /* Gradients through the recorded accepted steps: ∂z1/∂z0 ≈ e^{a(t1−t0)}
   * at tight tolerance; ∂logdet/∂a = t1 − t0 exactly. */
  {
    enum { MS = 2000 };
    double *tape = xmalloc(2 * MS * 3 * sizeof(double));
    int64_t nacc[2] = {-1, -1}, nvjp = -1;
    T a1[2] = {1, -2}, ald[2] = {0, 0}, gz[2], gth[3];
    CHECK(K(ode_dopri5_save)(2, 2, dims, th, 1.0, -1.0, 1e-12, 1e-12, 0.1, MS, z, 0, NULL, z1, ld, tape, nacc, &nfe, &acc, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
    CHECK(nacc[0] > 0 && nacc[0] + nacc[1] == acc && tape[0] == 1.0 && tape[2] == (double)z[0]);
    CHECK(K(ode_dopri5_bwd)(2, 2, dims, th, MS, 0, NULL, tape, nacc, a1, ald, gz, gth, &nfe, &nvjp, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
    CHECK(nfe == 11 * acc && nvjp == 6 * acc);
    const double e = exp(-2 * (double)(T)a);
    CHECK(near(gz[0], e, 1e-9 > TOL ? 1e-9 : TOL, 1.0) && near(gz[1], -2 * e, 1e-9 > TOL ? 1e-9 : TOL, 1.0));
    T zero[2] = {0, 0}, one[2] = {1, 1};
    CHECK(K(ode_dopri5_bwd)(2, 2, dims, th, MS, 0, NULL, tape, nacc, zero, one, gz, gth, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_OK);
    CHECK(gz[0] == 0 && gz[1] == 0 && near(gth[0], -4.0, TOL, 4.0));
    nacc[1] = MS + 1;
    CHECK(K(ode_dopri5_bwd)(2, 2, dims, th, MS, 0, NULL, tape, nacc, a1, ald, gz, gth, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
    CHECK(K(ode_dopri5_save)(2, 2, dims, th, 1.0, -1.0, 1e-6, 1e-6, 0.1, MS, z, 0, NULL, z1, ld, NULL, nacc, NULL, NULL, work, lw, LRMF_ODE_AUTO) == LRMF_EINVAL);
    free(tape);
  }
  free(work);
  return errs;
}

/* ---- Glow: ActNorm and the LU solve ----------------------------------------
 * Naive references in double from the definitions: s = exp(r) or
 * softplus(r + 2) = log1p(exp(r + 2)). Widths 3 and 70 (above the kernels'
 * 64-column chunk). */
#ifndef TK_AN_ONCE
#define TK_AN_ONCE
static double an_scale(int kind, double r, double *lns, double *dlns) {
  if (kind == LRMF_ACTNORM_EXP) {
    *lns = r;
    *dlns = 1;
    return exp(r);
  }
  const double s = log1p(exp(r + 2));
  *lns = log(s);
  *dlns = 1 / (1 + exp(-(r + 2))) / s;
  return s;
}
#endif

static int TEST(actnorm_fwd)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(40);
  const int64_t n = 5;
  for (int kind = LRMF_ACTNORM_EXP; kind <= LRMF_ACTNORM_SOFTPLUS; kind++)
    for (int64_t d = 3; d <= 70; d += 67) {
      T *x = RAND(n * d), *r = RAND(d), *b = RAND(d), *ld = RAND(n);
      T *y = CONST(n * d, TK_SENTINEL), *ld0 = CONST(n, 0);
      memcpy(ld0, ld, (size_t)n * sizeof(T));
      CHECK(K(actnorm_fwd)(n, d, kind, x, r, b, y, ld) == LRMF_OK);
      double sum = 0, abs = 0;
      for (int64_t j = 0; j < d; j++) {
        double lns, dlns;
        const double s = an_scale(kind, r[j], &lns, &dlns);
        sum += lns;
        abs += fabs(lns);
        for (int64_t i = 0; i < n; i++) {
          const double want = ((double)x[i * d + j] + b[j]) * s;
          CHECK(near(y[i * d + j], want, TOL, want));
        }
      }
      for (int64_t i = 0; i < n; i++)
        CHECK(near(ld[i], (double)ld0[i] + sum, TOL, abs + fabs(ld0[i])));
      /* In place (y == x) and without logdet: the same y. */
      T *y2 = CONST(n * d, 0);
      memcpy(y2, x, (size_t)(n * d) * sizeof(T));
      CHECK(K(actnorm_fwd)(n, d, kind, y2, r, b, y2, NULL) == LRMF_OK);
      CHECK(memcmp(y, y2, (size_t)(n * d) * sizeof(T)) == 0);
      free(x), free(r), free(b), free(ld), free(y), free(ld0), free(y2);
    }
  T *x = RAND(6), *r = RAND(3), *s = CONST(6, TK_SENTINEL), *s2 = CONST(2, TK_SENTINEL);
  const int e = LRMF_ACTNORM_EXP;
  CHECK(K(actnorm_fwd)(-1, 3, e, x, r, r, s, s2) == LRMF_EINVAL);
  CHECK(K(actnorm_fwd)(2, -3, e, x, r, r, s, s2) == LRMF_EINVAL);
  CHECK(K(actnorm_fwd)(2, 3, 0, x, r, r, s, s2) == LRMF_EINVAL);
  CHECK(K(actnorm_fwd)(2, 3, 3, x, r, r, s, s2) == LRMF_EINVAL);
  CHECK(K(actnorm_fwd)(2, 3, e, NULL, r, r, s, s2) == LRMF_EINVAL);
  CHECK(K(actnorm_fwd)(2, 3, e, x, NULL, r, s, s2) == LRMF_EINVAL);
  CHECK(K(actnorm_fwd)(2, 3, e, x, r, NULL, s, s2) == LRMF_EINVAL);
  CHECK(K(actnorm_fwd)(2, 3, e, x, r, r, NULL, s2) == LRMF_EINVAL);
  CHECK(K(actnorm_fwd)(0, 3, 9, NULL, NULL, NULL, NULL, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, 6) && UNTOUCHED(s2, 2));
  CHECK(K(actnorm_fwd)(0, 3, e, NULL, NULL, NULL, NULL, NULL) == LRMF_OK);
  CHECK(K(actnorm_fwd)(2, 0, e, NULL, NULL, NULL, NULL, s2) == LRMF_OK);
  CHECK(UNTOUCHED(s2, 2));
  free(x), free(r), free(s), free(s2);
  return errs;
}

static int TEST(actnorm_inv)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(41);
  const int64_t n = 5;
  for (int kind = LRMF_ACTNORM_EXP; kind <= LRMF_ACTNORM_SOFTPLUS; kind++)
    for (int64_t d = 3; d <= 70; d += 67) {
      T *yv = RAND(n * d), *r = RAND(d), *b = RAND(d);
      T *x = CONST(n * d, TK_SENTINEL);
      CHECK(K(actnorm_inv)(n, d, kind, yv, r, b, x) == LRMF_OK);
      for (int64_t j = 0; j < d; j++) {
        double lns, dlns;
        const double s = an_scale(kind, r[j], &lns, &dlns);
        for (int64_t i = 0; i < n; i++) {
          const double want = (double)yv[i * d + j] / s - b[j];
          CHECK(near(x[i * d + j], want, TOL, fabs(yv[i * d + j] / s) + fabs(b[j])));
        }
      }
      CHECK(K(actnorm_inv)(n, d, kind, yv, r, b, yv) == LRMF_OK); /* in place */
      CHECK(memcmp(x, yv, (size_t)(n * d) * sizeof(T)) == 0);
      free(yv), free(r), free(b), free(x);
    }
  T *y = RAND(6), *r = RAND(3), *s = CONST(6, TK_SENTINEL);
  CHECK(K(actnorm_inv)(-1, 3, LRMF_ACTNORM_EXP, y, r, r, s) == LRMF_EINVAL);
  CHECK(K(actnorm_inv)(2, 3, 7, y, r, r, s) == LRMF_EINVAL);
  CHECK(K(actnorm_inv)(2, 3, LRMF_ACTNORM_SOFTPLUS, y, r, NULL, s) == LRMF_EINVAL);
  CHECK(K(actnorm_inv)(2, 3, LRMF_ACTNORM_SOFTPLUS, y, r, r, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, 6));
  CHECK(K(actnorm_inv)(0, 3, LRMF_ACTNORM_EXP, NULL, NULL, NULL, NULL) == LRMF_OK);
  free(y), free(r), free(s);
  return errs;
}

static int TEST(actnorm_bwd)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(42);
  const int64_t n = 7;
  for (int kind = LRMF_ACTNORM_EXP; kind <= LRMF_ACTNORM_SOFTPLUS; kind++)
    for (int64_t d = 3; d <= 70; d += 67) {
      T *x = RAND(n * d), *r = RAND(d), *b = RAND(d), *dy = RAND(n * d), *wl = RAND(n);
      T *dx = CONST(n * d, TK_SENTINEL), *dr = CONST(d, TK_SENTINEL), *db = CONST(d, TK_SENTINEL);
      CHECK(K(actnorm_bwd)(n, d, kind, x, r, b, dy, wl, dx, dr, db) == LRMF_OK);
      double w = 0, wabs = 0;
      for (int64_t i = 0; i < n; i++)
        w += wl[i], wabs += fabs(wl[i]);
      for (int64_t j = 0; j < d; j++) {
        double lns, dlns;
        const double s = an_scale(kind, r[j], &lns, &dlns);
        double sdy = 0, sdyx = 0, a1 = 0, a2 = 0;
        for (int64_t i = 0; i < n; i++) {
          const double g = dy[i * d + j], xb = (double)x[i * d + j] + b[j];
          CHECK(near(dx[i * d + j], g * s, TOL, g * s));
          sdy += g, a1 += fabs(g);
          sdyx += g * xb, a2 += fabs(g * xb);
        }
        CHECK(near(db[j], s * sdy, TOL, s * a1));
        CHECK(near(dr[j], dlns * (s * sdyx + w), TOL, dlns * (s * a2 + wabs)));
      }
      /* dx == NULL and dlogdet == NULL; then in place (dx == dy). */
      T *dr2 = CONST(d, TK_SENTINEL), *db2 = CONST(d, TK_SENTINEL);
      CHECK(K(actnorm_bwd)(n, d, kind, x, r, b, dy, NULL, NULL, dr2, db2) == LRMF_OK);
      CHECK(memcmp(db, db2, (size_t)d * sizeof(T)) == 0);
      for (int64_t j = 0; j < d; j++) {
        double lns, dlns;
        (void)an_scale(kind, r[j], &lns, &dlns);
        CHECK(near(dr2[j], (double)dr[j] - dlns * w, TOL, fabs(dr[j]) + dlns * wabs));
      }
      CHECK(K(actnorm_bwd)(n, d, kind, x, r, b, dy, wl, dy, dr2, db2) == LRMF_OK);
      CHECK(memcmp(dx, dy, (size_t)(n * d) * sizeof(T)) == 0);
      CHECK(memcmp(dr, dr2, (size_t)d * sizeof(T)) == 0);
      free(x), free(r), free(b), free(dy), free(wl), free(dx), free(dr), free(db), free(dr2), free(db2);
    }
  T *x = RAND(6), *r = RAND(3), *s = CONST(6, TK_SENTINEL), *s2 = CONST(3, TK_SENTINEL);
  T *s3 = CONST(3, TK_SENTINEL);
  const int e = LRMF_ACTNORM_EXP;
  CHECK(K(actnorm_bwd)(2, 3, 5, x, r, r, x, NULL, s, s2, s3) == LRMF_EINVAL);
  CHECK(K(actnorm_bwd)(-2, 3, e, x, r, r, x, NULL, s, s2, s3) == LRMF_EINVAL);
  CHECK(K(actnorm_bwd)(2, 3, e, NULL, r, r, x, NULL, s, s2, s3) == LRMF_EINVAL);
  CHECK(K(actnorm_bwd)(2, 3, e, x, r, NULL, x, NULL, s, s2, s3) == LRMF_EINVAL);
  CHECK(K(actnorm_bwd)(2, 3, e, x, r, r, NULL, NULL, s, s2, s3) == LRMF_EINVAL);
  CHECK(K(actnorm_bwd)(2, 3, e, x, NULL, r, x, NULL, s, s2, s3) == LRMF_EINVAL);
  CHECK(K(actnorm_bwd)(2, 3, e, x, r, r, x, NULL, s, NULL, s3) == LRMF_EINVAL);
  CHECK(K(actnorm_bwd)(2, 3, e, x, r, r, x, NULL, s, s2, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, 6) && UNTOUCHED(s2, 3) && UNTOUCHED(s3, 3));
  /* n == 0 zeroes dr and db (empty sums). */
  CHECK(K(actnorm_bwd)(0, 3, e, NULL, r, NULL, NULL, NULL, NULL, s2, s3) == LRMF_OK);
  CHECK(s2[0] == 0 && s2[2] == 0 && s3[0] == 0 && s3[2] == 0);
  free(x), free(r), free(s), free(s2), free(s3);
  return errs;
}

static int TEST(lu_solve)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(43);
  const int64_t n = 4, d = 6;
  /* lu: L (|l| ≤ 1) below the diagonal, U with |u_kk| ≥ 1 on and above;
   * perm reverses the rows. */
  T *lu = RAND(d * d), *y = RAND(n * d), *x = CONST(n * d, TK_SENTINEL);
  int32_t perm[6];
  for (int64_t k = 0; k < d; k++) {
    perm[k] = (int32_t)(d - 1 - k);
    lu[k * d + k] = (T)(lu[k * d + k] >= 0 ? 1 + lu[k * d + k] : -1 + lu[k * d + k]);
  }
  CHECK(K(lu_solve)(n, d, lu, perm, y, x) == LRMF_OK);
  /* P·L·U·x_i = y_i: row perm[k] of W x is (L·U·x)_k. */
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < d; k++) {
      double ux[6], v = 0, a = 0;
      for (int64_t m = 0; m < d; m++) {
        ux[m] = 0;
        for (int64_t j = m; j < d; j++)
          ux[m] += (double)lu[m * d + j] * x[i * d + j];
      }
      for (int64_t m = 0; m <= k; m++) {
        const double l = m == k ? 1.0 : (double)lu[k * d + m];
        v += l * ux[m], a += fabs(l * ux[m]);
      }
      CHECK(near(v, y[i * d + perm[k]], 16 * TOL, a));
    }
  T *s = CONST(n * d, TK_SENTINEL);
  perm[3] = (int32_t)d;
  CHECK(K(lu_solve)(n, d, lu, perm, y, s) == LRMF_EINVAL);
  perm[3] = -1;
  CHECK(K(lu_solve)(n, d, lu, perm, y, s) == LRMF_EINVAL);
  perm[3] = 2;
  CHECK(K(lu_solve)(-1, d, lu, perm, y, s) == LRMF_EINVAL);
  CHECK(K(lu_solve)(n, d, NULL, perm, y, s) == LRMF_EINVAL);
  CHECK(K(lu_solve)(n, d, lu, NULL, y, s) == LRMF_EINVAL);
  CHECK(K(lu_solve)(n, d, lu, perm, NULL, s) == LRMF_EINVAL);
  CHECK(K(lu_solve)(n, d, lu, perm, y, NULL) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, n * d));
  CHECK(K(lu_solve)(0, d, NULL, NULL, NULL, NULL) == LRMF_OK);
  CHECK(K(lu_solve)(n, 0, NULL, NULL, NULL, NULL) == LRMF_OK);
  free(lu), free(y), free(x), free(s);
  return errs;
}

/* ---- images (conv.inc) ---- */

/* Naive double-precision k×k "same" convolution with the edge channel, the
 * definition in lrmf.h: y[p, co] = Σ_tap,ci xe(p + off(tap), ci)·wt[...]. */
static void TK_CAT(conv_naive, TK_S)(int64_t n, int64_t h, int64_t w,
                                     int64_t cin, int64_t cout, int64_t k,
                                     int64_t edge, const T *x, const T *wt,
                                     double *y, double *scale) {
  const int64_t ce = cin + edge, r = (k - 1) / 2;
  for (int64_t p = 0; p < n * h * w; p++) {
    const int64_t b = p / (h * w), i = (p % (h * w)) / w, j = p % w;
    for (int64_t co = 0; co < cout; co++) {
      double s = 0, sa = 0;
      for (int64_t ky = 0; ky < k; ky++)
        for (int64_t kx = 0; kx < k; kx++) {
          const int64_t yy = i + ky - r, xx = j + kx - r;
          const int in = yy >= 0 && yy < h && xx >= 0 && xx < w;
          for (int64_t ci = 0; ci < ce; ci++) {
            double v;
            if (ci == cin)
              v = in ? 0.0 : 1.0;
            else
              v = in ? (double)x[((b * h + yy) * w + xx) * cin + ci] : 0.0;
            const double t = v * (double)wt[((ky * k + kx) * ce + ci) * cout + co];
            s += t;
            sa += fabs(t);
          }
        }
      y[p * cout + co] = s;
      scale[p * cout + co] = sa;
    }
  }
}

static int TEST(conv2d)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(60);
  /* n, h, w, cin, cout, k, edge */
  static const int64_t shapes[][7] = {
      {1, 1, 1, 1, 1, 1, 0}, {2, 3, 4, 2, 3, 3, 1}, {1, 5, 5, 3, 2, 5, 0},
      {3, 8, 6, 4, 5, 3, 1}, {2, 20, 20, 9, 7, 3, 1}, {1, 4, 4, 0, 3, 3, 1},
  };
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    const int64_t n = shapes[s][0], h = shapes[s][1], w = shapes[s][2],
                  cin = shapes[s][3], cout = shapes[s][4], k = shapes[s][5],
                  edge = shapes[s][6];
    const int64_t np = n * h * w, kf = k * k * (cin + edge);
    const int64_t lw = K(conv2d_work)(cin, cout, k, edge);
    CHECK(lw > 0);
    T *x = RAND(np * cin), *wt = RAND(kf * cout), *dy = RAND(np * cout);
    T *y = CONST(np * cout, TK_SENTINEL), *dx = CONST(np * cin, TK_SENTINEL);
    T *dw = CONST(kf * cout, TK_SENTINEL), *work = CONST(lw, 0);
    double *ry = xmalloc((size_t)(np * cout) * sizeof(double));
    double *rs = xmalloc((size_t)(np * cout) * sizeof(double));
    TK_CAT(conv_naive, TK_S)(n, h, w, cin, cout, k, edge, x, wt, ry, rs);
    /* Forward in two row ranges: [0, m) then [m, np). */
    const int64_t m = np / 3;
    CHECK(K(conv2d_fwd)(n, h, w, cin, cout, k, edge, x, wt, 0, m, y, work, lw) == LRMF_OK);
    CHECK(UNTOUCHED(y + m * cout, (np - m) * cout));
    CHECK(K(conv2d_fwd)(n, h, w, cin, cout, k, edge, x, wt, m, np, y, work, lw) == LRMF_OK);
    int bad = 0;
    for (int64_t i = 0; i < np * cout; i++)
      bad += !near(y[i], ry[i], TOL, rs[i]);
    CHECK(bad == 0);
    /* Input gradient: dx[q, ci] = Σ_p,co dy[p, co]·∂y[p, co]/∂x[q, ci],
     * from the naive convolution of unit inputs (adjoint by columns). */
    CHECK(K(conv2d_bwd_data)(n, h, w, cin, cout, k, edge, dy, wt, 0, m, dx, work, lw) == LRMF_OK);
    CHECK(K(conv2d_bwd_data)(n, h, w, cin, cout, k, edge, dy, wt, m, np, dx, work, lw) == LRMF_OK);
    bad = 0;
    {
      const int64_t ce = cin + edge, r = (k - 1) / 2;
      for (int64_t q = 0; q < np; q++) {
        const int64_t b = q / (h * w), i = (q % (h * w)) / w, j = q % w;
        for (int64_t ci = 0; ci < cin; ci++) {
          double sum = 0, sa = 0;
          for (int64_t ky = 0; ky < k; ky++)
            for (int64_t kx = 0; kx < k; kx++) {
              /* output pixel p with p + off(ky, kx) = q */
              const int64_t pi = i - (ky - r), pj = j - (kx - r);
              if (pi < 0 || pi >= h || pj < 0 || pj >= w)
                continue;
              const int64_t p = (b * h + pi) * w + pj;
              for (int64_t co = 0; co < cout; co++) {
                const double t = (double)dy[p * cout + co] *
                                 (double)wt[((ky * k + kx) * ce + ci) * cout + co];
                sum += t;
                sa += fabs(t);
              }
            }
          bad += !near(dx[q * cin + ci], sum, TOL, sa);
        }
      }
    }
    CHECK(bad == 0);
    /* Weight gradient over [0, np) and as two halves summed. */
    CHECK(K(conv2d_bwd_filter)(n, h, w, cin, cout, k, edge, x, dy, 0, np, dw, work, lw) == LRMF_OK);
    bad = 0;
    {
      const int64_t ce = cin + edge, r = (k - 1) / 2;
      for (int64_t t = 0; t < k * k; t++)
        for (int64_t ci = 0; ci < ce; ci++)
          for (int64_t co = 0; co < cout; co++) {
            double sum = 0, sa = 0;
            for (int64_t p = 0; p < np; p++) {
              const int64_t b = p / (h * w), i = (p % (h * w)) / w, j = p % w;
              const int64_t yy = i + t / k - r, xx = j + t % k - r;
              const int in = yy >= 0 && yy < h && xx >= 0 && xx < w;
              double v = ci == cin ? (in ? 0.0 : 1.0)
                                   : (in ? (double)x[((b * h + yy) * w + xx) * cin + ci] : 0.0);
              sum += v * (double)dy[p * cout + co];
              sa += fabs(v * (double)dy[p * cout + co]);
            }
            bad += !near(dw[(t * ce + ci) * cout + co], sum, TOL, sa);
          }
    }
    CHECK(bad == 0);
    free(x), free(wt), free(dy), free(y), free(dx), free(dw), free(work);
    free(ry), free(rs);
  }
  /* Argument rules: EINVAL before any write. */
  {
    const int64_t lw = K(conv2d_work)(2, 3, 3, 1);
    T *x = RAND(2 * 4 * 4 * 2), *wt = RAND(9 * 3 * 3), *y = CONST(32 * 3, TK_SENTINEL);
    T *work = CONST(lw, 0), *dw = CONST(9 * 3 * 3, TK_SENTINEL);
    CHECK(K(conv2d_work)(2, 3, 2, 1) == LRMF_EINVAL);   /* even k */
    CHECK(K(conv2d_work)(2, 3, 65, 1) == LRMF_EINVAL);  /* k > 63 */
    CHECK(K(conv2d_work)(2, 3, 3, 2) == LRMF_EINVAL);   /* edge */
    CHECK(K(conv2d_work)(-1, 3, 3, 1) == LRMF_EINVAL);
    CHECK(K(conv2d_work)(2, (1 << 20) + 1, 3, 1) == LRMF_EINVAL);
    CHECK(K(conv2d_fwd)(2, 4, 4, 2, 3, 3, 1, x, wt, 0, 33, y, work, lw) == LRMF_EINVAL);
    CHECK(K(conv2d_fwd)(2, 4, 4, 2, 3, 3, 1, x, wt, 5, 4, y, work, lw) == LRMF_EINVAL);
    CHECK(K(conv2d_fwd)(2, 4, 4, 2, 3, 3, 1, x, wt, -1, 4, y, work, lw) == LRMF_EINVAL);
    CHECK(K(conv2d_fwd)(2, 4, 4, 2, 3, 3, 1, x, wt, 0, 32, y, work, lw - 1) == LRMF_EINVAL);
    CHECK(K(conv2d_fwd)(2, 4, 4, 2, 3, 3, 1, x, wt, 0, 32, y, NULL, lw) == LRMF_EINVAL);
    CHECK(K(conv2d_fwd)(2, 4, 4, 2, 3, 3, 1, NULL, wt, 0, 32, y, work, lw) == LRMF_EINVAL);
    CHECK(K(conv2d_fwd)(2, 4, 4, 2, 3, 3, 1, x, NULL, 0, 32, y, work, lw) == LRMF_EINVAL);
    CHECK(K(conv2d_fwd)(2, 4, 4, 2, 3, 3, 4, x, wt, 0, 32, y, work, lw) == LRMF_EINVAL);
    CHECK(K(conv2d_fwd)(-2, 4, 4, 2, 3, 3, 1, x, wt, 0, 0, y, work, lw) == LRMF_EINVAL);
    CHECK(K(conv2d_bwd_data)(2, 4, 4, 2, 3, 3, 1, y, wt, 0, 32, x, work, lw - 1) == LRMF_EINVAL);
    CHECK(K(conv2d_bwd_data)(2, 4, 4, 2, 3, 3, 1, NULL, wt, 0, 32, x, work, lw) == LRMF_EINVAL);
    CHECK(K(conv2d_bwd_filter)(2, 4, 4, 2, 3, 3, 1, x, y, 0, 33, dw, work, lw) == LRMF_EINVAL);
    CHECK(K(conv2d_bwd_filter)(2, 4, 4, 2, 3, 3, 1, x, y, 0, 32, dw, work, lw - 1) == LRMF_EINVAL);
    CHECK(K(conv2d_bwd_filter)(2, 4, 4, 2, 3, 3, 1, x, NULL, 0, 32, dw, work, lw) == LRMF_EINVAL);
    CHECK(UNTOUCHED(y, 32 * 3) && UNTOUCHED(dw, 9 * 3 * 3));
    /* Empty ranges: nothing written, except the weight gradient (0). */
    CHECK(K(conv2d_fwd)(2, 4, 4, 2, 3, 3, 1, NULL, NULL, 7, 7, NULL, NULL, 0) == LRMF_OK);
    CHECK(K(conv2d_bwd_filter)(2, 4, 4, 2, 3, 3, 1, NULL, NULL, 7, 7, dw, NULL, 0) == LRMF_OK);
    CHECK(TK_CAT(all_equal, TK_S)(dw, 9 * 3 * 3, 0.0));
    CHECK(K(im2col)(2, 4, 4, 2, 3, 1, x, 0, 33, y) == LRMF_EINVAL);
    /* The flipped weights: wf[(t, co), ci] = wt[(k²−1−t, ci), co]. */
    T *wf = CONST(9 * 3 * 2, TK_SENTINEL);
    CHECK(K(conv2d_flip)(2, 3, 2, 1, wt, wf) == LRMF_EINVAL);
    CHECK(K(conv2d_flip)(2, 3, 3, 1, NULL, wf) == LRMF_EINVAL);
    CHECK(UNTOUCHED(wf, 9 * 3 * 2));
    CHECK(K(conv2d_flip)(2, 3, 3, 1, wt, wf) == LRMF_OK);
    int fbad = 0;
    for (int t = 0; t < 9; t++)
      for (int co = 0; co < 3; co++)
        for (int ci = 0; ci < 2; ci++)
          fbad += wf[(t * 3 + co) * 2 + ci] != wt[((8 - t) * 3 + ci) * 3 + co];
    CHECK(fbad == 0);
    free(wf);
    free(x), free(wt), free(y), free(work), free(dw);
  }
  return errs;
}

static int TEST(squeeze)(void) {
  int errs = 0;
  uint64_t seed = tk_seed(61);
  const int64_t n = 2, h = 4, w = 6, c = 3, np = n * h * w * c;
  T *x = RAND(np), *y = CONST(np, TK_SENTINEL), *x2 = CONST(np, TK_SENTINEL);
  CHECK(K(squeeze)(n, h, w, c, x, y) == LRMF_OK);
  int bad = 0;
  for (int64_t b = 0; b < n; b++)
    for (int64_t i = 0; i < h; i++)
      for (int64_t j = 0; j < w; j++)
        for (int64_t ci = 0; ci < c; ci++) {
          const T want = x[((b * h + i) * w + j) * c + ci];
          const T got = y[((b * (h / 2) + i / 2) * (w / 2) + j / 2) * 4 * c +
                          ci * 4 + (i % 2) * 2 + j % 2];
          bad += got != want;
        }
  CHECK(bad == 0);
  CHECK(K(unsqueeze)(n, h, w, c, y, x2) == LRMF_OK);
  CHECK(memcmp(x, x2, (size_t)np * sizeof(T)) == 0);
  T *s = CONST(np, TK_SENTINEL);
  CHECK(K(squeeze)(n, 3, w, c, x, s) == LRMF_EINVAL);
  CHECK(K(squeeze)(n, h, 5, c, x, s) == LRMF_EINVAL);
  CHECK(K(squeeze)(-1, h, w, c, x, s) == LRMF_EINVAL);
  CHECK(K(squeeze)(n, h, w, c, NULL, s) == LRMF_EINVAL);
  CHECK(K(unsqueeze)(n, h, w, c, y, NULL) == LRMF_EINVAL);
  CHECK(K(unsqueeze)(n, h, w, (1 << 20) + 1, y, s) == LRMF_EINVAL);
  CHECK(UNTOUCHED(s, np));
  CHECK(K(squeeze)(0, h, w, c, NULL, NULL) == LRMF_OK);
  free(x), free(y), free(x2), free(s);
  return errs;
}

#undef CPL_SHAPES
#undef CPL_NSHAPES
#undef CPL_BOUND
#undef CPL_INPUTS

#undef RAND
#undef CONST
#undef UNTOUCHED
#undef TOL
#undef T

#endif /* TK_T */

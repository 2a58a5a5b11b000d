/*
 * test_kernels.cu — tests of the CUDA kernels (lrmf_kernels.cu) as the Go
 * side uses them: the fatbin is loaded with cuModuleLoadData, each kernel
 * is looked up by name and launched with cuLaunchKernel, every argument
 * passed as 8 bytes, with the grid and block of the launch rule documented
 * in lrmf_kernels.h. Results are compared with a naive double-precision
 * host computation on pseudo-random inputs (tolerance ~1e-5 relative, f32).
 *
 * Usage: lrmf_cuda_ctest FATBIN. Without a usable CUDA device it prints
 * "no CUDA device: skipping the CUDA kernel tests" and exits 0. Prints one
 * line per case, then "N passed, N failed"; exits non-zero on failure.
 *
 * The driver API is reached through dlopen("libcuda.so.1"), so the binary
 * also starts (and skips) on machines without the driver library.
 * Defining LRMF_TEST_BACKEND="file.h" replaces the device layer below
 * (backend_init, dev_*, launch_raw) with another one, e.g. a CPU emulation.
 */
#include "lrmf_kernels.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

struct Dim {
  unsigned x, y, z;
};

/* One kernel argument: 8 raw bytes, as the Go launcher passes them. */
struct A8 {
  uint64_t bits;
};
static A8 I(int64_t v) {
  A8 a;
  memcpy(&a.bits, &v, 8);
  return a;
}
static A8 D(double v) {
  A8 a;
  memcpy(&a.bits, &v, 8);
  return a;
}
static A8 P(const void *p) {
  A8 a;
  a.bits = (uint64_t)(uintptr_t)p;
  return a;
}

/* ---- device layer ------------------------------------------------------ */
#ifdef LRMF_TEST_BACKEND
#include LRMF_TEST_BACKEND
#else
#include <cuda.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

typedef CUresult (*pfn_load_t)(CUmodule *, const void *);
typedef CUresult (*pfn_getfn_t)(CUfunction *, CUmodule, const char *);
typedef CUresult (*pfn_launch_t)(CUfunction, unsigned, unsigned, unsigned,
                                 unsigned, unsigned, unsigned, unsigned,
                                 CUstream, void **, void **);
typedef CUresult (*pfn_errname_t)(CUresult, const char **);
static pfn_load_t p_load;
static pfn_getfn_t p_getfn;
static pfn_launch_t p_launch;
static pfn_errname_t p_errname;
static CUmodule g_mod;
static const bool g_emulated = false;

/* 0: ready; 1: no device (skip); 2: error. */
static int backend_init(const char *fatbin) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
    return 1;
  /* The runtime makes the primary context current; the driver calls below
   * then use it, as the Go side does with its own context. */
  if (cudaSetDevice(0) != cudaSuccess || cudaFree(0) != cudaSuccess) {
    fprintf(stderr, "cannot initialise device 0\n");
    return 2;
  }
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "dlopen libcuda.so.1: %s\n", dlerror());
    return 2;
  }
  p_load = (pfn_load_t)dlsym(lib, "cuModuleLoadData");
  p_getfn = (pfn_getfn_t)dlsym(lib, "cuModuleGetFunction");
  p_launch = (pfn_launch_t)dlsym(lib, "cuLaunchKernel");
  p_errname = (pfn_errname_t)dlsym(lib, "cuGetErrorName");
  if (!p_load || !p_getfn || !p_launch || !p_errname) {
    fprintf(stderr, "libcuda.so.1 lacks a driver entry point\n");
    return 2;
  }
  FILE *f = fopen(fatbin, "rb");
  if (f == NULL) {
    fprintf(stderr, "cannot open %s\n", fatbin);
    return 2;
  }
  std::vector<uint64_t> img; /* 8-byte aligned image */
  uint64_t buf[4096];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, f)) > 0)
    img.insert(img.end(), buf, buf + (got + 7) / 8);
  fclose(f);
  CUresult r = p_load(&g_mod, img.data());
  if (r != CUDA_SUCCESS) {
    const char *s = "?";
    p_errname(r, &s);
    fprintf(stderr, "cuModuleLoadData(%s): %s\n", fatbin, s);
    return 2;
  }
  return 0;
}

static void *dev_alloc(size_t bytes) {
  void *p = NULL;
  if (bytes > 0 && cudaMalloc(&p, bytes) != cudaSuccess) {
    fprintf(stderr, "cudaMalloc(%zu) failed\n", bytes);
    exit(2);
  }
  return p;
}
static void dev_free(void *p) {
  if (p != NULL)
    cudaFree(p);
}
static void dev_put(void *d, const void *h, size_t bytes) {
  if (bytes > 0 && cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
    fprintf(stderr, "cudaMemcpy to device failed\n");
    exit(2);
  }
}
static void dev_get(void *h, const void *d, size_t bytes) {
  if (bytes > 0 && cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost) != cudaSuccess) {
    fprintf(stderr, "cudaMemcpy to host failed\n");
    exit(2);
  }
}

/* Launch by name and wait; "" on success, else the error. */
static std::string launch_raw(const char *name, Dim g, Dim b,
                              std::vector<A8> &args) {
  CUfunction fn;
  const char *s = "?";
  CUresult r = p_getfn(&fn, g_mod, name);
  if (r != CUDA_SUCCESS) {
    p_errname(r, &s);
    return std::string("cuModuleGetFunction: ") + s;
  }
  std::vector<void *> params(args.size());
  for (size_t i = 0; i < args.size(); i++)
    params[i] = &args[i].bits;
  r = p_launch(fn, g.x, g.y, g.z, b.x, b.y, b.z, 0, NULL, params.data(), NULL);
  if (r != CUDA_SUCCESS) {
    p_errname(r, &s);
    return std::string("cuLaunchKernel: ") + s;
  }
  cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess)
    return std::string("kernel: ") + cudaGetErrorString(e);
  return "";
}
#endif /* LRMF_TEST_BACKEND */

/* ---- launch rules (lrmf_kernels.h) ------------------------------------- */

static std::string g_err; /* first launch error of the current case */

static void launch(const char *name, Dim g, Dim b, std::vector<A8> args) {
  std::string e = launch_raw(name, g, b, args);
  if (!e.empty() && g_err.empty())
    g_err = std::string(name) + ": " + e;
}
/* A zero grid is skipped, as the Go side must. */
static void launchR(const char *name, int64_t units, std::vector<A8> args) {
  if (units == 0)
    return;
  int64_t g = (units + LRMF_K_BLOCK - 1) / LRMF_K_BLOCK;
  if (g > LRMF_K_GRID_MAX)
    g = LRMF_K_GRID_MAX;
  launch(name, {(unsigned)g, 1, 1}, {LRMF_K_BLOCK, 1, 1}, args);
}
static void launchC(const char *name, int64_t outputs, std::vector<A8> args) {
  if (outputs == 0)
    return;
  launch(name, {(unsigned)outputs, 1, 1}, {LRMF_K_BLOCK, 1, 1}, args);
}
static void launchS(const char *name, std::vector<A8> args) {
  launch(name, {1, 1, 1}, {LRMF_K_SBLOCK, 1, 1}, args);
}
static void launchG(int64_t m, int64_t n, std::vector<A8> args) {
  if (m == 0 || n == 0)
    return;
  int64_t gy = (m + LRMF_K_TILE - 1) / LRMF_K_TILE;
  if (gy > LRMF_K_GRID_MAX)
    gy = LRMF_K_GRID_MAX; /* allowed: the kernel strides over tile rows */
  launch("lrmf_k_gemm",
         {(unsigned)((n + LRMF_K_TILE - 1) / LRMF_K_TILE), (unsigned)gy, 1},
         {LRMF_K_TILE, LRMF_K_TILE, 1}, args);
}

/* ---- buffers and checks -------------------------------------------------- */

typedef std::vector<float> VF;
typedef std::vector<double> VD;

/* A device copy of a host vector (empty: a NULL pointer). */
template <class T> struct Buf {
  void *p;
  size_t n;
  explicit Buf(const std::vector<T> &h) : p(dev_alloc(h.size() * sizeof(T))), n(h.size()) {
    dev_put(p, h.data(), n * sizeof(T));
  }
  ~Buf() { dev_free(p); }
  Buf(const Buf &) = delete;
  Buf &operator=(const Buf &) = delete;
  std::vector<T> get() const {
    std::vector<T> h(n);
    dev_get(h.data(), p, n * sizeof(T));
    return h;
  }
};
typedef Buf<float> BF;

static uint64_t g_rng = 0x9E3779B97F4A7C15ULL;
/* Uniform float in [lo, hi) from a 64-bit LCG. */
static float urand(double lo, double hi) {
  g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)(lo + (hi - lo) * ((double)(g_rng >> 11) * 0x1.0p-53));
}
static VF rnd(size_t n, double lo = -1, double hi = 1) {
  VF v(n);
  for (auto &x : v)
    x = urand(lo, hi);
  return v;
}

static int g_pass, g_fail;
static std::string g_why; /* first failed comparison of the current case */

/* |got − want| ≤ tol·(1 + |scale|), scale bounding the magnitudes that went
 * into want (|want| by default), as in csrc/tests/test_kernels.c. NaN never
 * passes. */
static void cmp(const char *what, const VF &got, const VD &want, double tol = 1e-5,
                const VD *scale = NULL) {
  if (got.size() != want.size()) {
    if (g_why.empty())
      g_why = std::string(what) + ": size mismatch";
    return;
  }
  for (size_t i = 0; i < got.size(); i++) {
    const double s = scale ? (*scale)[i] : want[i];
    if (!(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs(s)))) {
      if (g_why.empty()) {
        char b[256];
        snprintf(b, sizeof b, "%s[%zu] = %.9g, want %.9g", what, i, (double)got[i], want[i]);
        g_why = b;
      }
      return;
    }
  }
}
/* A double result (dot, sum): |got − want| ≤ tol. */
static void cmp1(const char *what, double got, double want, double tol) {
  if (!(fabs(got - want) <= tol) && g_why.empty()) {
    char b[256];
    snprintf(b, sizeof b, "%s = %.17g, want %.17g", what, got, want);
    g_why = b;
  }
}
static void expect(bool ok, const char *what) {
  if (!ok && g_why.empty())
    g_why = what;
}
static VD dbl(const VF &v) { return VD(v.begin(), v.end()); }
static VF dbl_to_f(const VD &v) { return VF(v.begin(), v.end()); }

static void finish(const char *name) {
  if (!g_err.empty() || !g_why.empty()) {
    printf("FAIL %s: %s\n", name, g_err.empty() ? g_why.c_str() : g_err.c_str());
    g_fail++;
  } else {
    printf("ok   %s\n", name);
    g_pass++;
  }
  g_err.clear();
  g_why.clear();
}

/* ---- BLAS-1 and elementwise ---------------------------------------------- */

static void t_fill_axpy() {
  {
    BF x(VF(1000, -1.0f));
    launchR("lrmf_k_fill", 1000, {I(1000), D(0.3), P(x.p)});
    cmp("x", x.get(), VD(1000, (double)0.3f), 0);
    finish("fill");
  }
  {
    const int64_t n = 100003;
    VF x = rnd(n), y = rnd(n);
    BF dx(x), dy(y);
    launchR("lrmf_k_axpy", n, {I(n), D(-0.7), P(dx.p), P(dy.p)});
    VD want(n);
    for (int64_t i = 0; i < n; i++)
      want[i] = (double)y[i] + (double)-0.7f * x[i];
    cmp("y", dy.get(), want);
    finish("axpy");
  }
  {
    const int64_t n = 100003;
    VF a = rnd(n), b = rnd(n);
    BF da(a), db(b), dout(VF(n, 7.0f));
    launchR("lrmf_k_mul", n, {I(n), P(da.p), P(db.p), P(dout.p)});
    VD want(n);
    for (int64_t i = 0; i < n; i++)
      want[i] = (double)(a[i] * b[i]);
    cmp("out", dout.get(), want);
    launchR("lrmf_k_mul", n, {I(n), P(da.p), P(db.p), P(db.p)}); /* out = b */
    cmp("out = b", db.get(), want);
    finish("mul");
  }
  if (!g_emulated) {
    /* More units than 65535 blocks of 256 cover: the grid-stride path. */
    const int64_t n = (int64_t)LRMF_K_GRID_MAX * LRMF_K_BLOCK + 1001;
    BF x(VF(n, 0.0f)), y(VF(n, 0.0f));
    launchR("lrmf_k_fill", n, {I(n), D(2.0), P(x.p)});
    launchR("lrmf_k_fill", n, {I(n), D(1.0), P(y.p)});
    launchR("lrmf_k_axpy", n, {I(n), D(0.25), P(x.p), P(y.p)});
    VF h = y.get();
    bool ok = true;
    for (int64_t i = 0; i < n && ok; i++)
      ok = h[i] == 1.5f;
    expect(ok, "y != 1.5 somewhere");
    finish("fill+axpy past the grid cap");
  }
}

static void t_dot_sum() {
  const int64_t n = 1000003;
  VF x = rnd(n), y = rnd(n);
  BF dx(x), dy(y);
  Buf<double> out(VD(2, NAN));
  double want = 0, mag = 0, wsum = 0, msum = 0;
  for (int64_t i = 0; i < n; i++) {
    want += (double)x[i] * y[i];
    mag += fabs((double)x[i] * y[i]);
    wsum += x[i];
    msum += fabs(x[i]);
  }
  launchS("lrmf_k_dot", {I(n), P(dx.p), P(dy.p), P(out.p)});
  const double d1 = out.get()[0];
  launchS("lrmf_k_dot", {I(n), P(dx.p), P(dy.p), P(out.p)});
  const double d2 = out.get()[0];
  /* Only the order of double additions differs from the host loop. */
  cmp1("dot", d1, want, 1e-12 * mag);
  expect(memcmp(&d1, &d2, 8) == 0, "dot is not bitwise reproducible");
  finish("dot");

  launchS("lrmf_k_sum", {I(n), P(dx.p), P((double *)out.p + 1)});
  cmp1("sum", out.get()[1], wsum, 1e-12 * msum);
  finish("sum");

  Buf<double> z(VD(2, NAN));
  launchS("lrmf_k_dot", {I(0), P(NULL), P(NULL), P(z.p)});
  launchS("lrmf_k_sum", {I(0), P(NULL), P((double *)z.p + 1)});
  VD zh = z.get();
  expect(zh[0] == 0.0 && zh[1] == 0.0, "n == 0 must write 0");
  finish("dot/sum n=0");
}

static void t_bias() {
  const int64_t n = 513, d = 37;
  VF bias = rnd(d), y = rnd(n * d);
  {
    BF db(bias), dy(y);
    launchR("lrmf_k_bias_add", n * d, {I(n), I(d), P(db.p), P(dy.p)});
    VD want(n * d);
    for (int64_t e = 0; e < n * d; e++)
      want[e] = (double)y[e] + bias[e % d];
    cmp("y", dy.get(), want);
    finish("bias_add");
  }
  {
    BF dy(y), db(VF(d, NAN));
    launchC("lrmf_k_bias_grad", d, {I(n), I(d), P(dy.p), P(db.p)});
    VF g1 = db.get();
    launchC("lrmf_k_bias_grad", d, {I(n), I(d), P(dy.p), P(db.p)});
    VD want(d, 0.0);
    for (int64_t e = 0; e < n * d; e++)
      want[e % d] += y[e];
    cmp("db", g1, want);
    expect(g1 == db.get(), "bias_grad is not bitwise reproducible");
    finish("bias_grad");
  }
  {
    BF db(VF(5, NAN));
    launchC("lrmf_k_bias_grad", 5, {I(0), I(5), P(NULL), P(db.p)});
    cmp("db", db.get(), VD(5, 0.0), 0);
    finish("bias_grad n=0");
  }
  {
    /* More outputs than 65535: gridDim.x may go to 2^31 − 1. */
    const int64_t n2 = 3, d2 = 70001;
    VF y2 = rnd(n2 * d2);
    BF dy(y2), db(VF(d2, NAN));
    launchC("lrmf_k_bias_grad", d2, {I(n2), I(d2), P(dy.p), P(db.p)});
    VD want(d2, 0.0);
    for (int64_t e = 0; e < n2 * d2; e++)
      want[e % d2] += y2[e];
    cmp("db", db.get(), want);
    finish("bias_grad d=70001");
  }
  {
    BF db(bias), dy(y);
    launchR("lrmf_k_bias_relu_fwd", n * d, {I(n), I(d), P(db.p), P(dy.p)});
    VD want(n * d);
    for (int64_t e = 0; e < n * d; e++) {
      const float v = y[e] + bias[e % d];
      want[e] = v > 0 ? v : 0;
    }
    cmp("y", dy.get(), want);
    finish("bias_relu_fwd");
  }
  {
    /* y has exact zeros (ReLU outputs); dz in place on dy, then db. */
    VF yr = rnd(n * d), g = rnd(n * d);
    for (int64_t e = 0; e < n * d; e += 3)
      yr[e] = 0.0f;
    BF dyr(yr), dg(g), db(VF(d, NAN));
    launchR("lrmf_k_bias_relu_bwd_dz", n * d, {I(n), I(d), P(dyr.p), P(dg.p), P(dg.p)});
    launchC("lrmf_k_bias_grad", d, {I(n), I(d), P(dg.p), P(db.p)});
    VD wz(n * d), wb(d, 0.0);
    for (int64_t e = 0; e < n * d; e++) {
      wz[e] = yr[e] > 0 ? g[e] : 0;
      wb[e % d] += wz[e];
    }
    cmp("dz", dg.get(), wz, 0);
    cmp("db", db.get(), wb);
    finish("bias_relu_bwd_dz + bias_grad");
  }
}

static void t_act() {
  const int64_t n = 70001;
  VF x = rnd(n, -3, 3), g = rnd(n);
  x[0] = 0.0f;
  {
    BF dx(x), dy(VF(n, NAN));
    launchR("lrmf_k_relu_fwd", n, {I(n), P(dx.p), P(dy.p)});
    launchR("lrmf_k_relu_fwd", n, {I(n), P(dx.p), P(dx.p)}); /* in place */
    VD want(n);
    for (int64_t i = 0; i < n; i++)
      want[i] = x[i] > 0 ? x[i] : 0;
    cmp("y", dy.get(), want, 0);
    cmp("x (in place)", dx.get(), want, 0);
    finish("relu_fwd");
  }
  {
    BF dx(x), dg(g);
    launchR("lrmf_k_relu_bwd", n, {I(n), P(dx.p), P(dg.p), P(dg.p)});
    VD want(n);
    for (int64_t i = 0; i < n; i++)
      want[i] = x[i] > 0 ? g[i] : 0;
    cmp("dx", dg.get(), want, 0);
    finish("relu_bwd");
  }
  {
    BF dx(x), dy(VF(n, NAN));
    launchR("lrmf_k_tanh_fwd", n, {I(n), P(dx.p), P(dy.p)});
    VD want(n);
    for (int64_t i = 0; i < n; i++)
      want[i] = tanh((double)x[i]);
    cmp("y", dy.get(), want, 1e-6);
    finish("tanh_fwd");
  }
  {
    VF y = rnd(n, -0.95, 0.95);
    BF dy(y), dg(g), dd(VF(n, NAN));
    launchR("lrmf_k_tanh_bwd", n, {I(n), P(dy.p), P(dg.p), P(dd.p)});
    VD want(n);
    for (int64_t i = 0; i < n; i++)
      want[i] = (double)g[i] * (1.0 - (double)y[i] * y[i]);
    cmp("dx", dd.get(), want, 1e-6);
    finish("tanh_bwd");
  }
}

/* ---- Gaussian ------------------------------------------------------------- */

static void t_gauss() {
  for (int64_t d : {7, 1, 0}) {
    const int64_t n = 300;
    VF x = rnd(n * d, -2, 2), mu = rnd(d), l = rnd(d * d), w = rnd(n);
    for (int64_t r = 0; r < d; r++)
      l[r * d + r] += 2.0f;
    const double ldl = 0.123456789; /* rounded to float by the kernel */
    BF dx(x), dmu(mu), dl(l), du(VF(n * d, NAN)), dlp(VF(n, NAN));
    launchR("lrmf_k_gauss_logp", n,
            {I(n), I(d), P(dx.p), P(dmu.p), P(dl.p), D(ldl), P(du.p), P(dlp.p)});
    VD wu(n * d), wlp(n), su(n * d), slp(n);
    for (int64_t i = 0; i < n; i++) {
      double sq = 0, sqm = 0;
      for (int64_t r = 0; r < d; r++) {
        double s = 0, m = 0;
        for (int64_t c = 0; c < d; c++) {
          s += (double)l[r * d + c] * ((double)x[i * d + c] - mu[c]);
          m += fabs((double)l[r * d + c] * ((double)x[i * d + c] - mu[c]));
        }
        wu[i * d + r] = s;
        su[i * d + r] = m;
        sq += s * s;
        sqm += m * m;
      }
      wlp[i] = -0.5 * d * 1.83787706640934548356 + (double)(float)ldl - 0.5 * sq;
      slp[i] = 0.5 * d * 1.83787706640934548356 + fabs(ldl) + 0.5 * sqm;
    }
    VF u = du.get();
    cmp("u", u, wu, 1e-5, &su);
    cmp("logp", dlp.get(), wlp, 1e-5, &slp);
    std::string name = "gauss_logp d=" + std::to_string(d);
    finish(name.c_str());

    /* Backward from the kernel's own u (as the Go side does). */
    BF dw(w), ddx(VF(n * d, NAN)), ddmu(VF(d, NAN)), ddl(VF(d * d, NAN));
    launchR("lrmf_k_gauss_bwd_dx", n,
            {I(n), I(d), P(dl.p), P(du.p), P(dw.p), P(ddx.p)});
    launchC("lrmf_k_gauss_bwd_params", d + d * d,
            {I(n), I(d), P(dx.p), P(dmu.p), P(dl.p), P(du.p), P(dw.p), P(ddmu.p), P(ddl.p)});
    VD wdx(n * d), sdx(n * d), wdmu(d, 0.0), sdmu(d, 0.0), wdl(d * d, 0.0), sdl(d * d, 0.0);
    for (int64_t i = 0; i < n; i++)
      for (int64_t c = 0; c < d; c++) {
        double g = 0, gm = 0;
        for (int64_t r = 0; r < d; r++) {
          g += (double)l[r * d + c] * u[i * d + r];
          gm += fabs((double)l[r * d + c] * u[i * d + r]);
        }
        wdx[i * d + c] = -(double)w[i] * g;
        sdx[i * d + c] = fabs((double)w[i]) * gm;
        wdmu[c] += (double)w[i] * g;
        sdmu[c] += fabs((double)w[i]) * gm;
        for (int64_t r = 0; r < d; r++) {
          const double t = (double)w[i] * u[i * d + r] * ((double)x[i * d + c] - mu[c]);
          wdl[r * d + c] -= t;
          sdl[r * d + c] += fabs(t);
        }
      }
    cmp("dx", ddx.get(), wdx, 1e-5, &sdx);
    cmp("dmu", ddmu.get(), wdmu, 1e-5, &sdmu);
    cmp("dl", ddl.get(), wdl, 1e-5, &sdl);
    name = "gauss_bwd_dx + gauss_bwd_params d=" + std::to_string(d);
    finish(name.c_str());
  }
  {
    const int64_t d = 3;
    BF dmu(VF(d, NAN)), dl(VF(d * d, NAN));
    launchC("lrmf_k_gauss_bwd_params", d + d * d,
            {I(0), I(d), P(NULL), P(NULL), P(NULL), P(NULL), P(NULL), P(dmu.p), P(dl.p)});
    cmp("dmu", dmu.get(), VD(d, 0.0), 0);
    cmp("dl", dl.get(), VD(d * d, 0.0), 0);
    finish("gauss_bwd_params n=0");
  }
}

/* ---- flows ---------------------------------------------------------------- */

static void t_flow() {
  const int64_t n = 257, d = 9;
  {
    VF s = rnd(n * d), ld = rnd(n);
    BF ds(s), dld(ld);
    launchR("lrmf_k_logdet_acc", n, {I(n), I(d), P(ds.p), P(dld.p)});
    VD want(n), sc(n);
    for (int64_t i = 0; i < n; i++) {
      want[i] = ld[i];
      sc[i] = fabs(ld[i]);
      for (int64_t j = 0; j < d; j++) {
        want[i] += s[i * d + j];
        sc[i] += fabs(s[i * d + j]);
      }
    }
    cmp("logdet", dld.get(), want, 1e-5, &sc);
    finish("logdet_acc");
  }
  {
    VF x = rnd(n * d), m = rnd(d * d), b = rnd(d), ld = rnd(n);
    const double ldm = -0.3141592653589793;
    BF dx(x), dm(m), db(b), dy(VF(n * d, NAN)), dld(ld), dy2(VF(n * d, NAN));
    launchR("lrmf_k_affine_fwd", n,
            {I(n), I(d), P(dx.p), P(dm.p), P(db.p), D(ldm), P(dy.p), P(dld.p)});
    launchR("lrmf_k_affine_fwd", n,
            {I(n), I(d), P(dx.p), P(dm.p), P(db.p), D(ldm), P(dy2.p), P(NULL)});
    VD wy(n * d), sy(n * d), wl(n);
    for (int64_t i = 0; i < n; i++) {
      for (int64_t r = 0; r < d; r++) {
        double s = b[r], sm = fabs(b[r]);
        for (int64_t c = 0; c < d; c++) {
          s += (double)m[r * d + c] * x[i * d + c];
          sm += fabs((double)m[r * d + c] * x[i * d + c]);
        }
        wy[i * d + r] = s;
        sy[i * d + r] = sm;
      }
      wl[i] = (double)(ld[i] + (float)ldm);
    }
    cmp("y", dy.get(), wy, 1e-5, &sy);
    cmp("y (logdet NULL)", dy2.get(), wy, 1e-5, &sy);
    cmp("logdet", dld.get(), wl, 0);
    finish("affine_fwd");

    BF dyy(dbl_to_f(wy)), dxx(VF(n * d, NAN));
    launchR("lrmf_k_affine_inv", n, {I(n), I(d), P(dyy.p), P(dm.p), P(db.p), P(dxx.p)});
    /* minv = m here: the kernel just applies minv·(y − b). */
    VF yy = dyy.get();
    VD wx(n * d), sx(n * d);
    for (int64_t i = 0; i < n; i++)
      for (int64_t r = 0; r < d; r++) {
        double s = 0, sm = 0;
        for (int64_t c = 0; c < d; c++) {
          s += (double)m[r * d + c] * ((double)yy[i * d + c] - b[c]);
          sm += fabs((double)m[r * d + c] * ((double)yy[i * d + c] - b[c]));
        }
        wx[i * d + r] = s;
        sx[i * d + r] = sm;
      }
    cmp("x", dxx.get(), wx, 1e-5, &sx);
    finish("affine_inv");
  }
  {
    /* d == 0: x, y are empty but ldm is still added. */
    VF ld = rnd(5);
    BF dld(ld);
    launchR("lrmf_k_affine_fwd", 5,
            {I(5), I(0), P(NULL), P(NULL), P(NULL), D(0.5), P(NULL), P(dld.p)});
    VD wl(5);
    for (int i = 0; i < 5; i++)
      wl[i] = (double)(ld[i] + 0.5f);
    cmp("logdet", dld.get(), wl, 0);
    finish("affine_fwd d=0");
  }
  {
    const int64_t na = 10007;
    VF p = rnd(na), g = rnd(na), m = rnd(na, -0.1, 0.1), v = rnd(na, 0, 0.01);
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const double bc1 = 1 - pow(b1, 3), bc2 = 1 - pow(b2, 3);
    BF dp(p), dg(g), dm(m), dv(v);
    launchR("lrmf_k_adam", na,
            {I(na), P(dp.p), P(dg.p), P(dm.p), P(dv.p), D(lr), D(b1), D(b2), D(eps),
             D(bc1), D(bc2)});
    VD wp(na), wm(na), wv(na);
    for (int64_t i = 0; i < na; i++) {
      const double mi = b1 * m[i] + (1 - b1) * g[i];
      const double vi = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
      wm[i] = (float)mi;
      wv[i] = (float)vi;
      wp[i] = (float)((double)p[i] - lr * (mi / bc1) / (sqrt(vi / bc2) + eps));
    }
    /* Same double formula: at most one float rounding apart. */
    cmp("p", dp.get(), wp, 1e-7);
    cmp("m", dm.get(), wm, 1e-7);
    cmp("v", dv.get(), wv, 1e-7);
    finish("adam");
  }
}

/* ---- moves ---------------------------------------------------------------- */

static void t_moves() {
  {
    const int64_t rows = 50, d = 13, n = 200;
    VF src = rnd(rows * d);
    std::vector<int32_t> idx(n);
    for (int64_t i = 0; i < n; i++)
      idx[i] = (int32_t)((i * 37 + 11) % rows);
    idx[5] = -1; /* left unwritten */
    Buf<float> dsrc(src), ddst(VF(n * d, 7.0f));
    Buf<int32_t> didx(idx);
    launchR("lrmf_k_gather_rows", n * d, {I(n), I(d), P(dsrc.p), P(didx.p), P(ddst.p)});
    VD want(n * d);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < d; j++)
        want[i * d + j] = idx[i] < 0 ? 7.0 : src[(int64_t)idx[i] * d + j];
    cmp("dst", ddst.get(), want, 0);
    finish("gather_rows");
  }
  const int64_t n = 300, d = 11, c0 = 3, k = 5;
  VF src = rnd(n * d), small = rnd(n * k);
  {
    BF ds(src), dd(VF(n * k, NAN));
    launchR("lrmf_k_copy_cols", n * k, {I(n), I(d), I(c0), I(k), P(ds.p), P(dd.p)});
    VD want(n * k);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < k; j++)
        want[i * k + j] = src[i * d + c0 + j];
    cmp("dst", dd.get(), want, 0);
    finish("copy_cols");
  }
  {
    BF ds(small), dd(src);
    launchR("lrmf_k_add_cols", n * k, {I(n), I(d), I(c0), I(k), P(ds.p), P(dd.p)});
    VD want = dbl(src);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < k; j++)
        want[i * d + c0 + j] = (double)(src[i * d + c0 + j] + small[i * k + j]);
    cmp("dst", dd.get(), want, 0);
    finish("add_cols");
  }
}

/* ---- coupling --------------------------------------------------------------- */

/* s(r), ln s, ∂ln s/∂r in double (reference). */
static double scale_ref(int kind, double bound, double r, double *lns, double *dlns) {
  if (kind == LRMF_K_SCALE_EXP) {
    const double u = r / bound, c = cosh(u);
    *lns = bound * tanh(u);
    *dlns = 1.0 / (c * c);
    return exp(*lns);
  }
  const double z = r + 2.0, s = 1.0 / (1.0 + exp(-z));
  *lns = z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z));
  *dlns = 1.0 - s;
  return s;
}

static void t_coupling() {
  const int64_t n = 301, d = 8, t0 = 2, dt = 3;
  for (int kind : {LRMF_K_SCALE_EXP, LRMF_K_SCALE_SIGMOID}) {
    const double bound = 1.7; /* ignored by sigmoid */
    const double bf = (double)(float)bound;
    VF x = rnd(n * d, -2, 2), h = rnd(n * 2 * dt, -3, 3), ld = rnd(n), dy = rnd(n * d),
       dld = rnd(n);
    VD wy = dbl(x), wl(n), wx(n * d), wdx = dbl(dy), wdh(n * 2 * dt), sdh(n * 2 * dt);
    for (int64_t i = 0; i < n; i++) {
      double acc = 0;
      for (int64_t j = 0; j < dt; j++) {
        double lns, dlns;
        const double mu = h[i * 2 * dt + j], r = h[i * 2 * dt + dt + j];
        const double s = scale_ref(kind, bf, r, &lns, &dlns);
        const double xv = x[i * d + t0 + j], g = dy[i * d + t0 + j];
        wy[i * d + t0 + j] = xv * s + mu;
        acc += lns;
        wdx[i * d + t0 + j] = g * s;
        wdh[i * 2 * dt + j] = g;
        wdh[i * 2 * dt + dt + j] = (g * xv * s + dld[i]) * dlns;
        sdh[i * 2 * dt + dt + j] = (fabs(g * xv * s) + fabs(dld[i])) * dlns;
      }
      wl[i] = (double)ld[i] + acc;
    }
    const std::string k = kind == LRMF_K_SCALE_EXP ? "exp" : "sigmoid";
    {
      BF dx(x), dh(h), dyy(VF(n * d, NAN)), dl(ld);
      launchR("lrmf_k_coupling_fwd", n,
              {I(n), I(d), I(t0), I(dt), I(kind), D(bound), P(dx.p), P(dh.p), P(dyy.p), P(dl.p)});
      cmp("y", dyy.get(), wy);
      cmp("logdet", dl.get(), wl);
      /* In place (y == x), no logdet. */
      launchR("lrmf_k_coupling_fwd", n,
              {I(n), I(d), I(t0), I(dt), I(kind), D(bound), P(dx.p), P(dh.p), P(dx.p), P(NULL)});
      cmp("y (in place)", dx.get(), wy);
      finish(("coupling_fwd " + k).c_str());
    }
    {
      /* Inverse of the reference output, out of place and in place. */
      VF yf(n * d);
      for (int64_t e = 0; e < n * d; e++)
        yf[e] = (float)wy[e];
      VD wxi(n * d);
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
          const int64_t e = i * d + j;
          if (j < t0 || j >= t0 + dt) {
            wxi[e] = yf[e];
            continue;
          }
          double lns, dlns;
          const double mu = h[i * 2 * dt + j - t0], r = h[i * 2 * dt + dt + j - t0];
          wxi[e] = ((double)yf[e] - mu) / scale_ref(kind, bf, r, &lns, &dlns);
        }
      BF dy2(yf), dh(h), dx2(VF(n * d, NAN));
      launchR("lrmf_k_coupling_inv", n,
              {I(n), I(d), I(t0), I(dt), I(kind), D(bound), P(dy2.p), P(dh.p), P(dx2.p)});
      cmp("x", dx2.get(), wxi);
      launchR("lrmf_k_coupling_inv", n,
              {I(n), I(d), I(t0), I(dt), I(kind), D(bound), P(dy2.p), P(dh.p), P(dy2.p)});
      cmp("x (in place)", dy2.get(), wxi);
      finish(("coupling_inv " + k).c_str());
    }
    {
      BF dx(x), dh(h), ddy(dy), ddl(dld), ddx(VF(n * d, NAN)), ddh(VF(n * 2 * dt, NAN));
      launchR("lrmf_k_coupling_bwd", n,
              {I(n), I(d), I(t0), I(dt), I(kind), D(bound), P(dx.p), P(dh.p), P(ddy.p), P(ddl.p),
               P(ddx.p), P(ddh.p)});
      cmp("dx", ddx.get(), wdx);
      cmp("dh", ddh.get(), wdh, 1e-5, &sdh);
      BF ddh2(VF(n * 2 * dt, NAN));
      launchR("lrmf_k_coupling_bwd", n,
              {I(n), I(d), I(t0), I(dt), I(kind), D(bound), P(dx.p), P(dh.p), P(ddy.p), P(ddl.p),
               P(NULL), P(ddh2.p)});
      cmp("dh (dx NULL)", ddh2.get(), wdh, 1e-5, &sdh);
      launchR("lrmf_k_coupling_bwd", n,
              {I(n), I(d), I(t0), I(dt), I(kind), D(bound), P(dx.p), P(dh.p), P(ddy.p), P(ddl.p),
               P(ddy.p), P(ddh2.p)});
      cmp("dx (in place)", ddy.get(), wdx);
      finish(("coupling_bwd " + k).c_str());
    }
  }
  {
    /* dt == 0: y = x, logdet unchanged, h never read. */
    VF x = rnd(n * d), ld = rnd(n);
    BF dx(x), dyy(VF(n * d, NAN)), dl(ld);
    launchR("lrmf_k_coupling_fwd", n,
            {I(n), I(d), I(d), I(0), I(LRMF_K_SCALE_SIGMOID), D(0.0), P(dx.p), P(NULL),
             P(dyy.p), P(dl.p)});
    cmp("y", dyy.get(), dbl(x), 0);
    cmp("logdet", dl.get(), dbl(ld), 0);
    finish("coupling_fwd dt=0");
  }
  {
    /* Invalid (kind, bound): nothing written. */
    VF x = rnd(n * d), h = rnd(n * 2 * dt);
    BF dx(x), dh(h), dyy(VF(n * d, 5.0f));
    launchR("lrmf_k_coupling_fwd", n,
            {I(n), I(d), I(t0), I(dt), I(3), D(1.0), P(dx.p), P(dh.p), P(dyy.p), P(NULL)});
    launchR("lrmf_k_coupling_fwd", n,
            {I(n), I(d), I(t0), I(dt), I(LRMF_K_SCALE_EXP), D(0.0), P(dx.p), P(dh.p),
             P(dyy.p), P(NULL)});
    launchR("lrmf_k_coupling_inv", n,
            {I(n), I(d), I(t0), I(dt), I(LRMF_K_SCALE_EXP), D(NAN), P(dx.p), P(dh.p), P(dyy.p)});
    cmp("y", dyy.get(), VD(n * d, 5.0), 0);
    finish("coupling invalid kind/bound");
  }
}

/* ---- Glow: ActNorm and the LU solve ---------------------------------------- */

/* ActNorm's s(r), ln s, ∂ln s/∂r in double (reference). */
static double actnorm_ref(int kind, double r, double *lns, double *dlns) {
  if (kind == LRMF_K_ACTNORM_EXP) {
    *lns = r;
    *dlns = 1;
    return exp(r);
  }
  const double s = log1p(exp(r + 2));
  *lns = log(s);
  *dlns = 1 / (1 + exp(-(r + 2))) / s;
  return s;
}

static void t_glow() {
  const int64_t n = 301, d = 7;
  for (int kind : {LRMF_K_ACTNORM_EXP, LRMF_K_ACTNORM_SOFTPLUS}) {
    VF x = rnd(n * d, -2, 2), r = rnd(d, -1.5, 1.5), b = rnd(d), ld = rnd(n), dy = rnd(n * d),
       dld = rnd(n);
    VD wy(n * d), wl(n), wdx(n * d), wdr(d), wdb(d), sdr(d), sdb(d);
    double lsum = 0, w = 0, wabs = 0;
    for (int64_t i = 0; i < n; i++)
      w += dld[i], wabs += fabs(dld[i]);
    for (int64_t j = 0; j < d; j++) {
      double lns, dlns;
      const double s = actnorm_ref(kind, r[j], &lns, &dlns);
      lsum += lns;
      double sdy = 0, sdyx = 0, a1 = 0, a2 = 0;
      for (int64_t i = 0; i < n; i++) {
        const double xb = (double)x[i * d + j] + b[j], g = dy[i * d + j];
        wy[i * d + j] = xb * s;
        wdx[i * d + j] = g * s;
        sdy += g, a1 += fabs(g), sdyx += g * xb, a2 += fabs(g * xb);
      }
      wdb[j] = s * sdy, sdb[j] = s * a1;
      wdr[j] = dlns * (s * sdyx + w), sdr[j] = dlns * (s * a2 + wabs);
    }
    for (int64_t i = 0; i < n; i++)
      wl[i] = (double)ld[i] + lsum;
    const std::string k = kind == LRMF_K_ACTNORM_EXP ? "exp" : "softplus";
    {
      BF dx(x), dr(r), db(b), dyy(VF(n * d, NAN)), dl(ld);
      launchR("lrmf_k_actnorm_fwd", n, {I(n), I(d), I(kind), P(dx.p), P(dr.p), P(db.p), P(dyy.p), P(dl.p)});
      cmp("y", dyy.get(), wy);
      cmp("logdet", dl.get(), wl);
      launchR("lrmf_k_actnorm_fwd", n, {I(n), I(d), I(kind), P(dx.p), P(dr.p), P(db.p), P(dx.p), P(NULL)});
      cmp("y (in place)", dx.get(), wy);
      /* Inverse of the output, in place: x again. */
      launchR("lrmf_k_actnorm_inv", n, {I(n), I(d), I(kind), P(dx.p), P(dr.p), P(db.p), P(dx.p)});
      cmp("x = inv(fwd(x))", dx.get(), dbl(x), 1e-5, &wy);
      finish(("actnorm_fwd/inv " + k).c_str());
    }
    {
      BF dx(x), dr(r), db(b), ddy(dy), ddl(dld), ddx(VF(n * d, NAN)), gdr(VF(d, NAN)), gdb(VF(d, NAN));
      launchC("lrmf_k_actnorm_bwd_params", d,
              {I(n), I(d), I(kind), P(dx.p), P(dr.p), P(db.p), P(ddy.p), P(ddl.p), P(gdr.p), P(gdb.p)});
      launchR("lrmf_k_actnorm_bwd_dx", n * d, {I(n), I(d), I(kind), P(dr.p), P(ddy.p), P(ddx.p)});
      cmp("dx", ddx.get(), wdx);
      cmp("dr", gdr.get(), wdr, 1e-5, &sdr);
      cmp("db", gdb.get(), wdb, 1e-5, &sdb);
      /* n == 0 zeroes dr and db (x, b, dy not read). */
      launchC("lrmf_k_actnorm_bwd_params", d,
              {I(0), I(d), I(kind), P(NULL), P(dr.p), P(NULL), P(NULL), P(NULL), P(gdr.p), P(gdb.p)});
      cmp("dr (n = 0)", gdr.get(), VD(d, 0.0), 0);
      cmp("db (n = 0)", gdb.get(), VD(d, 0.0), 0);
      finish(("actnorm_bwd " + k).c_str());
    }
  }
  {
    /* Unknown kind: nothing written. */
    BF dx(rnd(n * d)), dr(rnd(d)), dyy(VF(n * d, 5.0f));
    launchR("lrmf_k_actnorm_fwd", n, {I(n), I(d), I(3), P(dx.p), P(dr.p), P(dr.p), P(dyy.p), P(NULL)});
    launchR("lrmf_k_actnorm_bwd_dx", n * d, {I(n), I(d), I(0), P(dr.p), P(dx.p), P(dyy.p)});
    cmp("y", dyy.get(), VD(n * d, 5.0), 0);
    finish("actnorm invalid kind");
  }
  {
    /* x = W⁻¹ y with W = P·L·U; checked through W x = y. */
    VF lu = rnd(d * d), y = rnd(n * d);
    std::vector<int32_t> perm(d);
    for (int64_t k = 0; k < d; k++) {
      perm[k] = (int32_t)((3 * k + 2) % d); /* a permutation: gcd(3, 7) = 1 */
      lu[k * d + k] = lu[k * d + k] >= 0 ? 1 + lu[k * d + k] : -1 + lu[k * d + k];
    }
    BF dlu(lu), dyy(y), dx(VF(n * d, NAN));
    Buf<int32_t> dp(perm);
    launchR("lrmf_k_lu_solve", n, {I(n), I(d), P(dlu.p), P(dp.p), P(dyy.p), P(dx.p)});
    const VF x = dx.get();
    VD wy(n * d), sy(n * d);
    for (int64_t i = 0; i < n; i++)
      for (int64_t k = 0; k < d; k++) { /* (L·U·x)_k is row perm[k] of W x */
        double v = 0, a = 0;
        for (int64_t m = 0; m <= k; m++) {
          const double l = m == k ? 1.0 : (double)lu[k * d + m];
          for (int64_t j = m; j < d; j++)
            v += l * lu[m * d + j] * x[i * d + j], a += fabs(l * lu[m * d + j] * x[i * d + j]);
        }
        wy[i * d + perm[k]] = v, sy[i * d + perm[k]] = a;
      }
    cmp("W·x", y, wy, 1e-5, &sy);
    finish("lu_solve");
  }
}

/* ---- gemm ----------------------------------------------------------------- */

static void gemm_case(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, double beta,
                      int pad) {
  const int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const int64_t lda = ac + pad, ldb = bc + pad, ldc = n + pad;
  VF a = rnd(ar * lda), b = rnd(br * ldb), c = rnd(m * ldc);
  if (beta == 0)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++)
        c[i * ldc + j] = NAN; /* must not be read */
  const double fa = (float)alpha, fb = (float)beta;
  VD want = dbl(c), sc = dbl(c); /* padding columns must stay as they are */
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0, sm = 0;
      for (int64_t p = 0; p < k; p++) {
        const double av = ta ? a[p * lda + i] : a[i * lda + p];
        const double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
        sm += fabs(av * bv);
      }
      const double c0 = fb == 0 ? 0 : fb * c[i * ldc + j];
      want[i * ldc + j] = fa * s + c0;
      sc[i * ldc + j] = fabs(fa) * sm + fabs(c0);
    }
  BF da(a), db(b), dc(c);
  launchG(m, n,
          {I(ta), I(tb), I(m), I(n), I(k), D(alpha), P(da.p), I(lda), P(db.p), I(ldb), D(beta),
           P(dc.p), I(ldc)});
  cmp("c", dc.get(), want, 1e-5, &sc);
  char name[128];
  snprintf(name, sizeof name, "gemm ta=%d tb=%d %lldx%lldx%lld alpha=%g beta=%g pad=%d", ta, tb,
           (long long)m, (long long)n, (long long)k, alpha, beta, pad);
  finish(name);
}

static void t_gemm() {
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      gemm_case(ta, tb, 37, 45, 29, 1.3, 0.0, 3);
      gemm_case(ta, tb, 37, 45, 29, -0.6, 0.7, 0);
      gemm_case(ta, tb, 130, 70, 150, 1.0, 1.0, 1);
    }
  gemm_case(0, 0, 16, 16, 16, 1.0, 0.0, 0);
  gemm_case(0, 1, 1, 1, 1, 2.0, 0.5, 0);
  gemm_case(0, 0, 20, 19, 0, 1.0, 0.5, 2); /* k == 0: C = beta·C */
  gemm_case(1, 0, 20, 19, 0, 1.0, 0.0, 2); /* k == 0, beta 0: zeros */
  if (!g_emulated)
    /* More tile rows than gridDim.y may hold: the kernel's tile stride. */
    gemm_case(0, 0, (int64_t)LRMF_K_GRID_MAX * LRMF_K_TILE + 40, 3, 2, 1.0, 0.0, 0);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s lrmf_kernels.fatbin\n", argv[0]);
    return 2;
  }
  const int st = backend_init(argv[1]);
  if (st == 1) {
    printf("no CUDA device: skipping the CUDA kernel tests\n");
    return 0;
  }
  if (st != 0)
    return 2;
  t_fill_axpy();
  t_dot_sum();
  t_bias();
  t_act();
  t_gauss();
  t_flow();
  t_moves();
  t_coupling();
  t_glow();
  t_gemm();
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

/*
 * ode_emu_test.cc — checks the logic of the CUDA FFJORD kernels
 * (lrmf_k_ode_* in lrmf_kernels.cu) without a GPU: the .cu is compiled as
 * host C++ and each kernel is run thread by thread, then compared with the
 * CPU kernels of csrc/cpu/ode.inc (lrmf_*_f32) on the same inputs, after
 * converting the GPU's row-minor layouts (gpart, states, tape, info). The
 * Glow kernels (lrmf_k_actnorm_*, lrmf_k_lu_solve) are checked the same way
 * against lrmf_actnorm_*_f32 and lrmf_lu_solve_f32 (test_glow).
 * Not part of any build; from the repository root:
 *
 *   gcc -O2 -std=gnu11 -Icsrc/include -c -o /tmp/lrmf_cpu.o csrc/cpu/lrmf_cpu.c
 *   g++ -std=c++17 -O2 -Wall -Wno-unknown-pragmas -Icsrc/cuda \
 *       -Icsrc/include -o /tmp/ode_emu csrc/cuda/ode_emu_test.cc \
 *       /tmp/lrmf_cpu.o -lm
 *   /tmp/ode_emu
 *
 * Each "block" has one thread (so θ is fully staged before the barrier,
 * which is a no-op here) and the grid has 3 blocks, so rows also exercise
 * the grid-stride loop. Both sides run the same row code
 * (csrc/common/ode_rows.inc) in double, so built like this they agree to
 * the bit; the test allows 2e-6 relative to max(|cpu|, 1), which leaves
 * room for FMA contraction under other flags.
 * What it cannot show: device maths (FMA contraction, tanh accuracy),
 * local-memory limits, shared-memory sizing on real hardware; the GPU run
 * (tests/gpu/run.sh, TestConformance/ODE) covers those.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

struct emu_u3 {
  unsigned x, y, z;
};
static emu_u3 threadIdx, blockIdx, blockDim, gridDim;
static void __syncthreads() {}
static double emu_shared[6144];
#define __global__
#define __device__
#define __shared__ static
#define __forceinline__ inline
#define __launch_bounds__(...)
#define LRMF_K extern "C"
#define LRMF_K_DYNAMIC_SHARED(T, name) T *name = (T *)emu_shared
#include "lrmf_kernels.cu"

#include "lrmf.h"

/* run calls body for every (block, thread) of a grid of g blocks of one
 * thread each. */
template <class F> static void run(unsigned g, F body) {
  gridDim = {g, 1, 1};
  blockDim = {1, 1, 1};
  threadIdx = {0, 0, 0};
  for (unsigned b = 0; b < g; b++) {
    blockIdx = {b, 0, 0};
    body();
  }
}

static int failures;
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand() { /* xorshift64*, uniform in [-1, 1) */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (double)((rng * 2685821657736338717ull) >> 11) / 4503599627370496.0 - 1.0;
}
static std::vector<float> rnd(size_t n, double scale) {
  std::vector<float> v(n);
  for (auto &x : v)
    x = (float)(scale * urand());
  return v;
}

static void cmp(const char *what, const char *cs, const float *got,
                const float *want, size_t n) {
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    const double sc = fmax(fabs((double)want[i]), 1.0);
    const double d = fabs((double)got[i] - (double)want[i]);
    if (!(d <= 2e-6 * sc)) {
      if (bad < 3)
        fprintf(stderr, "FAIL %s %s[%zu]: gpu %.9g cpu %.9g\n", cs, what, i,
                got[i], want[i]);
      bad++;
    }
  }
  if (bad)
    failures++;
}
static void cmp64(const char *what, const char *cs, const int64_t *got,
                  const int64_t *want, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (got[i] != want[i]) {
      fprintf(stderr, "FAIL %s %s[%zu]: gpu %lld cpu %lld\n", cs, what, i,
              (long long)got[i], (long long)want[i]);
      failures++;
      return;
    }
}

/* gsum: θ-gradient rows reduced as the C(np) launch would. */
static void gsum(int64_t n, int64_t np, const double *gpart, float *gt) {
  run(2, [&] {
    blockDim = {1, 1, 1};
    lrmf_k_ode_gsum(n, np, gpart, gt);
  });
}

static void test(const std::vector<int64_t> &dims, int64_t n, int64_t k) {
  char cs[128];
  snprintf(cs, sizeof cs, "(nl=%zu D=%lld n=%lld k=%lld)", dims.size(),
           (long long)dims.back(), (long long)n, (long long)k);
  const int64_t nl = (int64_t)dims.size(), D = dims.back();
  const int64_t np = lrmf_odefunc_nparams_f32(nl, dims.data());
  const int64_t lw = lrmf_odefunc_work_f32(nl, dims.data(), k);
  std::vector<double> work((size_t)lw);
  auto th = rnd(np, 0.8), z = rnd(n * D, 1.5), eps = rnd(n * k * D + 1, 1.0);
  const float *ep = k > 0 ? eps.data() : NULL;
  auto az = rnd(n * D, 1.0), atr = rnd(n, 1.0);
  const unsigned g = 3;
  std::vector<double> gpart((size_t)(np * n));

  /* forward and VJP */
  std::vector<float> dz(n * D), tr(n), dzc(n * D), trc(n);
  run(g, [&] {
    lrmf_k_ode_fwd(n, nl, dims.data(), th.data(), 0.3, z.data(), k, ep,
                   dz.data(), tr.data());
  });
  lrmf_odefunc_fwd_f32(n, nl, dims.data(), th.data(), 0.3f, z.data(), k, ep,
                       dzc.data(), trc.data(), work.data(), lw, LRMF_ODE_PORTABLE);
  cmp("fwd.dz", cs, dz.data(), dzc.data(), dz.size());
  cmp("fwd.trace", cs, tr.data(), trc.data(), tr.size());
  std::vector<float> gz(n * D), gzc(n * D), gt(np), gtc(np);
  run(g, [&] {
    lrmf_k_ode_vjp(n, nl, dims.data(), th.data(), 0.3, z.data(), k, ep,
                   az.data(), atr.data(), gz.data(), gpart.data());
  });
  gsum(n, np, gpart.data(), gt.data());
  lrmf_odefunc_vjp_f32(n, nl, dims.data(), th.data(), 0.3f, z.data(), k, ep,
                       az.data(), atr.data(), gzc.data(), gtc.data(),
                       work.data(), lw, LRMF_ODE_PORTABLE);
  cmp("vjp.gz", cs, gz.data(), gzc.data(), gz.size());
  cmp("vjp.gtheta", cs, gt.data(), gtc.data(), gt.size());

  /* RK4 record and backward, both directions */
  auto a1 = rnd(n * D, 1.0), ald = rnd(n, 1.0);
  for (int dir = 0; dir < 2; dir++) {
    const double t0 = dir ? 1.0 : 0.0, t1 = dir ? -0.5 : 1.0;
    const int64_t steps = 4;
    std::vector<float> z1(n * D), ld(n), z1c(n * D), ldc(n);
    std::vector<double> st(steps * D * n), stc(n * steps * D);
    run(g, [&] {
      lrmf_k_ode_rk4(n, nl, dims.data(), th.data(), t0, t1, steps, z.data(),
                     k, ep, z1.data(), ld.data(), st.data());
    });
    lrmf_ode_rk4_save_f32(n, nl, dims.data(), th.data(), t0, t1, steps,
                          z.data(), k, ep, z1c.data(), ldc.data(), stc.data(),
                          NULL, work.data(), lw, LRMF_ODE_PORTABLE);
    cmp("rk4.z1", cs, z1.data(), z1c.data(), z1.size());
    cmp("rk4.logdet", cs, ld.data(), ldc.data(), ld.size());
    std::vector<float> sg(st.size()), sc(st.size());
    for (int64_t i = 0; i < n; i++)
      for (int64_t s = 0; s < steps; s++)
        for (int64_t j = 0; j < D; j++) {
          sg[(i * steps + s) * D + j] = (float)st[(s * D + j) * n + i];
          sc[(i * steps + s) * D + j] = (float)stc[(i * steps + s) * D + j];
        }
    cmp("rk4.states", cs, sg.data(), sc.data(), sg.size());
    run(g, [&] {
      lrmf_k_ode_rk4_bwd(n, nl, dims.data(), th.data(), t0, t1, steps, k, ep,
                         st.data(), a1.data(), ald.data(), gz.data(),
                         gpart.data());
    });
    gsum(n, np, gpart.data(), gt.data());
    lrmf_ode_rk4_bwd_f32(n, nl, dims.data(), th.data(), t0, t1, steps, k, ep,
                         stc.data(), a1.data(), ald.data(), gzc.data(),
                         gtc.data(), NULL, NULL, work.data(), lw, LRMF_ODE_PORTABLE);
    cmp("rk4_bwd.gz0", cs, gz.data(), gzc.data(), gz.size());
    cmp("rk4_bwd.gtheta", cs, gt.data(), gtc.data(), gt.size());
  }

  /* Dormand–Prince record and backward, both directions */
  const int64_t ms = 200, per = D + 2;
  for (int dir = 0; dir < 2; dir++) {
    const double t0 = dir ? 1.0 : 0.0, t1 = dir ? 0.0 : 1.0;
    std::vector<float> z1(n * D), ld(n), z1c(n * D), ldc(n);
    std::vector<double> tp(ms * per * n), tpc(n * ms * per);
    std::vector<int64_t> info(3 * n), nacc(n);
    run(g, [&] {
      lrmf_k_ode_dopri5(n, nl, dims.data(), th.data(), t0, t1, 1e-6, 1e-6,
                        0.05, ms, z.data(), k, ep, z1.data(), ld.data(),
                        tp.data(), info.data());
    });
    int64_t nfe = 0, acc = 0, nfeg = 0, accg = 0;
    int rc = lrmf_ode_dopri5_save_f32(
        n, nl, dims.data(), th.data(), t0, t1, 1e-6, 1e-6, 0.05, ms, z.data(),
        k, ep, z1c.data(), ldc.data(), tpc.data(), nacc.data(), &nfe, &acc,
        work.data(), lw, LRMF_ODE_PORTABLE);
    if (rc != 0) {
      fprintf(stderr, "FAIL %s dopri5: cpu status %d\n", cs, rc);
      failures++;
    }
    for (int64_t i = 0; i < n; i++) {
      if (info[i] != 0) {
        fprintf(stderr, "FAIL %s dopri5: row %lld status %lld\n", cs,
                (long long)i, (long long)info[i]);
        failures++;
      }
      nfeg += info[n + i];
      accg += info[2 * n + i];
    }
    cmp64("dopri5.nacc", cs, info.data() + 2 * n, nacc.data(), n);
    cmp64("dopri5.nfe", cs, &nfeg, &nfe, 1);
    cmp64("dopri5.accepted", cs, &accg, &acc, 1);
    cmp("dopri5.z1", cs, z1.data(), z1c.data(), z1.size());
    cmp("dopri5.logdet", cs, ld.data(), ldc.data(), ld.size());
    std::vector<float> tg, tc;
    for (int64_t i = 0; i < n; i++)
      for (int64_t m = 0; m < nacc[i]; m++)
        for (int64_t c = 0; c < per; c++) {
          tg.push_back((float)tp[(m * per + c) * n + i]);
          tc.push_back((float)tpc[(i * ms + m) * per + c]);
        }
    cmp("dopri5.tape", cs, tg.data(), tc.data(), tg.size());
    run(g, [&] {
      lrmf_k_ode_dopri5_bwd(n, nl, dims.data(), th.data(), ms, k, ep,
                            tp.data(), info.data(), a1.data(), ald.data(),
                            gz.data(), gpart.data());
    });
    gsum(n, np, gpart.data(), gt.data());
    lrmf_ode_dopri5_bwd_f32(n, nl, dims.data(), th.data(), ms, k, ep,
                            tpc.data(), nacc.data(), a1.data(), ald.data(),
                            gzc.data(), gtc.data(), NULL, NULL, work.data(),
                            lw, LRMF_ODE_PORTABLE);
    cmp("dopri5_bwd.gz0", cs, gz.data(), gzc.data(), gz.size());
    cmp("dopri5_bwd.gtheta", cs, gt.data(), gtc.data(), gt.size());
  }

  /* Typed failures, per row: max steps, a NaN in θ, step underflow. */
  {
    std::vector<float> z1(n * D), ld(n);
    std::vector<int64_t> info(3 * n);
    run(g, [&] {
      lrmf_k_ode_dopri5(n, nl, dims.data(), th.data(), 0, 1, 1e-10, 1e-10,
                        1e-3, 1, z.data(), k, ep, z1.data(), ld.data(), NULL,
                        info.data());
    });
    for (int64_t i = 0; i < n; i++)
      if (info[i] != LRMF_ODE_MAXSTEPS) {
        fprintf(stderr, "FAIL %s max steps: row %lld status %lld\n", cs,
                (long long)i, (long long)info[i]);
        failures++;
      }
    auto bad = th;
    bad[np / 2] = NAN;
    run(g, [&] {
      lrmf_k_ode_dopri5(n, nl, dims.data(), bad.data(), 0, 1, 1e-6, 1e-6, 0.1,
                        100, z.data(), k, ep, z1.data(), ld.data(), NULL,
                        info.data());
    });
    for (int64_t i = 0; i < n; i++)
      if (info[i] != LRMF_ODE_NONFINITE) {
        fprintf(stderr, "FAIL %s NaN θ: row %lld status %lld\n", cs,
                (long long)i, (long long)info[i]);
        failures++;
      }
    run(g, [&] {
      lrmf_k_ode_dopri5(n, nl, dims.data(), th.data(), 0, 1, 1e-300, 0, 0.1,
                        1000, z.data(), k, ep, z1.data(), ld.data(), NULL,
                        info.data());
    });
    for (int64_t i = 0; i < n; i++)
      if (info[i] != LRMF_ODE_UNDERFLOW) {
        fprintf(stderr, "FAIL %s underflow: row %lld status %lld\n", cs,
                (long long)i, (long long)info[i]);
        failures++;
      }
  }
}

/* The Glow kernels against the CPU's, for both ActNorm kinds, a width above
 * the CPU's 64-column chunk, and in place (y = x, dx = dy). */
static void test_glow(int64_t n, int64_t d, int kind) {
  char cs[64];
  snprintf(cs, sizeof cs, "glow(n=%lld,d=%lld,kind=%d)", (long long)n,
           (long long)d, kind);
  const unsigned g = 3;
  auto x = rnd(n * d, 2), r = rnd(d, 1.5), b = rnd(d, 1), dy = rnd(n * d, 1),
       wl = rnd(n, 1), ld0 = rnd(n, 1);
  if (d > 2)
    r[2] = -30; /* softplus(r + 2) tiny */
  std::vector<float> y(n * d), yc(n * d), ld(ld0), ldc(ld0);
  run(g, [&] {
    lrmf_k_actnorm_fwd(n, d, kind, x.data(), r.data(), b.data(), y.data(),
                       ld.data());
  });
  lrmf_actnorm_fwd_f32(n, d, kind, x.data(), r.data(), b.data(), yc.data(),
                       ldc.data());
  cmp("actnorm_fwd.y", cs, y.data(), yc.data(), n * d);
  cmp("actnorm_fwd.logdet", cs, ld.data(), ldc.data(), n);
  std::vector<float> xi(y), xic(n * d);
  run(g, [&] {
    lrmf_k_actnorm_inv(n, d, kind, xi.data(), r.data(), b.data(), xi.data());
  });
  lrmf_actnorm_inv_f32(n, d, kind, yc.data(), r.data(), b.data(), xic.data());
  cmp("actnorm_inv (in place)", cs, xi.data(), xic.data(), n * d);
  std::vector<float> dx(dy), dr(d), db(d), dxc(n * d), drc(d), dbc(d);
  run(g, [&] {
    blockDim = {1, 1, 1};
    lrmf_k_actnorm_bwd_params(n, d, kind, x.data(), r.data(), b.data(),
                              dx.data(), wl.data(), dr.data(), db.data());
  });
  run(g, [&] {
    lrmf_k_actnorm_bwd_dx(n, d, kind, r.data(), dx.data(), dx.data());
  });
  lrmf_actnorm_bwd_f32(n, d, kind, x.data(), r.data(), b.data(), dy.data(),
                       wl.data(), dxc.data(), drc.data(), dbc.data());
  cmp("actnorm_bwd.dx (in place)", cs, dx.data(), dxc.data(), n * d);
  cmp("actnorm_bwd.dr", cs, dr.data(), drc.data(), d);
  cmp("actnorm_bwd.db", cs, db.data(), dbc.data(), d);
  /* lu_solve with a diagonally safe U and a reversed permutation. */
  auto lu = rnd(d * d, 1);
  std::vector<int32_t> perm(d);
  for (int64_t k = 0; k < d; k++) {
    perm[k] = (int32_t)(d - 1 - k);
    lu[k * d + k] = (float)(lu[k * d + k] >= 0 ? 1.0 + lu[k * d + k]
                                               : -1.0 + lu[k * d + k]);
  }
  std::vector<float> s(n * d), sc(n * d);
  run(g, [&] {
    lrmf_k_lu_solve(n, d, lu.data(), perm.data(), x.data(), s.data());
  });
  lrmf_lu_solve_f32(n, d, lu.data(), perm.data(), x.data(), sc.data());
  cmp("lu_solve", cs, s.data(), sc.data(), n * d);
}

int main(void) {
  const std::vector<std::vector<int64_t>> nets = {
      {3, 16, 16, 16, 2}, {4, 5, 3}, {2, 1}, {9, 16, 16, 16, 8}, {5, 32, 32, 4}};
  int cases = 0;
  for (const auto &dims : nets)
    for (int64_t n : {1, 7})
      for (int64_t k : {0, 3}) {
        test(dims, n, k);
        cases++;
      }
  for (int kind : {LRMF_ACTNORM_EXP, LRMF_ACTNORM_SOFTPLUS})
    for (int64_t n : {1, 7})
      for (int64_t d : {1, 5, 70}) {
        test_glow(n, d, kind);
        cases++;
      }
  if (failures) {
    printf("ode_emu: %d failures\n", failures);
    return 1;
  }
  printf("ode_emu: %d cases, every lrmf_k_ode_*, lrmf_k_actnorm_* and "
         "lrmf_k_lu_solve kernel matches the CPU kernels\n",
         cases);
  return 0;
}

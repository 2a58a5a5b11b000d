/*
 * emu_backend.h — a CPU emulation of the device layer of test_kernels.cu,
 * for checking the kernels' logic on machines without a GPU. Not part of
 * any build; from the repository root:
 *
 *   g++ -std=c++20 -O2 -Wall -Wno-unknown-pragmas -x c++ -Icsrc/cuda \
 *       -DLRMF_TEST_BACKEND='"emu_backend.h"' -o /tmp/lrmf_cuda_emu \
 *       csrc/cuda/test_kernels.cu && EMU_CAP=64 /tmp/lrmf_cuda_emu x
 *
 * lrmf_kernels.cu is compiled as host C++ and each kernel of the list
 * (csrc/include/lrmf_kernel_list.def) is callable by name through
 * the same 8-byte argument array the driver gets (a static_assert rejects
 * any parameter that is not 8 bytes). Blocks run one after another; the
 * threads of a block run in order, except in kernels that call
 * __syncthreads (every launch rule but R), whose threads are ucontext
 * coroutines resumed once per barrier phase. EMU_CAP=k caps those kernels' grids at k blocks
 * per dimension (they stride over outputs and tiles), which keeps the run
 * to a minute or two. Cases that need gigabytes or very long grids are
 * skipped (g_emulated). What it cannot show: device maths (FMA contraction,
 * tanhf/expf accuracy), memory-model races, launch limits.
 */
#include <ucontext.h>

#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

struct emu_u3 {
  unsigned x, y, z;
};
static emu_u3 threadIdx, blockIdx, blockDim, gridDim;

static ucontext_t emu_sched;
static std::vector<ucontext_t> emu_ctx; /* empty: threads run in order */
static unsigned emu_cur;
static void __syncthreads() {
  if (emu_ctx.empty()) {
    fprintf(stderr, "emu: an R-rule kernel called __syncthreads\n");
    abort();
  }
  swapcontext(&emu_ctx[emu_cur], &emu_sched);
}
#define __global__
#define __device__
#define __shared__ static /* one block at a time: static is per block */
#define __forceinline__ inline
#define __launch_bounds__(...)
#define LRMF_K extern "C"
/* The ODE kernels' θ staging (test_kernels.cu does not launch them; see
 * ode_emu_test.cc for their emulated check). */
#define LRMF_K_DYNAMIC_SHARED(T, name) static T name[LRMF_K_ODE_MAXP]
#include "lrmf_kernels.cu"

static const bool g_emulated = true;

template <class T> static T emu_arg(void *p) {
  static_assert(sizeof(T) == 8, "kernel parameter is not 8 bytes");
  T v;
  memcpy(&v, p, 8);
  return v;
}
template <class... A, size_t... K>
static void emu_call(void (*f)(A...), void **pp, std::index_sequence<K...>) {
  f(emu_arg<A>(pp[K])...);
}
template <class... A>
static std::function<void(void **)> emu_wrap(void (*f)(A...)) {
  return [f](void **pp) { emu_call(f, pp, std::index_sequence_for<A...>{}); };
}
/* Every kernel of the list (csrc/include/lrmf_kernel_list.def) with its
 * launch rule; the kernels of every rule but R call __syncthreads. */
struct emu_kernel {
  std::function<void(void **)> fn;
  bool syncs;
};
static const std::map<std::string, emu_kernel> emu_fns = {
#define LRMF_CUDA_KERNEL(name, rule, units, params)                            \
  {"lrmf_k_" #name, {emu_wrap(lrmf_k_##name), #rule[0] != 'R'}},
#include "../include/lrmf_kernel_list.def"
};

static int backend_init(const char *) {
  setvbuf(stdout, NULL, _IONBF, 0);
  return getenv("EMU_NODEV") ? 1 : 0;
}
static void *dev_alloc(size_t b) { return b ? malloc(b) : NULL; }
static void dev_free(void *p) { free(p); }
static void dev_put(void *d, const void *h, size_t b) {
  if (b)
    memcpy(d, h, b);
}
static void dev_get(void *h, const void *d, size_t b) {
  if (b)
    memcpy(h, d, b);
}

static const std::function<void(void **)> *emu_fn;
static void **emu_pp;
static std::vector<char> emu_done;
static void emu_thread() {
  (*emu_fn)(emu_pp);
  emu_done[emu_cur] = 1;
}

static std::string launch_raw(const char *name, Dim g, Dim b,
                              std::vector<A8> &args) {
  auto it = emu_fns.find(name);
  if (it == emu_fns.end())
    return "no such kernel";
  if (g.x == 0 || g.y == 0 || g.z != 1 || b.z != 1 || b.x * b.y == 0 ||
      b.x * b.y > 1024)
    return "bad launch configuration";
  std::vector<void *> pp(args.size());
  for (size_t i = 0; i < args.size(); i++)
    pp[i] = &args[i].bits;
  const bool sync = it->second.syncs;
  gridDim = {g.x, g.y, 1};
  blockDim = {b.x, b.y, 1};
  if (sync && getenv("EMU_CAP")) {
    const unsigned cap = (unsigned)atoi(getenv("EMU_CAP"));
    if (cap > 0 && gridDim.x > cap)
      gridDim.x = cap;
    if (cap > 0 && gridDim.y > cap)
      gridDim.y = cap;
  }
  const unsigned nt = b.x * b.y;
  std::vector<std::vector<char>> stacks(sync ? nt : 0);
  for (unsigned by = 0; by < gridDim.y; by++)
    for (unsigned bx = 0; bx < gridDim.x; bx++) {
      blockIdx = {bx, by, 0};
      if (!sync) {
        emu_ctx.clear();
        for (unsigned t = 0; t < nt; t++) {
          threadIdx = {t % b.x, t / b.x, 0};
          it->second.fn(pp.data());
        }
        continue;
      }
      emu_ctx.assign(nt, ucontext_t());
      emu_done.assign(nt, 0);
      emu_fn = &it->second.fn;
      emu_pp = pp.data();
      for (unsigned t = 0; t < nt; t++) {
        stacks[t].resize(256 * 1024);
        getcontext(&emu_ctx[t]);
        emu_ctx[t].uc_stack.ss_sp = stacks[t].data();
        emu_ctx[t].uc_stack.ss_size = stacks[t].size();
        emu_ctx[t].uc_link = &emu_sched;
        makecontext(&emu_ctx[t], emu_thread, 0);
      }
      /* Each pass resumes every live thread up to its next barrier (or its
       * end): one pass is one barrier phase. */
      for (unsigned left = nt; left > 0;)
        for (unsigned t = 0; t < nt; t++) {
          if (emu_done[t])
            continue;
          emu_cur = t;
          threadIdx = {t % b.x, t / b.x, 0};
          swapcontext(&emu_sched, &emu_ctx[t]);
          if (emu_done[t])
            left--;
        }
      emu_ctx.clear();
    }
  return "";
}

/*
 * fakecuda.c — a CPU stand-in for libcuda.so.1, for checking the HOST logic
 * of native/cuda on a machine without a GPU (tests/gpu/fakecuda/run.sh).
 *
 * It implements the few driver entry points that gorgonia.org/cu, the probe
 * and native/cuda call at run time (the binary binds the others lazily and
 * never calls them), with "device" memory in host malloc, and runs each
 * lrmf_k_* launch synchronously with the CPU kernels of csrc/cpu (the CUDA
 * kernels are specified as those kernels). Its kernel table, launch rules
 * included, comes from the kernel list (csrc/include/lrmf_kernel_list.def). Along the way it checks what a
 * real driver would reject or what would silently go wrong on a GPU:
 *  - a call without a current, live context (CUDA_ERROR_INVALID_CONTEXT);
 *  - grid or block dimensions different from the launch rules of
 *    csrc/cuda/lrmf_kernels.h (R, C, S, G), and zero-sized grids;
 *  - every pointer argument and copy range inside a live allocation;
 *  - a CPU kernel's argument error (EINVAL) becomes CUDA_ERROR_INVALID_VALUE;
 *  - the FFJORD launches (rule O): dims in device memory, dynamic shared
 *    memory of exactly 8·np bytes, and the row-minor layouts of gpart,
 *    states, tape and info, which ode_launch converts for the CPU kernels.
 * It says nothing about the CUDA kernels themselves, cuBLAS, or real
 * asynchrony: those need the GPU run (tests/gpu/run.sh).
 */
#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lrmf.h"

#define FAIL(rc, ...)                                   \
	do {                                                \
		fprintf(stderr, "fakecuda: " __VA_ARGS__);      \
		fputc('\n', stderr);                            \
		return (rc);                                    \
	} while (0)

struct block {
	char *p;
	size_t n;
};

struct CUctx_st {
	int destroyed;
	struct block *blocks;
	size_t nblocks, cap;
};

struct CUfunc_st {
	int kernel; /* index into kernels[] */
};

static __thread CUcontext current;

static CUresult need_ctx(const char *op) {
	if (!current) FAIL(CUDA_ERROR_INVALID_CONTEXT, "%s without a current context", op);
	if (current->destroyed) FAIL(CUDA_ERROR_CONTEXT_IS_DESTROYED, "%s on a destroyed context", op);
	return CUDA_SUCCESS;
}

/* inside reports whether [p, p+n) lies in one live allocation (n may be 0:
 * then p must be inside or one past the end of one). */
static int inside(uintptr_t p, size_t n) {
	for (size_t i = 0; i < current->nblocks; i++) {
		uintptr_t b = (uintptr_t)current->blocks[i].p;
		if (p >= b && p + n <= b + current->blocks[i].n) return 1;
	}
	return 0;
}

CUresult cuInit(unsigned int flags) { (void)flags; return CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int *v) { *v = 11080; return CUDA_SUCCESS; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return CUDA_SUCCESS; }
CUresult cuDeviceGet(CUdevice *d, int ordinal) {
	if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
	*d = 0;
	return CUDA_SUCCESS;
}
CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
	(void)d;
	snprintf(name, len, "fakecuda (CPU stand-in)");
	return CUDA_SUCCESS;
}
CUresult cuGetErrorName(CUresult rc, const char **s) {
	*s = rc == 0 ? "CUDA_SUCCESS" : "CUDA_ERROR_FAKE";
	return CUDA_SUCCESS;
}
CUresult cuGetErrorString(CUresult rc, const char **s) {
	*s = rc == 0 ? "no error" : "fakecuda error";
	return CUDA_SUCCESS;
}

CUresult cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev) {
	(void)flags;
	(void)dev;
	CUcontext c = calloc(1, sizeof *c);
	*pctx = current = c;
	return CUDA_SUCCESS;
}
/* The primary context: retained and released with a count; at zero it is
 * destroyed (its memory freed) and the next retain makes a new one. */
static CUcontext primary;
static int primary_refs;

static CUresult destroy_ctx(CUcontext c);

CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev) {
	if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
	if (!primary) primary = calloc(1, sizeof *primary);
	primary_refs++;
	*pctx = primary;
	return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease(CUdevice dev) {
	if (dev != 0 || !primary || primary_refs <= 0) return CUDA_ERROR_INVALID_CONTEXT;
	if (--primary_refs == 0) {
		if (primary->nblocks)
			fprintf(stderr, "fakecuda: primary context released with %zu allocations live\n", primary->nblocks);
		destroy_ctx(primary);
		primary = NULL;
	}
	return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *pctx) { *pctx = current; return CUDA_SUCCESS; }
CUresult cuCtxSetCurrent(CUcontext c) { current = c; return CUDA_SUCCESS; }
CUresult cuCtxDestroy(CUcontext c) { return destroy_ctx(c); }

static CUresult destroy_ctx(CUcontext c) {
	if (!c || c->destroyed) return CUDA_ERROR_INVALID_CONTEXT;
	for (size_t i = 0; i < c->nblocks; i++) free(c->blocks[i].p);
	free(c->blocks);
	c->blocks = NULL;
	c->nblocks = c->cap = 0;
	c->destroyed = 1; /* kept, so stale handles compare unequal to new ones */
	if (current == c) current = NULL;
	return CUDA_SUCCESS;
}

CUresult cuModuleLoadData(CUmodule *m, const void *image) {
	CUresult rc = need_ctx("cuModuleLoadData");
	if (rc) return rc;
	if (!image) return CUDA_ERROR_INVALID_VALUE;
	*m = (CUmodule)(uintptr_t)1;
	return CUDA_SUCCESS;
}
CUresult cuModuleUnload(CUmodule m) { (void)m; return CUDA_SUCCESS; }

/* The kernel table (below, from the kernel list). */
static int kernel_index(const char *name);

CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
	(void)m;
	const int i = kernel_index(name);
	if (i < 0) return CUDA_ERROR_NOT_FOUND;
	CUfunction fn = calloc(1, sizeof *fn);
	fn->kernel = i;
	*f = fn;
	return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream *s, unsigned int flags) {
	(void)flags;
	CUresult rc = need_ctx("cuStreamCreate");
	if (rc) return rc;
	*s = (CUstream)(uintptr_t)2;
	return CUDA_SUCCESS;
}
CUresult cuStreamDestroy(CUstream s) { (void)s; return CUDA_SUCCESS; }
CUresult cuStreamSynchronize(CUstream s) { (void)s; return need_ctx("cuStreamSynchronize"); }
CUresult cuCtxSynchronize(void) { return need_ctx("cuCtxSynchronize"); }

CUresult cuMemAlloc(CUdeviceptr *p, size_t n) {
	CUresult rc = need_ctx("cuMemAlloc");
	if (rc) return rc;
	if (n == 0) return CUDA_ERROR_INVALID_VALUE;
	/* LRMF_FAKECUDA_MEM_LIMIT=BYTES caps the context's memory, so that
	 * tests can run out of it (native/cuda's TestOutOfMemoryIsAnError). */
	const char *limit = getenv("LRMF_FAKECUDA_MEM_LIMIT");
	if (limit && *limit) {
		size_t used = 0;
		for (size_t i = 0; i < current->nblocks; i++) used += current->blocks[i].n;
		if (used + n > (size_t)strtoull(limit, NULL, 10)) return CUDA_ERROR_OUT_OF_MEMORY;
	}
	void *q = NULL;
	if (posix_memalign(&q, 256, n)) return CUDA_ERROR_OUT_OF_MEMORY;
	memset(q, 0xA5, n); /* not zero: New must clear what it hands out */
	if (current->nblocks == current->cap) {
		current->cap = current->cap ? 2 * current->cap : 64;
		current->blocks = realloc(current->blocks, current->cap * sizeof *current->blocks);
	}
	current->blocks[current->nblocks++] = (struct block){q, n};
	*p = (CUdeviceptr)(uintptr_t)q;
	return CUDA_SUCCESS;
}
CUresult cuMemFree(CUdeviceptr p) {
	CUresult rc = need_ctx("cuMemFree");
	if (rc) return rc;
	for (size_t i = 0; i < current->nblocks; i++) {
		if ((uintptr_t)current->blocks[i].p == (uintptr_t)p) {
			free(current->blocks[i].p);
			current->blocks[i] = current->blocks[--current->nblocks];
			return CUDA_SUCCESS;
		}
	}
	FAIL(CUDA_ERROR_INVALID_VALUE, "cuMemFree of %#lx: not an allocation", (unsigned long)p);
}

CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t n, CUstream s) {
	(void)s;
	CUresult rc = need_ctx("cuMemcpyHtoDAsync");
	if (rc) return rc;
	if (!inside(dst, n)) FAIL(CUDA_ERROR_INVALID_VALUE, "HtoD of %zu bytes to %#lx: outside the allocations", n, (unsigned long)dst);
	memcpy((void *)(uintptr_t)dst, src, n);
	return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t n, CUstream s) {
	(void)s;
	CUresult rc = need_ctx("cuMemcpyDtoHAsync");
	if (rc) return rc;
	if (!inside(src, n)) FAIL(CUDA_ERROR_INVALID_VALUE, "DtoH of %zu bytes from %#lx: outside the allocations", n, (unsigned long)src);
	memcpy(dst, (void *)(uintptr_t)src, n);
	return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
	(void)s;
	CUresult rc = need_ctx("cuMemcpyDtoDAsync");
	if (rc) return rc;
	if (!inside(dst, n) || !inside(src, n)) FAIL(CUDA_ERROR_INVALID_VALUE, "DtoD of %zu bytes: outside the allocations", n);
	memmove((void *)(uintptr_t)dst, (void *)(uintptr_t)src, n);
	return CUDA_SUCCESS;
}
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, CUstream s) {
	(void)s;
	CUresult rc = need_ctx("cuMemsetD32Async");
	if (rc) return rc;
	if (!inside(dst, 4 * n)) FAIL(CUDA_ERROR_INVALID_VALUE, "memset of %zu words: outside the allocations", n);
	uint32_t *p = (uint32_t *)(uintptr_t)dst;
	for (size_t i = 0; i < n; i++) p[i] = v;
	return CUDA_SUCCESS;
}

/* ---- launches ---------------------------------------------------------- */

static int64_t I(void **a, int i) { return *(int64_t *)a[i]; }
static double D(void **a, int i) { return *(double *)a[i]; }
static float *F(void **a, int i) { return (float *)(uintptr_t)*(uint64_t *)a[i]; }

static int rgrid(int64_t units) {
	int64_t g = (units + 255) / 256;
	return (int)(g < 65535 ? g : 65535);
}

/* check_ptr: a pointer argument must be inside an allocation (or NULL when
 * nullable, or anything when the extent is 0). */
static int check_ptr(const char *k, int i, const void *p, int64_t elems, int nullable) {
	if (elems == 0) return 1;
	if (!p && nullable) return 1;
	if (!p || !inside((uintptr_t)p, (size_t)elems * 4)) {
		fprintf(stderr, "fakecuda: %s: argument %d (%p, %lld elements) is outside the allocations\n", k, i, p,
		        (long long)elems);
		return 0;
	}
	return 1;
}
#define PTR(i, elems, nullable) \
	if (!check_ptr(k, i, F(a, i), (elems), (nullable))) return LRMF_EINVAL

static unsigned long long launches;

/* ---- FFJORD launches ----------------------------------------------------
 *
 * The lrmf_k_ode_* kernels differ from the CPU kernels in layout (row-minor
 * gpart, states, tape and info; see csrc/cuda/lrmf_kernels.h) and in
 * leaving θ-gradients per row for lrmf_k_ode_gsum. ode_launch converts
 * between the layouts and runs the CPU kernels: the f32 kernels where the
 * outputs are float, and, where a row's double θ-gradient is needed, the
 * f64 kernel on that row's inputs widened from float — the same arithmetic
 * as the f32 kernel, which widens its inputs and works in double, without
 * rounding the per-row gradient to float. Dormand–Prince runs row by row,
 * so that, as on the GPU, a failing row does not stop the others. */

static const int64_t *I64P(void **a, int i) { return (const int64_t *)(uintptr_t)*(uint64_t *)a[i]; }
static double *DP(void **a, int i) { return (double *)(uintptr_t)*(uint64_t *)a[i]; }

static void widen(double *dst, const float *src, int64_t n) {
	for (int64_t i = 0; i < n; i++) dst[i] = (double)src[i];
}

/* ode_launch runs ODE kernel n_ (name after "lrmf_k_") with arguments a;
 * the launch shape and the dims pointer were checked. Returns a CPU status
 * (LRMF_OK or LRMF_EINVAL) after reporting what was wrong. */
static int ode_launch(const char *k, const char *n_, void **a) {
	const int64_t n = I(a, 0), nl = I(a, 1), *dims = I64P(a, 2), d = dims[nl - 1];
	const int64_t np = lrmf_odefunc_nparams_f64(nl, dims);
	int64_t kk = 0; /* probes */
	if (!strcmp(n_, "ode_fwd") || !strcmp(n_, "ode_vjp")) kk = I(a, 6);
	else if (!strcmp(n_, "ode_rk4")) kk = I(a, 8);
	else if (!strcmp(n_, "ode_rk4_bwd")) kk = I(a, 7);
	else if (!strcmp(n_, "ode_dopri5")) kk = I(a, 11);
	else if (!strcmp(n_, "ode_dopri5_bwd")) kk = I(a, 5);
	const int64_t lwork = lrmf_odefunc_work_f64(nl, dims, kk);
	if (lwork < 0) {
		fprintf(stderr, "fakecuda: %s: bad k = %lld\n", k, (long long)kk);
		return LRMF_EINVAL;
	}
	const int64_t ke = kk * d; /* probe floats per row */
	double *work = malloc((size_t)lwork * sizeof *work);
	double *th = malloc((size_t)np * sizeof *th), *g = malloc((size_t)np * sizeof *g);
	/* Per-row double copies: z/a1 (d), eps (k·d), az (d), atr/ald, gz. */
	double *r = malloc((size_t)(4 * d + ke + 2) * sizeof *r);
	double *rz = r, *reps = r + d, *raz = reps + ke, *rgz = raz + d, *rat = rgz + d;
	double *row = NULL; /* a row's states or tape, CPU layout */
	int err = LRMF_OK;
#define ARG(i, elems, nullable)                                         \
	if (!check_ptr(k, i, F(a, i), (elems), (nullable))) {           \
		err = LRMF_EINVAL;                                      \
		goto out;                                               \
	}
	ARG(3, np, 0);
	widen(th, F(a, 3), np);
	if (!strcmp(n_, "ode_fwd")) {
		ARG(5, n * d, 0); ARG(7, n * ke, 0); ARG(8, n * d, 0); ARG(9, n, 0);
		err = lrmf_odefunc_fwd_f32(n, nl, dims, F(a, 3), (float)D(a, 4), F(a, 5), kk, F(a, 7), F(a, 8), F(a, 9), work,
		                           lwork, LRMF_ODE_PORTABLE);
	} else if (!strcmp(n_, "ode_vjp")) {
		ARG(5, n * d, 0); ARG(7, n * ke, 0); ARG(8, n * d, 0); ARG(9, n, 0); ARG(10, n * d, 0);
		ARG(11, 2 * np * n, 0);
		const float *z = F(a, 5), *eps = F(a, 7), *az = F(a, 8), *atr = F(a, 9);
		float *gz = F(a, 10);
		double *gpart = DP(a, 11);
		for (int64_t i = 0; i < n && !err; i++) {
			widen(rz, z + i * d, d);
			widen(reps, eps + i * ke, ke);
			widen(raz, az + i * d, d);
			widen(rat, atr + i, 1);
			err = lrmf_odefunc_vjp_f64(1, nl, dims, th, (double)(float)D(a, 4), rz, kk, reps, raz, rat, rgz, g,
			                           work, lwork, LRMF_ODE_PORTABLE);
			for (int64_t j = 0; j < d; j++) gz[i * d + j] = (float)rgz[j];
			for (int64_t p = 0; p < np; p++) gpart[p * n + i] = g[p];
		}
	} else if (!strcmp(n_, "ode_rk4")) {
		const int64_t steps = I(a, 6);
		ARG(7, n * d, 0); ARG(9, n * ke, 0); ARG(10, n * d, 0); ARG(11, n, 0); ARG(12, 2 * steps * d * n, 1);
		double *states = DP(a, 12);
		if (!states) {
			err = lrmf_ode_rk4_f32(n, nl, dims, F(a, 3), D(a, 4), D(a, 5), steps, F(a, 7), kk, F(a, 9), F(a, 10),
			                       F(a, 11), NULL, work, lwork, LRMF_ODE_PORTABLE);
		} else {
			row = malloc((size_t)(n * steps * d) * sizeof *row);
			err = lrmf_ode_rk4_save_f32(n, nl, dims, F(a, 3), D(a, 4), D(a, 5), steps, F(a, 7), kk, F(a, 9),
			                            F(a, 10), F(a, 11), row, NULL, work, lwork, LRMF_ODE_PORTABLE);
			for (int64_t i = 0; i < n; i++)
				for (int64_t s = 0; s < steps; s++)
					for (int64_t j = 0; j < d; j++)
						states[(s * d + j) * n + i] = row[(i * steps + s) * d + j];
		}
	} else if (!strcmp(n_, "ode_rk4_bwd")) {
		const int64_t steps = I(a, 6);
		ARG(8, n * ke, 0); ARG(9, 2 * steps * d * n, 0); ARG(10, n * d, 0); ARG(11, n, 0); ARG(12, n * d, 0);
		ARG(13, 2 * np * n, 0);
		const float *eps = F(a, 8), *a1 = F(a, 10), *ald = F(a, 11);
		const double *states = DP(a, 9);
		float *gz0 = F(a, 12);
		double *gpart = DP(a, 13);
		row = malloc((size_t)(steps * d) * sizeof *row);
		for (int64_t i = 0; i < n && !err; i++) {
			for (int64_t s = 0; s < steps; s++)
				for (int64_t j = 0; j < d; j++) row[s * d + j] = states[(s * d + j) * n + i];
			widen(reps, eps + i * ke, ke);
			widen(rz, a1 + i * d, d);
			widen(rat, ald + i, 1);
			err = lrmf_ode_rk4_bwd_f64(1, nl, dims, th, D(a, 4), D(a, 5), steps, kk, reps, row, rz, rat, rgz, g, NULL,
			                           NULL, work, lwork, LRMF_ODE_PORTABLE);
			for (int64_t j = 0; j < d; j++) gz0[i * d + j] = (float)rgz[j];
			for (int64_t p = 0; p < np; p++) gpart[p * n + i] = g[p];
		}
	} else if (!strcmp(n_, "ode_dopri5")) {
		const int64_t ms = I(a, 9), per = d + 2;
		ARG(10, n * d, 0); ARG(12, n * ke, 0); ARG(13, n * d, 0); ARG(14, n, 0); ARG(15, 2 * ms * per * n, 1);
		ARG(16, 2 * 3 * n, 0);
		double *tape = DP(a, 15);
		int64_t *info = (int64_t *)DP(a, 16);
		row = malloc((size_t)(ms * per) * sizeof *row);
		for (int64_t i = 0; i < n; i++) {
			int64_t nacc = 0, nfe = 0, acc = 0;
			const float *z0 = F(a, 10) + i * d, *eps = kk > 0 ? F(a, 12) + i * ke : NULL;
			int rc = lrmf_ode_dopri5_save_f32(1, nl, dims, F(a, 3), D(a, 4), D(a, 5), D(a, 6), D(a, 7), D(a, 8), ms,
			                                  z0, kk, eps, F(a, 13) + i * d, F(a, 14) + i, row, &nacc, &nfe, &acc,
			                                  work, lwork, LRMF_ODE_PORTABLE);
			if (rc == LRMF_EINVAL) {
				err = rc;
				break;
			}
			info[i] = rc;
			info[n + i] = nfe;
			info[2 * n + i] = acc;
			if (tape)
				for (int64_t m = 0; m < nacc; m++)
					for (int64_t c = 0; c < per; c++) tape[(m * per + c) * n + i] = row[m * per + c];
		}
	} else if (!strcmp(n_, "ode_dopri5_bwd")) {
		const int64_t ms = I(a, 4), per = d + 2;
		ARG(6, n * ke, 0); ARG(7, 2 * ms * per * n, 0); ARG(8, 2 * 3 * n, 0); ARG(9, n * d, 0); ARG(10, n, 0);
		ARG(11, n * d, 0); ARG(12, 2 * np * n, 0);
		const float *eps = F(a, 6), *a1 = F(a, 9), *ald = F(a, 10);
		const double *tape = DP(a, 7);
		const int64_t *info = (const int64_t *)DP(a, 8);
		float *gz0 = F(a, 11);
		double *gpart = DP(a, 12);
		row = malloc((size_t)(ms * per) * sizeof *row);
		for (int64_t i = 0; i < n && !err; i++) {
			const int64_t nacc = info[2 * n + i];
			if (nacc < 0 || nacc > ms) {
				fprintf(stderr, "fakecuda: %s: row %lld has %lld accepted steps, max %lld\n", k, (long long)i,
				        (long long)nacc, (long long)ms);
				err = LRMF_EINVAL;
				break;
			}
			for (int64_t m = 0; m < nacc; m++)
				for (int64_t c = 0; c < per; c++) row[m * per + c] = tape[(m * per + c) * n + i];
			widen(reps, eps + i * ke, ke);
			widen(rz, a1 + i * d, d);
			widen(rat, ald + i, 1);
			err = lrmf_ode_dopri5_bwd_f64(1, nl, dims, th, ms, kk, reps, row, &nacc, rz, rat, rgz, g, NULL, NULL, work,
			                              lwork, LRMF_ODE_PORTABLE);
			for (int64_t j = 0; j < d; j++) gz0[i * d + j] = (float)rgz[j];
			for (int64_t p = 0; p < np; p++) gpart[p * n + i] = g[p];
		}
	}
#undef ARG
out:
	free(work);
	free(th);
	free(g);
	free(r);
	free(row);
	return err;
}

/* ---- per-kernel handlers: check the pointers, run the CPU kernel ------- */

static int run_fill(const char *k, void **a) {
	PTR(2, I(a, 0), 0);
	return lrmf_fill_f32(I(a, 0), (float)D(a, 1), F(a, 2));
}

static int run_axpy(const char *k, void **a) {
	PTR(2, I(a, 0), 0); PTR(3, I(a, 0), 0);
	return lrmf_axpy_f32(I(a, 0), (float)D(a, 1), F(a, 2), F(a, 3));
}

static int run_mul(const char *k, void **a) {
	PTR(1, I(a, 0), 0); PTR(2, I(a, 0), 0); PTR(3, I(a, 0), 0);
	return lrmf_mul_f32(I(a, 0), F(a, 1), F(a, 2), F(a, 3));
}

static int run_dot(const char *k, void **a) {
	PTR(1, I(a, 0), 0); PTR(2, I(a, 0), 0); PTR(3, 2, 0);
	return lrmf_dot_f32(I(a, 0), F(a, 1), F(a, 2), (double *)F(a, 3));
}

static int run_sum(const char *k, void **a) {
	PTR(1, I(a, 0), 0); PTR(2, 2, 0);
	return lrmf_sum_f32(I(a, 0), F(a, 1), (double *)F(a, 2));
}

static int run_bias_add(const char *k, void **a) {
	PTR(2, I(a, 1), 0); PTR(3, I(a, 0) * I(a, 1), 0);
	return lrmf_bias_add_f32(I(a, 0), I(a, 1), F(a, 2), F(a, 3));
}

static int run_bias_grad(const char *k, void **a) {
	PTR(2, I(a, 0) * I(a, 1), 0); PTR(3, I(a, 1), 0);
	return lrmf_bias_grad_f32(I(a, 0), I(a, 1), F(a, 2), F(a, 3));
}

static int run_relu_fwd(const char *k, void **a) {
	PTR(1, I(a, 0), 0); PTR(2, I(a, 0), 0);
	return lrmf_relu_fwd_f32(I(a, 0), F(a, 1), F(a, 2));
}

static int run_relu_bwd(const char *k, void **a) {
	PTR(1, I(a, 0), 0); PTR(2, I(a, 0), 0); PTR(3, I(a, 0), 0);
	return lrmf_relu_bwd_f32(I(a, 0), F(a, 1), F(a, 2), F(a, 3));
}

static int run_tanh_fwd(const char *k, void **a) {
	PTR(1, I(a, 0), 0); PTR(2, I(a, 0), 0);
	return lrmf_tanh_fwd_f32(I(a, 0), F(a, 1), F(a, 2));
}

static int run_tanh_bwd(const char *k, void **a) {
	PTR(1, I(a, 0), 0); PTR(2, I(a, 0), 0); PTR(3, I(a, 0), 0);
	return lrmf_tanh_bwd_f32(I(a, 0), F(a, 1), F(a, 2), F(a, 3));
}

static int run_bias_relu_fwd(const char *k, void **a) {
	PTR(2, I(a, 1), 0); PTR(3, I(a, 0) * I(a, 1), 0);
	return lrmf_bias_relu_fwd_f32(I(a, 0), I(a, 1), F(a, 2), F(a, 3));
}

static int run_bias_relu_bwd_dz(const char *k, void **a) {
	int64_t nd = I(a, 0) * I(a, 1);
	PTR(2, nd, 0); PTR(3, nd, 0); PTR(4, nd, 0);
	/* The CPU kernel also sums db; it goes to a scratch vector. */
	float *db = calloc((size_t)I(a, 1) + 1, sizeof *db);
	const int err = lrmf_bias_relu_bwd_f32(I(a, 0), I(a, 1), F(a, 2), F(a, 3), F(a, 4), db);
	free(db);
	return err;
}

static int run_gauss_logp(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(2, n * d, 0); PTR(3, d, 0); PTR(4, d * d, 0); PTR(6, n * d, 0); PTR(7, n, 0);
	return lrmf_gauss_logp_f32(n, d, F(a, 2), F(a, 3), F(a, 4), (float)D(a, 5), F(a, 6), F(a, 7));
}

static int run_gauss_bwd_dx(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(2, d * d, 0); PTR(3, n * d, 0); PTR(4, n, 0); PTR(5, n * d, 0);
	/* The CPU kernel also sums dmu and dl (and reads x and mu, which
	 * only they need): scratch for all of them. */
	float *tmp = calloc((size_t)(n * d + 2 * d + d * d + 1), sizeof *tmp);
	const int err = lrmf_gauss_bwd_f32(n, d, tmp, tmp + n * d, F(a, 2), F(a, 3), F(a, 4), F(a, 5), tmp + n * d + d,
	                                   tmp + n * d + 2 * d);
	free(tmp);
	return err;
}

static int run_gauss_bwd_params(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(2, n * d, 0); PTR(3, d, 0); PTR(4, d * d, 0); PTR(5, n * d, 0); PTR(6, n, 0); PTR(7, d, 0); PTR(8, d * d, 0);
	return lrmf_gauss_bwd_f32(n, d, F(a, 2), F(a, 3), F(a, 4), F(a, 5), F(a, 6), NULL, F(a, 7), F(a, 8));
}

static int run_logdet_acc(const char *k, void **a) {
	PTR(2, I(a, 0) * I(a, 1), 0); PTR(3, I(a, 0), 0);
	return lrmf_logdet_acc_f32(I(a, 0), I(a, 1), F(a, 2), F(a, 3));
}

static int run_affine_fwd(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(2, n * d, 0); PTR(3, d * d, 0); PTR(4, d, 0); PTR(6, n * d, 0); PTR(7, n, 1);
	return lrmf_affine_fwd_f32(n, d, F(a, 2), F(a, 3), F(a, 4), (float)D(a, 5), F(a, 6), F(a, 7));
}

static int run_affine_inv(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(2, n * d, 0); PTR(3, d * d, 0); PTR(4, d, 0); PTR(5, n * d, 0);
	return lrmf_affine_inv_f32(n, d, F(a, 2), F(a, 3), F(a, 4), F(a, 5));
}

static int run_adam(const char *k, void **a) {
	int64_t n = I(a, 0);
	PTR(1, n, 0); PTR(2, n, 0); PTR(3, n, 0); PTR(4, n, 0);
	return lrmf_adam_f32(n, F(a, 1), F(a, 2), F(a, 3), F(a, 4), D(a, 5), D(a, 6), D(a, 7), D(a, 8), D(a, 9), D(a, 10));
}

static int run_gather_rows(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(3, n, 0); PTR(4, n * d, 0);
	/* src's extent is the caller's n_src·d, unknown here: check its
	 * start only. */
	PTR(2, 1, 0);
	return lrmf_gather_rows_f32(n, d, F(a, 2), (const int32_t *)F(a, 3), F(a, 4));
}

static int run_copy_cols(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(4, n * d, 0); PTR(5, n * I(a, 3), 0);
	return lrmf_copy_cols_f32(n, d, I(a, 2), I(a, 3), F(a, 4), F(a, 5));
}

static int run_add_cols(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(4, n * I(a, 3), 0); PTR(5, n * d, 0);
	return lrmf_add_cols_f32(n, d, I(a, 2), I(a, 3), F(a, 4), F(a, 5));
}

static int run_coupling_fwd(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1), dt = I(a, 3);
	PTR(6, n * d, 0); PTR(7, n * 2 * dt, 0); PTR(8, n * d, 0); PTR(9, n, 1);
	return lrmf_coupling_fwd_f32(n, d, I(a, 2), dt, (int)I(a, 4), (float)D(a, 5), F(a, 6), F(a, 7), F(a, 8), F(a, 9));
}

static int run_coupling_inv(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1), dt = I(a, 3);
	PTR(6, n * d, 0); PTR(7, n * 2 * dt, 0); PTR(8, n * d, 0);
	return lrmf_coupling_inv_f32(n, d, I(a, 2), dt, (int)I(a, 4), (float)D(a, 5), F(a, 6), F(a, 7), F(a, 8));
}

static int run_coupling_bwd(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1), dt = I(a, 3);
	PTR(6, n * d, 0); PTR(7, n * 2 * dt, 0); PTR(8, n * d, 0); PTR(9, n, 0); PTR(10, n * d, 1);
	PTR(11, n * 2 * dt, 0);
	return lrmf_coupling_bwd_f32(n, d, I(a, 2), dt, (int)I(a, 4), (float)D(a, 5), F(a, 6), F(a, 7), F(a, 8), F(a, 9),
	                             F(a, 10), F(a, 11));
}

static int run_actnorm_fwd(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(3, n * d, 0); PTR(4, d, 0); PTR(5, d, 0); PTR(6, n * d, 0); PTR(7, n, 1);
	return lrmf_actnorm_fwd_f32(n, d, (int)I(a, 2), F(a, 3), F(a, 4), F(a, 5), F(a, 6), F(a, 7));
}

static int run_actnorm_inv(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(3, n * d, 0); PTR(4, d, 0); PTR(5, d, 0); PTR(6, n * d, 0);
	return lrmf_actnorm_inv_f32(n, d, (int)I(a, 2), F(a, 3), F(a, 4), F(a, 5), F(a, 6));
}

static int run_actnorm_bwd_dx(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(3, d, 0); PTR(4, n * d, 0); PTR(5, n * d, 0);
	/* dx = dy·s_j is ActNorm's forward with b = 0 (which allows y == x, as
	 * this kernel allows dx == dy). */
	float *zero = calloc((size_t)d + 1, sizeof *zero);
	const int err = lrmf_actnorm_fwd_f32(n, d, (int)I(a, 2), F(a, 4), F(a, 3), zero, F(a, 5), NULL);
	free(zero);
	return err;
}

static int run_actnorm_bwd_params(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(3, n * d, 0); PTR(4, d, 0); PTR(5, n > 0 ? d : 0, 0); PTR(6, n * d, 0); PTR(7, n, 1); PTR(8, d, 0);
	PTR(9, d, 0);
	return lrmf_actnorm_bwd_f32(n, d, (int)I(a, 2), F(a, 3), F(a, 4), F(a, 5), F(a, 6), F(a, 7), NULL, F(a, 8),
	                            F(a, 9));
}

static int run_lu_solve(const char *k, void **a) {
	int64_t n = I(a, 0), d = I(a, 1);
	PTR(2, d * d, 0); PTR(3, d, 0); PTR(4, n * d, 0); PTR(5, n * d, 0);
	return lrmf_lu_solve_f32(n, d, F(a, 2), (const int32_t *)F(a, 3), F(a, 4), F(a, 5));
}

static int run_ode_gsum(const char *k, void **a) {
	int64_t n = I(a, 0), np = I(a, 1);
	PTR(2, 2 * np * n, 0); PTR(3, np, 0);
	const double *gp = DP(a, 2);
	float *gt = F(a, 3);
	for (int64_t p = 0; p < np; p++) {
		double acc = 0;
		for (int64_t i = 0; i < n; i++) acc += gp[p * n + i];
		gt[p] = (float)acc;
	}
	return LRMF_OK;
}

/* Elements spanned by rows×cols at leading dimension ld. */
static int64_t extent(int64_t rows, int64_t cols, int64_t ld) {
	return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
}

/* GemmEx's epilogue, as the CPU's lrmf_gemm_ep_ws applies it (same steps,
 * same roundings). */
static int run_gemm_epi(const char *k, void **a) {
	int64_t m = I(a, 0), n = I(a, 1), relu = I(a, 3), ldc = I(a, 6);
	PTR(2, n, 1); PTR(4, m * n, 1); PTR(5, extent(m, n, ldc), 0);
	const float *bias = F(a, 2), *mask = F(a, 4);
	float *c = F(a, 5);
	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < n; j++) {
			float z = c[i * ldc + j];
			if (bias) z = z + bias[j];
			if (relu) z = z > 0 ? z : 0;
			if (mask) z = mask[i * n + j] > 0 ? z : 0;
			c[i * ldc + j] = z;
		}
	return LRMF_OK;
}

/* Column sums in double in row order, as lrmf_gemm_ep_ws sums them. */
static int run_col_sum(const char *k, void **a) {
	int64_t m = I(a, 0), n = I(a, 1), ldc = I(a, 3);
	PTR(2, extent(m, n, ldc), 0); PTR(4, n, 0);
	const float *c = F(a, 2);
	float *out = F(a, 4);
	for (int64_t j = 0; j < n; j++) {
		double acc = 0.0;
		for (int64_t i = 0; i < m; i++) acc += (double)c[i * ldc + j];
		out[j] = (float)acc;
	}
	return LRMF_OK;
}

static int run_sum_squares(const char *k, void **a) {
	int64_t ns = I(a, 0);
	PTR(1, 2 * ns, 0); PTR(3, 2 * ns, 0);
	const int64_t *ends = (const int64_t *)F(a, 1);
	PTR(2, ns > 0 ? ends[ns - 1] : 0, 0);
	return lrmf_sum_squares_f32(0, ns > 0 ? ends[ns - 1] : 0, F(a, 2), ns, ends, (double *)F(a, 3));
}

static int run_gemm(const char *k, void **a) {
	int err = LRMF_OK;
	int ta = (int)I(a, 0), tb = (int)I(a, 1);
	int64_t m = I(a, 2), n = I(a, 3), kk = I(a, 4), lda = I(a, 7), ldb = I(a, 9), ldc = I(a, 12);
	/* Exact extents: a window of a wider matrix (GemmEx) ends ld − cols
	 * elements before its matrix does. */
	PTR(6, extent(ta ? kk : m, ta ? m : kk, lda), 0);
	PTR(8, extent(tb ? n : kk, tb ? kk : n, ldb), 0);
	PTR(11, extent(m, n, ldc), 0);
	if (kk == 0) { /* C = beta·C (the CPU kernel wants lda ≥ 1) */
		float beta = (float)D(a, 10), *c = F(a, 11);
		for (int64_t i = 0; i < m; i++)
			for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
	} else {
		/* The packed GEMM the cpu backend uses, for identical sums. */
		int64_t lw = lrmf_gemm_work_f32(m, n, kk);
		float *w = lw > 0 ? malloc((size_t)lw * sizeof *w) : NULL;
		err = lrmf_gemm_ws_f32(ta, tb, m, n, kk, (float)D(a, 5), F(a, 6), lda, F(a, 8), ldb, (float)D(a, 10),
		                       F(a, 11), ldc, w, lw);
		free(w);
	}
	return err;
}

/* The FFJORD kernels (rule O) run through ode_launch. */
static int run_ode_fwd(const char *k, void **a) { return ode_launch(k, "ode_fwd", a); }
static int run_ode_vjp(const char *k, void **a) { return ode_launch(k, "ode_vjp", a); }
static int run_ode_rk4(const char *k, void **a) { return ode_launch(k, "ode_rk4", a); }
static int run_ode_rk4_bwd(const char *k, void **a) { return ode_launch(k, "ode_rk4_bwd", a); }
static int run_ode_dopri5(const char *k, void **a) { return ode_launch(k, "ode_dopri5", a); }
static int run_ode_dopri5_bwd(const char *k, void **a) { return ode_launch(k, "ode_dopri5_bwd", a); }

/* ---- images: the f32 CPU kernels (exact copies) ---- */
static int run_im2col(const char *k, void **a) {
	int64_t n = I(a, 0), h = I(a, 1), w = I(a, 2), c = I(a, 3), kk = I(a, 4), e = I(a, 5);
	PTR(6, n * h * w * c, 0); PTR(9, (I(a, 8) - I(a, 7)) * kk * kk * (c + e), 0);
	return lrmf_im2col_f32(n, h, w, c, kk, e, F(a, 6), I(a, 7), I(a, 8), F(a, 9));
}

static int run_conv2d_flip(const char *k, void **a) {
	int64_t cin = I(a, 0), cout = I(a, 1), kk = I(a, 2), e = I(a, 3);
	PTR(4, kk * kk * (cin + e) * cout, 0); PTR(5, kk * kk * cin * cout, 0);
	return lrmf_conv2d_flip_f32(cin, cout, kk, e, F(a, 4), F(a, 5));
}

static int run_squeeze(const char *k, void **a) {
	int64_t n = I(a, 0), h = I(a, 1), w = I(a, 2), c = I(a, 3);
	PTR(4, n * h * w * c, 0); PTR(5, n * h * w * c, 0);
	return lrmf_squeeze_f32(n, h, w, c, F(a, 4), F(a, 5));
}

static int run_unsqueeze(const char *k, void **a) {
	int64_t n = I(a, 0), h = I(a, 1), w = I(a, 2), c = I(a, 3);
	PTR(4, n * h * w * c, 0); PTR(5, n * h * w * c, 0);
	return lrmf_unsqueeze_f32(n, h, w, c, F(a, 4), F(a, 5));
}

/* ---- the kernel table ---------------------------------------------------
 *
 * One entry per CUDA kernel of the kernel list (lrmf_kernel_list.def): its
 * launch rule, the units of that rule (the list's expression over P(i),
 * the i-th argument as int64) and run_<name>, which checks the pointer
 * arguments and runs the CPU kernel. A kernel of the list without a
 * run_<name> does not link (run.sh links with -z defs). */
#define LRMF_CUDA_KERNEL(name, rule, units, params) static int run_##name(const char *k, void **a);
#include "lrmf_kernel_list.def"

enum {
#define LRMF_CUDA_KERNEL(name, rule, units, params) K_##name,
#include "lrmf_kernel_list.def"
	NKERNELS
};
enum { RULE_R = 'R', RULE_C = 'C', RULE_S = 'S', RULE_G = 'G', RULE_O = 'O' };

static const struct {
	const char *name;
	char rule;
	int (*run)(const char *k, void **a);
} kernels[NKERNELS] = {
#define LRMF_CUDA_KERNEL(name, rule, units, params) [K_##name] = {"lrmf_k_" #name, RULE_##rule, run_##name},
#include "lrmf_kernel_list.def"
};

static int kernel_index(const char *name) {
	for (int i = 0; i < NKERNELS; i++)
		if (!strcmp(kernels[i].name, name)) return i;
	return -1;
}

/* The units of kernel i's launch rule for arguments a. */
static int64_t kernel_units(int i, void **a) {
#define P(j) I(a, j)
	switch (i) {
#define LRMF_CUDA_KERNEL(name, rule, units, params) \
	case K_##name: return (units);
#include "lrmf_kernel_list.def"
	}
#undef P
	return 0;
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, CUstream s, void **a, void **extra) {
	(void)s;
	(void)extra;
	CUresult rc = need_ctx("cuLaunchKernel");
	if (rc) return rc;
	const char *k = kernels[f->kernel].name;
	const char rule = kernels[f->kernel].rule;
	const int64_t units = kernel_units(f->kernel, a);
	launches++;
	if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0)
		FAIL(CUDA_ERROR_INVALID_VALUE, "%s: zero grid or block (%u,%u,%u)x(%u,%u,%u)", k, gx, gy, gz, bx, by, bz);
	if (shmem != 0 && rule != 'O') FAIL(CUDA_ERROR_INVALID_VALUE, "%s: dynamic shared memory %u", k, shmem);
	/* Expected launch shape. */
	switch (rule) {
	case 'R':
		if (bx != 256 || by != 1 || gy != 1 || gx != (unsigned)rgrid(units))
			FAIL(CUDA_ERROR_INVALID_VALUE, "%s: R(%lld) launched as (%u,%u)x(%u,%u)", k, (long long)units, gx, gy, bx, by);
		break;
	case 'C':
		if (bx != 256 || by != 1 || gy != 1 || gx != (unsigned)units)
			FAIL(CUDA_ERROR_INVALID_VALUE, "%s: C(%lld) launched as (%u,%u)x(%u,%u)", k, (long long)units, gx, gy, bx, by);
		break;
	case 'S':
		if (bx != 1024 || by != 1 || gx != 1 || gy != 1)
			FAIL(CUDA_ERROR_INVALID_VALUE, "%s: S launched as (%u,%u)x(%u,%u)", k, gx, gy, bx, by);
		break;
	case 'G': {
		int64_t m = I(a, 2), n = I(a, 3);
		int64_t ex = (n + 15) / 16, ey = (m + 15) / 16;
		if (ey > 65535) ey = 65535;
		if (bx != 16 || by != 16 || gx != ex || gy != ey)
			FAIL(CUDA_ERROR_INVALID_VALUE, "%s: G(m=%lld, n=%lld) launched as (%u,%u)x(%u,%u)", k, (long long)m,
			     (long long)n, gx, gy, bx, by);
		break;
	}
	case 'O': {
		/* dims (nl int64s in device memory) give θ's length, which sets
		 * the shared memory: 8·np bytes. */
		int64_t nl = I(a, 1);
		if (nl < 2 || !inside((uintptr_t)I64P(a, 2), (size_t)nl * 8))
			FAIL(CUDA_ERROR_INVALID_VALUE, "%s: dims (%lld entries at %p) outside the allocations", k, (long long)nl,
			     (const void *)I64P(a, 2));
		int64_t np = lrmf_odefunc_nparams_f64(nl, I64P(a, 2));
		if (np < 0) FAIL(CUDA_ERROR_INVALID_VALUE, "%s: invalid dims", k);
		int64_t ex = (units + 127) / 128;
		if (ex > 65535) ex = 65535;
		if (bx != 128 || by != 1 || gy != 1 || gx != ex || shmem != 8 * np)
			FAIL(CUDA_ERROR_INVALID_VALUE, "%s: O(%lld, np=%lld) launched as (%u,%u)x(%u,%u) with %u bytes of shared memory",
			     k, (long long)units, (long long)np, gx, gy, bx, by, shmem);
		break;
	}
	default:
		FAIL(CUDA_ERROR_NOT_FOUND, "%s: unknown launch rule %c", k, rule);
	}
	const int err = kernels[f->kernel].run(k, a);
	if (err) FAIL(CUDA_ERROR_INVALID_VALUE, "%s: the CPU kernel returned %d", k, err);
	return CUDA_SUCCESS;
}

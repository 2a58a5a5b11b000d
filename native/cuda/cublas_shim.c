//go:build cuda

#include "cublas_shim.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*create_t)(void **handle);
typedef int (*destroy_t)(void *handle);
typedef int (*set_stream_t)(void *handle, void *stream);
typedef int (*get_version_t)(void *handle, int *version);
typedef int (*sgemm_t)(void *handle, int transa, int transb, int m, int n, int k,
                       const float *alpha, const float *a, int lda, const float *b, int ldb,
                       const float *beta, float *c, int ldc);

struct lrmf_cublas {
	void *lib;
	void *handle;
	destroy_t destroy;
	sgemm_t sgemm;
	const char *name;
	int version;
};

static const char *const lib_names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"};

lrmf_cublas *lrmf_cublas_open(void *stream, char *err, int errlen) {
	void *lib = NULL;
	const char *name = NULL;
	char first_error[256] = "not found";
	for (size_t i = 0; i < sizeof lib_names / sizeof lib_names[0] && !lib; i++) {
		lib = dlopen(lib_names[i], RTLD_NOW | RTLD_LOCAL);
		if (lib) {
			name = lib_names[i];
		} else if (i == 0) {
			const char *e = dlerror();
			if (e) snprintf(first_error, sizeof first_error, "%s", e);
		}
	}
	if (!lib) {
		snprintf(err, errlen, "cannot load cuBLAS (tried libcublas.so.13, .12, .11, libcublas.so): %s", first_error);
		return NULL;
	}
	create_t create = (create_t)dlsym(lib, "cublasCreate_v2");
	destroy_t destroy = (destroy_t)dlsym(lib, "cublasDestroy_v2");
	set_stream_t set_stream = (set_stream_t)dlsym(lib, "cublasSetStream_v2");
	get_version_t get_version = (get_version_t)dlsym(lib, "cublasGetVersion_v2");
	sgemm_t sgemm = (sgemm_t)dlsym(lib, "cublasSgemm_v2");
	if (!create || !destroy || !set_stream || !sgemm) {
		snprintf(err, errlen, "%s lacks cublasCreate_v2, cublasDestroy_v2, cublasSetStream_v2 or cublasSgemm_v2", name);
		dlclose(lib);
		return NULL;
	}
	void *handle = NULL;
	int rc = create(&handle);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cublasCreate_v2 returned status %d", name, rc);
		dlclose(lib);
		return NULL;
	}
	rc = set_stream(handle, stream);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cublasSetStream_v2 returned status %d", name, rc);
		destroy(handle);
		dlclose(lib);
		return NULL;
	}
	lrmf_cublas *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errlen, "out of host memory");
		destroy(handle);
		dlclose(lib);
		return NULL;
	}
	h->lib = lib;
	h->handle = handle;
	h->destroy = destroy;
	h->sgemm = sgemm;
	h->name = name;
	if (get_version) get_version(handle, &h->version);
	return h;
}

int lrmf_cublas_sgemm(lrmf_cublas *h, int trans_a, int trans_b, int m, int n, int k,
                      float alpha, uintptr_t a, int lda, uintptr_t b, int ldb,
                      float beta, uintptr_t c, int ldc) {
	return h->sgemm(h->handle, trans_a, trans_b, m, n, k, &alpha, (const float *)a, lda,
	                (const float *)b, ldb, &beta, (float *)c, ldc);
}

void lrmf_cublas_info(lrmf_cublas *h, char *buf, int len) {
	snprintf(buf, len, "cuBLAS %d (%s)", h->version, h->name);
}

void lrmf_cublas_close(lrmf_cublas *h) {
	if (!h) return;
	h->destroy(h->handle);
	/* The library stays loaded: cuBLAS registers atexit handlers and
	 * unloading it under a live process is not supported. */
	free(h);
}

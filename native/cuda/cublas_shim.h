/* cuBLAS loaded at run time (dlopen), so that a binary built with CUDA 11.8
 * runs on a machine that has only CUDA 12 or 13 libraries: nothing of cuBLAS
 * is needed at link or load time. Only the stable v2 entry points with
 * 32-bit sizes are used; their ABI has not changed since CUDA 6. Handles and
 * streams travel as void *, device pointers as uintptr_t. */
#ifndef LRMF_CUBLAS_SHIM_H
#define LRMF_CUBLAS_SHIM_H

#include <stdint.h>

typedef struct lrmf_cublas lrmf_cublas;

/* lrmf_cublas_open tries libcublas.so.13, .12, .11 and libcublas.so, creates
 * a handle in the calling thread's current CUDA context and binds it to
 * stream. It returns NULL and writes the reason into err on failure. */
lrmf_cublas *lrmf_cublas_open(void *stream, char *err, int errlen);

/* lrmf_cublas_sgemm is cublasSgemm_v2 (column-major, host alpha/beta);
 * trans_* are 0 (N) or 1 (T). It returns the cublasStatus_t. */
int lrmf_cublas_sgemm(lrmf_cublas *h, int trans_a, int trans_b, int m, int n, int k,
                      float alpha, uintptr_t a, int lda, uintptr_t b, int ldb,
                      float beta, uintptr_t c, int ldc);

/* lrmf_cublas_info writes the library's file name and version. */
void lrmf_cublas_info(lrmf_cublas *h, char *buf, int len);

/* lrmf_cublas_close destroys the handle (the context must be current) and
 * frees h; the library stays loaded. */
void lrmf_cublas_close(lrmf_cublas *h);

#endif

//go:build openblas && cgo

package bindings

/*
#cgo LDFLAGS: -lopenblas

// Declared here rather than through <cblas.h>, whose location and flavour
// (OpenBLAS, reference CBLAS) depend on the distribution's alternatives.
// LP64 OpenBLAS: blasint is int; the CBLAS enums are ints.
void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc);
void cblas_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha,
                 const double *a, int lda, const double *b, int ldb,
                 double beta, double *c, int ldc);
void openblas_set_num_threads(int n);
char *openblas_get_corename(void);

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

static void ob_sgemm(int ta, int tb, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb,
                     float beta, float *c, int ldc) {
  cblas_sgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, m, n, k,
              alpha, a, lda, b, ldb, beta, c, ldc);
}
static void ob_dgemm(int ta, int tb, int m, int n, int k, double alpha,
                     const double *a, int lda, const double *b, int ldb,
                     double beta, double *c, int ldc) {
  cblas_dgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, m, n, k,
              alpha, a, lda, b, ldb, beta, c, ldc);
}
*/
import "C"

// This file exists only under the openblas build tag, for
// openblas_bench_test.go (the go command does not allow cgo in test files):
// it links the system OpenBLAS (apt-get install libopenblas-dev) so its GEMM
// can be benchmarked beside GemmWS in the same run.

// OpenBLASGemm calls cblas_sgemm or cblas_dgemm (row-major) with Gemm's
// arguments, unchecked: benchmarks only.
func OpenBLASGemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	ta, tb := cbool(transA), cbool(transB)
	ci := func(v int) C.int { return C.int(v) }
	if is32[T]() {
		C.ob_sgemm(ta, tb, ci(m), ci(n), ci(k), C.float(alpha), pf(a), ci(lda), pf(b), ci(ldb), C.float(beta), pf(c), ci(ldc))
		return
	}
	C.ob_dgemm(ta, tb, ci(m), ci(n), ci(k), C.double(alpha), pd(a), ci(lda), pd(b), ci(ldb), C.double(beta), pd(c), ci(ldc))
}

// OpenBLASSetThreads sets the size of OpenBLAS's own thread pool.
func OpenBLASSetThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// OpenBLASCore names the kernel family OpenBLAS picked for this CPU (it
// follows OPENBLAS_CORETYPE when that is set).
func OpenBLASCore() string { return C.GoString(C.openblas_get_corename()) }

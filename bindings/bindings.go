//go:build cgo

package bindings

/*
#cgo CFLAGS: -O3 -std=c11 -I${SRCDIR}/../csrc/include
#cgo LDFLAGS: -lm

// The cgo noescape/nocallback lines of every kernel are generated from the
// kernel list into kernels_gen.go.

#include "lrmf.h"
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"
)

// Float is the set of element types the kernels are compiled for.
type Float interface{ float32 | float64 }

// Error is the error returned by every function of this package (except
// the numerical failures of ODESolveDopri5, an *[ODEError]): Op is the Go
// function that failed (e.g. "Gemm"), Msg says why.
type Error struct{ Op, Msg string }

// Error returns "bindings: <op>: <msg>".
func (e *Error) Error() string { return "bindings: " + e.Op + ": " + e.Msg }

// ---- dispatch helpers -----------------------------------------------------

// is32 reports whether T is float32; it is resolved per instantiation.
func is32[T Float]() bool {
	var z T
	return unsafe.Sizeof(z) == 4
}

// pf and pd reinterpret a slice's backing array for C. A nil or empty
// slice gives NULL or a pointer C never dereferences.
func pf[T Float](s []T) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

func pd[T Float](s []T) *C.double { return (*C.double)(unsafe.Pointer(unsafe.SliceData(s))) }

func i64(v int) C.int64_t { return C.int64_t(v) }

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// status maps a C return code to an error.
func status(op string, rc C.int) error {
	switch rc {
	case C.LRMF_OK:
		return nil
	case C.LRMF_EINVAL:
		return &Error{op, "C kernel rejected its arguments (LRMF_EINVAL)"}
	}
	return &Error{op, fmt.Sprintf("C kernel returned status %d", int(rc))}
}

// ---- validation helpers (shared messages) ---------------------------------

func errNeg(op, name string, v int) error {
	return &Error{op, fmt.Sprintf("negative size %s = %d", name, v)}
}

func checkNN(op string, n, d int) error {
	if n < 0 {
		return errNeg(op, "n", n)
	}
	if d < 0 {
		return errNeg(op, "d", d)
	}
	return nil
}

func checkLD(op, name string, ld, rowLen int) error {
	if ld < rowLen {
		return &Error{op, fmt.Sprintf("leading dimension %s = %d < row length %d", name, ld, rowLen)}
	}
	return nil
}

func errOverflow(op string) error { return &Error{op, "size overflow"} }

// mul returns a·b for non-negative a, b, or ok == false on overflow.
func mul(a, b int) (int, bool) {
	if b != 0 && a > math.MaxInt/b {
		return 0, false
	}
	return a * b, true
}

func checkLen(op, name string, have, need int) error {
	if have < need {
		return &Error{op, fmt.Sprintf("len(%s) = %d < %d required", name, have, need)}
	}
	return nil
}

// checkRows checks that s holds rows×cols elements (row-major, contiguous).
func checkRows(op, name string, have, rows, cols int) error {
	need, ok := mul(rows, cols)
	if !ok {
		return errOverflow(op)
	}
	return checkLen(op, name, have, need)
}

// checkMat checks that a rows×cols matrix with leading dimension ld fits:
// the last row must end inside the slice.
func checkMat(op, name string, have, rows, cols, ld int) error {
	if rows == 0 || cols == 0 {
		return nil
	}
	last, ok := mul(rows-1, ld)
	if !ok || last > math.MaxInt-cols {
		return errOverflow(op)
	}
	return checkLen(op, name, have, last+cols)
}

func checkSame(op, name string, have int, ref string, want int) error {
	if have != want {
		return &Error{op, fmt.Sprintf("len(%s) = %d != len(%s) = %d", name, have, ref, want)}
	}
	return nil
}

// ---- kernels ---------------------------------------------------------------

// Gemm computes C = alpha·op(A)·op(B) + beta·C, with op(A) m×k, op(B) k×n
// and C m×n, all row-major with leading dimensions lda, ldb, ldc (elements
// between consecutive rows). op(X) = X, or Xᵀ when transX is set (A is then
// stored k×m, B n×k). Each leading dimension must be at least the stored
// row length, and each slice must reach the end of its last stored row.
// With beta == 0, C is not read (NaN in C does not propagate). With k == 0,
// C = beta·C. C must not overlap A or B.
func Gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) error {
	const op = "Gemm"
	if err := checkGemm(op, transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc); err != nil {
		return err
	}
	if m == 0 || n == 0 {
		return nil
	}
	ta, tb := cbool(transA), cbool(transB)
	if is32[T]() {
		return status(op, C.lrmf_gemm_f32(ta, tb, i64(m), i64(n), i64(k),
			C.float(alpha), pf(a), i64(lda), pf(b), i64(ldb), C.float(beta), pf(c), i64(ldc)))
	}
	return status(op, C.lrmf_gemm_f64(ta, tb, i64(m), i64(n), i64(k),
		C.double(alpha), pd(a), i64(lda), pd(b), i64(ldb), C.double(beta), pd(c), i64(ldc)))
}

// checkGemm validates the sizes, leading dimensions and slice lengths of
// Gemm and GemmWS, in that order.
func checkGemm(op string, transA, transB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) error {
	if m < 0 {
		return errNeg(op, "m", m)
	}
	if n < 0 {
		return errNeg(op, "n", n)
	}
	if k < 0 {
		return errNeg(op, "k", k)
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if err := checkLD(op, "lda", lda, ac); err != nil {
		return err
	}
	if err := checkLD(op, "ldb", ldb, bc); err != nil {
		return err
	}
	if err := checkLD(op, "ldc", ldc, n); err != nil {
		return err
	}
	if err := checkMat(op, "a", la, ar, ac, lda); err != nil {
		return err
	}
	if err := checkMat(op, "b", lb, br, bc, ldb); err != nil {
		return err
	}
	return checkMat(op, "c", lc, m, n, ldc)
}

// BiasAdd adds bias (d) to every row of y (n×d): y[i,j] += bias[j].
func BiasAdd[T Float](n, d int, bias, y []T) error {
	const op = "BiasAdd"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkLen(op, "bias", len(bias), d); err != nil {
		return err
	}
	if err := checkRows(op, "y", len(y), n, d); err != nil {
		return err
	}
	if n == 0 || d == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_bias_add_f32(i64(n), i64(d), pf(bias), pf(y)))
	}
	return status(op, C.lrmf_bias_add_f64(i64(n), i64(d), pd(bias), pd(y)))
}

// BiasGrad sums dy (n×d) over its rows into db (d, overwritten):
// db[j] = Σ_i dy[i,j], accumulated in float64. n == 0 zeroes db.
func BiasGrad[T Float](n, d int, dy, db []T) error {
	const op = "BiasGrad"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkRows(op, "dy", len(dy), n, d); err != nil {
		return err
	}
	if err := checkLen(op, "db", len(db), d); err != nil {
		return err
	}
	if d == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_bias_grad_f32(i64(n), i64(d), pf(dy), pf(db)))
	}
	return status(op, C.lrmf_bias_grad_f64(i64(n), i64(d), pd(dy), pd(db)))
}

// ReLU sets y = max(x, 0) elementwise; len(y) must equal len(x). y may be
// x itself.
func ReLU[T Float](x, y []T) error {
	const op = "ReLU"
	if err := checkSame(op, "y", len(y), "x", len(x)); err != nil {
		return err
	}
	n := len(x)
	if n == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_relu_fwd_f32(i64(n), pf(x), pf(y)))
	}
	return status(op, C.lrmf_relu_fwd_f64(i64(n), pd(x), pd(y)))
}

// ReLUBackward sets dx = dy where x > 0, else 0, elementwise; x, dy and dx
// have equal lengths. dx may be dy itself.
func ReLUBackward[T Float](x, dy, dx []T) error {
	const op = "ReLUBackward"
	if err := checkSame(op, "dy", len(dy), "x", len(x)); err != nil {
		return err
	}
	if err := checkSame(op, "dx", len(dx), "x", len(x)); err != nil {
		return err
	}
	n := len(x)
	if n == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_relu_bwd_f32(i64(n), pf(x), pf(dy), pf(dx)))
	}
	return status(op, C.lrmf_relu_bwd_f64(i64(n), pd(x), pd(dy), pd(dx)))
}

// Tanh sets y = tanh(x) elementwise; len(y) must equal len(x). y may be x
// itself.
func Tanh[T Float](x, y []T) error {
	const op = "Tanh"
	if err := checkSame(op, "y", len(y), "x", len(x)); err != nil {
		return err
	}
	n := len(x)
	if n == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_tanh_fwd_f32(i64(n), pf(x), pf(y)))
	}
	return status(op, C.lrmf_tanh_fwd_f64(i64(n), pd(x), pd(y)))
}

// TanhBackward sets dx = dy·(1 − y²) elementwise, where y = tanh(x) is the
// forward output; y, dy and dx have equal lengths. dx may be dy itself.
func TanhBackward[T Float](y, dy, dx []T) error {
	const op = "TanhBackward"
	if err := checkSame(op, "dy", len(dy), "y", len(y)); err != nil {
		return err
	}
	if err := checkSame(op, "dx", len(dx), "y", len(y)); err != nil {
		return err
	}
	n := len(y)
	if n == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_tanh_bwd_f32(i64(n), pf(y), pf(dy), pf(dx)))
	}
	return status(op, C.lrmf_tanh_bwd_f64(i64(n), pd(y), pd(dy), pd(dx)))
}

// GaussLogProb evaluates the full-covariance Gaussian log-density of each
// row x_i of x (n×d), with mean mu (d) and L (d×d) such that LᵀL = Σ⁻¹:
//
//	u_i    = L (x_i − mu)                      u    n×d (out, kept for GaussBackward)
//	logp_i = −(d/2) ln 2π + logdetL − ½‖u_i‖²  logp n   (out)
//
// logdetL = ln|det L| comes from the caller; ‖u_i‖² accumulates in float64.
func GaussLogProb[T Float](n, d int, x, mu, l []T, logdetL T, u, logp []T) error {
	const op = "GaussLogProb"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if err := checkLen(op, "mu", len(mu), d); err != nil {
		return err
	}
	if err := checkRows(op, "l", len(l), d, d); err != nil {
		return err
	}
	if err := checkRows(op, "u", len(u), n, d); err != nil {
		return err
	}
	if err := checkLen(op, "logp", len(logp), n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_gauss_logp_f32(i64(n), i64(d), pf(x), pf(mu), pf(l),
			C.float(logdetL), pf(u), pf(logp)))
	}
	return status(op, C.lrmf_gauss_logp_f64(i64(n), i64(d), pd(x), pd(mu), pd(l),
		C.double(logdetL), pd(u), pd(logp)))
}

// GaussBackward is the backward pass of [GaussLogProb] for upstream
// weights w = dlogp (n), given the forward's u (n×d):
//
//	g_i  = Lᵀ u_i
//	dx_i = −w_i g_i                  dx  n×d (out; nil skips it)
//	dmu  = Σ_i w_i g_i               dmu d   (out)
//	dl   = −Σ_i w_i u_i (x_i − mu)ᵀ  dl  d×d (out)
//
// Sums accumulate in float64. dl is the data term only: the caller adds the
// ln|det L| term L⁻ᵀ·Σ_i w_i. n == 0 zeroes dmu and dl.
func GaussBackward[T Float](n, d int, x, mu, l, u, dlogp, dx, dmu, dl []T) error {
	const op = "GaussBackward"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if err := checkLen(op, "mu", len(mu), d); err != nil {
		return err
	}
	if err := checkRows(op, "l", len(l), d, d); err != nil {
		return err
	}
	if err := checkRows(op, "u", len(u), n, d); err != nil {
		return err
	}
	if err := checkLen(op, "dlogp", len(dlogp), n); err != nil {
		return err
	}
	if dx != nil {
		if err := checkRows(op, "dx", len(dx), n, d); err != nil {
			return err
		}
	}
	if err := checkLen(op, "dmu", len(dmu), d); err != nil {
		return err
	}
	if err := checkRows(op, "dl", len(dl), d, d); err != nil {
		return err
	}
	if d == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_gauss_bwd_f32(i64(n), i64(d), pf(x), pf(mu), pf(l), pf(u),
			pf(dlogp), pf(dx), pf(dmu), pf(dl)))
	}
	return status(op, C.lrmf_gauss_bwd_f64(i64(n), i64(d), pd(x), pd(mu), pd(l), pd(u),
		pd(dlogp), pd(dx), pd(dmu), pd(dl)))
}

// LogDetAcc adds each row sum of s (n×d) to logdet (n):
// logdet[i] += Σ_j s[i,j], the sum accumulated in float64.
func LogDetAcc[T Float](n, d int, s, logdet []T) error {
	const op = "LogDetAcc"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkRows(op, "s", len(s), n, d); err != nil {
		return err
	}
	if err := checkLen(op, "logdet", len(logdet), n); err != nil {
		return err
	}
	if n == 0 || d == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_logdet_acc_f32(i64(n), i64(d), pf(s), pf(logdet)))
	}
	return status(op, C.lrmf_logdet_acc_f64(i64(n), i64(d), pd(s), pd(logdet)))
}

// AffineForward applies the affine flow y_i = M x_i + b to each row of x
// (n×d), with m = M (d×d) and b (d), into y (n×d, must not overlap x), and
// adds ldm = ln|det M| (from the caller) to each logdet[i] (n); logdet may
// be nil.
func AffineForward[T Float](n, d int, x, m, b []T, ldm T, y, logdet []T) error {
	const op = "AffineForward"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "m", len(m), d, d); err != nil {
		return err
	}
	if err := checkLen(op, "b", len(b), d); err != nil {
		return err
	}
	if err := checkRows(op, "y", len(y), n, d); err != nil {
		return err
	}
	if logdet != nil {
		if err := checkLen(op, "logdet", len(logdet), n); err != nil {
			return err
		}
	}
	if n == 0 || (d == 0 && logdet == nil) {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_affine_fwd_f32(i64(n), i64(d), pf(x), pf(m), pf(b),
			C.float(ldm), pf(y), pf(logdet)))
	}
	return status(op, C.lrmf_affine_fwd_f64(i64(n), i64(d), pd(x), pd(m), pd(b),
		C.double(ldm), pd(y), pd(logdet)))
}

// AffineInverse inverts the affine flow row by row: x_i = Minv (y_i − b),
// with y (n×d), minv = M⁻¹ (d×d, from the caller), b (d), into x (n×d,
// must not overlap y).
func AffineInverse[T Float](n, d int, y, minv, b, x []T) error {
	const op = "AffineInverse"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkRows(op, "y", len(y), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "minv", len(minv), d, d); err != nil {
		return err
	}
	if err := checkLen(op, "b", len(b), d); err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if n == 0 || d == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_affine_inv_f32(i64(n), i64(d), pf(y), pf(minv), pf(b), pf(x)))
	}
	return status(op, C.lrmf_affine_inv_f64(i64(n), i64(d), pd(y), pd(minv), pd(b), pd(x)))
}

// Adam applies one Adam step (Kingma & Ba, 2015) to the parameters p with
// gradient g and moments m, v, all of the same length, in place:
//
//	m = beta1·m + (1−beta1)·g;  v = beta2·v + (1−beta2)·g²
//	p −= lr·(m/bc1) / (sqrt(v/bc2) + eps)
//
// bc1 = 1 − beta1^t and bc2 = 1 − beta2^t come from the caller (t from 1).
func Adam[T Float](p, g, m, v []T, lr, beta1, beta2, eps, bc1, bc2 float64) error {
	const op = "Adam"
	if err := checkSame(op, "g", len(g), "p", len(p)); err != nil {
		return err
	}
	if err := checkSame(op, "m", len(m), "p", len(p)); err != nil {
		return err
	}
	if err := checkSame(op, "v", len(v), "p", len(p)); err != nil {
		return err
	}
	n := len(p)
	if n == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_adam_f32(i64(n), pf(p), pf(g), pf(m), pf(v), C.double(lr),
			C.double(beta1), C.double(beta2), C.double(eps), C.double(bc1), C.double(bc2)))
	}
	return status(op, C.lrmf_adam_f64(i64(n), pd(p), pd(g), pd(m), pd(v), C.double(lr),
		C.double(beta1), C.double(beta2), C.double(eps), C.double(bc1), C.double(bc2)))
}

// Axpy sets y += alpha·x; len(y) must equal len(x).
func Axpy[T Float](alpha T, x, y []T) error {
	const op = "Axpy"
	if err := checkSame(op, "y", len(y), "x", len(x)); err != nil {
		return err
	}
	n := len(x)
	if n == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_axpy_f32(i64(n), C.float(alpha), pf(x), pf(y)))
	}
	return status(op, C.lrmf_axpy_f64(i64(n), C.double(alpha), pd(x), pd(y)))
}

// Mul sets out[i] = a[i]·b[i] (the elementwise product); a, b and out
// have one length, and out may be a or b.
func Mul[T Float](a, b, out []T) error {
	const op = "Mul"
	if err := checkSame(op, "b", len(b), "a", len(a)); err != nil {
		return err
	}
	if err := checkSame(op, "out", len(out), "a", len(a)); err != nil {
		return err
	}
	n := len(a)
	if n == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_mul_f32(i64(n), pf(a), pf(b), pf(out)))
	}
	return status(op, C.lrmf_mul_f64(i64(n), pd(a), pd(b), pd(out)))
}

// Fill sets every element of x to value.
func Fill[T Float](value T, x []T) error {
	const op = "Fill"
	n := len(x)
	if n == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_fill_f32(i64(n), C.float(value), pf(x)))
	}
	return status(op, C.lrmf_fill_f64(i64(n), C.double(value), pd(x)))
}

// Dot returns Σ_i x[i]·y[i], accumulated in float64; len(y) must equal
// len(x). Dot(x, x) is ‖x‖².
func Dot[T Float](x, y []T) (float64, error) {
	const op = "Dot"
	if err := checkSame(op, "y", len(y), "x", len(x)); err != nil {
		return 0, err
	}
	n := len(x)
	if n == 0 {
		return 0, nil
	}
	var out C.double
	var rc C.int
	if is32[T]() {
		rc = C.lrmf_dot_f32(i64(n), pf(x), pf(y), &out)
	} else {
		rc = C.lrmf_dot_f64(i64(n), pd(x), pd(y), &out)
	}
	if err := status(op, rc); err != nil {
		return 0, err
	}
	return float64(out), nil
}

// Sum returns Σ_i x[i], accumulated in float64.
func Sum[T Float](x []T) (float64, error) {
	const op = "Sum"
	n := len(x)
	if n == 0 {
		return 0, nil
	}
	var out C.double
	var rc C.int
	if is32[T]() {
		rc = C.lrmf_sum_f32(i64(n), pf(x), &out)
	} else {
		rc = C.lrmf_sum_f64(i64(n), pd(x), &out)
	}
	if err := status(op, rc); err != nil {
		return 0, err
	}
	return float64(out), nil
}

// GatherRows copies rows of src (rows of d elements) into dst (n×d):
// dst[i,:] = src[idx[i],:] for i < n. Every idx[i], i < n, must lie in
// [0, len(src)/d); this is checked before anything is written.
func GatherRows[T Float](n, d int, src []T, idx []int32, dst []T) error {
	const op = "GatherRows"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkLen(op, "idx", len(idx), n); err != nil {
		return err
	}
	if err := checkRows(op, "dst", len(dst), n, d); err != nil {
		return err
	}
	if n == 0 || d == 0 {
		return nil
	}
	rows := len(src) / d
	for i, r := range idx[:n] {
		if r < 0 || int(r) >= rows {
			return &Error{op, fmt.Sprintf("idx[%d] = %d out of range [0, %d)", i, r, rows)}
		}
	}
	if is32[T]() {
		return status(op, C.lrmf_gather_rows_f32(i64(n), i64(d), pf(src),
			(*C.int32_t)(unsafe.Pointer(unsafe.SliceData(idx))), pf(dst)))
	}
	return status(op, C.lrmf_gather_rows_f64(i64(n), i64(d), pd(src),
		(*C.int32_t)(unsafe.Pointer(unsafe.SliceData(idx))), pd(dst)))
}

// ---- Real NVP: fused bias + ReLU, column slices, affine coupling -----------

// ScaleKind selects the scale function s(r) of an affine coupling; the
// values are lrmf.h's LRMF_SCALE_* constants.
type ScaleKind int

// Scale functions of [CouplingForward] and friends.
const (
	// ScaleExp: s = exp(α), α = bound·tanh(r/bound), bound > 0, so
	// ln s = α ∈ (−bound, bound).
	ScaleExp ScaleKind = C.LRMF_SCALE_EXP
	// ScaleSigmoid: s = sigmoid(r + 2) ∈ (0, 1), ln s = −softplus(−(r+2));
	// the bound is ignored.
	ScaleSigmoid ScaleKind = C.LRMF_SCALE_SIGMOID
)

// checkCols checks that columns [c0, c0+k) lie inside [0, d), with the
// argument names used in messages (c0/k or t0/dt). Sizes are non-negative.
func checkCols(op, c0Name, kName string, c0, k, d int) error {
	if c0 < 0 {
		return errNeg(op, c0Name, c0)
	}
	if k < 0 {
		return errNeg(op, kName, k)
	}
	if k > d || c0 > d-k {
		return &Error{op, fmt.Sprintf("columns [%s, %s+%s) = [%d, %d) outside [0, %d)",
			c0Name, c0Name, kName, c0, uint(c0)+uint(k), d)}
	}
	return nil
}

func checkScale[T Float](op string, kind ScaleKind, bound T) error {
	switch kind {
	case ScaleSigmoid:
		return nil
	case ScaleExp:
		if !(bound > 0) {
			return &Error{op, fmt.Sprintf("scale bound = %g, want > 0 for ScaleExp", float64(bound))}
		}
		return nil
	}
	return &Error{op, fmt.Sprintf("unknown scale kind %d", int(kind))}
}

// checkCoupling validates the shared arguments of the coupling kernels and
// the lengths of x-like (n×d) and h (n×2dt) operands.
func checkCoupling[T Float](op string, n, d, t0, dt int, kind ScaleKind, bound T, h []T) error {
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkCols(op, "t0", "dt", t0, dt, d); err != nil {
		return err
	}
	if err := checkScale(op, kind, bound); err != nil {
		return err
	}
	w, ok := mul(2, dt)
	if !ok {
		return errOverflow(op)
	}
	return checkRows(op, "h", len(h), n, w)
}

// BiasReLU applies the fused bias + ReLU to y (n×d) in place:
// y[i,j] = max(y[i,j] + bias[j], 0), bias of length d.
func BiasReLU[T Float](n, d int, bias, y []T) error {
	const op = "BiasReLU"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkLen(op, "bias", len(bias), d); err != nil {
		return err
	}
	if err := checkRows(op, "y", len(y), n, d); err != nil {
		return err
	}
	if n == 0 || d == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_bias_relu_fwd_f32(i64(n), i64(d), pf(bias), pf(y)))
	}
	return status(op, C.lrmf_bias_relu_fwd_f64(i64(n), i64(d), pd(bias), pd(y)))
}

// BiasReLUBackward is the backward pass of [BiasReLU] given its output y
// (n×d) and the upstream gradient dy (n×d):
//
//	dz = dy·[y > 0]       dz n×d (out; may be dy itself)
//	db[j] = Σ_i dz[i,j]   db d   (out, accumulated in float64)
//
// n == 0 zeroes db.
func BiasReLUBackward[T Float](n, d int, y, dy, dz, db []T) error {
	const op = "BiasReLUBackward"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkRows(op, "y", len(y), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "dy", len(dy), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "dz", len(dz), n, d); err != nil {
		return err
	}
	if err := checkLen(op, "db", len(db), d); err != nil {
		return err
	}
	if d == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_bias_relu_bwd_f32(i64(n), i64(d), pf(y), pf(dy), pf(dz), pf(db)))
	}
	return status(op, C.lrmf_bias_relu_bwd_f64(i64(n), i64(d), pd(y), pd(dy), pd(dz), pd(db)))
}

// CopyCols copies columns [c0, c0+k) of src (n×d) into dst (n×k):
// dst = src[:, c0:c0+k]. dst must not overlap src.
func CopyCols[T Float](n, d, c0, k int, src, dst []T) error {
	const op = "CopyCols"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkCols(op, "c0", "k", c0, k, d); err != nil {
		return err
	}
	if err := checkRows(op, "src", len(src), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "dst", len(dst), n, k); err != nil {
		return err
	}
	if n == 0 || k == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_copy_cols_f32(i64(n), i64(d), i64(c0), i64(k), pf(src), pf(dst)))
	}
	return status(op, C.lrmf_copy_cols_f64(i64(n), i64(d), i64(c0), i64(k), pd(src), pd(dst)))
}

// AddCols adds src (n×k) into columns [c0, c0+k) of dst (n×d):
// dst[:, c0:c0+k] += src. dst must not overlap src.
func AddCols[T Float](n, d, c0, k int, src, dst []T) error {
	const op = "AddCols"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkCols(op, "c0", "k", c0, k, d); err != nil {
		return err
	}
	if err := checkRows(op, "src", len(src), n, k); err != nil {
		return err
	}
	if err := checkRows(op, "dst", len(dst), n, d); err != nil {
		return err
	}
	if n == 0 || k == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_add_cols_f32(i64(n), i64(d), i64(c0), i64(k), pf(src), pf(dst)))
	}
	return status(op, C.lrmf_add_cols_f64(i64(n), i64(d), i64(c0), i64(k), pd(src), pd(dst)))
}

// CouplingForward applies an affine coupling (Real NVP) to columns
// [t0, t0+dt) of x (n×d), with h (n×2dt) = [μ | r] from the conditioner
// (μ = h[:, :dt], r = h[:, dt:]) and s = s(r) the scale function kind:
//
//	y[:, t0+j] = x[:, t0+j]·s(r[:, j]) + μ[:, j];  y = x elsewhere   y n×d (out; may be x)
//	logdet[i] += Σ_j ln s(r[i,j])  (float64 sum)                      logdet n (nil skips it)
//
// t0, dt ≥ 0 with t0+dt ≤ d; bound > 0 for [ScaleExp].
func CouplingForward[T Float](n, d, t0, dt int, kind ScaleKind, bound T, x, h, y, logdet []T) error {
	const op = "CouplingForward"
	if err := checkCoupling(op, n, d, t0, dt, kind, bound, h); err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "y", len(y), n, d); err != nil {
		return err
	}
	if logdet != nil {
		if err := checkLen(op, "logdet", len(logdet), n); err != nil {
			return err
		}
	}
	if n == 0 || d == 0 {
		return nil
	}
	k := C.int(kind)
	if is32[T]() {
		return status(op, C.lrmf_coupling_fwd_f32(i64(n), i64(d), i64(t0), i64(dt), k, C.float(bound),
			pf(x), pf(h), pf(y), pf(logdet)))
	}
	return status(op, C.lrmf_coupling_fwd_f64(i64(n), i64(d), i64(t0), i64(dt), k, C.double(bound),
		pd(x), pd(h), pd(y), pd(logdet)))
}

// CouplingInverse inverts [CouplingForward]: x[:, t0+j] = (y[:, t0+j] −
// μ[:, j]) / s(r[:, j]) and x = y elsewhere; x is n×d (out; may be y).
// h must have been computed from the untouched columns.
func CouplingInverse[T Float](n, d, t0, dt int, kind ScaleKind, bound T, y, h, x []T) error {
	const op = "CouplingInverse"
	if err := checkCoupling(op, n, d, t0, dt, kind, bound, h); err != nil {
		return err
	}
	if err := checkRows(op, "y", len(y), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if n == 0 || d == 0 {
		return nil
	}
	k := C.int(kind)
	if is32[T]() {
		return status(op, C.lrmf_coupling_inv_f32(i64(n), i64(d), i64(t0), i64(dt), k, C.float(bound),
			pf(y), pf(h), pf(x)))
	}
	return status(op, C.lrmf_coupling_inv_f64(i64(n), i64(d), i64(t0), i64(dt), k, C.double(bound),
		pd(y), pd(h), pd(x)))
}

// CouplingBackward is the backward pass of [CouplingForward] at x, h for the
// upstream gradients dy (n×d) and dlogdet (n):
//
//	dx = dy on the untouched columns, dx[:, t0+j] = dy[:, t0+j]·s   dx n×d (out; may be dy; nil skips it)
//	dh[:, j]    = dy[:, t0+j]                                         dh n×2dt (out)
//	dh[:, dt+j] = dy[:, t0+j]·x[:, t0+j]·∂s/∂r + dlogdet_i·∂ln s/∂r
//
// with ∂ln s/∂r = 1 − tanh²(r/bound) for [ScaleExp], 1 − s for
// [ScaleSigmoid], and ∂s/∂r = s·∂ln s/∂r.
func CouplingBackward[T Float](n, d, t0, dt int, kind ScaleKind, bound T, x, h, dy, dlogdet, dx, dh []T) error {
	const op = "CouplingBackward"
	if err := checkCoupling(op, n, d, t0, dt, kind, bound, h); err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "dy", len(dy), n, d); err != nil {
		return err
	}
	if err := checkLen(op, "dlogdet", len(dlogdet), n); err != nil {
		return err
	}
	if dx != nil {
		if err := checkRows(op, "dx", len(dx), n, d); err != nil {
			return err
		}
	}
	if err := checkRows(op, "dh", len(dh), n, 2*dt); err != nil {
		return err
	}
	if n == 0 || d == 0 {
		return nil
	}
	k := C.int(kind)
	if is32[T]() {
		return status(op, C.lrmf_coupling_bwd_f32(i64(n), i64(d), i64(t0), i64(dt), k, C.float(bound),
			pf(x), pf(h), pf(dy), pf(dlogdet), pf(dx), pf(dh)))
	}
	return status(op, C.lrmf_coupling_bwd_f64(i64(n), i64(d), i64(t0), i64(dt), k, C.double(bound),
		pd(x), pd(h), pd(dy), pd(dlogdet), pd(dx), pd(dh)))
}

//go:build cgo

package bindings

// #include "lrmf.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// GemmWorkLen returns the length of the work slice [GemmWS] needs for an
// m×n×k product of element type T: 0 when m, n or k is 0 (or negative,
// which GemmWS rejects anyway). It is bounded by the kernel's block sizes
// (a few MiB of T at most), not by m·n·k, and does not depend on the
// transposes or leading dimensions.
func GemmWorkLen[T Float](m, n, k int) int {
	if m <= 0 || n <= 0 || k <= 0 {
		return 0
	}
	if is32[T]() {
		return int(C.lrmf_gemm_work_f32(i64(m), i64(n), i64(k)))
	}
	return int(C.lrmf_gemm_work_f64(i64(m), i64(n), i64(k)))
}

// GemmWS is [Gemm] with caller-provided workspace: it computes
// C = alpha·op(A)·op(B) + beta·C with the same arguments, rules and errors,
// using work (at least GemmWorkLen[T](m, n, k) elements, contents ignored
// and overwritten) to pack A and B for the fast blocked kernel. Calls that
// run at the same time need separate work slices; work must not overlap A,
// B or C.
func GemmWS[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int, work []T) error {
	const op = "GemmWS"
	if err := checkGemm(op, transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc); err != nil {
		return err
	}
	if m == 0 || n == 0 {
		return nil
	}
	if need := GemmWorkLen[T](m, n, k); len(work) < need {
		return &Error{op, fmt.Sprintf("len(work) = %d < %d required (GemmWorkLen)", len(work), need)}
	}
	ta, tb := cbool(transA), cbool(transB)
	if is32[T]() {
		return status(op, C.lrmf_gemm_ws_f32(ta, tb, i64(m), i64(n), i64(k),
			C.float(alpha), pf(a), i64(lda), pf(b), i64(ldb), C.float(beta), pf(c), i64(ldc),
			pf(work), i64(len(work))))
	}
	return status(op, C.lrmf_gemm_ws_f64(ta, tb, i64(m), i64(n), i64(k),
		C.double(alpha), pd(a), i64(lda), pd(b), i64(ldb), C.double(beta), pd(c), i64(ldc),
		pd(work), i64(len(work))))
}

// Epilogue is what [GemmEpWS] does to each element z of its result before
// storing it, in this order: z += Bias[j] (Bias nil: skip); z = max(z, 0)
// when ReLU; z = 0 unless Mask[i·LDM + j] > 0 (Mask nil: skip; ReLU's
// backward, given the forward's output); then, when ColSum is not nil,
// ColSum[j] = Σ_i z[i, j] over the stored values, summed in float64 in row
// order. Each step is rounded to T as a separate pass would round it.
type Epilogue[T Float] struct {
	Bias   []T       // n elements, or nil
	ReLU   bool      // z = max(z, 0)
	Mask   []T       // m×n with leading dimension LDM ≥ n, or nil
	LDM    int       // Mask's leading dimension
	ColSum []float64 // n elements (overwritten), or nil
}

// GemmEpWS is [GemmWS] followed by the epilogue ep on every element of C,
// applied to each tile of C right after its last store (no pass over C of
// its own). Bias, Mask and ColSum must not overlap C; ColSum is written
// (zeros) even when m == 0.
func GemmEpWS[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int, ep Epilogue[T], work []T) error {
	const op = "GemmEpWS"
	if err := checkGemm(op, transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if ep.Bias != nil {
		if err := checkLen(op, "bias", len(ep.Bias), n); err != nil {
			return err
		}
	}
	if ep.ColSum != nil && len(ep.ColSum) < n {
		return &Error{op, fmt.Sprintf("len(colsum) = %d < n = %d", len(ep.ColSum), n)}
	}
	if ep.Mask != nil {
		if err := checkLD(op, "ldm", ep.LDM, n); err != nil {
			return err
		}
		if err := checkMat(op, "mask", len(ep.Mask), m, n, ep.LDM); err != nil {
			return err
		}
	}
	if need := GemmWorkLen[T](m, n, k); len(work) < need {
		return &Error{op, fmt.Sprintf("len(work) = %d < %d required (GemmWorkLen)", len(work), need)}
	}
	ta, tb := cbool(transA), cbool(transB)
	ldm := 0
	if ep.Mask != nil {
		ldm = ep.LDM
	}
	var colsum *C.double
	if ep.ColSum != nil {
		colsum = (*C.double)(unsafe.Pointer(unsafe.SliceData(ep.ColSum)))
	}
	if is32[T]() {
		return status(op, C.lrmf_gemm_ep_ws_f32(ta, tb, i64(m), i64(n), i64(k),
			C.float(alpha), pf(a), i64(lda), pf(b), i64(ldb), C.float(beta), pf(c), i64(ldc),
			pf(ep.Bias), cbool(ep.ReLU), pf(ep.Mask), i64(ldm), colsum, pf(work), i64(len(work))))
	}
	return status(op, C.lrmf_gemm_ep_ws_f64(ta, tb, i64(m), i64(n), i64(k),
		C.double(alpha), pd(a), i64(lda), pd(b), i64(ldb), C.double(beta), pd(c), i64(ldc),
		pd(ep.Bias), cbool(ep.ReLU), pd(ep.Mask), i64(ldm), colsum, pd(work), i64(len(work))))
}

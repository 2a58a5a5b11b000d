package lrmf

import (
	"errors"
	"math"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// Small D×D linear algebra on the host. Flows and densities keep their
// D×D parameters on the backend and bring them here only for what has no
// kernel: determinants, inverses and symmetric square roots.

// errSingular reports a matrix whose determinant or inverse is not finite.
var errSingular = errors.New("matrix is singular or not finite")

// hostMat is a d×d row-major matrix in host memory with workspace for its
// LU factorisation and inverse, reused from call to call so the training
// loop allocates nothing (LAPACK through gonum's lapack64 on caller
// buffers).
type hostMat struct {
	d    int
	buf  []float64 // the matrix
	lu   []float64 // its LU factors after factorize
	inv  []float64 // its inverse after inverse
	ipiv []int
	work []float64
}

func newHostMat(d int) *hostMat {
	return &hostMat{d: d, buf: make([]float64, d*d), lu: make([]float64, d*d),
		inv: make([]float64, d*d), ipiv: make([]int, d), work: make([]float64, 4*d)}
}

func (h *hostMat) general(data []float64) blas64.General {
	return blas64.General{Rows: h.d, Cols: h.d, Stride: h.d, Data: data}
}

// factorize computes the LU factors of buf and reports whether the matrix
// is non-singular.
func (h *hostMat) factorize() bool {
	copy(h.lu, h.buf)
	return lapack64.Getrf(h.general(h.lu), h.ipiv)
}

// logAbsDet factorises the matrix and returns ln|det|, or errSingular.
func (h *hostMat) logAbsDet() (float64, error) {
	if !h.factorize() {
		return math.Inf(-1), errSingular
	}
	ld := 0.0
	for i := 0; i < h.d; i++ {
		ld += math.Log(math.Abs(h.lu[i*h.d+i]))
	}
	if math.IsNaN(ld) || math.IsInf(ld, 0) {
		return ld, errSingular
	}
	return ld, nil
}

// inverse returns the inverse of the matrix as a row-major slice, valid
// until the next call.
func (h *hostMat) inverse() ([]float64, error) {
	if !h.factorize() {
		return nil, errSingular
	}
	copy(h.inv, h.lu)
	if !lapack64.Getri(h.general(h.inv), h.ipiv, h.work, len(h.work)) {
		return nil, errSingular
	}
	for _, v := range h.inv {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errSingular
		}
	}
	return h.inv, nil
}

// transposeInto sets dst = srcᵀ for d×d row-major matrices.
func transposeInto(dst, src []float64, d int) {
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			dst[j*d+i] = src[i*d+j]
		}
	}
}

// symPow returns S^p for a symmetric positive-definite S (p = ±½, say), by
// eigendecomposition.
func symPow(s mat.Symmetric, p float64) (*mat.Dense, error) {
	var eig mat.EigenSym
	if !eig.Factorize(s, true) {
		return nil, errors.New("eigendecomposition failed")
	}
	vals := eig.Values(nil)
	for _, v := range vals {
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, errors.New("matrix is not positive definite")
		}
	}
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	d := len(vals)
	diag := mat.NewDiagDense(d, nil)
	for i, v := range vals {
		diag.SetDiag(i, math.Pow(v, p))
	}
	var out mat.Dense
	out.Product(&vecs, diag, vecs.T())
	// Symmetrise away rounding so S^p is exactly symmetric.
	for i := 0; i < d; i++ {
		for j := 0; j < i; j++ {
			a := 0.5 * (out.At(i, j) + out.At(j, i))
			out.Set(i, j, a)
			out.Set(j, i, a)
		}
	}
	return &out, nil
}

// identity returns the d×d identity matrix, row-major.
func identity(d int) []float64 {
	id := make([]float64, d*d)
	for i := 0; i < d; i++ {
		id[i*d+i] = 1
	}
	return id
}

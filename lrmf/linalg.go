package lrmf

import (
	"errors"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Small D×D linear algebra on the host. Flows and densities keep their
// D×D parameters on the backend and bring them here only for what has no
// kernel: determinants, inverses and symmetric square roots.

var sqrt = math.Sqrt

// errSingular reports a matrix whose determinant or inverse is not finite.
var errSingular = errors.New("matrix is singular or not finite")

// hostMat is a d×d matrix in host memory with its LU factorisation; its
// buffers are reused from call to call.
type hostMat struct {
	d   int
	buf []float64
	m   *mat.Dense
	lu  mat.LU
	inv mat.Dense
}

func newHostMat(d int) *hostMat {
	buf := make([]float64, d*d)
	return &hostMat{d: d, buf: buf, m: mat.NewDense(d, d, buf)}
}

// logAbsDet factorises the matrix and returns ln|det|, or errSingular.
func (h *hostMat) logAbsDet() (float64, error) {
	h.lu.Factorize(h.m)
	ld, _ := h.lu.LogDet()
	if math.IsNaN(ld) || math.IsInf(ld, 0) {
		return ld, errSingular
	}
	return ld, nil
}

// inverse returns the inverse of the matrix (valid until the next call).
func (h *hostMat) inverse() (*mat.Dense, error) {
	if err := h.inv.Inverse(h.m); err != nil {
		var c mat.Condition
		if !errors.As(err, &c) {
			return nil, err
		}
		if math.IsInf(float64(c), 1) {
			return nil, errSingular
		}
		// Ill-conditioned but invertible: gonum still returns a result.
	}
	return &h.inv, nil
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

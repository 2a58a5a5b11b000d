// Package linalg is the small D×D linear algebra the models and the
// closed-form shift test do on the host: determinants, inverses and
// symmetric matrix powers, for what has no backend kernel. Matrices are
// row-major []float64 of length d·d.
package linalg

import (
	"errors"
	"math"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// ErrSingular reports a matrix whose determinant or inverse is not finite.
var ErrSingular = errors.New("matrix is singular or not finite")

// Mat is a d×d row-major matrix in host memory (Buf) with workspace for its
// LU factorisation and inverse, reused from call to call so a training loop
// allocates nothing (LAPACK through gonum's lapack64 on caller buffers).
type Mat struct {
	D    int       // the dimension d
	Buf  []float64 // the matrix, d·d row-major
	lu   []float64 // its LU factors after factorize
	inv  []float64 // its inverse after Inverse
	ipiv []int
	work []float64
}

// NewMat returns a zero d×d Mat.
func NewMat(d int) *Mat {
	return &Mat{D: d, Buf: make([]float64, d*d), lu: make([]float64, d*d),
		inv: make([]float64, d*d), ipiv: make([]int, d), work: make([]float64, 4*d)}
}

// General views data (d·d, row-major) as a d×d blas64.General.
func (h *Mat) General(data []float64) blas64.General {
	return blas64.General{Rows: h.D, Cols: h.D, Stride: h.D, Data: data}
}

// factorize computes the LU factors of Buf and reports whether the matrix
// is non-singular.
func (h *Mat) factorize() bool {
	copy(h.lu, h.Buf)
	return lapack64.Getrf(h.General(h.lu), h.ipiv)
}

// LogAbsDet factorises Buf and returns ln|det Buf| = Σ_i ln|U_ii|, or
// ErrSingular.
func (h *Mat) LogAbsDet() (float64, error) {
	if !h.factorize() {
		return math.Inf(-1), ErrSingular
	}
	ld := 0.0
	for i := 0; i < h.D; i++ {
		ld += math.Log(math.Abs(h.lu[i*h.D+i]))
	}
	if math.IsNaN(ld) || math.IsInf(ld, 0) {
		return ld, ErrSingular
	}
	return ld, nil
}

// Inverse returns Buf⁻¹ as a d·d row-major slice owned by h, valid until
// the next call, or ErrSingular.
func (h *Mat) Inverse() ([]float64, error) {
	if !h.factorize() {
		return nil, ErrSingular
	}
	copy(h.inv, h.lu)
	if !lapack64.Getri(h.General(h.inv), h.ipiv, h.work, len(h.work)) {
		return nil, ErrSingular
	}
	for _, v := range h.inv {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, ErrSingular
		}
	}
	return h.inv, nil
}

// TransposeInto sets dst = srcᵀ for d×d row-major matrices.
func TransposeInto(dst, src []float64, d int) {
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			dst[j*d+i] = src[i*d+j]
		}
	}
}

// SymPow returns S^p = V diag(λ^p) Vᵀ for a symmetric positive-definite S
// (p = ±½, say) by eigendecomposition, symmetrised exactly.
func SymPow(s mat.Symmetric, p float64) (*mat.Dense, error) {
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

// Identity returns the d×d identity matrix, row-major.
func Identity(d int) []float64 {
	id := make([]float64, d*d)
	for i := 0; i < d; i++ {
		id[i*d+i] = 1
	}
	return id
}

// Centre returns the column means m of the n×p x (Σ_i x_ij / n, summed in
// row order) and the centred copy x − 1mᵀ.
func Centre(x *mat.Dense) (m []float64, xc *mat.Dense) {
	n, p := x.Dims()
	m = make([]float64, p)
	for i := range n {
		for j, v := range x.RawRowView(i) {
			m[j] += v
		}
	}
	for j := range m {
		m[j] /= float64(n)
	}
	xc = mat.NewDense(n, p, nil)
	for i := range n {
		dst := xc.RawRowView(i)
		for j, v := range x.RawRowView(i) {
			dst[j] = v - m[j]
		}
	}
	return m, xc
}

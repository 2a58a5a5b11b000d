package paper

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/internal/linalg"
)

// moments returns the sample mean and the maximum-likelihood covariance
// (1/n) Σ (x_i − m)(x_i − m)ᵀ of the rows of the n×D x.
func moments(x *mat.Dense) ([]float64, *mat.SymDense) {
	n, d := x.Dims()
	m, xc := linalg.Centre(x)
	s := mat.NewSymDense(d, nil)
	s.SymOuterK(1/float64(n), xc.T())
	return m, s
}

// affineMap returns the rows M(a_i − mA) + mB of the n×D a.
func affineMap(a *mat.Dense, m mat.Matrix, mA, mB []float64) *mat.Dense {
	n, d := a.Dims()
	ac := mat.NewDense(n, d, nil)
	for i := range n {
		dst := ac.RawRowView(i)
		for j, v := range a.RawRowView(i) {
			dst[j] = v - mA[j]
		}
	}
	out := mat.NewDense(n, d, nil)
	out.Mul(ac, m.T())
	for i := range n {
		row := out.RawRowView(i)
		for j := range row {
			row[j] += mB[j]
		}
	}
	return out
}

// sym returns ½(m + mᵀ) as a SymDense.
func sym(m mat.Matrix) *mat.SymDense {
	d, _ := m.Dims()
	s := mat.NewSymDense(d, nil)
	for i := range d {
		for j := i; j < d; j++ {
			s.SetSym(i, j, 0.5*(m.At(i, j)+m.At(j, i)))
		}
	}
	return s
}

// checkMapPair checks that a and b are non-empty with the same columns.
func checkMapPair(op string, a, b *mat.Dense) error {
	if a == nil || a.IsEmpty() || b == nil || b.IsEmpty() {
		return fmt.Errorf("paper: %s: empty data", op)
	}
	_, da := a.Dims()
	if _, db := b.Dims(); da != db {
		return fmt.Errorf("paper: %s: A has %d columns, B %d", op, da, db)
	}
	return nil
}

// GaussianOT returns T(A) for the optimal-transport map between the
// Gaussians fitted to the rows of a and b (sample means m, maximum-
// likelihood covariances S):
//
//	T(a) = M*(a − m_A) + m_B,  M* = S_A^{−1/2} (S_A^{1/2} S_B S_A^{1/2})^{1/2} S_A^{−1/2},
//
// the symmetric positive-definite map that matches the first two moments
// with the least mean squared displacement. It is what affine + Gaussian
// LRMF converges to (METHOD.md §6). a is nA×D, b nB×D; the result nA×D. It
// is an error if a covariance is not positive definite.
func GaussianOT(a, b *mat.Dense) (*mat.Dense, error) {
	if err := checkMapPair("GaussianOT", a, b); err != nil {
		return nil, err
	}
	mA, sA := moments(a)
	mB, sB := moments(b)
	h, err := linalg.SymPow(sA, 0.5)
	if err != nil {
		return nil, fmt.Errorf("paper: GaussianOT: covariance of A: %w", err)
	}
	hi, err := linalg.SymPow(sA, -0.5)
	if err != nil {
		return nil, fmt.Errorf("paper: GaussianOT: covariance of A: %w", err)
	}
	var inner mat.Dense
	inner.Product(h, sB, h)
	root, err := linalg.SymPow(sym(&inner), 0.5)
	if err != nil {
		return nil, fmt.Errorf("paper: GaussianOT: covariance of B: %w", err)
	}
	var m mat.Dense
	m.Product(hi, root, hi)
	return affineMap(a, sym(&m), mA, mB), nil
}

// CORAL returns T(A) for correlation alignment (Sun, Feng, Saenko 2016)
// with the sample moments of a and b (means m, maximum-likelihood
// covariances C), without the ridge the original adds (the embeddings here
// are whitened, so C is well conditioned):
//
//	T(a) = C_B^{1/2} C_A^{−1/2} (a − m_A) + m_B,
//
// whitening A and recolouring it with B's covariance. Like GaussianOT it
// matches the first two moments; unlike it, the map is not symmetric in
// general, so it may rotate. a is nA×D, b nB×D; the result nA×D. It is an
// error if a covariance is not positive definite.
func CORAL(a, b *mat.Dense) (*mat.Dense, error) {
	if err := checkMapPair("CORAL", a, b); err != nil {
		return nil, err
	}
	mA, sA := moments(a)
	mB, sB := moments(b)
	wA, err := linalg.SymPow(sA, -0.5)
	if err != nil {
		return nil, fmt.Errorf("paper: CORAL: covariance of A: %w", err)
	}
	cB, err := linalg.SymPow(sB, 0.5)
	if err != nil {
		return nil, fmt.Errorf("paper: CORAL: covariance of B: %w", err)
	}
	var m mat.Dense
	m.Mul(cB, wA)
	return affineMap(a, &m, mA, mB), nil
}

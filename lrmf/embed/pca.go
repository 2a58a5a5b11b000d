// Package embed maps two datasets into one shared low-dimensional space, in
// which lrmf can align them, and back: principal component analysis (PCA)
// fitted on both, with standardised coordinates, or an autoencoder trained
// on both with the library's own kernels (model.MLP, optim.Adam on a
// native.Backend), its codes whitened likewise.
//
// It is a data-preparation step, independent of the flows and of package
// lrmf: PCA uses only gonum; the autoencoder imports lrmf/model,
// lrmf/optim and native.
package embed

import (
	"errors"
	"fmt"
	"github.com/lrmf-go/lrmf/lrmf/internal/linalg"
	"math"

	"gonum.org/v1/gonum/mat"
)

// PCA is a fitted principal component analysis with standardised scores.
//
// For fit data X (n×p) with column means μ, centred data Xc = X − 1μᵀ and
// thin singular value decomposition Xc = U·diag(σ)·Vᵀ (σ₁ ≥ σ₂ ≥ …), the
// first D columns of V are the principal axes and σ_k/√(n−1) is the
// standard deviation of the data along axis k. Transform maps a row x to
// z_k = (x − μ)ᵀv_k / sd_k, so the fit data get zero mean and unit
// variance in every coordinate (and zero correlation between them).
//
// Signs are fixed deterministically: in each axis the entry of largest
// absolute value (the first, on a tie) is positive, as scikit-learn's
// svd_flip does with u_based_decision=False.
type PCA struct {
	// Mean holds μ, the p column means of the fit data.
	Mean []float64
	// Axes is p×D; its orthonormal columns are the principal axes v_1…v_D.
	Axes *mat.Dense
	// SD holds the D standard deviations σ_k/√(n−1) along the axes.
	SD []float64
	// TotalVariance is the trace of the fit data's covariance,
	// Σ_all σ_k²/(n−1), the denominator of ExplainedVarianceRatio.
	TotalVariance float64
}

// Fit fits a PCA with D components to the n×p matrix x (see PCA).
//
// D must satisfy 1 ≤ D ≤ p (the input columns), D ≤ n−1 (centring leaves at
// most n−1 dimensions) and D ≤ rank(Xc), the number of singular values
// above max(n, p)·ε·σ₁ (NumPy's matrix_rank tolerance): a standardised
// coordinate along a direction with no variance would be 0/0. Each of these
// is an error saying which bound D exceeds, as is a nil or empty x, a NaN
// or infinity in x, or an SVD that does not converge.
//
// Cost: one thin SVD of the centred n×p copy, O(n·p²); about 0.5 s for
// 4000×256 on one core.
func Fit(x *mat.Dense, d int) (*PCA, error) {
	if x == nil || x.IsEmpty() {
		return nil, errors.New("embed: PCA of an empty matrix")
	}
	n, p := x.Dims()
	switch {
	case d < 1:
		return nil, fmt.Errorf("embed: D = %d: want at least 1 component", d)
	case d > p:
		return nil, fmt.Errorf("embed: D = %d exceeds the %d input columns", d, p)
	case d > n-1:
		return nil, fmt.Errorf("embed: D = %d exceeds n−1 = %d (n = %d rows; centring leaves n−1 dimensions)", d, n-1, n)
	}
	if err := checkFinite(x, "the data"); err != nil {
		return nil, err
	}
	mean, xc := linalg.Centre(x)
	var svd mat.SVD
	if !svd.Factorize(xc, mat.SVDThinV) {
		return nil, errors.New("embed: PCA: the SVD did not converge")
	}
	sigma := svd.Values(nil)
	tol := float64(max(n, p)) * 0x1p-52 * sigma[0]
	rank := 0
	for _, s := range sigma {
		if s > tol {
			rank++
		}
	}
	if d > rank {
		return nil, fmt.Errorf("embed: D = %d exceeds the rank %d of the centred data (singular values at most %.3g count as 0)", d, rank, tol)
	}
	var v mat.Dense
	svd.VTo(&v)
	axes := mat.DenseCopyOf(v.Slice(0, p, 0, d))
	sd := make([]float64, d)
	for k := range d {
		sd[k] = sigma[k] / math.Sqrt(float64(n-1))
		// Sign: the largest |entry| of the axis is positive.
		big, at := -1.0, 0
		for j := range p {
			if a := math.Abs(axes.At(j, k)); a > big {
				big, at = a, j
			}
		}
		if axes.At(at, k) < 0 {
			for j := range p {
				axes.Set(j, k, -axes.At(j, k))
			}
		}
	}
	total := 0.0
	for _, s := range sigma {
		total += s * s
	}
	return &PCA{Mean: mean, Axes: axes, SD: sd, TotalVariance: total / float64(n-1)}, nil
}

// Dims returns p, the input dimension, and D, the number of components.
func (pc *PCA) Dims() (p, d int) { return pc.Axes.Dims() }

// Transform returns the m×D standardised scores Z = (X − 1μᵀ)·V·diag(1/sd)
// of the m×p matrix x. It is an error if x is empty, holds a NaN or
// infinity, or has a number of columns other than p.
func (pc *PCA) Transform(x *mat.Dense) (*mat.Dense, error) {
	p, d := pc.Dims()
	if x == nil || x.IsEmpty() {
		return nil, errors.New("embed: transform of an empty matrix")
	}
	m, c := x.Dims()
	if c != p {
		return nil, fmt.Errorf("embed: data have %d columns, the PCA was fitted on %d", c, p)
	}
	if err := checkFinite(x, "the data"); err != nil {
		return nil, err
	}
	xc := mat.NewDense(m, p, nil)
	for i := range m {
		dst := xc.RawRowView(i)
		for j, v := range x.RawRowView(i) {
			dst[j] = v - pc.Mean[j]
		}
	}
	z := mat.NewDense(m, d, nil)
	z.Mul(xc, pc.Axes)
	for i := range m {
		row := z.RawRowView(i)
		for k := range row {
			row[k] /= pc.SD[k]
		}
	}
	return z, nil
}

// Inverse maps m×D scores back to the input space: X̂ = Z·diag(sd)·Vᵀ + 1μᵀ,
// the projection of the original rows onto the affine span of the axes
// (exact when D equals the rank of the fit data). It is an error if z is
// empty, holds a NaN or infinity, or has a number of columns other than D.
func (pc *PCA) Inverse(z *mat.Dense) (*mat.Dense, error) {
	p, d := pc.Dims()
	if z == nil || z.IsEmpty() {
		return nil, errors.New("embed: inverse of an empty matrix")
	}
	m, c := z.Dims()
	if c != d {
		return nil, fmt.Errorf("embed: scores have %d columns, the PCA has %d components", c, d)
	}
	if err := checkFinite(z, "the scores"); err != nil {
		return nil, err
	}
	zs := mat.DenseCopyOf(z)
	for i := range m {
		row := zs.RawRowView(i)
		for k := range row {
			row[k] *= pc.SD[k]
		}
	}
	x := mat.NewDense(m, p, nil)
	x.Mul(zs, pc.Axes.T())
	for i := range m {
		row := x.RawRowView(i)
		for j := range row {
			row[j] += pc.Mean[j]
		}
	}
	return x, nil
}

// ExplainedVarianceRatio returns, for each component k, sd_k² divided by the
// fit data's total variance: the share of the variance the axis carries.
func (pc *PCA) ExplainedVarianceRatio() []float64 {
	r := make([]float64, len(pc.SD))
	for k, s := range pc.SD {
		r[k] = s * s / pc.TotalVariance
	}
	return r
}

// checkFinite returns an error naming what and the first NaN or infinity's
// 0-based position.
func checkFinite(x *mat.Dense, what string) error {
	n, _ := x.Dims()
	for i := range n {
		for j, v := range x.RawRowView(i) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("embed: %s: row %d, column %d (0-based): not a finite value (%v)", what, i, j, v)
			}
		}
	}
	return nil
}

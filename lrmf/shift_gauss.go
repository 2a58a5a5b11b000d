package lrmf

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/internal/linalg"
)

// gaussShift evaluates the statistics of the full-covariance Gaussian with
// closed-form fits from sufficient statistics, on the host in float64.
//
// The rows are centred at the pooled mean μS, so θS = (μS = 0,
// L = Σ_S^{-1/2}) with Σ_S = (1/n) Σ x xᵀ is fixed under relabelling. For
// a set X of m rows, with d_X = mean x and C_X = mean x xᵀ (second moment
// about μS) and S_X = C_X − d_X d_Xᵀ its own MLE covariance:
//
//	ℓ(X; θX) = −(D/2) ln 2π − ½ ln det S_X − D/2,
//	ℓ(X; θS) = −(D/2) ln 2π − ½ ln det Σ_S − ½ tr(Σ_S⁻¹ C_X),
//	∇μ ℓ(X; θS) = Σ_S⁻¹ d_X,   ∇L ℓ(X; θS) = −L C_X + L⁻ᵀ   (Gaussian.Backward
//	with weights 1/m), L⁻ᵀ = Σ_S^{1/2}.
//
// Hence dΛ = ln det Σ_S − ½ ln det S_A − ½ ln det S_B − D +
// ½ tr(Σ_S⁻¹ (C_A + C_B)); Σ_S = w_A C_A + w_B C_B (w_X = n_X/n), so with
// n_A = n_B the trace is 2D and dΛ = ln det Σ_S − ½ ln det S_A − ½ ln det S_B.
// Only the smaller set's sums are accumulated per labelling; the other's
// are the pooled totals minus them.
type gaussShift struct {
	d, na, nb int
	x         []float64 // centred pooled rows, n×d
	// Σ_S⁻¹, L = Σ_S^{-1/2}, L⁻ᵀ = Σ_S^{1/2} (row-major d×d), ln det Σ_S.
	prec, l, linvT []float64
	logdetS        float64
	t1, t2         []float64 // Σ x, Σ x xᵀ over all rows
	s1, s2         []float64 // over the smaller set
	cov, chol      []float64 // scratch: a set's S_X and its Cholesky factor
	gl             []float64 // scratch: ∇L
	scoreOnly      bool
	// gradMu, gradL hold the last eval's gradients, A's then B's (tests).
	gradMu, gradL [2][]float64
}

func newGaussShift(pooled *mat.Dense, na, nb int, scoreOnly bool) (*gaussShift, error) {
	n, d := pooled.Dims()
	g := &gaussShift{d: d, na: na, nb: nb, x: make([]float64, n*d), scoreOnly: scoreOnly,
		t1: make([]float64, d), t2: make([]float64, d*d), s1: make([]float64, d), s2: make([]float64, d*d),
		cov: make([]float64, d*d), chol: make([]float64, d*d), gl: make([]float64, d*d)}
	for i := range 2 {
		g.gradMu[i], g.gradL[i] = make([]float64, d), make([]float64, d*d)
	}
	mean := make([]float64, d)
	for i := range n {
		for j := range d {
			mean[j] += pooled.At(i, j)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := range n {
		for j := range d {
			g.x[i*d+j] = pooled.At(i, j) - mean[j]
		}
	}
	g.sums(g.t1, g.t2, nil, n)
	sigma := mat.NewSymDense(d, nil)
	for j := range d {
		for k := j; k < d; k++ {
			sigma.SetSym(j, k, g.t2[j*d+k]/float64(n))
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(sigma) {
		return nil, fmt.Errorf("lrmf: the pooled covariance of A ∪ B is not positive definite (are the data degenerate?)")
	}
	g.logdetS = chol.LogDet()
	var prec mat.SymDense
	if err := chol.InverseTo(&prec); err != nil {
		return nil, fmt.Errorf("lrmf: the pooled covariance of A ∪ B: %w", err)
	}
	l, err := linalg.SymPow(sigma, -0.5)
	if err != nil {
		return nil, fmt.Errorf("lrmf: the pooled covariance of A ∪ B: %w", err)
	}
	linv, err := linalg.SymPow(sigma, 0.5)
	if err != nil {
		return nil, fmt.Errorf("lrmf: the pooled covariance of A ∪ B: %w", err)
	}
	g.prec, g.l, g.linvT = make([]float64, d*d), l.RawMatrix().Data, linv.RawMatrix().Data
	for j := range d {
		for k := range d {
			g.prec[j*d+k] = prec.At(j, k)
		}
	}
	return g, nil
}

// sums sets s1 = Σ x_i and the upper triangle of s2 = Σ x_i x_iᵀ over the
// rows rows (all n rows when rows is nil), then mirrors s2.
func (g *gaussShift) sums(s1, s2 []float64, rows []int32, n int) {
	d := g.d
	clear(s1)
	clear(s2)
	add := func(r []float64) {
		for j, v := range r {
			s1[j] += v
			row := s2[j*d:]
			for k := j; k < d; k++ {
				row[k] += v * r[k]
			}
		}
	}
	if rows == nil {
		for i := range n {
			add(g.x[i*d : (i+1)*d])
		}
	} else {
		for _, i := range rows {
			add(g.x[int(i)*d : (int(i)+1)*d])
		}
	}
	for j := range d {
		for k := range j {
			s2[j*d+k] = s2[k*d+j]
		}
	}
}

func (g *gaussShift) eval(_ context.Context, a, b []int32) (shiftStats, error) {
	st := shiftStats{scoreOnly: g.scoreOnly}
	small, smallIsA := a, true
	if len(b) < len(a) {
		small, smallIsA = b, false
	}
	g.sums(g.s1, g.s2, small, 0)
	d := g.d
	const ln2pi = 1.8378770664093453 // ln 2π
	// set 0 is A, set 1 is B.
	for set := range 2 {
		m := g.na
		if set == 1 {
			m = g.nb
		}
		fromSmall := (set == 0) == smallIsA
		inv := 1 / float64(m)
		dx, c := g.gradMu[set], g.cov // d_X, then C_X in cov
		for j := range d {
			s := g.s1[j]
			if !fromSmall {
				s = g.t1[j] - s
			}
			dx[j] = s * inv
		}
		for j := range d * d {
			s := g.s2[j]
			if !fromSmall {
				s = g.t2[j] - s
			}
			c[j] = s * inv
		}
		// ℓ(X; θS) and ∇L = −L C_X + L⁻ᵀ.
		tr := 0.0
		for j := range d {
			for k := range d {
				tr += g.prec[j*d+k] * c[k*d+j]
			}
		}
		llS := -0.5*float64(d)*ln2pi - 0.5*g.logdetS - 0.5*tr
		gl := g.gradL[set]
		norm2 := 0.0
		for j := range d {
			for k := range d {
				s := 0.0
				for t := range d {
					s += g.l[j*d+t] * c[t*d+k]
				}
				gl[j*d+k] = g.linvT[j*d+k] - s
				norm2 += gl[j*d+k] * gl[j*d+k]
			}
		}
		// ∇μ = Σ_S⁻¹ d_X, written over d_X (gradMu) via gl's scratch row.
		mu := g.gl[:d]
		for j := range d {
			s := 0.0
			for k := range d {
				s += g.prec[j*d+k] * dx[k]
			}
			mu[j] = s
		}
		llX := math.NaN()
		if !g.scoreOnly {
			// S_X = C_X − d_X d_Xᵀ; ln det S_X by Cholesky.
			for j := range d {
				for k := range d {
					c[j*d+k] -= dx[j] * dx[k]
				}
			}
			ld, ok := cholLogDet(c, g.chol, d)
			if !ok {
				return st, fmt.Errorf("lrmf: the covariance of the %s set (%d rows) is not positive definite", "AB"[set:set+1], m)
			}
			llX = -0.5*float64(d)*ln2pi - 0.5*ld - 0.5*float64(d)
		}
		copy(dx, mu)
		for _, v := range dx {
			norm2 += v * v
		}
		if set == 0 {
			st.gradA, st.llSA, st.llA = math.Sqrt(norm2), llS, llX
		} else {
			st.gradB, st.llSB, st.llB = math.Sqrt(norm2), llS, llX
		}
	}
	st.finish()
	return st, nil
}

// pooledGrad returns ‖∇θ ℓ(A ∪ B; θS)‖ from the totals: ∇μ = Σ_S⁻¹ mean x,
// ∇L = −L Σ_S + L⁻ᵀ (both 0 up to rounding).
func (g *gaussShift) pooledGrad() (float64, error) {
	d, n := g.d, float64(len(g.x)/g.d)
	norm2 := 0.0
	for j := range d {
		mu, gl := 0.0, 0.0
		for k := range d {
			mu += g.prec[j*d+k] * g.t1[k] / n
			s := 0.0
			for t := range d {
				s += g.l[j*d+t] * g.t2[t*d+k] / n
			}
			gl = g.linvT[j*d+k] - s
			norm2 += gl * gl
		}
		norm2 += mu * mu
	}
	return math.Sqrt(norm2), nil
}

// cholLogDet returns ln det of the symmetric d×d matrix a (row-major) by
// an in-place Cholesky factorisation into l, and false when a is not
// positive definite.
func cholLogDet(a, l []float64, d int) (float64, bool) {
	ld := 0.0
	for j := range d {
		s := a[j*d+j]
		for k := range j {
			s -= l[j*d+k] * l[j*d+k]
		}
		if !(s > 0) || math.IsInf(s, 0) {
			return math.NaN(), false
		}
		ljj := math.Sqrt(s)
		l[j*d+j] = ljj
		ld += 2 * math.Log(ljj)
		for i := j + 1; i < d; i++ {
			s := a[i*d+j]
			for k := range j {
				s -= l[i*d+k] * l[j*d+k]
			}
			l[i*d+j] = s / ljj
		}
	}
	return ld, true
}

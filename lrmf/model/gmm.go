package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/internal/linalg"
	"github.com/lrmf-go/lrmf/native"
)

// GMM is a K-component Gaussian mixture on R^D with full covariances and
// learnable weights:
//
//	ln P(x) = logsumexp_c [ln π_c + ln N(x; μ_c, L_c)],  π = softmax(logits),
//
// each component parameterised like Gaussian (L_c = Σ_c^{-1/2}, trained
// unconstrained). Its parameters are "mu" (K×D, row c = μ_c), "L"
// ((K·D)×D, rows [c·D, (c+1)·D) = L_c) and "logits" (1×K).
//
// Initialisation (NewGMM): the means are drawn from N(0, I), spread by
// rng; every L_c = I; equal weights. For data that is not standardised call
// InitFromData, which puts the means on K distinct random rows of the data
// and every covariance at the data's covariance.
//
// The mixture needs a backend with the mixture kernels (a
// native.GMMBackend: ref and cpu).
type GMM struct {
	be     native.GMMBackend
	d, k   int
	rng    *rand.Rand
	mu, l  *Param
	logits *Param
	ps     []*Param

	lh        []*linalg.Mat  // the L_c on the host, for ln|det L_c| and L_c⁻ᵀ
	lbuf      []float64      // host copy of L, (K·D)×D
	ldh       []float64      // ln|det L_c|
	logdetL   *native.Tensor // 1×K
	x         *native.Tensor // last LogProb input
	u, resp   *native.Tensor // kept for Backward
	wsum      *native.Tensor // Σ_i w_ic
	wsh, tbuf []float64
	linvT     *native.Tensor // (K·D)×D, the wsum_c·L_c⁻ᵀ blocks
}

// NewGMM returns a k-component mixture on R^d on be (see GMM for the
// initialisation); rng spreads the initial means (nil: a fixed seed).
func NewGMM(be native.Backend, d, k int, rng *rand.Rand) (*GMM, error) {
	gb, ok := be.(native.GMMBackend)
	if !ok {
		return nil, fmt.Errorf("model: NewGMM: the %s backend has no Gaussian-mixture kernels", be.Name())
	}
	if d < 1 || k < 1 {
		return nil, fmt.Errorf("model: NewGMM: dimension %d and %d components, want both ≥ 1", d, k)
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	g := &GMM{be: gb, d: d, k: k, rng: rng,
		lbuf: make([]float64, k*d*d), ldh: make([]float64, k), wsh: make([]float64, k),
		tbuf: make([]float64, k*d*d)}
	g.mu = newParam(be, "mu", k, d)
	g.l = newParam(be, "L", k*d, d)
	g.logits = newParam(be, "logits", 1, k)
	g.ps = []*Param{g.mu, g.l, g.logits}
	g.lh = make([]*linalg.Mat, k)
	for c := range g.lh {
		g.lh[c] = linalg.NewMat(d)
	}
	g.logdetL, g.wsum = be.New(1, k), be.New(1, k)
	g.linvT = be.New(k*d, d)
	means := make([]float64, k*d)
	for i := range means {
		means[i] = rng.NormFloat64()
	}
	ls := make([]float64, 0, k*d*d)
	for c := 0; c < k; c++ {
		ls = append(ls, linalg.Identity(d)...)
	}
	if err := g.SetComponents(means, ls, make([]float64, k)); err != nil {
		return nil, err
	}
	return g, nil
}

// GMMDensity returns a DensityMaker for a k-component GMM (NewGMM's
// initialisation, with the maker's rng).
func GMMDensity(k int) DensityMaker {
	return func(be native.Backend, dim int, rng *rand.Rand) (Density, error) {
		return NewGMM(be, dim, k, rng)
	}
}

// Dim returns D.
func (g *GMM) Dim() int { return g.d }

// K returns the number of components.
func (g *GMM) K() int { return g.k }

// Params returns [mu, L, logits].
func (g *GMM) Params() []*Param { return g.ps }

// SetComponents sets the means (K·D, row-major K×D), the L_c ((K·D)×D,
// stacked) and the logits (K).
func (g *GMM) SetComponents(means, l, logits []float64) error {
	if len(means) != g.k*g.d || len(l) != g.k*g.d*g.d || len(logits) != g.k {
		return fmt.Errorf("model: GMM.SetComponents: lengths %d, %d, %d, want %d, %d, %d",
			len(means), len(l), len(logits), g.k*g.d, g.k*g.d*g.d, g.k)
	}
	g.be.Upload(g.mu.Value, means)
	g.be.Upload(g.l.Value, l)
	g.be.Upload(g.logits.Value, logits)
	return nil
}

// InitFromData puts the means on K distinct random rows of the n×D x
// (n ≥ K), every covariance at the covariance of x (L_c = Σ^{-1/2}, the
// symmetric root) and the weights equal. It fails when x has fewer than K
// rows or a singular covariance.
func (g *GMM) InitFromData(x *native.Tensor) error {
	n, d := x.Rows(), x.Cols()
	if d != g.d {
		return fmt.Errorf("model: GMM.InitFromData: x has %d columns, the density has dimension %d", d, g.d)
	}
	if n < g.k {
		return fmt.Errorf("model: GMM.InitFromData: %d rows for %d components", n, g.k)
	}
	xs := make([]float64, n*d)
	g.be.Download(xs, x)
	means := make([]float64, g.k*d)
	for c, i := range g.rng.Perm(n)[:g.k] {
		copy(means[c*d:(c+1)*d], xs[i*d:(i+1)*d])
	}
	m := make([]float64, d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			m[j] += xs[i*d+j] / float64(n)
		}
	}
	cov := mat.NewSymDense(d, nil)
	for a := 0; a < d; a++ {
		for b := a; b < d; b++ {
			s := 0.0
			for i := 0; i < n; i++ {
				s += (xs[i*d+a] - m[a]) * (xs[i*d+b] - m[b])
			}
			cov.SetSym(a, b, s/float64(n))
		}
	}
	root, err := linalg.SymPow(cov, -0.5)
	if err != nil {
		return fmt.Errorf("model: GMM.InitFromData: covariance: %w", err)
	}
	ls := make([]float64, 0, g.k*d*d)
	for c := 0; c < g.k; c++ {
		ls = append(ls, root.RawMatrix().Data...)
	}
	for _, v := range ls {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("model: GMM.InitFromData: the data's covariance is singular")
		}
	}
	return g.SetComponents(means, ls, make([]float64, g.k))
}

// LogProb sets logp[i] = ln P(x_i) for the n×D batch x.
func (g *GMM) LogProb(logp, x *native.Tensor) error {
	n := x.Rows()
	if x.Cols() != g.d {
		return fmt.Errorf("model: GMM.LogProb: x has %d columns, the density has dimension %d", x.Cols(), g.d)
	}
	g.be.Download(g.lbuf, g.l.Value)
	dd := g.d * g.d
	for c, h := range g.lh {
		copy(h.Buf, g.lbuf[c*dd:(c+1)*dd])
		ld, err := h.LogAbsDet()
		if err != nil {
			return fmt.Errorf("model: GMM.LogProb: L of component %d is singular (ln|det L| = %v)", c, ld)
		}
		g.ldh[c] = ld
	}
	g.be.Upload(g.logdetL, g.ldh)
	if g.u == nil || g.u.Rows() != n {
		g.u, g.resp = g.be.New(n, g.k*g.d), g.be.New(n, g.k)
	}
	g.x = x
	g.be.GMMLogProb(logp, g.u, g.resp, x, g.mu.Value, g.l.Value, g.logits.Value, g.logdetL)
	return nil
}

// Backward sets ∂L/∂μ_c, ∂L/∂L_c, ∂L/∂logits and, when dx is not nil,
// ∂L/∂x for the batch of the last LogProb, given w = dlogp = ∂L/∂logp and
// the responsibilities r_ic:
//
//	∂L/∂x_i = −Σ_c w_i r_ic Σ_c⁻¹(x_i − μ_c),  ∂L/∂μ_c = Σ_i w_i r_ic Σ_c⁻¹(x_i − μ_c),
//	∂L/∂L_c = −Σ_i w_i r_ic L_c(x_i − μ_c)(x_i − μ_c)ᵀ + (Σ_i w_i r_ic) L_c⁻ᵀ,
//	∂L/∂logits_c = Σ_i w_i (r_ic − π_c).
func (g *GMM) Backward(dx, dlogp *native.Tensor) error {
	if g.x == nil {
		return fmt.Errorf("model: GMM.Backward called before LogProb")
	}
	g.be.GMMBackward(dx, g.mu.Grad, g.l.Grad, g.logits.Grad, g.wsum,
		g.x, g.mu.Value, g.l.Value, g.logits.Value, g.u, g.resp, dlogp)
	g.be.Download(g.wsh, g.wsum)
	dd := g.d * g.d
	for c, h := range g.lh {
		inv, err := h.Inverse() // h.Buf still holds L_c of the last LogProb
		if err != nil {
			return fmt.Errorf("model: GMM.Backward: component %d: %w", c, err)
		}
		blk := g.tbuf[c*dd : (c+1)*dd]
		linalg.TransposeInto(blk, inv, g.d)
		for i := range blk {
			blk[i] *= g.wsh[c]
		}
	}
	g.be.Upload(g.linvT, g.tbuf)
	g.be.Axpy(1, g.linvT, g.l.Grad)
	return nil
}

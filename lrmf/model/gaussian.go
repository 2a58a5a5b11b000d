package model

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/internal/linalg"
	"github.com/lrmf-go/lrmf/native"
)

// Gaussian is the full-covariance normal density parameterised by its mean
// μ (1×D) and L = Σ^{-1/2} (D×D), so that Σ stays positive definite:
//
//	ln N(x; μ, L) = −(D/2) ln 2π + ln|det L| − ½‖L(x − μ)‖².
//
// L is trained as an unconstrained matrix; any L with LᵀL = Σ⁻¹ gives the
// same density, and the MLE and SetMoments choose the symmetric root.
type Gaussian struct {
	be    native.Backend
	d     int
	mu, l *Param
	ps    []*Param

	lh      *linalg.Mat    // L on the host, for ln|det L| and L⁻ᵀ
	logdetL float64        // of the last LogProb
	linvT   *native.Tensor // L⁻ᵀ, D×D
	tbuf    []float64      // host L⁻ᵀ
	x, u    *native.Tensor // last LogProb input and its u = L(x − μ)
	ws      gaussScratch
}

// gaussScratch holds FitMLE's batch-sized buffers, reused across calls.
type gaussScratch struct {
	xc, mean, cov *native.Tensor // centred x; −mean; covariance
}

// NewGaussian returns the standard normal N(0, I) on R^d.
func NewGaussian(be native.Backend, d int) *Gaussian {
	g := &Gaussian{be: be, d: d, lh: linalg.NewMat(d), linvT: be.New(d, d), tbuf: make([]float64, d*d)}
	g.mu = newParam(be, "mu", 1, d)
	g.l = newParam(be, "L", d, d)
	g.ps = []*Param{g.mu, g.l}
	be.Upload(g.l.Value, linalg.Identity(d))
	return g
}

// GaussianDensity returns a DensityMaker for Gaussian.
func GaussianDensity() DensityMaker {
	return func(be native.Backend, dim int, _ *rand.Rand) (Density, error) {
		return NewGaussian(be, dim), nil
	}
}

// Dim returns D.
func (g *Gaussian) Dim() int { return g.d }

// Params returns [μ, L].
func (g *Gaussian) Params() []*Param { return g.ps }

// LogProb sets logp[i] = ln N(x_i; μ, L) for the n×D batch x.
func (g *Gaussian) LogProb(logp, x *native.Tensor) error {
	n := x.Rows()
	if x.Cols() != g.d {
		return fmt.Errorf("model: Gaussian.LogProb: x has %d columns, the density has dimension %d", x.Cols(), g.d)
	}
	g.be.Download(g.lh.Buf, g.l.Value)
	ld, err := g.lh.LogAbsDet()
	if err != nil {
		return fmt.Errorf("model: Gaussian.LogProb: L = Σ^(-1/2) is singular (ln|det L| = %v)", ld)
	}
	if g.u == nil || g.u.Rows() != n {
		g.u = g.be.New(n, g.d)
	}
	g.logdetL, g.x = ld, x
	g.be.GaussLogProb(logp, g.u, x, g.mu.Value, g.l.Value, ld)
	return nil
}

// Backward sets ∂L/∂μ, ∂L/∂L and, when dx is not nil, ∂L/∂x for the batch
// of the last LogProb, given dlogp = ∂L/∂logp:
//
//	∂L/∂x_i = −w_i LᵀL(x_i − μ),  ∂L/∂μ = Σ w_i LᵀL(x_i − μ),
//	∂L/∂L = −Σ w_i L(x_i − μ)(x_i − μ)ᵀ + (Σ w_i) L⁻ᵀ,  w = dlogp.
func (g *Gaussian) Backward(dx, dlogp *native.Tensor) error {
	if g.x == nil {
		return fmt.Errorf("model: Gaussian.Backward called before LogProb")
	}
	g.be.GaussBackward(dx, g.mu.Grad, g.l.Grad, g.x, g.mu.Value, g.l.Value, g.u, dlogp)
	inv, err := g.lh.Inverse()
	if err != nil {
		return fmt.Errorf("model: Gaussian.Backward: %w", err)
	}
	linalg.TransposeInto(g.tbuf, inv, g.d)
	g.be.Upload(g.linvT, g.tbuf)
	g.be.Axpy(g.be.Sum(dlogp), g.linvT, g.l.Grad)
	return nil
}

// SetMoments sets μ = mean and L = cov^{-1/2} (the symmetric root). cov must
// be positive definite.
func (g *Gaussian) SetMoments(mean []float64, cov mat.Symmetric) error {
	if len(mean) != g.d || cov.SymmetricDim() != g.d {
		return fmt.Errorf("model: Gaussian.SetMoments: mean has %d and cov %d dimensions, want %d", len(mean), cov.SymmetricDim(), g.d)
	}
	l, err := linalg.SymPow(cov, -0.5)
	if err != nil {
		return fmt.Errorf("model: Gaussian.SetMoments: covariance: %w", err)
	}
	g.be.Upload(g.mu.Value, mean)
	g.be.Upload(g.l.Value, l.RawMatrix().Data)
	return nil
}

// Moments returns μ and Σ = (LᵀL)⁻¹.
func (g *Gaussian) Moments() (mean []float64, cov *mat.SymDense, err error) {
	mean = make([]float64, g.d)
	g.be.Download(mean, g.mu.Value)
	lbuf := make([]float64, g.d*g.d)
	g.be.Download(lbuf, g.l.Value)
	l := mat.NewDense(g.d, g.d, lbuf)
	var prec mat.SymDense
	prec.SymOuterK(1, l.T())
	var chol mat.Cholesky
	if !chol.Factorize(&prec) {
		return nil, nil, fmt.Errorf("model: Gaussian.Moments: LᵀL is not positive definite")
	}
	cov = mat.NewSymDense(g.d, nil)
	if err := chol.InverseTo(cov); err != nil {
		return nil, nil, fmt.Errorf("model: Gaussian.Moments: %w", err)
	}
	return mean, cov, nil
}

// FitMLE sets μ and L to the maximum-likelihood estimate for the n×D batch
// x: μ = mean, Σ = (1/n) Σ_i (x_i − μ)(x_i − μ)ᵀ. It fails when Σ is not
// positive definite (fewer than D+1 distinct points, or collinear data).
func (g *Gaussian) FitMLE(x *native.Tensor) error {
	n, d := x.Rows(), x.Cols()
	if d != g.d {
		return fmt.Errorf("model: Gaussian.FitMLE: x has %d columns, the density has dimension %d", d, g.d)
	}
	if n == 0 {
		return fmt.Errorf("model: Gaussian.FitMLE: no data")
	}
	be, ws := g.be, &g.ws
	if ws.xc == nil || ws.xc.Rows() != n {
		ws.xc = be.New(n, d)
		ws.mean, ws.cov = be.New(1, d), be.New(d, d)
	}
	be.BiasGrad(ws.mean, x) // column sums
	mean := make([]float64, d)
	be.Download(mean, ws.mean)
	for j := range mean {
		mean[j] /= float64(n)
	}
	neg := make([]float64, d)
	for j, m := range mean {
		neg[j] = -m
	}
	be.Upload(ws.mean, neg)
	be.Copy(ws.xc, x)
	be.BiasAdd(ws.xc, ws.mean) // centre
	be.Gemm(true, false, 1/float64(n), ws.xc, ws.xc, 0, ws.cov)
	cbuf := make([]float64, d*d)
	be.Download(cbuf, ws.cov)
	cov := mat.NewSymDense(d, cbuf)
	if err := g.SetMoments(mean, cov); err != nil {
		return fmt.Errorf("model: Gaussian.FitMLE: %w (are the data degenerate?)", err)
	}
	return nil
}

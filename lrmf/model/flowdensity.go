package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/native"
)

// FlowDensity is the density of a flow f: R^D → R^D pulled back from a
// standard normal base: ln p(x) = ln N(f(x); 0, I) + ln|det ∂f/∂x|. Its
// parameters are the flow's.
type FlowDensity struct {
	be    native.Backend
	f     Flow
	d     int
	onesD *native.Tensor // D×1 of ones: row sums by one GEMM
	ones1 *native.Tensor // the same ones as 1×D: a vector of n spread over D columns
	n     int
	z, ld *native.Tensor
	sq    *native.Tensor // z⊙z (LogProb), then −w_i for every column (Backward)
	dz    *native.Tensor
}

// NewFlowDensity returns the density of f with a standard-normal base.
func NewFlowDensity(be native.Backend, f Flow) *FlowDensity {
	d := f.Dim()
	p := &FlowDensity{be: be, f: f, d: d, onesD: be.New(d, 1)}
	be.Fill(p.onesD, 1)
	p.ones1 = native.Reshape(p.onesD, 1, d)
	return p
}

// Flow returns the underlying flow x → z.
func (p *FlowDensity) Flow() Flow { return p.f }

// Dim returns D.
func (p *FlowDensity) Dim() int { return p.d }

// Params returns the flow's parameters.
func (p *FlowDensity) Params() []*Param { return p.f.Params() }

// LogProb sets logp[i] = ln N(f(x_i); 0, I) + ln|det ∂f/∂x (x_i)| for the
// n×D batch x (logp: n). The base term, −½‖z_i‖² − (D/2) ln 2π, costs
// O(n·D): z⊙z, then its row sums by one n×D by D×1 GEMM (a Gaussian with
// a D×D Cholesky factor would cost O(n·D²), 40% of a GLOW step at D = 1024).
func (p *FlowDensity) LogProb(logp, x *native.Tensor) error {
	n := x.Rows()
	if p.n != n || p.z == nil {
		p.n = n
		p.z, p.sq, p.ld, p.dz = p.be.New(n, p.d), p.be.New(n, p.d), p.be.New(n, 1), p.be.New(n, p.d)
	}
	be := p.be
	be.Fill(p.ld, 0)
	if err := p.f.Forward(p.z, p.ld, x); err != nil {
		return err
	}
	be.Mul(p.sq, p.z, p.z)
	be.Fill(logp, -0.5*float64(p.d)*math.Log(2*math.Pi))
	be.Gemm(false, false, -0.5, p.sq, p.onesD, 1, logp)
	be.Axpy(1, p.ld, logp)
	return nil
}

// Backward takes w = dlogp = ∂L/∂logp (n) for the last LogProb and sets
// the flow's parameter gradients and, when dx is not nil, dx (n×D) to
// ∂L/∂x: with z = f(x), ∂L/∂z_i = −w_i z_i from the base (w spread over
// the D columns by a rank-one GEMM, then multiplied into z), then the
// flow's Backward with dy = ∂L/∂z and ∂L/∂logdet = w.
func (p *FlowDensity) Backward(dx, dlogp *native.Tensor) error {
	if p.z == nil {
		return fmt.Errorf("model: FlowDensity.Backward called before LogProb")
	}
	p.be.Gemm(false, false, -1, dlogp, p.ones1, 0, p.sq)
	p.be.Mul(p.dz, p.sq, p.z)
	return p.f.Backward(dx, p.dz, dlogp)
}

func (p *FlowDensity) setInference(on bool) { setInference(p.f, on) }

// densityOf returns the DensityMaker whose densities are NewFlowDensity of
// the flows newFlow builds (x → z, standard-normal base).
func densityOf[F Flow](newFlow func(be native.Backend, dim int, rng *rand.Rand) (F, error)) DensityMaker {
	return func(be native.Backend, dim int, rng *rand.Rand) (Density, error) {
		f, err := newFlow(be, dim, rng)
		if err != nil {
			return nil, err
		}
		return NewFlowDensity(be, f), nil
	}
}

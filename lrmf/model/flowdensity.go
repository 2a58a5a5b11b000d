package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/lrmf/internal/linalg"
	"github.com/lrmf-go/lrmf/native"
)

// FlowDensity is the density of a flow f: R^D → R^D pulled back from a
// standard normal base: ln p(x) = ln N(f(x); 0, I) + ln|det ∂f/∂x|. Its
// parameters are the flow's.
type FlowDensity struct {
	be       native.Backend
	f        Flow
	d        int
	zero     *native.Tensor // μ = 0
	eye      *native.Tensor // L = I
	n        int
	z, u, ld *native.Tensor
	dz       *native.Tensor
	dmu, dl  *native.Tensor // gradients of the fixed base, discarded
}

// NewFlowDensity returns the density of f with a standard-normal base.
func NewFlowDensity(be native.Backend, f Flow) *FlowDensity {
	d := f.Dim()
	p := &FlowDensity{be: be, f: f, d: d, zero: be.New(1, d), eye: be.New(d, d), dmu: be.New(1, d), dl: be.New(d, d)}
	be.Upload(p.eye, linalg.Identity(d))
	return p
}

// Flow returns the underlying flow x → z.
func (p *FlowDensity) Flow() Flow { return p.f }

// Dim returns D.
func (p *FlowDensity) Dim() int { return p.d }

// Params returns the flow's parameters.
func (p *FlowDensity) Params() []*Param { return p.f.Params() }

// LogProb sets logp[i] = ln N(f(x_i); 0, I) + ln|det ∂f/∂x (x_i)| for the
// n×D batch x (logp: n).
func (p *FlowDensity) LogProb(logp, x *native.Tensor) error {
	n := x.Rows()
	if p.n != n || p.z == nil {
		p.n = n
		p.z, p.u, p.ld, p.dz = p.be.New(n, p.d), p.be.New(n, p.d), p.be.New(n, 1), p.be.New(n, p.d)
	}
	p.be.Fill(p.ld, 0)
	if err := p.f.Forward(p.z, p.ld, x); err != nil {
		return err
	}
	p.be.GaussLogProb(logp, p.u, p.z, p.zero, p.eye, 0)
	p.be.Axpy(1, p.ld, logp)
	return nil
}

// Backward takes w = dlogp = ∂L/∂logp (n) for the last LogProb and sets
// the flow's parameter gradients and, when dx is not nil, dx (n×D) to
// ∂L/∂x: with z = f(x), ∂L/∂z_i = −w_i z_i from the base, then the flow's
// Backward with dy = ∂L/∂z and ∂L/∂logdet = w.
func (p *FlowDensity) Backward(dx, dlogp *native.Tensor) error {
	if p.z == nil {
		return fmt.Errorf("model: FlowDensity.Backward called before LogProb")
	}
	p.be.GaussBackward(p.dz, p.dmu, p.dl, p.z, p.zero, p.eye, p.u, dlogp)
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

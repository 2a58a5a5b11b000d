package model

import (
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/native"
)

// Density is a parametric density P(x; θ) on R^D.
//
// LogProb and Backward work on batches: x is n×D, logp a vector of n.
// Backward is the vector-Jacobian product of the most recent LogProb call;
// its inputs must not be modified in between.
type Density interface {
	// Dim is D.
	Dim() int
	// Params lists θ; the slice and its elements are owned by the density.
	Params() []*Param
	// LogProb sets logp[i] = ln P(x_i; θ).
	LogProb(logp, x *native.Tensor) error
	// Backward takes dlogp[i] = ∂L/∂logp[i] for the last LogProb call, sets
	// every Param's Grad to ∂L/∂θ (overwriting) and, when dx is not nil,
	// dx (n×D) to ∂L/∂x.
	Backward(dx, dlogp *native.Tensor) error
}

// MLEFitter is implemented by densities with a closed-form maximum
// likelihood estimate.
type MLEFitter interface {
	// FitMLE sets θ to argmax_θ mean_i ln P(x_i; θ) for the n×D batch x.
	FitMLE(x *native.Tensor) error
}

// Flow is an invertible map T: R^D → R^D with a tractable Jacobian
// determinant.
//
// Forward and Backward work on batches: x, y are n×D, logdet a vector of n.
// Backward is the vector-Jacobian product of the most recent Forward call;
// its inputs must not be modified in between.
type Flow interface {
	// Dim is D.
	Dim() int
	// Params lists φ; the slice and its elements are owned by the flow.
	Params() []*Param
	// Forward sets y_i = T(x_i) and adds ln|det ∂T/∂x (x_i)| to logdet[i]
	// (accumulating, so chains need no temporaries; zero it first).
	Forward(y, logdet, x *native.Tensor) error
	// Inverse sets x_i = T⁻¹(y_i).
	Inverse(x, y *native.Tensor) error
	// Backward takes dy = ∂L/∂y and dlogdet = ∂L/∂logdet for the last
	// Forward, sets every Param's Grad to ∂L/∂φ (overwriting) and, when dx
	// is not nil, dx to ∂L/∂x.
	Backward(dx, dy, dlogdet *native.Tensor) error
}

// FlowMaker builds a flow on be for D-dimensional data; rng initialises
// random parameters.
type FlowMaker func(be native.Backend, dim int, rng *rand.Rand) (Flow, error)

// DensityMaker builds a density on be for D-dimensional data; rng
// initialises random parameters.
type DensityMaker func(be native.Backend, dim int, rng *rand.Rand) (Density, error)

// DataInitializer is implemented by models with a data-dependent
// initialisation (GLOW's ActNorms and coupling normalisation, GMM's means
// and covariances): InitFromData sets the parameters from the n×D batch x.
// It overwrites fitted values, so callers run it on fresh models only (lrmf
// does before a density's first gradient-fit step and before a fresh
// flow's pre-fit or joint phase, never on parameters loaded from a
// checkpoint).
type DataInitializer interface {
	InitFromData(x *native.Tensor) error
}

// DataInitializerOf returns m's DataInitializer: m itself, or the flow of a
// FlowDensity when that flow has one.
func DataInitializerOf(m any) (DataInitializer, bool) {
	if di, ok := m.(DataInitializer); ok {
		return di, true
	}
	if p, ok := m.(*FlowDensity); ok {
		di, ok := p.Flow().(DataInitializer)
		return di, ok
	}
	return nil, false
}

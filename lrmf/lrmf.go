// Package lrmf aligns two datasets with Log-Likelihood Ratio Minimizing
// Flows (Usman, Sud, Dufour, Saenko, NeurIPS 2020) and reports whether the
// alignment succeeded.
//
// Given datasets A and B in R^D, a density family M = {P(x; θ)} and a
// normalizing flow T(x; φ), LRMF minimises jointly over φ and θS
//
//	LRMF(φ, θS) = c_AB − ℓ(T(A; φ); θS) − ℓ(B; θS) − mean_a ln|det ∇T(a; φ)|,
//
// where ℓ(X; θ) is the per-sample mean log-likelihood (nats) and
// c_AB = ℓ(A; θA*) + ℓ(B; θB*) uses models fitted to A and to B alone. The
// objective is bounded below by 0 and reaches 0 only when T(A) and B are
// indistinguishable to M, so its final value on the full data is a
// convergence indicator: Align reports success when |LRMF| < Threshold.
//
// Densities and flows are built from native.Backend operations, so the same
// model runs on the CPU, the reference backend or a GPU. Every layer has an
// explicit backward pass (a vector-Jacobian product); there is no tape.
package lrmf

import (
	"math"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/native"
)

// Param is a named trainable tensor and its gradient (same shape).
type Param struct {
	Name  string
	Value *native.Tensor
	Grad  *native.Tensor
}

func newParam(be native.Backend, name string, rows, cols int) *Param {
	return &Param{Name: name, Value: be.New(rows, cols), Grad: be.New(rows, cols)}
}

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

// DensityMaker builds a density on be for D-dimensional data.
type DensityMaker func(be native.Backend, dim int, rng *rand.Rand) (Density, error)

// copyParams sets dst's parameters to src's; both must come from the same
// maker with the same dimension.
func copyParams(be native.Backend, dst, src []*Param) {
	if len(dst) != len(src) {
		panic("lrmf: copyParams: parameter lists differ")
	}
	for i := range dst {
		be.Copy(dst[i].Value, src[i].Value)
	}
}

// gradNorm returns ‖∇‖₂ over all params' gradients.
func gradNorm(be native.Backend, ps []*Param) float64 {
	s := 0.0
	for _, p := range ps {
		s += be.Dot(p.Grad, p.Grad)
	}
	return math.Sqrt(s)
}

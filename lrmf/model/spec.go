package model

import (
	"fmt"
	"strings"

	"github.com/lrmf-go/lrmf/native"
)

// ModelSpec names a built-in flow or density and its size, in a form that
// survives JSON (report.json, checkpoints) and rebuilds the same model.
type ModelSpec struct {
	// Kind is "affine" (flows), "gaussian" (densities), "realnvp", "glow"
	// or "ffjord" (both).
	Kind string `json:"kind"`
	// Real NVP, Glow and FFJORD (zero values take RealNVPOptions',
	// GlowOptions' or FFJORDOptions' defaults).
	Blocks int `json:"blocks,omitempty"` // coupling layers or stacked transforms
	Hidden int `json:"hidden,omitempty"` // units per hidden layer
	Depth  int `json:"depth,omitempty"`  // hidden layers per network
	// Real NVP and Glow (their couplings).
	Scale string  `json:"scale,omitempty"` // "exp" (soft-bounded) or "sigmoid"
	Bound float64 `json:"bound,omitempty"` // exp scale's bound on ln s
	// FFJORD only: see FFJORDOptions.
	Solver   string  `json:"solver,omitempty"`    // "dopri5" or "rk4"
	ODESteps int     `json:"ode_steps,omitempty"` // RK4 steps
	Atol     float64 `json:"atol,omitempty"`      // Dormand–Prince absolute tolerance
	Rtol     float64 `json:"rtol,omitempty"`      // Dormand–Prince relative tolerance
	MaxSteps int     `json:"max_steps,omitempty"` // Dormand–Prince step budget
	Trace    string  `json:"trace,omitempty"`     // "exact" or "hutchinson"
	Probes   int     `json:"probes,omitempty"`    // Hutchinson probes
}

// FlowKinds and DensityKinds list the built-in model kinds.
var (
	FlowKinds    = []string{"affine", "realnvp", "glow", "ffjord"}
	DensityKinds = []string{"gaussian", "realnvp", "glow", "ffjord"}
)

// FFJORD returns the FFJORD options s names, defaults filled in.
func (s ModelSpec) FFJORD() FFJORDOptions {
	return FFJORDOptions{Blocks: s.Blocks, Hidden: s.Hidden, Depth: s.Depth, Solver: s.Solver, Steps: s.ODESteps,
		Atol: s.Atol, Rtol: s.Rtol, MaxSteps: s.MaxSteps, Trace: s.Trace, Probes: s.Probes}.withDefaults()
}

func (s ModelSpec) realNVP() (RealNVPOptions, error) {
	o := RealNVPOptions{Blocks: s.Blocks, Hidden: s.Hidden, Depth: s.Depth}
	switch s.Scale {
	case "", "exp":
		o.Scale = native.Scale{Kind: native.ScaleExp, Bound: s.Bound}
		if s.Bound == 0 {
			o.Scale.Bound = DefaultScale.Bound
		}
	case "sigmoid":
		o.Scale = native.Scale{Kind: native.ScaleSigmoid}
	default:
		return o, fmt.Errorf("model: unknown Real NVP scale %q (want exp or sigmoid)", s.Scale)
	}
	return o.withDefaults(), nil
}

// glow returns the Glow options s names (Blocks, Hidden, Depth and the
// couplings' Scale and Bound as for Real NVP), defaults filled in.
func (s ModelSpec) glow() (GlowOptions, error) {
	r, err := s.realNVP()
	if err != nil {
		return GlowOptions{}, fmt.Errorf("model: Glow: %w", err)
	}
	return GlowOptions{Blocks: r.Blocks, Hidden: r.Hidden, Depth: r.Depth, Scale: r.Scale}.withDefaults(), nil
}

// Normalized fills in the defaults, so two specs of the same model compare
// equal.
func (s ModelSpec) Normalized() ModelSpec {
	if s.Kind == "ffjord" {
		o := s.FFJORD()
		return ModelSpec{Kind: s.Kind, Blocks: o.Blocks, Hidden: o.Hidden, Depth: o.Depth, Solver: o.Solver, ODESteps: o.Steps,
			Atol: o.Atol, Rtol: o.Rtol, MaxSteps: o.MaxSteps, Trace: o.Trace, Probes: o.Probes}
	}
	if s.Kind != "realnvp" && s.Kind != "glow" {
		return ModelSpec{Kind: s.Kind}
	}
	o, err := s.realNVP()
	if err != nil {
		return s
	}
	n := ModelSpec{Kind: s.Kind, Blocks: o.Blocks, Hidden: o.Hidden, Depth: o.Depth, Scale: "exp", Bound: o.Scale.Bound}
	if o.Scale.Kind == native.ScaleSigmoid {
		n.Scale, n.Bound = "sigmoid", 0
	}
	return n
}

// FlowMaker returns the maker of the flow s names.
func (s ModelSpec) FlowMaker() (FlowMaker, error) {
	switch s.Kind {
	case "affine":
		return AffineFlow(), nil
	case "realnvp":
		o, err := s.realNVP()
		if err != nil {
			return nil, err
		}
		return RealNVPFlow(o), nil
	case "glow":
		o, err := s.glow()
		if err != nil {
			return nil, err
		}
		return GlowFlow(o), nil
	case "ffjord":
		return FFJORDFlow(s.FFJORD()), nil
	}
	return nil, fmt.Errorf("model: unknown flow %q (available: %s)", s.Kind, strings.Join(FlowKinds, ", "))
}

// DensityMaker returns the maker of the density s names.
func (s ModelSpec) DensityMaker() (DensityMaker, error) {
	switch s.Kind {
	case "gaussian":
		return GaussianDensity(), nil
	case "realnvp":
		o, err := s.realNVP()
		if err != nil {
			return nil, err
		}
		return RealNVPDensity(o), nil
	case "glow":
		o, err := s.glow()
		if err != nil {
			return nil, err
		}
		return GlowDensity(o), nil
	case "ffjord":
		return FFJORDDensity(s.FFJORD()), nil
	}
	return nil, fmt.Errorf("model: unknown density %q (available: %s)", s.Kind, strings.Join(DensityKinds, ", "))
}

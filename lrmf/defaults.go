package lrmf

import (
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// The defaults table. Every zero field of a Config or ShiftConfig selects
// the value below (Config.withDefaults and ShiftConfig.withDefaults read
// it, in one place each; the fit options shared by both are filled by
// FitOptions.withDefaults), and the lrmf command takes its flag defaults
// from it, so the zero Config, `lrmf align` with no flags and the README's
// default run are one run. Model sizes (Real NVP blocks, width and depth,
// FFJORD's network and solver) are model.RealNVPOptions' and
// model.FFJORDOptions' defaults, filled in by model.ModelSpec.Normalized.
//
// Budgets depend on the model family: a zero field of a Config is filled
// from DefaultConfigFor(Flow.Kind, Density.Kind), resolved after the kinds'
// own defaults (Real NVP). Families differ only in the step budgets, the
// batch and the early-stopping period; everything else is shared.

// DefaultConfig returns the run a zero Config means, every field filled in
// (Backend nil: Align opens native.DefaultBackend() in DefaultDType, see
// Config.Backend); it is DefaultConfigFor("realnvp", "realnvp"):
//
//	Flow, Density   Real NVP, 4 blocks of 2 × 32 ReLU, exp scale bounded by 4
//	Steps           20000 joint steps at most, LR 3e-3
//	FitSteps        20000 per gradient fit of θA*, θB* at most, FitLR = LR
//	Batch           256 (capped at the smaller training part)
//	Schedule        cosine (to lr/100 over the cap), ClipNorm 10, Tol 1e-4
//	EvalEvery       250 steps between validation evaluations
//	Patience        10000 steps without improvement stop a phase (half the
//	                cap)
//	Trim            0.02 of validation and held-out rows dropped at each end
//	Holdout         0.2 of each set held out for the reported figures
//	Validation      0.1 of the rest for early stopping and restarts
//	Restarts        2 joint phases; the lower validation LRMF is kept
//	Confidence      0.95 (one-sided upper bound on LRMF)
//	Alpha           0.05 (two-sample test of T(A) against B)
//	IdentityPrefit  0: DefaultFFJORDPrefit for an FFJORD flow, else none
//	Threshold       δ = 0.1 nats
//	Seed            1
//	ProgressEvery   25
//
// The result is a fresh value: changing it changes no default.
func DefaultConfig() Config {
	return DefaultConfigFor("realnvp", "realnvp")
}

// DefaultConfigFor returns the defaults for a run of the given flow and
// density kinds (model.FlowKinds, model.DensityKinds): DefaultConfig's,
// with the budgets of the family. When the flow or the density is FFJORD,
// whose steps cost 20–40 times a Real NVP step on a CPU:
//
//	Steps, FitSteps  1000 at most
//	Batch            128
//	EvalEvery        100, Patience 500 (half the cap)
//	Restarts         1
//
// so that `lrmf align --flow ffjord --density ffjord` ends in a few
// minutes on 2 cores. The image kinds (model.ImageKinds: glow-image,
// glow-b2b), whose step on 32×32 images costs ~50 ms per 64 images, take
// the same budgets with Batch 64. Other kinds (affine, gaussian, custom) take the Real
// NVP budgets: early stopping ends their cheap phases.
func DefaultConfigFor(flowKind, densityKind string) Config {
	const lr = 3e-3
	c := Config{
		Flow:    model.ModelSpec{Kind: flowKind}.Normalized(),
		Density: model.ModelSpec{Kind: densityKind}.Normalized(),
		Steps:   20000,
		LR:      lr,
		FitOptions: FitOptions{
			FitSteps:  20000,
			Batch:     256,
			FitLR:     lr, // a zero FitLR follows Config.LR
			Schedule:  "cosine",
			ClipNorm:  10,
			Tol:       1e-4,
			EvalEvery: 250,
			Patience:  10000,
			Trim:      0.02,
		},
		Holdout:       0.2,
		Validation:    0.1,
		Restarts:      2,
		Confidence:    0.95,
		Alpha:         0.05,
		Threshold:     0.1,
		Seed:          1,
		ProgressEvery: 25,
	}
	if flowKind == "ffjord" || densityKind == "ffjord" {
		c.Steps, c.FitSteps, c.Batch = 1000, 1000, 128
		c.EvalEvery, c.Patience, c.Restarts = 100, 500, 1
	}
	if model.IsImageKind(flowKind) || model.IsImageKind(densityKind) {
		c.Steps, c.FitSteps, c.Batch = 1000, 1000, 64
		c.EvalEvery, c.Patience, c.Restarts = 100, 500, 1
	}
	return c
}

// DefaultShiftConfig returns what a zero ShiftConfig means, every field
// filled in (Backend nil: as for Config). Its fit options are
// DefaultConfig's except FitSteps, 2000, and Patience, 500: θA and θB
// are refitted for every relabelling, so each fit is kept ten times
// shorter than Align's.
//
//	Density         full-covariance Gaussian (closed-form fits)
//	Permutations    DefaultPermutations = 199
//	FitSteps        2000, FitLR 3e-3, Batch 256, cosine, ClipNorm 10, Tol 1e-4
//	EvalEvery       250, Patience 500 (gradient fits only)
//	Validation      0.1 of each fitted set for the fits' early stopping
//	Seed            1
func DefaultShiftConfig() ShiftConfig {
	d := DefaultConfig()
	fit := d.FitOptions
	fit.FitSteps, fit.Patience = 2000, 500
	return ShiftConfig{
		Density:      model.ModelSpec{Kind: "gaussian"},
		Permutations: DefaultPermutations,
		Seed:         1,
		Validation:   d.Validation,
		FitOptions:   fit,
	}
}

// DefaultDType is the element type of the backend Align and ShiftTest open
// when the configuration has none (and the lrmf command's --dtype default):
// float32, except on the reference backend, which computes in float64 only.
const DefaultDType = native.Float32

// DefaultFFJORDPrefit is the identity pre-fit's step budget for FFJORD
// flows (Config.IdentityPrefit = 0).
const DefaultFFJORDPrefit = 500

// DefaultPermutations is the number of relabellings ShiftTest draws when
// ShiftConfig.Permutations is 0. With N relabellings the smallest p-value
// the test can report is 1/(N+1): 0.005 for 199.
const DefaultPermutations = 199

// openBackend returns be, or when be is nil a fresh native.DefaultBackend()
// in DefaultDType (float64 on ref) with one thread per CPU, which the caller
// must close (owned reports that).
func openBackend(be native.Backend) (_ native.Backend, owned bool, err error) {
	if be != nil {
		return be, false, nil
	}
	name, dt := native.DefaultBackend(), DefaultDType
	if name == "ref" {
		dt = native.Float64 // the reference backend's only type
	}
	if be, err = native.Open(name, dt, 0); err != nil {
		return nil, false, err
	}
	return be, true, nil
}

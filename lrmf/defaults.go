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

// DefaultConfig returns the run a zero Config means, every field filled in
// (Backend nil: Align opens native.DefaultBackend() in DefaultDType, see
// Config.Backend):
//
//	Flow, Density   Real NVP, 4 blocks of 2 × 32 ReLU, exp scale bounded by 4
//	Steps           20000 joint steps, LR 3e-3
//	FitSteps        20000 per gradient fit of θA*, θB*, FitLR = LR
//	Batch           256 (capped at the smaller dataset's rows)
//	Schedule        cosine (to lr/100), ClipNorm 10, Tol 1e-4
//	IdentityPrefit  0: DefaultFFJORDPrefit for an FFJORD flow, else none
//	Threshold       δ = 0.1 nats
//	Seed            1
//	ProgressEvery   25
//
// The result is a fresh value: changing it changes no default.
func DefaultConfig() Config {
	const lr = 3e-3
	return Config{
		Flow:    model.ModelSpec{Kind: "realnvp"}.Normalized(),
		Density: model.ModelSpec{Kind: "realnvp"}.Normalized(),
		Steps:   20000,
		LR:      lr,
		FitOptions: FitOptions{
			FitSteps: 20000,
			Batch:    256,
			FitLR:    lr, // a zero FitLR follows Config.LR
			Schedule: "cosine",
			ClipNorm: 10,
			Tol:      1e-4,
		},
		Threshold:     0.1,
		Seed:          1,
		ProgressEvery: 25,
	}
}

// DefaultShiftConfig returns what a zero ShiftConfig means, every field
// filled in (Backend nil: as for Config). Its fit options are
// DefaultConfig's except FitSteps, 2000: θA and θB are refitted for every
// relabelling, so each fit is kept ten times shorter than Align's.
//
//	Density         full-covariance Gaussian (closed-form fits)
//	Permutations    DefaultPermutations = 199
//	FitSteps        2000, FitLR 3e-3, Batch 256, cosine, ClipNorm 10, Tol 1e-4
//	Seed            1
func DefaultShiftConfig() ShiftConfig {
	fit := DefaultConfig().FitOptions
	fit.FitSteps = 2000
	return ShiftConfig{
		Density:      model.ModelSpec{Kind: "gaussian"},
		Permutations: DefaultPermutations,
		Seed:         1,
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

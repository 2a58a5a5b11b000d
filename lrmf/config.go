package lrmf

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/optim"
	"github.com/lrmf-go/lrmf/native"
)

// FitOptions configure the gradient fits of a density (Align's θA*, θB*;
// ShiftTest's θS, θA, θB): Adam on mini-batches, following the learning-rate
// schedule over the step budget and stopping early when the full-data
// gradient norm falls below Tol. Align's joint phase uses Batch, Schedule,
// ClipNorm and Tol too. A zero field selects the default of DefaultConfig
// (Align) or DefaultShiftConfig (ShiftTest).
type FitOptions struct {
	// GradientFit fits by gradient ascent even when the density has a
	// closed-form MLE (model.MLEFitter), as Algorithm 1 does.
	GradientFit bool `json:"gradient_fit"`
	// FitSteps is the step budget of each gradient fit (default 20000 in
	// Align, 2000 in ShiftTest).
	FitSteps int `json:"fit_steps"`
	// Batch is the mini-batch size b (default 256, capped at the smaller
	// dataset's rows): Align's joint phase draws b rows of A and b of B per
	// step, and every gradient fit draws 2b rows per step, as many as θS
	// sees. Each epoch visits every row once, in an order reshuffled per
	// epoch. It must not exceed either dataset's rows.
	Batch int `json:"batch"`
	// FitLR is Adam's learning rate for gradient fits (default: Config.LR
	// in Align, 3e-3 in ShiftTest).
	FitLR float64 `json:"fit_lr"`
	// Schedule shapes the learning rate over a phase's step budget:
	// "cosine" (default) decays it from the rate to rate/100 along a half
	// cosine, which lets the parameters settle where mini-batch noise would
	// keep a constant rate jittering; "constant" keeps it (optim.ScheduledLR).
	Schedule string `json:"schedule"`
	// ClipNorm caps the gradient norm of each model (‖g_T‖ and ‖g_S‖
	// separately in the joint phase, θX in gradient fits) before an Adam
	// step; 0 selects the default 10, a negative value disables clipping.
	// Without it the first joint steps — θS starts from θA*, which gives
	// B's points almost no density — produce gradients of norm ~1e6 that
	// inflate Adam's second moments and stall the following thousands of
	// steps.
	ClipNorm float64 `json:"clip_norm"`
	// Tol is ε: a phase stops when its gradient norm (‖g_T‖ + ‖g_S‖ in the
	// joint phase, the full-data ‖∇θ ℓ‖ in fits) falls below it (default
	// 1e-4).
	Tol float64 `json:"tol"`
}

// withDefaults fills f's zero fields from def, capping the default batch at
// the smaller dataset's na, nb rows.
func (f FitOptions) withDefaults(def FitOptions, na, nb int) FitOptions {
	if f.FitSteps == 0 {
		f.FitSteps = def.FitSteps
	}
	if f.Batch == 0 {
		f.Batch = min(def.Batch, na, nb)
	}
	if f.FitLR == 0 {
		f.FitLR = def.FitLR
	}
	if f.Schedule == "" {
		f.Schedule = def.Schedule
	}
	if f.ClipNorm == 0 {
		f.ClipNorm = def.ClipNorm
	}
	if f.Tol == 0 {
		f.Tol = def.Tol
	}
	return f
}

// validate checks filled-in fit options against datasets of na and nb rows;
// owner ("Config", "ShiftConfig") names the struct in errors.
func (f FitOptions) validate(owner string, na, nb int) error {
	switch {
	case f.FitSteps < 0:
		return fmt.Errorf("lrmf: %s.FitSteps = %d is negative", owner, f.FitSteps)
	case f.Batch < 1:
		return fmt.Errorf("lrmf: %s.Batch = %d must be positive", owner, f.Batch)
	case f.Batch > na:
		return fmt.Errorf("lrmf: %s.Batch = %d exceeds the %d rows of A", owner, f.Batch, na)
	case f.Batch > nb:
		return fmt.Errorf("lrmf: %s.Batch = %d exceeds the %d rows of B", owner, f.Batch, nb)
	case !optim.IsSchedule(f.Schedule):
		return fmt.Errorf("lrmf: %s.Schedule = %q: want %q or %q", owner, f.Schedule, optim.Cosine, optim.Constant)
	case !(f.FitLR > 0) || math.IsInf(f.FitLR, 0):
		return fmt.Errorf("lrmf: %s.FitLR = %v must be positive and finite", owner, f.FitLR)
	case math.IsNaN(f.ClipNorm) || math.IsInf(f.ClipNorm, 0):
		return fmt.Errorf("lrmf: %s.ClipNorm = %v must be finite", owner, f.ClipNorm)
	case !(f.Tol >= 0) || math.IsInf(f.Tol, 0):
		return fmt.Errorf("lrmf: %s.Tol = %v must be non-negative and finite", owner, f.Tol)
	}
	return nil
}

// Config configures Align. The zero value of every field selects the
// default given in its comment, from DefaultConfig: the zero Config is the
// run `lrmf align` makes with no flags.
type Config struct {
	// Backend runs the computation (default: native.DefaultBackend() in
	// DefaultDType, float32 — float64 on the reference backend — with one
	// thread per CPU, opened and closed by Align). Align does not close a
	// backend it is given.
	Backend native.Backend `json:"-"`
	// Flow names the flow T (default Real NVP: {Kind: "realnvp"}, 4 blocks
	// of 2 × 32 ReLU). A spec with an empty Kind takes the default kind;
	// its zero sizes take the model's defaults (model.ModelSpec.Normalized).
	Flow model.ModelSpec `json:"flow"`
	// Density names the density family M (default Real NVP, as Flow).
	Density model.ModelSpec `json:"density"`
	// NewFlow and NewDensity, when not nil, build custom models instead of
	// Flow and Density.
	NewFlow    model.FlowMaker    `json:"-"`
	NewDensity model.DensityMaker `json:"-"`

	// Steps is the joint phase's step budget (default 20000).
	Steps int `json:"steps"`
	// LR is Adam's learning rate for the joint phase (default 3e-3).
	LR float64 `json:"lr"`
	// FitOptions configure the fits of θA*, θB* (default FitSteps 20000,
	// FitLR = LR; densities with a closed-form MLE are fitted in closed
	// form unless GradientFit is set) and the joint phase's Batch (256),
	// Schedule (cosine), ClipNorm (10) and Tol (1e-4).
	FitOptions
	// IdentityPrefit is the number of Adam steps (learning rate FitLR,
	// mini-batches of b rows of A) that pre-fit the flow to the identity
	// by minimising mean‖T(x) − x‖² before the joint phase. 0 selects the
	// default: DefaultFFJORDPrefit steps for an FFJORD flow, whose
	// Glorot-initialised tanh field starts far from the identity, and none
	// for other flows (they start as the identity); negative disables it.
	IdentityPrefit int `json:"identity_prefit"`
	// Threshold is δ: the alignment succeeded when |LRMF| on the full data
	// is below it, in nats (default 0.1). Flexible densities fitted to a few
	// thousand points overfit them by about 0.1 nats per set (Real NVP on
	// the moons: train−test gap 0.09–0.14), which shifts LRMF by that much
	// either way; δ must stay above that noise.
	Threshold float64 `json:"threshold"`
	// Seed seeds parameter initialisation and batch order (default 1, the
	// lrmf command's --seed default; so Seed 0 and Seed 1 are the same run).
	Seed uint64 `json:"seed"`
	// Tag is the caller's own metadata, kept verbatim in checkpoints (the
	// lrmf command records where its data came from).
	Tag json.RawMessage `json:"tag,omitempty"`

	// Checkpoint, if not nil, receives a snapshot of the run after every
	// CheckpointEvery joint steps (0: none periodically), when the context
	// ends the joint phase, and when the joint phase ends. An error it
	// returns stops Align.
	Checkpoint      func(*Checkpoint) error `json:"-"`
	CheckpointEvery int                     `json:"checkpoint_every,omitempty"`
	// Resume, if not nil, continues the run saved in this checkpoint instead
	// of starting afresh: the fitted θA*, θB*, c_AB, the flow, θS, Adam's
	// moments, the batch order and the random state are restored and the
	// joint phase goes on from the saved step to Steps. The data, the models
	// and Batch must match the saved run. With the saved configuration the
	// result is bit-identical to an uninterrupted run on the same backend.
	Resume *Checkpoint `json:"-"`

	// Progress, if not nil, is called every ProgressEvery steps of each
	// phase (default 25) and at each phase's end.
	Progress      func(Progress) `json:"-"`
	ProgressEvery int            `json:"-"`
}

// Progress is a snapshot of a running Align.
type Progress struct {
	Phase    string        // "fit-A", "fit-B", "prefit" or "joint"
	Step     int           // steps done in this phase
	Steps    int           // the phase's budget (0: a closed-form fit)
	Loss     float64       // the phase's mini-batch loss at Step (joint: LRMF, nats)
	GradNorm float64       // its gradient norm (joint: ‖g_T‖ + ‖g_S‖)
	Elapsed  time.Duration // since Align started
	Done     bool          // the phase has ended
}

// withDefaults fills c's zero fields from DefaultConfig for datasets of na
// and nb rows and normalises the model specs. IdentityPrefit = 0 is
// resolved once the flow is built (prefitSteps).
func (c Config) withDefaults(na, nb int) Config {
	d := DefaultConfig()
	if c.Flow.Kind == "" {
		c.Flow.Kind = d.Flow.Kind
	}
	if c.Density.Kind == "" {
		c.Density.Kind = d.Density.Kind
	}
	c.Flow, c.Density = c.Flow.Normalized(), c.Density.Normalized()
	if c.Steps == 0 {
		c.Steps = d.Steps
	}
	if c.LR == 0 {
		c.LR = d.LR
	}
	fit := d.FitOptions
	fit.FitLR = c.LR
	c.FitOptions = c.FitOptions.withDefaults(fit, na, nb)
	if c.Threshold == 0 {
		c.Threshold = d.Threshold
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = d.ProgressEvery
	}
	return c
}

// validate checks a filled-in configuration for datasets of na and nb rows.
func (c Config) validate(na, nb int) error {
	switch {
	case c.Steps < 0:
		return fmt.Errorf("lrmf: Config.Steps = %d is negative", c.Steps)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("lrmf: Config.LR = %v must be positive and finite", c.LR)
	}
	if err := c.FitOptions.validate("Config", na, nb); err != nil {
		return err
	}
	switch {
	case !(c.Threshold > 0) || math.IsInf(c.Threshold, 0):
		return fmt.Errorf("lrmf: Config.Threshold = %v must be positive and finite", c.Threshold)
	case c.IdentityPrefit > 1<<30:
		return fmt.Errorf("lrmf: Config.IdentityPrefit = %d is too large", c.IdentityPrefit)
	case c.ProgressEvery < 0:
		return fmt.Errorf("lrmf: Config.ProgressEvery = %d is negative", c.ProgressEvery)
	}
	return nil
}

// prefitSteps resolves IdentityPrefit = 0 for the built flow:
// DefaultFFJORDPrefit for an FFJORD flow, else −1 (none).
func (c Config) prefitSteps(flow model.Flow) int {
	if c.IdentityPrefit != 0 {
		return c.IdentityPrefit
	}
	if _, ok := flow.(*model.FFJORD); ok {
		return DefaultFFJORDPrefit
	}
	return -1
}

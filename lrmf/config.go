package lrmf

import (
	"cmp"
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
// schedule over the step budget, with early stopping on a validation part
// (every EvalEvery steps the validation objective is evaluated, the best
// parameters are kept, and the phase stops once Patience steps passed
// without an improvement; the best parameters are restored at the end),
// and stopping when the full-data gradient norm falls below Tol. Align's
// joint phase uses Batch, Schedule, ClipNorm, Tol, EvalEvery and Patience
// too, so fits and joint phase follow one rule. A zero field selects the
// default of DefaultConfigFor (Align) or DefaultShiftConfig (ShiftTest).
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
	// Schedule shapes the learning rate of a phase: "cosine" (default)
	// decays it from the rate to rate/100 along a half cosine over the
	// phase's step cap, which lets the parameters settle where mini-batch
	// noise would keep a constant rate jittering; "constant" keeps it
	// (optim.ScheduledLR); Plateau lowers it when the validation objective
	// stops improving.
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
	// EvalEvery is the number of steps between evaluations of the
	// validation objective (fits: the validation part's mean
	// log-likelihood; the joint phase: the validation LRMF); the last step
	// of a phase is evaluated too when the phase evaluated before (default
	// 250; 100 when the flow or density is FFJORD). It must be positive.
	EvalEvery int `json:"eval_every"`
	// Patience is the number of steps without an improvement of the
	// validation objective by more than MinImprovement after which a phase
	// stops (early stopping); the best parameters seen are then restored
	// (default 10000; 500 for FFJORD: half the cap). Negative
	// disables early stopping (the best parameters are still restored).
	Patience int `json:"patience"`
	// Trim is the fraction of rows dropped at each end of a validation
	// objective's per-row values (fits: ln p; joint phase: the per-row
	// LRMF terms) and, in Align, of the held-out estimate's (default 0.02;
	// negative: none, plain means; at most 0.2). Flexible densities put
	// near-zero density on a few points they were not fitted to — one
	// held-out moon point had ln pB = −98986 under a Real NVP θB* — and
	// such points would otherwise decide the mean and its standard error
	// (see Estimate). Training-part figures are never trimmed.
	Trim float64 `json:"trim"`
}

// Plateau is the learning-rate schedule driven by early stopping: the rate
// starts at the phase's rate and is divided by √10 (down to rate/100) each
// time Patience/2 steps pass without an improvement of the validation
// objective (counted from the last improvement or decay, whichever is
// later); the phase stops when Patience steps pass without one. So a phase
// anneals when — not on a fixed step count — it stops improving, and every
// phase, short or long, ends at a settled rate. Without a validation part
// or with Patience < 0 it falls back to the cosine schedule over the step
// budget.
const Plateau = "plateau"

// MinImprovement is the amount, in nats, by which a validation objective
// must beat the best value so far to count as an improvement for
// FitOptions.Patience: smaller gains are evaluation noise.
const MinImprovement = 1e-4

// withDefaults fills f's zero fields from def, capping the default batch at
// the smaller dataset's na, nb rows.
func (f FitOptions) withDefaults(def FitOptions, na, nb int) FitOptions {
	f.FitSteps = cmp.Or(f.FitSteps, def.FitSteps)
	if f.Batch == 0 {
		f.Batch = min(def.Batch, na, nb)
	}
	f.FitLR = cmp.Or(f.FitLR, def.FitLR)
	f.Schedule = cmp.Or(f.Schedule, def.Schedule)
	f.ClipNorm = cmp.Or(f.ClipNorm, def.ClipNorm)
	f.Tol = cmp.Or(f.Tol, def.Tol)
	f.EvalEvery = cmp.Or(f.EvalEvery, def.EvalEvery)
	f.Patience = cmp.Or(f.Patience, def.Patience)
	f.Trim = cmp.Or(f.Trim, def.Trim)
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
	case f.Schedule != Plateau && !optim.IsSchedule(f.Schedule):
		return fmt.Errorf("lrmf: %s.Schedule = %q: want %q, %q or %q", owner, f.Schedule, Plateau, optim.Cosine, optim.Constant)
	case !(f.FitLR > 0) || math.IsInf(f.FitLR, 0):
		return fmt.Errorf("lrmf: %s.FitLR = %v must be positive and finite", owner, f.FitLR)
	case math.IsNaN(f.ClipNorm) || math.IsInf(f.ClipNorm, 0):
		return fmt.Errorf("lrmf: %s.ClipNorm = %v must be finite", owner, f.ClipNorm)
	case !(f.Tol >= 0) || math.IsInf(f.Tol, 0):
		return fmt.Errorf("lrmf: %s.Tol = %v must be non-negative and finite", owner, f.Tol)
	case f.EvalEvery < 1:
		return fmt.Errorf("lrmf: %s.EvalEvery = %d must be positive", owner, f.EvalEvery)
	case math.IsNaN(f.Trim) || f.Trim > 0.2:
		return fmt.Errorf("lrmf: %s.Trim = %v: want a fraction in (0, 0.2], or negative for none", owner, f.Trim)
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
	// Density names the density family M (default Real NVP, as Flow). An
	// image kind (model.ImageKinds, e.g. "glow-image") needs the rows'
	// image shape in its Image, with H·W·C = D and H, W divisible by
	// 2^Levels (checked before anything is built).
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
	// Threshold is δ in nats (default 0.1): the alignment succeeded when
	// the held-out LRMF's upper confidence bound is below it (see
	// Result.Status for the whole verdict). Flexible densities fitted to a
	// few thousand points overfit them by about 0.1 nats per set (Real NVP
	// on the moons: train−test gap 0.09–0.14), so LRMF on the training data
	// is biased by that much either way; the held-out estimate is not, but
	// it has a standard error of a few hundredths of a nat.
	Threshold float64 `json:"threshold"`
	// Holdout is the fraction of each set held out of all fitting and used
	// only for the reported figures: LRMF, its four terms, their standard
	// errors and the two-sample test (default 0.2; at most 0.5). The split
	// is a seeded permutation per set (SplitSizes gives the sizes); it must
	// leave at least MinHeldOutRows(D) rows of each set. A negative value
	// means no held-out part: everything is reported on the training data,
	// without standard errors, and the verdict is |LRMF| < δ as before the
	// split (for oracle tests and tiny data; the figures are then biased by
	// the overfitting described under Threshold). NaN or > 0.5 is an error.
	Holdout float64 `json:"holdout"`
	// Validation is the fraction of what Holdout leaves that is carved off
	// for early stopping and for choosing among restarts (default 0.1, at
	// most 0.5). It is never fitted to and never part of the reported
	// figures: selecting on the held-out part would bias the reported LRMF
	// downward, hence three parts. Negative: no validation part (no early
	// stopping; restarts are chosen by their training LRMF).
	Validation float64 `json:"validation"`
	// Restarts is the number of independent joint phases (default 2): θA*
	// and θB* are fitted once and shared; each restart has its own flow
	// initialisation, θS = θA*, identity pre-fit and batch order (drawn from
	// Seed and the restart's index) and its own early-stopped joint phase;
	// the restart with the lowest validation LRMF is kept. Restarts run
	// concurrently on min(Restarts, threads) sibling backends (see Align).
	Restarts int `json:"restarts"`
	// Confidence is the one-sided level of the upper bound
	// LRMF + Φ⁻¹(Confidence)·SE the verdict compares with δ (default
	// 0.95; in (0.5, 1)).
	Confidence float64 `json:"confidence"`
	// Alpha is the level of the two-sample test of T(A) against B on the
	// held-out and validation points (twosample.MMD, 500 permutations): it rejects when
	// its p-value is at most Alpha (default 0.05; in (0, 1)). Negative
	// skips the test (Result.TwoSample nil; the verdict then rests on the
	// LRMF bound alone).
	Alpha float64 `json:"alpha"`
	// Seed seeds the split, parameter initialisation, batch order and the
	// two-sample test (default 1, the lrmf command's --seed default; so
	// Seed 0 and Seed 1 are the same run).
	Seed uint64 `json:"seed"`
	// Tag is the caller's own metadata, kept verbatim in checkpoints (the
	// lrmf command records where its data came from).
	Tag json.RawMessage `json:"tag,omitempty"`

	// Checkpoint, if not nil, receives a snapshot of the run after every
	// CheckpointEvery joint steps (0: none periodically), when the context
	// ends the joint phase, and when the joint phase ends (then holding the
	// best parameters, restored). An error it returns stops Align. With
	// Restarts > 1 only the final snapshot is taken, of the chosen
	// restart (CheckpointEvery > 0 is then an error).
	Checkpoint      func(*Checkpoint) error `json:"-"`
	CheckpointEvery int                     `json:"checkpoint_every,omitempty"`
	// Resume, if not nil, continues the run saved in this checkpoint instead
	// of starting afresh: the fitted θA*, θB*, c_AB, the flow, θS, Adam's
	// moments, the batch order and the random state are restored and the
	// joint phase goes on from the saved step to Steps, with the saved
	// early-stopping state (best parameters, best value, its step). The
	// data, the models, Batch, Holdout, Validation and Seed (the split)
	// must match the saved run, which must have had one restart. With the
	// saved configuration the result is bit-identical to an uninterrupted
	// run on the same backend.
	Resume *Checkpoint `json:"-"`

	// Progress, if not nil, is called every ProgressEvery steps of each
	// phase (default 25) and at each phase's end.
	Progress      func(Progress) `json:"-"`
	ProgressEvery int            `json:"-"`
}

// Progress is a snapshot of a running Align.
type Progress struct {
	Phase    string        // "fit-A", "fit-B", "prefit" or "joint"
	Restart  int           // the restart (0-based) of a "prefit" or "joint" phase
	Step     int           // steps done in this phase
	Steps    int           // the phase's budget (0: a closed-form fit)
	Loss     float64       // the phase's mini-batch loss at Step (joint: LRMF, nats)
	GradNorm float64       // its gradient norm (joint: ‖g_T‖ + ‖g_S‖)
	Elapsed  time.Duration // since Align started
	Done     bool          // the phase has ended
}

// withDefaults fills c's zero fields from DefaultConfigFor(c's flow and
// density kinds) for datasets of na and nb rows and normalises the model
// specs. The default batch is capped at the smaller training part. The
// fields of the split (Holdout, Validation) are filled first, since the
// training parts' sizes depend on them. IdentityPrefit = 0 is resolved once
// the flow is built (prefitSteps).
func (c Config) withDefaults(na, nb int) Config {
	dk := DefaultConfig()
	c.Flow.Kind = cmp.Or(c.Flow.Kind, dk.Flow.Kind)
	c.Density.Kind = cmp.Or(c.Density.Kind, dk.Density.Kind)
	d := DefaultConfigFor(c.Flow.Kind, c.Density.Kind)
	c.Flow, c.Density = c.Flow.Normalized(), c.Density.Normalized()
	c.Steps = cmp.Or(c.Steps, d.Steps)
	c.LR = cmp.Or(c.LR, d.LR)
	c.Holdout = cmp.Or(c.Holdout, d.Holdout)
	c.Validation = cmp.Or(c.Validation, d.Validation)
	fit := d.FitOptions
	fit.FitLR = c.LR
	ta, _, _ := SplitSizes(na, c.Holdout, c.Validation)
	tb, _, _ := SplitSizes(nb, c.Holdout, c.Validation)
	c.FitOptions = c.FitOptions.withDefaults(fit, max(ta, 1), max(tb, 1))
	c.Threshold = cmp.Or(c.Threshold, d.Threshold)
	c.Restarts = cmp.Or(c.Restarts, d.Restarts)
	c.Confidence = cmp.Or(c.Confidence, d.Confidence)
	c.Alpha = cmp.Or(c.Alpha, d.Alpha)
	c.Seed = cmp.Or(c.Seed, d.Seed)
	c.ProgressEvery = cmp.Or(c.ProgressEvery, d.ProgressEvery)
	return c
}

// validate checks a filled-in configuration for datasets of na and nb rows
// of dimension dim.
func (c Config) validate(na, nb, dim int) error {
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
	case math.IsNaN(c.Holdout) || c.Holdout > 0.5:
		return fmt.Errorf("lrmf: Config.Holdout = %v: want a fraction in (0, 0.5], or negative for no held-out part", c.Holdout)
	case math.IsNaN(c.Validation) || c.Validation > 0.5:
		return fmt.Errorf("lrmf: Config.Validation = %v: want a fraction in (0, 0.5], or negative for no validation part", c.Validation)
	case c.Restarts < 1:
		return fmt.Errorf("lrmf: Config.Restarts = %d must be positive", c.Restarts)
	case !(c.Confidence > 0.5 && c.Confidence < 1):
		return fmt.Errorf("lrmf: Config.Confidence = %v: want a level in (0.5, 1)", c.Confidence)
	case math.IsNaN(c.Alpha) || c.Alpha >= 1:
		return fmt.Errorf("lrmf: Config.Alpha = %v: want a level in (0, 1), or negative for no two-sample test", c.Alpha)
	case c.Restarts > 1 && c.CheckpointEvery > 0:
		return fmt.Errorf("lrmf: Config.CheckpointEvery = %d with Restarts = %d: periodic checkpoints need a single restart", c.CheckpointEvery, c.Restarts)
	case c.Restarts > 1 && c.Resume != nil:
		return fmt.Errorf("lrmf: Config.Resume with Restarts = %d: only runs of a single restart can be resumed", c.Restarts)
	}
	if c.NewFlow == nil {
		if err := c.Flow.CheckImage(dim); err != nil {
			return fmt.Errorf("lrmf: Config.Flow: %w", err)
		}
	}
	if c.NewDensity == nil {
		if err := c.Density.CheckImage(dim); err != nil {
			return fmt.Errorf("lrmf: Config.Density: %w", err)
		}
	}
	for _, s := range []struct {
		name string
		n    int
	}{{"A", na}, {"B", nb}} {
		train, val, held := SplitSizes(s.n, c.Holdout, c.Validation)
		if c.Holdout > 0 && held < MinHeldOutRows(dim) {
			return fmt.Errorf("lrmf: Config.Holdout = %v leaves %d held-out rows of %s's %d; the held-out estimate needs at least %d (MinHeldOutRows for D = %d)",
				c.Holdout, held, s.name, s.n, MinHeldOutRows(dim), dim)
		}
		if c.Validation > 0 && val < 1 {
			return fmt.Errorf("lrmf: Config.Validation = %v leaves no validation row of %s's %d", c.Validation, s.name, s.n)
		}
		if c.Batch > train {
			return fmt.Errorf("lrmf: Config.Batch = %d exceeds the %d training rows of %s (%d held out, %d for validation)", c.Batch, train, s.name, held, val)
		}
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

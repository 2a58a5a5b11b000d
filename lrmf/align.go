package lrmf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/native"
)

// Config configures Align. The zero value of every field selects the
// default given in its comment.
type Config struct {
	// Backend runs the computation (default: native.DefaultBackend() in
	// float64 with one thread per CPU). Align does not close it.
	Backend native.Backend `json:"-"`
	// Flow names the flow T (default {Kind: "affine"}).
	Flow ModelSpec `json:"flow"`
	// Density names the density family M (default {Kind: "gaussian"}).
	Density ModelSpec `json:"density"`
	// NewFlow and NewDensity, when not nil, build custom models instead of
	// Flow and Density.
	NewFlow    FlowMaker    `json:"-"`
	NewDensity DensityMaker `json:"-"`

	// Steps is the joint phase's step budget (default 2000).
	Steps int `json:"steps"`
	// FitSteps is the step budget of each gradient fit of θA*, θB*
	// (default 2000). Densities with a closed-form MLE are fitted in
	// closed form unless GradientFit is set.
	FitSteps int `json:"fit_steps"`
	// GradientFit fits θA*, θB* by gradient ascent even when a closed form
	// exists (as Algorithm 1 does).
	GradientFit bool `json:"gradient_fit"`
	// Batch is the mini-batch size b drawn from A and from B per joint step
	// (default 256, capped at the smaller dataset's size); gradient fits of
	// θA*, θB* draw 2b rows per step, as many as θS sees. Each epoch visits
	// every row once, in an order reshuffled per epoch.
	Batch int `json:"batch"`
	// LR is Adam's learning rate for the joint phase (default 0.01).
	LR float64 `json:"lr"`
	// Schedule shapes the learning rate of the joint phase and of gradient
	// fits over their step budgets: "cosine" (default) decays it from LR to LR/100 along a half
	// cosine, which lets the parameters settle where mini-batch noise would
	// keep a constant rate jittering; "constant" keeps LR.
	Schedule string `json:"schedule"`
	// FitLR is Adam's learning rate for gradient fits (default LR).
	FitLR float64 `json:"fit_lr"`
	// ClipNorm caps the gradient norm of each model (‖g_T‖ and ‖g_S‖
	// separately, and θX in gradient fits) before an Adam step; 0 selects
	// the default 10, a negative value disables clipping. Without it the
	// first joint steps — θS starts from θA*, which gives B's points almost
	// no density — produce gradients of norm ~1e6 that inflate Adam's second
	// moments and stall the following thousands of steps.
	ClipNorm float64 `json:"clip_norm"`
	// IdentityPrefit is the number of Adam steps (learning rate FitLR,
	// mini-batches of b rows of A) that pre-fit the flow to the identity
	// by minimising mean‖T(x) − x‖² before the joint phase. 0 selects the
	// default: DefaultFFJORDPrefit steps for an FFJORD flow, whose
	// Glorot-initialised tanh field starts far from the identity, and none
	// for other flows (they start as the identity); negative disables it.
	IdentityPrefit int `json:"identity_prefit"`
	// Tol is ε: a phase stops when its gradient norm (‖g_T‖ + ‖g_S‖ in the
	// joint phase) falls below it (default 1e-4).
	Tol float64 `json:"tol"`
	// Threshold is δ: the alignment succeeded when |LRMF| on the full data
	// is below it, in nats (default 0.1). Flexible densities fitted to a few
	// thousand points overfit them by about 0.1 nats per set (Real NVP on
	// the moons: train−test gap 0.09–0.14), which shifts LRMF by that much
	// either way; δ must stay above that noise.
	Threshold float64 `json:"threshold"`
	// Seed seeds parameter initialisation and batch order.
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
	Phase    string // "fit-A", "fit-B" or "joint"
	Step     int    // steps done in this phase
	Steps    int    // the phase's budget
	Loss     float64
	GradNorm float64
	Elapsed  time.Duration // since Align started
	Done     bool          // the phase has ended
}

// Status classifies the outcome of Align.
type Status string

// Outcomes of Align.
const (
	// Converged: |LRMF| < Threshold on the full data.
	Converged Status = "converged"
	// NotConverged: LRMF ≥ Threshold: T(A) and B remain distinguishable.
	NotConverged Status = "not-converged"
	// Undershot: LRMF ≤ −Threshold. LRMF is bounded below by 0 when θA*
	// and θB* are optimal, so a value well below 0 means c_AB was
	// under-fitted and the indicator cannot be trusted.
	Undershot Status = "undershot"
	// Diverged: a loss or gradient became NaN or infinite.
	Diverged Status = "diverged"
	// Canceled: the context ended the run.
	Canceled Status = "canceled"
)

// Point is one joint-phase step of the training history: the mini-batch
// LRMF before the update and the two gradient norms.
type Point struct {
	Step  int     `json:"step"`
	Loss  float64 `json:"loss"`
	GradT float64 `json:"grad_t"`
	GradS float64 `json:"grad_s"`
}

// Result is the outcome of Align.
type Result struct {
	// Config is the configuration used, defaults filled in.
	Config    Config  `json:"config"`
	Status    Status  `json:"status"`
	Converged bool    `json:"converged"`
	LRMF      float64 `json:"lrmf"` // on the full data, nats
	CAB       float64 `json:"c_ab"` // ℓ(A; θA*) + ℓ(B; θB*)
	LogLikTA  float64 `json:"loglik_ta"`
	LogLikB   float64 `json:"loglik_b"`
	LogDet    float64 `json:"logdet"` // mean ln|det ∇T| over A

	Steps     int     `json:"steps"`      // joint steps taken
	StoppedBy string  `json:"stopped_by"` // "tolerance", "budget", "canceled" or "diverged"
	FitStepsA int     `json:"fit_steps_a"`
	FitStepsB int     `json:"fit_steps_b"`
	History   []Point `json:"history"`
	// PrefitSteps is the identity pre-fit's step count and PrefitMSE its
	// final mean‖T(x) − x‖² on the last mini-batch.
	PrefitSteps int     `json:"prefit_steps,omitempty"`
	PrefitMSE   float64 `json:"prefit_mse,omitempty"`
	// Solver is the ODE solver work of continuous models (nil when no
	// model integrates an ODE).
	Solver *SolverReport `json:"solver,omitempty"`

	FitSeconds   float64 `json:"fit_seconds"`
	JointSeconds float64 `json:"joint_seconds"`
	TotalSeconds float64 `json:"seconds"`
	MsPerStep    float64 `json:"ms_per_step"`

	// Flow is the trained T; Density is θS*; DensityA and DensityB are
	// θA* and θB*. All live on Config.Backend.
	Flow     Flow    `json:"-"`
	Density  Density `json:"-"`
	DensityA Density `json:"-"`
	DensityB Density `json:"-"`
	// Transformed is T(A) in A's row order.
	Transformed *mat.Dense `json:"-"`
}

// SolverReport is the ODE solver work of each continuous model of an Align
// run (nil entries: that model integrates no ODE). Counts cover the whole
// run: fits, pre-fit, joint steps and the final evaluation.
type SolverReport struct {
	Flow     *SolverStats `json:"flow,omitempty"`
	DensityA *SolverStats `json:"density_a,omitempty"`
	DensityB *SolverStats `json:"density_b,omitempty"`
	DensityS *SolverStats `json:"density_s,omitempty"`
}

func solverReport(res *Result) *SolverReport {
	var rep SolverReport
	found := false
	for _, m := range []struct {
		dst **SolverStats
		m   any
	}{{&rep.Flow, res.Flow}, {&rep.DensityA, res.DensityA}, {&rep.DensityB, res.DensityB}, {&rep.DensityS, res.Density}} {
		if st, ok := SolverStatsOf(m.m); ok {
			*m.dst, found = &st, true
		}
	}
	if !found {
		return nil
	}
	return &rep
}

// DefaultFFJORDPrefit is the identity pre-fit's step budget for FFJORD
// flows (Config.IdentityPrefit = 0).
const DefaultFFJORDPrefit = 500

// ErrDiverged is returned (wrapped) when training produces a non-finite
// loss or gradient.
var ErrDiverged = errors.New("training diverged")

func (c Config) withDefaults(na, nb int) Config {
	if c.Flow.Kind == "" {
		c.Flow.Kind = "affine"
	}
	if c.Density.Kind == "" {
		c.Density.Kind = "gaussian"
	}
	c.Flow, c.Density = c.Flow.Normalized(), c.Density.Normalized()
	if c.Steps == 0 {
		c.Steps = 2000
	}
	if c.FitSteps == 0 {
		c.FitSteps = 2000
	}
	if c.Batch == 0 {
		c.Batch = min(256, na, nb)
	}
	if c.LR == 0 {
		c.LR = 0.01
	}
	if c.Schedule == "" {
		c.Schedule = "cosine"
	}
	if c.FitLR == 0 {
		c.FitLR = c.LR
	}
	if c.Tol == 0 {
		c.Tol = 1e-4
	}
	if c.ClipNorm == 0 {
		c.ClipNorm = 10
	}
	if c.Threshold == 0 {
		c.Threshold = 0.1
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 25
	}
	return c
}

func (c Config) validate(na, nb int) error {
	switch {
	case c.Steps < 0:
		return fmt.Errorf("lrmf: Config.Steps = %d is negative", c.Steps)
	case c.FitSteps < 0:
		return fmt.Errorf("lrmf: Config.FitSteps = %d is negative", c.FitSteps)
	case c.Batch < 1:
		return fmt.Errorf("lrmf: Config.Batch = %d must be positive", c.Batch)
	case c.Batch > na:
		return fmt.Errorf("lrmf: Config.Batch = %d exceeds the %d rows of A", c.Batch, na)
	case c.Batch > nb:
		return fmt.Errorf("lrmf: Config.Batch = %d exceeds the %d rows of B", c.Batch, nb)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("lrmf: Config.LR = %v must be positive and finite", c.LR)
	case c.Schedule != "cosine" && c.Schedule != "constant":
		return fmt.Errorf("lrmf: Config.Schedule = %q: want \"cosine\" or \"constant\"", c.Schedule)
	case !(c.FitLR > 0) || math.IsInf(c.FitLR, 0):
		return fmt.Errorf("lrmf: Config.FitLR = %v must be positive and finite", c.FitLR)
	case math.IsNaN(c.ClipNorm) || math.IsInf(c.ClipNorm, 0):
		return fmt.Errorf("lrmf: Config.ClipNorm = %v must be finite", c.ClipNorm)
	case !(c.Tol >= 0) || math.IsInf(c.Tol, 0):
		return fmt.Errorf("lrmf: Config.Tol = %v must be non-negative and finite", c.Tol)
	case !(c.Threshold > 0) || math.IsInf(c.Threshold, 0):
		return fmt.Errorf("lrmf: Config.Threshold = %v must be positive and finite", c.Threshold)
	case c.IdentityPrefit > 1<<30:
		return fmt.Errorf("lrmf: Config.IdentityPrefit = %d is too large", c.IdentityPrefit)
	case c.ProgressEvery < 0:
		return fmt.Errorf("lrmf: Config.ProgressEvery = %d is negative", c.ProgressEvery)
	}
	return nil
}

// checkPair validates A and B (non-empty, finite, the same number of
// columns) and returns their rows and dimension.
func checkPair(a, b *mat.Dense) (na, nb, dim int, err error) {
	if err := checkData("A", a); err != nil {
		return 0, 0, 0, err
	}
	if err := checkData("B", b); err != nil {
		return 0, 0, 0, err
	}
	na, dim = a.Dims()
	nb, dimB := b.Dims()
	if dim != dimB {
		return 0, 0, 0, fmt.Errorf("lrmf: A has %d columns and B has %d: the datasets must have the same dimension", dim, dimB)
	}
	return na, nb, dim, nil
}

// checkData validates one dataset: non-empty and finite.
func checkData(name string, x *mat.Dense) error {
	if x == nil || x.IsEmpty() {
		return fmt.Errorf("lrmf: dataset %s is empty", name)
	}
	r, c := x.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			if v := x.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("lrmf: dataset %s: row %d, column %d is %v", name, i, j, v)
			}
		}
	}
	return nil
}

// Align runs Algorithm 1 of the paper on datasets A (nA×D) and B (nB×D):
//
//  1. fit θA* to A and θB* to B (closed form when the density has one,
//     else Adam until the gradient norm falls below Tol or FitSteps);
//     c_AB = ℓ(A; θA*) + ℓ(B; θB*);
//  2. start θS from θA* and T from its initialisation, then take Adam steps
//     on the mini-batch LRMF (one batch of A and one of B per step) until
//     ‖g_T‖ + ‖g_S‖ < Tol or Steps;
//  3. evaluate LRMF on the full data and classify the outcome.
//
// Align returns a Result whenever training started, also together with an
// error: ErrDiverged (wrapped) for a non-finite loss, or ctx.Err() when the
// context ends the run; Result.Status says which.
func Align(ctx context.Context, a, b *mat.Dense, cfg Config) (*Result, error) {
	start := time.Now()
	na, nb, dim, err := checkPair(a, b)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(na, nb)
	if err := cfg.validate(na, nb); err != nil {
		return nil, err
	}
	if cfg.NewFlow == nil {
		mk, err := cfg.Flow.FlowMaker()
		if err != nil {
			return nil, err
		}
		cfg.NewFlow = mk
	}
	if cfg.NewDensity == nil {
		mk, err := cfg.Density.DensityMaker()
		if err != nil {
			return nil, err
		}
		cfg.NewDensity = mk
	}
	be := cfg.Backend
	if be == nil {
		var err error
		if be, err = native.Open(native.DefaultBackend(), native.Float64, 0); err != nil {
			return nil, err
		}
		defer be.Close()
	}
	pcg := rand.NewPCG(cfg.Seed, 0x6c726d66) // "lrmf"
	r := &run{cfg: cfg, be: be, pcg: pcg, rng: rand.New(pcg), start: start, dim: dim}
	if cfg.Checkpoint != nil || cfg.Resume != nil {
		r.hash = dataHash(a, b)
	}
	r.a = toTensor(be, a)
	r.b = toTensor(be, b)
	return r.align(ctx)
}

// run holds the state of one Align call.
type run struct {
	cfg   Config
	be    native.Backend
	pcg   *rand.PCG
	rng   *rand.Rand
	hash  string // of A and B, when checkpointing
	start time.Time
	dim   int
	a, b  *native.Tensor
}

func toTensor(be native.Backend, x *mat.Dense) *native.Tensor {
	r, c := x.Dims()
	t := be.New(r, c)
	be.Upload(t, mat.DenseCopyOf(x).RawMatrix().Data)
	return t
}

func (r *run) progress(p Progress) {
	if r.cfg.Progress != nil {
		p.Elapsed = time.Since(r.start)
		r.cfg.Progress(p)
	}
}

func (r *run) align(ctx context.Context) (*Result, error) {
	cfg, be := r.cfg, r.be
	res := &Result{Config: cfg}
	newDensity := func(which string) (Density, error) {
		d, err := cfg.NewDensity(be, r.dim, r.rng)
		if err != nil {
			return nil, fmt.Errorf("lrmf: building the density for %s: %w", which, err)
		}
		return d, nil
	}
	var err error
	if res.DensityA, err = newDensity("A"); err != nil {
		return nil, err
	}
	if res.DensityB, err = newDensity("B"); err != nil {
		return nil, err
	}
	if res.Density, err = newDensity("S"); err != nil {
		return nil, err
	}
	if res.Flow, err = cfg.NewFlow(be, r.dim, r.rng); err != nil {
		return nil, fmt.Errorf("lrmf: building the flow: %w", err)
	}
	if cfg.IdentityPrefit == 0 {
		cfg.IdentityPrefit = -1
		if _, ok := res.Flow.(*FFJORD); ok {
			cfg.IdentityPrefit = DefaultFFJORDPrefit
		}
		r.cfg.IdentityPrefit, res.Config.IdentityPrefit = cfg.IdentityPrefit, cfg.IdentityPrefit
	}
	defer func() { res.Solver = solverReport(res) }()

	// Phase 1: θA*, θB*, c_AB (restored when resuming).
	if ck := cfg.Resume; ck != nil {
		if err := r.restoreModels(ck, res); err != nil {
			return nil, err
		}
	} else {
		if res.FitStepsA, err = r.fit(ctx, "fit-A", res.DensityA, r.a); err != nil {
			return r.stopped(res, err)
		}
		if res.FitStepsB, err = r.fit(ctx, "fit-B", res.DensityB, r.b); err != nil {
			return r.stopped(res, err)
		}
		la, err := meanLogProb(be, res.DensityA, r.a)
		if err != nil {
			return nil, err
		}
		lb, err := meanLogProb(be, res.DensityB, r.b)
		if err != nil {
			return nil, err
		}
		res.CAB = la + lb
		copyParams(be, res.Density.Params(), res.DensityA.Params())
		if cfg.IdentityPrefit > 0 {
			if res.PrefitSteps, res.PrefitMSE, err = r.prefit(ctx, res.Flow); err != nil {
				return r.stopped(res, err)
			}
		}
	}
	res.FitSeconds = time.Since(r.start).Seconds()

	// Phase 2: joint training.
	jointStart := time.Now()
	err = r.joint(ctx, res)
	res.JointSeconds = time.Since(jointStart).Seconds()
	if res.Steps > 0 {
		res.MsPerStep = 1000 * res.JointSeconds / float64(res.Steps)
	}
	if err != nil {
		return r.stopped(res, err)
	}

	// Phase 3: the indicator on the full data.
	obj, y, err := evalLRMF(be, res.Flow, res.Density, res.CAB, r.a, r.b)
	if err != nil {
		return r.stopped(res, err)
	}
	res.LRMF, res.LogLikTA, res.LogLikB, res.LogDet = obj.lrmf, obj.llTA, obj.llB, obj.logdet
	if !finite(res.LRMF) {
		return r.stopped(res, fmt.Errorf("lrmf: %w: LRMF on the full data is %v", ErrDiverged, res.LRMF))
	}
	res.Transformed = mat.NewDense(y.Rows(), y.Cols(), nil)
	be.Download(res.Transformed.RawMatrix().Data, y)
	switch {
	case res.LRMF >= cfg.Threshold:
		res.Status = NotConverged
	case res.LRMF <= -cfg.Threshold:
		res.Status = Undershot
	default:
		res.Status = Converged
		res.Converged = true
	}
	res.TotalSeconds = time.Since(r.start).Seconds()
	return res, nil
}

// stopped finishes a Result for a run ended by err.
func (r *run) stopped(res *Result, err error) (*Result, error) {
	res.TotalSeconds = time.Since(r.start).Seconds()
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		res.Status, res.StoppedBy = Canceled, "canceled"
	case errors.Is(err, ErrDiverged):
		res.Status, res.StoppedBy = Diverged, "diverged"
	default:
		return nil, err
	}
	res.LRMF = math.NaN()
	return res, err
}

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// sampler draws mini-batches of row indices: each epoch is a fresh
// permutation, consumed batch by batch (a short tail is skipped).
type sampler struct {
	perm  []int32
	pos   int
	batch int
	rng   *rand.Rand
}

func newSampler(n, batch int, rng *rand.Rand) *sampler {
	s := &sampler{perm: make([]int32, n), batch: batch, rng: rng}
	for i := range s.perm {
		s.perm[i] = int32(i)
	}
	s.pos = n // shuffle on first use
	return s
}

func (s *sampler) next() []int32 {
	if s.pos+s.batch > len(s.perm) {
		s.rng.Shuffle(len(s.perm), func(i, j int) { s.perm[i], s.perm[j] = s.perm[j], s.perm[i] })
		s.pos = 0
	}
	out := s.perm[s.pos : s.pos+s.batch]
	s.pos += s.batch
	return out
}

// fit sets d to θX* for data x and returns the number of gradient steps.
// Gradient fits follow the learning-rate schedule over FitSteps and stop
// early when the gradient of the full-data log-likelihood, checked every
// fitCheckEvery steps, has norm below Tol.
func (r *run) fit(ctx context.Context, phase string, d Density, x *native.Tensor) (int, error) {
	if f, ok := d.(MLEFitter); ok && !r.cfg.GradientFit {
		if err := f.FitMLE(x); err != nil {
			return 0, fmt.Errorf("lrmf: fitting the density to %s: %w", phase[len(phase)-1:], err)
		}
		r.progress(Progress{Phase: phase, Done: true})
		return 0, nil
	}
	// θS sees 2b rows per joint step (b of T(A), b of B), so each fit step
	// draws 2b rows too: with equal budgets θX* and θS then get the same
	// optimisation effort, and c_AB is not under-fitted relative to θS.
	be, bsz := r.be, min(2*r.cfg.Batch, x.Rows())
	s := newSampler(x.Rows(), bsz, r.rng)
	xb, logp, dlogp := be.New(bsz, r.dim), be.New(bsz, 1), be.New(bsz, 1)
	be.Fill(dlogp, -1/float64(bsz)) // loss = −mean ln p
	opt := NewAdam(be, d.Params(), r.cfg.FitLR)
	steps := r.cfg.FitSteps
	full := newFullGrad(be, d, x)
	for step := 1; step <= steps; step++ {
		if err := ctx.Err(); err != nil {
			return step - 1, err
		}
		be.GatherRows(xb, x, s.next())
		if err := d.LogProb(logp, xb); err != nil {
			return step - 1, err
		}
		loss := -be.Sum(logp) / float64(bsz)
		if err := d.Backward(nil, dlogp); err != nil {
			return step - 1, err
		}
		g := gradNorm(be, d.Params())
		if !finite(loss, g) {
			return step - 1, fmt.Errorf("lrmf: %w while fitting %s at step %d (loss %v, gradient norm %v)", ErrDiverged, phase, step, loss, g)
		}
		if step%r.cfg.ProgressEvery == 0 {
			r.progress(Progress{Phase: phase, Step: step, Steps: steps, Loss: loss, GradNorm: g})
		}
		if (step-1)%fitCheckEvery == 0 {
			// The mini-batch gradient is noisy; the convergence test uses
			// the full data.
			fg, err := full.norm()
			if err != nil {
				return step - 1, err
			}
			if fg < r.cfg.Tol {
				r.progress(Progress{Phase: phase, Step: step - 1, Steps: steps, Loss: loss, GradNorm: fg, Done: true})
				return step - 1, nil
			}
			// full.norm overwrote the gradients: recompute this batch's.
			if err := d.LogProb(logp, xb); err != nil {
				return step - 1, err
			}
			if err := d.Backward(nil, dlogp); err != nil {
				return step - 1, err
			}
		}
		clip(be, d.Params(), g, r.cfg.ClipNorm)
		opt.LR = scheduledLRFor(r.cfg.Schedule, r.cfg.FitLR, step, steps)
		opt.Step()
	}
	r.progress(Progress{Phase: phase, Step: steps, Steps: steps, Done: true})
	return steps, nil
}

// prefit takes cfg.IdentityPrefit Adam steps on mean‖T(x) − x‖² over
// mini-batches of A (b rows; loss and gradient per row and coordinate
// summed, averaged over rows) and returns the steps and the last loss.
func (r *run) prefit(ctx context.Context, t Flow) (int, float64, error) {
	const phase = "prefit"
	be, bsz, steps := r.be, r.cfg.Batch, r.cfg.IdentityPrefit
	s := newSampler(r.a.Rows(), bsz, r.rng)
	x, y, ld, dy, dld := be.New(bsz, r.dim), be.New(bsz, r.dim), be.New(bsz, 1), be.New(bsz, r.dim), be.New(bsz, 1)
	opt := NewAdam(be, t.Params(), r.cfg.FitLR)
	loss := 0.0
	for step := 1; step <= steps; step++ {
		if err := ctx.Err(); err != nil {
			return step - 1, loss, err
		}
		be.GatherRows(x, r.a, s.next())
		be.Fill(ld, 0)
		if err := t.Forward(y, ld, x); err != nil {
			return step - 1, loss, fmt.Errorf("lrmf: %w in the identity pre-fit at step %d: %v", ErrDiverged, step, err)
		}
		// dy = 2(y − x)/b; loss = ‖y − x‖²/b.
		be.Copy(dy, y)
		be.Axpy(-1, x, dy)
		loss = be.Dot(dy, dy) / float64(bsz)
		be.Axpy(2/float64(bsz)-1, dy, dy) // dy ← 2·dy/b
		if err := t.Backward(nil, dy, dld); err != nil {
			return step - 1, loss, err
		}
		g := gradNorm(be, t.Params())
		if !finite(loss, g) {
			return step - 1, loss, fmt.Errorf("lrmf: %w in the identity pre-fit at step %d (loss %v, gradient norm %v)", ErrDiverged, step, loss, g)
		}
		if step%r.cfg.ProgressEvery == 0 {
			r.progress(Progress{Phase: phase, Step: step, Steps: steps, Loss: loss, GradNorm: g})
		}
		clip(be, t.Params(), g, r.cfg.ClipNorm)
		opt.LR = scheduledLRFor(r.cfg.Schedule, r.cfg.FitLR, step, steps)
		opt.Step()
	}
	r.progress(Progress{Phase: phase, Step: steps, Steps: steps, Loss: loss, Done: true})
	return steps, loss, nil
}

// fitCheckEvery is how often a gradient fit evaluates the full-data
// gradient norm for its stopping test.
const fitCheckEvery = 100

// fullGrad computes ‖∇θ ℓ(X; θ)‖ over all of X in chunks, summing the
// chunks' gradients in acc.
type fullGrad struct {
	be      native.Backend
	d       Density
	x       *native.Tensor
	acc     []*native.Tensor
	logp, w *native.Tensor
}

func newFullGrad(be native.Backend, d Density, x *native.Tensor) *fullGrad {
	f := &fullGrad{be: be, d: d, x: x}
	for _, p := range d.Params() {
		f.acc = append(f.acc, be.New(p.Grad.Rows(), p.Grad.Cols()))
	}
	n := min(x.Rows(), evalChunk)
	f.logp, f.w = be.New(n, 1), be.New(n, 1)
	be.Fill(f.w, -1/float64(x.Rows()))
	return f
}

func (f *fullGrad) norm() (float64, error) {
	be, n := f.be, f.x.Rows()
	for lo := 0; lo < n; lo += evalChunk {
		hi := min(lo+evalChunk, n)
		lp, w := f.logp, f.w
		if hi-lo != lp.Rows() {
			lp, w = be.View(lp, 0, hi-lo), be.View(w, 0, hi-lo)
		}
		if err := f.d.LogProb(lp, be.View(f.x, lo, hi)); err != nil {
			return 0, err
		}
		if err := f.d.Backward(nil, w); err != nil {
			return 0, err
		}
		for i, p := range f.d.Params() {
			if lo == 0 {
				be.Copy(f.acc[i], p.Grad)
			} else {
				be.Axpy(1, p.Grad, f.acc[i])
			}
		}
	}
	s := 0.0
	for _, a := range f.acc {
		s += be.Dot(a, a)
	}
	return math.Sqrt(s), nil
}

// jointState holds phase 2's buffers, all allocated before the first step:
// θS sees the density terms of one batch of T(A) and one of B, evaluated
// together as a single 2b-row batch [T(A_b); B_b]; φ sees ℓ(T(A)) and the
// log-det.
type jointState struct {
	r               *run
	flow            Flow
	dens            Density
	cab             float64
	sa, sb          *sampler
	xa, s, y, sB    *native.Tensor
	ds, dy          *native.Tensor
	logdet, dlogdet *native.Tensor
	logp, dlogp     *native.Tensor
	opt             *Adam
	inv             float64
}

func (r *run) newJoint(flow Flow, dens Density, cab float64) *jointState {
	be, bsz := r.be, r.cfg.Batch
	j := &jointState{r: r, flow: flow, dens: dens, cab: cab, inv: -1 / float64(bsz)}
	j.sa = newSampler(r.a.Rows(), bsz, r.rng)
	j.sb = newSampler(r.b.Rows(), bsz, r.rng)
	j.xa = be.New(bsz, r.dim)
	j.s = be.New(2*bsz, r.dim)
	j.y, j.sB = be.View(j.s, 0, bsz), be.View(j.s, bsz, 2*bsz)
	j.ds = be.New(2*bsz, r.dim)
	j.dy = be.View(j.ds, 0, bsz)
	j.logdet, j.dlogdet = be.New(bsz, 1), be.New(bsz, 1)
	j.logp, j.dlogp = be.New(2*bsz, 1), be.New(2*bsz, 1)
	// loss = c_AB − mean ln p(T(A_b)) − mean ln p(B_b) − mean logdet
	be.Fill(j.dlogp, j.inv)
	be.Fill(j.dlogdet, j.inv)
	params := append(append([]*Param{}, flow.Params()...), dens.Params()...)
	j.opt = NewAdam(be, params, r.cfg.LR)
	return j
}

// grad evaluates the mini-batch LRMF and its gradients at the current
// parameters, leaving them in the Params' Grad.
func (j *jointState) grad(step int) (Point, error) {
	be := j.r.be
	be.GatherRows(j.xa, j.r.a, j.sa.next())
	be.GatherRows(j.sB, j.r.b, j.sb.next())
	be.Fill(j.logdet, 0)
	fail := func(err error) (Point, error) {
		return Point{Step: step}, fmt.Errorf("lrmf: %w at step %d: %v", ErrDiverged, step, err)
	}
	if err := j.flow.Forward(j.y, j.logdet, j.xa); err != nil {
		return fail(err)
	}
	if err := j.dens.LogProb(j.logp, j.s); err != nil {
		return fail(err)
	}
	loss := j.cab + j.inv*(be.Sum(j.logp)+be.Sum(j.logdet))
	if err := j.dens.Backward(j.ds, j.dlogp); err != nil {
		return fail(err)
	}
	if err := j.flow.Backward(nil, j.dy, j.dlogdet); err != nil {
		return fail(err)
	}
	p := Point{Step: step, Loss: loss, GradT: gradNorm(be, j.flow.Params()), GradS: gradNorm(be, j.dens.Params())}
	if !finite(p.Loss, p.GradT, p.GradS) {
		return p, fmt.Errorf("lrmf: %w at step %d: loss %v, ‖g_T‖ = %v, ‖g_S‖ = %v", ErrDiverged, step, p.Loss, p.GradT, p.GradS)
	}
	return p, nil
}

// update applies the optimiser step for step, clipping each model's
// gradient to Config.ClipNorm first (p holds the norms).
func (j *jointState) update(step int, p Point) {
	be, c := j.r.be, j.r.cfg.ClipNorm
	clip(be, j.flow.Params(), p.GradT, c)
	clip(be, j.dens.Params(), p.GradS, c)
	j.opt.LR = scheduledLR(j.r.cfg, step)
	j.opt.Step()
}

// clip scales the gradients of ps by limit/norm when norm > limit > 0.
func clip(be native.Backend, ps []*Param, norm, limit float64) {
	if limit <= 0 || !(norm > limit) {
		return
	}
	s := limit/norm - 1 // g += s·g gives g·limit/norm
	for _, p := range ps {
		be.Axpy(s, p.Grad, p.Grad)
	}
}

// joint runs phase 2 until the tolerance or the budget stops it.
func (r *run) joint(ctx context.Context, res *Result) error {
	cfg := r.cfg
	j := r.newJoint(res.Flow, res.Density, res.CAB)
	res.History = make([]Point, 0, min(cfg.Steps, 1<<16))
	first := 1
	if ck := cfg.Resume; ck != nil {
		if err := r.restoreJoint(ck, j, res); err != nil {
			return err
		}
		first = ck.meta.Step + 1
	}
	save := func(step int) error {
		if cfg.Checkpoint == nil || step == 0 {
			return nil
		}
		ck, err := r.snapshot(res, j, step)
		if err != nil {
			return err
		}
		if err := cfg.Checkpoint(ck); err != nil {
			return fmt.Errorf("lrmf: saving the checkpoint at step %d: %w", step, err)
		}
		return nil
	}
	res.StoppedBy = "budget"
	for step := first; step <= cfg.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, save(step-1))
		}
		p, err := j.grad(step)
		if err != nil {
			return err
		}
		res.Steps = step
		res.History = append(res.History, p)
		if step%cfg.ProgressEvery == 0 {
			r.progress(Progress{Phase: "joint", Step: step, Steps: cfg.Steps, Loss: p.Loss, GradNorm: p.GradT + p.GradS})
		}
		if p.GradT+p.GradS < cfg.Tol {
			res.StoppedBy = "tolerance"
			break
		}
		j.update(step, p)
		if cfg.CheckpointEvery > 0 && step%cfg.CheckpointEvery == 0 && step < cfg.Steps {
			if err := save(step); err != nil {
				return err
			}
		}
	}
	if len(res.History) > 0 {
		last := res.History[len(res.History)-1]
		r.progress(Progress{Phase: "joint", Step: res.Steps, Steps: cfg.Steps, Loss: last.Loss, GradNorm: last.GradT + last.GradS, Done: true})
	}
	return save(res.Steps)
}

// snapshot captures the run after `step` completed joint steps.
func (r *run) snapshot(res *Result, j *jointState, step int) (*Checkpoint, error) {
	rng, err := r.pcg.MarshalBinary()
	if err != nil {
		return nil, err
	}
	cfg := r.cfg
	cfg.Backend, cfg.NewFlow, cfg.NewDensity, cfg.Checkpoint, cfg.Resume, cfg.Progress = nil, nil, nil, nil, nil, nil
	c := &Checkpoint{tensors: map[string][]float64{}}
	c.meta = checkpointMeta{
		Version: CheckpointVersion, Config: cfg, Backend: r.be.Name(), DType: r.be.DType().String(), Dim: r.dim, RowsA: r.a.Rows(), RowsB: r.b.Rows(),
		DataHash: r.hash, Step: step, FitStepsA: res.FitStepsA, FitStepsB: res.FitStepsB, CAB: res.CAB,
		AdamT: j.opt.t, RNG: rng,
		SamplerA: samplerState{Perm: append([]int32(nil), j.sa.perm...), Pos: j.sa.pos},
		SamplerB: samplerState{Perm: append([]int32(nil), j.sb.perm...), Pos: j.sb.pos},
		History:  append([]Point(nil), res.History[:min(step, len(res.History))]...),
	}
	be := r.be
	c.addParams(be, "flow/", res.Flow.Params())
	c.addParams(be, "S/", res.Density.Params())
	c.addParams(be, "A/", res.DensityA.Params())
	c.addParams(be, "B/", res.DensityB.Params())
	for i := range j.opt.m {
		c.addTensor(be, fmt.Sprintf("adam.m/%d", i), j.opt.m[i])
		c.addTensor(be, fmt.Sprintf("adam.v/%d", i), j.opt.v[i])
	}
	return c, nil
}

// restoreModels loads θA*, θB*, θS, the flow and c_AB from ck after checking
// that it belongs to this run's data and models.
func (r *run) restoreModels(ck *Checkpoint, res *Result) error {
	m, cfg := ck.meta, r.cfg
	switch {
	case m.Dim != r.dim || m.RowsA != r.a.Rows() || m.RowsB != r.b.Rows():
		return fmt.Errorf("lrmf: the checkpoint was saved for data of %d+%d rows × %d columns, these are %d+%d × %d",
			m.RowsA, m.RowsB, m.Dim, r.a.Rows(), r.b.Rows(), r.dim)
	case m.DataHash != r.hash:
		return fmt.Errorf("lrmf: the checkpoint was saved for other data (same shape, different values)")
	case m.Config.Flow.Normalized() != cfg.Flow || m.Config.Density.Normalized() != cfg.Density:
		return fmt.Errorf("lrmf: the checkpoint holds flow %+v and density %+v, the run asks for %+v and %+v",
			m.Config.Flow, m.Config.Density, cfg.Flow, cfg.Density)
	case m.Config.Batch != cfg.Batch:
		return fmt.Errorf("lrmf: the checkpoint was saved with Batch = %d, the run asks for %d", m.Config.Batch, cfg.Batch)
	case m.Step > cfg.Steps:
		return fmt.Errorf("lrmf: the checkpoint is at step %d, beyond Steps = %d", m.Step, cfg.Steps)
	}
	be := r.be
	for _, p := range []struct {
		prefix string
		ps     []*Param
	}{{"flow/", res.Flow.Params()}, {"S/", res.Density.Params()}, {"A/", res.DensityA.Params()}, {"B/", res.DensityB.Params()}} {
		if err := ck.loadParams(be, p.prefix, p.ps); err != nil {
			return err
		}
	}
	res.CAB, res.FitStepsA, res.FitStepsB = m.CAB, m.FitStepsA, m.FitStepsB
	return nil
}

// restoreJoint loads the optimiser, batch samplers, RNG and history.
func (r *run) restoreJoint(ck *Checkpoint, j *jointState, res *Result) error {
	m := ck.meta
	for i := range j.opt.m {
		if err := ck.loadTensor(r.be, fmt.Sprintf("adam.m/%d", i), j.opt.m[i]); err != nil {
			return err
		}
		if err := ck.loadTensor(r.be, fmt.Sprintf("adam.v/%d", i), j.opt.v[i]); err != nil {
			return err
		}
	}
	j.opt.t = m.AdamT
	for _, s := range []struct {
		dst *sampler
		src samplerState
	}{{j.sa, m.SamplerA}, {j.sb, m.SamplerB}} {
		if len(s.src.Perm) != len(s.dst.perm) || s.src.Pos < 0 || s.src.Pos > len(s.dst.perm) {
			return fmt.Errorf("lrmf: %w: batch-sampler state does not fit the data", ErrBadCheckpoint)
		}
		copy(s.dst.perm, s.src.Perm)
		s.dst.pos = s.src.Pos
	}
	if err := r.pcg.UnmarshalBinary(m.RNG); err != nil {
		return fmt.Errorf("lrmf: %w: RNG state: %v", ErrBadCheckpoint, err)
	}
	res.History = append(res.History, m.History...)
	res.Steps = m.Step
	return nil
}

// scheduledLR is the joint phase's learning rate for step (1-based).
func scheduledLR(cfg Config, step int) float64 {
	return scheduledLRFor(cfg.Schedule, cfg.LR, step, cfg.Steps)
}

// scheduledLRFor is the learning rate of step (1-based) of a phase with the
// given budget: constant, or a half cosine from lr down to lr/100.
func scheduledLRFor(schedule string, lr float64, step, steps int) float64 {
	if schedule == "constant" || steps <= 1 {
		return lr
	}
	const floor = 0.01
	frac := float64(step-1) / float64(steps-1)
	return lr * (floor + (1-floor)*0.5*(1+math.Cos(math.Pi*frac)))
}

package lrmf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// Align runs Algorithm 1 of the paper on datasets A (nA×D) and B (nB×D),
// with held-out evaluation, early stopping and restarts:
//
//  0. split each set (seeded) into a training part, a validation part
//     (Config.Validation) and a held-out part (Config.Holdout);
//  1. fit θA* to A's training part and θB* to B's (closed form when the
//     density has one, else Adam, early-stopped on the validation parts
//     and capped at FitSteps, after the density's data-dependent
//     initialisation on its first batch when it has one,
//     model.DataInitializer); c_AB = ℓ(A; θA*) + ℓ(B; θB*);
//  2. Config.Restarts times: start θS from θA* and T from its own
//     initialisation (with Restarts = 1 initialised from a batch of A when
//     it is a model.DataInitializer; pre-fitted to the identity when
//     IdentityPrefit says so), take Adam steps on the mini-batch LRMF over the training parts
//     until ‖g_T‖ + ‖g_S‖ < Tol, patience on the validation LRMF, or
//     Steps, and restore the best validated (φ, θS); keep the restart with
//     the lowest validation LRMF;
//  3. evaluate LRMF and its four terms on the held-out parts with their
//     standard errors (and on the training parts), run the two-sample test
//     of T(A) against B on the held-out and validation points, and classify the outcome
//     (Result.Status).
//
// Restarts run concurrently when the backend has more than one thread:
// P = min(Restarts, threads) sibling backends (native.Open of the same name
// and type, threads/P threads each, closed before Align returns) take the
// restarts in turn; θA*, θB* and the data are copied to them. The outcome
// is deterministic for a given seed, thread count and Restarts.
//
// The zero Config is DefaultConfig's run. Align returns a Result whenever
// training started, also together with an error: ErrDiverged (wrapped) for
// a non-finite loss, or ctx.Err() when the context ends the run;
// Result.Status says which. A device failure (a *native.DeviceError, e.g.
// GPU memory exhausted: errors.Is(err, native.ErrOutOfMemory)) is returned
// as the error, with no Result.
func Align(ctx context.Context, a, b *mat.Dense, cfg Config) (res *Result, err error) {
	defer native.RecoverDeviceError(&err)
	return align(ctx, a, b, cfg)
}

func align(ctx context.Context, a, b *mat.Dense, cfg Config) (*Result, error) {
	start := time.Now()
	na, nb, dim, err := checkPair(a, b)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(na, nb)
	if err := cfg.validate(na, nb, dim); err != nil {
		return nil, err
	}
	if cfg.NewFlow == nil {
		if cfg.NewFlow, err = cfg.Flow.FlowMaker(); err != nil {
			return nil, err
		}
	}
	if cfg.NewDensity == nil {
		if cfg.NewDensity, err = cfg.Density.DensityMaker(); err != nil {
			return nil, err
		}
	}
	be, owned, err := openBackend(cfg.Backend)
	if err != nil {
		return nil, err
	}
	if owned {
		defer be.Close()
	}
	pcg := rand.NewPCG(cfg.Seed, 0x6c726d66) // "lrmf"
	r := &run{cfg: cfg, be: be, pcg: pcg, rng: rand.New(pcg), start: start, dim: dim, mu: new(sync.Mutex)}
	if cfg.Checkpoint != nil || cfg.Resume != nil {
		r.hash = dataHash(a, b)
	}
	r.hostA, r.hostB = a, b
	r.sa = splitSet(na, cfg.Holdout, cfg.Validation, cfg.Seed, 0)
	r.sb = splitSet(nb, cfg.Holdout, cfg.Validation, cfg.Seed, 1)
	r.fullA, r.fullB = toTensor(be, a), toTensor(be, b)
	r.a, r.b = r.part(r.fullA, r.sa.train), r.part(r.fullB, r.sb.train)
	if len(r.sa.val) > 0 {
		r.av, r.bv = r.part(r.fullA, r.sa.val), r.part(r.fullB, r.sb.val)
	}
	return r.align(ctx)
}

// run holds the state of one Align call, or of one restart's joint phase
// on its own backend (then only the fields the joint phase uses are set).
type run struct {
	cfg   Config
	be    native.Backend
	pcg   *rand.PCG
	rng   *rand.Rand
	hash  string // of A and B, when checkpointing
	start time.Time
	dim   int
	mu    *sync.Mutex // serialises Config.Progress across restarts

	a, b   *native.Tensor // the training parts: what fits and joint steps sample
	av, bv *native.Tensor // the validation parts (nil: none)
	cab    float64        // c_AB on the training parts
	// ln pA*(a), ln pB*(b) per validation row, after the fits.
	lpAVal, lpBVal []float64

	// The whole call only.
	hostA, hostB *mat.Dense
	fullA, fullB *native.Tensor // every row, for the final evaluation
	sa, sb       split
}

// toTensor uploads the rows of x (n×D) to a new n×D tensor on be.
func toTensor(be native.Backend, x *mat.Dense) *native.Tensor {
	r, c := x.Dims()
	t := be.New(r, c)
	be.Upload(t, mat.DenseCopyOf(x).RawMatrix().Data)
	return t
}

// part returns the rows idx (increasing) of the full-data tensor x: x
// itself when idx lists every row.
func (r *run) part(x *native.Tensor, idx []int32) *native.Tensor {
	if len(idx) == x.Rows() {
		return x
	}
	t := r.be.New(len(idx), x.Cols())
	r.be.GatherRows(t, x, idx)
	return t
}

func (r *run) progress(p Progress) {
	if r.cfg.Progress != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		p.Elapsed = time.Since(r.start)
		r.cfg.Progress(p)
	}
}

// fitter returns the fitter of θA*, θB* (Config's fit options, progress
// reported as the run's).
func (r *run) fitter() *fitter {
	return &fitter{opt: r.cfg.FitOptions, be: r.be, rng: r.rng, dim: r.dim, every: r.cfg.ProgressEvery, progress: r.progress}
}

// align runs the phases on the uploaded data.
func (r *run) align(ctx context.Context) (*Result, error) {
	cfg, be := r.cfg, r.be
	res := &Result{Config: cfg}
	newDensity := func(which string) (model.Density, error) {
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
	cfg.IdentityPrefit = cfg.prefitSteps(res.Flow)
	r.cfg.IdentityPrefit, res.Config.IdentityPrefit = cfg.IdentityPrefit, cfg.IdentityPrefit
	defer func() { res.Solver = solverReport(res) }()

	// Phase 1: θA*, θB*, c_AB (restored when resuming).
	if ck := cfg.Resume; ck != nil {
		if err := r.restoreModels(ck, res); err != nil {
			return nil, err
		}
	} else if err := r.fits(ctx, res); err != nil {
		return r.stopped(res, err)
	}
	res.FitSeconds = time.Since(r.start).Seconds()

	// Phase 2: the restarts' joint phases.
	jointStart := time.Now()
	var chosen *restartRun
	if cfg.Restarts == 1 {
		chosen, err = r.single(ctx, res)
		res.Restarts = []RestartReport{chosen.report(true)}
	} else {
		chosen, err = r.restarts(ctx, res)
	}
	res.JointSeconds = time.Since(jointStart).Seconds()
	if chosen != nil {
		res.Steps, res.StoppedBy, res.Joint, res.History = chosen.phase.Steps, chosen.phase.StoppedBy, chosen.phase, chosen.history
		res.PrefitSteps, res.PrefitMSE = chosen.prefitSteps, chosen.prefitMSE
	}
	var steps int
	for _, rr := range res.Restarts {
		steps += rr.Steps
	}
	if steps > 0 {
		res.MsPerStep = 1000 * res.JointSeconds / float64(steps)
	}
	if err != nil {
		return r.stopped(res, err)
	}
	if cfg.Restarts > 1 && cfg.Checkpoint != nil && chosen.ck != nil {
		ck := chosen.ck
		r.addFitted(ck, res)
		if err := cfg.Checkpoint(ck); err != nil {
			return r.stopped(res, fmt.Errorf("lrmf: saving the checkpoint: %w", err))
		}
	}

	// Phase 3: the figures, the two-sample test and the verdict.
	if err := r.evaluate(res); err != nil {
		return r.stopped(res, err)
	}
	res.TotalSeconds = time.Since(r.start).Seconds()
	return res, nil
}

// single runs the one restart of Restarts = 1 on the run's own backend and
// random stream, continuing from a checkpoint when resuming.
func (r *run) single(ctx context.Context, res *Result) (*restartRun, error) {
	start := time.Now()
	rr := &restartRun{seed: r.cfg.Seed, flow: res.Flow, dens: res.Density}
	defer func() { rr.seconds = time.Since(start).Seconds() }()
	if r.cfg.Resume == nil {
		if err := r.initFlow(rr.flow); err != nil {
			return rr, err
		}
	}
	if r.cfg.Resume == nil && r.cfg.IdentityPrefit > 0 {
		var err error
		if rr.prefitSteps, rr.prefitMSE, err = r.prefit(ctx, rr.flow, 0); err != nil {
			return rr, err
		}
	}
	if ck := r.cfg.Resume; ck != nil {
		rr.prefitSteps, rr.prefitMSE = ck.meta.PrefitSteps, ck.meta.PrefitMSE
	}
	return rr, r.joint(ctx, rr, res)
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

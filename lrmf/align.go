package lrmf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// Align runs Algorithm 1 of the paper on datasets A (nA×D) and B (nB×D):
//
//  1. fit θA* to A and θB* to B (closed form when the density has one,
//     else Adam until the gradient norm falls below Tol or FitSteps);
//     c_AB = ℓ(A; θA*) + ℓ(B; θB*);
//  2. start θS from θA* and T from its initialisation (pre-fitted to the
//     identity when IdentityPrefit says so), then take Adam steps on the
//     mini-batch LRMF (one batch of A and one of B per step) until
//     ‖g_T‖ + ‖g_S‖ < Tol or Steps;
//  3. evaluate LRMF on the full data and classify the outcome.
//
// The zero Config is DefaultConfig's run. Align returns a Result whenever
// training started, also together with an error: ErrDiverged (wrapped) for
// a non-finite loss, or ctx.Err() when the context ends the run;
// Result.Status says which.
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

// toTensor uploads the rows of x (n×D) to a new n×D tensor on be.
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

// fitter returns the fitter of θA*, θB* (Config's fit options, progress
// reported as the run's).
func (r *run) fitter() *fitter {
	return &fitter{opt: r.cfg.FitOptions, be: r.be, rng: r.rng, dim: r.dim, every: r.cfg.ProgressEvery, progress: r.progress}
}

// align runs the three phases on the uploaded data.
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

	// Phase 1: θA*, θB*, c_AB, the identity pre-fit (restored when resuming).
	if ck := cfg.Resume; ck != nil {
		if err := r.restoreModels(ck, res); err != nil {
			return nil, err
		}
	} else if err := r.fits(ctx, res); err != nil {
		return r.stopped(res, err)
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
	res.Status = verdict(res.LRMF, cfg.Threshold)
	res.Converged = res.Status == Converged
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

package lrmf

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// RestartReport is one restart of Align's joint phase.
type RestartReport struct {
	// Index is the restart's number (0-based); Seed seeds its flow
	// initialisation, pre-fit and batch order (with Restarts = 1 the run's
	// own stream, Config.Seed).
	Index int    `json:"index"`
	Seed  uint64 `json:"seed"`
	// ValidationLRMF is the value restarts are compared by: the best
	// (moving-average) validation LRMF of the restart's joint phase, which
	// its kept parameters scored (PhaseReport.BestValue); the validation
	// LRMF of its final parameters when the phase evaluated nothing; the
	// training LRMF when Validation < 0. LRMF ± LRMFSE is its held-out
	// estimate (the training value, without SE, when Holdout < 0).
	ValidationLRMF float64 `json:"validation_lrmf"`
	LRMF           float64 `json:"lrmf"`
	LRMFSE         float64 `json:"lrmf_se"`
	// Steps, StoppedBy, BestStep: how its joint phase ended (PhaseReport).
	Steps     int    `json:"steps"`
	StoppedBy string `json:"stopped_by"`
	BestStep  int    `json:"best_step"`
	// Seconds is the restart's wall time (pre-fit, joint phase and, with
	// Restarts > 1, its own evaluation).
	Seconds float64 `json:"seconds"`
	// Chosen marks the restart whose T and θS the Result holds.
	Chosen bool `json:"chosen"`
}

func (rr *restartRun) report(chosen bool) RestartReport {
	rep := RestartReport{Index: rr.index, Seed: rr.seed, ValidationLRMF: rr.selection, LRMF: rr.est.LRMF,
		Steps: rr.phase.Steps, StoppedBy: rr.phase.StoppedBy, BestStep: rr.phase.BestStep, Seconds: rr.seconds, Chosen: chosen}
	if rr.est.SE != nil {
		rep.LRMFSE = rr.est.SE.LRMF
	}
	return rep
}

// restartSeed derives restart k's seed from the run's (SplitMix64 of
// seed + (k+1)·golden ratio), so restarts draw independent streams; it is
// kept below 2⁵³ so that JSON readers see it exactly.
func restartSeed(seed uint64, k int) uint64 {
	z := seed + uint64(k+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return (z ^ (z >> 31)) & (1<<53 - 1)
}

// restartShared is what every restart copies from the main run: the data
// parts, θA* (θS's start), and θA*, θB* per row of the part each restart
// is evaluated on.
type restartShared struct {
	trainA, trainB, valA, valB, evalA, evalB *mat.Dense
	thetaA                                   [][]float64 // θA*'s parameter values
	lpA, lpB                                 []float64   // ln pA*(a), ln pB*(b) per row of evalA, evalB
	heldOut                                  bool        // evalA, evalB are the held-out parts (else training)
}

// rowsOf returns the rows idx of x as a new matrix.
func rowsOf(x *mat.Dense, idx []int32) *mat.Dense {
	_, d := x.Dims()
	out := mat.NewDense(len(idx), d, nil)
	for i, j := range idx {
		out.SetRow(i, x.RawRowView(int(j)))
	}
	return out
}

// shared prepares restartShared on the main backend.
func (r *run) shared(res *Result) (*restartShared, error) {
	sh := &restartShared{
		trainA: rowsOf(r.hostA, r.sa.train), trainB: rowsOf(r.hostB, r.sb.train),
		heldOut: len(r.sa.held) > 0,
	}
	if len(r.sa.val) > 0 {
		sh.valA, sh.valB = rowsOf(r.hostA, r.sa.val), rowsOf(r.hostB, r.sb.val)
	}
	ia, ib := r.sa.train, r.sb.train
	if sh.heldOut {
		ia, ib = r.sa.held, r.sb.held
	}
	sh.evalA, sh.evalB = rowsOf(r.hostA, ia), rowsOf(r.hostB, ib)
	for _, p := range res.DensityA.Params() {
		v := make([]float64, p.Value.Len())
		r.be.Download(v, p.Value)
		sh.thetaA = append(sh.thetaA, v)
	}
	var err error
	if sh.lpA, err = logProbHost(r.be, res.DensityA, r.part(r.fullA, ia)); err != nil {
		return nil, err
	}
	if sh.lpB, err = logProbHost(r.be, res.DensityB, r.part(r.fullB, ib)); err != nil {
		return nil, err
	}
	return sh, nil
}

// logProbHost returns ln P(x_i; θ) for every row of x, downloaded.
func logProbHost(be native.Backend, d model.Density, x *native.Tensor) ([]float64, error) {
	lp := be.New(x.Rows(), 1)
	if err := model.LogProbRows(be, d, lp, x); err != nil {
		return nil, err
	}
	out := make([]float64, x.Rows())
	be.Download(out, lp)
	return out, nil
}

// restarts runs Config.Restarts > 1 joint phases — concurrently on
// P = min(Restarts, threads) sibling backends when P > 1, else one after
// another on the run's backend — and returns the one with the lowest
// validation LRMF, its T and θS copied into res.Flow and res.Density.
// A restart that diverges is reported and passed over; the run diverges
// only when all of them do.
func (r *run) restarts(ctx context.Context, res *Result) (*restartRun, error) {
	cfg := r.cfg
	n := cfg.Restarts
	sh, err := r.shared(res)
	if err != nil {
		return nil, err
	}
	p := min(n, r.be.Threads())
	runs := make([]*restartRun, n)
	errs := make([]error, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if p <= 1 {
		for k := range n {
			runs[k], errs[k] = r.restart(ctx, r.be, sh, k)
			if errs[k] != nil && !errors.Is(errs[k], ErrDiverged) {
				break
			}
		}
	} else {
		jobs := make(chan int, n)
		for k := range n {
			jobs <- k
		}
		close(jobs)
		var wg sync.WaitGroup
		openErr := make([]error, p)
		for w := range p {
			wg.Add(1)
			go func() {
				defer wg.Done()
				be, err := native.Open(r.be.Name(), r.be.DType(), max(1, r.be.Threads()/p))
				if err != nil {
					openErr[w] = fmt.Errorf("lrmf: opening a backend for the restarts: %w", err)
					cancel()
					return
				}
				defer be.Close()
				for k := range jobs {
					func() {
						// A panic here would end the process: a device
						// failure becomes this restart's error.
						defer native.RecoverDeviceError(&errs[k])
						runs[k], errs[k] = r.restart(ctx, be, sh, k)
					}()
					if errs[k] != nil && !errors.Is(errs[k], ErrDiverged) {
						cancel()
					}
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(openErr...); err != nil {
			return nil, err
		}
	}
	// A failure other than divergence ends the run (preferring a real
	// failure to the cancellations it caused); divergence only when every
	// restart diverged.
	var diverged, failed error
	for _, e := range errs {
		switch {
		case e == nil:
		case errors.Is(e, ErrDiverged):
			if diverged == nil {
				diverged = e
			}
		case failed == nil || (errors.Is(failed, context.Canceled) && !errors.Is(e, context.Canceled)):
			failed = e
		}
	}
	if failed != nil {
		return nil, failed
	}
	var chosen *restartRun
	for _, rr := range runs {
		if rr != nil && rr.err == nil && (chosen == nil || rr.selection < chosen.selection) {
			chosen = rr
		}
	}
	for _, rr := range runs {
		if rr != nil {
			res.Restarts = append(res.Restarts, rr.report(rr == chosen))
			res.restartSolver.add(rr.solver)
		}
	}
	if chosen == nil {
		return nil, diverged
	}
	for i, p := range res.Flow.Params() {
		r.be.Upload(p.Value, chosen.hostFlow[i])
	}
	for i, p := range res.Density.Params() {
		r.be.Upload(p.Value, chosen.hostDens[i])
	}
	return chosen, nil
}

// restart runs restart k on be (the run's backend or a sibling): its own
// models and random stream, the identity pre-fit, the joint phase, its
// held-out estimate and selection value; the trained parameters are
// downloaded so that be may be closed.
func (r *run) restart(ctx context.Context, be native.Backend, sh *restartShared, k int) (*restartRun, error) {
	start := time.Now()
	cfg := r.cfg
	seed := restartSeed(cfg.Seed, k)
	pcg := rand.NewPCG(seed, 0x6c726d66)
	sub := &run{cfg: cfg, be: be, pcg: pcg, rng: rand.New(pcg), start: r.start, dim: r.dim, mu: r.mu, cab: r.cab, lpAVal: r.lpAVal, lpBVal: r.lpBVal}
	sub.a, sub.b = toTensor(be, sh.trainA), toTensor(be, sh.trainB)
	if sh.valA != nil {
		sub.av, sub.bv = toTensor(be, sh.valA), toTensor(be, sh.valB)
	}
	rr := &restartRun{index: k, seed: seed}
	defer func() { rr.seconds = time.Since(start).Seconds() }()
	var err error
	if rr.dens, err = cfg.NewDensity(be, r.dim, sub.rng); err != nil {
		return rr, fmt.Errorf("lrmf: building the density for restart %d: %w", k, err)
	}
	if rr.flow, err = cfg.NewFlow(be, r.dim, sub.rng); err != nil {
		return rr, fmt.Errorf("lrmf: building the flow for restart %d: %w", k, err)
	}
	defer func() { rr.solver = restartSolverOf(rr.flow, rr.dens) }()
	for i, p := range rr.dens.Params() {
		be.Upload(p.Value, sh.thetaA[i])
	}
	fail := func(err error) (*restartRun, error) {
		if errors.Is(err, ErrDiverged) {
			rr.err, rr.phase.StoppedBy = err, "diverged"
		}
		return rr, err
	}
	// A fresh flow with a data-dependent initialisation (an image flow's
	// ActNorms) gets it from this restart's own batch of A.
	if err := sub.initFlow(rr.flow); err != nil {
		return fail(err)
	}
	if cfg.IdentityPrefit > 0 {
		if rr.prefitSteps, rr.prefitMSE, err = sub.prefit(ctx, rr.flow, k); err != nil {
			return fail(err)
		}
	}
	if err := sub.joint(ctx, rr, nil); err != nil {
		return fail(err)
	}
	// The restart's own figures: the held-out estimate (trimmed; the
	// training one, untrimmed, when Holdout < 0), the selection value (the
	// best validation LRMF, or the validation or training LRMF of the kept
	// parameters when the phase evaluated nothing).
	trim := cfg.Trim
	if !sh.heldOut {
		trim = -1
	}
	rr.est, err = partEstimate(be, rr.flow, rr.dens, toTensor(be, sh.evalA), toTensor(be, sh.evalB), sh.lpA, sh.lpB, sh.heldOut, trim)
	if err != nil {
		return fail(fmt.Errorf("lrmf: %w: evaluating restart %d: %v", ErrDiverged, k, err))
	}
	switch {
	case rr.phase.Evaluations > 0:
		rr.selection = rr.phase.BestValue
	case sub.av != nil:
		e, err := partEstimate(be, rr.flow, rr.dens, sub.av, sub.bv, r.lpAVal, r.lpBVal, false, cfg.Trim)
		if err != nil {
			return fail(fmt.Errorf("lrmf: %w: evaluating restart %d: %v", ErrDiverged, k, err))
		}
		rr.selection = e.LRMF
	case sh.heldOut:
		if rr.selection, err = EvalLRMF(be, rr.flow, rr.dens, r.cab, sub.a, sub.b); err != nil {
			return fail(fmt.Errorf("lrmf: %w: evaluating restart %d: %v", ErrDiverged, k, err))
		}
	default:
		rr.selection = rr.est.LRMF // evaluated on the training parts
	}
	if !finite(rr.selection, rr.est.LRMF) {
		return fail(fmt.Errorf("lrmf: %w: restart %d ended with LRMF %v (selection value %v)", ErrDiverged, k, rr.est.LRMF, rr.selection))
	}
	rr.hostFlow, rr.hostDens = hostParams(be, rr.flow.Params()), hostParams(be, rr.dens.Params())
	return rr, nil
}

// partEstimate evaluates (T, θS) on the rows of a and b, whose θA*, θB*
// log-densities are lpA, lpB, and returns the estimate.
func partEstimate(be native.Backend, t model.Flow, s model.Density, a, b *native.Tensor, lpA, lpB []float64, withSE bool, trim float64) (Estimate, error) {
	v, err := rowsEval(be, t, s, a, b)
	if err != nil {
		return Estimate{}, err
	}
	v.lpA, v.lpB = lpA, lpB
	return v.estimate(nil, nil, withSE, trim), nil
}

// hostParams downloads every parameter's value.
func hostParams(be native.Backend, ps []*model.Param) [][]float64 {
	out := make([][]float64, len(ps))
	for i, p := range ps {
		out[i] = make([]float64, p.Value.Len())
		be.Download(out[i], p.Value)
	}
	return out
}

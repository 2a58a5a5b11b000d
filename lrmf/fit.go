package lrmf

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/optim"
	"github.com/lrmf-go/lrmf/native"
)

// fits runs phase 1 of Align: θA* fitted to A's training part and θB* to
// B's (early-stopped on their validation parts), c_AB = ℓ(A; θA*) +
// ℓ(B; θB*) on the training parts, ln pA*, ln pB* per validation row, and
// θS set to θA*.
func (r *run) fits(ctx context.Context, res *Result) error {
	be, f := r.be, r.fitter()
	var err error
	if res.FitA, err = f.fit(ctx, "fit-A", res.DensityA, r.a, r.av); err != nil {
		return err
	}
	if res.FitB, err = f.fit(ctx, "fit-B", res.DensityB, r.b, r.bv); err != nil {
		return err
	}
	res.FitStepsA, res.FitStepsB = res.FitA.Steps, res.FitB.Steps
	la, err := model.MeanLogProb(be, res.DensityA, r.a)
	if err != nil {
		return err
	}
	lb, err := model.MeanLogProb(be, res.DensityB, r.b)
	if err != nil {
		return err
	}
	r.cab = la + lb
	if r.av != nil {
		if r.lpAVal, err = logProbHost(be, res.DensityA, r.av); err != nil {
			return err
		}
		if r.lpBVal, err = logProbHost(be, res.DensityB, r.bv); err != nil {
			return err
		}
	}
	model.CopyParams(be, res.Density.Params(), res.DensityA.Params())
	return nil
}

// fitter fits densities to data with one set of FitOptions: Align's θA*,
// θB* and ShiftTest's θS, θA, θB.
type fitter struct {
	opt      FitOptions
	be       native.Backend
	rng      *rand.Rand // batch order
	dim      int
	every    int            // progress period in steps
	progress func(Progress) // nil: no progress reports
}

func (f *fitter) report(p Progress) {
	if f.progress != nil {
		f.progress(p)
	}
}

// fitCheckEvery is how often a gradient fit evaluates the full-data
// gradient norm for its stopping test.
const fitCheckEvery = 100

// fit sets d to θX* = argmax_θ ℓ(X; θ) for the n×D training data x and
// reports how the fit ended. Gradient fits take Adam steps on −mean ln p
// over mini-batches of min(2b, n) rows, following the learning-rate
// schedule over FitSteps; they stop early when the gradient of the
// full-data log-likelihood, checked every fitCheckEvery steps, has norm
// below Tol, or, when xv (the validation rows; nil: none) is given, when
// the validation mean log-likelihood, evaluated every EvalEvery steps, has
// not improved for Patience steps. The parameters with the best validation
// value are restored at the end. d must be fresh (as built, or reset to
// its initial parameters): a model.DataInitializer is initialised on the
// first mini-batch, from the training rows x only, before the first step.
func (f *fitter) fit(ctx context.Context, phase string, d model.Density, x, xv *native.Tensor) (PhaseReport, error) {
	o := f.opt
	if m, ok := d.(model.MLEFitter); ok && !o.GradientFit {
		if err := m.FitMLE(x); err != nil {
			return PhaseReport{}, fmt.Errorf("lrmf: fitting the density to %s: %w", phase[len(phase)-1:], err)
		}
		f.report(Progress{Phase: phase, Done: true})
		return PhaseReport{StoppedBy: "closed-form"}, nil
	}
	// θS sees 2b rows per joint step (b of T(A), b of B), so each fit step
	// draws 2b rows too: with equal budgets θX* and θS then get the same
	// optimisation effort, and c_AB is not under-fitted relative to θS.
	be, bsz := f.be, min(2*o.Batch, x.Rows())
	s := newSampler(x.Rows(), bsz, f.rng)
	xb, logp, dlogp := be.New(bsz, f.dim), be.New(bsz, 1), be.New(bsz, 1)
	be.Fill(dlogp, -1/float64(bsz)) // loss = −mean ln p
	opt := optim.NewAdam(be, d.Params(), o.FitLR)
	steps := o.FitSteps
	full := newFullGrad(be, d, x)
	var val *fitValidation
	if xv != nil {
		val = newFitValidation(be, d, xv, xb, logp, o.Patience, o.Trim)
	}
	rep := PhaseReport{StoppedBy: "budget", Steps: steps}
	// A density with a data-dependent initialisation gets it on the first
	// training batch (fit is only given fresh densities).
	init, _ := model.DataInitializerOf(d)
	loss := 0.0
	for step := 1; step <= steps; step++ {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		be.GatherRows(xb, x, s.next())
		if step == 1 && init != nil {
			if err := init.InitFromData(xb); err != nil {
				return rep, fmt.Errorf("lrmf: initialising the density for %s from data: %w", phase[len(phase)-1:], err)
			}
		}
		if err := d.LogProb(logp, xb); err != nil {
			return rep, err
		}
		loss = -be.Sum(logp) / float64(bsz)
		if err := d.Backward(nil, dlogp); err != nil {
			return rep, err
		}
		g := optim.GradNorm(be, d.Params())
		if !finite(loss, g) {
			return rep, fmt.Errorf("lrmf: %w at step %d of the θ%s* fit: loss %v, gradient norm %v", ErrDiverged, step, phase[len(phase)-1:], loss, g)
		}
		if step%f.every == 0 {
			f.report(Progress{Phase: phase, Step: step, Steps: steps, Loss: loss, GradNorm: g})
		}
		if (step-1)%fitCheckEvery == 0 {
			// The mini-batch gradient is noisy; the convergence test uses
			// the full data.
			fg, err := full.norm()
			if err != nil {
				return rep, err
			}
			if fg < o.Tol {
				rep.Steps, rep.StoppedBy = step-1, "tolerance"
				break
			}
			// full.norm overwrote the gradients: recompute this batch's.
			if err := d.LogProb(logp, xb); err != nil {
				return rep, err
			}
			if err := d.Backward(nil, dlogp); err != nil {
				return rep, err
			}
		}
		optim.ClipGrad(be, d.Params(), g, o.ClipNorm)
		var es *earlyStop
		if val != nil {
			es = val.es
		}
		opt.LR = lrAt(o.Schedule, es, o.FitLR, step, steps)
		opt.Step()
		if val != nil && step%o.EvalEvery == 0 {
			stop, err := val.eval(step)
			if err != nil {
				return rep, err
			}
			if stop {
				rep.Steps, rep.StoppedBy = step, "patience"
				break
			}
		}
	}
	if val != nil {
		if val.es.evals > 0 && val.es.lastStep != rep.Steps {
			if _, err := val.eval(rep.Steps); err != nil {
				return rep, err
			}
		}
		val.es.restore()
		val.es.report(&rep, -1)
	}
	f.report(Progress{Phase: phase, Step: rep.Steps, Steps: steps, Loss: loss, Done: true})
	return rep, nil
}

// fitValidation evaluates a density's trimmed mean log-likelihood on
// validation rows for early stopping, in chunks of the fit's batch size
// through the fit's own buffers (xb, logp), so that it allocates nothing
// after its construction.
type fitValidation struct {
	be     native.Backend
	d      model.Density
	xv     *native.Tensor
	xb, lp *native.Tensor
	host   []float64 // one chunk's ln p
	vals   []float64 // ln p per validation row
	trim   float64
	rows   *rowCycler
	es     *earlyStop
}

func newFitValidation(be native.Backend, d model.Density, xv, xb, logp *native.Tensor, patience int, trim float64) *fitValidation {
	return &fitValidation{be: be, d: d, xv: xv, xb: xb, lp: logp, host: make([]float64, xb.Rows()), vals: make([]float64, xv.Rows()), trim: trim,
		rows: newRowCycler(xv.Rows(), xb.Rows()), es: newEarlyStop(be, d.Params(), patience)}
}

// meanLogProb returns the trimmed mean of ln P(x; θ) over X_val.
func (v *fitValidation) meanLogProb() (float64, error) {
	model.Inference(v.d, true)
	defer model.Inference(v.d, false)
	for k := range v.rows.chunks() {
		idx, valid := v.rows.at(k)
		v.be.GatherRows(v.xb, v.xv, idx)
		if err := v.d.LogProb(v.lp, v.xb); err != nil {
			return 0, err
		}
		v.be.Download(v.host, v.lp)
		copy(v.vals[k*len(idx):], v.host[:valid])
	}
	return trimmedMean(v.vals, v.trim), nil
}

// eval evaluates the validation objective −ℓ(X_val; θ) after step and
// reports whether patience ran out.
func (v *fitValidation) eval(step int) (bool, error) {
	ll, err := v.meanLogProb()
	if err != nil {
		return false, err
	}
	return v.es.observe(step, -ll), nil
}

// fullGrad computes ‖∇θ ℓ(X; θ)‖ over all of X in chunks of at most
// model.ChunkRows rows, summing the chunks' gradients in acc (which then
// holds ∇θ of the loss −ℓ, one tensor per parameter).
type fullGrad struct {
	be      native.Backend
	d       model.Density
	x       *native.Tensor
	acc     []*native.Tensor
	logp, w *native.Tensor
}

func newFullGrad(be native.Backend, d model.Density, x *native.Tensor) *fullGrad {
	f := &fullGrad{be: be, d: d, x: x}
	for _, p := range d.Params() {
		f.acc = append(f.acc, be.New(p.Grad.Rows(), p.Grad.Cols()))
	}
	n := min(x.Rows(), model.ChunkRows)
	f.logp, f.w = be.New(n, 1), be.New(n, 1)
	be.Fill(f.w, -1/float64(x.Rows()))
	return f
}

func (f *fullGrad) norm() (float64, error) {
	be, n := f.be, f.x.Rows()
	for lo := 0; lo < n; lo += model.ChunkRows {
		hi := min(lo+model.ChunkRows, n)
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

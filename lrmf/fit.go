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

// fits runs phase 1 of Align: θA* fitted to A, θB* to B, c_AB =
// ℓ(A; θA*) + ℓ(B; θB*), θS set to θA*, then the identity pre-fit of the
// flow when Config.IdentityPrefit (resolved) is positive.
func (r *run) fits(ctx context.Context, res *Result) error {
	be, f := r.be, r.fitter()
	var err error
	if res.FitStepsA, err = f.fit(ctx, "fit-A", res.DensityA, r.a); err != nil {
		return err
	}
	if res.FitStepsB, err = f.fit(ctx, "fit-B", res.DensityB, r.b); err != nil {
		return err
	}
	la, err := model.MeanLogProb(be, res.DensityA, r.a)
	if err != nil {
		return err
	}
	lb, err := model.MeanLogProb(be, res.DensityB, r.b)
	if err != nil {
		return err
	}
	res.CAB = la + lb
	model.CopyParams(be, res.Density.Params(), res.DensityA.Params())
	if r.cfg.IdentityPrefit > 0 {
		if res.PrefitSteps, res.PrefitMSE, err = r.prefit(ctx, res.Flow); err != nil {
			return err
		}
	}
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

// fit sets d to θX* = argmax_θ ℓ(X; θ) for the n×D data x and returns the
// number of gradient steps (0 for a closed-form fit). Gradient fits take
// Adam steps on −mean ln p over mini-batches of min(2b, n) rows, following
// the learning-rate schedule over FitSteps, and stop early when the
// gradient of the full-data log-likelihood, checked every fitCheckEvery
// steps, has norm below Tol.
func (f *fitter) fit(ctx context.Context, phase string, d model.Density, x *native.Tensor) (int, error) {
	o := f.opt
	if m, ok := d.(model.MLEFitter); ok && !o.GradientFit {
		if err := m.FitMLE(x); err != nil {
			return 0, fmt.Errorf("lrmf: fitting the density to %s: %w", phase[len(phase)-1:], err)
		}
		f.report(Progress{Phase: phase, Done: true})
		return 0, nil
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
		g := optim.GradNorm(be, d.Params())
		if !finite(loss, g) {
			return step - 1, fmt.Errorf("lrmf: %w while fitting %s at step %d (loss %v, gradient norm %v)", ErrDiverged, phase, step, loss, g)
		}
		if step%f.every == 0 {
			f.report(Progress{Phase: phase, Step: step, Steps: steps, Loss: loss, GradNorm: g})
		}
		if (step-1)%fitCheckEvery == 0 {
			// The mini-batch gradient is noisy; the convergence test uses
			// the full data.
			fg, err := full.norm()
			if err != nil {
				return step - 1, err
			}
			if fg < o.Tol {
				f.report(Progress{Phase: phase, Step: step - 1, Steps: steps, Loss: loss, GradNorm: fg, Done: true})
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
		optim.ClipGrad(be, d.Params(), g, o.ClipNorm)
		opt.LR = optim.ScheduledLR(o.Schedule, o.FitLR, step, steps)
		opt.Step()
	}
	f.report(Progress{Phase: phase, Step: steps, Steps: steps, Done: true})
	return steps, nil
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

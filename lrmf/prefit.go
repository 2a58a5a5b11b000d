package lrmf

import (
	"context"
	"fmt"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/optim"
)

// prefit takes Config.IdentityPrefit Adam steps (learning rate FitLR on the
// schedule) on mean‖T(x) − x‖² over mini-batches of A (b rows; loss and
// gradient per row and coordinate summed, averaged over rows) and returns
// the steps and the last loss; restart labels its progress reports.
func (r *run) prefit(ctx context.Context, t model.Flow, restart int) (int, float64, error) {
	const phase = "prefit"
	be, bsz, steps := r.be, r.cfg.Batch, r.cfg.IdentityPrefit
	s := newSampler(r.a.Rows(), bsz, r.rng)
	x, y, ld, dy, dld := be.New(bsz, r.dim), be.New(bsz, r.dim), be.New(bsz, 1), be.New(bsz, r.dim), be.New(bsz, 1)
	opt := optim.NewAdam(be, t.Params(), r.cfg.FitLR)
	loss := 0.0
	for step := 1; step <= steps; step++ {
		if err := ctx.Err(); err != nil {
			return step - 1, loss, err
		}
		be.GatherRows(x, r.a, s.next())
		be.Fill(ld, 0)
		if err := t.Forward(y, ld, x); err != nil {
			return step - 1, loss, fmt.Errorf("lrmf: %w at step %d of the identity pre-fit of the flow %s: %v", ErrDiverged, step, r.cfg.Flow.Kind, err)
		}
		// dy = 2(y − x)/b; loss = ‖y − x‖²/b.
		be.Copy(dy, y)
		be.Axpy(-1, x, dy)
		loss = be.Dot(dy, dy) / float64(bsz)
		be.Axpy(2/float64(bsz)-1, dy, dy) // dy ← 2·dy/b
		if err := t.Backward(nil, dy, dld); err != nil {
			return step - 1, loss, err
		}
		g := optim.GradNorm(be, t.Params())
		if !finite(loss, g) {
			return step - 1, loss, fmt.Errorf("lrmf: %w at step %d of the identity pre-fit of the flow %s: loss %v, gradient norm %v", ErrDiverged, step, r.cfg.Flow.Kind, loss, g)
		}
		if step%r.cfg.ProgressEvery == 0 {
			r.progress(Progress{Phase: phase, Restart: restart, Step: step, Steps: steps, Loss: loss, GradNorm: g})
		}
		optim.ClipGrad(be, t.Params(), g, r.cfg.ClipNorm)
		opt.LR = lrAt(r.cfg.Schedule, nil, r.cfg.FitLR, step, steps) // a fixed budget: Plateau means cosine
		opt.Step()
	}
	r.progress(Progress{Phase: phase, Restart: restart, Step: steps, Steps: steps, Loss: loss, Done: true})
	return steps, loss, nil
}

// initFlow gives a fresh flow t with a data-dependent initialisation
// (model.DataInitializer) that initialisation on one mini-batch of b rows
// of A's training part, drawn from the run's random stream; other flows are
// left as they are. It runs before the identity pre-fit and the joint
// phase of a fresh restart, never on a resumed one (the checkpoint holds
// the parameters).
func (r *run) initFlow(t model.Flow) error {
	di, ok := model.DataInitializerOf(t)
	if !ok {
		return nil
	}
	be, bsz := r.be, min(r.cfg.Batch, r.a.Rows())
	x := be.New(bsz, r.dim)
	be.GatherRows(x, r.a, newSampler(r.a.Rows(), bsz, r.rng).next())
	if err := di.InitFromData(x); err != nil {
		return fmt.Errorf("lrmf: initialising the flow %s from data: %w", r.cfg.Flow.Kind, err)
	}
	return nil
}

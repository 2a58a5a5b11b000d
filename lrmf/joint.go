package lrmf

import (
	"context"
	"errors"
	"fmt"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/optim"
	"github.com/lrmf-go/lrmf/native"
)

// jointState holds phase 2's buffers, all allocated before the first step:
// θS sees the density terms of one batch of T(A) and one of B, evaluated
// together as a single 2b-row batch [T(A_b); B_b]; φ sees ℓ(T(A)) and the
// log-det.
type jointState struct {
	r               *run
	flow            model.Flow
	dens            model.Density
	cab             float64
	sa, sb          *sampler
	xa, s, y, sB    *native.Tensor
	ds, dy          *native.Tensor
	logdet, dlogdet *native.Tensor
	logp, dlogp     *native.Tensor
	opt             *optim.Adam
	inv             float64
}

func (r *run) newJoint(flow model.Flow, dens model.Density, cab float64) *jointState {
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
	params := append(append([]*model.Param{}, flow.Params()...), dens.Params()...)
	j.opt = optim.NewAdam(be, params, r.cfg.LR)
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
	p := Point{Step: step, Loss: loss, GradT: optim.GradNorm(be, j.flow.Params()), GradS: optim.GradNorm(be, j.dens.Params())}
	if !finite(p.Loss, p.GradT, p.GradS) {
		return p, fmt.Errorf("lrmf: %w at step %d: loss %v, ‖g_T‖ = %v, ‖g_S‖ = %v", ErrDiverged, step, p.Loss, p.GradT, p.GradS)
	}
	return p, nil
}

// update applies the optimiser step for step, clipping each model's
// gradient to Config.ClipNorm first (p holds the norms).
func (j *jointState) update(step int, p Point) {
	be, cfg := j.r.be, &j.r.cfg
	optim.ClipGrad(be, j.flow.Params(), p.GradT, cfg.ClipNorm)
	optim.ClipGrad(be, j.dens.Params(), p.GradS, cfg.ClipNorm)
	j.opt.LR = optim.ScheduledLR(cfg.Schedule, cfg.LR, step, cfg.Steps)
	j.opt.Step()
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

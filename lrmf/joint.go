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
	es              *earlyStop // the validation's (nil: none), for the Plateau schedule
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
	// The model's name is built on failure only: a step allocates nothing.
	fail := func(inFlow bool, err error) (Point, error) {
		return Point{Step: step}, fmt.Errorf("lrmf: %w at step %d of the joint phase, in the %s: %v", ErrDiverged, step, j.modelName(inFlow), err)
	}
	if err := j.flow.Forward(j.y, j.logdet, j.xa); err != nil {
		return fail(true, err)
	}
	if err := j.dens.LogProb(j.logp, j.s); err != nil {
		return fail(false, err)
	}
	loss := j.cab + j.inv*(be.Sum(j.logp)+be.Sum(j.logdet))
	if err := j.dens.Backward(j.ds, j.dlogp); err != nil {
		return fail(false, err)
	}
	if err := j.flow.Backward(nil, j.dy, j.dlogdet); err != nil {
		return fail(true, err)
	}
	p := Point{Step: step, Loss: loss, GradT: optim.GradNorm(be, j.flow.Params()), GradS: optim.GradNorm(be, j.dens.Params())}
	if !finite(p.Loss, p.GradT, p.GradS) {
		return p, fmt.Errorf("lrmf: %w at step %d of the joint phase, in the %s: loss %v, ‖g_T‖ = %v, ‖g_S‖ = %v", ErrDiverged, step, j.modelName(j.culprit()), p.Loss, p.GradT, p.GradS)
	}
	return p, nil
}

// modelName returns "flow KIND" or "density θS (KIND)".
func (j *jointState) modelName(flow bool) string {
	if flow {
		return "flow " + j.r.cfg.Flow.Kind
	}
	return "density θS (" + j.r.cfg.Density.Kind + ")"
}

// culprit reports whether the non-finite values of a step began in the
// flow (else in θS), following the computation: T's output and log-det,
// then θS's log-densities of finite inputs, then the gradients (θS's
// backward pass runs first).
func (j *jointState) culprit() (flow bool) {
	be := j.r.be
	switch {
	case !finite(be.Sum(j.y), be.Sum(j.logdet)):
		return true
	case !finite(be.Sum(j.logp)):
		return false
	case !finite(optim.GradNorm(be, j.dens.Params()), be.Sum(j.ds)):
		return false
	}
	return true
}

// update applies the optimiser step for step, clipping each model's
// gradient to Config.ClipNorm first (p holds the norms).
func (j *jointState) update(step int, p Point) {
	be, cfg := j.r.be, &j.r.cfg
	optim.ClipGrad(be, j.flow.Params(), p.GradT, cfg.ClipNorm)
	optim.ClipGrad(be, j.dens.Params(), p.GradS, cfg.ClipNorm)
	j.opt.LR = lrAt(cfg.Schedule, j.es, cfg.LR, step, cfg.Steps)
	j.opt.Step()
}

// jointValidation evaluates the validation LRMF of the current (φ, θS),
// the trimmed means (FitOptions.Trim) of the per-row terms
//
//	u_i = ln pA(a_i) − ln pS(T(a_i)) − ln|det ∇T(a_i)| over A_val,
//	v_j = ln pB(b_j) − ln pS(b_j) over B_val,
//
// through the joint phase's own buffers (b rows of A, 2b rows for θS), in
// chunks of b rows, so that it allocates nothing after its construction.
// ln pA, ln pB per validation row are computed once, after the fits.
type jointValidation struct {
	j        *jointState
	av, bv   *native.Tensor
	lpA, lpB []float64 // ln pA*(a), ln pB*(b) per validation row (shared, read-only)
	u, w     []float64 // the per-row terms
	trim     float64
	ra, rb   *rowCycler
	lp, ld   []float64 // one chunk's ln pS and log-det
	es       *earlyStop
}

func (j *jointState) newValidation(av, bv *native.Tensor, lpA, lpB []float64, patience int, trim float64) *jointValidation {
	bsz := j.xa.Rows()
	params := append(append([]*model.Param{}, j.flow.Params()...), j.dens.Params()...)
	v := &jointValidation{j: j, av: av, bv: bv, lpA: lpA, lpB: lpB, u: make([]float64, av.Rows()), w: make([]float64, bv.Rows()), trim: trim,
		ra: newRowCycler(av.Rows(), bsz), rb: newRowCycler(bv.Rows(), bsz),
		lp: make([]float64, 2*bsz), ld: make([]float64, bsz), es: newEarlyStop(j.r.be, params, patience)}
	j.es = v.es
	return v
}

// lrmf returns the validation LRMF.
func (v *jointValidation) lrmf() (float64, error) {
	j := v.j
	be, bsz := j.r.be, j.xa.Rows()
	model.Inference(j.flow, true)
	model.Inference(j.dens, true)
	defer model.Inference(j.flow, false)
	defer model.Inference(j.dens, false)
	for k := range max(v.ra.chunks(), v.rb.chunks()) {
		ia, na := v.ra.at(k)
		ib, nb := v.rb.at(k)
		be.GatherRows(j.xa, v.av, ia)
		be.GatherRows(j.sB, v.bv, ib)
		be.Fill(j.logdet, 0)
		if err := j.flow.Forward(j.y, j.logdet, j.xa); err != nil {
			return 0, err
		}
		if err := j.dens.LogProb(j.logp, j.s); err != nil {
			return 0, err
		}
		be.Download(v.lp, j.logp)
		be.Download(v.ld, j.logdet)
		for i := range na {
			row := k*bsz + i
			v.u[row] = v.lpA[row] - v.lp[i] - v.ld[i]
		}
		for i := range nb {
			row := k*bsz + i
			v.w[row] = v.lpB[row] - v.lp[bsz+i]
		}
	}
	return trimmedMean(v.u, v.trim) + trimmedMean(v.w, v.trim), nil
}

// eval evaluates the validation LRMF after step and reports whether
// patience ran out.
func (v *jointValidation) eval(step int) (bool, error) {
	l, err := v.lrmf()
	if err != nil {
		return false, err
	}
	return v.es.observe(step, l), nil
}

// restartRun is one restart's joint phase: its models, how it ended and,
// with Restarts > 1, its own evaluation.
type restartRun struct {
	index       int
	seed        uint64
	flow        model.Flow
	dens        model.Density // θS
	prefitSteps int
	prefitMSE   float64
	history     []Point
	phase       PhaseReport
	seconds     float64
	// Set after the phase with Restarts > 1: the held-out estimate (the
	// training one when Holdout < 0), the selection value (the best
	// validation LRMF, or the training LRMF without a validation part) and
	// the final snapshot when checkpointing.
	est       Estimate
	selection float64
	ck        *Checkpoint
	err       error // ErrDiverged (wrapped) when the restart diverged
	// The trained T and θS, downloaded, and their solver work.
	hostFlow, hostDens [][]float64
	solver             restartSolver
}

// joint runs phase 2 for one restart until the tolerance, patience or the
// budget stops it, then restores the best validated parameters.
func (r *run) joint(ctx context.Context, rr *restartRun, res *Result) error {
	cfg := r.cfg
	j := r.newJoint(rr.flow, rr.dens, r.cab)
	var val *jointValidation
	if r.av != nil {
		val = j.newValidation(r.av, r.bv, r.lpAVal, r.lpBVal, cfg.Patience, cfg.Trim)
	}
	rr.history = make([]Point, 0, min(cfg.Steps, 1<<16))
	first := 1
	if ck := cfg.Resume; ck != nil {
		if err := r.restoreJoint(ck, j, val, rr); err != nil {
			return err
		}
		first = ck.meta.Step + 1
	}
	// With Restarts > 1 only the final state is kept (rr.ck); Align passes
	// the chosen restart's on.
	save := func(step int, final bool) error {
		if cfg.Checkpoint == nil || step == 0 || (cfg.Restarts > 1 && !final) {
			return nil
		}
		ck, err := r.snapshot(rr, j, val, step)
		if err != nil {
			return err
		}
		if cfg.Restarts > 1 {
			rr.ck = ck
			return nil
		}
		r.addFitted(ck, res)
		if err := cfg.Checkpoint(ck); err != nil {
			return fmt.Errorf("lrmf: saving the checkpoint at step %d: %w", step, err)
		}
		return nil
	}
	rp := &rr.phase
	if rp.StoppedBy == "" {
		rp.StoppedBy = "budget"
	}
	for step := first; step <= cfg.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, save(step-1, false))
		}
		p, err := j.grad(step)
		if err != nil {
			return err
		}
		rp.Steps = step
		rr.history = append(rr.history, p)
		if step%cfg.ProgressEvery == 0 {
			r.progress(Progress{Phase: "joint", Restart: rr.index, Step: step, Steps: cfg.Steps, Loss: p.Loss, GradNorm: p.GradT + p.GradS})
		}
		if p.GradT+p.GradS < cfg.Tol {
			rp.StoppedBy = "tolerance"
			break
		}
		j.update(step, p)
		if val != nil && step%cfg.EvalEvery == 0 {
			stop, err := val.eval(step)
			if err != nil {
				return fmt.Errorf("lrmf: %w at step %d of the joint phase, evaluating the flow %s and density θS (%s) on the validation rows: %v", ErrDiverged, step, cfg.Flow.Kind, cfg.Density.Kind, err)
			}
			if stop {
				rp.StoppedBy = "patience"
				break
			}
		}
		if cfg.CheckpointEvery > 0 && step%cfg.CheckpointEvery == 0 && step < cfg.Steps {
			if err := save(step, false); err != nil {
				return err
			}
		}
	}
	if val != nil {
		if val.es.evals > 0 && val.es.lastStep != rp.Steps {
			if _, err := val.eval(rp.Steps); err != nil {
				return fmt.Errorf("lrmf: %w at step %d of the joint phase, evaluating the flow %s and density θS (%s) on the validation rows: %v", ErrDiverged, rp.Steps, cfg.Flow.Kind, cfg.Density.Kind, err)
			}
		}
		val.es.restore()
		val.es.report(rp, 1)
	}
	if len(rr.history) > 0 {
		last := rr.history[len(rr.history)-1]
		r.progress(Progress{Phase: "joint", Restart: rr.index, Step: rp.Steps, Steps: cfg.Steps, Loss: last.Loss, GradNorm: last.GradT + last.GradS, Done: true})
	}
	return save(rp.Steps, true)
}

package lrmf

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/optim"
	"github.com/lrmf-go/lrmf/native"
)

// JointOptions configure JointPhase. A zero field selects the default in
// its comment.
type JointOptions struct {
	Steps    int     // joint steps (required, positive)
	Batch    int     // rows of A and of B per step; θS sees 2·Batch (required, ≤ both sets' rows)
	LR       float64 // Adam's rate (required, positive)
	Schedule string  // optim.Cosine (default) or optim.Constant
	ClipNorm float64 // per-model gradient-norm cap (default 10; negative: none)
	Seed     uint64  // the batch order (default 1)
	// FlowName and DensityName name the models in errors (default "given").
	FlowName, DensityName string
	// Progress, if not nil, is called after every step's gradient with its
	// Point (the mini-batch LRMF before the update).
	Progress func(Point)
}

// JointPhase runs LRMF's joint phase (Algorithm 1, step 2, the step Align
// takes) on models the caller built and initialised: each step draws
// Batch rows a_b of a (nA×D) and b_b of b (nB×D), evaluates the mini-batch
//
//	LRMF = cab − mean ln pS(T(a_b)) − mean ln pS(b_b) − mean ln|det ∇T(a_b)|
//
// with θS = dens on the 2·Batch rows [T(a_b); b_b], and takes one Adam step
// on (φ, θS) after clipping each model's gradient. It returns every step's
// Point. There is no split, validation, early stopping or evaluation:
// Align does those for the models it builds and fits itself; JointPhase is
// for experiments whose T or θS is assembled from models fitted elsewhere
// (the GLOW digits' back-to-back T = G_A⁻¹∘G_B). A non-finite loss or
// gradient returns the points so far and an error wrapping ErrDiverged.
func JointPhase(ctx context.Context, be native.Backend, a, b *native.Tensor, flow model.Flow, dens model.Density, cab float64, o JointOptions) (pts []Point, err error) {
	defer native.RecoverDeviceError(&err)
	switch d := flow.Dim(); {
	case a.Cols() != d || b.Cols() != d || dens.Dim() != d:
		return nil, fmt.Errorf("lrmf: JointPhase: A is %d-dimensional, B %d, the flow %d, the density %d", a.Cols(), b.Cols(), d, dens.Dim())
	case o.Steps < 1 || o.Batch < 1 || o.Batch > a.Rows() || o.Batch > b.Rows():
		return nil, fmt.Errorf("lrmf: JointPhase: steps %d and batch %d must be positive, the batch at most the %d rows of A and %d of B", o.Steps, o.Batch, a.Rows(), b.Rows())
	case !(o.LR > 0):
		return nil, fmt.Errorf("lrmf: JointPhase: learning rate %v must be positive", o.LR)
	}
	cfg := Config{Steps: o.Steps, LR: o.LR,
		Flow: model.ModelSpec{Kind: cmp.Or(o.FlowName, "given")}, Density: model.ModelSpec{Kind: cmp.Or(o.DensityName, "given")},
		FitOptions: FitOptions{Batch: o.Batch, Schedule: cmp.Or(o.Schedule, optim.Cosine), ClipNorm: cmp.Or(o.ClipNorm, 10)}}
	if !optim.IsSchedule(cfg.Schedule) {
		return nil, fmt.Errorf("lrmf: JointPhase: schedule %q: want %q or %q", cfg.Schedule, optim.Cosine, optim.Constant)
	}
	pcg := rand.NewPCG(cmp.Or(o.Seed, 1), 0x6c726d66)
	r := &run{cfg: cfg, be: be, pcg: pcg, rng: rand.New(pcg), dim: flow.Dim(), a: a, b: b}
	j := r.newJoint(flow, dens, cab)
	pts = make([]Point, 0, o.Steps)
	for step := 1; step <= o.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return pts, err
		}
		p, err := j.grad(step)
		if err != nil {
			return pts, err
		}
		pts = append(pts, p)
		if o.Progress != nil {
			o.Progress(p)
		}
		j.update(step, p)
	}
	return pts, nil
}

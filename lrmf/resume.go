package lrmf

import (
	"fmt"

	"github.com/lrmf-go/lrmf/lrmf/model"
)

// The state a Checkpoint saves and Config.Resume restores: snapshot
// captures a run after some joint steps; restoreModels and restoreJoint put
// it back, so the resumed run continues bit-identically.

// snapshot captures the run after `step` completed joint steps.
func (r *run) snapshot(res *Result, j *jointState, step int) (*Checkpoint, error) {
	rng, err := r.pcg.MarshalBinary()
	if err != nil {
		return nil, err
	}
	cfg := r.cfg
	cfg.Backend, cfg.NewFlow, cfg.NewDensity, cfg.Checkpoint, cfg.Resume, cfg.Progress = nil, nil, nil, nil, nil, nil
	m, v := j.opt.Moments()
	c := &Checkpoint{tensors: map[string][]float64{}}
	c.meta = checkpointMeta{
		Version: CheckpointVersion, Config: cfg, Backend: r.be.Name(), DType: r.be.DType().String(), Dim: r.dim, RowsA: r.a.Rows(), RowsB: r.b.Rows(),
		DataHash: r.hash, Step: step, FitStepsA: res.FitStepsA, FitStepsB: res.FitStepsB, CAB: res.CAB,
		AdamT: j.opt.Steps(), RNG: rng,
		SamplerA: samplerState{Perm: append([]int32(nil), j.sa.perm...), Pos: j.sa.pos},
		SamplerB: samplerState{Perm: append([]int32(nil), j.sb.perm...), Pos: j.sb.pos},
		History:  append([]Point(nil), res.History[:min(step, len(res.History))]...),
	}
	be := r.be
	c.addParams(be, "flow/", res.Flow.Params())
	c.addParams(be, "S/", res.Density.Params())
	c.addParams(be, "A/", res.DensityA.Params())
	c.addParams(be, "B/", res.DensityB.Params())
	for i := range m {
		c.addTensor(be, fmt.Sprintf("adam.m/%d", i), m[i])
		c.addTensor(be, fmt.Sprintf("adam.v/%d", i), v[i])
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
		ps     []*model.Param
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
	meta := ck.meta
	m, v := j.opt.Moments()
	for i := range m {
		if err := ck.loadTensor(r.be, fmt.Sprintf("adam.m/%d", i), m[i]); err != nil {
			return err
		}
		if err := ck.loadTensor(r.be, fmt.Sprintf("adam.v/%d", i), v[i]); err != nil {
			return err
		}
	}
	j.opt.SetSteps(meta.AdamT)
	for _, s := range []struct {
		dst *sampler
		src samplerState
	}{{j.sa, meta.SamplerA}, {j.sb, meta.SamplerB}} {
		if len(s.src.Perm) != len(s.dst.perm) || s.src.Pos < 0 || s.src.Pos > len(s.dst.perm) {
			return fmt.Errorf("lrmf: %w: batch-sampler state does not fit the data", ErrBadCheckpoint)
		}
		copy(s.dst.perm, s.src.Perm)
		s.dst.pos = s.src.Pos
	}
	if err := r.pcg.UnmarshalBinary(meta.RNG); err != nil {
		return fmt.Errorf("lrmf: %w: RNG state: %v", ErrBadCheckpoint, err)
	}
	res.History = append(res.History, meta.History...)
	res.Steps = meta.Step
	return nil
}

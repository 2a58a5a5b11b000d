package lrmf

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/lrmf-go/lrmf/lrmf/model"
)

// The state a Checkpoint saves and Config.Resume restores: snapshot
// captures a restart's joint phase after some steps and addFitted the
// fitted θA*, θB*; restoreModels and restoreJoint put it back, so the
// resumed run continues bit-identically.

// snapshot captures restart rr after `step` completed joint steps: its
// models, optimiser, batch order, random state, history and early-stopping
// state (val nil: no validation part).
func (r *run) snapshot(rr *restartRun, j *jointState, val *jointValidation, step int) (*Checkpoint, error) {
	rng, err := r.pcg.MarshalBinary()
	if err != nil {
		return nil, err
	}
	cfg := r.cfg
	cfg.Backend, cfg.NewFlow, cfg.NewDensity, cfg.Checkpoint, cfg.Resume, cfg.Progress = nil, nil, nil, nil, nil, nil
	m, v := j.opt.Moments()
	c := &Checkpoint{tensors: map[string][]float64{}}
	c.meta = checkpointMeta{
		Version: CheckpointVersion, Config: cfg, Backend: r.be.Name(), DType: r.be.DType().String(), Dim: r.dim,
		Step: step, CAB: r.cab, AdamT: j.opt.Steps(), RNG: rng,
		SamplerA:    samplerState{Perm: append([]int32(nil), j.sa.perm...), Pos: j.sa.pos},
		SamplerB:    samplerState{Perm: append([]int32(nil), j.sb.perm...), Pos: j.sb.pos},
		History:     append([]Point(nil), rr.history[:min(step, len(rr.history))]...),
		Restart:     rr.index,
		RestartSeed: rr.seed,
		PrefitSteps: rr.prefitSteps, PrefitMSE: rr.prefitMSE,
	}
	be := r.be
	c.addParams(be, "flow/", rr.flow.Params())
	c.addParams(be, "S/", rr.dens.Params())
	for i := range m {
		c.addTensor(be, fmt.Sprintf("adam.m/%d", i), m[i])
		c.addTensor(be, fmt.Sprintf("adam.v/%d", i), v[i])
	}
	if val != nil {
		c.addHost("val/lpA", r.lpAVal)
		c.addHost("val/lpB", r.lpBVal)
		st := val.es.state()
		c.meta.EarlyStop = &st
		for i, t := range val.es.best {
			c.addTensor(be, fmt.Sprintf("best/%d", i), t)
		}
	}
	return c, nil
}

// addFitted records the fitted θA*, θB* (on the run's backend), how their
// fits ended and the data's shape and fingerprint.
func (r *run) addFitted(c *Checkpoint, res *Result) {
	c.meta.RowsA, c.meta.RowsB, c.meta.DataHash = r.fullA.Rows(), r.fullB.Rows(), r.hash
	c.meta.FitStepsA, c.meta.FitStepsB, c.meta.FitA, c.meta.FitB = res.FitStepsA, res.FitStepsB, res.FitA, res.FitB
	c.addParams(r.be, "A/", res.DensityA.Params())
	c.addParams(r.be, "B/", res.DensityB.Params())
}

// restoreModels loads θA*, θB*, θS, the flow and c_AB from ck after checking
// that it belongs to this run's data, models and split.
func (r *run) restoreModels(ck *Checkpoint, res *Result) error {
	m, cfg := ck.meta, r.cfg
	switch {
	case m.Version < 2:
		return fmt.Errorf("lrmf: the checkpoint was saved by an older lrmf (format %d, before the held-out split): lrmf apply can use it, a run cannot resume from it", m.Version)
	case m.Dim != r.dim || m.RowsA != r.fullA.Rows() || m.RowsB != r.fullB.Rows():
		return fmt.Errorf("lrmf: the checkpoint was saved for data of %d+%d rows × %d columns, these are %d+%d × %d",
			m.RowsA, m.RowsB, m.Dim, r.fullA.Rows(), r.fullB.Rows(), r.dim)
	case m.DataHash != r.hash:
		return fmt.Errorf("lrmf: the checkpoint was saved for other data (same shape, different values)")
	case m.Config.Flow.Normalized() != cfg.Flow || m.Config.Density.Normalized() != cfg.Density:
		return fmt.Errorf("lrmf: the checkpoint holds another model than the run asks for (%s)",
			strings.Join(append(specDiff("flow", m.Config.Flow.Normalized(), cfg.Flow), specDiff("density", m.Config.Density.Normalized(), cfg.Density)...), "; "))
	case m.Config.Batch != cfg.Batch:
		return fmt.Errorf("lrmf: the checkpoint was saved with Batch = %d, the run asks for %d", m.Config.Batch, cfg.Batch)
	case m.Config.Holdout != cfg.Holdout || m.Config.Validation != cfg.Validation || m.Config.Seed != cfg.Seed:
		return fmt.Errorf("lrmf: the checkpoint was saved with Holdout = %v, Validation = %v, Seed = %d (the split), the run asks for %v, %v, %d",
			m.Config.Holdout, m.Config.Validation, m.Config.Seed, cfg.Holdout, cfg.Validation, cfg.Seed)
	case m.Config.Restarts > 1:
		return fmt.Errorf("lrmf: the checkpoint holds the chosen restart of a run with %d restarts: lrmf apply can use it, a run cannot resume from it", m.Config.Restarts)
	case m.Step > cfg.Steps:
		return fmt.Errorf("lrmf: the checkpoint is at step %d, beyond Steps = %d", m.Step, cfg.Steps)
	}
	be := r.be
	var err error
	for _, p := range []struct {
		prefix string
		ps     []*model.Param
	}{{"flow/", res.Flow.Params()}, {"S/", res.Density.Params()}, {"A/", res.DensityA.Params()}, {"B/", res.DensityB.Params()}} {
		if err = ck.loadParams(be, p.prefix, p.ps); err != nil {
			return err
		}
	}
	r.cab = m.CAB
	if r.av != nil {
		if r.lpAVal, err = ck.host("val/lpA", r.av.Rows()); err != nil {
			return err
		}
		if r.lpBVal, err = ck.host("val/lpB", r.bv.Rows()); err != nil {
			return err
		}
	}
	res.FitStepsA, res.FitStepsB, res.FitA, res.FitB = m.FitStepsA, m.FitStepsB, m.FitA, m.FitB
	return nil
}

// restoreJoint loads the optimiser, batch samplers, RNG, history and
// early-stopping state into the joint phase of restart rr.
func (r *run) restoreJoint(ck *Checkpoint, j *jointState, val *jointValidation, rr *restartRun) error {
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
	if (val != nil) != (meta.EarlyStop != nil) {
		return fmt.Errorf("lrmf: %w: early-stopping state does not match the validation part", ErrBadCheckpoint)
	}
	if val != nil {
		val.es.setState(*meta.EarlyStop)
		for i, t := range val.es.best {
			if err := ck.loadTensor(r.be, fmt.Sprintf("best/%d", i), t); err != nil {
				return err
			}
		}
	}
	if err := r.pcg.UnmarshalBinary(meta.RNG); err != nil {
		return fmt.Errorf("lrmf: %w: RNG state: %v", ErrBadCheckpoint, err)
	}
	rr.history = append(rr.history, meta.History...)
	rr.phase.Steps = meta.Step
	return nil
}

// specDiff lists the fields in which the saved spec differs from the asked
// one, as "which field: saved (checkpoint) vs asked (run)", fields named as
// in JSON.
func specDiff(which string, saved, asked model.ModelSpec) []string {
	var out []string
	sv, av, t := reflect.ValueOf(saved), reflect.ValueOf(asked), reflect.TypeOf(saved)
	for i := range t.NumField() {
		if sf, af := sv.Field(i).Interface(), av.Field(i).Interface(); sf != af {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			out = append(out, fmt.Sprintf("%s %s: %v (checkpoint) vs %v (run)", which, name, sf, af))
		}
	}
	return out
}

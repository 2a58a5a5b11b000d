package lrmf

import (
	"testing"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// A Glow run resumed from its checkpoint ends bit-identical to the
// uninterrupted run: the data-initialised ActNorm layers of θA*, θB* and θS
// keep the checkpoint's values instead of re-initialising on the resumed
// run's first batch.
func TestResumeIsBitIdenticalGlow(t *testing.T) {
	testResume(t, func(be native.Backend) Config {
		o := model.ModelSpec{Kind: "glow", Blocks: 2, Hidden: 8}
		return Config{Backend: be, Flow: o, Density: o, Steps: 60, LR: 1e-3, Seed: 7, Restarts: 1, FitOptions: FitOptions{FitSteps: 30, Batch: 64}}
	})
}

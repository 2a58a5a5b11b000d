package tests

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FFJORD LRMF — FFJORD flow and FFJORD density (2 transforms of [16, 16, 16]
// tanh, Dormand–Prince at atol = rtol = 1e-5, exact trace, identity pre-fit)
// — on the built-in moons pair must align it as Real NVP does: |LRMF| < 0.1
// nats on the full data, reported as converged (so not undershot: c_AB is
// not under-fitted by more than δ), with every point kept on its own arm
// (arm accuracy ≥ 0.9). 1000 fit steps per density and 1000 joint steps of
// batch 128: about 2 minutes on 2 cores, so -short skips it.
func TestFFJORDAlignMoons(t *testing.T) {
	if testing.Short() {
		t.Skip("the FFJORD run takes minutes; skipped with -short")
	}
	raw := alignReport(t, "--flow", "ffjord", "--density", "ffjord", "--steps", "1000", "--fit-steps", "1000", "--batch", "128", "--quiet")
	var rep struct {
		Status      string  `json:"status"`
		LRMF        float64 `json:"lrmf"`
		CAB         float64 `json:"c_ab"`
		ArmAccuracy float64 `json:"arm_accuracy"`
		PrefitSteps int     `json:"prefit_steps"`
		PrefitMSE   float64 `json:"prefit_mse"`
		Seconds     float64 `json:"seconds"`
		NFE         struct {
			Flow struct {
				Forward float64 `json:"forward_per_row"`
			} `json:"flow"`
		} `json:"nfe"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))
	assert.Equal(t, "converged", rep.Status)
	assert.Less(t, math.Abs(rep.LRMF), 0.1)
	assert.GreaterOrEqual(t, rep.ArmAccuracy, 0.9)
	// The pre-fit brought T to the identity before the joint phase.
	assert.Equal(t, 500, rep.PrefitSteps)
	assert.Less(t, rep.PrefitMSE, 1e-3)
	// Dormand–Prince takes 6 evaluations per step plus the first: a solve
	// that needed no step at all would be a bug.
	assert.Greater(t, rep.NFE.Flow.Forward, 6.0)
	t.Logf("FFJORD run: LRMF %.4f, c_AB %.4f, arm accuracy %.4f, NFE/row %.1f, %.1f s", rep.LRMF, rep.CAB, rep.ArmAccuracy, rep.NFE.Flow.Forward, rep.Seconds)
}

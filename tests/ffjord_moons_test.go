package tests

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FFJORD LRMF — FFJORD flow and FFJORD density (2 transforms of [16, 16, 16]
// tanh, Dormand–Prince at atol = rtol = 1e-5, exact trace, identity pre-fit)
// — on the built-in moons pair, with FFJORD's defaults (at most 1000 fit
// steps per density and 1000 joint steps of batch 128, one restart), must
// align it as far as the density family can see (the held-out LRMF's upper
// 95% bound below δ = 0.1 nats), keep every point on its own arm (arm
// accuracy ≥ 0.9) and give the verdict its two-sample test implies (see
// assertVerdictFollowsTest; at seed 1 the test rejects, p = 0.012:
// distinguishable). About 2 to 3 minutes on 2 cores, so -short skips it.
func TestFFJORDAlignMoons(t *testing.T) {
	if testing.Short() {
		t.Skip("the FFJORD run takes minutes; skipped with -short")
	}
	raw, code := alignReport(t, "--flow", "ffjord", "--density", "ffjord", "--quiet")
	var rep struct {
		Status      string  `json:"status"`
		LRMF        float64 `json:"lrmf"`
		LRMFSE      float64 `json:"lrmf_se"`
		UpperBound  float64 `json:"upper_bound"`
		CAB         float64 `json:"c_ab"`
		ArmAccuracy float64 `json:"arm_accuracy"`
		PrefitSteps int     `json:"prefit_steps"`
		PrefitMSE   float64 `json:"prefit_mse"`
		Seconds     float64 `json:"seconds"`
		TwoSample   struct {
			P float64 `json:"p"`
		} `json:"two_sample"`
		Config struct {
			Steps    int `json:"steps"`
			FitSteps int `json:"fit_steps"`
			Batch    int `json:"batch"`
		} `json:"config"`
		NFE struct {
			Flow struct {
				Forward float64 `json:"forward_per_row"`
			} `json:"flow"`
		} `json:"nfe"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))
	assertVerdictFollowsTest(t, rep.Status, code, rep.UpperBound, rep.TwoSample.P, rep.ArmAccuracy)
	// FFJORD's budgets came from the defaults table.
	assert.Equal(t, [3]int{1000, 1000, 128}, [3]int{rep.Config.Steps, rep.Config.FitSteps, rep.Config.Batch})
	// The pre-fit brought T to the identity before the joint phase.
	assert.Equal(t, 500, rep.PrefitSteps)
	assert.Less(t, rep.PrefitMSE, 1e-3)
	// Dormand–Prince takes 6 evaluations per step plus the first: a solve
	// that needed no step at all would be a bug.
	assert.Greater(t, rep.NFE.Flow.Forward, 6.0)
	t.Logf("FFJORD run: %s, held-out LRMF %.4f ± %.4f, MMD p %.3f, c_AB %.4f, arm accuracy %.4f, NFE/row %.1f, %.1f s",
		rep.Status, rep.LRMF, rep.LRMFSE, rep.TwoSample.P, rep.CAB, rep.ArmAccuracy, rep.NFE.Flow.Forward, rep.Seconds)
}

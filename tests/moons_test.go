package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The default `lrmf align` — Real NVP flow and density on the built-in moons
// pair, two restarts — must align the pair and say so: converged, which
// needs the held-out LRMF's upper 95% bound below δ = 0.1 nats and the
// two-sample test of T(A) against B on the held-out points not to reject
// (p > 0.05); and keep each point on its own moon arm (arm accuracy ≥ 0.9).
// It builds and runs the real command, as the README tells users to; it
// takes one to two minutes on 2 cores, so -short skips it.
func TestDefaultAlignMoons(t *testing.T) {
	if testing.Short() {
		t.Skip("the default run takes one to two minutes; skipped with -short")
	}
	raw := alignReport(t, "--quiet")
	var rep struct {
		Status      string  `json:"status"`
		Converged   bool    `json:"converged"`
		LRMF        float64 `json:"lrmf"`
		LRMFSE      float64 `json:"lrmf_se"`
		UpperBound  float64 `json:"upper_bound"`
		LRMFTrain   float64 `json:"lrmf_train"`
		ArmAccuracy float64 `json:"arm_accuracy"`
		Seconds     float64 `json:"seconds"`
		HeldOut     struct {
			RowsA int `json:"rows_a"`
			RowsB int `json:"rows_b"`
		} `json:"held_out"`
		TwoSample struct {
			P float64 `json:"p"`
		} `json:"two_sample"`
		Restarts []struct{} `json:"restarts"`
		Config   struct {
			Flow struct {
				Kind string `json:"kind"`
			} `json:"flow"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))
	assert.Equal(t, "realnvp", rep.Config.Flow.Kind)
	assert.Equal(t, "converged", rep.Status)
	assert.True(t, rep.Converged)
	assert.Equal(t, [2]int{400, 400}, [2]int{rep.HeldOut.RowsA, rep.HeldOut.RowsB})
	assert.Greater(t, rep.LRMFSE, 0.0)
	assert.Less(t, rep.UpperBound, 0.1)
	assert.Greater(t, rep.TwoSample.P, 0.05)
	assert.GreaterOrEqual(t, rep.ArmAccuracy, 0.9)
	assert.Len(t, rep.Restarts, 2)
	t.Logf("default run: held-out LRMF %.4f ± %.4f (training %.4f), MMD p %.3f, arm accuracy %.4f, %.1f s",
		rep.LRMF, rep.LRMFSE, rep.LRMFTrain, rep.TwoSample.P, rep.ArmAccuracy, rep.Seconds)
}

// alignReport builds the lrmf command as a user would, runs lrmf align with
// args (and a fresh --out), requires exit status 0 (converged) and returns
// report.json.
func alignReport(t *testing.T, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "lrmf")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/lrmf").CombinedOutput()
	require.NoError(t, err, "%s", out)
	outDir := filepath.Join(dir, "out")
	out, err = exec.Command(bin, append([]string{"align", "--out", outDir}, args...)...).CombinedOutput()
	t.Logf("%s", out)
	require.NoError(t, err, "lrmf align exited with %v", err)
	raw, err := os.ReadFile(filepath.Join(outDir, "report.json"))
	require.NoError(t, err)
	return raw
}

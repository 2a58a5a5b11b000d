package tests

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The default `lrmf align` — Real NVP flow and density on the built-in moons
// pair — must align the pair (|LRMF| < 0.1 nats on the full data, reported as
// converged) and keep each point on its own moon arm (arm accuracy ≥ 0.9).
// It builds and runs the real command, as the README tells users to; it
// takes about a minute on 2 cores, so -short skips it.
func TestDefaultAlignMoons(t *testing.T) {
	if testing.Short() {
		t.Skip("the default run takes about a minute; skipped with -short")
	}
	raw := alignReport(t, "--quiet")
	var rep struct {
		Converged   bool    `json:"converged"`
		LRMF        float64 `json:"lrmf"`
		ArmAccuracy float64 `json:"arm_accuracy"`
		Seconds     float64 `json:"seconds"`
		Config      struct {
			Flow struct {
				Kind string `json:"kind"`
			} `json:"flow"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))
	assert.Equal(t, "realnvp", rep.Config.Flow.Kind)
	assert.True(t, rep.Converged)
	assert.Less(t, math.Abs(rep.LRMF), 0.1)
	assert.GreaterOrEqual(t, rep.ArmAccuracy, 0.9)
	t.Logf("default run: LRMF %.4f, arm accuracy %.4f, %.1f s", rep.LRMF, rep.ArmAccuracy, rep.Seconds)
}

// alignReport builds the lrmf command as a user would, runs lrmf align with
// args (and a fresh --out), requires exit status 0 and returns report.json.
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

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A split that is out of range, or leaves too few held-out rows, is a
// usage error naming the flag, and nothing is written.
func TestAlignSplitFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--holdout", "0"}, "--holdout = 0: want a fraction in (0, 0.5]"},
		{[]string{"--holdout", "0.6"}, "--holdout = 0.6"},
		{[]string{"--holdout", "NaN"}, "--holdout = NaN"},
		{[]string{"--holdout", "-0.2"}, "--holdout = -0.2"},
		{[]string{"--validation", "0.7"}, "--validation = 0.7"},
		{[]string{"--confidence", "0.4"}, "--confidence = 0.4"},
		{[]string{"--alpha", "0"}, "--alpha = 0"},
		{[]string{"--restarts", "-1"}, "--restarts = -1"},
		{[]string{"--n", "300", "--holdout", "0.01"}, "--holdout = 0.01 leaves 3 held-out rows of A's 300; the held-out estimate needs at least 10"},
		{[]string{"--n", "300", "--batch", "250"}, "--batch = 250 exceeds the 216 training rows of A"},
		{[]string{"--checkpoint-every", "10"}, "--checkpoint-every needs a single restart: add --restarts 1"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			code, _, stderr := lrmfRun(append([]string{"align", "--quiet", "--steps", "5", "--fit-steps", "5", "--out", out}, c.args...)...)
			assert.Equal(t, exitUsage, code, "stderr: %s", stderr)
			assert.Contains(t, stderr, c.want)
			_, err := os.Stat(out)
			assert.True(t, os.IsNotExist(err), "--out was created")
		})
	}
}

// report.json carries the held-out estimate with its standard errors, the
// training and validation figures, the two-sample test, how each phase
// ended and every restart; the printed verdict is its "verdict".
func TestAlignReportHeldOutFields(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := lrmfRun("align", "--out", dir, "--quiet", "--plots=false", "--flow", "affine", "--density", "gaussian", "--steps", "600", "--restarts", "3")
	require.Contains(t, []int{exitOK, exitNotConverged}, code, stderr)
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	var rep map[string]any
	require.NoError(t, json.Unmarshal(raw, &rep))
	for _, k := range []string{"status", "verdict", "lrmf", "lrmf_se", "upper_bound", "lrmf_train", "c_ab", "held_out", "train", "validation",
		"two_sample", "fit_a", "fit_b", "joint", "restarts", "history", "config"} {
		assert.Contains(t, rep, k)
	}
	assert.Equal(t, code == exitOK, rep["status"] == "converged")
	assert.True(t, strings.HasPrefix(stdout, rep["verdict"].(string)+"\n"), "stdout %q", stdout)
	held := rep["held_out"].(map[string]any)
	assert.EqualValues(t, 400, held["rows_a"])
	assert.EqualValues(t, 400, held["rows_b"])
	assert.EqualValues(t, 8, held["trim_a"])
	se := held["se"].(map[string]any)
	for _, k := range []string{"lrmf", "c_ab", "loglik_ta", "loglik_b"} {
		assert.Greater(t, se[k].(float64), 0.0, k)
	}
	assert.EqualValues(t, 0, se["logdet"], "an affine map's log-det is one number")
	assert.Equal(t, rep["lrmf"], held["lrmf"])
	assert.Equal(t, rep["lrmf_se"], se["lrmf"])
	assert.InDelta(t, rep["lrmf"].(float64)+1.6448536269514722*rep["lrmf_se"].(float64), rep["upper_bound"].(float64), 1e-12)
	assert.EqualValues(t, 1440, rep["train"].(map[string]any)["rows_a"])
	assert.EqualValues(t, 160, rep["validation"].(map[string]any)["rows_b"])
	ts := rep["two_sample"].(map[string]any)
	assert.EqualValues(t, 400+160, ts["rows_x"], "the held-out and validation points")
	assert.EqualValues(t, 400+160, ts["rows_y"])
	assert.Len(t, ts["p_per_scale"], 5)
	assert.EqualValues(t, 500, ts["permutations"])
	assert.Equal(t, "closed-form", rep["fit_a"].(map[string]any)["stopped_by"])
	restarts := rep["restarts"].([]any)
	require.Len(t, restarts, 3)
	chosen := 0
	for _, r := range restarts {
		m := r.(map[string]any)
		for _, k := range []string{"index", "seed", "validation_lrmf", "lrmf", "lrmf_se", "steps", "stopped_by", "seconds", "chosen"} {
			assert.Contains(t, m, k)
		}
		if m["chosen"].(bool) {
			chosen++
			assert.Equal(t, rep["joint"].(map[string]any)["steps"], m["steps"])
		}
	}
	assert.Equal(t, 1, chosen)
	cfg := rep["config"].(map[string]any)
	assert.EqualValues(t, 0.2, cfg["holdout"])
	assert.EqualValues(t, 3, cfg["restarts"])
}

package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/data"
)

// lrmf align with no flags (only shorter budgets, which both sides set)
// and lrmf.Align with a zero Config on the same built-in pair are one run:
// the same configuration, defaults filled in, and the same LRMF to the
// bit. The flag defaults come from lrmf.DefaultConfig, so this fails when
// either side grows a default of its own.
func TestAlignFlagDefaultsAreTheZeroConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	code, _, stderr := lrmfRun("align", "--out", dir, "--steps", "30", "--fit-steps", "30", "--quiet", "--plots=false")
	require.Contains(t, []int{exitOK, exitNotConverged}, code, stderr)
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	var rep struct {
		LRMF   float64        `json:"lrmf"`
		Config map[string]any `json:"config"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))

	p, err := data.Builtin("moons", 2000, 1) // --data and --n and --seed defaults
	require.NoError(t, err)
	res, err := lrmf.Align(context.Background(), p.A, p.B, lrmf.Config{Steps: 30, FitOptions: lrmf.FitOptions{FitSteps: 30}})
	require.NoError(t, err)
	lib := map[string]any{}
	b, err := json.Marshal(res.Config)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &lib))

	for _, k := range []string{"backend", "dtype", "threads", "n", "tag"} { // the command's own records
		delete(rep.Config, k)
	}
	assert.Equal(t, lib, rep.Config)
	assert.Equal(t, math.Float64bits(res.LRMF), math.Float64bits(rep.LRMF), "LRMF: lrmf align %v, lrmf.Align %v", rep.LRMF, res.LRMF)
}

// lrmf shift-test with no flags and lrmf.ShiftTest with a zero ShiftConfig
// give the same statistics and p-values on the built-in pair.
func TestShiftTestFlagDefaultsAreTheZeroConfig(t *testing.T) {
	code, stdout, stderr := lrmfRun("shift-test", "--json", "--quiet")
	require.Equal(t, exitOK, code, stderr)
	var rep shiftReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	p, err := data.Builtin("moons", 2000, 1)
	require.NoError(t, err)
	res, err := lrmf.ShiftTest(context.Background(), p.A, p.B, lrmf.ShiftConfig{})
	require.NoError(t, err)
	assert.Equal(t, res.Score, rep.Score)
	assert.Equal(t, res.ScoreP, rep.ScoreP)
	assert.Equal(t, res.DLambda, *rep.DLambda)
	assert.Equal(t, res.Permutations, rep.Permutations)
	assert.Equal(t, res.Seed, rep.Seed)
	assert.Equal(t, res.Density, rep.Density)
}

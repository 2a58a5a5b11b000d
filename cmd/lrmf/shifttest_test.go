package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf/model"
)

// The default (built-in moons, B rotated by 50°) is a shift; two files
// drawn from one distribution are not; both exit 0.
func TestShiftTestVerdicts(t *testing.T) {
	code, stdout, stderr := lrmfRun("shift-test")
	require.Equal(t, 0, code, stderr)
	assert.True(t, strings.HasPrefix(stdout, "shift detected at p = 0.005 (score test, S = "), stdout)
	assert.Contains(t, stdout, "; dΛ = ")
	assert.Contains(t, stderr, "builtin:moons, A 2000×2, B 2000×2, density gaussian (closed-form fits), 199 relabellings")

	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.npy")
	code, _, stderr = lrmfRun("data", "gauss2d", "--out", a, "--n", "500", "--seed", "1")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = lrmfRun("data", "gauss2d", "--out", b, "--n", "700", "--seed", "2") // part A again: same distribution
	require.Equal(t, 0, code, stderr)
	code, stdout, stderr = lrmfRun("shift-test", "--a", a, "--b", b, "--quiet", "--alpha", "0.01")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)
	assert.True(t, strings.HasPrefix(stdout, "no shift detected (p = "), stdout)
	assert.Contains(t, stdout, "alpha = 0.01")

	code, stdout, stderr = lrmfRun("shift-test", "--a", a, "--b", b, "--score-only", "--permutations", "9")
	require.Equal(t, 0, code, stderr)
	assert.NotContains(t, stdout, "dΛ")
	assert.Contains(t, stderr, "smallest p-value is 0.1, above --alpha 0.05")
}

// --json prints one parseable object; --out writes the same object.
func TestShiftTestJSON(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sub", "shift.json")
	code, stdout, stderr := lrmfRun("shift-test", "--json", "--n", "300", "--permutations", "49", "--seed", "3", "--out", out)
	require.Equal(t, 0, code, stderr)
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	for _, k := range []string{"shift", "alpha", "score", "score_p", "grad_a", "grad_b", "grad_pooled", "dlambda", "dlambda_p",
		"loglik_a", "loglik_b", "loglik_sa", "loglik_sb", "permutations", "seed", "density", "closed_form", "backend", "data", "seconds", "ms_per_permutation"} {
		assert.Contains(t, rep, k)
	}
	assert.Equal(t, true, rep["shift"])
	assert.EqualValues(t, 49, rep["permutations"])
	assert.EqualValues(t, 0.02, rep["score_p"]) // 1/(49+1): no relabelling reaches the rotated pair's S
	assert.Equal(t, "gaussian", rep["density"].(map[string]any)["kind"])
	assert.Equal(t, "host/float64", rep["backend"])
	assert.EqualValues(t, 300, rep["data"].(map[string]any)["rows_a"])
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	var fromFile map[string]any
	require.NoError(t, json.Unmarshal(raw, &fromFile))
	assert.Equal(t, rep["score"], fromFile["score"])
	assert.Equal(t, rep["dlambda_p"], fromFile["dlambda_p"])

	code, stdout, stderr = lrmfRun("shift-test", "--json", "--n", "300", "--permutations", "9", "--score-only")
	require.Equal(t, 0, code, stderr)
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	assert.Nil(t, rep["dlambda"])
	assert.Nil(t, rep["dlambda_p"])
}

// The generic path (Real NVP, gradient fits) through the command line.
func TestShiftTestRealNVP(t *testing.T) {
	code, stdout, stderr := lrmfRun("shift-test", "--density", "realnvp", "--n", "200", "--hidden", "8", "--blocks", "2",
		"--fit-steps", "20", "--batch", "64", "--permutations", "4", "--dtype", "float64", "--threads", "1", "--json")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "refits θA and θB")
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	assert.Equal(t, false, rep["closed_form"])
	assert.Contains(t, []float64{0.2, 0.4, 0.6, 0.8, 1}, rep["score_p"])
}

// FFJORD densities take the generic path with their default sizes.
func TestShiftTestFFJORD(t *testing.T) {
	code, stdout, stderr := lrmfRun("shift-test", "--density", "ffjord", "--n", "100", "--fit-steps", "5", "--batch", "32",
		"--permutations", "3", "--score-only", "--json")
	require.Equal(t, 0, code, stderr)
	var rep struct {
		Density model.ModelSpec `json:"density"`
		ScoreP  float64         `json:"score_p"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	assert.Equal(t, model.ModelSpec{Kind: "ffjord"}.Normalized(), rep.Density)
	assert.Contains(t, []float64{0.25, 0.5, 0.75, 1}, rep.ScoreP)
}

// Usage errors exit 2 naming the flag; file errors exit 1 naming the file.
func TestShiftTestBadInput(t *testing.T) {
	dir := t.TempDir()
	good := write(t, dir, "good.csv", "x,y\n1,2\n2,1\n3,5\n4,4\n5,0\n")
	ragged := write(t, dir, "ragged.csv", "1,2\n2,3\n3\n")
	three := write(t, dir, "three.csv", "1,2,3\n2,3,4\n4,5,7\n5,1,1\n")
	two := write(t, dir, "two.csv", "1,2\n2,5\n")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"permutations 0", []string{"--permutations", "0"}, 2, "--permutations = 0"},
		{"alpha", []string{"--alpha", "1.5"}, 2, "--alpha = 1.5"},
		{"alpha nan", []string{"--alpha", "NaN"}, 2, "--alpha = NaN"},
		{"density", []string{"--density", "maf"}, 2, `unknown --density "maf"`},
		{"unknown flag", []string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
		{"bad int", []string{"--permutations", "many"}, 2, "-permutations"},
		{"only a", []string{"--a", good}, 2, "--a and --b"},
		{"data and files", []string{"--a", good, "--b", good, "--data", "blobs"}, 2, "--data cannot be combined"},
		{"positional", []string{"extra"}, 2, `unexpected argument "extra"`},
		{"batch", []string{"--a", good, "--b", good, "--batch", "6"}, 2, "--batch = 6 exceeds"},
		{"missing", []string{"--a", filepath.Join(dir, "nope.csv"), "--b", good}, 1, "nope.csv"},
		{"ragged", []string{"--a", good, "--b", ragged}, 1, "ragged.csv:3"},
		{"dims", []string{"--a", good, "--b", three}, 1, "same dimension"},
		{"too few rows", []string{"--a", good, "--b", two}, 1, "too few rows: B has 2"},
		{"out is a dir", []string{"--out", dir}, 1, "is a directory"},
		{"out unwritable", []string{"--out", filepath.Join(good, "x.json")}, 1, "--out"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := lrmfRun(append([]string{"shift-test", "--n", "50", "--permutations", "9"}, c.args...)...)
			assert.Equal(t, c.code, code, "stderr: %s", stderr)
			assert.Contains(t, stderr, c.want)
			assert.Empty(t, stdout)
		})
	}
	// Help lists the flags and the exit status.
	code, stdout, _ := lrmfRun("shift-test", "--help")
	assert.Equal(t, 0, code)
	for _, f := range []string{"-a FILE", "-permutations", "-alpha", "-json", "-out FILE", "-score-only", "Exit status: 0 whenever the test ran"} {
		assert.Contains(t, stdout, f)
	}
	code, stdout, _ = lrmfRun("--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "shift-test")
}

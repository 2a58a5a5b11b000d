package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A tiny glow-digits run: both fits, the NLL table beside the paper's, the
// CSV of the training curves, and the LRMF alignment's table, CSV and
// image grids.
func TestReproduceGLOWDigitsSmall(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := lrmfRun("reproduce", "glow-digits", "--n", "64", "--steps", "3", "--glow-levels", "2",
		"--glow-steps", "1", "--glow-hidden", "4", "--glow-lrmf-steps", "4", "--threads", "2", "--out", dir)
	require.Equal(t, 0, code, stderr)
	for _, s := range []string{"θA* MNIST", "θB* USPS-style", "-2094.7", "-2185.3", "bits/dim", "glow-digits.csv",
		"back to back, T = G_A⁻¹∘G_B from θA*, θB*", "from scratch, T = G2⁻¹∘G1 fresh", "≈ 0 ± 32–41",
		"classifier A vs T(B)", "0.59–0.66", "steps 1–1:", "T(B) overflows"} {
		assert.Contains(t, stdout, s)
	}
	for _, f := range []string{"glow-digits-lrmf.csv", "glow-digits-images.png", "glow-digits-images.svg"} {
		_, err := os.Stat(filepath.Join(dir, f))
		assert.NoError(t, err, f)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "glow-digits-lrmf.csv"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	assert.Equal(t, "run,step,lrmf,grad_t,grad_s", lines[0])
	assert.Len(t, lines, 9) // two runs of 4 steps
	assert.True(t, strings.HasPrefix(lines[1], "back-to-back,1,") && strings.HasPrefix(lines[8], "scratch,4,"), "%q", lines)
	raw, err = os.ReadFile(filepath.Join(dir, "glow-digits.csv"))
	require.NoError(t, err)
	lines = strings.Split(strings.TrimSpace(string(raw)), "\n")
	assert.Equal(t, "step,nll_mnist,nll_usps", lines[0])
	assert.Len(t, lines, 4)
}

func TestReproduceGLOWDigitsFlags(t *testing.T) {
	code, _, stderr := lrmfRun("reproduce", "fig8", "--glow-levels", "2", "--out", t.TempDir())
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--glow-levels applies to glow-digits only")
	code, _, stderr = lrmfRun("reproduce", "glow-digits", "--n", "64", "--glow-levels", "6", "--out", t.TempDir())
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "divisible by 64")
	code, _, stderr = lrmfRun("reproduce", "fig8", "--glow-lrmf-runs", "scratch", "--out", t.TempDir())
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--glow-lrmf-runs applies to glow-digits only")
	code, _, stderr = lrmfRun("reproduce", "glow-digits", "--n", "64", "--glow-lrmf-runs", "back-to-back,latent", "--out", t.TempDir())
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, `unknown LRMF run "latent"`)
}

// --glow-lrmf-runs picks the runs: here only the fresh back-to-back T, in
// float64 (--glow-lrmf-float64).
func TestReproduceGLOWDigitsOneRun(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := lrmfRun("reproduce", "glow-digits", "--n", "64", "--steps", "2", "--glow-levels", "2",
		"--glow-steps", "1", "--glow-hidden", "2", "--glow-lrmf-steps", "2", "--glow-lrmf-runs", "scratch", "--glow-lrmf-float64", "--threads", "2", "--out", dir)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "from scratch")
	assert.Contains(t, stdout, "/float64, ")
	assert.NotContains(t, stdout, "back to back")
	raw, err := os.ReadFile(filepath.Join(dir, "glow-digits-lrmf.csv"))
	require.NoError(t, err)
	assert.Len(t, strings.Split(strings.TrimSpace(string(raw)), "\n"), 3)
}

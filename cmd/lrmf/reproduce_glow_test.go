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
		"T = G_A⁻¹∘G_B", "≈ 0 ± 32–41", "classifier A vs T(B)", "0.59–0.66"} {
		assert.Contains(t, stdout, s)
	}
	for _, f := range []string{"glow-digits-lrmf.csv", "glow-digits-images.png", "glow-digits-images.svg"} {
		_, err := os.Stat(filepath.Join(dir, f))
		assert.NoError(t, err, f)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "glow-digits-lrmf.csv"))
	require.NoError(t, err)
	assert.Len(t, strings.Split(strings.TrimSpace(string(raw)), "\n"), 5)
	raw, err = os.ReadFile(filepath.Join(dir, "glow-digits.csv"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
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
}

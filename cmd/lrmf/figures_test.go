package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAlignWritesPlots(t *testing.T) {
	dir := t.TempDir()
	common := []string{"align", "--quiet", "--flow", "affine", "--density", "gaussian", "--n", "400", "--steps", "300"}
	code, stdout, stderr := lrmfRun(append(common, "--out", filepath.Join(dir, "on"))...)
	require.Contains(t, []int{0, 3}, code, stderr)
	for _, p := range []string{"scatter", "lrmf", "displacement"} {
		h := 480
		if p == "lrmf" {
			h = 360
		}
		checkImages(t, filepath.Join(dir, "on"), p, 480, h)
		assert.Contains(t, stdout, filepath.Join(dir, "on", p+".png"))
	}
	svg, err := os.ReadFile(filepath.Join(dir, "on", "scatter.svg"))
	require.NoError(t, err)
	assert.Contains(t, string(svg), "moons: A (blue)")

	// --plots=false, and 1-D data, write no figures.
	code, _, stderr = lrmfRun(append(common, "--out", filepath.Join(dir, "off"), "--plots=false")...)
	require.Contains(t, []int{0, 3}, code, stderr)
	code, stdout, stderr = lrmfRun(append(common, "--out", filepath.Join(dir, "1d"), "--data", "gauss1d")...)
	require.Contains(t, []int{0, 3}, code, stderr)
	assert.NotContains(t, stdout, ".png")
	for _, sub := range []string{"off", "1d"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		require.NoError(t, err)
		for _, e := range ents {
			assert.False(t, strings.HasSuffix(e.Name(), ".png") || strings.HasSuffix(e.Name(), ".svg"), "%s/%s", sub, e.Name())
		}
		assert.Len(t, ents, 3, sub) // report.json, transformed.csv, checkpoint.lrmf
	}
}

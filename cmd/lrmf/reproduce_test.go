package main

import (
	"encoding/csv"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReproduceExample22(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	code, stdout, stderr := lrmfRun("reproduce", "example-2.2", "--out", dir)
	require.Equal(t, exitOK, code, "stderr: %s", stderr)
	for _, s := range []string{"Example 2.2 (n = 100000, seed 3", "measured", "paper", "0.6", "-1.168", "0.99996", "example-2.2.csv"} {
		assert.Contains(t, stdout, s)
	}
	f, err := os.Open(filepath.Join(dir, "example-2.2.csv"))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 101)
	assert.Equal(t, []string{"mu", "g", "sqrt_neg_log_abs_g"}, rows[0])
	for i, r := range rows[1:] {
		mu, err1 := strconv.ParseFloat(r[0], 64)
		g, err2 := strconv.ParseFloat(r[1], 64)
		y, err3 := strconv.ParseFloat(r[2], 64)
		require.NoError(t, err1)
		require.NoError(t, err2)
		require.NoError(t, err3)
		assert.InDelta(t, 4+16*float64(i)/99, mu, 1e-12)
		assert.InDelta(t, math.Sqrt(-math.Log(math.Abs(g))), y, 1e-12*y)
	}
	// The plot decodes as a 576×384 PNG with more than one colour.
	pf, err := os.Open(filepath.Join(dir, "example-2.2.png"))
	require.NoError(t, err)
	defer pf.Close()
	img, err := png.Decode(pf)
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, 576, 384), img.Bounds())
	colours := map[[3]uint32]bool{}
	for y := 0; y < 384; y += 4 {
		for x := 0; x < 576; x += 4 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r, g, b}] = true
		}
	}
	assert.Greater(t, len(colours), 2, "the plot looks blank")
	// No temporary file is left behind: the CSV, the PNG and the SVG.
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 3)
}

func TestReproduceSmallN(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := lrmfRun("reproduce", "--n", "2000", "--seed", "5", "--out", dir, "example-2.2")
	require.Equal(t, exitOK, code, "stderr: %s", stderr)
	assert.Contains(t, stdout, "n = 2000, seed 5")
	_, err := os.Stat(filepath.Join(dir, "example-2.2.csv"))
	assert.NoError(t, err)
}

func TestReproduceUsage(t *testing.T) {
	for _, args := range [][]string{
		{"reproduce"},
		{"reproduce", "example-9.9"},
		{"reproduce", "--out", t.TempDir()},
	} {
		code, _, stderr := lrmfRun(args...)
		assert.Equal(t, exitUsage, code, "%v", args)
		assert.Contains(t, stderr, "available: example-2.2", "%v", args)
	}
	code, _, _ := lrmfRun("reproduce", "example-2.2", "--n", "0")
	assert.Equal(t, exitUsage, code)
	code, _, _ = lrmfRun("reproduce", "example-2.2", "extra")
	assert.Equal(t, exitUsage, code)
	code, _, _ = lrmfRun("reproduce", "example-2.2", "--bogus")
	assert.Equal(t, exitUsage, code)

	code, stdout, _ := lrmfRun("help", "reproduce")
	assert.Equal(t, exitOK, code)
	for _, s := range []string{"example-2.2", "-n", "-seed", "-out", "mu, g, sqrt_neg_log_abs_g"} {
		assert.Contains(t, stdout, s)
	}
	code, stdout, _ = lrmfRun("reproduce", "--help")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, stdout, "Usage: lrmf reproduce NAME")
	_, stdout, _ = lrmfRun("help")
	assert.Contains(t, stdout, "reproduce")
}

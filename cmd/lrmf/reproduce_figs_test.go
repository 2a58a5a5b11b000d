package main

import (
	"bytes"
	"encoding/xml"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkImages checks that dir/base.png decodes to a w×h image of more than
// one colour and that dir/base.svg is well-formed XML.
func checkImages(t *testing.T, dir, base string, w, h int) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, base+".png"))
	require.NoError(t, err)
	img, err := png.Decode(f)
	f.Close()
	require.NoError(t, err, base)
	assert.Equal(t, image.Rect(0, 0, w, h), img.Bounds(), base)
	first := img.At(0, 0)
	varied := false
	for y := 0; y < h && !varied; y += 2 {
		for x := 0; x < w; x += 2 {
			if img.At(x, y) != first {
				varied = true
				break
			}
		}
	}
	assert.True(t, varied, "%s.png is a single colour", base)
	raw, err := os.ReadFile(filepath.Join(dir, base+".svg"))
	require.NoError(t, err)
	require.NotEmpty(t, raw)
	dec := xml.NewDecoder(bytes.NewReader(raw))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, base+".svg")
	}
}

// figRow returns the fields of the result row for dataset name in the
// output of lrmf reproduce fig8/fig9.
func figRow(t *testing.T, stdout, name string) []string {
	t.Helper()
	for _, line := range strings.Split(stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return f
		}
	}
	t.Fatalf("no row for %s in:\n%s", name, stdout)
	return nil
}

func parseF(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err, s)
	return v
}

// fig8 runs at its full default settings (affine + Gaussian is fast): LRMF
// reaches ≈ 0 and the moments of T(A) match B's, as the paper says.
func TestReproduceFig8(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := lrmfRun("reproduce", "fig8", "--out", dir)
	require.Equal(t, exitOK, code, "stderr: %s", stderr)
	for _, s := range []string{"fig8: flow affine, density gaussian; n = 2000 per set, seed 1, 20000 joint steps", "paper (qualitative)", "matches the first two moments"} {
		assert.Contains(t, stdout, s)
	}
	for _, name := range []string{"blobs", "moons"} {
		f := figRow(t, stdout, name) // data LRMF status |Δmean| ‖ΔΣ‖ arm time
		require.Len(t, f, 7, "%q", f)
		assert.Less(t, parseF(t, f[1]), 1e-3, "LRMF of %s", name)
		assert.Greater(t, parseF(t, f[1]), -1e-3, "LRMF of %s", name)
		assert.Equal(t, "converged", f[2])
		assert.Less(t, parseF(t, f[3]), 0.01, "mean error of %s", name)
		assert.Less(t, parseF(t, f[4]), 0.01, "covariance error of %s", name)
		for _, p := range []string{"scatter", "displacement", "density-a", "density-b", "density-s"} {
			checkImages(t, dir, "fig8-"+name+"-"+p, 480, 480)
		}
		checkImages(t, dir, "fig8-"+name+"-lrmf", 480, 360)
	}
	assert.Equal(t, "-", figRow(t, stdout, "blobs")[5]) // no labels
	assert.Greater(t, parseF(t, figRow(t, stdout, "moons")[5]), 0.5)
	checkImages(t, dir, "fig8", 3*336, 2*336)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 2*2*6+2, "no other (temporary) files")
}

// fig9 with tiny budgets: the pipeline runs and writes every figure.
func TestReproduceFig9Short(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := lrmfRun("reproduce", "fig9", "--out", dir, "--n", "300", "--steps", "20", "--fit-steps", "20", "--threads", "2")
	require.Equal(t, exitOK, code, "stderr: %s", stderr)
	assert.Contains(t, stdout, "fig9: flow realnvp, density realnvp; n = 300 per set, seed 1, 20 joint steps, fit steps 20")
	assert.Contains(t, stdout, "arms are preserved")
	for _, name := range []string{"blobs", "moons"} {
		require.Len(t, figRow(t, stdout, name), 7)
		checkImages(t, dir, "fig9-"+name+"-density-s", 480, 480)
	}
	checkImages(t, dir, "fig9", 6*336, 2*336)
}

func TestReproduceFigUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fig9", "--steps", "0"}, "--steps = 0"},
		{[]string{"fig9", "--fit-steps", "-1"}, "--fit-steps = -1"},
		{[]string{"fig8", "--threads", "0"}, "--threads = 0"},
		{[]string{"fig8", "--n", "0"}, "--n = 0"},
		{[]string{"example-2.2", "--steps", "5"}, "--steps, --fit-steps and --threads apply to fig8 and fig9 only"},
		{[]string{"fig10"}, "available: example-2.2, fig8, fig9"},
	} {
		code, _, stderr := lrmfRun(append([]string{"reproduce", "--out", t.TempDir()}, c.args...)...)
		assert.Equal(t, exitUsage, code, "%v", c.args)
		assert.Contains(t, stderr, c.want, "%v", c.args)
	}
	code, stdout, _ := lrmfRun("help", "reproduce")
	assert.Equal(t, exitOK, code)
	for _, s := range []string{"fig8", "fig9", "-steps", "-fit-steps", "-threads", "density-s"} {
		assert.Contains(t, stdout, s)
	}
}

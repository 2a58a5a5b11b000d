package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/lrmf/data"
)

// writeTinyImages writes n 8×8×1 images per set (a bright square at a
// random place plus noise; B's dimmer on a brighter background) to
// dir/a.npy and dir/b.npy.
func writeTinyImages(t *testing.T, dir string, n int) (a, b string) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 0x1a6e))
	set := func(fg, bg float64) *mat.Dense {
		x := mat.NewDense(n, 64, nil)
		for k := range n {
			r, c := rng.IntN(5), rng.IntN(5)
			for i := range 8 {
				for j := range 8 {
					v := bg
					if i >= r && i < r+4 && j >= c && j < c+4 {
						v = fg
					}
					x.Set(k, i*8+j, v+0.1*rng.NormFloat64())
				}
			}
		}
		return x
	}
	a, b = filepath.Join(dir, "a.npy"), filepath.Join(dir, "b.npy")
	require.NoError(t, data.WriteNPY(a, set(1, 0)))
	require.NoError(t, data.WriteNPY(b, set(0.7, 0.2)))
	return a, b
}

// --image and --levels: missing, malformed, not matching the data or the
// levels, or given without an image model, are usage errors naming the
// flag, and nothing is written.
func TestAlignGLOWImageFlagErrors(t *testing.T) {
	a, b := writeTinyImages(t, t.TempDir(), 400)
	glow := []string{"--density", "glow-image"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{glow, "--density glow-image needs --image HxWxC"},
		{append(glow, "--image", "8x8"), `--image = "8x8": want HxWxC`},
		{append(glow, "--image", ""), `--image = "": want HxWxC`},
		{append(glow, "--image", "8x8x0"), `--image = "8x8x0": want HxWxC`},
		{append(glow, "--image", "8x4x1"), "--image 8x4x1 has H·W·C = 32 values per image, the data have 64 columns"},
		{append(glow, "--image", "8x8x1", "--levels", "4"), "--image 8x8x1 with --levels 4: each level halves H and W, so both must be divisible by 2^4 = 16"},
		{append(glow, "--image", "8x8x1", "--levels", "9"), "--levels = 9: want an integer in [1, 8]"},
		{append(glow, "--image", "8x8x1", "--levels", "2", "--blocks", "65"), "--density glow-image (--image, --levels, --blocks, --hidden, --scale)"},
		{[]string{"--levels", "2"}, "--levels applies to the image models only (glow-image, glow-b2b)"},
		{[]string{"--flow", "glow-b2b"}, "--flow glow-b2b needs --image HxWxC"},
		{[]string{"--flow", "glow-b2b", "--image", "8x8x2"}, "--image 8x8x2 has H·W·C = 128 values per image, the data have 64 columns"},
		{[]string{"--image", "8x8x1"}, "--image applies to the image models only"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			code, _, stderr := lrmfRun(append([]string{"align", "--quiet", "--a", a, "--b", b, "--steps", "5", "--fit-steps", "5", "--out", out}, c.args...)...)
			assert.Equal(t, exitUsage, code, "stderr: %s", stderr)
			assert.Contains(t, stderr, c.want)
			_, err := os.Stat(out)
			assert.True(t, os.IsNotExist(err), "--out was created")
		})
	}
	// 8×8 images allow three levels (8 = 2³): the default is accepted.
	code, _, stderr := lrmfRun("align", "--quiet", "--a", a, "--b", b, "--density", "glow-image", "--image", "8x8x1", "--flow", "affine",
		"--blocks", "1", "--hidden", "4", "--steps", "2", "--fit-steps", "2", "--batch", "16", "--restarts", "1", "--plots=false", "--out", filepath.Join(t.TempDir(), "ok"))
	assert.Contains(t, []int{exitOK, exitNotConverged}, code, stderr)
	// shift-test has no --image: glow-image is a usage error there.
	code, _, stderr = lrmfRun("shift-test", "--quiet", "--a", a, "--b", b, "--density", "glow-image")
	assert.Equal(t, exitUsage, code, stderr)
	assert.Contains(t, stderr, "--density glow-image needs --image")
}

// A run with --density glow-image writes its spec into report.json and the
// checkpoint; lrmf apply maps data with its flow exactly as the run did;
// an interrupted run resumes to the uninterrupted run's result, and its
// image shape cannot be changed on resume.
func TestAlignGLOWImageApplyResume(t *testing.T) {
	dir := t.TempDir()
	a, b := writeTinyImages(t, dir, 400)
	common := []string{"align", "--quiet", "--a", a, "--b", b, "--dtype", "float64", "--threads", "2", "--plots=false", "--flow", "affine",
		"--density", "glow-image", "--image", "8x8x1", "--levels", "2", "--blocks", "1", "--hidden", "4",
		"--batch", "32", "--fit-steps", "20", "--steps", "40", "--restarts", "1"}
	full := filepath.Join(dir, "full")
	code, _, stderr := lrmfRun(append(common, "--out", full)...)
	require.Contains(t, []int{exitOK, exitNotConverged}, code, stderr)
	raw, err := os.ReadFile(filepath.Join(full, "report.json"))
	require.NoError(t, err)
	var rep struct {
		LRMF   float64 `json:"lrmf"`
		Config struct {
			Density map[string]any `json:"density"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))
	assert.Equal(t, map[string]any{"kind": "glow-image", "image": "8x8x1", "levels": 2.0, "blocks": 1.0, "hidden": 4.0, "scale": "sigmoid"}, rep.Config.Density)

	ck := filepath.Join(full, "checkpoint.lrmf")
	ta := filepath.Join(dir, "ta.npy")
	code, _, stderr = lrmfRun("apply", "--model", ck, "--in", a, "--out", ta)
	require.Equal(t, exitOK, code, stderr)
	got, err := data.ReadFile(ta)
	require.NoError(t, err)
	want, err := data.ReadFile(filepath.Join(full, "transformed.csv"))
	require.NoError(t, err)
	assert.InDeltaSlice(t, want.RawMatrix().Data, got.RawMatrix().Data, 1e-12)

	code, _, stderr = lrmfRun("align", "--quiet", "--resume", ck, "--image", "4x16x1", "--out", filepath.Join(dir, "other"))
	assert.Equal(t, exitUsage, code, stderr)
	assert.Contains(t, stderr, "--image cannot be changed when resuming")

	// Interrupt after the first periodic checkpoint, then resume.
	interruptAndResume(t, common, full, filepath.Join(dir, "part"))
}

// --flow glow-b2b (T = G2⁻¹∘G1, two GLOWs) runs end to end with an image
// density: lrmf apply maps A exactly as the run did, and apply --inverse
// maps T(A) back to A.
func TestAlignGLOWBackToBackApply(t *testing.T) {
	dir := t.TempDir()
	a, b := writeTinyImages(t, dir, 400)
	out := filepath.Join(dir, "out")
	code, _, stderr := lrmfRun("align", "--quiet", "--a", a, "--b", b, "--dtype", "float64", "--plots=false",
		"--flow", "glow-b2b", "--density", "glow-image", "--image", "8x8x1", "--levels", "2", "--blocks", "1", "--hidden", "4",
		"--batch", "32", "--fit-steps", "10", "--steps", "20", "--restarts", "1", "--out", out)
	require.Contains(t, []int{exitOK, exitNotConverged}, code, stderr)
	raw, err := os.ReadFile(filepath.Join(out, "report.json"))
	require.NoError(t, err)
	var rep struct {
		Config struct {
			Flow map[string]any `json:"flow"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))
	assert.Equal(t, "glow-b2b", rep.Config.Flow["kind"])
	assert.Equal(t, "8x8x1", rep.Config.Flow["image"])

	ck := filepath.Join(out, "checkpoint.lrmf")
	ta, back := filepath.Join(dir, "ta.npy"), filepath.Join(dir, "back.npy")
	code, _, stderr = lrmfRun("apply", "--model", ck, "--in", a, "--out", ta)
	require.Equal(t, exitOK, code, stderr)
	got, err := data.ReadFile(ta)
	require.NoError(t, err)
	want, err := data.ReadFile(filepath.Join(out, "transformed.csv"))
	require.NoError(t, err)
	assert.InDeltaSlice(t, want.RawMatrix().Data, got.RawMatrix().Data, 1e-12)
	// The run moved T away from the identity it starts at.
	x, err := data.ReadFile(a)
	require.NoError(t, err)
	assert.False(t, mat.EqualApprox(x, got, 1e-6), "T(A) = A: the joint phase did not move T")
	code, _, stderr = lrmfRun("apply", "--model", ck, "--in", ta, "--out", back, "--inverse")
	require.Equal(t, exitOK, code, stderr)
	x2, err := data.ReadFile(back)
	require.NoError(t, err)
	assert.InDeltaSlice(t, x.RawMatrix().Data, x2.RawMatrix().Data, 1e-9)
}

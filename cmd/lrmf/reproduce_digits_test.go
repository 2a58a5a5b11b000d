package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// digitsJSON is the part of digits.json the tests read.
type digitsJSON struct {
	N         int     `json:"n"`
	Dim       int     `json:"dim"`
	Status    string  `json:"status"`
	LRMF      float64 `json:"lrmf"`
	WithinA   float64 `json:"within_a"`
	WithinB   float64 `json:"within_b"`
	Embedding struct {
		Kind       string  `json:"kind"`
		MSE        float64 `json:"mse"`
		HeldOutMSE float64 `json:"held_out_mse"`
	} `json:"embedding"`
	PCA *struct {
		MSE float64 `json:"mse"`
	} `json:"pca_same_dim"`
	Flow struct {
		Kind string `json:"kind"`
	} `json:"flow"`
	Density struct {
		Kind string `json:"kind"`
	} `json:"density"`
	Steps int `json:"steps"`
	Maps  []struct {
		Name      string   `json:"name"`
		Agreement *float64 `json:"agreement"`
		GapClosed *float64 `json:"gap_closed"`
	} `json:"maps"`
}

// runDigits runs lrmf reproduce digits with args on n digits per domain
// and a short alignment, checks the files and the ranges of the numbers,
// and returns stdout and the report.
func runDigits(t *testing.T, n string, args ...string) (string, digitsJSON) {
	t.Helper()
	dir := t.TempDir()
	args = append([]string{"reproduce", "digits", "--n", n, "--steps", "150", "--fit-steps", "150", "--quiet", "--out", dir}, args...)
	code, stdout, stderr := lrmfRun(args...)
	require.Equal(t, exitOK, code, "stderr: %s", stderr)
	for _, s := range []string{"embedding, D = ", "alignment: flow ", "LRMF = ", "class agreement", "identity", "gaussian-ot", "coral", "lrmf (", "within B (LOO)", "goal: ", "digits.json"} {
		assert.Contains(t, stdout, s)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "digits.json"))
	require.NoError(t, err)
	var rep digitsJSON
	require.NoError(t, json.Unmarshal(raw, &rep))
	assert.Contains(t, []string{"converged", "not-converged", "undershot"}, rep.Status)
	assert.Equal(t, 150, rep.Steps)
	assert.True(t, rep.WithinA > 0.5 && rep.WithinA <= 1 && rep.WithinB > 0.5 && rep.WithinB <= 1, "within %v %v", rep.WithinA, rep.WithinB)
	assert.True(t, rep.Embedding.MSE > 0 && rep.Embedding.MSE < 0.1, "MSE %v", rep.Embedding.MSE)
	require.Len(t, rep.Maps, 4)
	for i, name := range []string{"identity", "gaussian-ot", "coral", "lrmf"} {
		m := rep.Maps[i]
		assert.Equal(t, name, m.Name)
		require.NotNil(t, m.Agreement, name)
		// Every map keeps well above chance (0.1; the identity measured
		// 0.32–0.45 here) and no more than the ceiling.
		assert.True(t, *m.Agreement > 0.2 && *m.Agreement <= rep.WithinB+0.05, "%s: %v", name, *m.Agreement)
	}
	assert.Equal(t, 0.0, *rep.Maps[0].GapClosed)
	for _, f := range []string{"digits-projection", "digits-images"} {
		pf, err := os.Open(filepath.Join(dir, f+".png"))
		require.NoError(t, err)
		img, err := png.Decode(pf)
		pf.Close()
		require.NoError(t, err, f)
		assert.Greater(t, img.Bounds().Dx(), 300, f)
		st, err := os.Stat(filepath.Join(dir, f+".svg"))
		require.NoError(t, err)
		assert.Positive(t, st.Size())
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 5, "digits.json and two PNG/SVG pairs, no temporary files")
	return stdout, rep
}

func TestReproduceDigitsPCA(t *testing.T) {
	stdout, rep := runDigits(t, "300", "--dim", "6")
	assert.Equal(t, 300, rep.N)
	assert.Equal(t, 6, rep.Dim)
	assert.Equal(t, "pca", rep.Embedding.Kind)
	assert.Nil(t, rep.PCA)
	assert.Equal(t, "realnvp", rep.Flow.Kind)
	assert.Equal(t, "realnvp", rep.Density.Kind)
	assert.Contains(t, stdout, "lrmf (realnvp)")
}

func TestReproduceDigitsAutoencoderAffine(t *testing.T) {
	if testing.Short() {
		t.Skip("trains an autoencoder (a few seconds)")
	}
	stdout, rep := runDigits(t, "300", "--embed", "ae", "--ae-steps", "300", "--ae-hidden", "64", "--flow", "affine")
	assert.Equal(t, "ae", rep.Embedding.Kind)
	require.NotNil(t, rep.PCA, "the PCA of the same D is reported beside the autoencoder")
	assert.True(t, rep.Embedding.HeldOutMSE > 0 && rep.Embedding.HeldOutMSE < 0.1)
	assert.Equal(t, "affine", rep.Flow.Kind)
	assert.Equal(t, "gaussian", rep.Density.Kind, "an affine flow defaults to the Gaussian density")
	assert.Contains(t, stdout, "pca (same D)")
	assert.Contains(t, stdout, "lrmf (affine)")
}

func TestReproduceDigitsUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--dim", "300"}, "--dim = 300: want 2 to 256"},
		{[]string{"--dim", "1"}, "--dim = 1: want 2 to 256"},
		{[]string{"--n", "3", "--dim", "6", "--k", "1"}, "--dim = 6 exceeds 2·n − 1 = 5"},
		{[]string{"--n", "20000"}, "--n = 20000: the USPS-style domain is built from MNIST's 10000 test digits"},
		{[]string{"--embed", "vae"}, `--embed "vae": want pca or ae`},
		{[]string{"--flow", "glow2"}, `--flow "glow2": want one of affine, realnvp`},
		{[]string{"--density", "affine"}, `--density "affine": want one of gaussian`},
		{[]string{"--k", "0"}, "--k = 0: want 1 to n − 1"},
		{[]string{"--ae-steps", "10"}, "--ae-steps and --ae-hidden apply to --embed ae only"},
		{[]string{"--batch", "3000"}, "--batch = 3000"},
		{[]string{"--blocks", "-1"}, "--blocks, --hidden, --depth"},
		{[]string{"--flow", "realnvp,glow", "--density", "glow"}, `--density "glow": want one density per --flow (2)`},
		{[]string{"--flow", "realnvp,glo"}, `--flow "glo": want one of`},
		{[]string{"--flow", "glow,affine", "--density", "glow,affine"}, `--density "affine": want one of`},
	} {
		code, _, stderr := lrmfRun(append([]string{"reproduce", "digits", "--out", t.TempDir()}, tc.args...)...)
		assert.Equal(t, exitUsage, code, "%v", tc.args)
		assert.Contains(t, stderr, tc.msg, "%v", tc.args)
	}
	code, _, stderr := lrmfRun("reproduce", "example-2.2", "--dim", "4", "--out", t.TempDir())
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "--dim applies to digits only")

	// A missing MNIST directory is an error naming it (exit 1, not usage).
	dir := t.TempDir()
	code, _, stderr = lrmfRun("reproduce", "digits", "--n", "50", "--mnist-dir", dir, "--out", t.TempDir(), "--quiet")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, dir)
}

// A list of flows aligns once with each: one LRMF row per flow, each with
// its held-out LRMF and verdict, in the table and in digits.json.
func TestReproduceDigitsGlowBesideRealNVP(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := lrmfRun("reproduce", "digits", "--n", "200", "--dim", "4", "--steps", "60", "--fit-steps", "60",
		"--flow", "realnvp,glow", "--blocks", "2", "--hidden", "8", "--quiet", "--out", dir)
	require.Equal(t, exitOK, code, "stderr: %s", stderr)
	for _, s := range []string{"alignment: flow realnvp, density realnvp", "alignment: flow glow, density glow", "held-out",
		"lrmf (realnvp)", "lrmf (glow)", "LRMF (held-out)", "verdict", "goal: not met (realnvp "} {
		assert.Contains(t, stdout, s)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "digits.json"))
	require.NoError(t, err)
	var rep struct {
		digitsJSON
		Alignments []struct {
			Map  string `json:"map"`
			Flow struct {
				Kind   string `json:"kind"`
				Blocks int    `json:"blocks"`
			} `json:"flow"`
			Density struct {
				Kind string `json:"kind"`
			} `json:"density"`
			Status    string   `json:"status"`
			LRMF      *float64 `json:"lrmf"`
			LRMFSE    *float64 `json:"lrmf_se"`
			Verdict   string   `json:"verdict"`
			Steps     int      `json:"steps"`
			Agreement *float64 `json:"agreement"`
			Joint     struct {
				Steps int `json:"steps"`
			} `json:"joint"`
			FitA struct {
				Steps int `json:"steps"`
			} `json:"fit_a"`
		} `json:"alignments"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))
	var names []string
	for _, m := range rep.Maps {
		names = append(names, m.Name)
	}
	assert.Equal(t, []string{"identity", "gaussian-ot", "coral", "lrmf", "lrmf-glow"}, names)
	require.Len(t, rep.Alignments, 2)
	assert.Equal(t, "realnvp", rep.Flow.Kind, "the top-level fields are the first alignment's")
	for i, kind := range []string{"realnvp", "glow"} {
		a := rep.Alignments[i]
		assert.Equal(t, names[3+i], a.Map)
		assert.Equal(t, kind, a.Flow.Kind)
		assert.Equal(t, 2, a.Flow.Blocks)
		assert.Equal(t, kind, a.Density.Kind)
		assert.Equal(t, 60, a.Steps)
		assert.Equal(t, 60, a.Joint.Steps)
		assert.Equal(t, 60, a.FitA.Steps)
		assert.Contains(t, []string{"converged", "not-converged", "undershot", "inconclusive", "distinguishable"}, a.Status)
		assert.True(t, strings.HasPrefix(a.Verdict, a.Status+": LRMF = "), a.Verdict)
		require.NotNil(t, a.LRMF, kind)
		require.NotNil(t, a.LRMFSE, kind)
		assert.Positive(t, *a.LRMFSE, "a held-out LRMF has a standard error")
		require.NotNil(t, a.Agreement, kind)
		assert.Equal(t, *rep.Maps[3+i].Agreement, *a.Agreement)
		assert.Contains(t, stdout, a.Verdict)
	}
}

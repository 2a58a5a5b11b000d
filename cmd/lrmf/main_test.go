package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/native"
)

// lrmfRun runs the command line in-process and returns exit status, stdout
// and stderr.
func lrmfRun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAlignDefaultWritesReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	// Affine + Gaussian on the built-in moons: the Gaussian family sees
	// T(A) and B as one (held-out LRMF within δ; lr 0.01 because at the
	// default 0.003, 500 steps leave it at 0.091 ± 0.015, inconclusive), but
	// an affine map cannot fold the arms onto each other, and the
	// two-sample test says so: the verdict is distinguishable, exit 3, and
	// the report is still written.
	code, stdout, stderr := lrmfRun("align", "--out", dir, "--steps", "500", "--lr", "0.01", "--flow", "affine", "--density", "gaussian")
	require.Equal(t, 3, code, "stderr: %s", stderr)
	assert.Contains(t, stdout, "distinguishable: LRMF = ")
	assert.Contains(t, stdout, "the density family cannot see the difference")
	var rep map[string]any
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &rep))
	for _, k := range []string{"converged", "lrmf", "c_ab", "steps", "seconds", "ms_per_step", "history", "config"} {
		assert.Contains(t, rep, k)
	}
	assert.Equal(t, false, rep["converged"])
	assert.Equal(t, "distinguishable", rep["status"])
	assert.Len(t, rep["history"], 500)
	cfg := rep["config"].(map[string]any)
	assert.Equal(t, "affine", cfg["flow"].(map[string]any)["kind"])
	assert.Contains(t, rep, "arm_accuracy")
	assert.EqualValues(t, 500, cfg["steps"])
	y, err := data.ReadFile(filepath.Join(dir, "transformed.csv"))
	require.NoError(t, err)
	r, c := y.Dims()
	assert.Equal(t, [2]int{2000, 2}, [2]int{r, c})
}

func TestAlignFilesAndNotConverged(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.npy")
	code, _, stderr := lrmfRun("data", "blobs", "--out", a, "--n", "500")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = lrmfRun("data", "blobs", "--part", "b", "--out", b, "--n", "500")
	require.Equal(t, 0, code, stderr)

	dtype := "float32" // the ref backend (CGO_ENABLED=0) computes in float64 only
	if native.DefaultBackend() == "ref" {
		dtype = "float64"
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := lrmfRun("align", "--a", a, "--b", b, "--out", out, "--steps", "1500", "--lr", "0.05", "--dtype", dtype, "--quiet", "--flow", "affine", "--density", "gaussian")
	require.Equal(t, 0, code, "stdout %s stderr %s", stdout, stderr)

	// Two steps cannot align blobs: the run ends, is reported, and exits 3.
	out2 := filepath.Join(dir, "out2")
	code, stdout, _ = lrmfRun("align", "--a", a, "--b", b, "--out", out2, "--steps", "2", "--quiet", "--flow", "affine", "--density", "gaussian")
	assert.Equal(t, exitNotConverged, code)
	assert.Contains(t, stdout, "not-converged")
	raw, err := os.ReadFile(filepath.Join(out2, "report.json"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"converged": false`)
}

func write(t *testing.T, dir, name, content string) string {
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// Every bad input ends with a clear message, the documented exit status and
// nothing written to --out.
func TestAlignBadInput(t *testing.T) {
	dir := t.TempDir()
	good := write(t, dir, "good.csv", "x,y\n1,2\n2,1\n3,5\n4,4\n5,0\n")
	nan := write(t, dir, "nan.csv", "x,y\n1,2\n2,nan\n3,5\n")
	inf := write(t, dir, "inf.csv", "1,2\n2,3\n-Inf,5\n")
	ragged := write(t, dir, "ragged.csv", "1,2\n2,3\n3\n")
	empty := write(t, dir, "empty.csv", "")
	header := write(t, dir, "header.csv", "x,y\n")
	three := write(t, dir, "three.csv", "1,2,3\n2,3,4\n4,5,7\n")
	notDir := write(t, dir, "file", "x")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nan", []string{"--a", nan, "--b", good}, 1, "nan.csv:3: column 2"},
		{"inf", []string{"--a", good, "--b", inf}, 1, "inf.csv:3: column 1"},
		{"ragged", []string{"--a", ragged, "--b", good}, 1, "ragged.csv:3"},
		{"empty", []string{"--a", empty, "--b", good}, 1, "empty.csv"},
		{"header only", []string{"--a", good, "--b", header}, 1, "header.csv"},
		{"dims", []string{"--a", good, "--b", three}, 1, "same dimension"},
		{"missing", []string{"--a", filepath.Join(dir, "nope.csv"), "--b", good}, 1, "nope.csv"},
		{"batch", []string{"--a", good, "--b", good, "--batch", "6"}, 2, "--batch = 6 exceeds"},
		{"unknown flag", []string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
		{"bad flow", []string{"--flow", "maf"}, 2, `unknown --flow "maf"`},
		{"bad dtype", []string{"--dtype", "float16"}, 2, "--dtype"},
		{"bad backend", []string{"--backend", "tpu"}, 2, `unknown backend "tpu"`},
		{"ref float32", []string{"--backend", "ref", "--dtype", "float32"}, 2, "float64 only"},
		{"bad lr", []string{"--lr", "-1"}, 2, "--lr = -1"},
		{"nan lr", []string{"--lr", "NaN"}, 2, "--lr = NaN"},
		{"only a", []string{"--a", good}, 2, "--a and --b"},
		{"bad data", []string{"--data", "spirals"}, 2, "spirals"},
		{"positional", []string{"extra"}, 2, `unexpected argument "extra"`},
		{"unwritable out", []string{"--out", filepath.Join(notDir, "sub")}, 1, "--out"},
		{"realnvp in 1-D", []string{"--data", "gauss1d"}, 1, "at least 2 dimensions"},
		{"bad scale", []string{"--scale", "softplus"}, 2, `unknown --scale "softplus"`},
		{"bad hidden", []string{"--hidden", "-1"}, 2, "--hidden = -1"},
		{"bad scale bound", []string{"--scale-bound", "-1"}, 2, "--scale-bound = -1"},
		{"infinite scale bound", []string{"--scale-bound", "Inf"}, 2, "--scale-bound = +Inf"},
		{"bad solver", []string{"--flow", "ffjord", "--solver", "euler"}, 2, `unknown --solver "euler"`},
		{"bad trace", []string{"--density", "ffjord", "--trace", "approx"}, 2, `unknown --trace "approx"`},
		{"ode flag without ffjord", []string{"--atol", "1e-3"}, 2, "--atol applies to ffjord models only"},
		{"probes without hutchinson", []string{"--flow", "ffjord", "--probes", "2"}, 2, "--probes needs --trace hutchinson"},
		{"no tolerance", []string{"--flow", "ffjord", "--atol", "0", "--rtol", "0"}, 2, "--rtol = 0"},
		{"ode max steps", []string{"--flow", "ffjord", "--ode-max-steps", "0"}, 2, "--ode-max-steps = 0"},
		{"solver gives up", []string{"--flow", "ffjord", "--density", "gaussian", "--ode-max-steps", "1"}, 1, "maximum number of steps"},
		{"resume missing", []string{"--resume", filepath.Join(dir, "nope.lrmf")}, 1, "nope.lrmf"},
		{"resume not a checkpoint", []string{"--resume", good}, 1, "not a valid lrmf checkpoint"},
		{"resume with model flag", []string{"--resume", good, "--flow", "affine"}, 2, "--flow cannot be changed when resuming"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"align", "--quiet", "--steps", "5", "--fit-steps", "5", "--hidden", "4"}, c.args...)
			if strings.HasPrefix(c.name, "resume") {
				args = append([]string{"align", "--quiet"}, c.args...)
			}
			if c.name != "unwritable out" {
				args = append(args, "--out", out)
			}
			code, _, stderr := lrmfRun(args...)
			assert.Equal(t, c.code, code, "stderr: %s", stderr)
			assert.Contains(t, stderr, c.want)
			entries, _ := os.ReadDir(out)
			assert.Empty(t, entries, "files were written to --out")
		})
	}
}

// An FFJORD run reports its solver work, and the solver's typed errors
// reach the user with a hint.
func TestAlignFFJORD(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := lrmfRun("align", "--out", dir, "--quiet", "--flow", "ffjord", "--density", "gaussian", "--solver", "rk4",
		"--ode-steps", "4", "--steps", "20", "--prefit", "20", "--n", "300", "--batch", "64")
	require.Contains(t, []int{0, 3}, code, "stderr: %s", stderr)
	assert.Contains(t, stdout, "NFE (flow): 16.0 per row and transform forward")
	var rep struct {
		NFE struct {
			Flow struct {
				Forward  float64 `json:"forward_per_row"`
				Backward float64 `json:"backward_per_row"`
			} `json:"flow"`
		} `json:"nfe"`
		Solver struct {
			Flow struct {
				Solves int `json:"solves"`
			} `json:"flow"`
		} `json:"solver"`
		Config struct {
			Flow           map[string]any `json:"flow"`
			IdentityPrefit int            `json:"identity_prefit"`
		} `json:"config"`
		PrefitSteps int `json:"prefit_steps"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &rep))
	// RK4 with 4 steps: 16 evaluations forward; the backward pass rebuilds
	// 3 stage inputs and evaluates 4 stages per step.
	assert.Equal(t, 16.0, rep.NFE.Flow.Forward)
	assert.Equal(t, 28.0, rep.NFE.Flow.Backward)
	// 20 pre-fit + 20 joint steps × 2 blocks, plus the evaluation of T(A).
	assert.Equal(t, 2*(20+20+1), rep.Solver.Flow.Solves)
	assert.Equal(t, "rk4", rep.Config.Flow["solver"])
	assert.Equal(t, 20, rep.Config.IdentityPrefit)
	assert.Equal(t, 20, rep.PrefitSteps)
}

func TestHelpAndUsage(t *testing.T) {
	code, stdout, _ := lrmfRun("--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "align")
	code, stdout, _ = lrmfRun("align", "--help")
	assert.Equal(t, 0, code)
	for _, f := range []string{"-a FILE", "-b FILE", "-data", "-flow", "-density", "-steps", "-batch", "-lr", "-seed", "-threshold", "-threads", "-backend", "-dtype", "-out DIR", "Exit status"} {
		assert.Contains(t, stdout, f)
	}
	code, stdout, _ = lrmfRun("help", "data")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "-labels")
	code, _, stderr := lrmfRun("frobnicate")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "unknown command")
	code, _, _ = lrmfRun()
	assert.Equal(t, 2, code)
}

func TestDataCommand(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.csv")
	code, _, stderr := lrmfRun("data", "moons", "--out", p, "--labels", "--n", "100")
	require.Equal(t, 0, code, stderr)
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	assert.Equal(t, "x0,x1,label", lines[0])
	assert.Len(t, lines, 101)
	code, _, stderr = lrmfRun("data", "blobs", "--out", p, "--labels")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "no labels")
	code, _, stderr = lrmfRun("data", "--out", p)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "missing dataset NAME")
}

// A Real NVP run writes a checkpoint; apply maps data with it (and back),
// and an interrupted run resumed from its checkpoint ends like the
// uninterrupted one.
func TestCheckpointApplyResume(t *testing.T) {
	dir := t.TempDir()
	common := []string{"align", "--quiet", "--dtype", "float64", "--n", "300", "--batch", "64", "--hidden", "8", "--blocks", "2", "--fit-steps", "20", "--steps", "40", "--threads", "2",
		"--restarts", "1"} // periodic checkpoints and --resume need a single restart
	full := filepath.Join(dir, "full")
	code, _, stderr := lrmfRun(append(common, "--out", full)...)
	require.Contains(t, []int{0, 3}, code, stderr)
	ck := filepath.Join(full, "checkpoint.lrmf")

	// apply: T(A) from the checkpoint equals transformed.csv, and the
	// inverse brings it back.
	a := filepath.Join(dir, "a.csv")
	code, _, stderr = lrmfRun("data", "moons", "--n", "300", "--out", a)
	require.Equal(t, 0, code, stderr)
	ta := filepath.Join(dir, "ta.npy")
	code, _, stderr = lrmfRun("apply", "--model", ck, "--in", a, "--out", ta)
	require.Equal(t, 0, code, stderr)
	got, err := data.ReadFile(ta)
	require.NoError(t, err)
	want, err := data.ReadFile(filepath.Join(full, "transformed.csv"))
	require.NoError(t, err)
	assert.InDeltaSlice(t, want.RawMatrix().Data, got.RawMatrix().Data, 1e-12)
	back := filepath.Join(dir, "back.csv")
	code, _, stderr = lrmfRun("apply", "--model", ck, "--in", ta, "--out", back, "--inverse")
	require.Equal(t, 0, code, stderr)
	orig, _ := data.ReadFile(a)
	rt, _ := data.ReadFile(back)
	assert.InDeltaSlice(t, orig.RawMatrix().Data, rt.RawMatrix().Data, 1e-9)

	three := write(t, dir, "three.csv", "1,2,3\n4,5,6\n")
	code, _, stderr = lrmfRun("apply", "--model", ck, "--in", three, "--out", filepath.Join(dir, "x.csv"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "3 columns")

	// Interrupt at step 15 (a canceled context), then resume.
	interruptAndResume(t, common, full, filepath.Join(dir, "part"))
}

// interruptAndResume runs lrmf with args (an align command line without
// --out), cancels it once its first periodic checkpoint (every 15 steps)
// is in part, resumes it there, and asserts that the resumed run's T(A)
// equals the uninterrupted run's in full, byte for byte.
func interruptAndResume(t *testing.T, args []string, full, part string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	go func() {
		for {
			if _, err := os.Stat(filepath.Join(part, "checkpoint.lrmf")); err == nil {
				cancel()
				return
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
	code := run(ctx, append(args, "--out", part, "--checkpoint-every", "15"), &out, &errb)
	cancel()
	if code == 1 {
		assert.Contains(t, errb.String(), "--resume")
	}
	code, _, stderr := lrmfRun("align", "--quiet", "--resume", filepath.Join(part, "checkpoint.lrmf"), "--out", part, "--threads", "2")
	require.Contains(t, []int{exitOK, exitNotConverged}, code, stderr)
	r1, _ := os.ReadFile(filepath.Join(full, "transformed.csv"))
	r2, _ := os.ReadFile(filepath.Join(part, "transformed.csv"))
	assert.Equal(t, string(r1), string(r2), "resumed run differs from the uninterrupted one")
}

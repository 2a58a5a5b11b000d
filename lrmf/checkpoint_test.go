package lrmf

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

func resumeConfig(be native.Backend) Config {
	return Config{
		Backend:    be,
		Flow:       model.ModelSpec{Kind: "realnvp", Blocks: 2, Hidden: 8},
		Density:    model.ModelSpec{Kind: "realnvp", Blocks: 2, Hidden: 8},
		Steps:      60,
		LR:         1e-3,
		Seed:       7,
		Restarts:   1, // only single-restart runs resume
		FitOptions: FitOptions{FitSteps: 30, Batch: 64},
	}
}

// An interrupted run resumed from its checkpoint ends bit-identical to the
// uninterrupted run (same configuration, CPU backend, same thread count).
// FFJORD with Hutchinson probes, which come from the run's random stream:
// the checkpoint's RNG state must restore them too.
func resumeConfigFFJORD(be native.Backend) Config {
	o := model.ModelSpec{Kind: "ffjord", Hidden: 6, Depth: 2, Solver: "rk4", ODESteps: 3, Trace: "hutchinson", Probes: 1}
	return Config{Backend: be, Flow: o, Density: o, Steps: 40, LR: 1e-3, Seed: 7, IdentityPrefit: 10, Restarts: 1, FitOptions: FitOptions{FitSteps: 10, Batch: 32}}
}

// resumeConfigEarlyStopping evaluates the validation LRMF every 5 steps
// under the plateau schedule, so that the early-stopping state — best
// parameters, best value and step, last improvement, the learning-rate
// factor — decides the resumed run's steps.
func resumeConfigEarlyStopping(be native.Backend) Config {
	c := resumeConfig(be)
	c.Steps, c.EvalEvery, c.Patience, c.Schedule, c.LR = 400, 5, 60, Plateau, 1e-2
	return c
}

func TestResumeIsBitIdentical(t *testing.T) {
	for name, mk := range map[string]func(native.Backend) Config{"realnvp": resumeConfig, "ffjord": resumeConfigFFJORD, "early-stopping": resumeConfigEarlyStopping} {
		t.Run(name, func(t *testing.T) { testResume(t, mk) })
	}
}

func testResume(t *testing.T, resumeConfig func(native.Backend) Config) {
	p := data.MoonsPair(300, 0.05, 50, 2)
	be, err := native.Open(native.DefaultBackend(), native.Float64, 2)
	require.NoError(t, err)
	defer be.Close()

	full, err := Align(context.Background(), p.A, p.B, resumeConfig(be))
	require.NoError(t, err)
	t.Logf("joint phase: %+v", full.Joint)
	stop := 25
	if full.Joint.Evaluations > 0 {
		// Interrupt after the step whose parameters the run kept, so that
		// the resumed run must restore them (and the rest of the
		// early-stopping state) from the checkpoint.
		stop = full.Joint.BestStep + 7
		require.Less(t, stop, full.Joint.Steps, "the run must go on past its best step")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cfg := resumeConfig(be)
	var saved *Checkpoint
	cfg.Checkpoint = func(c *Checkpoint) error { saved = c; return nil }
	cfg.ProgressEvery = 1
	cfg.Progress = func(pr Progress) {
		if pr.Phase == "joint" && pr.Step == stop {
			cancel()
		}
	}
	part, err := Align(ctx, p.A, p.B, cfg)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, Canceled, part.Status)
	require.NotNil(t, saved)
	require.Equal(t, stop, saved.Step())

	// Through the file format, as the command does.
	path := filepath.Join(t.TempDir(), "ck.lrmf")
	require.NoError(t, saved.WriteFile(path))
	ck, err := ReadCheckpoint(path)
	require.NoError(t, err)

	cfg2 := ck.Config()
	cfg2.Backend, cfg2.Resume = be, ck
	resumed, err := Align(context.Background(), p.A, p.B, cfg2)
	require.NoError(t, err)
	assert.Equal(t, math.Float64bits(full.LRMF), math.Float64bits(resumed.LRMF), "LRMF %v vs %v", full.LRMF, resumed.LRMF)
	assert.Equal(t, full.History, resumed.History)
	assert.Equal(t, full.CAB, resumed.CAB)
	assert.Equal(t, full.Transformed.RawMatrix().Data, resumed.Transformed.RawMatrix().Data)
	assert.Equal(t, full.Joint, resumed.Joint)
	assert.Equal(t, full.FitA, resumed.FitA)
	assert.Equal(t, full.HeldOut, resumed.HeldOut)

	// The saved flow maps data exactly like the trained one.
	f, err := ck.Flow(be)
	require.NoError(t, err)
	x := toTensor(be, p.A)
	y1, _, err := model.Transform(be, f, x)
	require.NoError(t, err)
	assert.Equal(t, 300, y1.Rows())
}

func TestCheckpointRejectsBadFiles(t *testing.T) {
	p := data.MoonsPair(200, 0.05, 50, 2)
	be := native.NewRef()
	cfg := affineGaussian(Config{Backend: be, Steps: 5, Seed: 1, FitOptions: FitOptions{Batch: 50}})
	var saved *Checkpoint
	cfg.Checkpoint = func(c *Checkpoint) error { saved = c; return nil }
	_, err := Align(context.Background(), p.A, p.B, cfg)
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = saved.WriteTo(&buf)
	require.NoError(t, err)
	good := buf.Bytes()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, b, 0o644))
		return path
	}

	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)/2] ^= 0xff
	_, err = ReadCheckpoint(write("corrupt", corrupt))
	require.ErrorIs(t, err, ErrBadCheckpoint)
	assert.Contains(t, err.Error(), "checksum")

	_, err = ReadCheckpoint(write("truncated", good[:len(good)-100]))
	require.ErrorIs(t, err, ErrBadCheckpoint)

	v3 := append([]byte(nil), good...)
	v3[8] = CheckpointVersion + 1
	_, err = ReadCheckpoint(write("v3", v3))
	require.ErrorIs(t, err, ErrBadCheckpoint)
	assert.Contains(t, err.Error(), fmt.Sprintf("version %d", CheckpointVersion+1))

	_, err = ReadCheckpoint(write("text", []byte("x,y\n1,2\n")))
	require.ErrorIs(t, err, ErrBadCheckpoint)
	_, err = ReadCheckpoint(filepath.Join(dir, "missing"))
	require.Error(t, err)

	// Resuming on other data, or other models, is refused.
	ck, err := ReadCheckpoint(write("good", good))
	require.NoError(t, err)
	other := data.MoonsPair(200, 0.05, 50, 3)
	cfg2 := ck.Config()
	cfg2.Backend, cfg2.Resume = be, ck
	_, err = Align(context.Background(), other.A, other.B, cfg2)
	require.ErrorContains(t, err, "other data")
	short := data.MoonsPair(150, 0.05, 50, 2)
	_, err = Align(context.Background(), short.A, short.B, cfg2)
	require.ErrorContains(t, err, "150+150")
	cfg3 := cfg2
	cfg3.Flow = model.ModelSpec{Kind: "realnvp"}
	_, err = Align(context.Background(), p.A, p.B, cfg3)
	require.Error(t, err)
	require.False(t, errors.Is(err, context.Canceled))
}

// A version-1 checkpoint (before the held-out split) still gives its flow,
// as lrmf apply needs; resuming from it is refused with a message saying
// why.
func TestCheckpointVersion1(t *testing.T) {
	p := data.MoonsPair(200, 0.05, 50, 2)
	be := native.NewRef()
	cfg := affineGaussian(Config{Backend: be, Steps: 5, Seed: 1, FitOptions: FitOptions{Batch: 50}})
	var saved *Checkpoint
	cfg.Checkpoint = func(c *Checkpoint) error { saved = c; return nil }
	res, err := Align(context.Background(), p.A, p.B, cfg)
	require.NoError(t, err)
	// The file as version 1 wrote it: its metadata had none of version
	// 2's fields.
	meta := saved.meta
	meta.Version = 1
	raw, err := json.Marshal(&meta)
	require.NoError(t, err)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &fields))
	for _, k := range []string{"fit_a", "fit_b", "prefit_steps", "prefit_mse", "restart", "restart_seed", "early_stop"} {
		delete(fields, k)
	}
	raw, err = json.Marshal(fields)
	require.NoError(t, err)
	var buf bytes.Buffer
	buf.WriteString(checkpointMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(1))
	binary.Write(&buf, binary.LittleEndian, uint64(len(raw)))
	buf.Write(raw)
	for _, m := range meta.Tensors {
		for _, v := range saved.tensors[m.Name] {
			binary.Write(&buf, binary.LittleEndian, math.Float64bits(v))
		}
	}
	binary.Write(&buf, binary.LittleEndian, crc32.ChecksumIEEE(buf.Bytes()))
	path := filepath.Join(t.TempDir(), "v1.lrmf")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))

	ck, err := ReadCheckpoint(path)
	require.NoError(t, err)
	f, err := ck.Flow(be)
	require.NoError(t, err)
	y, err := EvalFlow(be, f, p.A)
	require.NoError(t, err)
	assert.Equal(t, res.Transformed.RawMatrix().Data, y.RawMatrix().Data)

	cfg2 := ck.Config()
	cfg2.Backend, cfg2.Resume = be, ck
	_, err = Align(context.Background(), p.A, p.B, cfg2)
	assert.ErrorContains(t, err, "older lrmf (format 1")
}

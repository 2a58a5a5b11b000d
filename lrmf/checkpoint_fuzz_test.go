package lrmf

// Fuzz target for the checkpoint reader (issue #16), the file lrmf apply
// --model and lrmf align --resume are handed. For any input: no panic, no
// hang, no allocation beyond what the file holds; a refusal wraps
// ErrBadCheckpoint; an accepted file writes back to a file that reads back
// to the same bytes, and its flow is rebuilt (or refused with an error)
// without a panic. With fixCRC the input's last four bytes are replaced by
// the CRC-32 of the rest, so that mutations get past the checksum and reach
// the metadata and tensor parsing. Seeds: the committed corpus in
// testdata/fuzz/FuzzReadCheckpoint/ (version-2 and version-1 files of a
// small run, written by TestWriteCheckpointFuzzCorpus). To fuzz (CI does
// 30 s):
//
//	go test -run '^$' -fuzz '^FuzzReadCheckpoint$' -fuzztime 30s -fuzzminimizetime 10s ./lrmf/

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

	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// fuzzFlowLimit bounds the sizes of a flow the fuzz target rebuilds: a
// checkpoint that checks out describes its models, and Flow builds what it
// describes (a 10⁶-wide layer is a legitimate, large, model).
func fuzzFlowSmall(c *Checkpoint) bool {
	s := c.meta.Config.Flow.Normalized()
	return c.meta.Dim <= 16 && s.Blocks <= 8 && s.Hidden <= 64 && s.Depth <= 4 && s.ODESteps <= 8 && s.Probes <= 4
}

func FuzzReadCheckpoint(f *testing.F) {
	f.Add([]byte(checkpointMagic), false)
	f.Add([]byte("x,y\n1,2\n"), true)
	be := native.NewRef()
	f.Fuzz(func(t *testing.T, b []byte, fixCRC bool) {
		if fixCRC && len(b) >= 4 {
			b = append([]byte(nil), b...)
			binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
		}
		c, err := parseCheckpoint(b)
		if err != nil {
			if !errors.Is(err, ErrBadCheckpoint) {
				t.Fatalf("refused without ErrBadCheckpoint: %v", err)
			}
			return
		}
		for _, m := range c.meta.Tensors {
			if v := c.tensors[m.Name]; len(v) != m.Rows*m.Cols {
				t.Fatalf("tensor %q is %d×%d but holds %d values", m.Name, m.Rows, m.Cols, len(v))
			}
		}
		var w1 bytes.Buffer
		if _, err := c.WriteTo(&w1); err != nil {
			t.Fatalf("accepted checkpoint does not write: %v", err)
		}
		c2, err := parseCheckpoint(w1.Bytes())
		if err != nil {
			t.Fatalf("written checkpoint does not read back: %v", err)
		}
		var w2 bytes.Buffer
		if _, err := c2.WriteTo(&w2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w1.Bytes(), w2.Bytes()) {
			t.Fatal("write → read → write changed the file")
		}
		if fuzzFlowSmall(c) {
			_, _ = c.Flow(be) // an error is fine; a panic is not
		}
	})
}

// craftedCheckpoint returns a version-2 file with the metadata meta,
// payload bytes of tensors and a valid checksum.
func craftedCheckpoint(meta string, payload []byte) []byte {
	var buf bytes.Buffer
	buf.WriteString(checkpointMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(CheckpointVersion))
	binary.Write(&buf, binary.LittleEndian, uint64(len(meta)))
	buf.WriteString(meta)
	buf.Write(payload)
	binary.Write(&buf, binary.LittleEndian, crc32.ChecksumIEEE(buf.Bytes()))
	return buf.Bytes()
}

// Checksummed files with sizes no writer makes are refused, not a panic:
// 3037000500² overflows int64 (makeslice panicked before the size check
// divided), and a flow of dimension -1 (the affine flow's maker panicked
// in Flow, which builds the model before checking tensor shapes).
var craftedCheckpoints = map[string][]byte{
	"tensor-size-overflow": craftedCheckpoint(`{"version":2,"dim":2,"tensors":[{"name":"x","rows":3037000500,"cols":3037000500}]}`, nil),
	"dim-negative-affine": craftedCheckpoint(`{"version":2,"config":{"flow":{"kind":"affine"}},"dim":-1,"tensors":[{"name":"flow/A","rows":1,"cols":1}]}`,
		make([]byte, 8)),
	"tensor-listed-twice": craftedCheckpoint(`{"version":2,"dim":1,"tensors":[{"name":"x","rows":1,"cols":1},{"name":"x","rows":1,"cols":1}]}`,
		make([]byte, 16)),
}

func TestCheckpointRejectsCraftedSizes(t *testing.T) {
	for name, raw := range craftedCheckpoints {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := ReadCheckpoint(path)
			if !errors.Is(err, ErrBadCheckpoint) {
				t.Fatalf("want ErrBadCheckpoint, got %v (checkpoint %v)", err, c != nil)
			}
		})
	}
}

// TestWriteCheckpointFuzzCorpus rewrites the committed seed corpus of
// FuzzReadCheckpoint when LRMF_WRITE_FUZZ_CORPUS=1: a version-2 checkpoint
// of a small Real NVP/Gaussian run, the same with a validation part (early-
// stopping state, best parameters), its version-1 form, and the crafted
// files that made the reader panic.
func TestWriteCheckpointFuzzCorpus(t *testing.T) {
	if os.Getenv("LRMF_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set LRMF_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz/FuzzReadCheckpoint")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReadCheckpoint")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := data.MoonsPair(40, 0.05, 50, 2)
	write := func(name string, raw []byte) {
		// The corpus file format of go test -fuzz.
		s := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(false)\n", raw)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []struct {
		name string
		val  float64
	}{{"v2-realnvp-gaussian", -1}, {"v2-early-stopping", 0.25}} {
		cfg := affineGaussian(Config{Backend: native.NewRef(), Steps: 4, Seed: 1, Validation: v.val, FitOptions: FitOptions{Batch: 4, EvalEvery: 2, GradientFit: true, FitSteps: 2}})
		cfg.Flow = model.ModelSpec{Kind: "realnvp", Blocks: 1, Hidden: 2, Depth: 1}
		var saved *Checkpoint
		cfg.Checkpoint = func(c *Checkpoint) error { saved = c; return nil }
		if _, err := Align(context.Background(), p.A, p.B, cfg); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := saved.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		write(v.name, buf.Bytes())
		if v.val < 0 {
			write("v1-realnvp-gaussian", version1(t, saved))
		}
	}
	for name, raw := range craftedCheckpoints {
		write(name, raw)
	}
}

// version1 encodes c as version 1 wrote it: none of version 2's metadata.
func version1(t *testing.T, c *Checkpoint) []byte {
	meta := c.meta
	meta.Version = 1
	raw, err := json.Marshal(&meta)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"fit_a", "fit_b", "prefit_steps", "prefit_mse", "restart", "restart_seed", "early_stop"} {
		delete(fields, k)
	}
	if raw, err = json.Marshal(fields); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.WriteString(checkpointMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(1))
	binary.Write(&buf, binary.LittleEndian, uint64(len(raw)))
	buf.Write(raw)
	for _, m := range meta.Tensors {
		for _, v := range c.tensors[m.Name] {
			binary.Write(&buf, binary.LittleEndian, math.Float64bits(v))
		}
	}
	binary.Write(&buf, binary.LittleEndian, crc32.ChecksumIEEE(buf.Bytes()))
	return buf.Bytes()
}

package lrmf

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"os"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/atomicfile"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// Checkpoint file format, version 2 (little-endian):
//
//	"LRMFCKPT"  uint32 version  uint64 n  n bytes of JSON metadata
//	the tensors listed in the metadata, in order, as float64 row-major
//	uint32 CRC-32 (IEEE) of everything before it
//
// The metadata carries the configuration (with the split's fractions and
// seed), the joint-phase step, c_AB on the training and validation parts,
// how the fits ended, the optimiser step count, the RNG and batch-sampler
// states, the history, the early-stopping state (its best parameters are
// tensors "best/i") and a fingerprint of the data, so a resumed run
// continues exactly where the saved one stopped. Version 1 (before the
// held-out split) had no split, fit reports or early-stopping state:
// ReadCheckpoint still reads it, for Checkpoint.Flow (lrmf apply), but a
// run cannot resume from it.
const (
	checkpointMagic   = "LRMFCKPT"
	CheckpointVersion = 2
)

// ErrBadCheckpoint is returned (wrapped) for a file that is not a valid
// checkpoint of this version.
var ErrBadCheckpoint = errors.New("not a valid lrmf checkpoint")

type samplerState struct {
	Perm []int32 `json:"perm"`
	Pos  int     `json:"pos"`
}

type tensorMeta struct {
	Name string `json:"name"`
	Rows int    `json:"rows"`
	Cols int    `json:"cols"`
}

type checkpointMeta struct {
	Version   int          `json:"version"`
	Config    Config       `json:"config"`
	Backend   string       `json:"backend"`
	DType     string       `json:"dtype"`
	Dim       int          `json:"dim"`
	RowsA     int          `json:"rows_a"`
	RowsB     int          `json:"rows_b"`
	DataHash  string       `json:"data_sha256"`
	Step      int          `json:"step"`
	FitStepsA int          `json:"fit_steps_a"`
	FitStepsB int          `json:"fit_steps_b"`
	CAB       float64      `json:"c_ab"`
	AdamT     int          `json:"adam_t"`
	RNG       []byte       `json:"rng"`
	SamplerA  samplerState `json:"sampler_a"`
	SamplerB  samplerState `json:"sampler_b"`
	History   []Point      `json:"history"`
	Tensors   []tensorMeta `json:"tensors"`
	// Since version 2.
	FitA        PhaseReport `json:"fit_a"`
	FitB        PhaseReport `json:"fit_b"`
	PrefitSteps int         `json:"prefit_steps,omitempty"`
	PrefitMSE   float64     `json:"prefit_mse,omitempty"`
	Restart     int         `json:"restart"`      // the restart saved (0-based)
	RestartSeed uint64      `json:"restart_seed"` // its seed
	EarlyStop   *esState    `json:"early_stop,omitempty"`
}

// Checkpoint is the saved state of an Align run after some joint-phase
// steps: every model's parameters, the optimiser's moments, the random
// state and the configuration. Align writes one through Config.Checkpoint;
// Config.Resume continues from one; Checkpoint.Flow rebuilds the trained T.
type Checkpoint struct {
	meta    checkpointMeta
	tensors map[string][]float64
}

// Config returns the configuration of the saved run.
func (c *Checkpoint) Config() Config { return c.meta.Config }

// Step returns the number of joint-phase steps completed.
func (c *Checkpoint) Step() int { return c.meta.Step }

// Backend returns the name and element type of the backend the run was
// saved from (a run resumes bit-identically only on the same ones).
func (c *Checkpoint) Backend() (name, dtype string) { return c.meta.Backend, c.meta.DType }

// Dim returns the data dimension D.
func (c *Checkpoint) Dim() int { return c.meta.Dim }

// dataHash fingerprints A and B (shapes and float64 bits).
func dataHash(a, b *mat.Dense) string {
	h := sha256.New()
	var buf [8]byte
	for _, m := range []*mat.Dense{a, b} {
		r, c := m.Dims()
		binary.LittleEndian.PutUint64(buf[:], uint64(r))
		h.Write(buf[:])
		binary.LittleEndian.PutUint64(buf[:], uint64(c))
		h.Write(buf[:])
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				binary.LittleEndian.PutUint64(buf[:], math.Float64bits(m.At(i, j)))
				h.Write(buf[:])
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// addParams records the values of ps under prefix.
func (c *Checkpoint) addParams(be native.Backend, prefix string, ps []*model.Param) {
	for _, p := range ps {
		c.addTensor(be, prefix+p.Name, p.Value)
	}
}

func (c *Checkpoint) addTensor(be native.Backend, name string, t *native.Tensor) {
	v := make([]float64, t.Len())
	be.Download(v, t)
	c.meta.Tensors = append(c.meta.Tensors, tensorMeta{Name: name, Rows: t.Rows(), Cols: t.Cols()})
	c.tensors[name] = v
}

// addHost records host values under name, as an n×1 tensor.
func (c *Checkpoint) addHost(name string, v []float64) {
	c.meta.Tensors = append(c.meta.Tensors, tensorMeta{Name: name, Rows: len(v), Cols: 1})
	c.tensors[name] = append([]float64(nil), v...)
}

// host returns the saved n×1 tensor name as host values.
func (c *Checkpoint) host(name string, n int) ([]float64, error) {
	v, ok := c.tensors[name]
	if !ok || len(v) != n {
		return nil, fmt.Errorf("lrmf: %w: no %d values %q", ErrBadCheckpoint, n, name)
	}
	return append([]float64(nil), v...), nil
}

// loadTensor copies the saved tensor name into t, checking its shape.
func (c *Checkpoint) loadTensor(be native.Backend, name string, t *native.Tensor) error {
	v, ok := c.tensors[name]
	if !ok {
		return fmt.Errorf("lrmf: checkpoint has no tensor %q (was it saved with another model?)", name)
	}
	for _, m := range c.meta.Tensors {
		if m.Name == name && (m.Rows != t.Rows() || m.Cols != t.Cols()) {
			return fmt.Errorf("lrmf: checkpoint tensor %q is %d×%d, the model needs %d×%d", name, m.Rows, m.Cols, t.Rows(), t.Cols())
		}
	}
	be.Upload(t, v)
	return nil
}

func (c *Checkpoint) loadParams(be native.Backend, prefix string, ps []*model.Param) error {
	for _, p := range ps {
		if err := c.loadTensor(be, prefix+p.Name, p.Value); err != nil {
			return err
		}
	}
	return nil
}

// Flow rebuilds the trained flow T on be (a device failure, such as GPU
// memory exhausted, is returned as the error).
func (c *Checkpoint) Flow(be native.Backend) (f model.Flow, err error) {
	defer native.RecoverDeviceError(&err)
	mk, err := c.meta.Config.Flow.FlowMaker()
	if err != nil {
		return nil, err
	}
	// The initial values are overwritten by the saved ones.
	f, err = mk(be, c.meta.Dim, rand.New(rand.NewPCG(0, 0)))
	if err != nil {
		return nil, err
	}
	if err := c.loadParams(be, "flow/", f.Params()); err != nil {
		return nil, err
	}
	return f, nil
}

// WriteFile writes the checkpoint to path atomically.
func (c *Checkpoint) WriteFile(path string) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := c.WriteTo(w)
		return err
	})
}

// WriteTo writes the checkpoint in the format described above.
func (c *Checkpoint) WriteTo(w io.Writer) (int64, error) {
	meta, err := json.Marshal(&c.meta)
	if err != nil {
		return 0, fmt.Errorf("lrmf: encoding checkpoint metadata: %w", err)
	}
	crc := crc32.NewIEEE()
	cw := &countWriter{w: io.MultiWriter(w, crc)}
	bw := bufio.NewWriter(cw)
	bw.WriteString(checkpointMagic)
	binary.Write(bw, binary.LittleEndian, uint32(CheckpointVersion))
	binary.Write(bw, binary.LittleEndian, uint64(len(meta)))
	bw.Write(meta)
	var buf [8]byte
	for _, m := range c.meta.Tensors {
		for _, v := range c.tensors[m.Name] {
			binary.LittleEndian.PutUint64(buf[:], math.Float64bits(v))
			bw.Write(buf[:])
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	if err := binary.Write(w, binary.LittleEndian, crc.Sum32()); err != nil {
		return cw.n, err
	}
	return cw.n + 4, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadCheckpoint reads and verifies a checkpoint file.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lrmf: reading checkpoint: %w", err)
	}
	c, err := parseCheckpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func parseCheckpoint(raw []byte) (*Checkpoint, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadCheckpoint}, args...)...)
	}
	if len(raw) < len(checkpointMagic)+4+8+4 || string(raw[:len(checkpointMagic)]) != checkpointMagic {
		return nil, bad("missing the %q header", checkpointMagic)
	}
	p := len(checkpointMagic)
	if v := binary.LittleEndian.Uint32(raw[p:]); v != CheckpointVersion && v != 1 {
		return nil, fmt.Errorf("%w: format version %d, this lrmf reads versions 1 to %d", ErrBadCheckpoint, v, CheckpointVersion)
	}
	body, sum := raw[:len(raw)-4], binary.LittleEndian.Uint32(raw[len(raw)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, bad("checksum mismatch (the file is truncated or corrupt)")
	}
	p += 4
	n := binary.LittleEndian.Uint64(raw[p:])
	p += 8
	if n > uint64(len(body)-p) {
		return nil, bad("metadata length %d exceeds the file", n)
	}
	c := &Checkpoint{tensors: map[string][]float64{}}
	dec := json.NewDecoder(bytes.NewReader(body[p : p+int(n)]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c.meta); err != nil {
		return nil, bad("metadata: %v", err)
	}
	p += int(n)
	if c.meta.Dim < 1 {
		// Flow would build a model of this dimension before any shape check.
		return nil, bad("data dimension %d", c.meta.Dim)
	}
	for _, m := range c.meta.Tensors {
		// Rows·Cols compared by division: the product of two sizes read
		// from the file may overflow.
		if m.Rows < 0 || m.Cols < 0 || (m.Cols > 0 && m.Rows > (len(body)-p)/8/m.Cols) {
			return nil, bad("tensor %q (%d×%d) does not fit in the file", m.Name, m.Rows, m.Cols)
		}
		if _, dup := c.tensors[m.Name]; dup {
			return nil, bad("tensor %q listed twice", m.Name)
		}
		v := make([]float64, m.Rows*m.Cols)
		for i := range v {
			v[i] = math.Float64frombits(binary.LittleEndian.Uint64(body[p:]))
			p += 8
		}
		c.tensors[m.Name] = v
	}
	if p != len(body) {
		return nil, bad("%d unexpected trailing bytes", len(body)-p)
	}
	return c, nil
}

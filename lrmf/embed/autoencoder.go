package embed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/optim"
	"github.com/lrmf-go/lrmf/native"
)

// AutoencoderConfig configures TrainAutoencoder. A zero field selects the
// default in its comment; Dim has none.
type AutoencoderConfig struct {
	// Dim is D, the width of the code (required, 1 ≤ D ≤ p).
	Dim int
	// Hidden is the width of every hidden layer of the encoder and the
	// decoder (default 256).
	Hidden int
	// Depth is the number of hidden layers of each network (default 2).
	Depth int
	// Steps is the number of Adam steps (default 4000).
	Steps int
	// Batch is the number of rows per step (default 128, capped at n).
	// Each epoch visits every row once, in an order reshuffled per epoch.
	Batch int
	// LR is Adam's learning rate, decayed to LR/100 along a half cosine
	// over Steps (optim.ScheduledLR; default 1e-3).
	LR float64
	// Seed seeds the initialisation and the batch order (default 1).
	Seed uint64
	// Backend runs the training and later Encode/Decode calls (default:
	// native.DefaultBackend() in float32, float64 on ref, one thread per
	// CPU, owned by the Autoencoder and released by Close). A given backend
	// is not closed by Close and must outlive the Autoencoder.
	Backend native.Backend
}

// Defaults of AutoencoderConfig.
const (
	DefaultAEHidden = 256
	DefaultAEDepth  = 2
	DefaultAESteps  = 4000
	DefaultAEBatch  = 128
	DefaultAELR     = 1e-3
)

func (c AutoencoderConfig) withDefaults(n int) AutoencoderConfig {
	if c.Hidden == 0 {
		c.Hidden = DefaultAEHidden
	}
	if c.Depth == 0 {
		c.Depth = DefaultAEDepth
	}
	if c.Steps == 0 {
		c.Steps = DefaultAESteps
	}
	if c.Batch == 0 {
		c.Batch = min(DefaultAEBatch, n)
	}
	if c.LR == 0 {
		c.LR = DefaultAELR
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Autoencoder is a trained deterministic autoencoder for data in [0, 1]^p
// (grey-level images), built from the library's own kernels: two
// model.MLP networks and optim.Adam.
//
//	encoder  c = E(x)                     p → Hidden (ReLU) × Depth → D (linear)
//	decoder  x̂ = ½(1 + tanh(G(c))) = σ(2G(c))   D → Hidden (ReLU) × Depth → p
//
// trained to minimise the mean squared error per pixel,
// L = (1/(n·p)) Σ_i ‖x̂_i − x_i‖². The output is a sigmoid written with the
// tanh kernel, so every decoded pixel lies in [0, 1] (in (0, 1) in exact
// arithmetic; float32 rounds tanh to ±1 far from 0).
//
// The shared coordinates are the codes whitened over the fit data: Whiten
// is a D-component PCA of the codes, so Transform(x) = Whiten.Transform(E(x))
// has zero mean, unit variance and no correlation on the fit data, as PCA
// scores have (see PCA), and Inverse(z) = decoder(Whiten.Inverse(z)).
//
// An Autoencoder is not safe for concurrent use.
type Autoencoder struct {
	// Config is the configuration used, defaults filled in.
	Config AutoencoderConfig
	// Whiten maps codes c to standardised, decorrelated coordinates.
	Whiten *PCA
	// Loss holds the training loss L, averaged over each LossEvery steps.
	Loss []float64
	// FinalMSE is L of the trained network on the whole fit data.
	FinalMSE float64
	// Seconds is the wall time of the training.
	Seconds float64

	be       native.Backend
	ownsBE   bool
	p        int
	enc, dec *model.MLP
}

// LossEvery is the number of steps Autoencoder.Loss averages over.
const LossEvery = 100

// aeTrainer holds the networks and every buffer of a training step, so a
// step allocates nothing.
type aeTrainer struct {
	be       native.Backend
	enc, dec *model.MLP
	ps       []*model.Param
	adam     *optim.Adam
	x, t     *native.Tensor // the n×p data and its targets t = 2x − 1
	xb, tb   *native.Tensor // the b×p batch and its targets
	y, e, dh *native.Tensor // tanh output, y − t, ∂L/∂h (b×p each)
	idx      []int32        // the batch's row indices
	perm     []int32        // the epoch's row order
	pos      int            // next position in perm
	rng      *rand.Rand
}

// newAETrainer builds the networks on be for the n×p data x (already
// validated) with c's sizes (defaults filled in).
func newAETrainer(be native.Backend, x *mat.Dense, c AutoencoderConfig) (*aeTrainer, error) {
	n, p := x.Dims()
	rng := rand.New(rand.NewPCG(c.Seed, 0xae))
	enc, err := model.NewMLP(be, "enc", p, c.Hidden, c.Depth, c.Dim, rng)
	if err != nil {
		return nil, fmt.Errorf("embed: autoencoder: %w", err)
	}
	dec, err := model.NewMLP(be, "dec", c.Dim, c.Hidden, c.Depth, p, rng)
	if err != nil {
		return nil, fmt.Errorf("embed: autoencoder: %w", err)
	}
	// MLP output layers start at zero (the identity for a coupling); here a
	// zero encoder output would give every image the code 0 and stall the
	// first steps, so both output layers start Glorot-uniform instead.
	for _, m := range []*model.MLP{enc, dec} {
		_, _, depth, _ := m.Dims()
		glorotUniform(be, m.Params()[2*depth].Value, rng)
	}
	t := &aeTrainer{be: be, enc: enc, dec: dec, rng: rng}
	t.ps = append(append([]*model.Param(nil), enc.Params()...), dec.Params()...)
	t.adam = optim.NewAdam(be, t.ps, c.LR)
	t.x, t.t = be.New(n, p), be.New(n, p)
	raw := x.RawMatrix()
	host := make([]float64, n*p)
	for i := range n {
		copy(host[i*p:(i+1)*p], raw.Data[i*raw.Stride:i*raw.Stride+p])
	}
	be.Upload(t.x, host)
	for k, v := range host {
		host[k] = 2*v - 1
	}
	be.Upload(t.t, host)
	b := c.Batch
	t.xb, t.tb = be.New(b, p), be.New(b, p)
	t.y, t.e, t.dh = be.New(b, p), be.New(b, p), be.New(b, p)
	t.idx = make([]int32, b)
	t.perm = make([]int32, n)
	for i := range t.perm {
		t.perm[i] = int32(i)
	}
	t.pos = n // shuffle before the first batch
	return t, nil
}

// glorotUniform fills w (fan_in×fan_out) with U(−a, a),
// a = √(6/(fan_in+fan_out)).
func glorotUniform(be native.Backend, w *native.Tensor, rng *rand.Rand) {
	a := math.Sqrt(6 / float64(w.Rows()+w.Cols()))
	v := make([]float64, w.Len())
	for i := range v {
		v[i] = a * (2*rng.Float64() - 1)
	}
	be.Upload(w, v)
}

// nextBatch fills idx with the next rows of the epoch's order, reshuffling
// (Fisher–Yates) whenever the order is used up; a batch never straddles
// two epochs' orders.
func (t *aeTrainer) nextBatch() {
	n, b := len(t.perm), len(t.idx)
	if t.pos+b > n {
		for i := n - 1; i > 0; i-- {
			j := t.rng.IntN(i + 1)
			t.perm[i], t.perm[j] = t.perm[j], t.perm[i]
		}
		t.pos = 0
	}
	copy(t.idx, t.perm[t.pos:t.pos+b])
	t.pos += b
}

// lossGrad runs the network on the batch xb with targets tb and sets every
// parameter's Grad to ∂L/∂θ of
//
//	L = (1/(b·p)) Σ ‖x̂ − x‖² = (1/(4·b·p)) Σ ‖y − t‖²,  y = tanh(h), t = 2x − 1,
//
// (x̂ = (1 + y)/2), which it returns. The chain: ∂L/∂y = (y − t)/(2bp),
// ∂L/∂h = ∂L/∂y ⊙ (1 − y²), then the decoder's and the encoder's backward
// passes.
func (t *aeTrainer) lossGrad(xb, tb *native.Tensor) float64 {
	be := t.be
	b, p := xb.Rows(), xb.Cols()
	code := t.enc.Forward(xb)
	h := t.dec.Forward(code)
	be.Tanh(t.y, h)
	be.Copy(t.e, t.y)
	be.Axpy(-1, tb, t.e)
	loss := be.Dot(t.e, t.e) / float64(4*b*p)
	be.TanhBackward(t.dh, t.y, t.e)
	s := 1 / float64(2*b*p)
	be.Axpy(s-1, t.dh, t.dh) // dh ← s·dh
	dcode := t.dec.Backward(t.dh, true)
	t.enc.Backward(dcode, false)
	return loss
}

// step draws a batch, computes the gradient and applies one Adam update at
// learning rate lr. It returns the batch loss before the update and
// allocates nothing.
func (t *aeTrainer) step(lr float64) float64 {
	t.nextBatch()
	t.be.GatherRows(t.xb, t.x, t.idx)
	t.be.GatherRows(t.tb, t.t, t.idx)
	loss := t.lossGrad(t.xb, t.tb)
	t.adam.LR = lr
	t.adam.Step()
	return loss
}

// checkUnit returns an error unless x is a non-empty matrix of values in
// [0, 1].
func checkUnit(x *mat.Dense, what string) error {
	if x == nil || x.IsEmpty() {
		return fmt.Errorf("embed: %s is empty", what)
	}
	n, _ := x.Dims()
	for i := range n {
		for j, v := range x.RawRowView(i) {
			if !(v >= 0 && v <= 1) {
				return fmt.Errorf("embed: %s: row %d, column %d (0-based) is %v; the autoencoder's sigmoid output needs values in [0, 1]", what, i, j, v)
			}
		}
	}
	return nil
}

// TrainAutoencoder trains an Autoencoder (see there) on the rows of the n×p
// matrix x, whose values must lie in [0, 1], for cfg.Steps Adam steps on
// mini-batches, then whitens the codes of x.
//
// It is an error if x is empty or holds a value outside [0, 1] (naming the
// first), if D is outside [1, p], if a size, the step count or the learning
// rate is not positive (or the batch exceeds n), if the loss becomes
// non-finite, if the codes of x span fewer than D dimensions (n ≤ D, or a
// collapsed code), or if ctx ends (ctx.Err(), wrapped).
//
// Everything is seeded by cfg.Seed: on one backend, dtype and thread count
// the result is bit-identical between runs. A step allocates nothing.
// Cost per step, about 2·b·(p·Hidden + (Depth−1)·Hidden² + Hidden·D) FLOP
// per network and pass, three passes: ≈ 0.2 GFLOP at the defaults and
// p = 256.
func TrainAutoencoder(ctx context.Context, x *mat.Dense, cfg AutoencoderConfig) (*Autoencoder, error) {
	if err := checkUnit(x, "the data"); err != nil {
		return nil, err
	}
	n, p := x.Dims()
	c := cfg.withDefaults(n)
	switch {
	case c.Dim < 1:
		return nil, fmt.Errorf("embed: autoencoder: D = %d: want at least 1", c.Dim)
	case c.Dim > p:
		return nil, fmt.Errorf("embed: autoencoder: D = %d exceeds the %d input columns", c.Dim, p)
	case c.Hidden < 1, c.Depth < 1:
		return nil, fmt.Errorf("embed: autoencoder: Hidden = %d, Depth = %d: want positive sizes", c.Hidden, c.Depth)
	case c.Steps < 1:
		return nil, fmt.Errorf("embed: autoencoder: Steps = %d: want at least 1", c.Steps)
	case c.Batch < 1 || c.Batch > n:
		return nil, fmt.Errorf("embed: autoencoder: Batch = %d: want 1 to the %d rows", c.Batch, n)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return nil, fmt.Errorf("embed: autoencoder: LR = %v must be positive and finite", c.LR)
	}
	be, owns := c.Backend, false
	if be == nil {
		dt := native.Float32
		if native.DefaultBackend() == "ref" {
			dt = native.Float64
		}
		var err error
		if be, err = native.Open(native.DefaultBackend(), dt, 0); err != nil {
			return nil, err
		}
		owns = true
	}
	ae, err := trainAE(ctx, be, x, c)
	if err != nil {
		if owns {
			be.Close()
		}
		return nil, err
	}
	ae.ownsBE = owns
	return ae, nil
}

func trainAE(ctx context.Context, be native.Backend, x *mat.Dense, c AutoencoderConfig) (*Autoencoder, error) {
	start := time.Now()
	t, err := newAETrainer(be, x, c)
	if err != nil {
		return nil, err
	}
	ae := &Autoencoder{Config: c, be: be, p: t.x.Cols(), enc: t.enc, dec: t.dec}
	ae.Loss = make([]float64, 0, (c.Steps+LossEvery-1)/LossEvery)
	sum, k := 0.0, 0
	for s := 1; s <= c.Steps; s++ {
		if s%LossEvery == 1 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("embed: autoencoder training stopped at step %d: %w", s, err)
			}
		}
		loss := t.step(optim.ScheduledLR(optim.Cosine, c.LR, s, c.Steps))
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("embed: autoencoder training diverged at step %d (loss %v)", s, loss)
		}
		sum, k = sum+loss, k+1
		if k == LossEvery || s == c.Steps {
			ae.Loss = append(ae.Loss, sum/float64(k))
			sum, k = 0, 0
		}
	}
	codes, err := ae.encode(x)
	if err != nil {
		return nil, err
	}
	if ae.Whiten, err = Fit(codes, c.Dim); err != nil {
		return nil, fmt.Errorf("embed: autoencoder: whitening the codes: %w", err)
	}
	rec, err := ae.decode(codes)
	if err != nil {
		return nil, err
	}
	ae.FinalMSE = MSE(rec, x)
	ae.Seconds = time.Since(start).Seconds()
	return ae, nil
}

// chunk is the number of rows Encode and Decode run at a time.
const chunk = 512

// encode returns the raw codes E(x) (m×D) of the m×p matrix x.
func (ae *Autoencoder) encode(x *mat.Dense) (*mat.Dense, error) {
	if ae.be == nil {
		return nil, errors.New("embed: the autoencoder is closed")
	}
	if _, c := x.Dims(); c != ae.p {
		return nil, fmt.Errorf("embed: data have %d columns, the autoencoder was trained on %d", c, ae.p)
	}
	if err := checkFinite(x, "the data"); err != nil {
		return nil, err
	}
	return ae.run(x, ae.p, ae.Config.Dim, func(in *native.Tensor) *native.Tensor { return ae.enc.Forward(in) })
}

// decode returns the images x̂ = ½(1 + tanh(G(c))) (m×p) of the raw codes c.
func (ae *Autoencoder) decode(codes *mat.Dense) (*mat.Dense, error) {
	if ae.be == nil {
		return nil, errors.New("embed: the autoencoder is closed")
	}
	var y *native.Tensor
	out, err := ae.run(codes, ae.Config.Dim, ae.p, func(in *native.Tensor) *native.Tensor {
		h := ae.dec.Forward(in)
		if y == nil || y.Rows() != h.Rows() {
			y = ae.be.New(h.Rows(), h.Cols())
		}
		ae.be.Tanh(y, h)
		return y
	})
	if err != nil {
		return nil, err
	}
	r := out.RawMatrix()
	for i := range r.Rows {
		row := r.Data[i*r.Stride : i*r.Stride+r.Cols]
		for j, v := range row {
			row[j] = 0.5 * (1 + v)
		}
	}
	return out, nil
}

// run applies f to the rows of the m×in matrix x, chunk rows at a time,
// and returns the m×out results.
func (ae *Autoencoder) run(x *mat.Dense, in, out int, f func(*native.Tensor) *native.Tensor) (*mat.Dense, error) {
	m, _ := x.Dims()
	res := mat.NewDense(m, out, nil)
	host := make([]float64, chunk*max(in, out))
	for lo := 0; lo < m; lo += chunk {
		hi := min(lo+chunk, m)
		k := hi - lo
		for i := lo; i < hi; i++ {
			copy(host[(i-lo)*in:(i-lo+1)*in], x.RawRowView(i))
		}
		t := ae.be.New(k, in)
		ae.be.Upload(t, host[:k*in])
		y := f(t)
		ae.be.Download(host[:k*out], y)
		for i := lo; i < hi; i++ {
			copy(res.RawRowView(i), host[(i-lo)*out:(i-lo+1)*out])
		}
	}
	return res, nil
}

// Dims returns p, the input dimension, and D, the code dimension.
func (ae *Autoencoder) Dims() (p, d int) { return ae.p, ae.Config.Dim }

// Transform returns the m×D shared coordinates Whiten.Transform(E(x)) of
// the m×p matrix x. It is an error if x is empty, holds a NaN or infinity,
// has a number of columns other than p, or the Autoencoder is closed.
func (ae *Autoencoder) Transform(x *mat.Dense) (*mat.Dense, error) {
	if x == nil || x.IsEmpty() {
		return nil, errors.New("embed: transform of an empty matrix")
	}
	codes, err := ae.encode(x)
	if err != nil {
		return nil, err
	}
	return ae.Whiten.Transform(codes)
}

// Inverse decodes m×D shared coordinates z to m×p images in [0, 1]:
// decoder(Whiten.Inverse(z)). It is an error if z is empty, holds a NaN or
// infinity, has a number of columns other than D, or the Autoencoder is
// closed.
func (ae *Autoencoder) Inverse(z *mat.Dense) (*mat.Dense, error) {
	codes, err := ae.Whiten.Inverse(z)
	if err != nil {
		return nil, err
	}
	return ae.decode(codes)
}

// Close releases the backend if TrainAutoencoder opened it; Transform and
// Inverse fail afterwards. Close is idempotent.
func (ae *Autoencoder) Close() {
	if ae.ownsBE && ae.be != nil {
		ae.be.Close()
	}
	ae.be = nil
}

// MSE returns the mean squared error per entry between the n×p matrices
// x̂ and x, (1/(n·p)) Σ_ij (x̂_ij − x_ij)². It panics if the shapes differ.
func MSE(xhat, x *mat.Dense) float64 {
	n, p := x.Dims()
	if r, c := xhat.Dims(); r != n || c != p {
		panic(fmt.Sprintf("embed: MSE: %d×%d and %d×%d", r, c, n, p))
	}
	s := 0.0
	for i := range n {
		a, b := xhat.RawRowView(i), x.RawRowView(i)
		for j := range a {
			d := a[j] - b[j]
			s += d * d
		}
	}
	return s / float64(n*p)
}

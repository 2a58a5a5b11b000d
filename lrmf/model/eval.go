package model

import "github.com/lrmf-go/lrmf/native"

// ChunkRows bounds the rows Transform and MeanLogProb (and package lrmf's
// full-data evaluations) pass to a model at once, so memory stays
// proportional to the chunk, not the dataset.
const ChunkRows = 8192

// inferencer is implemented by models that can skip what only a backward
// pass needs (the FFJORD tapes) while evaluating; Transform and MeanLogProb
// turn it on around their calls.
type inferencer interface {
	setInference(on bool)
}

func setInference(m any, on bool) {
	if i, ok := m.(inferencer); ok {
		i.setInference(on)
	}
}

// Inference switches a model (a Density or a Flow) into or out of
// evaluation-only mode: while on, LogProb and Forward skip what only a
// backward pass needs (the FFJORD tapes), so a Backward needs a fresh call
// with it off. Models without such state ignore it. Callers that evaluate
// in batches of their own (package lrmf's validation passes, which reuse
// the training buffers so that they allocate nothing) bracket the calls
// with Inference(m, true) and Inference(m, false).
func Inference(m any, on bool) { setInference(m, on) }

// LogProbRows sets logp[i] = ln P(x_i; θ) for every row of the n×D x
// (logp n×1), evaluated by d in inference mode in chunks of at most
// ChunkRows rows. It allocates only the chunk views (none when n ≤
// ChunkRows). d's next Backward needs a fresh LogProb.
func LogProbRows(be native.Backend, d Density, logp, x *native.Tensor) error {
	setInference(d, true)
	defer setInference(d, false)
	n := x.Rows()
	if n <= ChunkRows {
		return d.LogProb(logp, x)
	}
	for lo := 0; lo < n; lo += ChunkRows {
		hi := min(lo+ChunkRows, n)
		if err := d.LogProb(be.View(logp, lo, hi), be.View(x, lo, hi)); err != nil {
			return err
		}
	}
	return nil
}

// MeanLogProb returns ℓ(X; θ) = (1/n) Σ_i ln P(x_i; θ) over the n rows of
// the n×D x, evaluated by d in chunks of at most ChunkRows rows. d's next
// Backward needs a fresh LogProb: MeanLogProb does not record for one.
func MeanLogProb(be native.Backend, d Density, x *native.Tensor) (float64, error) {
	setInference(d, true)
	defer setInference(d, false)
	n := x.Rows()
	logp := be.New(min(n, ChunkRows), 1)
	total := 0.0
	for lo := 0; lo < n; lo += ChunkRows {
		hi := min(lo+ChunkRows, n)
		lp := logp
		if hi-lo != logp.Rows() {
			lp = be.View(logp, 0, hi-lo)
		}
		if err := d.LogProb(lp, be.View(x, lo, hi)); err != nil {
			return 0, err
		}
		total += be.Sum(lp)
	}
	return total / float64(n), nil
}

// Transform returns y = T(x) (n×D) and logdet_i = ln|det ∂T/∂x (x_i)|
// (n×1) for the n×D x, computed by t in chunks of at most ChunkRows rows.
// t's next Backward needs a fresh Forward.
func Transform(be native.Backend, t Flow, x *native.Tensor) (y, logdet *native.Tensor, err error) {
	setInference(t, true)
	defer setInference(t, false)
	n := x.Rows()
	y, logdet = be.New(n, x.Cols()), be.New(n, 1)
	for lo := 0; lo < n; lo += ChunkRows {
		hi := min(lo+ChunkRows, n)
		if err := t.Forward(be.View(y, lo, hi), be.View(logdet, lo, hi), be.View(x, lo, hi)); err != nil {
			return nil, nil, err
		}
	}
	return y, logdet, nil
}

package lrmf

import (
	"fmt"

	"github.com/lrmf-go/lrmf/native"
)

// evalChunk bounds the rows evaluated at once on the full data, so memory
// stays proportional to the chunk, not the dataset.
const evalChunk = 8192

// meanLogProb returns ℓ(X; θ) = mean_i ln P(x_i; θ) over all rows of x.
func meanLogProb(be native.Backend, d Density, x *native.Tensor) (float64, error) {
	setInference(d, true)
	defer setInference(d, false)
	n := x.Rows()
	logp := be.New(min(n, evalChunk), 1)
	total := 0.0
	for lo := 0; lo < n; lo += evalChunk {
		hi := min(lo+evalChunk, n)
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

// Transform returns T(x) and the per-row ln|det ∂T/∂x| for an n×D x,
// computed in chunks.
func Transform(be native.Backend, t Flow, x *native.Tensor) (y, logdet *native.Tensor, err error) {
	setInference(t, true)
	defer setInference(t, false)
	n := x.Rows()
	y, logdet = be.New(n, x.Cols()), be.New(n, 1)
	for lo := 0; lo < n; lo += evalChunk {
		hi := min(lo+evalChunk, n)
		if err := t.Forward(be.View(y, lo, hi), be.View(logdet, lo, hi), be.View(x, lo, hi)); err != nil {
			return nil, nil, err
		}
	}
	return y, logdet, nil
}

type objective struct {
	lrmf, llTA, llB, logdet float64
}

// evalLRMF evaluates the objective on the full data and returns it with T(A).
func evalLRMF(be native.Backend, t Flow, s Density, cAB float64, a, b *native.Tensor) (objective, *native.Tensor, error) {
	var o objective
	y, logdet, err := Transform(be, t, a)
	if err != nil {
		return o, nil, fmt.Errorf("lrmf: evaluating T(A): %w", err)
	}
	if o.llTA, err = meanLogProb(be, s, y); err != nil {
		return o, nil, fmt.Errorf("lrmf: evaluating ℓ(T(A); θS): %w", err)
	}
	if o.llB, err = meanLogProb(be, s, b); err != nil {
		return o, nil, fmt.Errorf("lrmf: evaluating ℓ(B; θS): %w", err)
	}
	o.logdet = be.Sum(logdet) / float64(a.Rows())
	o.lrmf = cAB - o.llTA - o.llB - o.logdet
	return o, y, nil
}

// EvalLRMF returns LRMF(φ, θS) = c_AB − ℓ(T(A); θS) − ℓ(B; θS) −
// mean_a ln|det ∇T(a)| on the full datasets a (nA×D) and b (nB×D), in nats.
func EvalLRMF(be native.Backend, t Flow, s Density, cAB float64, a, b *native.Tensor) (float64, error) {
	o, _, err := evalLRMF(be, t, s, cAB, a, b)
	return o.lrmf, err
}

// MeanLogProb returns ℓ(X; θ) = mean_i ln P(x_i; θ) over the rows of x.
func MeanLogProb(be native.Backend, d Density, x *native.Tensor) (float64, error) {
	return meanLogProb(be, d, x)
}

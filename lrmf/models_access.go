package lrmf

import (
	"errors"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/native"
)

// ErrBackendClosed is returned by Result.ModelBackend when Align opened the
// backend itself (Config.Backend was nil) and closed it before returning, so
// the trained models can no longer be evaluated.
var ErrBackendClosed = errors.New("lrmf: the Result's models live on a backend Align opened and closed; pass Config.Backend to evaluate them after Align")

// ModelBackend returns the backend that r.Flow, r.Density, r.DensityA and
// r.DensityB live on (Config.Backend), for EvalLogProb and EvalFlow. It
// returns ErrBackendClosed when Align was called without a backend.
func (r *Result) ModelBackend() (native.Backend, error) {
	if r == nil || r.Config.Backend == nil {
		return nil, ErrBackendClosed
	}
	return r.Config.Backend, nil
}

// EvalLogProb returns ln P(x_i; θ) for every row x_i of the n×D matrix x
// (n values, in row order), evaluated by d on be in chunks of at most 8192
// rows. d must live on be and have dimension D.
func EvalLogProb(be native.Backend, d Density, x *mat.Dense) ([]float64, error) {
	n, dim, err := checkEvalInput(be, d == nil, "EvalLogProb", "density", x)
	if err != nil {
		return nil, err
	}
	if dim != d.Dim() {
		return nil, fmt.Errorf("lrmf: EvalLogProb: x has %d columns, the density has dimension %d", dim, d.Dim())
	}
	xt := toTensor(be, x)
	logp := be.New(n, 1)
	for lo := 0; lo < n; lo += evalChunk {
		hi := min(lo+evalChunk, n)
		if err := d.LogProb(be.View(logp, lo, hi), be.View(xt, lo, hi)); err != nil {
			return nil, fmt.Errorf("lrmf: EvalLogProb: %w", err)
		}
	}
	out := make([]float64, n)
	be.Download(out, logp)
	return out, nil
}

// EvalFlow returns T(x_i) for every row x_i of the n×D matrix x as a new
// n×D matrix in row order, computed by t on be in chunks (see Transform).
// t must live on be and have dimension D.
func EvalFlow(be native.Backend, t Flow, x *mat.Dense) (*mat.Dense, error) {
	n, dim, err := checkEvalInput(be, t == nil, "EvalFlow", "flow", x)
	if err != nil {
		return nil, err
	}
	if dim != t.Dim() {
		return nil, fmt.Errorf("lrmf: EvalFlow: x has %d columns, the flow has dimension %d", dim, t.Dim())
	}
	y, _, err := Transform(be, t, toTensor(be, x))
	if err != nil {
		return nil, fmt.Errorf("lrmf: EvalFlow: %w", err)
	}
	out := mat.NewDense(n, dim, nil)
	be.Download(out.RawMatrix().Data, y)
	return out, nil
}

func checkEvalInput(be native.Backend, nilModel bool, fn, what string, x *mat.Dense) (n, dim int, err error) {
	switch {
	case be == nil:
		return 0, 0, fmt.Errorf("lrmf: %s: nil backend", fn)
	case nilModel:
		return 0, 0, fmt.Errorf("lrmf: %s: nil %s", fn, what)
	case x == nil || x.IsEmpty():
		return 0, 0, fmt.Errorf("lrmf: %s: no rows", fn)
	}
	n, dim = x.Dims()
	return n, dim, nil
}

package lrmf

import (
	"errors"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// objective is LRMF on the full data and its terms, in nats.
type objective struct {
	lrmf, llTA, llB, logdet float64
}

// evalLRMF evaluates the objective on the full data and returns it with T(A).
func evalLRMF(be native.Backend, t model.Flow, s model.Density, cAB float64, a, b *native.Tensor) (objective, *native.Tensor, error) {
	var o objective
	y, logdet, err := model.Transform(be, t, a)
	if err != nil {
		return o, nil, fmt.Errorf("lrmf: evaluating T(A): %w", err)
	}
	if o.llTA, err = model.MeanLogProb(be, s, y); err != nil {
		return o, nil, fmt.Errorf("lrmf: evaluating ℓ(T(A); θS): %w", err)
	}
	if o.llB, err = model.MeanLogProb(be, s, b); err != nil {
		return o, nil, fmt.Errorf("lrmf: evaluating ℓ(B; θS): %w", err)
	}
	o.logdet = be.Sum(logdet) / float64(a.Rows())
	o.lrmf = cAB - o.llTA - o.llB - o.logdet
	return o, y, nil
}

// EvalLRMF returns LRMF(φ, θS) = c_AB − ℓ(T(A); θS) − ℓ(B; θS) −
// mean_a ln|det ∇T(a)| on the full datasets a (nA×D) and b (nB×D), in nats.
func EvalLRMF(be native.Backend, t model.Flow, s model.Density, cAB float64, a, b *native.Tensor) (float64, error) {
	o, _, err := evalLRMF(be, t, s, cAB, a, b)
	return o.lrmf, err
}

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
// (n values, in row order), evaluated by d on be in chunks of at most
// model.ChunkRows rows. d must live on be and have dimension D.
func EvalLogProb(be native.Backend, d model.Density, x *mat.Dense) ([]float64, error) {
	n, dim, err := checkEvalInput(be, d == nil, "EvalLogProb", "density", x)
	if err != nil {
		return nil, err
	}
	if dim != d.Dim() {
		return nil, fmt.Errorf("lrmf: EvalLogProb: x has %d columns, the density has dimension %d", dim, d.Dim())
	}
	xt := toTensor(be, x)
	logp := be.New(n, 1)
	for lo := 0; lo < n; lo += model.ChunkRows {
		hi := min(lo+model.ChunkRows, n)
		if err := d.LogProb(be.View(logp, lo, hi), be.View(xt, lo, hi)); err != nil {
			return nil, fmt.Errorf("lrmf: EvalLogProb: %w", err)
		}
	}
	out := make([]float64, n)
	be.Download(out, logp)
	return out, nil
}

// EvalFlow returns T(x_i) for every row x_i of the n×D matrix x as a new
// n×D matrix in row order, computed by t on be in chunks (see
// model.Transform). t must live on be and have dimension D.
func EvalFlow(be native.Backend, t model.Flow, x *mat.Dense) (*mat.Dense, error) {
	n, dim, err := checkEvalInput(be, t == nil, "EvalFlow", "flow", x)
	if err != nil {
		return nil, err
	}
	if dim != t.Dim() {
		return nil, fmt.Errorf("lrmf: EvalFlow: x has %d columns, the flow has dimension %d", dim, t.Dim())
	}
	y, _, err := model.Transform(be, t, toTensor(be, x))
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

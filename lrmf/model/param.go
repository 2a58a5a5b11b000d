package model

import "github.com/lrmf-go/lrmf/native"

// Param is a named trainable tensor and its gradient, of the same shape
// (rows×cols). Grad holds ∂L/∂Value after the owning model's Backward.
type Param struct {
	Name  string         // unique within its model, e.g. "block0.W1"; checkpoints key on it
	Value *native.Tensor // θ, rows×cols
	Grad  *native.Tensor // ∂L/∂θ, rows×cols

	arena *Arena // the Arena whose views Value and Grad are, or nil
}

func newParam(be native.Backend, name string, rows, cols int) *Param {
	return &Param{Name: name, Value: be.New(rows, cols), Grad: be.New(rows, cols)}
}

// CopyParams sets every dst[i].Value to src[i].Value. Both lists must come
// from the same maker with the same dimension (same length and shapes); it
// panics otherwise, a programmer error.
func CopyParams(be native.Backend, dst, src []*Param) {
	if len(dst) != len(src) {
		panic("model: CopyParams: parameter lists differ")
	}
	for i := range dst {
		be.Copy(dst[i].Value, src[i].Value)
	}
}

// Arena holds the values and the gradients of a model's parameters in two
// contiguous N×1 tensors (N = Σ_p rows_p·cols_p, the parameters in the
// model's Params order): every Param's Value and Grad is a view of its
// segment [Ends[p−1], Ends[p]) (Ends[−1] = 0). An optimiser step, a
// gradient norm or a clip is then one kernel call over all parameters
// (see ArenasOf) instead of one per parameter.
type Arena struct {
	Value, Grad *native.Tensor // N×1
	Ends        []int64        // segment ends, one per parameter
	ps          []*Param
	all         []int64   // {N}: the whole arena as one segment
	sq          []float64 // SumSquares' result
}

// GradSquares returns Σ_j Grad[j]² over the whole arena (one
// Backend.SumSquares call, accumulated in float64).
func (a *Arena) GradSquares(be native.Backend) float64 {
	be.SumSquares(a.sq, a.Grad, a.all)
	return a.sq[0]
}

// packParams moves ps' values into one Arena (copying them) and makes
// every Value and Grad a view of it; the Param structs are kept, so
// whoever holds them sees the views.
func packParams(be native.Backend, ps []*Param) *Arena {
	n := 0
	ends := make([]int64, len(ps))
	for i, p := range ps {
		n += p.Value.Len()
		ends[i] = int64(n)
	}
	a := &Arena{Value: be.New(n, 1), Grad: be.New(n, 1), Ends: ends, ps: ps,
		all: []int64{int64(n)}, sq: make([]float64, 1)}
	lo := 0
	for _, p := range ps {
		r, c := p.Value.Rows(), p.Value.Cols()
		hi := lo + r*c
		v := native.Reshape(be.View(a.Value, lo, hi), r, c)
		be.Copy(v, p.Value)
		p.Value, p.Grad = v, native.Reshape(be.View(a.Grad, lo, hi), r, c)
		p.arena = a
		lo = hi
	}
	return a
}

// ArenasOf returns the arenas whose parameters, in order, make up ps
// exactly (ps is the concatenation of whole arenas' parameter lists, as
// the Params of models that keep their parameters in one arena are, and
// lists appended from them), appended to buf[:0] (so that a caller with a
// small array allocates nothing); nil when ps is anything else (then
// callers go parameter by parameter).
func ArenasOf(ps []*Param, buf []*Arena) []*Arena {
	out := buf[:0]
	for i := 0; i < len(ps); {
		a := ps[i].arena
		if a == nil || len(ps)-i < len(a.ps) {
			return nil
		}
		for k, p := range a.ps {
			if ps[i+k] != p {
				return nil
			}
		}
		out = append(out, a)
		i += len(a.ps)
	}
	return out
}

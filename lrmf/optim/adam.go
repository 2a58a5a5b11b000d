package optim

import (
	"math"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// Adam is the Adam optimiser (Kingma & Ba, 2015) over a fixed list of
// parameters. Each Step uses the gradients g currently in Param.Grad and
// updates every parameter θ (same shape as its moments m, v):
//
//	m ← β1 m + (1−β1) g,  v ← β2 v + (1−β2) g²,
//	θ ← θ − lr · (m / (1−β1^t)) / (√(v / (1−β2^t)) + ε).
type Adam struct {
	LR, Beta1, Beta2, Eps float64 // lr, β1, β2, ε of the update above; LR may change between steps

	be     native.Backend
	params []*model.Param
	m, v   []*native.Tensor
	t      int

	// When params are whole arenas (model.ArenasOf), the moments are
	// arenas too (m, v above are views of them) and a Step is one Adam
	// call per arena.
	arenas []*model.Arena
	am, av []*native.Tensor
}

// NewAdam returns Adam with the usual β1 = 0.9, β2 = 0.999, ε = 1e-8 and
// zero moments over params (the list is kept, not copied).
func NewAdam(be native.Backend, params []*model.Param, lr float64) *Adam {
	a := &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, be: be, params: params}
	if a.arenas = model.ArenasOf(params, nil); a.arenas != nil {
		for _, ar := range a.arenas {
			n := ar.Value.Rows()
			m, v := be.New(n, 1), be.New(n, 1)
			a.am, a.av = append(a.am, m), append(a.av, v)
			lo := 0
			for _, hi := range ar.Ends {
				p := params[len(a.m)]
				r, c := p.Value.Rows(), p.Value.Cols()
				a.m = append(a.m, native.Reshape(be.View(m, lo, int(hi)), r, c))
				a.v = append(a.v, native.Reshape(be.View(v, lo, int(hi)), r, c))
				lo = int(hi)
			}
		}
		return a
	}
	for _, p := range params {
		a.m = append(a.m, be.New(p.Value.Rows(), p.Value.Cols()))
		a.v = append(a.v, be.New(p.Value.Rows(), p.Value.Cols()))
	}
	return a
}

// Step applies one update to every parameter (one Adam call per arena
// when the parameters are whole arenas, else one per parameter: the same
// elementwise update either way).
func (a *Adam) Step() {
	a.t++
	h := native.AdamHyper{LR: a.LR, Beta1: a.Beta1, Beta2: a.Beta2, Eps: a.Eps,
		BC1: 1 - math.Pow(a.Beta1, float64(a.t)), BC2: 1 - math.Pow(a.Beta2, float64(a.t))}
	if a.arenas != nil {
		for i, ar := range a.arenas {
			a.be.Adam(ar.Value, ar.Grad, a.am[i], a.av[i], h)
		}
		return
	}
	for i, p := range a.params {
		a.be.Adam(p.Value, p.Grad, a.m[i], a.v[i], h)
	}
}

// Steps returns t, the number of updates applied so far.
func (a *Adam) Steps() int { return a.t }

// Moments returns the first and second moment tensors m_i, v_i of every
// parameter i (each shaped like its Param.Value). They are Adam's own
// state, returned so a checkpoint can save and restore them in place.
func (a *Adam) Moments() (m, v []*native.Tensor) { return a.m, a.v }

// SetSteps sets t, the update count the bias corrections use, when
// restoring a saved optimiser (together with Moments).
func (a *Adam) SetSteps(t int) { a.t = t }

package optim

import (
	"math"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// GradNorm returns ‖∇‖₂ = √(Σ_p Σ_j Grad_p[j]²) over all of ps' gradients.
// When ps are whole arenas (model.ArenasOf) it is one SumSquares per arena.
func GradNorm(be native.Backend, ps []*model.Param) float64 {
	var buf [4]*model.Arena
	if ars := model.ArenasOf(ps, buf[:0]); ars != nil {
		s := 0.0
		for _, a := range ars {
			s += a.GradSquares(be)
		}
		return math.Sqrt(s)
	}
	s := 0.0
	for _, p := range ps {
		s += be.Dot(p.Grad, p.Grad)
	}
	return math.Sqrt(s)
}

// ClipGrad scales every gradient of ps by limit/norm when norm > limit > 0
// (norm is ps' GradNorm, computed by the caller), so the clipped gradient
// has norm limit; a limit ≤ 0 disables clipping.
func ClipGrad(be native.Backend, ps []*model.Param, norm, limit float64) {
	if limit <= 0 || !(norm > limit) {
		return
	}
	s := limit/norm - 1 // g += s·g gives g·limit/norm
	var buf [4]*model.Arena
	if ars := model.ArenasOf(ps, buf[:0]); ars != nil {
		for _, a := range ars {
			be.Axpy(s, a.Grad, a.Grad)
		}
		return
	}
	for _, p := range ps {
		be.Axpy(s, p.Grad, p.Grad)
	}
}

package optim_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/optim"
	"github.com/lrmf-go/lrmf/native"
)

// A Real NVP keeps its parameters in one arena: GradNorm, ClipGrad and
// Adam then run over the arena in one call each, and must give what the
// parameter-by-parameter path gives on standalone copies of the same
// parameters (same Adam bits; the norm up to summation order).
func TestArenaPathMatchesPerParam(t *testing.T) {
	for _, dt := range []native.DType{native.Float64, native.Float32} {
		be, err := native.Open(native.DefaultBackend(), dt, 2)
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(testseed.Seed(t), 7))
		f, err := model.NewRealNVP(be, 3, model.RealNVPOptions{Blocks: 3, Hidden: 40, Depth: 2}, rng)
		require.NoError(t, err)
		ps := f.Params()
		require.Len(t, model.ArenasOf(ps, nil), 1)
		two := append(append([]*model.Param{}, ps...), ps...)
		require.Len(t, model.ArenasOf(two, nil), 2)
		require.Nil(t, model.ArenasOf(ps[1:], nil))
		// Standalone copies (not an arena) with the same values and gradients.
		qs := make([]*model.Param, len(ps))
		for i, p := range ps {
			r, c := p.Value.Rows(), p.Value.Cols()
			qs[i] = &model.Param{Name: p.Name, Value: be.New(r, c), Grad: be.New(r, c)}
		}
		require.Nil(t, model.ArenasOf(qs, nil))
		set := func(step int) {
			for i, p := range ps {
				v, g := make([]float64, p.Value.Len()), make([]float64, p.Value.Len())
				for j := range g {
					g[j] = float64(step) * (2*rng.Float64() - 1)
				}
				be.Download(v, p.Value)
				if step == 1 {
					be.Upload(qs[i].Value, v)
				}
				be.Upload(p.Grad, g)
				be.Upload(qs[i].Grad, g)
			}
		}
		a, b := optim.NewAdam(be, ps, 0.01), optim.NewAdam(be, qs, 0.01)
		tol := 1e-12
		for step := 1; step <= 3; step++ {
			set(step)
			na, nb := optim.GradNorm(be, ps), optim.GradNorm(be, qs)
			require.InEpsilon(t, nb, na, tol, "%v step %d", dt, step)
			optim.ClipGrad(be, ps, na, na/2)
			optim.ClipGrad(be, qs, nb, nb/2)
			a.Step()
			b.Step()
			am, av := a.Moments()
			bm, bv := b.Moments()
			for i := range ps {
				for _, pair := range [][2]*native.Tensor{{ps[i].Value, qs[i].Value}, {ps[i].Grad, qs[i].Grad}, {am[i], bm[i]}, {av[i], bv[i]}} {
					x, y := make([]float64, pair[0].Len()), make([]float64, pair[1].Len())
					be.Download(x, pair[0])
					be.Download(y, pair[1])
					for j := range x {
						require.InDelta(t, y[j], x[j], 1e-6*max(1, abs(y[j])), "%v step %d %s[%d]", dt, step, ps[i].Name, j)
					}
				}
			}
		}
		be.Close()
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

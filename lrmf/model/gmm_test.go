package model_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/model/modeltest"
	"github.com/lrmf-go/lrmf/native"
)

func TestGMMGradients(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, c := range []struct{ d, k int }{{1, 1}, {1, 3}, {2, 2}, {3, 4}} {
		g, err := model.NewGMM(be, c.d, c.k, rng)
		require.NoError(t, err)
		modeltest.Perturb(be, g.Params(), rng, 0.3)
		modeltest.DensityGradients(t, be, g, modeltest.Rand(be, rng, 9, c.d, 2), rng, 1e-6)
	}
}

// A one-component mixture is the Gaussian, on the ref and cpu backends.
func TestGMMOneComponentIsGaussian(t *testing.T) {
	rng := newRNG(t)
	for _, name := range []string{"ref", "cpu"} {
		be, err := native.Open(name, native.Float64, 2)
		if err != nil {
			t.Logf("skipping %s: %v", name, err)
			continue
		}
		const n, d = 50, 3
		x := modeltest.Rand(be, rng, n, d, 2)
		gauss := model.NewGaussian(be, d)
		modeltest.Perturb(be, gauss.Params(), rng, 0.3)
		mix, err := model.NewGMM(be, d, 1, rng)
		require.NoError(t, err)
		mu, l := make([]float64, d), make([]float64, d*d)
		be.Download(mu, gauss.Params()[0].Value)
		be.Download(l, gauss.Params()[1].Value)
		require.NoError(t, mix.SetComponents(mu, l, []float64{0.7}))
		lg, lm := be.New(n, 1), be.New(n, 1)
		require.NoError(t, gauss.LogProb(lg, x))
		require.NoError(t, mix.LogProb(lm, x))
		a, b := make([]float64, n), make([]float64, n)
		be.Download(a, lg)
		be.Download(b, lm)
		assert.InDeltaSlice(t, a, b, 1e-12*float64(n), name)
		be.Close()
	}
}

func TestGMMInitFromDataAndErrors(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	g, err := model.NewGMM(be, 2, 3, rng)
	require.NoError(t, err)
	x := modeltest.Rand(be, rng, 40, 2, 3)
	require.NoError(t, g.InitFromData(x))
	xs, mu := make([]float64, 80), make([]float64, 6)
	be.Download(xs, x)
	be.Download(mu, g.Params()[0].Value)
	for c := 0; c < 3; c++ { // every mean is a row of x
		found := false
		for i := 0; i < 40 && !found; i++ {
			found = xs[2*i] == mu[2*c] && xs[2*i+1] == mu[2*c+1]
		}
		assert.True(t, found, "mean %d is not a data row", c)
	}
	logp := be.New(40, 1)
	require.NoError(t, g.LogProb(logp, x))
	lp := make([]float64, 40)
	be.Download(lp, logp)
	for _, v := range lp {
		assert.False(t, math.IsNaN(v) || math.IsInf(v, 0))
	}

	_, err = model.NewGMM(be, 2, 0, rng)
	assert.Error(t, err)
	assert.Error(t, g.InitFromData(modeltest.Rand(be, rng, 2, 2, 1)), "fewer rows than components")
	assert.Error(t, g.LogProb(be.New(3, 1), be.New(3, 3)), "wrong dimension")
	fresh, err := model.NewGMM(be, 2, 2, nil)
	require.NoError(t, err)
	assert.Error(t, fresh.Backward(nil, be.New(1, 1)), "Backward before LogProb")

	mk := model.GMMDensity(2)
	d, err := mk(be, 3, rng)
	require.NoError(t, err)
	assert.Equal(t, 3, d.Dim())
	assert.Len(t, d.Params(), 3)
}

// Gradient ascent (Adam) from InitFromData recovers a two-mode mixture:
// A = 0.3·N(−1, 0.5²) + 0.7·N(1.5, 0.4²).
func TestGMMFitsBimodal(t *testing.T) {
	be := native.NewRef()
	rng := rand.New(rand.NewPCG(2026, 22)) // fixed: a fit, not a property of every draw
	const n = 4000
	xs := make([]float64, n)
	for i := range xs {
		if rng.Float64() < 0.3 {
			xs[i] = -1 + 0.5*rng.NormFloat64()
		} else {
			xs[i] = 1.5 + 0.4*rng.NormFloat64()
		}
	}
	x := be.New(n, 1)
	be.Upload(x, xs)
	g, err := model.NewGMM(be, 1, 2, rng)
	require.NoError(t, err)
	require.NoError(t, g.InitFromData(x))
	logp, w := be.New(n, 1), be.New(n, 1)
	be.Fill(w, -1/float64(n)) // minimise −ℓ
	type moments struct{ m, v *native.Tensor }
	st := map[*model.Param]moments{}
	for _, p := range g.Params() {
		st[p] = moments{be.New(p.Value.Rows(), p.Value.Cols()), be.New(p.Value.Rows(), p.Value.Cols())}
	}
	const b1, b2 = 0.9, 0.999
	for step := 1; step <= 1500; step++ {
		require.NoError(t, g.LogProb(logp, x))
		require.NoError(t, g.Backward(nil, w))
		h := native.AdamHyper{LR: 0.03, Beta1: b1, Beta2: b2, Eps: 1e-8,
			BC1: 1 - math.Pow(b1, float64(step)), BC2: 1 - math.Pow(b2, float64(step))}
		for _, p := range g.Params() {
			be.Adam(p.Value, p.Grad, st[p].m, st[p].v, h)
		}
	}
	mu, l, lg := make([]float64, 2), make([]float64, 2), make([]float64, 2)
	be.Download(mu, g.Params()[0].Value)
	be.Download(l, g.Params()[1].Value)
	be.Download(lg, g.Params()[2].Value)
	lo, hi := 0, 1
	if mu[0] > mu[1] {
		lo, hi = 1, 0
	}
	pLo := 1 / (1 + math.Exp(lg[hi]-lg[lo]))
	t.Logf("means %.3f, %.3f; σ %.3f, %.3f; π_lo %.3f", mu[lo], mu[hi], 1/math.Abs(l[lo]), 1/math.Abs(l[hi]), pLo)
	assert.InDelta(t, -1, mu[lo], 0.1)
	assert.InDelta(t, 1.5, mu[hi], 0.1)
	assert.InDelta(t, 0.5, 1/math.Abs(l[lo]), 0.06)
	assert.InDelta(t, 0.4, 1/math.Abs(l[hi]), 0.06)
	assert.InDelta(t, 0.3, pLo, 0.05)
}

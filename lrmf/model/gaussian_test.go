package model_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/model/modeltest"
	"github.com/lrmf-go/lrmf/native"
)

// newRNG returns the test's source of random inputs, seeded by testseed
// (fixed by default, printed on failure, replayed with LRMF_TEST_SEED).
func newRNG(t *testing.T) *rand.Rand {
	return rand.New(rand.NewPCG(testseed.Seed(t), 7))
}

func TestGaussianGradients(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, d := range []int{1, 2, 3} {
		g := model.NewGaussian(be, d)
		modeltest.Perturb(be, g.Params(), rng, 0.3)
		modeltest.DensityGradients(t, be, g, modeltest.Rand(be, rng, 7, d, 2), rng, 1e-6)
	}
}

// The gradient checks must be able to fail: a density whose Backward is off
// by a factor is caught.
func TestGradientCheckCatchesWrongBackward(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	g := model.NewGaussian(be, 2)
	bad := &scaledBackward{Density: g, be: be}
	ft := &testing.T{}
	done := make(chan struct{})
	go func() { // t.Fatal in the check calls runtime.Goexit
		defer close(done)
		modeltest.DensityGradients(ft, be, bad, modeltest.Rand(be, rng, 5, 2, 1), rng, 1e-6)
	}()
	<-done
	assert.True(t, ft.Failed(), "a Backward scaled by 1.01 passed the finite-difference check")
}

type scaledBackward struct {
	model.Density
	be native.Backend
}

func (s *scaledBackward) Backward(dx, dlogp *native.Tensor) error {
	if err := s.Density.Backward(dx, dlogp); err != nil {
		return err
	}
	for _, p := range s.Params() {
		s.be.Axpy(0.01, p.Grad, p.Grad)
	}
	return nil
}

func TestGaussianMLE(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	n, d := 500, 3
	x := modeltest.Rand(be, rng, n, d, 1)
	g := model.NewGaussian(be, d)
	require.NoError(t, g.FitMLE(x))
	mean, cov, err := g.Moments()
	require.NoError(t, err)
	xs := make([]float64, n*d)
	be.Download(xs, x)
	xm := mat.NewDense(n, d, xs)
	for j := 0; j < d; j++ {
		m := mat.Sum(xm.ColView(j)) / float64(n)
		assert.InDelta(t, m, mean[j], 1e-12)
		for k := 0; k < d; k++ {
			c := 0.0
			for i := 0; i < n; i++ {
				c += (xm.At(i, j) - m) * (xm.At(i, k) - mean[k])
			}
			assert.InDelta(t, c/float64(n), cov.At(j, k), 1e-12)
		}
	}
	// At the MLE the mean log-likelihood is −D/2 (1 + ln 2π) − ½ ln det Σ and
	// the gradient vanishes.
	ll, err := model.MeanLogProb(be, g, x)
	require.NoError(t, err)
	var chol mat.Cholesky
	require.True(t, chol.Factorize(cov))
	assert.InDelta(t, -0.5*float64(d)*(1+math.Log(2*math.Pi))-0.5*chol.LogDet(), ll, 1e-12)
	logp, w := be.New(n, 1), be.New(n, 1)
	be.Fill(w, -1/float64(n))
	require.NoError(t, g.LogProb(logp, x))
	require.NoError(t, g.Backward(nil, w))
	for _, p := range g.Params() {
		assert.Less(t, math.Sqrt(be.Dot(p.Grad, p.Grad)), 1e-12, p.Name)
	}

	// Degenerate data (all rows equal) has no MLE.
	same := be.New(10, 2)
	be.Fill(same, 1)
	require.ErrorContains(t, model.NewGaussian(be, 2).FitMLE(same), "degenerate")
}

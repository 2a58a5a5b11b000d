//go:build cgo

package bindings_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/bindings"
)

// gmmDirect evaluates a 1-D two-component mixture the obvious way.
func gmmDirect(x, w0, w1, m0, m1, s0, s1 float64) float64 {
	p := func(x, m, s float64) float64 {
		return math.Exp(-0.5*(x-m)*(x-m)/(s*s)) / (s * math.Sqrt(2*math.Pi))
	}
	return math.Log(w0*p(x, m0, s0) + w1*p(x, m1, s1))
}

func testGMM[T bindings.Float](t *testing.T) {
	// 1-D, K = 2: π = softmax(0, ln 3) = (¼, ¾), N(−1, 0.5²), N(2, 2²).
	const n, d, k = 3, 1, 2
	x := conv[T](-1, 0.5, 3)
	mu := conv[T](-1, 2)
	l := conv[T](2, 0.5) // L = 1/σ
	logits := conv[T](0, math.Log(3))
	logdet := conv[T](math.Log(2), math.Log(0.5))
	u, resp, logp := make([]T, n*k*d), make([]T, n*k), make([]T, n)
	require.NoError(t, bindings.GMMLogProb(n, d, k, x, mu, l, logits, logdet, u, resp, logp))
	want := make([]float64, n)
	for i, xi := range []float64{-1, 0.5, 3} {
		want[i] = gmmDirect(xi, 0.25, 0.75, -1, 2, 0.5, 2)
	}
	near(t, want, logp)
	for i := 0; i < n; i++ {
		assert.InDelta(t, 1, float64(resp[2*i]+resp[2*i+1]), 10*tol[T](), "Σ resp row %d", i)
	}
	near(t, []float64{0, -1.5, 3, -0.75, 8, 0.5}, u)

	// Backward with dlogp = 1 for row 1 only: dx = ∂logp_1/∂x_1 by FD.
	dlogp := conv[T](0, 1, 0)
	dx, dmu, dl := make([]T, n*d), make([]T, k*d), make([]T, k*d*d)
	dlogits, wsum := make([]T, k), make([]T, k)
	require.NoError(t, bindings.GMMBackward(n, d, k, x, mu, l, logits, u, resp, dlogp, dx, dmu, dl, dlogits, wsum))
	const h = 1e-6
	fd := (gmmDirect(0.5+h, 0.25, 0.75, -1, 2, 0.5, 2) - gmmDirect(0.5-h, 0.25, 0.75, -1, 2, 0.5, 2)) / (2 * h)
	assert.InDelta(t, fd, float64(dx[1]), 1e-4)
	assert.Equal(t, T(0), dx[0])
	near(t, []float64{float64(resp[2]), float64(resp[3])}, wsum)
	near(t, []float64{float64(resp[2]) - 0.25, float64(resp[3]) - 0.75}, dlogits)
	// Every sum is zero for n = 0.
	require.NoError(t, bindings.GMMBackward(0, d, k, nil, mu, l, logits, nil, nil, nil, nil, dmu, dl, dlogits, wsum))
	near(t, []float64{0, 0}, dmu)
	near(t, []float64{0, 0}, wsum)

	// Argument errors write nothing.
	var e *bindings.Error
	require.ErrorAs(t, bindings.GMMLogProb(n, d, 0, x, mu, l, logits, logdet, u, resp, logp), &e)
	require.ErrorAs(t, bindings.GMMLogProb(n, d, k, x, mu[:1], l, logits, logdet, u, resp, logp), &e)
	require.ErrorAs(t, bindings.GMMLogProb(n, d, k, x, mu, l, logits, logdet, u[:2], resp, logp), &e)
	require.ErrorAs(t, bindings.GMMBackward(n, d, k, x, mu, l, logits, u, resp, dlogp, dx, dmu, dl, dlogits, wsum[:1]), &e)
	require.ErrorAs(t, bindings.GMMBackward(-1, d, k, x, mu, l, logits, u, resp, dlogp, dx, dmu, dl, dlogits, wsum), &e)
}

func TestGMM(t *testing.T) { both(t, testGMM[float32], testGMM[float64]) }

// A far-away component must not underflow the mixture: logsumexp is
// max-shifted, so logp stays finite where every density is 0 in float64.
func TestGMMFarTail(t *testing.T) {
	x := []float64{1e3}
	mu := []float64{0, 1}
	l := []float64{1, 1}
	logits := []float64{0, 0}
	logdet := []float64{0, 0}
	u, resp, logp := make([]float64, 2), make([]float64, 2), make([]float64, 1)
	require.NoError(t, bindings.GMMLogProb(1, 1, 2, x, mu, l, logits, logdet, u, resp, logp))
	lp0, lp1 := -0.5*1e6, -0.5*999*999
	m := math.Max(lp0, lp1)
	want := m + math.Log(math.Exp(lp0-m)+math.Exp(lp1-m)) - math.Log(2) - 0.5*math.Log(2*math.Pi)
	assert.InDelta(t, want, logp[0], 1e-9*math.Abs(want))
	assert.InDelta(t, 1, resp[1], 1e-12)
}

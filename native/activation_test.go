package native_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/native"
)

// The reference backend's activation backward passes are the oracle for the
// kernels, so they are checked against central finite differences of
// L = Σ w·act(x).
func TestRefActivationBackwardFiniteDifferences(t *testing.T) {
	be := native.NewRef()
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 3))
	n := 50
	xs, ws := make([]float64, n), make([]float64, n)
	for i := range xs {
		xs[i] = 4 * (2*rng.Float64() - 1)
		if math.Abs(xs[i]) < 1e-3 { // ReLU's kink
			xs[i] = 0.5
		}
		ws[i] = 2*rng.Float64() - 1
	}
	x, w, y, dx := be.New(n, 1), be.New(n, 1), be.New(n, 1), be.New(n, 1)
	be.Upload(x, xs)
	be.Upload(w, ws)
	type act struct {
		name string
		fwd  func(y, x *native.Tensor)
		bwd  func()
	}
	acts := []act{
		{"ReLU", be.ReLU, func() { be.ReLUBackward(dx, x, w) }},
		{"Tanh", be.Tanh, func() { be.TanhBackward(dx, y, w) }},
	}
	const h = 1e-6
	one, oy := be.New(1, 1), be.New(1, 1)
	for _, a := range acts {
		a.fwd(y, x)
		a.bwd()
		got := make([]float64, n)
		be.Download(got, dx)
		for i := range xs {
			f := func(v float64) float64 {
				be.Upload(one, []float64{v})
				a.fwd(oy, one)
				out := []float64{0}
				be.Download(out, oy)
				return ws[i] * out[0]
			}
			want := (f(xs[i]+h) - f(xs[i]-h)) / (2 * h)
			if math.Abs(got[i]-want) > 1e-7*math.Max(1, math.Abs(want)) {
				t.Errorf("%s backward at x = %g: %g, finite difference %g", a.name, xs[i], got[i], want)
			}
		}
	}
}

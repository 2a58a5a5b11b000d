package native_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/native"
)

// TestRefCouplingBackwardFiniteDifferences is the coupling layer's backward
// check: on the reference backend, CouplingBackward with dy = wy and
// dlogdet = wl must be the gradient of
//
//	L(x, h) = Σ wy ⊙ y + Σ wl ⊙ logdet,  (y, logdet) = CouplingForward(x, h)
//
// with respect to x and h, as central differences (step 1e-6) measure it,
// to 1e-6 relative to max(1, |gradient|). r spans ±6, so the exp scale's
// soft bound (3) is exercised in its saturating range.
func TestRefCouplingBackwardFiniteDifferences(t *testing.T) {
	const step, tol = 1e-6, 1e-6
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 3))
	r := native.NewRef()
	uniform := func(n int, scale float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = scale * (2*rng.Float64() - 1)
		}
		return v
	}
	upload := func(rows, cols int, v []float64) *native.Tensor {
		tt := r.New(rows, cols)
		r.Upload(tt, v)
		return tt
	}
	scales := []native.Scale{{Kind: native.ScaleExp, Bound: 3}, {Kind: native.ScaleExp, Bound: 1}, {Kind: native.ScaleSigmoid}}
	shapes := [][4]int{{3, 2, 0, 1}, {3, 2, 1, 1}, {3, 5, 0, 2}, {3, 5, 3, 2}, {3, 5, 1, 3}, {3, 5, 2, 3}} // n, D, t0, dt
	for _, sc := range scales {
		for _, s := range shapes {
			n, d, t0, dt := s[0], s[1], s[2], s[3]
			t.Run(fmt.Sprintf("%v/bound=%g/D=%d/t0=%d/dt=%d", sc.Kind, sc.Bound, d, t0, dt), func(t *testing.T) {
				x := uniform(n*d, 2)
				h := uniform(n*2*dt, 1)
				for i := 0; i < n; i++ {
					for j := dt; j < 2*dt; j++ {
						h[i*2*dt+j] *= 6 // r
					}
				}
				wy, wl := uniform(n*d, 1), uniform(n, 1)
				wyT, wlT := upload(n, d, wy), upload(n, 1, wl)

				loss := func(x, h []float64) float64 {
					y, ld := r.New(n, d), r.New(n, 1)
					r.CouplingForward(y, ld, upload(n, d, x), upload(n, 2*dt, h), t0, sc)
					return r.Dot(wyT, y) + r.Dot(wlT, ld)
				}
				dx, dh := r.New(n, d), r.New(n, 2*dt)
				r.CouplingBackward(dx, dh, upload(n, d, x), upload(n, 2*dt, h), wyT, wlT, t0, sc)
				gx, gh := make([]float64, n*d), make([]float64, n*2*dt)
				r.Download(gx, dx)
				r.Download(gh, dh)

				// fd perturbs v[i] (a slice of x or h) and returns ∂L/∂v[i].
				fd := func(v []float64, i int) float64 {
					v0 := v[i]
					v[i] = v0 + step
					lp := loss(x, h)
					v[i] = v0 - step
					lm := loss(x, h)
					v[i] = v0
					return (lp - lm) / (2 * step)
				}
				for _, c := range []struct {
					name string
					v, g []float64
				}{{"x", x, gx}, {"h", h, gh}} {
					for i := range c.v {
						want := fd(c.v, i)
						if diff := math.Abs(c.g[i] - want); !(diff <= tol*math.Max(1, math.Abs(c.g[i]))) {
							t.Errorf("∂L/∂%s[%d]: backward %.12g, finite differences %.12g (|diff| %.3g)", c.name, i, c.g[i], want, diff)
						}
					}
				}
			})
		}
	}
}

func TestRealNVPShapeMismatchPanics(t *testing.T) {
	for _, name := range []string{"ref", native.DefaultBackend()} {
		b, err := native.Open(name, native.Float64, 1)
		if err != nil {
			t.Fatal(err)
		}
		exp := native.Scale{Kind: native.ScaleExp, Bound: 2}
		x, y := b.New(3, 5), b.New(3, 5)
		for _, c := range []struct {
			want string
			call func()
		}{
			{"native: CopyCols: columns [3, 6) outside a 5-column tensor", func() { b.CopyCols(b.New(3, 3), x, 3) }},
			{"native: AddCols: columns [-1, 1) outside a 5-column tensor", func() { b.AddCols(x, b.New(3, 2), -1) }},
			{"native: AddCols: 2 rows and 3 rows", func() { b.AddCols(x, b.New(2, 2), 0) }},
			{"native: Mul: b is 3×4, want 3×5", func() { b.Mul(y, x, b.New(3, 4)) }},
			{"native: Mul: out is 5×3, want 3×5", func() { b.Mul(b.New(5, 3), x, y) }},
			{"native: BiasReLUBackward: dz is 3×4, want 3×5", func() { b.BiasReLUBackward(b.New(3, 4), b.New(1, 5), x, y) }},
			{"native: CouplingForward: h has 3 columns, want an even number [μ | r]", func() { b.CouplingForward(y, nil, x, b.New(3, 3), 0, exp) }},
			{"native: CouplingForward: h is 2×4, want 3×4", func() { b.CouplingForward(y, nil, x, b.New(2, 4), 0, exp) }},
			{"native: CouplingForward: transformed columns [4, 6) outside a 5-column tensor", func() { b.CouplingForward(y, nil, x, b.New(3, 4), 4, exp) }},
			{"native: CouplingInverse: exp scale bound 0, want > 0", func() { b.CouplingInverse(y, x, b.New(3, 4), 0, native.Scale{Kind: native.ScaleExp}) }},
			{"native: CouplingBackward: unknown scale kind 0", func() { b.CouplingBackward(nil, b.New(3, 4), x, b.New(3, 4), y, b.New(3, 1), 0, native.Scale{}) }},
			{"native: CouplingBackward: dlogdet has 2 elements, want 3", func() { b.CouplingBackward(nil, b.New(3, 4), x, b.New(3, 4), y, b.New(2, 1), 0, exp) }},
		} {
			func() {
				defer func() {
					if got := recover(); got != c.want {
						t.Errorf("%s backend: panic %v, want %q", name, got, c.want)
					}
				}()
				c.call()
			}()
		}
		b.Close()
	}
}

package native_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/native"
)

// The reference mixture backward against central finite differences of
// Σ_i w_i logp_i with logdetL held fixed (dl is the data term only), and
// against a direct evaluation of the density.
func TestRefGMMFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 7))
	r := native.NewRef().(native.GMMBackend)
	const n, d, k = 6, 3, 3
	up := func(rows, cols int, scale, diag float64) *native.Tensor {
		v := make([]float64, rows*cols)
		for i := range v {
			v[i] = scale * (2*rng.Float64() - 1)
		}
		if diag != 0 {
			for i := 0; i < rows; i++ {
				v[i*cols+i%cols] += diag
			}
		}
		tt := r.New(rows, cols)
		r.Upload(tt, v)
		return tt
	}
	x, mu, l := up(n, d, 2, 0), up(k, d, 1.5, 0), up(k*d, d, 0.3, 1)
	logits, logdet, w := up(1, k, 1, 0), up(1, k, 0.3, 0), up(n, 1, 1, 0)
	u, resp, logp := r.New(n, k*d), r.New(n, k), r.New(n, 1)
	loss := func() float64 {
		r.GMMLogProb(logp, u, resp, x, mu, l, logits, logdet)
		return r.Dot(logp, w)
	}
	loss()
	dx, dmu, dl := r.New(n, d), r.New(k, d), r.New(k*d, d)
	dlg, ws := r.New(1, k), r.New(1, k)
	r.GMMBackward(dx, dmu, dl, dlg, ws, x, mu, l, logits, u, resp, w)

	// Direct density: Σ_c π_c N(x; μ_c, Σ_c) with logdetL as given.
	xs, ms, ls, lg, ld, lp := get(r, x), get(r, mu), get(r, l), get(r, logits), get(r, logdet), get(r, logp)
	z := 0.0
	for _, v := range lg {
		z += math.Exp(v)
	}
	for i := 0; i < n; i++ {
		p := 0.0
		for c := 0; c < k; c++ {
			q := 0.0
			for a := 0; a < d; a++ {
				s := 0.0
				for b := 0; b < d; b++ {
					s += ls[(c*d+a)*d+b] * (xs[i*d+b] - ms[c*d+b])
				}
				q += s * s
			}
			p += math.Exp(lg[c]) / z * math.Exp(ld[c]-0.5*q) / math.Pow(2*math.Pi, d/2.0)
		}
		if math.Abs(math.Log(p)-lp[i]) > 1e-12*math.Max(1, math.Abs(lp[i])) {
			t.Errorf("logp[%d] = %.17g, direct %.17g", i, lp[i], math.Log(p))
		}
	}

	for _, c := range []struct {
		name string
		p, g *native.Tensor
	}{{"x", x, dx}, {"mu", mu, dmu}, {"L", l, dl}, {"logits", logits, dlg}} {
		got := get(r, c.g)
		v := get(r, c.p)
		for i := range v {
			old := v[i]
			v[i] = old + 1e-6
			r.Upload(c.p, v)
			fp := loss()
			v[i] = old - 1e-6
			r.Upload(c.p, v)
			fm := loss()
			v[i] = old
			r.Upload(c.p, v)
			fd := (fp - fm) / 2e-6
			if math.Abs(fd-got[i]) > 1e-6*math.Max(1, math.Abs(fd)) {
				t.Errorf("∂/∂%s[%d]: analytic %.10g, finite difference %.10g", c.name, i, got[i], fd)
			}
		}
	}
	// wsum_c = ∂/∂logdetL_c.
	got, v := get(r, ws), get(r, logdet)
	for i := range v {
		old := v[i]
		v[i] = old + 1e-6
		r.Upload(logdet, v)
		fp := loss()
		v[i] = old - 1e-6
		r.Upload(logdet, v)
		fm := loss()
		v[i] = old
		r.Upload(logdet, v)
		if fd := (fp - fm) / 2e-6; math.Abs(fd-got[i]) > 1e-6*math.Max(1, math.Abs(fd)) {
			t.Errorf("wsum[%d] = %.10g, ∂/∂logdetL by finite differences %.10g", i, got[i], fd)
		}
	}
}

func get(b native.Backend, t *native.Tensor) []float64 {
	v := make([]float64, t.Len())
	b.Download(v, t)
	return v
}

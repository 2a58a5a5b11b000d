// Package modeltest holds the checks every model.Flow and model.Density must
// pass, run on the float64 reference backend: gradients of Backward against
// central finite differences, inverse∘forward = identity, and the analytic
// log-det against ln|det J| of a finite-difference Jacobian.
package modeltest

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// Perturb adds scale·U(−1, 1) to every parameter, so checks do not run only
// at a special point such as the identity initialisation.
func Perturb(be native.Backend, ps []*model.Param, rng *rand.Rand, scale float64) {
	for _, p := range ps {
		v := download(be, p.Value)
		for i := range v {
			v[i] += scale * (2*rng.Float64() - 1)
		}
		be.Upload(p.Value, v)
	}
}

// Rand returns an n×d tensor of scale·U(−1, 1) entries.
func Rand(be native.Backend, rng *rand.Rand, n, d int, scale float64) *native.Tensor {
	v := make([]float64, n*d)
	for i := range v {
		v[i] = scale * (2*rng.Float64() - 1)
	}
	t := be.New(n, d)
	be.Upload(t, v)
	return t
}

func download(be native.Backend, t *native.Tensor) []float64 {
	v := make([]float64, t.Len())
	be.Download(v, t)
	return v
}

// fdStep is the central-difference step; with float64 and smooth maps the
// truncation and rounding errors balance near 1e-5 to 1e-6.
const fdStep = 1e-6

// closeTo reports |got − want| ≤ tol·max(1, |want|).
func closeTo(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

// numGrad returns the central-difference derivative of f with respect to
// every element of t.
func numGrad(be native.Backend, t *native.Tensor, f func() float64) []float64 {
	v := download(be, t)
	g := make([]float64, len(v))
	for i := range v {
		old := v[i]
		v[i] = old + fdStep
		be.Upload(t, v)
		fp := f()
		v[i] = old - fdStep
		be.Upload(t, v)
		fm := f()
		v[i] = old
		g[i] = (fp - fm) / (2 * fdStep)
	}
	be.Upload(t, v)
	return g
}

func compareGrad(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	bad := 0
	for i := range want {
		if !closeTo(got[i], want[i], tol) {
			if bad < 5 {
				t.Errorf("%s[%d]: analytic %.10g, finite difference %.10g", what, i, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d elements differ", what, bad, len(want))
	}
}

// DensityGradients checks Density.Backward on x against finite differences
// of L = Σ_i w_i ln p(x_i) for random weights w, with respect to every
// parameter and to x. be must be a float64 backend.
func DensityGradients(t *testing.T, be native.Backend, d model.Density, x *native.Tensor, rng *rand.Rand, tol float64) {
	t.Helper()
	n := x.Rows()
	w := Rand(be, rng, n, 1, 1)
	logp := be.New(n, 1)
	loss := func() float64 {
		if err := d.LogProb(logp, x); err != nil {
			t.Fatal(err)
		}
		return be.Dot(logp, w)
	}
	loss()
	dx := be.New(n, x.Cols())
	if err := d.Backward(dx, w); err != nil {
		t.Fatal(err)
	}
	compareGrad(t, "∂L/∂x", download(be, dx), numGrad(be, x, loss), tol)
	for _, p := range d.Params() {
		got := download(be, p.Grad)
		compareGrad(t, "∂L/∂"+p.Name, got, numGrad(be, p.Value, loss), tol)
	}
}

// FlowGradients checks Flow.Backward on x against finite differences of
// L = Σ_i wy_i·T(x_i) + wl_i ln|det ∂T/∂x(x_i)| for random wy, wl, with
// respect to every parameter and to x.
func FlowGradients(t *testing.T, be native.Backend, f model.Flow, x *native.Tensor, rng *rand.Rand, tol float64) {
	t.Helper()
	n, d := x.Rows(), x.Cols()
	wy, wl := Rand(be, rng, n, d, 1), Rand(be, rng, n, 1, 1)
	y, logdet := be.New(n, d), be.New(n, 1)
	loss := func() float64 {
		be.Fill(logdet, 0)
		if err := f.Forward(y, logdet, x); err != nil {
			t.Fatal(err)
		}
		return be.Dot(y, wy) + be.Dot(logdet, wl)
	}
	loss()
	dx := be.New(n, d)
	if err := f.Backward(dx, wy, wl); err != nil {
		t.Fatal(err)
	}
	grads := make([][]float64, len(f.Params()))
	for i, p := range f.Params() {
		grads[i] = download(be, p.Grad)
	}
	compareGrad(t, "∂L/∂x", download(be, dx), numGrad(be, x, loss), tol)
	for i, p := range f.Params() {
		compareGrad(t, "∂L/∂"+p.Name, grads[i], numGrad(be, p.Value, loss), tol)
	}
}

// FlowInverse checks T⁻¹(T(x)) = x to tol (absolute, per element).
func FlowInverse(t *testing.T, be native.Backend, f model.Flow, x *native.Tensor, tol float64) {
	t.Helper()
	n, d := x.Rows(), x.Cols()
	y, logdet, back := be.New(n, d), be.New(n, 1), be.New(n, d)
	if err := f.Forward(y, logdet, x); err != nil {
		t.Fatal(err)
	}
	if err := f.Inverse(back, y); err != nil {
		t.Fatal(err)
	}
	xs, bs := download(be, x), download(be, back)
	for i := range xs {
		if math.Abs(xs[i]-bs[i]) > tol {
			t.Fatalf("T⁻¹(T(x))[%d] = %.17g, x = %.17g (|diff| %.3g > %.3g)", i, bs[i], xs[i], math.Abs(xs[i]-bs[i]), tol)
		}
	}
}

// FlowLogDet checks the analytic per-sample log-det of Forward against
// ln|det J| of the central-difference Jacobian of T at each row of x.
func FlowLogDet(t *testing.T, be native.Backend, f model.Flow, x *native.Tensor, tol float64) {
	t.Helper()
	n, d := x.Rows(), x.Cols()
	y, logdet := be.New(n, d), be.New(n, 1)
	if err := f.Forward(y, logdet, x); err != nil {
		t.Fatal(err)
	}
	want := download(be, logdet)
	xs := download(be, x)
	one, oy, ol := be.New(1, d), be.New(1, d), be.New(1, 1)
	eval := func(p []float64) []float64 {
		be.Upload(one, p)
		be.Fill(ol, 0)
		if err := f.Forward(oy, ol, one); err != nil {
			t.Fatal(err)
		}
		return download(be, oy)
	}
	for i := 0; i < n; i++ {
		jac := mat.NewDense(d, d, nil)
		p := append([]float64(nil), xs[i*d:(i+1)*d]...)
		for j := 0; j < d; j++ {
			old := p[j]
			p[j] = old + fdStep
			yp := eval(p)
			p[j] = old - fdStep
			ym := eval(p)
			p[j] = old
			for r := 0; r < d; r++ {
				jac.Set(r, j, (yp[r]-ym[r])/(2*fdStep))
			}
		}
		var lu mat.LU
		lu.Factorize(jac)
		ld, _ := lu.LogDet()
		if !closeTo(want[i], ld, tol) {
			t.Fatalf("row %d: analytic log-det %.12g, ln|det J| by finite differences %.12g", i, want[i], ld)
		}
	}
}

// GLOWDensityStep builds, on be, the GLOW density on 32×32×1 images with
// options o, initialises it from data on an n×1024 batch of U(−1, 1)
// pixels, and returns one training step on that batch: LogProb, then
// Backward with weights −1/n (the gradient of −mean ln p). The step the
// CPU and GPU GLOW benchmarks time (tests/gpu/torch_glow.py is its PyTorch
// twin); it fails tb on any error.
func GLOWDensityStep(tb testing.TB, be native.Backend, o model.GLOWOptions, n int) func() {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	s := model.ImageShape{H: 32, W: 32, C: 1}
	p, err := model.GLOWDensity(s, o)(be, s.Dim(), rng)
	if err != nil {
		tb.Fatal(err)
	}
	x := Rand(be, rng, n, s.Dim(), 1)
	di, ok := model.DataInitializerOf(p)
	if !ok {
		tb.Fatalf("modeltest: the GLOW density %T has no data-dependent initialisation", p)
	}
	if err := di.InitFromData(x); err != nil {
		tb.Fatal(err)
	}
	logp, w := be.New(n, 1), be.New(n, 1)
	be.Fill(w, -1/float64(n))
	return func() {
		if err := p.LogProb(logp, x); err != nil {
			tb.Fatal(err)
		}
		if err := p.Backward(nil, w); err != nil {
			tb.Fatal(err)
		}
	}
}

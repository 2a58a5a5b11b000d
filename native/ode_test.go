package native_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/native"
	"github.com/lrmf-go/lrmf/native/nativetest"
)

// odeFixture is a random FFJORD dynamics on the reference backend.
type odeFixture struct {
	r     native.ODEBackend
	dims  []int
	d, np int
	rng   *rand.Rand
}

func newODEFixture(t *testing.T, dims []int, stream uint64) *odeFixture {
	r := native.NewRef().(native.ODEBackend)
	return &odeFixture{r: r, dims: dims, d: dims[len(dims)-1], np: native.ODENumParams(dims),
		rng: rand.New(rand.NewPCG(nativetest.Seed(t), stream))}
}

func (f *odeFixture) uniform(n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * (2*f.rng.Float64() - 1)
	}
	return v
}

func (f *odeFixture) up(rows, cols int, v []float64) *native.Tensor {
	t := f.r.New(rows, cols)
	f.r.Upload(t, v)
	return t
}

func (f *odeFixture) down(t *native.Tensor) []float64 {
	v := make([]float64, t.Len())
	f.r.Download(v, t)
	return v
}

// TestRefODEFuncVJPFiniteDifferences checks ODEFuncVJP against central
// differences (step 1e-6) of Λ(z, θ) = Σ az⊙f + Σ atr⊙trace w.r.t. z and
// θ, exact trace and Hutchinson, to 1e-6 relative to max(1, |gradient|).
// The trace term needs the second-order part (the second derivative of tanh) of the derivation.
func TestRefODEFuncVJPFiniteDifferences(t *testing.T) {
	const step, tol = 1e-6, 1e-6
	for _, dims := range [][]int{{3, 16, 16, 16, 2}, {4, 5, 3}, {2, 3, 1}, {3, 2}} {
		for _, k := range []int{0, 2} {
			t.Run(fmt.Sprintf("dims=%v/k=%d", dims, k), func(t *testing.T) {
				f := newODEFixture(t, dims, uint64(len(dims)*10+k))
				n, d, np := 3, f.d, f.np
				z, theta := f.uniform(n*d, 1.5), f.uniform(np, 0.9)
				var eps *native.Tensor
				if k > 0 {
					eps = f.up(n, k*d, f.uniform(n*k*d, 1))
				}
				az, atr := f.up(n, d, f.uniform(n*d, 1)), f.up(n, 1, f.uniform(n, 1))
				const tm = 0.4
				loss := func(z, theta []float64) float64 {
					dz, tr := f.r.New(n, d), f.r.New(n, 1)
					f.r.ODEFuncForward(dz, tr, f.up(n, d, z), f.up(1, np, theta), eps, dims, tm)
					return f.r.Dot(az, dz) + f.r.Dot(atr, tr)
				}
				gz, gth := f.r.New(n, d), f.r.New(1, np)
				f.r.ODEFuncVJP(gz, gth, f.up(n, d, z), f.up(1, np, theta), eps, az, atr, dims, tm)
				for _, c := range []struct {
					name string
					v, g []float64
				}{{"z", z, f.down(gz)}, {"θ", theta, f.down(gth)}} {
					for i := range c.v {
						v0 := c.v[i]
						c.v[i] = v0 + step
						lp := loss(z, theta)
						c.v[i] = v0 - step
						lm := loss(z, theta)
						c.v[i] = v0
						want := (lp - lm) / (2 * step)
						if diff := math.Abs(c.g[i] - want); !(diff <= tol*math.Max(1, math.Abs(want))) {
							t.Errorf("∂Λ/∂%s[%d]: VJP %.12g, finite differences %.12g (|diff| %.3g)", c.name, i, c.g[i], want, diff)
						}
					}
				}
			})
		}
	}
}

// TestRefODEExactTraceIsJacobianTrace checks the exact divergence against
// the trace of a central-difference Jacobian of f.
func TestRefODEExactTraceIsJacobianTrace(t *testing.T) {
	f := newODEFixture(t, []int{4, 16, 16, 16, 3}, 1)
	n, d := 4, f.d
	z, theta := f.uniform(n*d, 1.5), f.up(1, f.np, f.uniform(f.np, 0.9))
	dz, tr := f.r.New(n, d), f.r.New(n, 1)
	f.r.ODEFuncForward(dz, tr, f.up(n, d, z), theta, nil, f.dims, 0.7)
	got := f.down(tr)
	const step = 1e-6
	for i := 0; i < n; i++ {
		want := 0.0
		for j := 0; j < d; j++ {
			at := func(h float64) float64 {
				zz := append([]float64(nil), z...)
				zz[i*d+j] += h
				out, tr := f.r.New(n, d), f.r.New(n, 1)
				f.r.ODEFuncForward(out, tr, f.up(n, d, zz), theta, nil, f.dims, 0.7)
				return f.down(out)[i*d+j]
			}
			want += (at(step) - at(-step)) / (2 * step)
		}
		if math.Abs(got[i]-want) > 1e-7*math.Max(1, math.Abs(want)) {
			t.Errorf("row %d: trace %.12g, FD Jacobian trace %.12g", i, got[i], want)
		}
	}
}

// TestRefODEHutchinsonUnbiased: the Hutchinson estimate with Rademacher
// probes averages to the exact trace. 4000 rows share one z, each with one
// probe; their mean must be within 5 standard errors of the exact trace,
// and one row with all 4000 probes must give the same mean.
func TestRefODEHutchinsonUnbiased(t *testing.T) {
	f := newODEFixture(t, []int{4, 16, 16, 16, 3}, 2)
	f.rng = rand.New(rand.NewPCG(12345, 678)) // fixed seed: a statistical test
	const n = 4000
	d := f.d
	z0, theta := f.uniform(d, 1.5), f.up(1, f.np, f.uniform(f.np, 0.9))
	z := make([]float64, 0, n*d)
	for i := 0; i < n; i++ {
		z = append(z, z0...)
	}
	eps := make([]float64, n*d)
	for i := range eps {
		eps[i] = float64(2*f.rng.IntN(2) - 1)
	}
	zt := f.up(n, d, z)
	dz, exact, est := f.r.New(n, d), f.r.New(n, 1), f.r.New(n, 1)
	f.r.ODEFuncForward(dz, exact, zt, theta, nil, f.dims, 0.2)
	f.r.ODEFuncForward(dz, est, zt, theta, f.up(n, d, eps), f.dims, 0.2)
	ex, es := f.down(exact)[0], f.down(est)
	mean, sq := 0.0, 0.0
	for _, v := range es {
		mean += v
	}
	mean /= n
	for _, v := range es {
		sq += (v - mean) * (v - mean)
	}
	se := math.Sqrt(sq/(n-1)) / math.Sqrt(n)
	if math.Abs(mean-ex) > 5*se {
		t.Errorf("Hutchinson mean %.6g ± %.2g, exact trace %.6g", mean, se, ex)
	}
	one, tr1 := f.r.New(1, d), f.r.New(1, 1)
	f.r.ODEFuncForward(one, tr1, f.up(1, d, z0), theta, f.up(1, n*d, eps), f.dims, 0.2)
	if got := f.down(tr1)[0]; math.Abs(got-mean) > 1e-12*math.Max(1, math.Abs(mean)) {
		t.Errorf("k = %d probes in one row: %.15g, mean of single-probe rows %.15g", n, got, mean)
	}
}

// TestRefODESolvers: RK4 with many steps and Dormand–Prince at tight
// tolerance agree, forward and backward solves invert each other, and the
// solved log-determinant is ln|det| of the finite-difference Jacobian of
// z0 → z1.
func TestRefODESolvers(t *testing.T) {
	for _, k := range []int{0, 2} {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			f := newODEFixture(t, []int{3, 16, 16, 16, 2}, uint64(3+k))
			n, d := 4, f.d
			z0 := f.uniform(n*d, 1.5)
			theta := f.up(1, f.np, f.uniform(f.np, 0.9))
			var eps *native.Tensor
			if k > 0 {
				eps = f.up(n, k*d, f.uniform(n*k*d, 1))
			}
			z1a, lda := f.r.New(n, d), f.r.New(n, 1)
			st := f.r.ODESolveRK4(z1a, lda, f.up(n, d, z0), theta, eps, f.dims, 0, 1, 1000)
			if st.NFE != 4*1000*n {
				t.Errorf("RK4 NFE %d, want %d", st.NFE, 4*1000*n)
			}
			z1b, ldb := f.r.New(n, d), f.r.New(n, 1)
			sd, err := f.r.ODESolveDopri5(z1b, ldb, f.up(n, d, z0), theta, eps, f.dims, 0, 1,
				native.Dopri5Options{Atol: 1e-12, Rtol: 1e-12, H0: 0.01, MaxSteps: 100000})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("dopri5: %+v", sd)
			for i, v := range append(f.down(z1a), f.down(lda)...) {
				w := append(f.down(z1b), f.down(ldb)...)[i]
				if math.Abs(v-w) > 1e-6*math.Max(1, math.Abs(w)) {
					t.Errorf("RK4 [z1, logdet][%d] = %.12g, dopri5 %.12g", i, v, w)
				}
			}
			// Solving back from t = 1 to 0 returns z0 and −logdet.
			back, ldback := f.r.New(n, d), f.r.New(n, 1)
			if _, err := f.r.ODESolveDopri5(back, ldback, z1b, theta, eps, f.dims, 1, 0,
				native.Dopri5Options{Atol: 1e-12, Rtol: 1e-12, H0: 0.01, MaxSteps: 100000}); err != nil {
				t.Fatal(err)
			}
			for i, v := range f.down(back) {
				if math.Abs(v-z0[i]) > 1e-8 {
					t.Errorf("backward solve z[%d] = %.12g, z0 %.12g", i, v, z0[i])
				}
			}
			for i, v := range f.down(ldback) {
				if w := -f.down(ldb)[i]; math.Abs(v-w) > 1e-8 {
					t.Errorf("backward solve logdet[%d] = %.12g, want %.12g", i, v, w)
				}
			}
			if k > 0 {
				return // the Hutchinson logdet is an estimate, not ln|det J|
			}
			// ln|det ∂z1/∂z0| by central differences of the RK4 map.
			const step, steps = 1e-5, 400
			solve := func(z []float64) []float64 {
				z1, ld := f.r.New(n, d), f.r.New(n, 1)
				f.r.ODESolveRK4(z1, ld, f.up(n, d, z), theta, nil, f.dims, 0, 1, steps)
				return f.down(z1)
			}
			_, ld := f.r.New(n, d), f.r.New(n, 1)
			f.r.ODESolveRK4(f.r.New(n, d), ld, f.up(n, d, z0), theta, nil, f.dims, 0, 1, steps)
			lds := f.down(ld)
			for i := 0; i < n; i++ {
				jac := mat.NewDense(d, d, nil)
				for j := 0; j < d; j++ {
					zp := append([]float64(nil), z0...)
					zm := append([]float64(nil), z0...)
					zp[i*d+j] += step
					zm[i*d+j] -= step
					p, m := solve(zp), solve(zm)
					for r := 0; r < d; r++ {
						jac.Set(r, j, (p[i*d+r]-m[i*d+r])/(2*step))
					}
				}
				want := math.Log(math.Abs(mat.Det(jac)))
				if math.Abs(lds[i]-want) > 1e-6*math.Max(1, math.Abs(want)) {
					t.Errorf("row %d: logdet %.12g, ln|det J| by finite differences %.12g", i, lds[i], want)
				}
			}
		})
	}
}

// TestODEDopri5Errors: the typed solver failures reach the caller as Go
// errors wrapping the sentinels, with messages that say what happened.
func TestODEDopri5Errors(t *testing.T) {
	dims := []int{3, 16, 16, 16, 2}
	f := newODEFixture(t, dims, 9)
	n, d := 3, f.d
	th := f.uniform(f.np, 0.9)
	z0 := f.uniform(n*d, 1)
	nanTh := append([]float64(nil), th...)
	nanTh[5] = math.NaN()
	for _, name := range []string{"ref", native.DefaultBackend()} {
		be, err := native.Open(name, native.Float64, 2)
		if err != nil {
			t.Fatal(err)
		}
		ob := be.(native.ODEBackend)
		up := func(rows, cols int, v []float64) *native.Tensor {
			x := be.New(rows, cols)
			be.Upload(x, v)
			return x
		}
		for _, c := range []struct {
			theta []float64
			opt   native.Dopri5Options
			want  error
			msg   string
		}{
			{th, native.Dopri5Options{Atol: 1e-9, Rtol: 1e-9, H0: 1e-3, MaxSteps: 1}, native.ErrODEMaxSteps, "maximum number of steps"},
			{nanTh, native.Dopri5Options{Atol: 1e-6, Rtol: 1e-6, H0: 0.1, MaxSteps: 100}, native.ErrODENonFinite, "not finite"},
			{th, native.Dopri5Options{Atol: 1e-300, Rtol: 0, H0: 0.1, MaxSteps: 1000}, native.ErrODEStepUnderflow, "underflow"},
		} {
			_, err := ob.ODESolveDopri5(be.New(n, d), be.New(n, 1), up(n, d, z0), up(1, f.np, c.theta), nil, dims, 0, 1, c.opt)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "native: ODESolveDopri5: ") {
				t.Errorf("%s backend: error %v, want one wrapping %q", name, err, c.want)
			} else {
				t.Logf("%s backend: %v", name, err)
			}
		}
		be.Close()
	}
}

// The cpu backend's FFJORD operations allocate nothing once their
// workspaces exist (same dims and k as before).
func TestCPUODEAllocatesNothing(t *testing.T) {
	dims := []int{3, 16, 16, 16, 2}
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		be, err := native.NewCPU(dt, 3)
		if err != nil {
			t.Skip(err)
		}
		b := be.(native.ODEBackend)
		n, d, np := 500, 2, native.ODENumParams(dims)
		z, theta, eps := b.New(n, d), b.New(1, np), b.New(n, 2*d)
		b.Fill(theta, 0.1)
		b.Fill(eps, 1)
		dz, tr, gz, g := b.New(n, d), b.New(n, 1), b.New(n, d), b.New(1, np)
		opt := native.Dopri5Options{Atol: 1e-5, Rtol: 1e-5, H0: 0.1, MaxSteps: 1000}
		for name, f := range map[string]func(){
			"ODEFuncForward": func() { b.ODEFuncForward(dz, tr, z, theta, eps, dims, 0.5) },
			"ODEFuncVJP":     func() { b.ODEFuncVJP(gz, g, z, theta, nil, dz, tr, dims, 0.5) },
			"ODESolveRK4":    func() { b.ODESolveRK4(dz, tr, z, theta, eps, dims, 0, 1, 2) },
			"ODESolveDopri5": func() {
				if _, err := b.ODESolveDopri5(dz, tr, z, theta, nil, dims, 0, 1, opt); err != nil {
					t.Fatal(err)
				}
			},
		} {
			f()
			if a := testing.AllocsPerRun(5, f); a != 0 {
				t.Errorf("%v %s: %.1f allocations per call, want 0", dt, name, a)
			}
		}
		be.Close()
	}
}

package native_test

import (
	"errors"
	"fmt"
	"github.com/lrmf-go/lrmf/internal/sanitize"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/testseed"
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
		rng: rand.New(rand.NewPCG(testseed.Seed(t), stream))}
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
				checkCentralFD(t, func() float64 { return loss(z, theta) }, step, tol, "∂Λ", "VJP",
					fdCase{"z", z, f.down(gz)}, fdCase{"θ", theta, f.down(gth)})
			})
		}
	}
}

// fdCase is one input of a finite-difference check: its values v (each
// perturbed in place, then restored) and the gradient g claimed for them.
type fdCase struct {
	name string
	v, g []float64
}

// checkCentralFD checks every g[i] of every case against the central
// difference (loss(v + step·e_i) − loss(v − step·e_i))/(2·step), to
// tol·max(1, |difference|); lossName and gradName ("∂L", "backward") name
// the loss and the gradient's source in the messages.
func checkCentralFD(t *testing.T, loss func() float64, step, tol float64, lossName, gradName string, cases ...fdCase) {
	t.Helper()
	for _, c := range cases {
		for i := range c.v {
			v0 := c.v[i]
			c.v[i] = v0 + step
			lp := loss()
			c.v[i] = v0 - step
			lm := loss()
			c.v[i] = v0
			want := (lp - lm) / (2 * step)
			if diff := math.Abs(c.g[i] - want); !(diff <= tol*math.Max(1, math.Abs(want))) {
				t.Errorf("%s/∂%s[%d]: %s %.12g, finite differences %.12g (|diff| %.3g)", lossName, c.name, i, gradName, c.g[i], want, diff)
			}
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
	sanitize.SkipAllocationCounts(t)
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
		// The backward passes on a smaller batch (still split over the 3
		// threads): a block that runs for milliseconds lets the pool's
		// workers park, and parking may allocate in the runtime (see pool).
		var rk4Tape, dpTape native.ODETape
		const nb = 60
		zb, epsb, z1b, ldb, a1, ald, gzb := b.New(nb, d), b.New(nb, 2*d), b.New(nb, d), b.New(nb, 1), b.New(nb, d), b.New(nb, 1), b.New(nb, d)
		b.Fill(epsb, 1)
		b.Fill(a1, 0.5)
		b.Fill(ald, -1)
		for name, f := range map[string]func(){
			"ODESolveRK4Record+Backward": func() {
				b.ODESolveRK4Record(&rk4Tape, z1b, ldb, zb, theta, epsb, dims, 0, 1, 2)
				b.ODESolveRK4Backward(gzb, g, a1, ald, theta, epsb, dims, &rk4Tape)
			},
			"ODESolveDopri5Record+Backward": func() {
				if _, err := b.ODESolveDopri5Record(&dpTape, z1b, ldb, zb, theta, nil, dims, 0, 1, opt); err != nil {
					t.Fatal(err)
				}
				b.ODESolveDopri5Backward(gzb, g, a1, ald, theta, nil, dims, &dpTape)
			},
			"ODEFuncForward": func() { b.ODEFuncForward(dz, tr, z, theta, eps, dims, 0.5) },
			"ODEFuncVJP":     func() { b.ODEFuncVJP(gz, g, z, theta, nil, dz, tr, dims, 0.5) },
			"ODESolveRK4":    func() { b.ODESolveRK4(dz, tr, z, theta, eps, dims, 0, 1, 2) },
			"ODESolveDopri5": func() {
				if _, err := b.ODESolveDopri5(dz, tr, z, theta, nil, dims, 0, 1, opt); err != nil {
					t.Fatal(err)
				}
			},
		} {
			// Warm up: besides the workspaces, the pool's workers park
			// and wake on the first dispatches, and the runtime may
			// allocate its wait records then (not in steady state).
			for i := 0; i < 10; i++ {
				f()
			}
			if a := testing.AllocsPerRun(5, f); a != 0 {
				t.Errorf("%v %s: %.1f allocations per call, want 0", dt, name, a)
			}
		}
		be.Close()
	}
}

// TestRefODESolveBackwardFiniteDifferences checks the gradients through a
// recorded solve against central differences of the solve itself, for
// L = Σ a1⊙z1 + Σ ald⊙logdet, w.r.t. every element of z0 and θ, to 1e-6
// relative to max(1, |gradient|): RK4 with 8 steps (forward and backward
// in time), and Dormand–Prince at atol = rtol = 1e-8 with a perturbation
// of 1e-7. The replay gradient treats the accepted step sizes as constants;
// the test checks that under each ±1e-7 perturbation every row keeps the
// same number of accepted steps and evaluations (the same accept/reject
// decisions) and that the steps' times move by < 1e-6. The step sizes
// themselves are smooth in the inputs (h·0.9·err^(−1/5)), but their effect
// on z1 is of the order of the local error (~1e-8), well below the
// tolerance — this is why the comparison holds for the replayed gradient.
// Exact trace and Hutchinson (fixed probes).
func TestRefODESolveBackwardFiniteDifferences(t *testing.T) {
	const tol = 1e-6
	type solver struct {
		name string
		step float64
		run  func(f *odeFixture, tape *native.ODETape, z1, ld, z0, th, eps *native.Tensor) native.ODEStats
		back func(f *odeFixture, gz, gth, a1, ald, th, eps *native.Tensor, tape *native.ODETape) native.ODEStats
	}
	dopt := native.Dopri5Options{Atol: 1e-8, Rtol: 1e-8, H0: 0.05, MaxSteps: 10000}
	solvers := []solver{
		{"rk4", 1e-6,
			func(f *odeFixture, tape *native.ODETape, z1, ld, z0, th, eps *native.Tensor) native.ODEStats {
				return f.r.ODESolveRK4Record(tape, z1, ld, z0, th, eps, f.dims, 0, 1, 8)
			},
			func(f *odeFixture, gz, gth, a1, ald, th, eps *native.Tensor, tape *native.ODETape) native.ODEStats {
				return f.r.ODESolveRK4Backward(gz, gth, a1, ald, th, eps, f.dims, tape)
			}},
		{"rk4(t1<t0)", 1e-6,
			func(f *odeFixture, tape *native.ODETape, z1, ld, z0, th, eps *native.Tensor) native.ODEStats {
				return f.r.ODESolveRK4Record(tape, z1, ld, z0, th, eps, f.dims, 1, 0.25, 5)
			},
			func(f *odeFixture, gz, gth, a1, ald, th, eps *native.Tensor, tape *native.ODETape) native.ODEStats {
				return f.r.ODESolveRK4Backward(gz, gth, a1, ald, th, eps, f.dims, tape)
			}},
		{"dopri5", 1e-7,
			func(f *odeFixture, tape *native.ODETape, z1, ld, z0, th, eps *native.Tensor) native.ODEStats {
				st, err := f.r.ODESolveDopri5Record(tape, z1, ld, z0, th, eps, f.dims, 0, 1, dopt)
				if err != nil {
					panic(err)
				}
				return st
			},
			func(f *odeFixture, gz, gth, a1, ald, th, eps *native.Tensor, tape *native.ODETape) native.ODEStats {
				return f.r.ODESolveDopri5Backward(gz, gth, a1, ald, th, eps, f.dims, tape)
			}},
	}
	for _, sv := range solvers {
		for _, dims := range [][]int{{3, 16, 16, 16, 2}, {4, 5, 3}} {
			for _, k := range []int{0, 2} {
				t.Run(fmt.Sprintf("%s/dims=%v/k=%d", sv.name, dims, k), func(t *testing.T) {
					f := newODEFixture(t, dims, uint64(100+len(dims)*10+k))
					n, d, np := 3, f.d, f.np
					z0, theta := f.uniform(n*d, 1.5), f.uniform(np, 0.9)
					var eps *native.Tensor
					if k > 0 {
						eps = f.up(n, k*d, f.uniform(n*k*d, 1))
					}
					a1, ald := f.up(n, d, f.uniform(n*d, 1)), f.up(n, 1, f.uniform(n, 1))
					var tape native.ODETape
					st0 := sv.run(f, &tape, f.r.New(n, d), f.r.New(n, 1), f.up(n, d, z0), f.up(1, np, theta), eps)
					var steps0 [][]float64
					for i := 0; i < n; i++ {
						steps0 = append(steps0, tape.Steps(nil, i))
					}
					gz, gth := f.r.New(n, d), f.r.New(1, np)
					bst := sv.back(f, gz, gth, a1, ald, f.up(1, np, theta), eps, &tape)
					t.Logf("forward %+v, backward %+v, tape %d floats/row", st0, bst, tape.FloatsPerRow())
					var probe native.ODETape
					loss := func(z0, theta []float64) float64 {
						z1, ld := f.r.New(n, d), f.r.New(n, 1)
						st := sv.run(f, &probe, z1, ld, f.up(n, d, z0), f.up(1, np, theta), eps)
						if st != st0 {
							t.Fatalf("perturbed solve %+v, unperturbed %+v: the step decisions changed", st, st0)
						}
						for i := 0; i < n; i++ {
							s := probe.Steps(nil, i)
							for m := range s {
								if math.Abs(s[m]-steps0[i][m]) > 1e-6 {
									t.Fatalf("row %d: perturbed step sequence moved by %.3g", i, s[m]-steps0[i][m])
								}
							}
						}
						return f.r.Dot(a1, z1) + f.r.Dot(ald, ld)
					}
					checkCentralFD(t, func() float64 { return loss(z0, theta) }, sv.step, tol, "∂L", "backward",
						fdCase{"z0", z0, f.down(gz)}, fdCase{"θ", theta, f.down(gth)})
				})
			}
		}
	}
}

// BenchmarkCPUODEGradient times plain and recorded solves and their
// backward passes on the cpu backend (the paper's 2-D [16, 16, 16] tanh
// dynamics and a wider [64, 64, 64] one), 512 rows, exact trace, float64,
// to compare the costs of the forward and the backward.
func BenchmarkCPUODEGradient(b *testing.B) {
	paths := []string{"auto"}
	if p := os.Getenv("LRMF_BENCH_ODE_PATHS"); p != "" {
		paths = strings.Split(p, ",")
	}
	for _, path := range paths {
		for _, dims := range [][]int{{3, 16, 16, 16, 2}, {3, 64, 64, 64, 2}} {
			benchCPUODEGradient(b, path, dims)
		}
	}
}

// benchCPUODEGradient is BenchmarkCPUODEGradient for one ODE path and
// network.
func benchCPUODEGradient(b *testing.B, path string, dims []int) {
	be, err := native.NewCPU(native.Float64, 4)
	if err != nil {
		b.Skip(err)
	}
	defer be.Close()
	if err := be.(native.ODEPather).SetODEPath(path); err != nil {
		b.Fatal(err)
	}
	ob := be.(native.ODEBackend)
	n, d, np := 512, 2, native.ODENumParams(dims)
	rng := rand.New(rand.NewPCG(1, 2))
	vals := func(k int, s float64) []float64 {
		v := make([]float64, k)
		for i := range v {
			v[i] = s * (2*rng.Float64() - 1)
		}
		return v
	}
	up := func(r, c int, v []float64) *native.Tensor { t := be.New(r, c); be.Upload(t, v); return t }
	z0, th := up(n, d, vals(n*d, 1.5)), up(1, np, vals(np, 0.5))
	z1, ld, gz, g := be.New(n, d), be.New(n, 1), be.New(n, d), be.New(1, np)
	a1, ald := up(n, d, vals(n*d, 1)), up(n, 1, vals(n, 1))
	var tape native.ODETape
	opt := native.Dopri5Options{Atol: 1e-5, Rtol: 1e-5, H0: 0.05, MaxSteps: 200}
	name := fmt.Sprintf("path=%s/dims=%v", path, dims)
	b.Run(name+"/rk4-8/forward", func(b *testing.B) {
		for b.Loop() {
			ob.ODESolveRK4(z1, ld, z0, th, nil, dims, 0, 1, 8)
		}
	})
	b.Run(name+"/rk4-8/record", func(b *testing.B) {
		for b.Loop() {
			ob.ODESolveRK4Record(&tape, z1, ld, z0, th, nil, dims, 0, 1, 8)
		}
	})
	b.Run(name+"/rk4-8/backward", func(b *testing.B) {
		ob.ODESolveRK4Record(&tape, z1, ld, z0, th, nil, dims, 0, 1, 8)
		for b.Loop() {
			ob.ODESolveRK4Backward(gz, g, a1, ald, th, nil, dims, &tape)
		}
	})
	b.Run(name+"/dopri5/forward", func(b *testing.B) {
		for b.Loop() {
			if _, err := ob.ODESolveDopri5(z1, ld, z0, th, nil, dims, 0, 1, opt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(name+"/dopri5/backward", func(b *testing.B) {
		st, err := ob.ODESolveDopri5Record(&tape, z1, ld, z0, th, nil, dims, 0, 1, opt)
		if err != nil {
			b.Fatal(err)
		}
		var bs native.ODEStats
		for b.Loop() {
			bs = ob.ODESolveDopri5Backward(gz, g, a1, ald, th, nil, dims, &tape)
		}
		b.ReportMetric(float64(st.NFE)/float64(n), "fwdNFE/row")
		b.ReportMetric(float64(st.Accepted)/float64(n), "accepted/row")
		b.ReportMetric(float64(bs.NFE)/float64(n), "bwdNFE/row")
		b.ReportMetric(float64(bs.VJP)/float64(n), "VJP/row")
	})
}

// Every code path of the cpu backend's FFJORD kernels (portable, and AVX2
// and AVX-512 where the CPU has them) passes the conformance suite's ODE
// part against the reference, for both element types, on one thread and
// split over two (TestCPUConformance covers the default path with 1–3).
func TestCPUODEPaths(t *testing.T) {
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%v/threads=%d", dt, threads), func(t *testing.T) {
				b, err := native.NewCPU(dt, threads)
				if err != nil {
					t.Skip("cpu backend unavailable in this build:", err)
				}
				defer b.Close()
				nativetest.RunODE(t, b)
			})
		}
	}
}

// SetODEPath refuses unknown paths and lists the available ones.
func TestCPUSetODEPath(t *testing.T) {
	b, err := native.NewCPU(native.Float64, 1)
	if err != nil {
		t.Skip(err)
	}
	defer b.Close()
	p := b.(native.ODEPather)
	if paths := p.ODEPaths(); len(paths) == 0 || paths[0] != "portable" {
		t.Errorf("ODEPaths() = %v, want portable first", paths)
	}
	err = p.SetODEPath("sse9")
	if err == nil || !strings.Contains(err.Error(), "portable") {
		t.Errorf("SetODEPath(sse9) = %v, want an error listing the paths", err)
	}
	if err := p.SetODEPath("auto"); err != nil {
		t.Error(err)
	}
}

// Every code path of the cpu backend handles any D and width: at D = 32
// with hidden widths 61 and 40 (not multiples of a vector's columns) and
// 11 rows (not a multiple of the lanes), the evaluation, its VJP, an RK4
// solve and its recorded-step backward match the reference to 1e-10
// relative (float64), exact trace and one Hutchinson probe.
func TestCPUODEPathsWide(t *testing.T) {
	dims := []int{33, 61, 40, 32}
	be, err := native.NewCPU(native.Float64, 1)
	if err != nil {
		t.Skip(err)
	}
	defer be.Close()
	cb, pb := be.(native.ODEBackend), be.(native.ODEPather)
	defer pb.SetODEPath("auto")
	for _, k := range []int{0, 1} {
		f := newODEFixture(t, dims, uint64(100+k))
		n, d, np := 11, f.d, f.np
		z, theta := f.uniform(n*d, 1.5), f.uniform(np, 0.3)
		var epsv []float64
		if k > 0 {
			epsv = f.uniform(n*k*d, 1)
			for i := range epsv {
				epsv[i] = math.Copysign(1, epsv[i])
			}
		}
		az, atr, a1, ald := f.uniform(n*d, 1), f.uniform(n, 1), f.uniform(n*d, 1), f.uniform(n, 1)
		// run computes, on backend b, [dz, trace, gz, gθ, z1, logdet, gz0, gθ'] flattened.
		run := func(b native.ODEBackend) [][]float64 {
			up := func(rows, cols int, v []float64) *native.Tensor {
				x := b.New(rows, cols)
				b.Upload(x, v)
				return x
			}
			down := func(x *native.Tensor) []float64 {
				v := make([]float64, x.Len())
				b.Download(v, x)
				return v
			}
			zt, th := up(n, d, z), up(1, np, theta)
			var eps *native.Tensor
			if k > 0 {
				eps = up(n, k*d, epsv)
			}
			dz, tr, gz, gth := b.New(n, d), b.New(n, 1), b.New(n, d), b.New(1, np)
			b.ODEFuncForward(dz, tr, zt, th, eps, dims, 0.3)
			b.ODEFuncVJP(gz, gth, zt, th, eps, up(n, d, az), up(n, 1, atr), dims, 0.3)
			var tape native.ODETape
			z1, ld, gz0, gth2 := b.New(n, d), b.New(n, 1), b.New(n, d), b.New(1, np)
			b.ODESolveRK4Record(&tape, z1, ld, zt, th, eps, dims, 0, 1, 3)
			b.ODESolveRK4Backward(gz0, gth2, up(n, d, a1), up(n, 1, ald), th, eps, dims, &tape)
			return [][]float64{down(dz), down(tr), down(gz), down(gth), down(z1), down(ld), down(gz0), down(gth2)}
		}
		want := run(f.r)
		names := []string{"dz", "trace", "gz", "gθ", "z1", "logdet", "gz0", "gθ(rk4)"}
		for _, path := range pb.ODEPaths() {
			if err := pb.SetODEPath(path); err != nil {
				t.Fatal(err)
			}
			got := run(cb)
			for i, w := range want {
				for j := range w {
					if diff := math.Abs(got[i][j] - w[j]); !(diff <= 1e-10*math.Max(1, math.Abs(w[j]))) {
						t.Errorf("k=%d path=%s: %s[%d] = %.15g, reference %.15g", k, path, names[i], j, got[i][j], w[j])
						break
					}
				}
			}
		}
	}
}

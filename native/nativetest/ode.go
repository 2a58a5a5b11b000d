package nativetest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lrmf-go/lrmf/native"
)

// odeNets are the dynamics-network shapes of the ODE subtest: the paper's
// [16, 16, 16] tanh MLP in 2-D, a narrow one in 3-D, and no hidden layer
// (f linear) in 1-D.
var odeNets = [][]int{{3, 16, 16, 16, 2}, {4, 5, 3}, {2, 1}}

// odeBatches are the batch sizes: tiny, odd, and one that splits.
var odeBatches = []int{1, 3, 17, 200}

// checkODE compares like check, but relative to max(|ref_i|, rms(ref), 1)
// and, for float64, to at least 1e-10: traces and log-determinants are sums
// that cancel (an exact trace of 1e-3 from terms of order 1), and the
// solvers accumulate over many steps the last-ulp differences between Go's
// math.Tanh and the C library's tanh.
func (h *harness) checkODE(name string, p pair) {
	h.t.Helper()
	got := make([]float64, p.b.Len())
	want := make([]float64, p.r.Len())
	h.b.Download(got, p.b)
	h.ref.Download(want, p.r)
	tol := math.Max(h.tol, 1e-10)
	bad := 0
	for i := range want {
		scale := math.Max(math.Abs(want[i]), 1)
		if d := math.Abs(got[i] - want[i]); !(d <= tol*scale) {
			if bad < 5 {
				h.t.Errorf("%s[%d] = %.17g, reference %.17g (|diff|/scale = %.3g > %.3g)", name, i, got[i], want[i], d/scale, tol)
			}
			bad++
		}
	}
	if bad > 5 {
		h.t.Errorf("%s: %d of %d elements differ", name, bad, len(want))
	}
}

// RunODE runs the suite's FFJORD part on b against the reference once per
// code path b has (native.ODEPather: "ODE/path=<name>" subtests; b is left
// on "auto"), or once when it has a single path. b must implement
// native.ODEBackend.
func RunODE(t *testing.T, b native.Backend) {
	paths := []string{""}
	pb, ok := b.(native.ODEPather)
	if ok {
		paths = pb.ODEPaths()
		defer func() {
			if err := pb.SetODEPath("auto"); err != nil {
				t.Error(err)
			}
		}()
	}
	ref := native.NewRef()
	seed := Seed(t)
	for _, p := range paths {
		name := "ODE"
		if p != "" {
			name += "/path=" + p
			if err := pb.SetODEPath(p); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(name, func(t *testing.T) {
			testODE(&harness{t: t, b: b, ref: ref, tol: Tol(b.DType()), rng: rand.New(rand.NewPCG(seed, uint64(len("ODE"))))})
		})
	}
}

// testODE compares the FFJORD kernels of backends implementing
// native.ODEBackend with the reference (skipped for the others).
func testODE(h *harness) {
	b, ok := h.b.(native.ODEBackend)
	if !ok {
		h.t.Skipf("%s backend has no FFJORD kernels (not a native.ODEBackend)", h.b.Name())
	}
	r := h.ref.(native.ODEBackend)
	for _, dims := range odeNets {
		d := dims[len(dims)-1]
		np := native.ODENumParams(dims)
		for _, n := range odeBatches {
			for _, k := range []int{0, 3} {
				name := fmt.Sprintf("(dims=%v,n=%d,k=%d)", dims, n, k)
				theta := h.rand(1, np, 0.8)
				z := h.rand(n, d, 1.5)
				var eps pair
				var epsB, epsR *native.Tensor
				if k > 0 {
					eps = h.rand(n, k*d, 1)
					epsB, epsR = eps.b, eps.r
				}
				dz, tr := h.out(n, d), h.out(n, 1)
				b.ODEFuncForward(dz.b, tr.b, z.b, theta.b, epsB, dims, 0.3)
				r.ODEFuncForward(dz.r, tr.r, z.r, theta.r, epsR, dims, 0.3)
				h.checkODE("ODEFuncForward.dz"+name, dz)
				h.checkODE("ODEFuncForward.trace"+name, tr)

				az, atr := h.rand(n, d, 1), h.rand(n, 1, 1)
				gz, gth := h.out(n, d), h.out(1, np)
				b.ODEFuncVJP(gz.b, gth.b, z.b, theta.b, epsB, az.b, atr.b, dims, 0.3)
				r.ODEFuncVJP(gz.r, gth.r, z.r, theta.r, epsR, az.r, atr.r, dims, 0.3)
				h.checkODE("ODEFuncVJP.gz"+name, gz)
				h.checkODE("ODEFuncVJP.gtheta"+name, gth)

				if n > 17 && len(dims) > 3 {
					continue // the solvers are covered by the smaller batches
				}
				z1, ld := h.out(n, d), h.out(n, 1)
				sb := b.ODESolveRK4(z1.b, ld.b, z.b, theta.b, epsB, dims, 0, 1, 7)
				sr := r.ODESolveRK4(z1.r, ld.r, z.r, theta.r, epsR, dims, 0, 1, 7)
				h.checkODE("ODESolveRK4.z1"+name, z1)
				h.checkODE("ODESolveRK4.logdet"+name, ld)
				if sb != sr {
					h.t.Errorf("ODESolveRK4 stats%s: %+v, reference %+v", name, sb, sr)
				}
				// Backwards in time too.
				z1, ld = h.out(n, d), h.out(n, 1)
				b.ODESolveRK4(z1.b, ld.b, z.b, theta.b, epsB, dims, 1, -0.5, 3)
				r.ODESolveRK4(z1.r, ld.r, z.r, theta.r, epsR, dims, 1, -0.5, 3)
				h.checkODE("ODESolveRK4(t1 < t0).z1"+name, z1)
				h.checkODE("ODESolveRK4(t1 < t0).logdet"+name, ld)

				opt := native.Dopri5Options{Atol: 1e-6, Rtol: 1e-6, H0: 0.05, MaxSteps: 1000}
				for _, span := range [][2]float64{{0, 1}, {1, 0}} {
					z1, ld = h.out(n, d), h.out(n, 1)
					sb, errB := b.ODESolveDopri5(z1.b, ld.b, z.b, theta.b, epsB, dims, span[0], span[1], opt)
					sr, errR := r.ODESolveDopri5(z1.r, ld.r, z.r, theta.r, epsR, dims, span[0], span[1], opt)
					if errB != nil || errR != nil {
						h.t.Fatalf("ODESolveDopri5%s: errors %v (reference %v)", name, errB, errR)
					}
					h.checkODE(fmt.Sprintf("ODESolveDopri5(%v).z1%s", span, name), z1)
					h.checkODE(fmt.Sprintf("ODESolveDopri5(%v).logdet%s", span, name), ld)
					if sb != sr {
						h.t.Errorf("ODESolveDopri5 stats%s: %+v, reference %+v", name, sb, sr)
					}
				}
				testODEBackward(h, b, r, dims, n, k, z, theta, epsB, epsR, name)
			}
		}
	}

	// Typed failures, surfaced as errors on both backends.
	dims := odeNets[0]
	d, np := dims[len(dims)-1], native.ODENumParams(dims)
	z := h.rand(5, d, 1)
	for _, c := range []struct {
		name  string
		theta []float64
		opt   native.Dopri5Options
		want  error
	}{
		{"max steps", nil, native.Dopri5Options{Atol: 1e-10, Rtol: 1e-10, H0: 1e-3, MaxSteps: 1}, native.ErrODEMaxSteps},
		{"NaN in θ", []float64{math.NaN()}, native.Dopri5Options{Atol: 1e-6, Rtol: 1e-6, H0: 0.1, MaxSteps: 100}, native.ErrODENonFinite},
		{"underflow", nil, native.Dopri5Options{Atol: 1e-300, Rtol: 0, H0: 0.1, MaxSteps: 1000}, native.ErrODEStepUnderflow},
	} {
		theta := h.rand(1, np, 0.8)
		if c.theta != nil {
			host := append([]float64(nil), theta.host...)
			host[np/2] = c.theta[0]
			theta = h.upload(1, np, host)
		}
		for _, be := range []native.ODEBackend{b, r} {
			z1, ld := be.New(5, d), be.New(5, 1)
			zz, th := z.b, theta.b
			if be == r {
				zz, th = z.r, theta.r
			}
			_, err := be.ODESolveDopri5(z1, ld, zz, th, nil, dims, 0, 1, c.opt)
			if !errors.Is(err, c.want) {
				h.t.Errorf("%s backend, %s: error %v, want %v", be.Name(), c.name, err, c.want)
			}
		}
	}
}

// testODEBackward compares recorded solves and their backward passes
// (RK4 both directions, Dormand–Prince) with the reference: z1, logdet,
// the gradients w.r.t. z0 and θ (outputs poisoned), and the work counts.
func testODEBackward(h *harness, b, r native.ODEBackend, dims []int, n, k int, z, theta pair, epsB, epsR *native.Tensor, name string) {
	d, np := dims[len(dims)-1], native.ODENumParams(dims)
	a1, ald := h.rand(n, d, 1), h.rand(n, 1, 1)
	var tb, tr native.ODETape
	opt := native.Dopri5Options{Atol: 1e-6, Rtol: 1e-6, H0: 0.05, MaxSteps: 200}
	for _, c := range []struct {
		solver string
		t0, t1 float64
	}{{"rk4", 0, 1}, {"rk4", 1, -0.5}, {"dopri5", 0, 1}, {"dopri5", 1, 0}} {
		cn := fmt.Sprintf("(%s %g→%g)%s", c.solver, c.t0, c.t1, name)
		z1, ld := h.out(n, d), h.out(n, 1)
		var sb, sr native.ODEStats
		if c.solver == "rk4" {
			sb = b.ODESolveRK4Record(&tb, z1.b, ld.b, z.b, theta.b, epsB, dims, c.t0, c.t1, 4)
			sr = r.ODESolveRK4Record(&tr, z1.r, ld.r, z.r, theta.r, epsR, dims, c.t0, c.t1, 4)
		} else {
			var errB, errR error
			sb, errB = b.ODESolveDopri5Record(&tb, z1.b, ld.b, z.b, theta.b, epsB, dims, c.t0, c.t1, opt)
			sr, errR = r.ODESolveDopri5Record(&tr, z1.r, ld.r, z.r, theta.r, epsR, dims, c.t0, c.t1, opt)
			if errB != nil || errR != nil {
				h.t.Fatalf("ODESolveDopri5Record%s: errors %v (reference %v)", cn, errB, errR)
			}
		}
		h.checkODE("Record.z1"+cn, z1)
		h.checkODE("Record.logdet"+cn, ld)
		if sb != sr {
			h.t.Errorf("Record stats%s: %+v, reference %+v", cn, sb, sr)
		}
		gz, gth := h.out(n, d), h.out(1, np)
		if c.solver == "rk4" {
			sb = b.ODESolveRK4Backward(gz.b, gth.b, a1.b, ald.b, theta.b, epsB, dims, &tb)
			sr = r.ODESolveRK4Backward(gz.r, gth.r, a1.r, ald.r, theta.r, epsR, dims, &tr)
		} else {
			sb = b.ODESolveDopri5Backward(gz.b, gth.b, a1.b, ald.b, theta.b, epsB, dims, &tb)
			sr = r.ODESolveDopri5Backward(gz.r, gth.r, a1.r, ald.r, theta.r, epsR, dims, &tr)
		}
		h.checkODE("Backward.gz0"+cn, gz)
		h.checkODE("Backward.gtheta"+cn, gth)
		if sb != sr {
			h.t.Errorf("Backward stats%s: %+v, reference %+v", cn, sb, sr)
		}
	}
}

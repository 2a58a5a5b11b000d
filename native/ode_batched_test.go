package native_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lrmf-go/lrmf/internal/sanitize"
	"github.com/lrmf-go/lrmf/native"
	"github.com/lrmf-go/lrmf/native/nativetest"
)

// TestBatchedODEConformance runs the FFJORD conformance suite on the
// batched path over the reference backend's generic operations (the cpu
// backend's "batched" path runs it in TestCPUODEPaths).
func TestBatchedODEConformance(t *testing.T) {
	nativetest.RunODE(t, native.NewBatchedODE(native.NewRef()))
}

// odeAll runs, on b, the evaluation, its VJP, a recorded RK4 solve (8
// steps, 0 → 1) and a recorded Dormand–Prince solve (1 → 0) with their
// backward passes, and returns every output flattened with its name, and
// the solves' work counts.
func odeAll(t *testing.T, b native.ODEBackend, dims []int, n, k int, z, theta, epsv, az, atr, a1, ald []float64) (names []string, outs [][]float64, stats []native.ODEStats) {
	d, np := dims[len(dims)-1], native.ODENumParams(dims)
	up := func(rows, cols int, v []float64) *native.Tensor {
		x := b.New(rows, cols)
		b.Upload(x, v)
		return x
	}
	down := func(name string, x *native.Tensor) {
		v := make([]float64, x.Len())
		b.Download(v, x)
		names, outs = append(names, name), append(outs, v)
	}
	zt, th := up(n, d, z), up(1, np, theta)
	var eps *native.Tensor
	if k > 0 {
		eps = up(n, k*d, epsv)
	}
	dz, tr, gz, gth := b.New(n, d), b.New(n, 1), b.New(n, d), b.New(1, np)
	b.ODEFuncForward(dz, tr, zt, th, eps, dims, 0.3)
	b.ODEFuncVJP(gz, gth, zt, th, eps, up(n, d, az), up(n, 1, atr), dims, 0.3)
	down("dz", dz)
	down("trace", tr)
	down("gz", gz)
	down("gθ", gth)
	var tape native.ODETape
	z1, ld, gz0, gth2 := b.New(n, d), b.New(n, 1), b.New(n, d), b.New(1, np)
	stats = append(stats, b.ODESolveRK4Record(&tape, z1, ld, zt, th, eps, dims, 0, 1, 8))
	stats = append(stats, b.ODESolveRK4Backward(gz0, gth2, up(n, d, a1), up(n, 1, ald), th, eps, dims, &tape))
	down("rk4.z1", z1)
	down("rk4.logdet", ld)
	down("rk4.gz0", gz0)
	down("rk4.gθ", gth2)
	opt := native.Dopri5Options{Atol: 1e-6, Rtol: 1e-6, H0: 0.05, MaxSteps: 500}
	st, err := b.ODESolveDopri5Record(&tape, z1, ld, zt, th, eps, dims, 1, 0, opt)
	if err != nil {
		t.Fatalf("%s: %v", b.Name(), err)
	}
	stats = append(stats, st, b.ODESolveDopri5Backward(gz0, gth2, up(n, d, a1), up(n, 1, ald), th, eps, dims, &tape))
	down("dopri5.z1", z1)
	down("dopri5.logdet", ld)
	down("dopri5.gz0", gz0)
	down("dopri5.gθ", gth2)
	return names, outs, stats
}

// TestBatchedODEWide: at D = 32 with hidden widths 40 and 64 and 13 rows,
// exact trace and one Hutchinson probe, the batched path — over the
// reference backend's operations and as the cpu backend's "batched" path
// in float64 and float32 — matches the reference's row-by-row operations:
// evaluation, VJP, RK4 and Dormand–Prince solves (per-row steps: the same
// work counts) and their backward passes, to 1e-10 (float64) or 1e-5
// (float32, the conformance tolerance; the float32 path computes in double
// and rounds its inputs and outputs) of max(|ref|, 1). Fresh seeded inputs,
// float32-rounded for every backend.
func TestBatchedODEWide(t *testing.T) {
	dims := []int{33, 40, 64, 32}
	type cand struct {
		name string
		b    native.ODEBackend
		tol  float64
	}
	cands := []cand{{"batched(ref)", native.NewBatchedODE(native.NewRef()), 1e-10}}
	for _, dt := range []native.DType{native.Float64, native.Float32} {
		be, err := native.NewCPU(dt, 2)
		if err != nil {
			t.Log("cpu backend unavailable:", err)
			break
		}
		defer be.Close()
		if err := be.(native.ODEPather).SetODEPath("batched"); err != nil {
			t.Fatal(err)
		}
		tol := nativetest.Tol(dt)
		cands = append(cands, cand{"cpu/" + dt.String() + "/batched", be.(native.ODEBackend), math.Max(tol, 1e-10)})
	}
	for _, k := range []int{0, 1} {
		f := newODEFixture(t, dims, uint64(200+k))
		n, d, np := 13, f.d, f.np
		r32 := func(v []float64) []float64 {
			for i := range v {
				v[i] = float64(float32(v[i]))
			}
			return v
		}
		z, theta := r32(f.uniform(n*d, 1.5)), r32(f.uniform(np, 0.25))
		var epsv []float64
		if k > 0 {
			epsv = f.uniform(n*k*d, 1)
			for i := range epsv {
				epsv[i] = math.Copysign(1, epsv[i])
			}
		}
		az, atr, a1, ald := r32(f.uniform(n*d, 1)), r32(f.uniform(n, 1)), r32(f.uniform(n*d, 1)), r32(f.uniform(n, 1))
		names, want, wst := odeAll(t, f.r, dims, n, k, z, theta, epsv, az, atr, a1, ald)
		t.Logf("k=%d: reference work %+v", k, wst)
		for _, c := range cands {
			_, got, gst := odeAll(t, c.b, dims, n, k, z, theta, epsv, az, atr, a1, ald)
			for i := range gst {
				if gst[i] != wst[i] {
					t.Errorf("k=%d %s: work counts %+v, reference %+v", k, c.name, gst, wst)
					break
				}
			}
			for i, w := range want {
				bad := 0
				for j := range w {
					if diff := math.Abs(got[i][j] - w[j]); !(diff <= c.tol*math.Max(1, math.Abs(w[j]))) {
						if bad < 3 {
							t.Errorf("k=%d %s: %s[%d] = %.15g, reference %.15g", k, c.name, names[i], j, got[i][j], w[j])
						}
						bad++
					}
				}
			}
		}
	}
}

// TestBatchedODEFiniteDifferences checks the batched path's gradients
// (float64, over the reference backend's operations) against central
// differences of its own solves, for L = Σ a1⊙z1 + Σ ald⊙logdet w.r.t.
// every element of z0 and θ, to 1e-6 relative to max(1, |gradient|): the
// VJP of one evaluation (Λ = Σ az⊙f + Σ atr⊙tr), RK4 with 6 steps (both
// directions in time) and Dormand–Prince at atol = rtol = 1e-8 (step
// 1e-7; every perturbed solve must make the same work as the unperturbed
// one, i.e. the same accept/reject decisions), exact trace and two
// Hutchinson probes, on a network with two hidden layers.
func TestBatchedODEFiniteDifferences(t *testing.T) {
	const tol = 1e-6
	dims := []int{4, 6, 5, 3}
	dopt := native.Dopri5Options{Atol: 1e-8, Rtol: 1e-8, H0: 0.05, MaxSteps: 10000}
	b := native.NewBatchedODE(native.NewRef())
	for _, solver := range []string{"vjp", "rk4", "rk4(t1<t0)", "dopri5"} {
		for _, k := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s/k=%d", solver, k), func(t *testing.T) {
				f := newODEFixture(t, dims, uint64(300+k))
				f.r = b
				n, d, np := 3, f.d, f.np
				z0, theta := f.uniform(n*d, 1.5), f.uniform(np, 0.9)
				var eps *native.Tensor
				if k > 0 {
					eps = f.up(n, k*d, f.uniform(n*k*d, 1))
				}
				a1, ald := f.up(n, d, f.uniform(n*d, 1)), f.up(n, 1, f.uniform(n, 1))
				step := 1e-6
				if solver == "dopri5" {
					step = 1e-7
				}
				var tape native.ODETape
				run := func(z0, theta []float64, z1, ld *native.Tensor) native.ODEStats {
					zt, th := f.up(n, d, z0), f.up(1, np, theta)
					switch solver {
					case "vjp":
						b.ODEFuncForward(z1, ld, zt, th, eps, dims, 0.4)
						return native.ODEStats{}
					case "rk4":
						return b.ODESolveRK4Record(&tape, z1, ld, zt, th, eps, dims, 0, 1, 6)
					case "rk4(t1<t0)":
						return b.ODESolveRK4Record(&tape, z1, ld, zt, th, eps, dims, 1, 0.25, 6)
					}
					st, err := b.ODESolveDopri5Record(&tape, z1, ld, zt, th, eps, dims, 0, 1, dopt)
					if err != nil {
						t.Fatal(err)
					}
					return st
				}
				st0 := run(z0, theta, f.r.New(n, d), f.r.New(n, 1))
				gz, gth := f.r.New(n, d), f.r.New(1, np)
				switch solver {
				case "vjp":
					b.ODEFuncVJP(gz, gth, f.up(n, d, z0), f.up(1, np, theta), eps, a1, ald, dims, 0.4)
				case "dopri5":
					b.ODESolveDopri5Backward(gz, gth, a1, ald, f.up(1, np, theta), eps, dims, &tape)
				default:
					b.ODESolveRK4Backward(gz, gth, a1, ald, f.up(1, np, theta), eps, dims, &tape)
				}
				loss := func(z0, theta []float64) float64 {
					z1, ld := f.r.New(n, d), f.r.New(n, 1)
					if st := run(z0, theta, z1, ld); st != st0 {
						t.Fatalf("perturbed solve %+v, unperturbed %+v: the step decisions changed", st, st0)
					}
					return f.r.Dot(a1, z1) + f.r.Dot(ald, ld)
				}
				checkCentralFD(t, func() float64 { return loss(z0, theta) }, step, tol, "∂L", "backward",
					fdCase{"z0", z0, f.down(gz)}, fdCase{"θ", theta, f.down(gth)})
			})
		}
	}
}

// The cpu backend's batched path allocates nothing per call once its
// buffers exist (same shapes as before), float32 and float64, including a
// flow of two blocks alternating θ tensors and calls alternating two batch
// sizes (an LRMF step's flow and density).
func TestCPUBatchedODEAllocatesNothing(t *testing.T) {
	sanitize.SkipAllocationCounts(t)
	dims := []int{9, 12, 10, 8}
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		be, err := native.NewCPU(dt, 2)
		if err != nil {
			t.Skip(err)
		}
		defer be.Close()
		if err := be.(native.ODEPather).SetODEPath("batched"); err != nil {
			t.Fatal(err)
		}
		b := be.(native.ODEBackend)
		n, d, np := 40, 8, native.ODENumParams(dims)
		z, eps := b.New(n, d), b.New(n, 2*d)
		z2, dz2, tr2 := b.New(2*n, d), b.New(2*n, d), b.New(2*n, 1)
		th := [2]*native.Tensor{b.New(1, np), b.New(1, np)}
		b.Fill(th[0], 0.1)
		b.Fill(th[1], -0.05)
		b.Fill(z, 0.3)
		b.Fill(eps, 1)
		dz, tr, gz, g, a1, ald := b.New(n, d), b.New(n, 1), b.New(n, d), b.New(1, np), b.New(n, d), b.New(n, 1)
		b.Fill(a1, 0.5)
		b.Fill(ald, -1)
		opt := native.Dopri5Options{Atol: 1e-5, Rtol: 1e-5, H0: 0.1, MaxSteps: 1000}
		var tapes [2]native.ODETape
		for name, f := range map[string]func(){
			"ODEFuncForward": func() { b.ODEFuncForward(dz, tr, z, th[0], eps, dims, 0.5) },
			"ODEFuncVJP":     func() { b.ODEFuncVJP(gz, g, z, th[0], nil, a1, ald, dims, 0.5) },
			"RK4Record+Backward(2 blocks)": func() {
				for i := range tapes {
					b.ODESolveRK4Record(&tapes[i], dz, tr, z, th[i], eps, dims, 0, 1, 3)
				}
				for i := range tapes {
					b.ODESolveRK4Backward(gz, g, a1, ald, th[i], eps, dims, &tapes[i])
				}
			},
			"RK4 at two batch sizes": func() {
				b.ODESolveRK4(dz, tr, z, th[0], nil, dims, 0, 1, 2)
				b.ODESolveRK4(dz2, tr2, z2, th[1], nil, dims, 0, 1, 2)
			},
			"Dopri5Record+Backward": func() {
				if _, err := b.ODESolveDopri5Record(&tapes[0], dz, tr, z, th[0], nil, dims, 0, 1, opt); err != nil {
					t.Fatal(err)
				}
				b.ODESolveDopri5Backward(gz, g, a1, ald, th[0], nil, dims, &tapes[0])
			},
		} {
			for i := 0; i < 10; i++ {
				f()
			}
			if a := testing.AllocsPerRun(5, f); a != 0 {
				t.Errorf("%v %s: %.1f allocations per call, want 0", dt, name, a)
			}
		}
	}
}

// BenchmarkCPUODEBatchedD32 compares the cpu backend's FFJORD paths — the
// row kernels ("auto": the widest SIMD path) and "batched" — at D = 32
// (dynamics [33, 64, 64, 64, 32]), batch 256, 1 thread: a recorded
// RK4(10) solve and its backward pass, exact trace and one Hutchinson
// probe, float32 and float64.
func BenchmarkCPUODEBatchedD32(b *testing.B) {
	dims := []int{33, 64, 64, 64, 32}
	const n = 256
	d, np := dims[len(dims)-1], native.ODENumParams(dims)
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		for _, path := range []string{"auto", "batched"} {
			for _, k := range []int{0, 1} {
				b.Run(fmt.Sprintf("%v/path=%s/k=%d/rk4-10+backward", dt, path, k), func(b *testing.B) {
					be, err := native.NewCPU(dt, 1)
					if err != nil {
						b.Skip(err)
					}
					defer be.Close()
					if err := be.(native.ODEPather).SetODEPath(path); err != nil {
						b.Fatal(err)
					}
					ob := be.(native.ODEBackend)
					rng := rand.New(rand.NewPCG(1, 2))
					up := func(r, c int, s float64) *native.Tensor {
						v := make([]float64, r*c)
						for i := range v {
							v[i] = s * (2*rng.Float64() - 1)
						}
						t := be.New(r, c)
						be.Upload(t, v)
						return t
					}
					z0, th, a1, ald := up(n, d, 1.5), up(1, np, 0.15), up(n, d, 1), up(n, 1, 1)
					var eps *native.Tensor
					if k > 0 {
						eps = up(n, k*d, 1)
					}
					z1, ld, gz, g := be.New(n, d), be.New(n, 1), be.New(n, d), be.New(1, np)
					var tape native.ODETape
					for b.Loop() {
						ob.ODESolveRK4Record(&tape, z1, ld, z0, th, eps, dims, 0, 1, 10)
						ob.ODESolveRK4Backward(gz, g, a1, ald, th, eps, dims, &tape)
					}
				})
			}
		}
	}
}

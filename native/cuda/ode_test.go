//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// odePaperDims is the paper's FFJORD dynamics on 2-D data.
var odePaperDims = []int{3, 16, 16, 16, 2}

// odeInputs uploads θ, z0, probes (k > 0) and backward seeds to be, drawn
// from seed so that backends given the same seed get the same values.
type odeInputs struct {
	theta, z0, eps, a1, ald *native.Tensor
}

func newODEInputs(be native.Backend, dims []int, n, k int, seed uint64) odeInputs {
	rng := rand.New(rand.NewPCG(seed, 7))
	d, np := dims[len(dims)-1], native.ODENumParams(dims)
	up := func(rows, cols int, scale float64) *native.Tensor {
		x := make([]float64, rows*cols)
		for i := range x {
			x[i] = scale * (2*rng.Float64() - 1)
		}
		t := be.New(rows, cols)
		be.Upload(t, x)
		return t
	}
	in := odeInputs{theta: up(1, np, 0.8), z0: up(n, d, 1.5)}
	if k > 0 {
		// Rademacher probes, as FFJORD draws them.
		x := make([]float64, n*k*d)
		for i := range x {
			x[i] = float64(2*rng.IntN(2) - 1)
		}
		in.eps = be.New(n, k*d)
		be.Upload(in.eps, x)
	}
	in.a1, in.ald = up(n, d, 1), up(n, 1, 1)
	return in
}

// copyTo uploads in's values (held by src) into c's tensors on dst, so that
// both backends solve from the same float32-rounded inputs.
func (in odeInputs) copyTo(src, dst native.Backend, c odeInputs) {
	for _, p := range [][2]*native.Tensor{{in.theta, c.theta}, {in.z0, c.z0}, {in.eps, c.eps}, {in.a1, c.a1}, {in.ald, c.ald}} {
		if p[0] == nil {
			continue
		}
		x := make([]float64, p[0].Len())
		src.Download(x, p[0])
		dst.Upload(p[1], x)
	}
}

// bothSolves is what solveBoth returns: the outputs z1, logdet, gz0, gθ of
// the GPU (og) and the cpu (oc), the forward and backward stats, the tapes.
type bothSolves struct {
	og, oc [4]*native.Tensor
	sg, sc [2]native.ODEStats
	tg, tc native.ODETape
}

// solveBoth runs a recorded solve (solver "rk4" with rk4Steps steps, or
// "dopri5" with opt) and its backward from g on gpu and from c on cpuB.
func solveBoth(t *testing.T, name string, gpu, cpuB native.Backend, g, c odeInputs, dims []int, n int,
	solver string, rk4Steps int, opt native.Dopri5Options) *bothSolves {
	t.Helper()
	d, np := dims[len(dims)-1], native.ODENumParams(dims)
	gob, cob := gpu.(native.ODEBackend), cpuB.(native.ODEBackend)
	out := func(be native.Backend) [4]*native.Tensor {
		return [4]*native.Tensor{be.New(n, d), be.New(n, 1), be.New(n, d), be.New(1, np)}
	}
	r := &bothSolves{og: out(gpu), oc: out(cpuB)}
	og, oc := r.og, r.oc
	if solver == "rk4" {
		r.sg[0] = gob.ODESolveRK4Record(&r.tg, og[0], og[1], g.z0, g.theta, g.eps, dims, 0, 1, rk4Steps)
		r.sc[0] = cob.ODESolveRK4Record(&r.tc, oc[0], oc[1], c.z0, c.theta, c.eps, dims, 0, 1, rk4Steps)
		r.sg[1] = gob.ODESolveRK4Backward(og[2], og[3], g.a1, g.ald, g.theta, g.eps, dims, &r.tg)
		r.sc[1] = cob.ODESolveRK4Backward(oc[2], oc[3], c.a1, c.ald, c.theta, c.eps, dims, &r.tc)
		return r
	}
	var eg, ec error
	r.sg[0], eg = gob.ODESolveDopri5Record(&r.tg, og[0], og[1], g.z0, g.theta, g.eps, dims, 0, 1, opt)
	r.sc[0], ec = cob.ODESolveDopri5Record(&r.tc, oc[0], oc[1], c.z0, c.theta, c.eps, dims, 0, 1, opt)
	if eg != nil || ec != nil {
		t.Fatalf("%s: errors %v (cpu %v)", name, eg, ec)
	}
	r.sg[1] = gob.ODESolveDopri5Backward(og[2], og[3], g.a1, g.ald, g.theta, g.eps, dims, &r.tg)
	r.sc[1] = cob.ODESolveDopri5Backward(oc[2], oc[3], c.a1, c.ald, c.theta, c.eps, dims, &r.tc)
	return r
}

// TestODEMatchesCPU runs recorded RK4(10) and Dormand–Prince solves and
// their backward passes on the paper's network at batch 2000 on the cuda
// backend and on the float64 cpu backend, with the same float32-rounded
// inputs, and compares every output (the conformance suite's tolerance:
// 1e-5 of max(|cpu|, 1)) and the work counts.
func TestODEMatchesCPU(t *testing.T) {
	gpu := newTestBackend(t)
	cpuB, err := native.NewCPU(native.Float64, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cpuB.Close()
	const n = 2000
	dims := odePaperDims
	seed := testseed.Seed(t)
	for _, k := range []int{0, 1} {
		g := newODEInputs(gpu, dims, n, k, seed)
		c := newODEInputs(cpuB, dims, n, k, seed)
		// The cpu gets the float32 values the GPU holds.
		g.copyTo(gpu, cpuB, c)
		opt := native.Dopri5Options{Atol: 1e-5, Rtol: 1e-5, H0: 0.05, MaxSteps: 100}
		for _, solver := range []string{"rk4", "dopri5"} {
			name := fmt.Sprintf("%s/k=%d", solver, k)
			r := solveBoth(t, name, gpu, cpuB, g, c, dims, n, solver, 10, opt)
			og, oc, sg, sc, tg, tc := r.og, r.oc, r.sg, r.sc, &r.tg, &r.tc
			if sg != sc {
				t.Errorf("%s: stats %+v, cpu %+v", name, sg, sc)
			}
			if tg.FloatsPerRow() != tc.FloatsPerRow() || tg.Accepted(n-1) != tc.Accepted(n-1) {
				t.Errorf("%s: tape reports %d floats/row and %d steps in the last row, cpu %d and %d", name,
					tg.FloatsPerRow(), tg.Accepted(n-1), tc.FloatsPerRow(), tc.Accepted(n-1))
			}
			for o, what := range []string{"z1", "logdet", "gz0", "gtheta"} {
				got, want := make([]float64, og[o].Len()), make([]float64, oc[o].Len())
				gpu.Download(got, og[o])
				cpuB.Download(want, oc[o])
				bad := 0
				for i := range want {
					if diff := math.Abs(got[i] - want[i]); !(diff <= 1e-5*math.Max(math.Abs(want[i]), 1)) {
						if bad < 3 {
							t.Errorf("%s: %s[%d] = %.9g, cpu %.9g", name, what, i, got[i], want[i])
						}
						bad++
					}
				}
			}
		}
	}
}

// TestODETapeOwnership: a tape recorded on the GPU holds device buffers,
// so the cpu backend refuses to run its backward, and Steps says why; the
// GPU refuses a tape of the other method.
func TestODETapeOwnership(t *testing.T) {
	gpu := newTestBackend(t)
	cpu, err := native.NewCPU(native.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	dims := odePaperDims
	d, np := 2, native.ODENumParams(dims)
	seed := testseed.Seed(t)
	in := newODEInputs(gpu, dims, 4, 0, seed)
	var tape native.ODETape
	gpu.ODESolveRK4Record(&tape, gpu.New(4, d), gpu.New(4, 1), in.z0, in.theta, nil, dims, 0, 1, 3)
	if tape.Accepted(0) != 3 || tape.FloatsPerRow() != 3*d {
		t.Errorf("RK4 tape: %d steps, %d floats/row; want 3 and %d", tape.Accepted(0), tape.FloatsPerRow(), 3*d)
	}
	cin := newODEInputs(cpu, dims, 4, 0, seed)
	msg := panicMessage(func() {
		cpu.(native.ODEBackend).ODESolveRK4Backward(cpu.New(4, d), cpu.New(1, np), cin.a1, cin.ald, cin.theta, nil, dims, &tape)
	})
	if !strings.Contains(msg, "recorded by a backend that holds it") {
		t.Errorf("cpu backward of a GPU tape: panic %q", msg)
	}
	msg = panicMessage(func() {
		gpu.ODESolveDopri5Backward(gpu.New(4, d), gpu.New(1, np), in.a1, in.ald, in.theta, nil, dims, &tape)
	})
	if !strings.Contains(msg, "holds no solve of this method") {
		t.Errorf("Dormand–Prince backward of an RK4 tape: panic %q", msg)
	}
	if _, err := gpu.ODESolveDopri5Record(&tape, gpu.New(4, d), gpu.New(4, 1), in.z0, in.theta, nil, dims, 0, 1,
		native.Dopri5Options{Atol: 1e-6, Rtol: 1e-6, H0: 0.1, MaxSteps: 50}); err != nil {
		t.Fatal(err)
	}
	if msg := panicMessage(func() { tape.Steps(nil, 0) }); !strings.Contains(msg, "held by the backend") {
		t.Errorf("Steps on a GPU tape: panic %q", msg)
	}
}

// TestODELimits: a network beyond the kernels' per-thread frame runs on
// the batched path (native.BatchedODE over this backend), chosen per call,
// and matches the reference.
func TestODELimits(t *testing.T) {
	gpu := newTestBackend(t)
	dims := []int{3, 64, 2} // width 64 > 32
	if gpu.ODERowKernels(dims, 0) || !gpu.ODERowKernels(odePaperDims, 0) {
		t.Fatalf("ODERowKernels: width 64 %v, the paper's network %v", gpu.ODERowKernels(dims, 0), gpu.ODERowKernels(odePaperDims, 0))
	}
	ref := native.NewRef().(native.ODEBackend)
	in := newODEInputs(gpu, dims, 5, 0, testseed.Seed(t))
	rin := newODEInputs(ref, dims, 5, 0, testseed.Seed(t))
	for _, p := range [][2]*native.Tensor{{in.theta, rin.theta}, {in.z0, rin.z0}} {
		x := make([]float64, p[0].Len())
		gpu.Download(x, p[0])
		ref.Upload(p[1], x)
	}
	dz, tr := gpu.New(5, 2), gpu.New(5, 1)
	rdz, rtr := ref.New(5, 2), ref.New(5, 1)
	gpu.ODEFuncForward(dz, tr, in.z0, in.theta, nil, dims, 0.2)
	ref.ODEFuncForward(rdz, rtr, rin.z0, rin.theta, nil, dims, 0.2)
	for _, p := range [][2]*native.Tensor{{dz, rdz}, {tr, rtr}} {
		got, want := make([]float64, p[0].Len()), make([]float64, p[1].Len())
		gpu.Download(got, p[0])
		ref.Download(want, p[1])
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-5*math.Max(1, math.Abs(want[i])) {
				t.Errorf("width 64: [%d] = %.9g, reference %.9g", i, got[i], want[i])
			}
		}
	}
}

// ODESupports accepts every valid network now that the batched path runs
// the ones beyond the frame (lrmf builds FFJORD at D = 32 on the GPU).
func TestODESupports(t *testing.T) {
	gpu := newTestBackend(t)
	for _, dims := range [][]int{{3, 16, 16, 16, 2}, {3, 64, 2}, {10, 16, 9}, {33, 64, 64, 32}} {
		if err := gpu.ODESupports(dims, 0); err != nil {
			t.Errorf("dims %v: %v", dims, err)
		}
	}
	if err := gpu.ODESupports([]int{4, 2}, 0); err == nil {
		t.Error("dims [4 2] (not [D+1, ..., D]): no error")
	}
}

// TestODEBatchedMatchesCPU: at D = 32 with hidden widths 48 and 64 (beyond
// the frame: the batched path), 64 rows, exact trace and one Hutchinson
// probe, a recorded RK4(8) solve and its backward on the GPU (float32)
// match the float64 cpu backend's row kernels given the same
// float32-rounded inputs, to 1e-5 of max(|cpu|, 1) (the conformance
// tolerance), with the same work counts; a recorded Dormand–Prince solve
// (atol = rtol = 1e-5) and its backward match to 1e-3, about the solver's
// tolerance: its float32 stages perturb the error estimates, hence the
// step sizes, and may change some accept/reject decisions, so the step
// sequences and counts may differ.
func TestODEBatchedMatchesCPU(t *testing.T) {
	gpu := newTestBackend(t)
	cpuB, err := native.NewCPU(native.Float64, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cpuB.Close()
	const n = 64
	dims := []int{33, 48, 64, 32}
	if gpu.ODERowKernels(dims, 0) {
		t.Fatal("D = 32 fits the row kernels' frame?")
	}
	np := native.ODENumParams(dims)
	seed := testseed.Seed(t)
	for _, k := range []int{0, 1} {
		g := newODEInputs(gpu, dims, n, k, seed)
		c := newODEInputs(cpuB, dims, n, k, seed)
		// θ at the scale FFJORD's Glorot initialisation gives these widths.
		x := make([]float64, np)
		gpu.Download(x, g.theta)
		for i := range x {
			x[i] = float64(float32(x[i] * 0.3))
		}
		gpu.Upload(g.theta, x)
		g.copyTo(gpu, cpuB, c)
		opt := native.Dopri5Options{Atol: 1e-5, Rtol: 1e-5, H0: 0.05, MaxSteps: 200}
		for _, solver := range []string{"rk4", "dopri5"} {
			name := fmt.Sprintf("%s/k=%d", solver, k)
			r := solveBoth(t, name, gpu, cpuB, g, c, dims, n, solver, 8, opt)
			og, oc, sg, sc := r.og, r.oc, r.sg, r.sc
			tol := 1e-5
			if solver == "rk4" {
				if sg != sc {
					t.Errorf("%s: stats %+v, cpu %+v", name, sg, sc)
				}
			} else {
				tol = 1e-3
				t.Logf("%s: stats %+v, cpu %+v", name, sg, sc)
			}
			for o, what := range []string{"z1", "logdet", "gz0", "gtheta"} {
				got, want := make([]float64, og[o].Len()), make([]float64, oc[o].Len())
				gpu.Download(got, og[o])
				cpuB.Download(want, oc[o])
				bad, worst := 0, 0.0
				for i := range want {
					diff := math.Abs(got[i]-want[i]) / math.Max(math.Abs(want[i]), 1)
					worst = math.Max(worst, diff)
					if !(diff <= tol) {
						if bad < 3 {
							t.Errorf("%s: %s[%d] = %.9g, cpu %.9g", name, what, i, got[i], want[i])
						}
						bad++
					}
				}
				t.Logf("%s: %s: largest |diff|/max(|cpu|, 1) = %.3g", name, what, worst)
			}
		}
	}
}

// TestFFJORDDensityD32: an FFJORD density (two blocks of [48, 48] tanh,
// RK4 × 4, exact trace) on 32-dimensional data builds on the cuda backend
// (its networks exceed the kernels' frame, so they run batched), and its
// log-density and gradients match the same density on the float64 cpu
// backend (same initialisation, same data) to 1e-5 of max(|cpu|, 1). A
// Dormand–Prince density of the same shape evaluates to finite values.
func TestFFJORDDensityD32(t *testing.T) {
	gpu := newTestBackend(t)
	cpu, err := native.NewCPU(native.Float64, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	const n, d = 48, 32
	seed := testseed.Seed(t)
	x := make([]float64, n*d)
	rng := rand.New(rand.NewPCG(seed, 11))
	for i := range x {
		x[i] = float64(float32(1.5 * (2*rng.Float64() - 1)))
	}
	o := model.FFJORDOptions{Blocks: 2, Hidden: 48, Depth: 2, Solver: "rk4", Steps: 4}
	run := func(be native.Backend) (logp []float64, grads [][]float64) {
		dens, err := model.FFJORDDensity(o)(be, d, rand.New(rand.NewPCG(seed, 12)))
		if err != nil {
			t.Fatalf("%s: %v", be.Name(), err)
		}
		// θ rounded to float32 on both backends.
		for _, p := range dens.Params() {
			v := make([]float64, p.Value.Len())
			be.Download(v, p.Value)
			for i := range v {
				v[i] = float64(float32(v[i]))
			}
			be.Upload(p.Value, v)
		}
		xt, lp, dl, dx := be.New(n, d), be.New(n, 1), be.New(n, 1), be.New(n, d)
		be.Upload(xt, x)
		be.Fill(dl, 1.0/n)
		if err := dens.LogProb(lp, xt); err != nil {
			t.Fatalf("%s: LogProb: %v", be.Name(), err)
		}
		if err := dens.Backward(dx, dl); err != nil {
			t.Fatalf("%s: Backward: %v", be.Name(), err)
		}
		logp = make([]float64, n)
		be.Download(logp, lp)
		for _, p := range append([]*native.Tensor{dx}, gradsOf(dens)...) {
			v := make([]float64, p.Len())
			be.Download(v, p)
			grads = append(grads, v)
		}
		return logp, grads
	}
	gl, gg := run(gpu)
	cl, cg := run(cpu)
	check := func(what string, got, want []float64) {
		worst := 0.0
		for i := range want {
			diff := math.Abs(got[i]-want[i]) / math.Max(math.Abs(want[i]), 1)
			worst = math.Max(worst, diff)
			if !(diff <= 1e-5) {
				t.Errorf("%s[%d] = %.9g, cpu %.9g", what, i, got[i], want[i])
				return
			}
		}
		t.Logf("%s: largest |diff|/max(|cpu|, 1) = %.3g", what, worst)
	}
	check("logp", gl, cl)
	for i := range cg {
		check(fmt.Sprintf("grad %d", i), gg[i], cg[i])
	}
	o.Solver = "dopri5"
	dens, err := model.FFJORDDensity(o)(gpu, d, rand.New(rand.NewPCG(seed, 13)))
	if err != nil {
		t.Fatal(err)
	}
	xt, lp := gpu.New(n, d), gpu.New(n, 1)
	gpu.Upload(xt, x)
	if err := dens.LogProb(lp, xt); err != nil {
		t.Fatalf("dopri5 LogProb: %v", err)
	}
	v := make([]float64, n)
	gpu.Download(v, lp)
	for i, l := range v {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			t.Fatalf("dopri5 logp[%d] = %g", i, l)
		}
	}
}

// gradsOf returns the Grad tensors of a density's parameters.
func gradsOf(dens model.Density) []*native.Tensor {
	var g []*native.Tensor
	for _, p := range dens.Params() {
		g = append(g, p.Grad)
	}
	return g
}

//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lrmf-go/lrmf/internal/testseed"
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
	cpu := cpuB.(native.ODEBackend)
	const n = 2000
	dims := odePaperDims
	d, np := dims[len(dims)-1], native.ODENumParams(dims)
	seed := testseed.Seed(t)
	for _, k := range []int{0, 1} {
		g := newODEInputs(gpu, dims, n, k, seed)
		c := newODEInputs(cpuB, dims, n, k, seed)
		// The cpu gets the float32 values the GPU holds.
		for _, p := range [][2]*native.Tensor{{g.theta, c.theta}, {g.z0, c.z0}, {g.eps, c.eps}, {g.a1, c.a1}, {g.ald, c.ald}} {
			if p[0] == nil {
				continue
			}
			x := make([]float64, p[0].Len())
			gpu.Download(x, p[0])
			cpuB.Upload(p[1], x)
		}
		opt := native.Dopri5Options{Atol: 1e-5, Rtol: 1e-5, H0: 0.05, MaxSteps: 100}
		for _, solver := range []string{"rk4", "dopri5"} {
			name := fmt.Sprintf("%s/k=%d", solver, k)
			var tg, tc native.ODETape
			out := func(be native.Backend) [4]*native.Tensor {
				return [4]*native.Tensor{be.New(n, d), be.New(n, 1), be.New(n, d), be.New(1, np)}
			}
			og, oc := out(gpu), out(cpuB)
			var sg, sc [2]native.ODEStats
			if solver == "rk4" {
				sg[0] = gpu.ODESolveRK4Record(&tg, og[0], og[1], g.z0, g.theta, g.eps, dims, 0, 1, 10)
				sc[0] = cpu.ODESolveRK4Record(&tc, oc[0], oc[1], c.z0, c.theta, c.eps, dims, 0, 1, 10)
				sg[1] = gpu.ODESolveRK4Backward(og[2], og[3], g.a1, g.ald, g.theta, g.eps, dims, &tg)
				sc[1] = cpu.ODESolveRK4Backward(oc[2], oc[3], c.a1, c.ald, c.theta, c.eps, dims, &tc)
			} else {
				var eg, ec error
				sg[0], eg = gpu.ODESolveDopri5Record(&tg, og[0], og[1], g.z0, g.theta, g.eps, dims, 0, 1, opt)
				sc[0], ec = cpu.ODESolveDopri5Record(&tc, oc[0], oc[1], c.z0, c.theta, c.eps, dims, 0, 1, opt)
				if eg != nil || ec != nil {
					t.Fatalf("%s: errors %v (cpu %v)", name, eg, ec)
				}
				sg[1] = gpu.ODESolveDopri5Backward(og[2], og[3], g.a1, g.ald, g.theta, g.eps, dims, &tg)
				sc[1] = cpu.ODESolveDopri5Backward(oc[2], oc[3], c.a1, c.ald, c.theta, c.eps, dims, &tc)
			}
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

// TestODELimits: a network beyond the kernels' per-thread frame panics
// with a message naming the limits, before anything is launched.
func TestODELimits(t *testing.T) {
	gpu := newTestBackend(t)
	dims := []int{3, 64, 2} // width 64 > 32
	z, th := gpu.New(2, 2), gpu.New(1, native.ODENumParams(dims))
	msg := panicMessage(func() { gpu.ODEFuncForward(gpu.New(2, 2), gpu.New(2, 1), z, th, nil, dims, 0) })
	if !strings.Contains(msg, "exceed the CUDA kernels' limits") {
		t.Errorf("width 64: panic %q", msg)
	}
}

// ODESupports answers the same limits as an error, so lrmf can refuse a
// model up front instead of panicking mid-run.
func TestODESupports(t *testing.T) {
	gpu := newTestBackend(t)
	if err := gpu.ODESupports([]int{3, 16, 16, 16, 2}, 0); err != nil {
		t.Errorf("the paper's network: %v", err)
	}
	if err := gpu.ODESupports([]int{3, 64, 2}, 0); err == nil || !strings.Contains(err.Error(), "limits") {
		t.Errorf("width 64: err = %v", err)
	}
	if err := gpu.ODESupports([]int{10, 16, 9}, 0); err == nil {
		t.Error("D = 9 with the exact trace: no error")
	}
}

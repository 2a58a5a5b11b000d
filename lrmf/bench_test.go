package lrmf

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// newBenchJoint prepares phase 2 of an affine/Gaussian run on the moons pair
// with θA*, θB* fitted, for timing single steps.
func newBenchJoint(tb testing.TB, be native.Backend, batch int) *jointState {
	p := data.MoonsPair(2000, 0.05, 50, 1)
	cfg := Config{Backend: be, Steps: 1 << 20, LR: 0.01, FitOptions: FitOptions{Batch: batch}}.withDefaults(2000, 2000)
	r := &run{cfg: cfg, be: be, rng: data.NewRand(1), dim: 2, a: toTensor(be, p.A), b: toTensor(be, p.B)}
	dA, dS := model.NewGaussian(be, 2), model.NewGaussian(be, 2)
	if err := dA.FitMLE(r.a); err != nil {
		tb.Fatal(err)
	}
	model.CopyParams(be, dS.Params(), dA.Params())
	return r.newJoint(model.NewAffine(be, 2), dS, 0)
}

// newModelJoint prepares phase 2 of a run of the flow and density the
// makers build on the moons pair (both at their initialisation: the cost of
// a step does not depend on the parameter values, except through the
// adaptive ODE solver's step count, which FFJORD benchmarks report).
func newModelJoint(tb testing.TB, be native.Backend, batch int, mkFlow model.FlowMaker, mkDensity model.DensityMaker) *jointState {
	p := data.MoonsPair(max(2000, batch), 0.05, 50, 1)
	n, _ := p.A.Dims()
	cfg := Config{Backend: be, Steps: 1 << 20, LR: 0.01, FitOptions: FitOptions{Batch: batch}}.withDefaults(n, n)
	rng := data.NewRand(1)
	r := &run{cfg: cfg, be: be, rng: rng, dim: 2, a: toTensor(be, p.A), b: toTensor(be, p.B)}
	f, err := mkFlow(be, 2, rng)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := mkDensity(be, 2, rng)
	if err != nil {
		tb.Fatal(err)
	}
	return r.newJoint(f, d, 0)
}

// newRealNVPJoint prepares phase 2 of a Real NVP flow + Real NVP density
// run on the moons pair.
func newRealNVPJoint(tb testing.TB, be native.Backend, o model.RealNVPOptions, batch int) *jointState {
	return newModelJoint(tb, be, batch, model.RealNVPFlow(o), model.RealNVPDensity(o))
}

// realNVPStepFlops counts the multiply-adds (×2) of one joint step of Real
// NVP flow + Real NVP density with batch b: each coupling's network costs
// F = 2(dc·H + (depth−1)·H² + 2dt·H) per sample forward and about 2F
// backward (weight and input gradients), for b samples through T and 2b
// through θS.
func realNVPStepFlops(o model.RealNVPOptions, d, b int) float64 {
	dc, dt := d/2, d-d/2
	f := 2 * float64(dc*o.Hidden+(o.Depth-1)*o.Hidden*o.Hidden+2*dt*o.Hidden)
	return 3 * f * float64(o.Blocks) * float64(3*b)
}

// BenchmarkRealNVPStep times one joint step (T forward/backward on b rows,
// θS forward/backward on 2b rows, Adam) with the paper's network.
func BenchmarkRealNVPStep(b *testing.B) {
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		for _, threads := range []int{1, 2} {
			for _, batch := range []int{256, 2000} {
				b.Run(fmt.Sprintf("paper/%v/threads=%d/batch=%d", dt, threads, batch), func(b *testing.B) {
					be, err := native.NewCPU(dt, threads)
					if err != nil {
						b.Skip(err)
					}
					defer be.Close()
					timeSteps(b, newRealNVPJoint(b, be, model.PaperRealNVP, batch))
					b.ReportMetric(realNVPStepFlops(model.PaperRealNVP, 2, batch)/1e9, "GFLOP/step")
					b.ReportMetric(realNVPStepFlops(model.PaperRealNVP, 2, batch)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkAffineStep times one joint-phase step (forward, backward, Adam)
// of affine LRMF with a Gaussian density on the moons pair.
func BenchmarkAffineStep(b *testing.B) {
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		for _, threads := range []int{1, 2} {
			for _, batch := range []int{256, 2000} {
				b.Run(fmt.Sprintf("%v/threads=%d/batch=%d", dt, threads, batch), func(b *testing.B) {
					be, err := native.NewCPU(dt, threads)
					if err != nil {
						b.Skip(err)
					}
					defer be.Close()
					timeSteps(b, newBenchJoint(b, be, batch))
				})
			}
		}
	}
}

// A joint-phase step allocates nothing once its buffers exist.
func TestJointStepAllocatesNothing(t *testing.T) {
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		be, err := native.NewCPU(dt, 2)
		if err != nil {
			t.Skip(err)
		}
		for _, j := range []*jointState{newBenchJoint(t, be, 1000), newRealNVPJoint(t, be, model.RealNVPOptions{Hidden: 16}, 300)} {
			step := 0
			allocs := testing.AllocsPerRun(100, func() {
				step++
				p, err := j.grad(step)
				if err != nil {
					t.Fatal(err)
				}
				j.update(step, p)
			})
			if allocs != 0 {
				t.Errorf("%v %T: %.2f allocations per step, want 0", dt, j.flow, allocs)
			}
		}
		be.Close()
	}
}

// BenchmarkFFJORDStep times one joint step of FFJORD LRMF (T forward and
// backward on b rows, θS on 2b rows, Adam) with the paper's dynamics
// (2 transforms of [16, 16, 16] tanh) in float32, and reports the mean
// evaluations of f per row and transform, forward and backward.
func BenchmarkFFJORDStep(b *testing.B) {
	const threads = 2
	for _, batch := range []int{256, 2000} {
		for _, solver := range []string{"rk4", "dopri5"} {
			for _, trace := range []string{"exact", "hutchinson"} {
				o := model.FFJORDOptions{Solver: solver, Steps: 10, Trace: trace}
				b.Run(fmt.Sprintf("float32/threads=%d/batch=%d/%s/%s", threads, batch, solver, trace), func(b *testing.B) {
					be, err := native.NewCPU(native.Float32, threads)
					if err != nil {
						b.Skip(err)
					}
					defer be.Close()
					j := newModelJoint(b, be, batch, model.FFJORDFlow(o), model.FFJORDDensity(o))
					d := timeSolverSteps(b, j)
					b.ReportMetric(d.NFEPerRow(), "NFE/row")
					b.ReportMetric(d.BackwardNFEPerRow(), "bwdNFE/row")
				})
			}
		}
	}
}

// BenchmarkFFJORDStepVsTorch times the FFJORD joint step that
// tests/ffjord_torch_step.py runs in PyTorch eager (issue 14): one
// transform of [16, 16, 16] tanh for T and for θS, float32 tensors, 1
// thread, batch 256 and 2000, RK4 × 10 and Dormand–Prince (1e-5), exact
// and Hutchinson trace. LRMF_BENCH_ODE_PATHS (comma-separated: auto,
// portable, avx2, avx512) times the given ODE code paths instead of auto;
// tests/ffjord_vs_torch.sh runs both sides and prints the ratios.
// LRMF_BENCH_THREADS (comma-separated, default 1) adds thread counts; names
// then end in /threads=N (for the 2-against-1 scaling of the issue).
func BenchmarkFFJORDStepVsTorch(b *testing.B) {
	paths := []string{"auto"}
	if p := os.Getenv("LRMF_BENCH_ODE_PATHS"); p != "" {
		paths = strings.Split(p, ",")
	}
	threads := []string{"1"}
	if t := os.Getenv("LRMF_BENCH_THREADS"); t != "" {
		threads = strings.Split(t, ",")
	}
	for _, path := range paths {
		for _, batch := range []int{256, 2000} {
			for _, solver := range []string{"rk4", "dopri5"} {
				for _, trace := range []string{"exact", "hutchinson"} {
					for _, th := range threads {
						nt, err := strconv.Atoi(th)
						if err != nil || nt < 1 {
							b.Fatalf("LRMF_BENCH_THREADS: %q is not a thread count", th)
						}
						name := fmt.Sprintf("path=%s/batch=%d/%s/%s", path, batch, solver, trace)
						if len(threads) > 1 || nt != 1 {
							name += "/threads=" + th
						}
						benchFFJORDVsTorch(b, name, path, batch, nt, model.FFJORDOptions{Blocks: 1, Solver: solver, Steps: 10, Trace: trace})
					}
				}
			}
		}
	}
}

// benchFFJORDVsTorch runs one configuration of BenchmarkFFJORDStepVsTorch.
func benchFFJORDVsTorch(b *testing.B, name, path string, batch, threads int, o model.FFJORDOptions) {
	b.Run(name, func(b *testing.B) {
		be, err := native.NewCPU(native.Float32, threads)
		if err != nil {
			b.Skip(err)
		}
		defer be.Close()
		if err := be.(native.ODEPather).SetODEPath(path); err != nil {
			b.Skip(err)
		}
		j := newModelJoint(b, be, batch, model.FFJORDFlow(o), model.FFJORDDensity(o))
		b.ReportMetric(timeSolverSteps(b, j).NFEPerRow(), "NFE/row")
	})
}

// timeSolverSteps is timeSteps for models with ODE solvers: it returns
// the flow's and the density's solver counts over the timed steps.
func timeSolverSteps(b *testing.B, j *jointState) model.SolverStats {
	stats := func() model.SolverStats {
		f, _ := model.SolverStatsOf(j.flow)
		d, _ := model.SolverStatsOf(j.dens)
		return f.Add(d)
	}
	var s0 model.SolverStats
	timeSteps(b, j, func() { s0 = stats() })
	return stats().Sub(s0)
}

// timeSteps takes one untimed joint step (it allocates the batch buffers
// and workspaces), calls each of warm, then times b.N steps, reporting
// allocations: the steady state is what is measured. It also reports the
// process's CPU time per step (cpu-ms/step, user + system, all threads):
// on a machine shared with other jobs a 1-thread step's CPU time is
// what it costs, where its wall time also counts the time it waited for
// a core.
func timeSteps(b *testing.B, j *jointState, warm ...func()) {
	p, err := j.grad(0)
	if err != nil {
		b.Fatal(err)
	}
	j.update(1, p)
	for _, f := range warm {
		f()
	}
	b.ReportAllocs()
	c0 := cpuTime()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		p, err := j.grad(i)
		if err != nil {
			b.Fatal(err)
		}
		j.update(i, p)
	}
	b.StopTimer()
	b.ReportMetric((cpuTime()-c0).Seconds()*1e3/float64(b.N), "cpu-ms/step")
}

// cpuTime returns the user + system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

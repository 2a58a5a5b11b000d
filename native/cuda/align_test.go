//go:build cuda

package cuda

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// alignCase is one lrmf.Align configuration of the smoke tests.
type alignCase struct {
	name            string
	flow, dens      model.ModelSpec
	fitSteps, steps int
}

var smallRealNVP = model.ModelSpec{Kind: "realnvp", Hidden: 16}

// alignCases: with a Gaussian density θA*, θB* are fitted in closed form and
// 300 joint steps stay comparable across backends. A Real NVP density is
// fitted by gradient steps, and that training is chaotic: on the moons,
// kernels that differ only in float32 summation order (the cpu backend's
// packed GEMM against a plain one) move c_AB by 0.18 nats after 300 fit
// steps, while after 50 fit steps and 100 joint steps the runs agree to
// 2e-7. So that case runs the short horizon.
var alignCases = []alignCase{
	{"affine-gaussian", model.ModelSpec{Kind: "affine"}, model.ModelSpec{Kind: "gaussian"}, 300, 300},
	{"realnvp-gaussian", smallRealNVP, model.ModelSpec{Kind: "gaussian"}, 300, 300},
	{"realnvp-realnvp", smallRealNVP, smallRealNVP, 50, 100},
}

func runAlign(t *testing.T, be native.Backend, c alignCase, p data.Pair) *lrmf.Result {
	t.Helper()
	res, err := lrmf.Align(context.Background(), p.A, p.B, lrmf.Config{
		Backend: be, Flow: c.flow, Density: c.dens, Steps: c.steps, LR: 0.01, Seed: 7,
		FitOptions: lrmf.FitOptions{FitSteps: c.fitSteps, Batch: 256},
	})
	if err != nil {
		t.Fatalf("%s: %v", be.Name(), err)
	}
	return res
}

// TestAlignMatchesCPU runs lrmf.Align on the moons pair on the cuda backend
// and on the float32 cpu backend with the same seed and configuration, and
// compares the final LRMF (and, with the closed-form Gaussian fit, the first
// joint step's mini-batch loss, which no training noise has touched yet).
// Both compute in float32 with different summation orders; the allowed
// difference is max(1e-3, 2·|cpu32 − cpu64|), the float32 noise the cpu
// backend itself shows against float64.
func TestAlignMatchesCPU(t *testing.T) {
	p := data.MoonsPair(2000, 0.05, 50, 1)
	for _, c := range alignCases {
		t.Run(c.name, func(t *testing.T) {
			gpu := newTestBackend(t)
			cpu32, err := native.NewCPU(native.Float32, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer cpu32.Close()
			cpu64, err := native.NewCPU(native.Float64, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer cpu64.Close()

			rg, r32, r64 := runAlign(t, gpu, c, p), runAlign(t, cpu32, c, p), runAlign(t, cpu64, c, p)
			noise := math.Abs(r32.LRMF - r64.LRMF)
			tol := math.Max(1e-3, 2*noise)
			t.Logf("%s: LRMF cuda %.6f, cpu/float32 %.6f, cpu/float64 %.6f (|cuda−cpu32| = %.2e, tolerance %.2e); %.3f ms/step on cuda",
				c.name, rg.LRMF, r32.LRMF, r64.LRMF, math.Abs(rg.LRMF-r32.LRMF), tol, rg.MsPerStep)
			if d := math.Abs(rg.LRMF - r32.LRMF); !(d <= tol) {
				t.Errorf("LRMF on cuda %.6f, on cpu/float32 %.6f: differ by %.2e > %.2e", rg.LRMF, r32.LRMF, d, tol)
			}
			if len(rg.History) == 0 || len(r32.History) == 0 {
				t.Fatal("no joint steps recorded")
			}
			if c.dens.Kind == "gaussian" {
				l0, c0 := rg.History[0].Loss, r32.History[0].Loss
				if d := math.Abs(l0 - c0); !(d <= 1e-4*math.Max(1, math.Abs(c0))) {
					t.Errorf("first joint-step loss on cuda %.8g, on cpu/float32 %.8g", l0, c0)
				}
			}
			if rg.Steps != r32.Steps {
				t.Errorf("cuda took %d joint steps, cpu %d", rg.Steps, r32.Steps)
			}
		})
	}
}

// fakeDevice is the device name of tests/gpu/fakecuda, the CPU stand-in
// driver whose launches run the cpu backend's own C kernels.
const fakeDevice = "fakecuda (CPU stand-in)"

// TestFakeDriverBitIdentical runs only on tests/gpu/fakecuda. There every
// launch computes with the same C entry points as the float32 cpu backend
// on one thread, so any difference in the results is a bug in this
// package's host logic (arguments, offsets, views, pool, copies, reads).
// The whole Align run, 300 fit and 300 joint steps included, must agree to
// the bit.
func TestFakeDriverBitIdentical(t *testing.T) {
	b := newTestBackend(t)
	if b.Device() != fakeDevice {
		t.Skip("runs on the fakecuda stand-in driver only")
	}
	p := data.MoonsPair(2000, 0.05, 50, 1)
	cpu32, err := native.NewCPU(native.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu32.Close()
	for _, c := range []alignCase{
		{"affine-gaussian", model.ModelSpec{Kind: "affine"}, model.ModelSpec{Kind: "gaussian"}, 300, 300},
		{"realnvp-realnvp", smallRealNVP, smallRealNVP, 300, 300},
	} {
		rg, rc := runAlign(t, b, c, p), runAlign(t, cpu32, c, p)
		if math.Float64bits(rg.LRMF) != math.Float64bits(rc.LRMF) || math.Float64bits(rg.CAB) != math.Float64bits(rc.CAB) {
			t.Errorf("%s: LRMF %v, c_AB %v on fakecuda; %v, %v on cpu", c.name, rg.LRMF, rg.CAB, rc.LRMF, rc.CAB)
		}
		for i := range min(len(rg.History), len(rc.History)) {
			if rg.History[i] != rc.History[i] {
				t.Errorf("%s: step %d: %+v on fakecuda, %+v on cpu", c.name, i+1, rg.History[i], rc.History[i])
				break
			}
		}
	}
}

// paperSpec is the LRMF paper's Real NVP (4 blocks of 2 × 512 ReLU).
var paperSpec = model.ModelSpec{Kind: "realnvp", Blocks: model.PaperRealNVP.Blocks, Hidden: model.PaperRealNVP.Hidden, Depth: model.PaperRealNVP.Depth}

// realNVPStepFlops is the multiply-add count (×2) of one joint step of Real
// NVP flow + Real NVP density on D = 2 (as in lrmf's BenchmarkRealNVPStep):
// each coupling network costs F per sample forward and 2F backward, for b
// samples through T and 2b through θS.
func realNVPStepFlops(o model.RealNVPOptions, b int) float64 {
	dc, dt := 1, 1
	f := 2 * float64(dc*o.Hidden+(o.Depth-1)*o.Hidden*o.Hidden+2*dt*o.Hidden)
	return 3 * f * float64(o.Blocks) * float64(3*b)
}

// stepTiming is what one timed Align measures over its steady-state steps.
type stepTiming struct {
	msPerStep float64
	perStep   Stats // counters per step (integer division)
	steps     int
}

// timeAlignSteps runs lrmf.Align with the paper's Real NVP as flow and
// density at the given batch, FitSteps 1, and warm+steps joint steps, and
// times the joint steps after the first warm ones. The times come from the
// Progress callback, which Align calls right after a step's gradient norms
// have been read back — a point where the device is idle — so the interval
// holds exactly `steps` gradient evaluations and Adam updates.
func timeAlignSteps(tb testing.TB, be *Backend, batch, warm, steps int) stepTiming {
	tb.Helper()
	p := data.MoonsPair(batch, 0.05, 50, 1)
	var t0, t1 time.Time
	var s0, s1 Stats
	cfg := lrmf.Config{
		Backend: be, Flow: paperSpec, Density: paperSpec,
		Steps: warm + steps, LR: 0.01, Seed: 1, ProgressEvery: warm,
		FitOptions: lrmf.FitOptions{FitSteps: 1, Batch: batch, Tol: 1e-300},
		Progress: func(pr lrmf.Progress) {
			if pr.Phase != "joint" || pr.Done {
				return
			}
			switch pr.Step {
			case warm:
				t0, s0 = time.Now(), be.Stats()
			case warm + steps:
				t1, s1 = time.Now(), be.Stats()
			}
		},
	}
	if steps%warm != 0 {
		tb.Fatalf("steps %d must be a multiple of warm %d", steps, warm)
	}
	res, err := lrmf.Align(context.Background(), p.A, p.B, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if t1.IsZero() || res.Steps != warm+steps {
		tb.Fatalf("Align took %d joint steps, want %d", res.Steps, warm+steps)
	}
	n := uint64(steps)
	return stepTiming{
		msPerStep: float64(t1.Sub(t0).Microseconds()) / 1000 / float64(steps),
		perStep: Stats{
			Kernels: (s1.Kernels - s0.Kernels) / n, Gemms: (s1.Gemms - s0.Gemms) / n,
			Copies: (s1.Copies - s0.Copies) / n, Syncs: (s1.Syncs - s0.Syncs) / n,
			Allocs: (s1.Allocs - s0.Allocs) / n,
		},
		steps: steps,
	}
}

// BenchmarkRealNVPStepCUDA times one LRMF joint step (T forward/backward on
// b rows, the Real NVP density forward/backward on 2b rows, gradient norms,
// clipping, Adam) with the paper's network at b = 2000 and 65536. One
// benchmark iteration is one Align run; the metrics are per step.
func BenchmarkRealNVPStepCUDA(b *testing.B) {
	for _, c := range []struct{ batch, warm, steps int }{{2000, 20, 200}, {65536, 5, 20}} {
		b.Run(fmt.Sprintf("batch=%d", c.batch), func(b *testing.B) {
			be := newTestBackend(b)
			var sum float64
			var last stepTiming
			for i := 0; i < b.N; i++ {
				last = timeAlignSteps(b, be, c.batch, c.warm, c.steps)
				sum += last.msPerStep
			}
			ms := sum / float64(b.N)
			b.ReportMetric(ms, "ms/step")
			b.ReportMetric(float64(last.perStep.Launches()), "launches/step")
			b.ReportMetric(float64(last.perStep.Kernels), "kernels/step")
			b.ReportMetric(float64(last.perStep.Gemms), "gemms/step")
			b.ReportMetric(float64(last.perStep.Syncs), "syncs/step")
			b.ReportMetric(float64(last.perStep.Copies), "copies/step")
			b.ReportMetric(float64(last.perStep.Allocs), "allocs/step")
			b.ReportMetric(realNVPStepFlops(model.PaperRealNVP, c.batch)/(ms/1000)/1e12, "TFLOP/s")
		})
	}
}

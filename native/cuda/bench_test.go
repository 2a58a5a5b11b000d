//go:build cuda

package cuda

import (
	"fmt"
	"testing"

	"github.com/lrmf-go/lrmf/native"
)

// BenchmarkGemm measures C = A·B in float32 on cuBLAS and on the fallback
// lrmf_k_gemm kernel: square 2048³ and 8192³, and the widest layer of the
// paper's Real NVP density at batch 65536 (2b = 131072 rows × 512 × 512).
func BenchmarkGemm(b *testing.B) {
	shapes := [][3]int{{2048, 2048, 2048}, {8192, 8192, 8192}, {131072, 512, 512}}
	for _, engine := range []string{"cublas", "kernel"} {
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			b.Run(fmt.Sprintf("%s/%dx%dx%d", engine, m, n, k), func(b *testing.B) {
				be := newTestBackend(b)
				if engine == "cublas" && be.blas == nil {
					b.Skip(be.GemmEngine())
				}
				be.SetGemmKernel(engine == "kernel")
				x, y, z := be.New(m, k), be.New(k, n), be.New(m, n)
				be.Fill(x, 0.5)
				be.Fill(y, 0.25)
				be.Gemm(false, false, 1, x, y, 0, z) // warm-up (cuBLAS picks its kernel)
				be.Synchronize()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					be.Gemm(false, false, 1, x, y, 0, z)
				}
				be.Synchronize()
				b.StopTimer()
				flops := 2 * float64(m) * float64(n) * float64(k) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e12, "TFLOP/s")
			})
		}
	}
}

// BenchmarkLaunch measures the host cost of one small kernel launch
// (Axpy on 256 elements) and of one Dot, which waits for its result.
func BenchmarkLaunch(b *testing.B) {
	be := newTestBackend(b)
	x, y := be.New(256, 1), be.New(256, 1)
	b.Run("Axpy", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			be.Axpy(1e-3, x, y)
		}
		be.Synchronize()
	})
	b.Run("Dot", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			be.Dot(x, y)
		}
	})
}

// BenchmarkODE times FFJORD on the GPU with the paper's dynamics
// [3, 16, 16, 16, 2] at batch 2000 and 65536, with the exact trace and
// with Hutchinson's estimator (one Rademacher probe per row):
//   - rk4: a recorded 10-step RK4 solve and its backward pass (ms per
//     solve + backward; 40 f evaluations forward, 70 + 40 VJPs backward,
//     per row);
//   - dopri5: a recorded Dormand–Prince solve (atol = rtol = 1e-5) and its
//     backward pass, with the forward's f evaluations and accepted steps
//     per row (nfe/row, steps/row).
func BenchmarkODE(b *testing.B) {
	benchODESolves(b, odePaperDims, []int{2000, 65536}, 1, 100)
}

// BenchmarkODEBatched times FFJORD beyond the row kernels' frame, on the
// batched path (native.BatchedODE: cuBLAS GEMMs over all rows and
// directions of a stage): dynamics [33, 64, 64, 64, 32] (D = 32, the
// digit embeddings' size) at batch 256 and 2000, exact trace (32
// directions) and one Hutchinson probe, a recorded RK4(10) solve and its
// backward (ms per solve + backward), and a recorded Dormand–Prince solve
// (atol = rtol = 1e-5) and its backward.
func BenchmarkODEBatched(b *testing.B) {
	// θ at the scale of a Glorot initialisation of these widths.
	benchODESolves(b, []int{33, 64, 64, 64, 32}, []int{256, 2000}, 0.2, 200)
}

// benchODESolves runs BenchmarkODE's and BenchmarkODEBatched's cases:
// dynamics dims at each batch size, exact trace and one Hutchinson probe,
// a recorded RK4(10) solve and its backward, and a recorded Dormand–Prince
// solve (atol = rtol = 1e-5, at most maxSteps steps) and its backward,
// with θ from newODEInputs times thetaScale (1: as drawn).
func benchODESolves(b *testing.B, dims, batches []int, thetaScale float64, maxSteps int) {
	d, np := dims[len(dims)-1], native.ODENumParams(dims)
	for _, solver := range []string{"rk4", "dopri5"} {
		for _, n := range batches {
			for _, k := range []int{0, 1} {
				trace := "exact"
				if k > 0 {
					trace = "hutchinson"
				}
				b.Run(fmt.Sprintf("%s/batch=%d/%s", solver, n, trace), func(b *testing.B) {
					be := newTestBackend(b)
					in := newODEInputs(be, dims, n, k, 3)
					if thetaScale != 1 {
						x := make([]float64, np)
						be.Download(x, in.theta)
						for i := range x {
							x[i] *= thetaScale
						}
						be.Upload(in.theta, x)
					}
					z1, ld, gz, gth := be.New(n, d), be.New(n, 1), be.New(n, d), be.New(1, np)
					opt := native.Dopri5Options{Atol: 1e-5, Rtol: 1e-5, H0: 0.05, MaxSteps: maxSteps}
					var tape native.ODETape
					var fwd native.ODEStats
					step := func() {
						if solver == "rk4" {
							fwd = be.ODESolveRK4Record(&tape, z1, ld, in.z0, in.theta, in.eps, dims, 0, 1, 10)
							be.ODESolveRK4Backward(gz, gth, in.a1, in.ald, in.theta, in.eps, dims, &tape)
							return
						}
						var err error
						if fwd, err = be.ODESolveDopri5Record(&tape, z1, ld, in.z0, in.theta, in.eps, dims, 0, 1, opt); err != nil {
							b.Fatal(err)
						}
						be.ODESolveDopri5Backward(gz, gth, in.a1, in.ald, in.theta, in.eps, dims, &tape)
					}
					step() // warm-up: buffers grow, the module's kernels load
					be.Synchronize()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						step()
					}
					be.Synchronize()
					b.StopTimer()
					b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/solve+bwd")
					b.ReportMetric(float64(fwd.NFE)/float64(n), "nfe/row")
					b.ReportMetric(float64(fwd.Accepted)/float64(n), "steps/row")
				})
			}
		}
	}
}

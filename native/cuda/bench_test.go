//go:build cuda

package cuda

import (
	"fmt"
	"testing"
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

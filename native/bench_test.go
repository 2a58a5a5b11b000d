package native_test

import (
	"fmt"
	"testing"

	"github.com/lrmf-go/lrmf/native"
)

// BenchmarkGemm reports the CPU backend's GEMM rate (2mnk flops per call)
// for C = A·B with row-major operands.
func BenchmarkGemm(b *testing.B) {
	shapes := [][3]int{{256, 256, 256}, {1024, 1024, 1024}, {2000, 512, 512}}
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		for _, threads := range []int{1, 2} {
			for _, s := range shapes {
				m, n, k := s[0], s[1], s[2]
				b.Run(fmt.Sprintf("%v/threads=%d/%dx%dx%d", dt, threads, m, n, k), func(b *testing.B) {
					be, err := native.NewCPU(dt, threads)
					if err != nil {
						b.Skip(err)
					}
					defer be.Close()
					x, y, z := be.New(m, k), be.New(k, n), be.New(m, n)
					be.Fill(x, 0.5)
					be.Fill(y, 0.25)
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						be.Gemm(false, false, 1, x, y, 0, z)
					}
					b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

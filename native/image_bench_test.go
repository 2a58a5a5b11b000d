package native_test

import (
	"fmt"
	"testing"

	"github.com/lrmf-go/lrmf/native"
)

// BenchmarkConv2D measures one 3×3 edge-padded convolution forward + input
// gradient + weight gradient (the coupling network's first layer) at
// cin = cout = F, and the three GEMMs of the same sizes on operands already
// in place (the "GEMM floor": what im2col, the weight flip and the chunking
// cost on top). GFLOP/s counts 2·np·K·cout per product, K = 9·(F+1) forward
// and weight gradient, 9·F input gradient; both report the same flop
// count per iteration, so the ratio of their rates is the efficiency.
func BenchmarkConv2D(b *testing.B) {
	for _, s := range []struct{ n, hw, f int }{{4, 16, 512}, {16, 8, 64}} {
		for _, dt := range []native.DType{native.Float32} {
			for _, threads := range []int{1, 2} {
				g := native.ConvGeom{N: s.n, H: s.hw, W: s.hw, K: 3, Edge: true}
				np, f := g.Pixels(), s.f
				kf, kb := 9*(f+1), 9*f
				flops := 2 * float64(np) * float64(f) * float64(kf+kb+kf)
				name := fmt.Sprintf("%v/threads=%d/np=%d/F=%d", dt, threads, np, f)
				b.Run("conv/"+name, func(b *testing.B) {
					be, err := native.NewCPU(dt, threads)
					if err != nil {
						b.Skip(err)
					}
					defer be.Close()
					ib := be.(native.ImageBackend)
					x, y, dx, wt, dw := be.New(np, f), be.New(np, f), be.New(np, f), be.New(kf, f), be.New(kf, f)
					be.Fill(x, 0.5)
					be.Fill(wt, 0.01)
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						ib.Conv2D(y, x, wt, g)
						ib.Conv2DBackwardData(dx, y, wt, g)
						ib.Conv2DBackwardFilter(dw, x, y, g)
					}
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
				b.Run("gemm/"+name, func(b *testing.B) {
					be, err := native.NewCPU(dt, threads)
					if err != nil {
						b.Skip(err)
					}
					defer be.Close()
					cols, wt, y := be.New(np, kf), be.New(kf, f), be.New(np, f)
					colsB, wf, dx := be.New(np, kb), be.New(kb, f), be.New(np, f)
					dw := be.New(kf, f)
					be.Fill(cols, 0.5)
					be.Fill(wt, 0.01)
					be.Fill(colsB, 0.5)
					be.Fill(wf, 0.01)
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						be.Gemm(false, false, 1, cols, wt, 0, y)
						be.Gemm(false, false, 1, colsB, wf, 0, dx)
						be.Gemm(true, false, 1, cols, y, 0, dw)
					}
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

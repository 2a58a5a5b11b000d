//go:build cuda

package cuda

import (
	"fmt"
	"testing"
	"time"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/model/modeltest"
)

// BenchmarkGLOWImageStepCUDA times one GLOW density training step on
// 32×32×1 images at batch 64 (issue #13): LogProb and Backward (the
// gradient of −mean ln p with respect to every parameter), as
// lrmf/model's BenchmarkGLOWImageDensityStep does on the CPU and
// tests/gpu/torch_glow.py does in PyTorch eager. Sizes: the CPU default
// (L = 3 × K = 4 × F = 32) and the paper's (3 × 8 × 512). One benchmark
// iteration is warm-up steps, a synchronize, then timed steps and a
// second synchronize; the metrics are per step.
func BenchmarkGLOWImageStepCUDA(b *testing.B) {
	for _, c := range []struct {
		name        string
		o           model.GLOWOptions
		warm, steps int
	}{
		{"default", model.GLOWOptions{}, 5, 50},
		{"paper", model.PaperGLOW, 3, 20},
	} {
		b.Run(fmt.Sprintf("size=%s/batch=64", c.name), func(b *testing.B) {
			be := newTestBackend(b)
			step := modeltest.GLOWDensityStep(b, be, c.o, 64)
			var ms float64
			var per Stats
			for i := 0; i < b.N; i++ {
				for k := 0; k < c.warm; k++ {
					step()
				}
				be.Synchronize()
				t0, s0 := time.Now(), be.Stats()
				for k := 0; k < c.steps; k++ {
					step()
				}
				be.Synchronize()
				s1 := be.Stats()
				ms += float64(time.Since(t0).Microseconds()) / 1000 / float64(c.steps)
				m := uint64(c.steps)
				per = Stats{Kernels: (s1.Kernels - s0.Kernels) / m, Gemms: (s1.Gemms - s0.Gemms) / m,
					Copies: (s1.Copies - s0.Copies) / m, Syncs: (s1.Syncs - s0.Syncs) / m, Allocs: (s1.Allocs - s0.Allocs) / m}
			}
			b.ReportMetric(ms/float64(b.N), "ms/step")
			b.ReportMetric(float64(per.Launches()), "launches/step")
			b.ReportMetric(float64(per.Copies), "copies/step")
			b.ReportMetric(float64(per.Syncs), "syncs/step")
			b.ReportMetric(float64(per.Allocs), "allocs/step")
		})
	}
}

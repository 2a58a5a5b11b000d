package model_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/model/modeltest"
	"github.com/lrmf-go/lrmf/native"
)

// One density training step (LogProb + Backward) on 512 rows of D = 10, the
// digits experiment's fit batch, float32 on 2 cpu threads.
func benchDensityStep(b *testing.B, mk model.DensityMaker) {
	be, err := native.NewCPU(native.Float32, 2)
	if err != nil {
		b.Skip(err)
	}
	defer be.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	p, err := mk(be, 10, rng)
	if err != nil {
		b.Fatal(err)
	}
	x := modeltest.Rand(be, rng, 512, 10, 2)
	logp, w := be.New(512, 1), be.New(512, 1)
	be.Fill(w, -1.0/512)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.LogProb(logp, x); err != nil {
			b.Fatal(err)
		}
		if err := p.Backward(nil, w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGlowDensityStep(b *testing.B) {
	benchDensityStep(b, model.GlowDensity(model.GlowOptions{}))
}

func BenchmarkRealNVPDensityStep(b *testing.B) {
	benchDensityStep(b, model.RealNVPDensity(model.RealNVPOptions{}))
}

// One GLOW density training step (LogProb + Backward) on a batch of 64
// 32×32×1 images, the CPU default network (L = 3 × K = 4 × F = 32), float32
// on 1 and 2 cpu threads; tests/gpu/torch_glow.py is its PyTorch eager twin.
func BenchmarkGLOWImageDensityStep(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			be, err := native.NewCPU(native.Float32, threads)
			if err != nil {
				b.Skip(err)
			}
			defer be.Close()
			step := modeltest.GLOWDensityStep(b, be, model.GLOWOptions{}, 64)
			step() // the kernels' scratch grows on the first step
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
		})
	}
}

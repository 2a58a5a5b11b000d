package embed

import (
	"math/rand/v2"
	"testing"

	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/native"
)

// BenchmarkSharedDigits fits the shared PCA of the digits experiment: 2000
// MNIST training digits resized to 16×16 and 2000 USPS-style digits, 256
// input columns, D = 32.
func BenchmarkSharedDigits(b *testing.B) {
	dir, err := data.MNISTDir()
	if err != nil {
		b.Fatal(err)
	}
	train, err := data.LoadMNIST(dir, data.MNISTTrain)
	if err != nil {
		b.Fatal(err)
	}
	test, err := data.LoadMNIST(dir, data.MNISTTest)
	if err != nil {
		b.Fatal(err)
	}
	ua, la := data.USPSStyle(test.Head(2000))
	mb := train.Head(2000)
	for b.Loop() {
		if _, err := Shared(Set{ua, la}, Set{mb.Resized(data.USPSSide), mb.Labels}, 32); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAutoencoderStep times one training step of the digits
// autoencoder at its defaults (256 → 256 → 256 → D = 10 and back, batch
// 128) on the default backend in float32 with 2 threads.
func BenchmarkAutoencoderStep(b *testing.B) {
	be, err := native.Open(native.DefaultBackend(), native.Float32, 2)
	if err != nil {
		b.Skip(err) // the ref backend computes in float64 only
	}
	defer be.Close()
	x := unitData(rand.New(rand.NewPCG(1, 2)), 4000, 256)
	tr, err := newAETrainer(be, x, AutoencoderConfig{Dim: 10}.withDefaults(4000))
	if err != nil {
		b.Fatal(err)
	}
	tr.step(1e-3)
	b.ReportAllocs()
	for b.Loop() {
		tr.step(1e-3)
	}
}

package embed

import (
	"testing"

	"github.com/lrmf-go/lrmf/lrmf/data"
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

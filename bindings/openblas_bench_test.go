//go:build openblas && cgo

package bindings_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/lrmf-go/lrmf/bindings"
)

// BenchmarkOpenBLAS runs the system OpenBLAS on BenchmarkGemmWS's shapes,
// with its thread pool at 1 and 2 threads, so that
//
//	go test -tags openblas -run XXX -bench 'GemmWS|OpenBLAS' ./bindings/
//
// prints both side by side (apt-get install libopenblas-dev). The default
// build neither needs nor links OpenBLAS. OPENBLAS_CORETYPE is left as the
// environment sets it; the kernel OpenBLAS picked is printed as a benchstat
// configuration line ("openblas-core: Haswell").
func BenchmarkOpenBLAS(b *testing.B) {
	printCore.Do(func() { fmt.Printf("openblas-core: %s\n", bindings.OpenBLASCore()) })
	for _, sh := range gemmBenchShapes {
		m, n, k := sh[0], sh[1], sh[2]
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("f32/%dx%dx%d/%dT", m, n, k, threads), func(b *testing.B) { benchOpenBLAS[float32](b, m, n, k, threads) })
			b.Run(fmt.Sprintf("f64/%dx%dx%d/%dT", m, n, k, threads), func(b *testing.B) { benchOpenBLAS[float64](b, m, n, k, threads) })
		}
	}
}

var printCore sync.Once

func benchOpenBLAS[T bindings.Float](b *testing.B, m, n, k, threads int) {
	a, bm, c := gemmBenchInputs[T](m, n, k)
	bindings.OpenBLASSetThreads(threads)
	defer bindings.OpenBLASSetThreads(1)
	for b.Loop() {
		bindings.OpenBLASGemm(false, false, m, n, k, 1, a, k, bm, n, 0, c, n)
	}
	reportGflops(b, m, n, k)
}

//go:build cgo

package bindings_test

import (
	"errors"
	"fmt"
	"github.com/lrmf-go/lrmf/internal/sanitize"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/lrmf-go/lrmf/bindings"
	"github.com/lrmf-go/lrmf/internal/testseed"
)

// gemmCase is one m×n×k product: random op(A) (m×k) and op(B) (k×n) with
// their float64 product, computed once and laid out for every transpose.
type gemmCase struct {
	m, n, k  int
	opA, opB []float64 // row-major m×k and k×n
	prod     []float64 // opA·opB, m×n
	absProd  []float64 // Σ_p |opA[i,p]·opB[p,j]|, the scale of rounding errors
}

func newGemmCase[T bindings.Float](rng *rand.Rand, m, n, k int) *gemmCase {
	g := &gemmCase{m: m, n: n, k: k}
	g.opA = make([]float64, m*k)
	g.opB = make([]float64, k*n)
	// Values rounded to T, so the reference sees exactly what the kernel sees.
	for i := range g.opA {
		g.opA[i] = float64(T(rng.Float64()*2 - 1))
	}
	for i := range g.opB {
		g.opB[i] = float64(T(rng.Float64()*2 - 1))
	}
	g.prod = make([]float64, m*n)
	g.absProd = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			a := g.opA[i*k+p]
			for j := 0; j < n; j++ {
				v := a * g.opB[p*n+j]
				g.prod[i*n+j] += v
				g.absProd[i*n+j] += math.Abs(v)
			}
		}
	}
	return g
}

// layout stores the rows×cols matrix x (row-major) as T with leading
// dimension ld, transposed when trans; padding is filled with pad.
func layout[T bindings.Float](x []float64, rows, cols int, trans bool, ld int, pad float64) []T {
	sr := rows
	if trans {
		sr = cols
	}
	out := make([]T, sr*ld)
	for i := range out {
		out[i] = T(pad)
	}
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if trans {
				out[j*ld+i] = T(x[i*cols+j])
			} else {
				out[i*ld+j] = T(x[i*cols+j])
			}
		}
	}
	return out
}

func gemmTol[T bindings.Float](k int) float64 {
	var z T
	if any(z) == any(float32(0)) {
		return 1e-5 * math.Sqrt(float64(max(k, 1)))
	}
	return 1e-12
}

const gemmSentinel = 12345

// gemmShapes straddle the kernel's tile (12×32 f32, 12×16 f64; 6×16 and
// 6×8 for AVX2), its short-panel copies (1, 2, 4 rows), the skinny path
// (n ≤ 12, or 6 for AVX2) and the block sizes (MC 144/72, KC 512,
// NC 1024/512; 24×64×160 or 24×64×64 for Gemm's stack path), and include
// the benchmark-like tall case.
var gemmShapes = [][3]int{
	{1, 1, 1}, {3, 5, 7}, {2, 3, 0}, {1, 40, 9}, {40, 1, 9},
	{11, 31, 3}, {12, 32, 1}, {13, 33, 2}, {25, 17, 65},
	{37, 7, 600}, {100, 12, 1030}, {70, 13, 40}, {4, 300, 520}, {3, 64, 256},
	{37, 131, 70}, {73, 47, 129}, {145, 67, 513}, {143, 1025, 30},
	{50, 513, 1025}, {256, 256, 256}, {2000, 512, 64},
}

type gemmFn[T bindings.Float] func(ta, tb bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) error

func testGemmWS[T bindings.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 11))
	var work []T
	fns := map[string]gemmFn[T]{
		"GemmWS": func(ta, tb bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) error {
			return bindings.GemmWS(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, work)
		},
		"Gemm": bindings.Gemm[T],
	}
	type ab struct{ alpha, beta float64 }
	params := []ab{{1, 0}, {1.3, 1}, {-0.6, -0.7}, {0.5, 0}}
	for _, sh := range gemmShapes {
		m, n, k := sh[0], sh[1], sh[2]
		if testing.Short() && m*n*k > 1<<22 {
			continue
		}
		g := newGemmCase[T](rng, m, n, k)
		// Exactly GemmWorkLen elements, not aligned to a cache line.
		need := bindings.GemmWorkLen[T](m, n, k)
		work = make([]T, need+1)[1:]
		c0 := make([]float64, m*n)
		for i := range c0 {
			c0[i] = rng.Float64()*2 - 1
		}
		for ti := 0; ti < 4; ti++ {
			ta, tb := ti&1 != 0, ti&2 != 0
			ac, bc := k, n
			if ta {
				ac = m
			}
			if tb {
				bc = k
			}
			lda, ldb, ldc := ac+3, bc+1, n+2
			// Padding of A and B is NaN: reading it would show.
			a := layout[T](g.opA, m, k, ta, lda, math.NaN())
			b := layout[T](g.opB, k, n, tb, ldb, math.NaN())
			for _, p := range params {
				for name, fn := range fns {
					var c []T
					if p.beta == 0 {
						c = layout[T](nanMat(m, n), m, n, false, ldc, gemmSentinel)
					} else {
						c = layout[T](c0, m, n, false, ldc, gemmSentinel)
					}
					err := fn(ta, tb, m, n, k, T(p.alpha), a, lda, b, ldb, T(p.beta), c, ldc)
					if err != nil {
						t.Fatalf("%s %dx%dx%d ta=%v tb=%v: %v", name, m, n, k, ta, tb, err)
					}
					tol := gemmTol[T](k)
					bad := 0
					for i := 0; i < m && bad < 3; i++ {
						for j := 0; j < ldc; j++ {
							got := float64(c[i*ldc+j])
							if j >= n {
								if got != gemmSentinel {
									t.Errorf("%s %dx%dx%d: padding C[%d,%d] = %v written", name, m, n, k, i, j, got)
									bad++
								}
								continue
							}
							want := p.alpha * g.prod[i*n+j]
							scale := math.Abs(p.alpha)*g.absProd[i*n+j] + 1
							if p.beta != 0 {
								cv := float64(T(c0[i*n+j]))
								want += p.beta * cv
								scale += math.Abs(p.beta * cv)
							}
							if !(math.Abs(got-want) <= tol*scale) {
								t.Errorf("%s %dx%dx%d ta=%v tb=%v alpha=%v beta=%v: C[%d,%d] = %v, want %v",
									name, m, n, k, ta, tb, p.alpha, p.beta, i, j, got, want)
								bad++
								break
							}
						}
					}
				}
			}
		}
	}
}

func nanMat(m, n int) []float64 {
	x := make([]float64, m*n)
	for i := range x {
		x[i] = math.NaN()
	}
	return x
}

func TestGemmWS(t *testing.T) { both(t, testGemmWS[float32], testGemmWS[float64]) }

func testGemmWSErrors[T bindings.Float](t *testing.T) {
	const m, n, k = 40, 50, 60
	a, b, c := make([]T, m*k), make([]T, k*n), make([]T, m*n)
	need := bindings.GemmWorkLen[T](m, n, k)
	if need <= 0 {
		t.Fatalf("GemmWorkLen(%d, %d, %d) = %d", m, n, k, need)
	}
	for _, work := range [][]T{nil, make([]T, need-1)} {
		err := bindings.GemmWS(false, false, m, n, k, 1, a, k, b, n, 0, c, n, work)
		var e *bindings.Error
		if !errors.As(err, &e) || e.Op != "GemmWS" {
			t.Errorf("len(work) = %d: err = %v, want *bindings.Error from GemmWS", len(work), err)
		}
	}
	// Argument errors come first, with Gemm's checks and the same type.
	cases := []struct {
		name string
		err  error
	}{
		{"m<0", bindings.GemmWS(false, false, -1, n, k, 1, a, k, b, n, 0, c, n, nil)},
		{"lda", bindings.GemmWS(false, false, m, n, k, 1, a, k-1, b, n, 0, c, n, nil)},
		{"ldb", bindings.GemmWS(false, true, m, n, k, 1, a, k, b, n, 0, c, n, nil)},
		{"len(c)", bindings.GemmWS(false, false, m, n, k, 1, a, k, b, n, 0, c[:len(c)-1], n, make([]T, need))},
	}
	for _, tc := range cases {
		var e *bindings.Error
		if !errors.As(tc.err, &e) {
			t.Errorf("%s: err = %v, want *bindings.Error", tc.name, tc.err)
		}
	}
	// Empty C needs no work; k == 0 needs none and gives C = beta·C.
	if err := bindings.GemmWS[T](false, false, 0, n, k, 1, nil, k, b, n, 0, nil, n, nil); err != nil {
		t.Errorf("m = 0: %v", err)
	}
	c[0], c[1] = 2, T(math.NaN())
	if err := bindings.GemmWS[T](false, false, m, n, 0, 1, nil, 0, nil, n, 0.5, c, n, nil); err != nil || c[0] != 1 {
		t.Errorf("k = 0: err = %v, c[0] = %v, want nil, 1", err, c[0])
	}
	if err := bindings.GemmWS[T](false, false, m, n, 0, 1, nil, 0, nil, n, 0, c, n, nil); err != nil || c[1] != 0 {
		t.Errorf("k = 0, beta = 0: err = %v, c[1] = %v, want nil, 0", err, c[1])
	}
	// The workspace is bounded by the block sizes, not by m·n·k.
	if w, w2 := bindings.GemmWorkLen[T](1<<20, 1<<20, 1<<20), bindings.GemmWorkLen[T](1<<21, 1<<21, 1<<21); w != w2 || w > 1<<21 {
		t.Errorf("GemmWorkLen of huge sizes = %d, %d; want equal and at most 2^21", w, w2)
	}
	if bindings.GemmWorkLen[T](-1, 2, 3) != 0 || bindings.GemmWorkLen[T](5, 0, 3) != 0 {
		t.Errorf("GemmWorkLen of empty or negative sizes is not 0")
	}
}

func TestGemmWSErrors(t *testing.T) { both(t, testGemmWSErrors[float32], testGemmWSErrors[float64]) }

// Row blocks computed by separate goroutines, the way the CPU backend
// splits C, give exactly the single-call result (the path taken depends on
// n, k and the CPU only, and rows never mix).
func testGemmWSSplit[T bindings.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 5))
	const m, k = 301, 600
	for ti := 0; ti < 8; ti++ {
		ta, tb := ti&1 != 0, ti&2 != 0
		n := 97 // the blocked kernel
		if ti&4 != 0 {
			n = 5 // the skinny path
		}
		g := newGemmCase[T](rng, m, n, k)
		lda, ldb := k, n
		if ta {
			lda = m
		}
		if tb {
			ldb = k
		}
		a := layout[T](g.opA, m, k, ta, lda, 0)
		b := layout[T](g.opB, k, n, tb, ldb, 0)
		c0 := make([]T, m*n)
		for i := range c0 {
			c0[i] = T(rng.Float64())
		}
		whole := append([]T(nil), c0...)
		if err := bindings.GemmWS(ta, tb, m, n, k, 0.7, a, lda, b, ldb, -1.3, whole, n, make([]T, bindings.GemmWorkLen[T](m, n, k))); err != nil {
			t.Fatal(err)
		}
		split := append([]T(nil), c0...)
		bounds := []int{0, 100, 157, m}
		var wg sync.WaitGroup
		errs := make([]error, len(bounds)-1)
		for i := 0; i+1 < len(bounds); i++ {
			lo, hi := bounds[i], bounds[i+1]
			wg.Add(1)
			go func() {
				defer wg.Done()
				ai := a[lo*lda:]
				if ta {
					ai = a[lo:]
				}
				work := make([]T, bindings.GemmWorkLen[T](hi-lo, n, k))
				errs[i] = bindings.GemmWS(ta, tb, hi-lo, n, k, 0.7, ai, lda, b, ldb, -1.3, split[lo*n:hi*n], n, work)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range whole {
			if whole[i] != split[i] {
				t.Fatalf("n=%d ta=%v tb=%v: C[%d] = %v split, %v whole", n, ta, tb, i, split[i], whole[i])
			}
		}
	}
}

func TestGemmWSSplit(t *testing.T) { both(t, testGemmWSSplit[float32], testGemmWSSplit[float64]) }

func testGemmWSAllocs[T bindings.Float](t *testing.T) {
	sanitize.SkipAllocationCounts(t)
	const m, n, k = 33, 65, 70
	a, b, c := make([]T, m*k), make([]T, k*n), make([]T, m*n)
	work := make([]T, bindings.GemmWorkLen[T](m, n, k))
	allocs := testing.AllocsPerRun(100, func() {
		_ = bindings.GemmWorkLen[T](m, n, k)
		if err := bindings.GemmWS(true, true, m, n, k, 1, a, m, b, k, 0.5, c, n, work); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Errorf("GemmWS allocates %v times per call", allocs)
	}
}

func TestGemmWSAllocs(t *testing.T) { both(t, testGemmWSAllocs[float32], testGemmWSAllocs[float64]) }

// ---- benchmarks --------------------------------------------------------------

// gemmBenchShapes are the sizes BenchmarkGemmWS and the OpenBLAS benchmark
// (openblas_bench_test.go) share.
var gemmBenchShapes = [][3]int{{256, 256, 256}, {1024, 1024, 1024}, {2000, 512, 512}}

func gemmBenchInputs[T bindings.Float](m, n, k int) (a, b, c []T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a, b, c = make([]T, m*k), make([]T, k*n), make([]T, m*n)
	for i := range a {
		a[i] = T(rng.Float64() - 0.5)
	}
	for i := range b {
		b[i] = T(rng.Float64() - 0.5)
	}
	return a, b, c
}

func reportGflops(b *testing.B, m, n, k int) {
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()*1e-9, "GFLOP/s")
}

func benchGemmWS[T bindings.Float](b *testing.B, m, n, k, threads int) {
	a, bm, c := gemmBenchInputs[T](m, n, k)
	// Rows of C split into equal blocks, one goroutine and work slice each.
	type part struct {
		lo, hi int
		work   []T
	}
	parts := make([]part, threads)
	for t := range parts {
		lo, hi := m*t/threads, m*(t+1)/threads
		parts[t] = part{lo, hi, make([]T, bindings.GemmWorkLen[T](hi-lo, n, k))}
	}
	run := func(p part) {
		if err := bindings.GemmWS(false, false, p.hi-p.lo, n, k, 1, a[p.lo*k:], k, bm, n, 0, c[p.lo*n:], n, p.work); err != nil {
			panic(err)
		}
	}
	for b.Loop() {
		if threads == 1 {
			run(parts[0])
			continue
		}
		var wg sync.WaitGroup
		for _, p := range parts {
			wg.Go(func() { run(p) })
		}
		wg.Wait()
	}
	reportGflops(b, m, n, k)
}

// BenchmarkGemmWS: go test -run XXX -bench GemmWS ./bindings/ (add
// -tags openblas for OpenBLAS's numbers on the same shapes).
func BenchmarkGemmWS(b *testing.B) {
	for _, sh := range gemmBenchShapes {
		m, n, k := sh[0], sh[1], sh[2]
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("f32/%dx%dx%d/%dT", m, n, k, threads), func(b *testing.B) { benchGemmWS[float32](b, m, n, k, threads) })
			b.Run(fmt.Sprintf("f64/%dx%dx%d/%dT", m, n, k, threads), func(b *testing.B) { benchGemmWS[float64](b, m, n, k, threads) })
		}
	}
}

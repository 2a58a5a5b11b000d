//go:build cuda

package cuda

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/lrmf-go/lrmf/native"
	"github.com/lrmf-go/lrmf/native/nativetest"
)

// newTestBackend opens a backend for one test and closes it at the end.
func newTestBackend(tb testing.TB) *Backend {
	tb.Helper()
	be, err := New(0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(be.Close)
	b := be.(*Backend)
	tb.Logf("device %s, GEMM engine %s", b.Device(), b.GemmEngine())
	return b
}

// TestConformance runs the native conformance suite (float32 tolerance)
// with cuBLAS and with the fallback GEMM kernel.
func TestConformance(t *testing.T) {
	b := newTestBackend(t)
	nativetest.Run(t, b)
	t.Run("GemmKernel", func(t *testing.T) {
		b := newTestBackend(t)
		b.SetGemmKernel(true)
		nativetest.Run(t, b)
	})
}

func TestRegistered(t *testing.T) {
	be, err := native.Open("cuda", native.Float32, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if be.Name() != "cuda" || be.DType() != native.Float32 {
		t.Fatalf("Open(cuda) gave %s/%v", be.Name(), be.DType())
	}
	if _, err := native.Open("cuda", native.Float64, 0); err == nil {
		t.Fatal("Open(cuda, float64) succeeded; the backend is float32 only")
	}
}

// panicMessage returns what f panics with ("" if it does not).
func panicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// Shape errors panic with the same message as on the cpu backend.
func TestShapePanicsMatchCPU(t *testing.T) {
	gpu := newTestBackend(t)
	cpu, err := native.NewCPU(native.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	calls := map[string]func(be native.Backend){
		"Axpy": func(be native.Backend) { be.Axpy(1, be.New(3, 1), be.New(4, 1)) },
		"Mul":  func(be native.Backend) { be.Mul(be.New(3, 2), be.New(3, 2), be.New(2, 3)) },
		"Gemm": func(be native.Backend) { be.Gemm(false, false, 1, be.New(2, 3), be.New(4, 2), 0, be.New(2, 2)) },
		"View": func(be native.Backend) { be.View(be.New(3, 2), 2, 5) },
		"Gauss": func(be native.Backend) {
			be.GaussLogProb(be.New(5, 1), be.New(5, 2), be.New(5, 2), be.New(1, 3), be.New(2, 2), 0)
		},
		"Gather": func(be native.Backend) {
			be.GatherRows(be.New(2, 2), be.New(3, 2), []int32{0, 3})
		},
		"Coupling": func(be native.Backend) {
			be.CouplingForward(be.New(4, 2), nil, be.New(4, 2), be.New(4, 3), 0, native.Scale{Kind: native.ScaleExp, Bound: 1})
		},
		"Upload": func(be native.Backend) { be.Upload(be.New(2, 2), make([]float64, 3)) },
	}
	for name, call := range calls {
		want := panicMessage(func() { call(cpu) })
		got := panicMessage(func() { call(gpu) })
		if want == "" || got != want {
			t.Errorf("%s: cuda panics with %q, cpu with %q", name, got, want)
		}
	}
}

// Empty tensors, k = 0 products and views at an offset.
func TestEdgeCases(t *testing.T) {
	b := newTestBackend(t)
	e := b.New(0, 3)
	b.Fill(e, 1)
	if s := b.Sum(e); s != 0 {
		t.Errorf("Sum of an empty tensor = %v", s)
	}
	b.Download(nil, e)
	// k = 0: C = beta·C (cuBLAS needs k ≥ 1; the kernel takes it).
	c := b.New(2, 3)
	b.Fill(c, 2)
	b.Gemm(false, false, 1, b.New(2, 0), b.New(0, 3), 0.5, c)
	got := make([]float64, 6)
	b.Download(got, c)
	for i, v := range got {
		if v != 1 {
			t.Fatalf("Gemm with k = 0, beta = 0.5: C[%d] = %v, want 1", i, v)
		}
	}
	// A product on views that start inside their buffers.
	x := b.New(5, 2)
	b.Upload(x, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	y := b.New(2, 1)
	b.Upload(y, []float64{1, -1})
	out := b.New(2, 1)
	b.Gemm(false, false, 1, b.View(x, 2, 4), y, 0, out)
	got = got[:2]
	b.Download(got, out)
	if got[0] != -1 || got[1] != -1 {
		t.Fatalf("Gemm on rows [2, 4): %v, want [-1 -1]", got)
	}
}

// Calls from another goroutine (another OS thread) make the context
// current there.
func TestOtherGoroutine(t *testing.T) {
	b := newTestBackend(t)
	x := b.New(1000, 1)
	b.Fill(x, 1)
	done := make(chan float64)
	go func() { done <- b.Sum(x) }()
	if s := <-done; s != 1000 {
		t.Fatalf("Sum from another goroutine = %v, want 1000", s)
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	be, err := New(0)
	if err != nil {
		t.Fatal(err)
	}
	x := be.New(4, 4)
	be.Close()
	be.Close()
	if msg := panicMessage(func() { be.Fill(x, 1) }); msg == "" {
		t.Fatal("Fill after Close did not panic")
	}
}

// Dropped tensors return their blocks to the pool: making and dropping the
// same shapes again does not call cuMemAlloc.
func TestPoolReuse(t *testing.T) {
	b := newTestBackend(t)
	churn := func() {
		for i := 0; i < 50; i++ {
			_ = b.New(1000, 64)
		}
	}
	churn()
	runtime.GC()
	time.Sleep(50 * time.Millisecond) // cleanups run on their own goroutine
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	before := b.Stats().Allocs
	churn()
	if after := b.Stats().Allocs; after > before+1 {
		t.Errorf("re-making 50 dropped tensors called cuMemAlloc %d times", after-before)
	}
}

func TestClassSize(t *testing.T) {
	for _, c := range []struct{ n, want int64 }{
		{1, 256}, {256, 256}, {257, 320}, {320, 320}, {321, 384}, {512, 512}, {513, 640},
		{1 << 20, 1 << 20}, {1<<20 + 1, 1<<20 + 1<<18}, {3 << 20, 3 << 20},
	} {
		if got := classSize(c.n); got != c.want {
			t.Errorf("classSize(%d) = %d, want %d", c.n, got, c.want)
		}
		if got := classSize(c.n); got < c.n || float64(got) > 1.25*float64(max(c.n, 256)) {
			t.Errorf("classSize(%d) = %d wastes more than 25%%", c.n, got)
		}
	}
}

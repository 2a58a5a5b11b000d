//go:build cuda

package cuda

import (
	"context"
	"errors"
	"testing"

	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// A device allocation that fails is an error, not a crash: Backend.New
// (which has no error result) panics with a *native.DeviceError wrapping
// native.ErrOutOfMemory, which native.RecoverDeviceError returns, and
// lrmf.Align returns it as its error. A 2 TiB tensor exceeds any GPU's
// memory (and the stand-in driver's malloc); the Align case runs on the
// stand-in driver, whose LRMF_FAKECUDA_MEM_LIMIT caps a context's memory (this backend's
// pool is its own and empty, so Align's first tensor needs a new block).
func TestOutOfMemoryIsAnError(t *testing.T) {
	b := newTestBackend(t)
	err := func() (err error) {
		defer native.RecoverDeviceError(&err)
		b.New(1<<19, 1<<20) // 2^39 float32: 2 TiB
		return nil
	}()
	var de *native.DeviceError
	if !errors.As(err, &de) || !errors.Is(err, native.ErrOutOfMemory) {
		t.Fatalf("New of 2 TiB: want a DeviceError wrapping ErrOutOfMemory, got %v", err)
	}
	t.Logf("New of 2 TiB: %v", err)
	// The backend still works after the failed allocation.
	x := b.New(2, 2)
	b.Upload(x, []float64{1, 2, 3, 4})
	if s := b.Sum(x); s != 10 {
		t.Fatalf("sum after a failed allocation: %v", s)
	}

	if b.Device() != fakeDevice {
		t.Skip("the Align case caps device memory on the fakecuda stand-in driver only")
	}
	p := data.MoonsPair(500, 0.05, 50, 1)
	cfg := lrmf.Config{Backend: b, Flow: model.ModelSpec{Kind: "realnvp", Hidden: 16}, Density: model.ModelSpec{Kind: "gaussian"},
		Steps: 5, Restarts: 1, FitOptions: lrmf.FitOptions{Batch: 64}}
	t.Setenv("LRMF_FAKECUDA_MEM_LIMIT", "1") // every new block fails
	res, err := lrmf.Align(context.Background(), p.A, p.B, cfg)
	if !errors.Is(err, native.ErrOutOfMemory) {
		t.Fatalf("Align with no device memory left: want ErrOutOfMemory, got %v (result %v)", err, res != nil)
	}
	t.Logf("Align with no device memory left: %v", err)
}

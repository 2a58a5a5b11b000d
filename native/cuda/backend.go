//go:build cuda

// Package cuda is lrmf's GPU backend: native.Backend over the CUDA kernels
// of csrc/cuda (embedded as a fatbin) and cuBLAS, through the driver API of
// gorgonia.org/cu. It is compiled only with the build tag cuda and computes
// in float32.
//
// Importing the package registers the backend as "cuda" with native.Open.
// A binary built with -tags cuda needs libcuda.so.1 at load time and an
// NVIDIA GPU at start: without one it prints a single line and exits (test
// binaries exit 0 as skipped; see package internal/gpuprobe).
//
// # Threads
//
// A Backend retains the device's primary context through the driver API
// (the context the CUDA runtime inside cuBLAS uses too) and owns one stream,
// a cuBLAS handle bound to it, and its allocations. Every method pins its
// goroutine to its OS thread for the duration of the call
// (runtime.LockOSThread) and makes the context current there if it is not
// (one cuCtxGetCurrent per call, a thread-local read), then launches kernels
// directly with cuLaunchKernel: there is no hand-off to a context goroutine.
// Like every native.Backend it is not safe for concurrent use, but
// consecutive calls may come from different goroutines (the conformance
// suite's subtests do).
//
// # Memory
//
// Tensors hold a device pointer and an element offset; View shares the
// allocation. Allocations come from a pool of size classes; a tensor's block
// returns to the pool when the garbage collector finds the tensor (and all
// its views) unreachable. Close frees every allocation of the backend.
//
// # Asynchrony
//
// Kernels, cuBLAS calls and copies are enqueued on the stream; the host
// waits only where a value comes back: Download, Dot and Sum (each a
// device-to-host copy that returns when done). A kernel fault surfaces at
// the next such call, as a panic naming that call.
package cuda

/*
#cgo LDFLAGS: -lcuda -ldl
#include <cuda.h>
#include <stdlib.h>
#include "cublas_shim.h"

// lrmf_ctx_current returns the calling thread's current context.
static CUcontext lrmf_ctx_current(void) {
	CUcontext cur = NULL;
	if (cuCtxGetCurrent(&cur) != CUDA_SUCCESS) return NULL;
	return cur;
}

// lrmf_ctx_ensure makes want current on the calling thread unless it is:
// one thread-local read in the common case, and no Go allocation (cu's
// CurrentContext moves its result to the heap).
static int lrmf_ctx_ensure(CUcontext want) {
	CUcontext cur = NULL;
	if (cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur == want) return 0;
	return (int)cuCtxSetCurrent(want);
}
*/
import "C"

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/lrmf-go/lrmf/native"
	"github.com/lrmf-go/lrmf/native/cuda/internal/gpuprobe"
)

func init() {
	native.Register("cuda", func(dt native.DType, threads int) (native.Backend, error) {
		if dt != native.Float32 {
			return nil, fmt.Errorf("native: the cuda backend computes in float32 only (asked for %v)", dt)
		}
		return New(threads)
	})
}

// Stats counts the work a Backend has enqueued since it was made.
type Stats struct {
	Kernels uint64 // lrmf_k_* launches (the fallback GEMM included)
	Gemms   uint64 // cuBLAS SGEMM calls (each launches one or more kernels)
	Copies  uint64 // host↔device and device↔device copies and memsets
	Syncs   uint64 // calls that waited for the device (Download, Dot, Sum)
	Allocs  uint64 // cuMemAlloc calls made by the pool
}

// Launches is Kernels + Gemms: the launches the host issued.
func (s Stats) Launches() uint64 { return s.Kernels + s.Gemms }

// Backend is the CUDA backend. New returns it as a native.Backend; assert
// to *Backend for GemmEngine, Stats, Synchronize and SetGemmKernel.
type Backend struct {
	dev      cu.Device
	ctx      cu.CUContext // the device's primary context
	rawCtx   C.CUcontext  // the same context, for lrmf_ctx_ensure
	retained bool         // the primary context is retained
	mod      cu.Module
	stream   cu.Stream
	fns      [numKernels]cu.Function
	pool     *pool
	closed   bool

	blas      *C.lrmf_cublas // nil: GEMM runs on lrmf_k_gemm
	blasInfo  string
	blasErr   string // why cuBLAS is not in use
	useKernel bool   // SetGemmKernel(true)

	// Kernel arguments: params[i] = &args[i], set once, so a launch fills
	// args and passes params[:n] without allocating.
	args   [20]uint64
	params [20]unsafe.Pointer

	scratch  *buffer   // 8 bytes: the double of Dot and Sum
	result   []float64 // host side of scratch
	h32      []float32 // Upload/Download staging
	idx      *buffer   // GatherRows indices (int32)
	idxBytes int64
	seg      segState // SumSquares buffers (fused.go)

	ode odeState   // FFJORD scratch (ode.go)
	img imageState // GLOW scratch (image.go)

	stats Stats
	name  string // device name
}

var _ native.Backend = (*Backend)(nil)

// New returns a CUDA backend on device 0 (the first device CUDA_VISIBLE_DEVICES
// leaves visible). threads is ignored: the GPU parallelises each call.
// The GEMM engine is cuBLAS when a libcublas.so.13, .12, .11 or libcublas.so
// loads, else the lrmf_k_gemm kernel; with LRMF_CUDA_GEMM=kernel in the
// environment cuBLAS is not even loaded.
func New(threads int) (native.Backend, error) {
	b, err := open(0)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func open(ordinal int) (b *Backend, err error) {
	if gpuprobe.Devices() <= ordinal {
		return nil, fmt.Errorf("native: cuda: device %d requested, %d present", ordinal, gpuprobe.Devices())
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b = &Backend{pool: newPool(), result: make([]float64, 1)}
	for i := range b.params {
		b.params[i] = unsafe.Pointer(&b.args[i])
	}
	fail := func(what string, e error) (*Backend, error) {
		b.release()
		return nil, fmt.Errorf("native: cuda: %s: %w", what, e)
	}
	if b.dev, err = cu.GetDevice(ordinal); err != nil {
		return fail("cuDeviceGet", err)
	}
	if b.name, err = b.dev.Name(); err != nil {
		b.name = b.dev.String()
	}
	// The device's primary context: the one the CUDA runtime inside cuBLAS
	// binds to as well (cudaSetDevice makes it current since CUDA 12), so
	// the two never disagree about which context a thread has current.
	if b.ctx, err = b.dev.RetainPrimaryCtx(); err != nil {
		return fail("cuDevicePrimaryCtxRetain", err)
	}
	b.retained = true
	if err = cu.SetCurrentContext(b.ctx); err != nil {
		return fail("cuCtxSetCurrent", err)
	}
	if b.rawCtx = C.lrmf_ctx_current(); b.rawCtx == nil {
		return fail("cuCtxGetCurrent", fmt.Errorf("no current context after cuCtxSetCurrent"))
	}
	if b.mod, err = cu.LoadData(fatbin); err != nil {
		return fail("cuModuleLoadData (the embedded lrmf_kernels.fatbin)", err)
	}
	for k, name := range kernelNames {
		if b.fns[k], err = b.mod.Function(name); err != nil {
			return fail("cuModuleGetFunction "+name, err)
		}
	}
	if b.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
		return fail("cuStreamCreate", err)
	}
	if b.scratch, err = b.newBuffer(8); err != nil {
		return fail("cuMemAlloc", err)
	}
	if os.Getenv("LRMF_CUDA_GEMM") == "kernel" {
		b.blasErr = "LRMF_CUDA_GEMM=kernel: cuBLAS not loaded"
		return b, nil
	}
	var msg [512]C.char
	b.blas = C.lrmf_cublas_open(unsafe.Pointer(b.stream.C()), &msg[0], C.int(len(msg)))
	if b.blas == nil {
		b.blasErr = C.GoString(&msg[0])
	} else {
		C.lrmf_cublas_info(b.blas, &msg[0], C.int(len(msg)))
		b.blasInfo = C.GoString(&msg[0])
	}
	return b, nil
}

// release frees what open made, in reverse order; the context must be
// current on the calling thread.
func (b *Backend) release() {
	if b.blas != nil {
		C.lrmf_cublas_close(b.blas)
		b.blas = nil
	}
	if b.stream != (cu.Stream{}) {
		b.stream.Destroy()
	}
	if b.mod != (cu.Module{}) {
		b.mod.Unload()
	}
	b.pool.freeAll()
	if b.retained {
		b.dev.ReleasePrimaryCtx()
		b.retained = false
	}
}

// Name returns "cuda".
func (b *Backend) Name() string { return "cuda" }

// DType returns native.Float32.
func (b *Backend) DType() native.DType { return native.Float32 }

// Threads returns 1: the backend splits nothing on the host.
func (b *Backend) Threads() int { return 1 }

// Device returns the GPU's name, e.g. "NVIDIA H200".
func (b *Backend) Device() string { return b.name }

// GemmEngine names what runs Gemm: "cuBLAS <version> (<library>)", or
// "lrmf_k_gemm (<why cuBLAS is not used>)".
func (b *Backend) GemmEngine() string {
	switch {
	case b.blas != nil && !b.useKernel:
		return b.blasInfo
	case b.blas != nil:
		return "lrmf_k_gemm (forced)"
	}
	return "lrmf_k_gemm (" + b.blasErr + ")"
}

// SetGemmKernel makes Gemm use the lrmf_k_gemm kernel (on = true) or cuBLAS
// when it is loaded (on = false).
func (b *Backend) SetGemmKernel(on bool) { b.useKernel = on }

// Stats returns the counters of the work enqueued so far.
func (b *Backend) Stats() Stats {
	s := b.stats
	b.pool.mu.Lock()
	s.Allocs = b.pool.allocs
	b.pool.mu.Unlock()
	return s
}

// Synchronize waits until the stream has run everything enqueued (for
// timing).
func (b *Backend) Synchronize() {
	b.enter()
	defer b.leave()
	b.must("cuStreamSynchronize", b.stream.Synchronize())
}

// Close waits for the stream, then destroys the cuBLAS handle, the stream
// and the module, frees every device allocation the backend made and
// releases its hold on the primary context. Tensors of a closed backend must
// not be used; Close is idempotent.
func (b *Backend) Close() {
	if b.closed {
		return
	}
	b.enter()
	defer b.leave()
	b.stream.Synchronize()
	b.release()
	b.closed = true
}

// enter pins the goroutine to its thread and makes the context current.
func (b *Backend) enter() {
	runtime.LockOSThread()
	if b.closed {
		runtime.UnlockOSThread()
		panic("native: cuda: backend used after Close")
	}
	if rc := C.lrmf_ctx_ensure(b.rawCtx); rc != 0 {
		runtime.UnlockOSThread()
		panic(fmt.Sprintf("native: cuda: cuCtxSetCurrent: CUresult %d", int(rc)))
	}
}

func (b *Backend) leave() { runtime.UnlockOSThread() }

// must panics with a *native.DeviceError when a driver call failed (Align
// and EvalFlow return it as an error); an allocation's wraps
// native.ErrOutOfMemory.
func (b *Backend) must(op string, err error) {
	if err != nil {
		if err == cu.OutOfMemory {
			err = fmt.Errorf("%w (%v)", native.ErrOutOfMemory, err)
		}
		panic(&native.DeviceError{Backend: "cuda", Op: op, Err: err})
	}
}

// newBuffer allocates n > 0 bytes from the pool (context current).
func (b *Backend) newBuffer(n int64) (*buffer, error) {
	ptr, class, err := b.pool.get(n)
	if err != nil {
		return nil, err
	}
	buf := &buffer{ptr: ptr, class: class, pool: b.pool}
	runtime.AddCleanup(buf, b.pool.put, alloc{ptr: ptr, class: class})
	return buf, nil
}

// emptyBuffer backs zero-element tensors.
var emptyBuffer = &buffer{}

func store(t *native.Tensor) devStore {
	s, ok := t.Store().(devStore)
	if !ok {
		panic(fmt.Sprintf("native: cuda: %v was not made by a cuda backend", t))
	}
	return s
}

// addr returns the device address of t's first element (0 for nil).
func addr(t *native.Tensor) uint64 {
	if t == nil {
		return 0
	}
	s := store(t)
	return uint64(s.buf.ptr) + 4*uint64(s.off)
}

func i64(n int) uint64           { return uint64(int64(n)) }
func f64(x float64) uint64       { return math.Float64bits(x) }
func dptr(p cu.DevicePtr) uint64 { return uint64(p) }

// launch enqueues kernel k with the given grid and block and 8-byte args.
func (b *Backend) launch(k kernel, gx, gy, bx, by int, args ...uint64) {
	b.launchShared(k, gx, gy, bx, by, 0, args...)
}

// launchShared is launch with shmem bytes of dynamic shared memory.
func (b *Backend) launchShared(k kernel, gx, gy, bx, by, shmem int, args ...uint64) {
	n := copy(b.args[:], args)
	if n != len(args) {
		panic("native: cuda: too many kernel arguments")
	}
	b.stats.Kernels++
	if err := b.fns[k].Launch(gx, gy, 1, bx, by, 1, shmem, b.stream, b.params[:n]); err != nil {
		panic(fmt.Sprintf("native: cuda: launching %s: %v", kernelNames[k], err))
	}
}

// launchR launches an R(units) kernel: 256 threads, grid-stride loop.
func (b *Backend) launchR(k kernel, units int, args ...uint64) {
	if units <= 0 {
		return
	}
	b.launch(k, min((units+blockR-1)/blockR, maxGridR), 1, blockR, 1, args...)
}

// launchC launches a C(outputs) kernel: one 256-thread block per output.
func (b *Backend) launchC(k kernel, outputs int, args ...uint64) {
	if outputs <= 0 {
		return
	}
	b.launch(k, outputs, 1, blockC, 1, args...)
}

// launchS launches an S kernel: one block of 1024 threads.
func (b *Backend) launchS(k kernel, args ...uint64) {
	b.launch(k, 1, 1, blockS, 1, args...)
}

// readScalar copies the double the last S kernel wrote back to the host.
func (b *Backend) readScalar(op string) float64 {
	b.stats.Copies++
	b.stats.Syncs++
	// A device-to-host copy into pageable memory returns once the copy has
	// completed (CUDA's "API synchronization behavior"), so no stream
	// synchronisation is needed; an earlier kernel fault is reported here.
	b.must(op+": cuMemcpyDtoHAsync", cu.MemcpyDtoHAsync(unsafe.Pointer(&b.result[0]), b.scratch.ptr, 8, b.stream))
	return b.result[0]
}

//go:build cuda

package cuda

import (
	"math/bits"
	"runtime"
	"sync"

	"gorgonia.org/cu"
)

// buffer is one device allocation. Tensors and their views hold a *buffer
// (through devStore), so the allocation lives while any of them does; a
// runtime cleanup attached to the buffer then returns the block to the
// pool's free list. The Backend interface has no Free: the garbage collector
// is what tells the pool a tensor is dead.
//
// The pool pointer is there also to keep buffer out of Go's tiny allocator
// (pointer-free objects under 16 bytes share blocks, and their cleanups may
// never run).
type buffer struct {
	ptr   cu.DevicePtr
	class int64
	pool  *pool
}

// devStore is a Tensor's storage: a buffer and the element offset of the
// Tensor's first element (views are offsets, never copies).
type devStore struct {
	buf *buffer
	off int
}

// pool caches device blocks in size classes of four steps per power of two
// (at most 25 % waste, 256 B minimum), so steady-state training — which
// allocates its buffers once and then only views them — never calls
// cuMemAlloc, and a tensor dropped and re-made of the same size reuses its
// block.
//
// Reusing a block as soon as its last tensor is collected is safe because
// every operation of the backend runs in order on one stream: any kernel
// that still reads the old tensor was enqueued before anything that writes
// the new one.
type pool struct {
	mu     sync.Mutex
	free   map[int64][]cu.DevicePtr // class size → free blocks
	all    map[cu.DevicePtr]int64   // every block held, free or in use → class
	closed bool

	// Counters (under mu).
	allocs   uint64 // cuMemAlloc calls
	reserved int64  // bytes held from the driver, free or in use
}

// alloc is what a cleanup needs to return a block: it must not refer to the
// buffer itself.
type alloc struct {
	ptr   cu.DevicePtr
	class int64
}

func newPool() *pool {
	return &pool{free: map[int64][]cu.DevicePtr{}, all: map[cu.DevicePtr]int64{}}
}

// classSize rounds n bytes up to its size class.
func classSize(n int64) int64 {
	const minBlock = 256
	if n <= minBlock {
		return minBlock
	}
	k := bits.Len64(uint64(n - 1)) // 2^k ≥ n > 2^(k-1)
	base := int64(1) << (k - 1)
	step := base / 4
	q := (n - base + step - 1) / step
	return base + q*step
}

// get returns a block of at least n bytes (n > 0). The calling thread must
// have the backend's context current.
func (p *pool) get(n int64) (cu.DevicePtr, int64, error) {
	c := classSize(n)
	p.mu.Lock()
	if l := p.free[c]; len(l) > 0 {
		ptr := l[len(l)-1]
		p.free[c] = l[:len(l)-1]
		p.mu.Unlock()
		return ptr, c, nil
	}
	p.mu.Unlock()
	ptr, err := cu.MemAlloc(c)
	if err == cu.OutOfMemory {
		// Collect dead tensors, give the cached blocks back to the driver
		// and try once more.
		runtime.GC()
		p.trim()
		ptr, err = cu.MemAlloc(c)
	}
	if err != nil {
		return 0, 0, err
	}
	p.mu.Lock()
	p.allocs++
	p.reserved += c
	p.all[ptr] = c
	p.mu.Unlock()
	return ptr, c, nil
}

// put returns a block to its free list. It runs on the cleanup goroutine
// too, so it touches host state only.
func (p *pool) put(a alloc) {
	p.mu.Lock()
	if !p.closed {
		p.free[a.class] = append(p.free[a.class], a.ptr)
	}
	p.mu.Unlock()
}

// trim frees every cached block (the context must be current).
func (p *pool) trim() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, l := range p.free {
		for _, ptr := range l {
			if cu.MemFree(ptr) == nil {
				p.reserved -= c
				delete(p.all, ptr)
			}
		}
		delete(p.free, c)
	}
}

// freeAll frees every block, in use or not, and stops the pool: blocks of
// tensors collected later are ignored. The context must be current.
func (p *pool) freeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for ptr := range p.all {
		cu.MemFree(ptr)
	}
	p.closed = true
	p.free, p.all, p.reserved = nil, nil, 0
}

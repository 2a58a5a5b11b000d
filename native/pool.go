package native

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// pool runs one row-blocked job at a time on a fixed set of goroutines.
//
// Go chooses the parallelism (the kernels start no threads). A job is split
// into contiguous blocks by split, which depends only on the problem size and
// the thread count, so per-block partial sums — and therefore every result —
// are reproducible for a given backend and thread count.
//
// Dispatch allocates nothing. Workers wait for a new generation number by
// spinning on an atomic for a short while before they park on a channel: a
// training step dispatches every few microseconds, and parking on every
// dispatch made the runtime allocate wait records (sudogs) in steady state.
type pool struct {
	threads int

	// state is gen<<16 | nb: the dispatch generation (workers act when it
	// changes) and that dispatch's block count, published together so a
	// worker never pairs one dispatch's generation with another's count.
	state   atomic.Uint64
	run     func(blk int) // the job of the current dispatch (participants only)
	pending atomic.Int64  // participating workers not yet done
	closed  atomic.Bool

	wake   []chan struct{} // one per worker, buffered: a nudge for a parked worker
	parked []atomic.Bool
	once   sync.Once
}

// spinFor is how long an idle worker polls for work before parking.
const spinFor = 100 * time.Microsecond

func newPool(threads int) *pool {
	if threads < 1 {
		threads = 1
	}
	threads = min(threads, 1<<16-1) // the block count shares a word with the generation
	return &pool{threads: threads}
}

func (p *pool) startWorkers() {
	n := p.threads - 1
	p.wake = make([]chan struct{}, n)
	p.parked = make([]atomic.Bool, n)
	g0 := p.state.Load() >> 16 // before the dispatch that starts the workers
	for w := 0; w < n; w++ {
		p.wake[w] = make(chan struct{}, 1)
		go p.worker(w, g0)
	}
}

// worker w runs block w+1 of every dispatch that has that many blocks.
// last is the generation already seen when the worker was started.
func (p *pool) worker(w int, last uint64) {
	for {
		st := p.await(w, last)
		if p.closed.Load() {
			return
		}
		last = st >> 16
		if nb := int(st & 0xffff); w+1 < nb {
			p.run(w + 1)
			p.pending.Add(-1)
		}
	}
}

// await returns the first state whose generation differs from last,
// spinning, then parking.
func (p *pool) await(w int, last uint64) uint64 {
	start := time.Now()
	for i := 0; ; i++ {
		if st := p.state.Load(); st>>16 != last {
			return st
		}
		if i&127 == 127 {
			if time.Since(start) > spinFor {
				break
			}
			runtime.Gosched()
		}
	}
	for {
		p.parked[w].Store(true)
		if st := p.state.Load(); st>>16 != last { // re-check after announcing
			p.parked[w].Store(false)
			return st
		}
		<-p.wake[w]
		p.parked[w].Store(false)
		if st := p.state.Load(); st>>16 != last {
			return st
		}
	}
}

// split returns the number of blocks for `units` independent units of work
// each costing about `cost` flops: one block per thread, but none smaller
// than minBlockFlops so tiny problems run inline.
func (p *pool) split(units, cost int) int {
	const minBlockFlops = 1 << 16
	nb := units * max(cost, 1) / minBlockFlops
	return max(1, min(nb, p.threads, units))
}

// bounds returns block blk's half-open range of [0, units) split into nb.
func bounds(units, nb, blk int) (lo, hi int) {
	return units * blk / nb, units * (blk + 1) / nb
}

// do runs run(0..nb-1), block 0 on the calling goroutine. run must be a
// function value that does not allocate when called (a method value made
// once).
func (p *pool) do(nb int, run func(blk int)) {
	if nb <= 1 || p.closed.Load() {
		for b := 0; b < max(nb, 1); b++ {
			run(b)
		}
		return
	}
	p.once.Do(p.startWorkers)
	p.run = run
	p.pending.Store(int64(nb - 1))
	gen := p.state.Load()>>16 + 1
	p.state.Store(gen<<16 | uint64(nb)) // publishes run with the block count
	for w := 0; w < nb-1; w++ {
		if p.parked[w].Load() {
			select {
			case p.wake[w] <- struct{}{}:
			default:
			}
		}
	}
	run(0)
	for i := 0; p.pending.Load() != 0; i++ {
		if i&127 == 127 {
			runtime.Gosched()
		}
	}
	p.run = nil
}

// close stops the workers; the pool runs everything inline afterwards.
func (p *pool) close() {
	if p.closed.Swap(true) {
		return
	}
	p.once.Do(func() {}) // workers never start after close
	p.state.Store((p.state.Load()>>16 + 1) << 16)
	for _, ch := range p.wake {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

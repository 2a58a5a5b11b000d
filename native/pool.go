package native

import "sync"

// pool runs one row-blocked job at a time on a fixed set of goroutines.
//
// Go chooses the parallelism (the kernels start no threads). A job is split
// into contiguous blocks by split, which depends only on the problem size and
// the thread count, so per-block partial sums — and therefore every result —
// are reproducible for a given backend and thread count. Dispatch sends block
// numbers over channels and the work itself is described by a value the
// caller owns, so a step allocates nothing.
type pool struct {
	threads int
	start   []chan int // start[w] receives the block index worker w+1 runs
	wg      sync.WaitGroup
	run     func(blk int) // the job of the current dispatch
	once    sync.Once
}

func newPool(threads int) *pool {
	if threads < 1 {
		threads = 1
	}
	return &pool{threads: threads}
}

func (p *pool) startWorkers() {
	p.start = make([]chan int, p.threads-1)
	for w := range p.start {
		ch := make(chan int)
		p.start[w] = ch
		go func() {
			for blk := range ch {
				p.run(blk)
				p.wg.Done()
			}
		}()
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
	if nb <= 1 {
		run(0)
		return
	}
	p.once.Do(p.startWorkers)
	p.run = run
	p.wg.Add(nb - 1)
	for b := 1; b < nb; b++ {
		p.start[b-1] <- b
	}
	run(0)
	p.wg.Wait()
	p.run = nil
}

// close stops the workers; the pool runs everything inline afterwards.
func (p *pool) close() {
	p.once.Do(func() {}) // workers never start after close
	for _, ch := range p.start {
		close(ch)
	}
	p.start = nil
	p.threads = 1
}

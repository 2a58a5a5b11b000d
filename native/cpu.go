//go:build cgo

package native

import (
	"fmt"
	"runtime"

	"github.com/lrmf-go/lrmf/bindings"
)

// cgoAvailable reports whether NewCPU can work in this build.
const cgoAvailable = true

// NewCPU returns the backend over the C kernels of csrc/cpu, with element
// type dt and batches split over up to threads goroutines (≤ 0: one per
// CPU). Results are bit-identical for a given dt and thread count.
func NewCPU(dt DType, threads int) (Backend, error) {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	switch dt {
	case Float32:
		return newCPU[float32](dt, threads), nil
	case Float64:
		return newCPU[float64](dt, threads), nil
	}
	return nil, fmt.Errorf("native: NewCPU: unsupported dtype %v", dt)
}

type cpu[T bindings.Float] struct {
	dt       DType
	pool     *pool
	job      job[T]
	block    func(blk int) // c.runBlock, bound once so dispatch does not allocate
	errs     []error       // per block
	dsum     []float64     // per-block double results of Dot and Sum
	part     []T           // per-block partial parameter gradients (blocks ≥ 1)
	gemmWork [][]T         // per-block GEMM packing workspace
	ode      cpuODE        // FFJORD state (cpu_ode.go)
}

type opcode uint8

const (
	opGemm opcode = iota
	opBiasAdd
	opBiasGrad
	opReLU
	opReLUBackward
	opTanh
	opTanhBackward
	opGaussLogProb
	opGaussBackward
	opLogDetAcc
	opAffineForward
	opAffineInverse
	opAdam
	opAxpy
	opDot
	opSum
	opGather
	opBiasReLU
	opBiasReLUBackward
	opCopyCols
	opAddCols
	opCouplingForward
	opCouplingInverse
	opCouplingBackward
	opODEFuncForward
	opODEFuncVJP
	opODESolveRK4
	opODESolveDopri5
)

// job describes the operation being dispatched; each block reads it and
// works on its own rows [lo, hi) (or elements, for elementwise ops).
type job[T bindings.Float] struct {
	op             opcode
	units, nb      int
	transA, transB bool
	m, n, k        int
	lda, ldb       int
	alpha, beta    T
	s1, s2, s3, s4 T
	a, b, c, d, e  []T
	f, g, h        []T
	idx            []int32
	adam           AdamHyper
	c0, w          int                // column range [c0, c0+w) (CopyCols, AddCols, coupling t0, dt)
	kind           bindings.ScaleKind // coupling scale function; its bound is s1
}

func newCPU[T bindings.Float](dt DType, threads int) *cpu[T] {
	c := &cpu[T]{dt: dt, pool: newPool(threads)}
	c.block = c.runBlock
	c.errs = make([]error, threads)
	c.gemmWork = make([][]T, threads)
	c.dsum = make([]float64, threads)
	return c
}

func (c *cpu[T]) Name() string { return "cpu" }
func (c *cpu[T]) DType() DType { return c.dt }
func (c *cpu[T]) Threads() int { return c.pool.threads }

func (c *cpu[T]) Close() { c.pool.close() }

func (c *cpu[T]) s(t *Tensor) []T { return t.store.([]T) }

func (c *cpu[T]) New(rows, cols int) *Tensor {
	CheckNew(rows, cols)
	return NewTensor(rows, cols, c.dt, make([]T, rows*cols))
}

func (c *cpu[T]) View(t *Tensor, lo, hi int) *Tensor {
	CheckView(t, lo, hi)
	return NewTensor(hi-lo, t.cols, c.dt, c.s(t)[lo*t.cols:hi*t.cols:hi*t.cols])
}

func (c *cpu[T]) Upload(t *Tensor, src []float64) {
	CheckUpload(t, src)
	dst := c.s(t)
	for i, v := range src {
		dst[i] = T(v)
	}
}

func (c *cpu[T]) Download(dst []float64, t *Tensor) {
	CheckDownload(dst, t)
	for i, v := range c.s(t) {
		dst[i] = float64(v)
	}
}

func (c *cpu[T]) Copy(dst, src *Tensor) {
	CheckCopy(dst, src)
	copy(c.s(dst), c.s(src))
}

func (c *cpu[T]) Fill(t *Tensor, v float64) { must("Fill", bindings.Fill(T(v), c.s(t))) }

// dispatch runs the prepared job over nb blocks of units and panics with the
// first kernel error (only reachable through a bug: shapes are checked first).
func (c *cpu[T]) dispatch(op opcode, units, nb int) {
	c.job.op, c.job.units, c.job.nb = op, units, nb
	c.pool.do(nb, c.block)
	for b := 0; b < nb; b++ {
		if err := c.errs[b]; err != nil {
			c.errs[b] = nil
			panic(fmt.Sprintf("native: cpu: %v", err))
		}
	}
}

// partial returns block blk's scratch of n elements for a reduction; block 0
// writes straight into the output.
func (c *cpu[T]) partial(blk, n int) []T {
	return c.part[(blk-1)*n : blk*n]
}

func (c *cpu[T]) ensurePartial(nb, n int) {
	if need := (nb - 1) * n; len(c.part) < need {
		c.part = make([]T, need)
	}
}

// reduce adds the partials of blocks 1..nb-1 into out, in block order.
func (c *cpu[T]) reduce(nb int, out []T) {
	n := len(out)
	for b := 1; b < nb; b++ {
		must("reduce", bindings.Axpy(1, c.partial(b, n), out))
	}
}

func (c *cpu[T]) runBlock(blk int) {
	j := &c.job
	lo, hi := bounds(j.units, j.nb, blk)
	var err error
	switch j.op {
	case opGemm:
		// Row block of C; op(A)'s rows start at row lo of A, or column lo
		// of A when A is transposed.
		var a []T
		if j.transA {
			a = j.a[lo:]
		} else {
			a = j.a[lo*j.lda:]
		}
		// Each block packs into its own workspace, kept between calls
		// (grown on first use of a larger shape, so steps allocate nothing).
		if need := bindings.GemmWorkLen[T](hi-lo, j.n, j.k); len(c.gemmWork[blk]) < need {
			c.gemmWork[blk] = make([]T, need)
		}
		err = bindings.GemmWS(j.transA, j.transB, hi-lo, j.n, j.k, j.alpha, a, j.lda, j.b, j.ldb, j.beta, j.c[lo*j.n:hi*j.n], j.n, c.gemmWork[blk])
	case opBiasAdd:
		err = bindings.BiasAdd(hi-lo, j.n, j.a, j.c[lo*j.n:hi*j.n])
	case opBiasGrad:
		out := j.c
		if blk > 0 {
			out = c.partial(blk, j.n)
		}
		err = bindings.BiasGrad(hi-lo, j.n, j.a[lo*j.n:hi*j.n], out)
	case opReLU:
		err = bindings.ReLU(j.a[lo:hi], j.c[lo:hi])
	case opReLUBackward:
		err = bindings.ReLUBackward(j.a[lo:hi], j.b[lo:hi], j.c[lo:hi])
	case opTanh:
		err = bindings.Tanh(j.a[lo:hi], j.c[lo:hi])
	case opTanhBackward:
		err = bindings.TanhBackward(j.a[lo:hi], j.b[lo:hi], j.c[lo:hi])
	case opGaussLogProb:
		d := j.n
		err = bindings.GaussLogProb(hi-lo, d, j.a[lo*d:hi*d], j.b, j.c, j.s1, j.d[lo*d:hi*d], j.e[lo:hi])
	case opGaussBackward:
		d := j.n
		dmu, dl := j.f, j.g
		if blk > 0 {
			p := c.partial(blk, d+d*d)
			dmu, dl = p[:d], p[d:]
		}
		var dx []T
		if j.h != nil {
			dx = j.h[lo*d : hi*d]
		}
		err = bindings.GaussBackward(hi-lo, d, j.a[lo*d:hi*d], j.b, j.c, j.d[lo*d:hi*d], j.e[lo:hi], dx, dmu, dl)
	case opLogDetAcc:
		err = bindings.LogDetAcc(hi-lo, j.n, j.a[lo*j.n:hi*j.n], j.c[lo:hi])
	case opAffineForward:
		d := j.n
		var ld []T
		if j.e != nil {
			ld = j.e[lo:hi]
		}
		err = bindings.AffineForward(hi-lo, d, j.a[lo*d:hi*d], j.b, j.d, j.s1, j.c[lo*d:hi*d], ld)
	case opAffineInverse:
		d := j.n
		err = bindings.AffineInverse(hi-lo, d, j.a[lo*d:hi*d], j.b, j.d, j.c[lo*d:hi*d])
	case opAdam:
		h := j.adam
		err = bindings.Adam(j.a[lo:hi], j.b[lo:hi], j.c[lo:hi], j.d[lo:hi], h.LR, h.Beta1, h.Beta2, h.Eps, h.BC1, h.BC2)
	case opAxpy:
		err = bindings.Axpy(j.alpha, j.a[lo:hi], j.c[lo:hi])
	case opDot:
		c.dsum[blk], err = bindings.Dot(j.a[lo:hi], j.b[lo:hi])
	case opSum:
		c.dsum[blk], err = bindings.Sum(j.a[lo:hi])
	case opGather:
		d := j.n
		err = bindings.GatherRows(hi-lo, d, j.a, j.idx[lo:hi], j.c[lo*d:hi*d])
	case opBiasReLU:
		err = bindings.BiasReLU(hi-lo, j.n, j.a, j.c[lo*j.n:hi*j.n])
	case opBiasReLUBackward:
		d := j.n
		out := j.d
		if blk > 0 {
			out = c.partial(blk, d)
		}
		err = bindings.BiasReLUBackward(hi-lo, d, j.a[lo*d:hi*d], j.b[lo*d:hi*d], j.c[lo*d:hi*d], out)
	case opCopyCols:
		d, k := j.n, j.w
		err = bindings.CopyCols(hi-lo, d, j.c0, k, j.a[lo*d:hi*d], j.c[lo*k:hi*k])
	case opAddCols:
		d, k := j.n, j.w
		err = bindings.AddCols(hi-lo, d, j.c0, k, j.a[lo*k:hi*k], j.c[lo*d:hi*d])
	case opCouplingForward:
		d, hw := j.n, 2*j.w
		var ld []T
		if j.e != nil {
			ld = j.e[lo:hi]
		}
		err = bindings.CouplingForward(hi-lo, d, j.c0, j.w, j.kind, j.s1,
			j.a[lo*d:hi*d], j.b[lo*hw:hi*hw], j.c[lo*d:hi*d], ld)
	case opCouplingInverse:
		d, hw := j.n, 2*j.w
		err = bindings.CouplingInverse(hi-lo, d, j.c0, j.w, j.kind, j.s1,
			j.a[lo*d:hi*d], j.b[lo*hw:hi*hw], j.c[lo*d:hi*d])
	case opCouplingBackward:
		d, hw := j.n, 2*j.w
		var dx []T
		if j.f != nil {
			dx = j.f[lo*d : hi*d]
		}
		err = bindings.CouplingBackward(hi-lo, d, j.c0, j.w, j.kind, j.s1,
			j.a[lo*d:hi*d], j.b[lo*hw:hi*hw], j.d[lo*d:hi*d], j.e[lo:hi], dx, j.c[lo*hw:hi*hw])
	case opODEFuncForward, opODEFuncVJP, opODESolveRK4, opODESolveDopri5:
		err = c.runODE(blk, lo, hi)
	}
	c.errs[blk] = err
}

// elementwise prepares a job over n elements of cost flops each.
func (c *cpu[T]) elementwise(op opcode, n, cost int) {
	c.dispatch(op, n, c.pool.split(n, cost))
}

func (c *cpu[T]) Axpy(alpha float64, x, y *Tensor) {
	CheckAxpy(x, y)
	c.job.alpha, c.job.a, c.job.c = T(alpha), c.s(x), c.s(y)
	c.elementwise(opAxpy, x.Len(), 2)
}

func (c *cpu[T]) sumBlocks(nb int) float64 {
	s := 0.0
	for b := 0; b < nb; b++ {
		s += c.dsum[b]
	}
	return s
}

func (c *cpu[T]) Dot(x, y *Tensor) float64 {
	CheckDot(x, y)
	c.job.a, c.job.b = c.s(x), c.s(y)
	nb := c.pool.split(x.Len(), 2)
	c.dispatch(opDot, x.Len(), nb)
	return c.sumBlocks(nb)
}

func (c *cpu[T]) Sum(x *Tensor) float64 {
	c.job.a = c.s(x)
	nb := c.pool.split(x.Len(), 1)
	c.dispatch(opSum, x.Len(), nb)
	return c.sumBlocks(nb)
}

func (c *cpu[T]) Gemm(transA, transB bool, alpha float64, a, b *Tensor, beta float64, cc *Tensor) {
	m, n, k := CheckGemm(transA, transB, a, b, cc)
	j := &c.job
	j.transA, j.transB, j.m, j.n, j.k = transA, transB, m, n, k
	j.alpha, j.beta = T(alpha), T(beta)
	j.a, j.lda, j.b, j.ldb, j.c = c.s(a), a.cols, c.s(b), b.cols, c.s(cc)
	c.dispatch(opGemm, m, c.pool.split(m, 2*n*k))
}

func (c *cpu[T]) BiasAdd(y, bias *Tensor) {
	CheckBiasAdd(y, bias)
	c.job.n, c.job.a, c.job.c = y.cols, c.s(bias), c.s(y)
	c.dispatch(opBiasAdd, y.rows, c.pool.split(y.rows, y.cols))
}

func (c *cpu[T]) BiasGrad(db, dy *Tensor) {
	CheckBiasGrad(db, dy)
	nb := c.pool.split(dy.rows, dy.cols)
	c.ensurePartial(nb, dy.cols)
	c.job.n, c.job.a, c.job.c = dy.cols, c.s(dy), c.s(db)
	c.dispatch(opBiasGrad, dy.rows, nb)
	c.reduce(nb, c.s(db))
}

func (c *cpu[T]) ReLU(y, x *Tensor) {
	CheckReLU(y, x)
	c.job.a, c.job.c = c.s(x), c.s(y)
	c.elementwise(opReLU, x.Len(), 1)
}

func (c *cpu[T]) ReLUBackward(dx, x, dy *Tensor) {
	CheckReLUBackward(dx, x, dy)
	c.job.a, c.job.b, c.job.c = c.s(x), c.s(dy), c.s(dx)
	c.elementwise(opReLUBackward, x.Len(), 1)
}

func (c *cpu[T]) Tanh(y, x *Tensor) {
	CheckTanh(y, x)
	c.job.a, c.job.c = c.s(x), c.s(y)
	c.elementwise(opTanh, x.Len(), 20)
}

func (c *cpu[T]) TanhBackward(dx, y, dy *Tensor) {
	CheckTanhBackward(dx, y, dy)
	c.job.a, c.job.b, c.job.c = c.s(y), c.s(dy), c.s(dx)
	c.elementwise(opTanhBackward, y.Len(), 3)
}

func (c *cpu[T]) GaussLogProb(logp, u, x, mu, l *Tensor, logdetL float64) {
	n, d := CheckGaussLogProb(logp, u, x, mu, l)
	j := &c.job
	j.n, j.s1 = d, T(logdetL)
	j.a, j.b, j.c, j.d, j.e = c.s(x), c.s(mu), c.s(l), c.s(u), c.s(logp)
	c.dispatch(opGaussLogProb, n, c.pool.split(n, 2*d*d+3*d))
}

func (c *cpu[T]) GaussBackward(dx, dmu, dl, x, mu, l, u, dlogp *Tensor) {
	n, d := CheckGaussBackward(dx, dmu, dl, x, mu, l, u, dlogp)
	j := &c.job
	j.h = nil
	if dx != nil {
		j.h = c.s(dx)
	}
	nb := c.pool.split(n, 4*d*d+3*d)
	c.ensurePartial(nb, d+d*d)
	j.n = d
	j.a, j.b, j.c, j.d, j.e, j.f, j.g = c.s(x), c.s(mu), c.s(l), c.s(u), c.s(dlogp), c.s(dmu), c.s(dl)
	c.dispatch(opGaussBackward, n, nb)
	for b := 1; b < nb; b++ {
		p := c.partial(b, d+d*d)
		must("reduce", bindings.Axpy(1, p[:d], j.f))
		must("reduce", bindings.Axpy(1, p[d:], j.g))
	}
}

func (c *cpu[T]) LogDetAcc(logdet, s *Tensor) {
	CheckLogDetAcc(logdet, s)
	c.job.n, c.job.a, c.job.c = s.cols, c.s(s), c.s(logdet)
	c.dispatch(opLogDetAcc, s.rows, c.pool.split(s.rows, s.cols))
}

func (c *cpu[T]) AffineForward(y, logdet, x, m, b *Tensor, ldm float64) {
	n, d := CheckAffineForward(y, logdet, x, m, b)
	j := &c.job
	j.e = nil
	if logdet != nil {
		j.e = c.s(logdet)
	}
	j.n, j.s1 = d, T(ldm)
	j.a, j.b, j.d, j.c = c.s(x), c.s(m), c.s(b), c.s(y)
	c.dispatch(opAffineForward, n, c.pool.split(n, 2*d*d))
}

func (c *cpu[T]) AffineInverse(x, y, minv, b *Tensor) {
	n, d := CheckAffineInverse(x, y, minv, b)
	j := &c.job
	j.n = d
	j.a, j.b, j.d, j.c = c.s(y), c.s(minv), c.s(b), c.s(x)
	c.dispatch(opAffineInverse, n, c.pool.split(n, 2*d*d))
}

func (c *cpu[T]) Adam(p, g, m, v *Tensor, h AdamHyper) {
	n := CheckAdam(p, g, m, v)
	j := &c.job
	j.a, j.b, j.c, j.d = c.s(p), c.s(g), c.s(m), c.s(v)
	j.adam = h
	c.elementwise(opAdam, n, 10)
}

func (c *cpu[T]) GatherRows(dst, src *Tensor, idx []int32) {
	CheckGatherRows(dst, src, idx)
	c.job.n, c.job.a, c.job.idx, c.job.c = src.cols, c.s(src), idx, c.s(dst)
	c.dispatch(opGather, len(idx), c.pool.split(len(idx), src.cols))
}

func must(op string, err error) {
	if err != nil {
		panic(fmt.Sprintf("native: cpu: %s: %v", op, err))
	}
}

func (c *cpu[T]) BiasReLU(y, bias *Tensor) {
	CheckBiasReLU(y, bias)
	c.job.n, c.job.a, c.job.c = y.cols, c.s(bias), c.s(y)
	c.dispatch(opBiasReLU, y.rows, c.pool.split(y.rows, 2*y.cols))
}

func (c *cpu[T]) BiasReLUBackward(dz, db, y, dy *Tensor) {
	n, d := CheckBiasReLUBackward(dz, db, y, dy)
	nb := c.pool.split(n, 2*d)
	c.ensurePartial(nb, d)
	j := &c.job
	j.n, j.a, j.b, j.c, j.d = d, c.s(y), c.s(dy), c.s(dz), c.s(db)
	c.dispatch(opBiasReLUBackward, n, nb)
	c.reduce(nb, j.d)
}

func (c *cpu[T]) CopyCols(dst, src *Tensor, c0 int) {
	n, d, k := CheckCopyCols(dst, src, c0)
	j := &c.job
	j.n, j.c0, j.w, j.a, j.c = d, c0, k, c.s(src), c.s(dst)
	c.dispatch(opCopyCols, n, c.pool.split(n, k))
}

func (c *cpu[T]) AddCols(dst, src *Tensor, c0 int) {
	n, d, k := CheckAddCols(dst, src, c0)
	j := &c.job
	j.n, j.c0, j.w, j.a, j.c = d, c0, k, c.s(src), c.s(dst)
	c.dispatch(opAddCols, n, c.pool.split(n, k))
}

// scaleKind maps a checked Scale onto the C kernels' kind.
func scaleKind(sc Scale) bindings.ScaleKind {
	if sc.Kind == ScaleExp {
		return bindings.ScaleExp
	}
	return bindings.ScaleSigmoid
}

// couplingCost is the split cost of a coupling row: perCol for each
// transformed column (two or three transcendental functions, ~20 each, as
// for Tanh) and a copy for every column.
func couplingCost(d, dt, perCol int) int { return d + perCol*dt }

// setCoupling stores the coupling arguments shared by the three operations.
func (c *cpu[T]) setCoupling(d, t0, dt int, sc Scale) {
	j := &c.job
	j.n, j.c0, j.w, j.kind, j.s1 = d, t0, dt, scaleKind(sc), T(sc.Bound)
}

func (c *cpu[T]) CouplingForward(y, logdet, x, h *Tensor, t0 int, sc Scale) {
	n, d, dt := CheckCouplingForward(y, logdet, x, h, t0, sc)
	j := &c.job
	j.e = nil
	if logdet != nil {
		j.e = c.s(logdet)
	}
	c.setCoupling(d, t0, dt, sc)
	j.a, j.b, j.c = c.s(x), c.s(h), c.s(y)
	c.dispatch(opCouplingForward, n, c.pool.split(n, couplingCost(d, dt, 40)))
}

func (c *cpu[T]) CouplingInverse(x, y, h *Tensor, t0 int, sc Scale) {
	n, d, dt := CheckCouplingInverse(x, y, h, t0, sc)
	c.setCoupling(d, t0, dt, sc)
	j := &c.job
	j.a, j.b, j.c = c.s(y), c.s(h), c.s(x)
	c.dispatch(opCouplingInverse, n, c.pool.split(n, couplingCost(d, dt, 40)))
}

func (c *cpu[T]) CouplingBackward(dx, dh, x, h, dy, dlogdet *Tensor, t0 int, sc Scale) {
	n, d, dt := CheckCouplingBackward(dx, dh, x, h, dy, dlogdet, t0, sc)
	j := &c.job
	j.f = nil
	if dx != nil {
		j.f = c.s(dx)
	}
	c.setCoupling(d, t0, dt, sc)
	j.a, j.b, j.d, j.e, j.c = c.s(x), c.s(h), c.s(dy), c.s(dlogdet), c.s(dh)
	c.dispatch(opCouplingBackward, n, c.pool.split(n, couplingCost(d, dt, 60)))
}

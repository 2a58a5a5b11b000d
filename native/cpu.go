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

// The cpu backend runs each operation as a job over row blocks (or element
// blocks) on its goroutine pool.
//
// A job is the operation's arguments in a struct of its own (gemmJob,
// couplingForwardJob, ...), declared beside its block method, which runs
// the C kernel on block blk, rows [lo, hi). The Backend method checks the
// contract, fills its struct (one per operation family, kept in c.jobs and
// reused, so nothing is allocated: a pointer stored in an interface needs
// no allocation) and dispatches it; reductions then add the per-block
// partials in block order, so results depend only on the split.
type cpu[T bindings.Float] struct {
	dt        DType
	pool      *pool
	job       blockJob[T]   // the job being dispatched
	units, nb int           // its units (rows or elements) and blocks
	block     func(blk int) // c.runBlock, bound once so dispatch does not allocate
	jobs      cpuJobs[T]
	errs      []error     // per block
	dsum      []float64   // per-block double results of Dot and Sum
	part      []T         // per-block partial parameter gradients (blocks ≥ 1)
	gemmWork  [][]T       // per-block GEMM packing workspace
	dpart     [][]float64 // per-block double partials (GemmEx column sums, SumSquares)
	ode       cpuODE      // FFJORD state (cpu_ode.go)
}

// blockJob is a prepared operation: block runs it on block blk, which
// covers units [lo, hi) of the dispatch.
type blockJob[T bindings.Float] interface {
	block(c *cpu[T], blk, lo, hi int) error
}

// cpuJobs holds the argument struct of every operation family.
type cpuJobs[T bindings.Float] struct {
	axpy        axpyJob[T]
	mul         mulJob[T]
	dot         dotJob[T]
	sum         sumJob[T]
	gemm        gemmJob[T]
	gemmEx      gemmExJob[T]
	sumSquares  sumSquaresJob[T]
	bias        biasJob[T]
	biasGrad    biasGradJob[T]
	biasReLUBwd biasReLUBackwardJob[T]
	act         activationJob[T]
	actBwd      activationBackwardJob[T]
	gaussLogp   gaussLogProbJob[T]
	gaussBwd    gaussBackwardJob[T]
	logDetAcc   logDetAccJob[T]
	affineFwd   affineForwardJob[T]
	affineInv   affineInverseJob[T]
	adam        adamJob[T]
	gather      gatherJob[T]
	cols        colsJob[T]
	couplingFwd couplingForwardJob[T]
	couplingInv couplingInverseJob[T]
	couplingBwd couplingBackwardJob[T]
	odeFwd      odeFuncForwardJob[T]    // cpu_ode.go
	odeVJP      odeFuncVJPJob[T]        // cpu_ode.go
	rk4         odeRK4Job[T]            // cpu_ode.go
	dopri5      odeDopri5Job[T]         // cpu_ode.go
	rk4Bwd      odeRK4BackwardJob[T]    // cpu_ode.go
	dopri5Bwd   odeDopri5BackwardJob[T] // cpu_ode.go
	gmmLogp     gmmLogProbJob[T]        // cpu_gmm.go
	gmmBwd      gmmBackwardJob[T]       // cpu_gmm.go
	actNorm     actNormJob[T]           // cpu_glow.go
	actNormBwd  actNormBackwardJob[T]   // cpu_glow.go
	luSolve     luSolveJob[T]           // cpu_glow.go
	img         imageJobs[T]            // cpu_image.go
}

func newCPU[T bindings.Float](dt DType, threads int) *cpu[T] {
	c := &cpu[T]{dt: dt, pool: newPool(threads)}
	c.block = c.runBlock
	c.errs = make([]error, threads)
	c.gemmWork = make([][]T, threads)
	c.dpart = make([][]float64, threads)
	c.dsum = make([]float64, threads)
	return c
}

func (c *cpu[T]) Name() string { return "cpu" }
func (c *cpu[T]) DType() DType { return c.dt }
func (c *cpu[T]) Threads() int { return c.pool.threads }

func (c *cpu[T]) Close() { c.pool.close() }

func (c *cpu[T]) s(t *Tensor) []T { return t.store.([]T) }

// opt is s for an optional Tensor: nil for nil.
func (c *cpu[T]) opt(t *Tensor) []T {
	if t == nil {
		return nil
	}
	return c.s(t)
}

// rows returns rows [lo, hi) of a row-major array of w columns.
func rows[T bindings.Float](s []T, lo, hi, w int) []T { return s[lo*w : hi*w] }

// optRows is rows for an optional output: nil stays nil.
func optRows[T bindings.Float](s []T, lo, hi, w int) []T {
	if s == nil {
		return nil
	}
	return s[lo*w : hi*w]
}

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

// run runs job j over nb blocks of units, leaving each block's error in
// c.errs.
func (c *cpu[T]) run(j blockJob[T], units, nb int) {
	c.job, c.units, c.nb = j, units, nb
	c.pool.do(nb, c.block)
	c.job = nil
}

func (c *cpu[T]) runBlock(blk int) {
	lo, hi := bounds(c.units, c.nb, blk)
	c.errs[blk] = c.job.block(c, blk, lo, hi)
}

// dispatch runs job j over nb blocks of units and panics with the first
// kernel error (only reachable through a bug: the contract is checked
// first).
func (c *cpu[T]) dispatch(j blockJob[T], units, nb int) {
	c.run(j, units, nb)
	for b := 0; b < nb; b++ {
		if err := c.errs[b]; err != nil {
			c.errs[b] = nil
			panic(fmt.Sprintf("native: cpu: %v", err))
		}
	}
}

// elementwise dispatches j over n elements of cost flops each.
func (c *cpu[T]) elementwise(j blockJob[T], n, cost int) {
	c.dispatch(j, n, c.pool.split(n, cost))
}

// partial returns block blk's scratch of n elements for a reduction.
func (c *cpu[T]) partial(blk, n int) []T {
	return c.part[(blk-1)*n : blk*n]
}

// partialOr is where block blk sums a reduction into out: out itself for
// block 0, its own scratch for the others (added by reduce).
func (c *cpu[T]) partialOr(blk int, out []T) []T {
	if blk == 0 {
		return out
	}
	return c.partial(blk, len(out))
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

func must(op string, err error) {
	if err != nil {
		panic(fmt.Sprintf("native: cpu: %s: %v", op, err))
	}
}

// ---- BLAS 1 ------------------------------------------------------------------

// axpyJob: y += alpha·x, by elements.
type axpyJob[T bindings.Float] struct {
	alpha T
	x, y  []T
}

func (j *axpyJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	return bindings.Axpy(j.alpha, j.x[lo:hi], j.y[lo:hi])
}

func (c *cpu[T]) Axpy(alpha float64, x, y *Tensor) {
	n := CheckAxpy(x, y)
	j := &c.jobs.axpy
	*j = axpyJob[T]{alpha: T(alpha), x: c.s(x), y: c.s(y)}
	c.elementwise(j, n, 2)
}

// mulJob: out = a⊙b, by elements (out may be a or b: each element is read
// before it is written, in one block).
type mulJob[T bindings.Float] struct{ a, b, out []T }

func (j *mulJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	return bindings.Mul(j.a[lo:hi], j.b[lo:hi], j.out[lo:hi])
}

func (c *cpu[T]) Mul(out, a, b *Tensor) {
	n := CheckMul(out, a, b)
	j := &c.jobs.mul
	*j = mulJob[T]{a: c.s(a), b: c.s(b), out: c.s(out)}
	c.elementwise(j, n, 2)
}

// dotJob: each block's Σ x_i y_i in c.dsum, by elements.
type dotJob[T bindings.Float] struct{ x, y []T }

func (j *dotJob[T]) block(c *cpu[T], blk, lo, hi int) (err error) {
	c.dsum[blk], err = bindings.Dot(j.x[lo:hi], j.y[lo:hi])
	return err
}

// sumJob: each block's Σ x_i in c.dsum, by elements.
type sumJob[T bindings.Float] struct{ x []T }

func (j *sumJob[T]) block(c *cpu[T], blk, lo, hi int) (err error) {
	c.dsum[blk], err = bindings.Sum(j.x[lo:hi])
	return err
}

func (c *cpu[T]) sumBlocks(nb int) float64 {
	s := 0.0
	for b := 0; b < nb; b++ {
		s += c.dsum[b]
	}
	return s
}

func (c *cpu[T]) Dot(x, y *Tensor) float64 {
	n := CheckDot(x, y)
	j := &c.jobs.dot
	*j = dotJob[T]{x: c.s(x), y: c.s(y)}
	nb := c.pool.split(n, 2)
	c.dispatch(j, n, nb)
	return c.sumBlocks(nb)
}

func (c *cpu[T]) Sum(x *Tensor) float64 {
	j := &c.jobs.sum
	*j = sumJob[T]{x: c.s(x)}
	nb := c.pool.split(x.Len(), 1)
	c.dispatch(j, x.Len(), nb)
	return c.sumBlocks(nb)
}

// ---- GEMM --------------------------------------------------------------------

// gemmJob: C = alpha·op(A)·op(B) + beta·C by row blocks of the m×n C,
// with k the inner dimension.
type gemmJob[T bindings.Float] struct {
	transA, transB bool
	n, k, lda, ldb int
	alpha, beta    T
	a, b, c        []T
}

func (j *gemmJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	// op(A)'s rows start at row lo of A, or column lo of A when A is
	// transposed.
	var a []T
	if j.transA {
		a = j.a[lo:]
	} else {
		a = j.a[lo*j.lda:]
	}
	// Each block packs into its own workspace, kept between calls.
	return bindings.GemmWS(j.transA, j.transB, hi-lo, j.n, j.k, j.alpha, a, j.lda, j.b, j.ldb, j.beta, rows(j.c, lo, hi, j.n), j.n, c.gemmWorkFor(blk, hi-lo, j.n, j.k))
}

func (c *cpu[T]) Gemm(transA, transB bool, alpha float64, a, b *Tensor, beta float64, cc *Tensor) {
	m, n, k := CheckGemm(transA, transB, a, b, cc)
	j := &c.jobs.gemm
	*j = gemmJob[T]{transA: transA, transB: transB, n: n, k: k, lda: a.cols, ldb: b.cols,
		alpha: T(alpha), beta: T(beta), a: c.s(a), b: c.s(b), c: c.s(cc)}
	c.dispatch(j, m, c.pool.split(m, 2*n*k))
}

// gemmWorkFor returns block blk's GEMM workspace for an m×n×k product,
// grown on first use of a larger shape (so steps allocate nothing).
func (c *cpu[T]) gemmWorkFor(blk, m, n, k int) []T {
	if need := bindings.GemmWorkLen[T](m, n, k); len(c.gemmWork[blk]) < need {
		c.gemmWork[blk] = make([]T, need)
	}
	return c.gemmWork[blk]
}

// dpartFor returns block blk's float64 scratch of n elements (grown once).
func (c *cpu[T]) dpartFor(blk, n int) []float64 {
	if len(c.dpart[blk]) < n {
		c.dpart[blk] = make([]float64, n)
	}
	return c.dpart[blk][:n]
}

// gemmExJob: GemmEx by row blocks of the m×n window of C; A's window starts
// at column a0, C's at c0; the epilogue's column sums go to each block's
// float64 partial.
type gemmExJob[T bindings.Float] struct {
	transA, transB      bool
	n, k, lda, ldb, ldc int
	a0, c0              int
	alpha, beta         T
	a, b, c             []T
	bias, mask          []T
	relu, colsum        bool
}

func (j *gemmExJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	var a []T
	if j.transA {
		a = j.a[j.a0+lo:]
	} else {
		a = j.a[lo*j.lda+j.a0:]
	}
	ep := bindings.Epilogue[T]{Bias: j.bias, ReLU: j.relu}
	if j.mask != nil {
		ep.Mask, ep.LDM = j.mask[lo*j.n:], j.n
	}
	if j.colsum {
		ep.ColSum = c.dpartFor(blk, j.n)
	}
	return bindings.GemmEpWS(j.transA, j.transB, hi-lo, j.n, j.k, j.alpha, a, j.lda, j.b, j.ldb, j.beta,
		j.c[lo*j.ldc+j.c0:], j.ldc, ep, c.gemmWorkFor(blk, hi-lo, j.n, j.k))
}

func (c *cpu[T]) GemmEx(transA, transB bool, alpha float64, a *Tensor, a0 int, b *Tensor, beta float64, cc *Tensor, c0 int, ep Epilogue) {
	m, n, k := CheckGemmEx(transA, transB, a, a0, b, cc, c0, ep)
	j := &c.jobs.gemmEx
	*j = gemmExJob[T]{transA: transA, transB: transB, n: n, k: k, lda: a.cols, ldb: b.cols, ldc: cc.cols,
		a0: a0, c0: c0, alpha: T(alpha), beta: T(beta), a: c.s(a), b: c.s(b), c: c.s(cc),
		bias: c.opt(ep.Bias), mask: c.opt(ep.Mask), relu: ep.ReLU, colsum: ep.ColSum != nil}
	nb := c.pool.split(m, 2*n*k+n)
	c.dispatch(j, m, nb)
	if ep.ColSum != nil {
		// Block partials in block order, in float64, rounded once.
		sum := c.dpart[0][:n]
		for b := 1; b < nb; b++ {
			for i, v := range c.dpart[b][:n] {
				sum[i] += v
			}
		}
		out := c.s(ep.ColSum)
		for i, v := range sum {
			out[i] = T(v)
		}
	}
}

// sumSquaresJob: each block's per-segment Σ x² over its element range in
// its float64 partial.
type sumSquaresJob[T bindings.Float] struct {
	x    []T
	ends []int64
}

func (j *sumSquaresJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	return bindings.SumSquares(lo, hi, j.x, j.ends, c.dpartFor(blk, len(j.ends)))
}

func (c *cpu[T]) SumSquares(out []float64, x *Tensor, ends []int64) {
	CheckSumSquares(out, x, ends)
	if len(ends) == 0 {
		return
	}
	n := int(ends[len(ends)-1])
	j := &c.jobs.sumSquares
	*j = sumSquaresJob[T]{x: c.s(x), ends: ends}
	nb := c.pool.split(n, 2)
	c.dispatch(j, n, nb)
	copy(out, c.dpart[0][:len(ends)])
	for b := 1; b < nb; b++ {
		for s, v := range c.dpart[b][:len(ends)] {
			out[s] += v
		}
	}
}

// ---- bias and activations ----------------------------------------------------

// biasJob: y[i,:] += bias (BiasAdd), or y[i,:] = max(y[i,:] + bias, 0)
// when relu (BiasReLU), by rows; y is n×d.
type biasJob[T bindings.Float] struct {
	relu    bool
	d       int
	bias, y []T
}

func (j *biasJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	if j.relu {
		return bindings.BiasReLU(hi-lo, j.d, j.bias, rows(j.y, lo, hi, j.d))
	}
	return bindings.BiasAdd(hi-lo, j.d, j.bias, rows(j.y, lo, hi, j.d))
}

func (c *cpu[T]) BiasAdd(y, bias *Tensor) {
	n, d := CheckBiasAdd(y, bias)
	j := &c.jobs.bias
	*j = biasJob[T]{d: d, bias: c.s(bias), y: c.s(y)}
	c.dispatch(j, n, c.pool.split(n, d))
}

func (c *cpu[T]) BiasReLU(y, bias *Tensor) {
	n, d := CheckBiasReLU(y, bias)
	j := &c.jobs.bias
	*j = biasJob[T]{relu: true, d: d, bias: c.s(bias), y: c.s(y)}
	c.dispatch(j, n, c.pool.split(n, 2*d))
}

// biasGradJob: db = Σ_i dy[i,:], by rows, each block into its partial.
type biasGradJob[T bindings.Float] struct {
	d      int
	dy, db []T
}

func (j *biasGradJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	return bindings.BiasGrad(hi-lo, j.d, rows(j.dy, lo, hi, j.d), c.partialOr(blk, j.db))
}

func (c *cpu[T]) BiasGrad(db, dy *Tensor) {
	n, d := CheckBiasGrad(db, dy)
	nb := c.pool.split(n, d)
	c.ensurePartial(nb, d)
	j := &c.jobs.biasGrad
	*j = biasGradJob[T]{d: d, dy: c.s(dy), db: c.s(db)}
	c.dispatch(j, n, nb)
	c.reduce(nb, j.db)
}

// biasReLUBackwardJob: dz = dy·[y > 0] and db = Σ_i dz[i,:], by rows.
type biasReLUBackwardJob[T bindings.Float] struct {
	d             int
	y, dy, dz, db []T
}

func (j *biasReLUBackwardJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	d := j.d
	return bindings.BiasReLUBackward(hi-lo, d, rows(j.y, lo, hi, d), rows(j.dy, lo, hi, d), rows(j.dz, lo, hi, d), c.partialOr(blk, j.db))
}

func (c *cpu[T]) BiasReLUBackward(dz, db, y, dy *Tensor) {
	n, d := CheckBiasReLUBackward(dz, db, y, dy)
	nb := c.pool.split(n, 2*d)
	c.ensurePartial(nb, d)
	j := &c.jobs.biasReLUBwd
	*j = biasReLUBackwardJob[T]{d: d, y: c.s(y), dy: c.s(dy), dz: c.s(dz), db: c.s(db)}
	c.dispatch(j, n, nb)
	c.reduce(nb, j.db)
}

// activationJob: y = tanh(x) when tanh, else y = max(x, 0), by elements.
type activationJob[T bindings.Float] struct {
	tanh bool
	x, y []T
}

func (j *activationJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	if j.tanh {
		return bindings.Tanh(j.x[lo:hi], j.y[lo:hi])
	}
	return bindings.ReLU(j.x[lo:hi], j.y[lo:hi])
}

func (c *cpu[T]) ReLU(y, x *Tensor) {
	n := CheckReLU(y, x)
	j := &c.jobs.act
	*j = activationJob[T]{x: c.s(x), y: c.s(y)}
	c.elementwise(j, n, 1)
}

func (c *cpu[T]) Tanh(y, x *Tensor) {
	n := CheckTanh(y, x)
	j := &c.jobs.act
	*j = activationJob[T]{tanh: true, x: c.s(x), y: c.s(y)}
	c.elementwise(j, n, 20)
}

// activationBackwardJob: dx = dy·(1 − a²) with a = tanh(x) when tanh, else
// dx = dy·[a > 0] with a = x, by elements.
type activationBackwardJob[T bindings.Float] struct {
	tanh      bool
	a, dy, dx []T
}

func (j *activationBackwardJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	if j.tanh {
		return bindings.TanhBackward(j.a[lo:hi], j.dy[lo:hi], j.dx[lo:hi])
	}
	return bindings.ReLUBackward(j.a[lo:hi], j.dy[lo:hi], j.dx[lo:hi])
}

func (c *cpu[T]) ReLUBackward(dx, x, dy *Tensor) {
	n := CheckReLUBackward(dx, x, dy)
	j := &c.jobs.actBwd
	*j = activationBackwardJob[T]{a: c.s(x), dy: c.s(dy), dx: c.s(dx)}
	c.elementwise(j, n, 1)
}

func (c *cpu[T]) TanhBackward(dx, y, dy *Tensor) {
	n := CheckTanhBackward(dx, y, dy)
	j := &c.jobs.actBwd
	*j = activationBackwardJob[T]{tanh: true, a: c.s(y), dy: c.s(dy), dx: c.s(dx)}
	c.elementwise(j, n, 3)
}

// ---- Gaussian ------------------------------------------------------------------

// gaussLogProbJob: u_i = L(x_i − mu), logp_i = c + logdetL − ½‖u_i‖², by
// rows.
type gaussLogProbJob[T bindings.Float] struct {
	d                 int
	logdetL           T
	x, mu, l, u, logp []T
}

func (j *gaussLogProbJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	d := j.d
	return bindings.GaussLogProb(hi-lo, d, rows(j.x, lo, hi, d), j.mu, j.l, j.logdetL, rows(j.u, lo, hi, d), j.logp[lo:hi])
}

func (c *cpu[T]) GaussLogProb(logp, u, x, mu, l *Tensor, logdetL float64) {
	n, d := CheckGaussLogProb(logp, u, x, mu, l)
	j := &c.jobs.gaussLogp
	*j = gaussLogProbJob[T]{d: d, logdetL: T(logdetL), x: c.s(x), mu: c.s(mu), l: c.s(l), u: c.s(u), logp: c.s(logp)}
	c.dispatch(j, n, c.pool.split(n, 2*d*d+3*d))
}

// gaussBackwardJob: GaussLogProb's vector-Jacobian product, by rows; dx
// may be nil; dmu and dl are summed per block ([dmu | dl] in a partial).
type gaussBackwardJob[T bindings.Float] struct {
	d                               int
	x, mu, l, u, dlogp, dx, dmu, dl []T
}

func (j *gaussBackwardJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	d := j.d
	dmu, dl := j.dmu, j.dl
	if blk > 0 {
		p := c.partial(blk, d+d*d)
		dmu, dl = p[:d], p[d:]
	}
	return bindings.GaussBackward(hi-lo, d, rows(j.x, lo, hi, d), j.mu, j.l, rows(j.u, lo, hi, d), j.dlogp[lo:hi],
		optRows(j.dx, lo, hi, d), dmu, dl)
}

func (c *cpu[T]) GaussBackward(dx, dmu, dl, x, mu, l, u, dlogp *Tensor) {
	n, d := CheckGaussBackward(dx, dmu, dl, x, mu, l, u, dlogp)
	nb := c.pool.split(n, 4*d*d+3*d)
	c.ensurePartial(nb, d+d*d)
	j := &c.jobs.gaussBwd
	*j = gaussBackwardJob[T]{d: d, x: c.s(x), mu: c.s(mu), l: c.s(l), u: c.s(u), dlogp: c.s(dlogp),
		dx: c.opt(dx), dmu: c.s(dmu), dl: c.s(dl)}
	c.dispatch(j, n, nb)
	for b := 1; b < nb; b++ {
		p := c.partial(b, d+d*d)
		must("reduce", bindings.Axpy(1, p[:d], j.dmu))
		must("reduce", bindings.Axpy(1, p[d:], j.dl))
	}
}

// ---- log-determinants and affine maps ------------------------------------------

// logDetAccJob: logdet[i] += Σ_j s[i,j], by rows.
type logDetAccJob[T bindings.Float] struct {
	d         int
	s, logdet []T
}

func (j *logDetAccJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	return bindings.LogDetAcc(hi-lo, j.d, rows(j.s, lo, hi, j.d), j.logdet[lo:hi])
}

func (c *cpu[T]) LogDetAcc(logdet, s *Tensor) {
	n, d := CheckLogDetAcc(logdet, s)
	j := &c.jobs.logDetAcc
	*j = logDetAccJob[T]{d: d, s: c.s(s), logdet: c.s(logdet)}
	c.dispatch(j, n, c.pool.split(n, d))
}

// affineForwardJob: y_i = M x_i + b and logdet[i] += ldm (logdet may be
// nil), by rows.
type affineForwardJob[T bindings.Float] struct {
	d                  int
	ldm                T
	x, m, b, y, logdet []T
}

func (j *affineForwardJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	d := j.d
	return bindings.AffineForward(hi-lo, d, rows(j.x, lo, hi, d), j.m, j.b, j.ldm, rows(j.y, lo, hi, d), optRows(j.logdet, lo, hi, 1))
}

func (c *cpu[T]) AffineForward(y, logdet, x, m, b *Tensor, ldm float64) {
	n, d := CheckAffineForward(y, logdet, x, m, b)
	j := &c.jobs.affineFwd
	*j = affineForwardJob[T]{d: d, ldm: T(ldm), x: c.s(x), m: c.s(m), b: c.s(b), y: c.s(y), logdet: c.opt(logdet)}
	c.dispatch(j, n, c.pool.split(n, 2*d*d))
}

// affineInverseJob: x_i = Minv (y_i − b), by rows.
type affineInverseJob[T bindings.Float] struct {
	d             int
	y, minv, b, x []T
}

func (j *affineInverseJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	d := j.d
	return bindings.AffineInverse(hi-lo, d, rows(j.y, lo, hi, d), j.minv, j.b, rows(j.x, lo, hi, d))
}

func (c *cpu[T]) AffineInverse(x, y, minv, b *Tensor) {
	n, d := CheckAffineInverse(x, y, minv, b)
	j := &c.jobs.affineInv
	*j = affineInverseJob[T]{d: d, y: c.s(y), minv: c.s(minv), b: c.s(b), x: c.s(x)}
	c.dispatch(j, n, c.pool.split(n, 2*d*d))
}

// ---- Adam, gather, columns -------------------------------------------------------

// adamJob: one Adam step on p with gradient g and moments m, v, by
// elements.
type adamJob[T bindings.Float] struct {
	h          AdamHyper
	p, g, m, v []T
}

func (j *adamJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	h := j.h
	return bindings.Adam(j.p[lo:hi], j.g[lo:hi], j.m[lo:hi], j.v[lo:hi], h.LR, h.Beta1, h.Beta2, h.Eps, h.BC1, h.BC2)
}

func (c *cpu[T]) Adam(p, g, m, v *Tensor, h AdamHyper) {
	n := CheckAdam(p, g, m, v)
	j := &c.jobs.adam
	*j = adamJob[T]{h: h, p: c.s(p), g: c.s(g), m: c.s(m), v: c.s(v)}
	c.elementwise(j, n, 10)
}

// gatherJob: dst[i,:] = src[idx[i],:], by rows of dst.
type gatherJob[T bindings.Float] struct {
	d        int
	src, dst []T
	idx      []int32
}

func (j *gatherJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	return bindings.GatherRows(hi-lo, j.d, j.src, j.idx[lo:hi], rows(j.dst, lo, hi, j.d))
}

func (c *cpu[T]) GatherRows(dst, src *Tensor, idx []int32) {
	n, d := CheckGatherRows(dst, src, idx)
	j := &c.jobs.gather
	*j = gatherJob[T]{d: d, src: c.s(src), dst: c.s(dst), idx: idx}
	c.dispatch(j, n, c.pool.split(n, d))
}

// colsJob: the narrow n×k array against columns [c0, c0+k) of the wide
// n×d one, by rows: narrow = wide[:, c0:c0+k] (CopyCols), or
// wide[:, c0:c0+k] += narrow when add (AddCols).
type colsJob[T bindings.Float] struct {
	add          bool
	d, c0, k     int
	wide, narrow []T
}

func (j *colsJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	w, nw := rows(j.wide, lo, hi, j.d), rows(j.narrow, lo, hi, j.k)
	if j.add {
		return bindings.AddCols(hi-lo, j.d, j.c0, j.k, nw, w)
	}
	return bindings.CopyCols(hi-lo, j.d, j.c0, j.k, w, nw)
}

func (c *cpu[T]) CopyCols(dst, src *Tensor, c0 int) {
	n, d, k := CheckCopyCols(dst, src, c0)
	j := &c.jobs.cols
	*j = colsJob[T]{d: d, c0: c0, k: k, wide: c.s(src), narrow: c.s(dst)}
	c.dispatch(j, n, c.pool.split(n, k))
}

func (c *cpu[T]) AddCols(dst, src *Tensor, c0 int) {
	n, d, k := CheckAddCols(dst, src, c0)
	j := &c.jobs.cols
	*j = colsJob[T]{add: true, d: d, c0: c0, k: k, wide: c.s(dst), narrow: c.s(src)}
	c.dispatch(j, n, c.pool.split(n, k))
}

// ---- affine coupling -------------------------------------------------------------

// couplingArgs are the arguments the three coupling operations share:
// rows of d columns, transformed columns [t0, t0+dt), h rows of 2dt
// columns [μ | r], and the scale function.
type couplingArgs[T bindings.Float] struct {
	d, t0, dt int
	kind      bindings.ScaleKind
	bound     T
}

func newCouplingArgs[T bindings.Float](d, t0, dt int, sc Scale) couplingArgs[T] {
	kind := bindings.ScaleSigmoid
	if sc.Kind == ScaleExp {
		kind = bindings.ScaleExp
	}
	return couplingArgs[T]{d: d, t0: t0, dt: dt, kind: kind, bound: T(sc.Bound)}
}

// cost is the split cost of a coupling row: perCol for each transformed
// column (two or three transcendental functions, ~20 each, as for Tanh)
// and a copy for every column.
func (a *couplingArgs[T]) cost(perCol int) int { return a.d + perCol*a.dt }

// couplingForwardJob: y_t = x_t ⊙ s(r) + μ, y = x elsewhere, logdet[i] +=
// Σ ln s (logdet may be nil), by rows.
type couplingForwardJob[T bindings.Float] struct {
	couplingArgs[T]
	x, h, y, logdet []T
}

func (j *couplingForwardJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	d, hw := j.d, 2*j.dt
	return bindings.CouplingForward(hi-lo, d, j.t0, j.dt, j.kind, j.bound,
		rows(j.x, lo, hi, d), rows(j.h, lo, hi, hw), rows(j.y, lo, hi, d), optRows(j.logdet, lo, hi, 1))
}

func (c *cpu[T]) CouplingForward(y, logdet, x, h *Tensor, t0 int, sc Scale) {
	n, d, dt := CheckCouplingForward(y, logdet, x, h, t0, sc)
	j := &c.jobs.couplingFwd
	*j = couplingForwardJob[T]{couplingArgs: newCouplingArgs[T](d, t0, dt, sc), x: c.s(x), h: c.s(h), y: c.s(y), logdet: c.opt(logdet)}
	c.dispatch(j, n, c.pool.split(n, j.cost(40)))
}

// couplingInverseJob: x_t = (y_t − μ) / s(r), x = y elsewhere, by rows.
type couplingInverseJob[T bindings.Float] struct {
	couplingArgs[T]
	y, h, x []T
}

func (j *couplingInverseJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	d, hw := j.d, 2*j.dt
	return bindings.CouplingInverse(hi-lo, d, j.t0, j.dt, j.kind, j.bound,
		rows(j.y, lo, hi, d), rows(j.h, lo, hi, hw), rows(j.x, lo, hi, d))
}

func (c *cpu[T]) CouplingInverse(x, y, h *Tensor, t0 int, sc Scale) {
	n, d, dt := CheckCouplingInverse(x, y, h, t0, sc)
	j := &c.jobs.couplingInv
	*j = couplingInverseJob[T]{couplingArgs: newCouplingArgs[T](d, t0, dt, sc), y: c.s(y), h: c.s(h), x: c.s(x)}
	c.dispatch(j, n, c.pool.split(n, j.cost(40)))
}

// couplingBackwardJob: CouplingForward's vector-Jacobian product (dx may
// be nil), by rows.
type couplingBackwardJob[T bindings.Float] struct {
	couplingArgs[T]
	x, h, dy, dlogdet, dx, dh []T
}

func (j *couplingBackwardJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	d, hw := j.d, 2*j.dt
	return bindings.CouplingBackward(hi-lo, d, j.t0, j.dt, j.kind, j.bound,
		rows(j.x, lo, hi, d), rows(j.h, lo, hi, hw), rows(j.dy, lo, hi, d), j.dlogdet[lo:hi], optRows(j.dx, lo, hi, d), rows(j.dh, lo, hi, hw))
}

func (c *cpu[T]) CouplingBackward(dx, dh, x, h, dy, dlogdet *Tensor, t0 int, sc Scale) {
	n, d, dt := CheckCouplingBackward(dx, dh, x, h, dy, dlogdet, t0, sc)
	j := &c.jobs.couplingBwd
	*j = couplingBackwardJob[T]{couplingArgs: newCouplingArgs[T](d, t0, dt, sc),
		x: c.s(x), h: c.s(h), dy: c.s(dy), dlogdet: c.s(dlogdet), dx: c.opt(dx), dh: c.s(dh)}
	c.dispatch(j, n, c.pool.split(n, j.cost(60)))
}

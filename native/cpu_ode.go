//go:build cgo

package native

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lrmf-go/lrmf/bindings"
)

var _ ODEBackend = (*cpu[float64])(nil)
var _ ODEPather = (*cpu[float64])(nil)

// ODEPaths lists the code paths of the FFJORD kernels this CPU runs:
// "portable" and, on x86-64 CPUs with them, "avx2" and "avx512" (the row
// kernels), then "batched" (BatchedODE over this backend's GEMMs).
func (c *cpu[T]) ODEPaths() []string {
	var names []string
	for _, isa := range bindings.ODEISAs() {
		names = append(names, isa.String())
	}
	return append(names, "batched")
}

// SetODEPath forces one of ODEPaths ("auto": the default, the widest row
// kernels).
func (c *cpu[T]) SetODEPath(name string) error {
	c.ode.batched = false
	if name == "auto" {
		c.ode.isa = bindings.ODEAuto
		return nil
	}
	if name == "batched" {
		c.ode.isa, c.ode.batched = bindings.ODEAuto, true
		return nil
	}
	for _, isa := range bindings.ODEISAs() {
		if isa.String() == name {
			c.ode.isa = isa
			return nil
		}
	}
	return fmt.Errorf("native: cpu: ODE path %q: this machine runs auto, %s", name, strings.Join(c.ODEPaths(), ", "))
}

// cpuODE is the cpu backend's FFJORD state shared by the ODE jobs: the
// network of the current call and per-block workspaces and counters, kept
// between calls so that steady-state calls allocate nothing.
type cpuODE struct {
	dims       []int64 // dims of the current job (reused while unchanged)
	k          int     // probes per row (0: exact trace)
	d          int
	work       [][]float64     // per block
	nfe, accep []int           // per block
	vjp        []int           // per block (backward passes)
	isa        bindings.ODEISA // code path of the kernels (SetODEPath)
	batched    bool            // the "batched" path (SetODEPath)
	bat        ODEOps          // the batched path, made on first use
}

// batch returns the batched path when it is selected, else nil.
func (c *cpu[T]) batch() ODEOps {
	if !c.ode.batched {
		return nil
	}
	return c.batchODE()
}

// batchODE returns the backend's batched path (made on first use): a
// BatchedODE over this backend in float64; in float32, one over a float64
// twin sharing this backend's threads, so that it computes in double like
// the row kernels (wideODE).
func (c *cpu[T]) batchODE() ODEOps {
	if c.ode.bat == nil {
		if c.dt == Float64 {
			c.ode.bat = NewBatchedODE(c)
		} else {
			c.ode.bat = newWideODE(c, NewBatchedODE(newCPUOnPool[float64](Float64, c.pool)))
		}
	}
	return c.ode.bat
}

// newCPUOnPool is newCPU on an existing pool (whose owner closes it).
func newCPUOnPool[T bindings.Float](dt DType, p *pool) *cpu[T] {
	c := &cpu[T]{dt: dt, pool: p}
	c.block = c.runBlock
	c.errs = make([]error, p.threads)
	c.gemmWork = make([][]T, p.threads)
	c.dpart = make([][]float64, p.threads)
	c.dsum = make([]float64, p.threads)
	return c
}

// batchTapeOf returns the batched path that recorded tape, or nil when
// the row kernels did.
func (c *cpu[T]) batchTapeOf(tape *ODETape) ODEOps {
	if tape != nil {
		if _, ok := tape.Ext.(*batchTape); ok {
			return c.batchODE()
		}
	}
	return nil
}

// setODE stores dims (as int64, reallocated only when they change), k and
// D, and grows each of nb blocks' workspace.
func (c *cpu[T]) setODE(dims []int, k, d, nb int) {
	o := &c.ode
	same := len(o.dims) == len(dims)
	for i := 0; same && i < len(dims); i++ {
		same = o.dims[i] == int64(dims[i])
	}
	if !same {
		o.dims = make([]int64, len(dims))
		for i, v := range dims {
			o.dims[i] = int64(v)
		}
	}
	o.k, o.d = k, d
	if len(o.work) < c.pool.threads {
		o.work = make([][]float64, c.pool.threads)
		o.nfe = make([]int, c.pool.threads)
		o.accep = make([]int, c.pool.threads)
		o.vjp = make([]int, c.pool.threads)
	}
	wl, err := bindings.ODEFuncWorkLen(o.dims, k)
	must("ODEFuncWorkLen", err)
	for b := 0; b < nb; b++ {
		if len(o.work[b]) < wl {
			o.work[b] = make([]float64, wl)
		}
	}
}

// odeCost is the split cost of one f evaluation with divergence of a row:
// the primal and the m tangent passes through all layers.
func odeCost(dims []int, k int) int {
	m := k
	if m == 0 {
		m = dims[len(dims)-1]
	}
	return 2 * (m + 1) * ODENumParams(dims)
}

// probes returns rows [lo, hi) of the current job's probes eps (nil for
// the exact trace).
func probes[T bindings.Float](o *cpuODE, eps []T, lo, hi int) []T {
	if o.k == 0 {
		return nil
	}
	return rows(eps, lo, hi, o.k*o.d)
}

// count records block blk's work.
func (o *cpuODE) count(blk, nfe, accepted, vjp int) {
	o.nfe[blk], o.accep[blk], o.vjp[blk] = nfe, accepted, vjp
}

func (c *cpu[T]) odeStats(nb int) ODEStats {
	var st ODEStats
	for b := 0; b < nb; b++ {
		st.NFE += c.ode.nfe[b]
		st.Accepted += c.ode.accep[b]
		st.VJP += c.ode.vjp[b]
	}
	return st
}

// odeFuncForwardJob: dz = f(z, t), trace = tr ∂f/∂z, by rows.
type odeFuncForwardJob[T bindings.Float] struct {
	t                        float64
	theta, z, eps, dz, trace []T
}

func (j *odeFuncForwardJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	o := &c.ode
	d := o.d
	return bindings.ODEFuncForward(hi-lo, o.dims, j.theta, T(j.t), rows(j.z, lo, hi, d), o.k, probes(o, j.eps, lo, hi),
		rows(j.dz, lo, hi, d), j.trace[lo:hi], o.work[blk], o.isa)
}

func (c *cpu[T]) ODEFuncForward(dz, trace, z, theta, eps *Tensor, dims []int, t float64) {
	if bo := c.batch(); bo != nil {
		bo.ODEFuncForward(dz, trace, z, theta, eps, dims, t)
		return
	}
	n, d, k := CheckODEFuncForward(dz, trace, z, theta, eps, dims)
	nb := c.pool.split(n, odeCost(dims, k))
	c.setODE(dims, k, d, nb)
	j := &c.jobs.odeFwd
	*j = odeFuncForwardJob[T]{t: t, theta: c.s(theta), z: c.s(z), eps: c.opt(eps), dz: c.s(dz), trace: c.s(trace)}
	c.dispatch(j, n, nb)
}

// odeFuncVJPJob: gz = ∂Λ/∂z and gtheta = ∂Λ/∂θ (per-block partials), by
// rows.
type odeFuncVJPJob[T bindings.Float] struct {
	t                                  float64
	theta, z, eps, az, atr, gz, gtheta []T
}

func (j *odeFuncVJPJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	o := &c.ode
	d := o.d
	return bindings.ODEFuncVJP(hi-lo, o.dims, j.theta, T(j.t), rows(j.z, lo, hi, d), o.k, probes(o, j.eps, lo, hi),
		rows(j.az, lo, hi, d), j.atr[lo:hi], rows(j.gz, lo, hi, d), c.partialOr(blk, j.gtheta), o.work[blk], o.isa)
}

func (c *cpu[T]) ODEFuncVJP(gz, gtheta, z, theta, eps, az, atr *Tensor, dims []int, t float64) {
	if bo := c.batch(); bo != nil {
		bo.ODEFuncVJP(gz, gtheta, z, theta, eps, az, atr, dims, t)
		return
	}
	n, d, k := CheckODEFuncVJP(gz, gtheta, z, theta, eps, az, atr, dims)
	nb := c.pool.split(n, 3*odeCost(dims, k))
	c.setODE(dims, k, d, nb)
	c.ensurePartial(nb, theta.Len())
	j := &c.jobs.odeVJP
	*j = odeFuncVJPJob[T]{t: t, theta: c.s(theta), z: c.s(z), eps: c.opt(eps), az: c.s(az), atr: c.s(atr), gz: c.s(gz), gtheta: c.s(gtheta)}
	c.dispatch(j, n, nb)
	c.reduce(nb, j.gtheta)
}

// odeRK4Job: an RK4 solve by rows, recording the step start states in
// tape when it is not nil.
type odeRK4Job[T bindings.Float] struct {
	t0, t1                     float64
	steps                      int
	tape                       *ODETape
	theta, z0, eps, z1, logdet []T
}

func (j *odeRK4Job[T]) block(c *cpu[T], blk, lo, hi int) error {
	o := &c.ode
	d, n := o.d, hi-lo
	var nfe int
	var err error
	if j.tape == nil {
		nfe, err = bindings.ODESolveRK4(n, o.dims, j.theta, j.t0, j.t1, j.steps, rows(j.z0, lo, hi, d), o.k, probes(o, j.eps, lo, hi),
			rows(j.z1, lo, hi, d), j.logdet[lo:hi], o.work[blk], o.isa)
	} else {
		nfe, err = bindings.ODESolveRK4Save(n, o.dims, j.theta, j.t0, j.t1, j.steps, rows(j.z0, lo, hi, d), o.k, probes(o, j.eps, lo, hi),
			rows(j.z1, lo, hi, d), j.logdet[lo:hi], rows(j.tape.buf, lo, hi, j.tape.perRowBuf), o.work[blk], o.isa)
	}
	o.count(blk, nfe, j.steps*n, 0)
	return err
}

func (c *cpu[T]) ODESolveRK4(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	if bo := c.batch(); bo != nil {
		return bo.ODESolveRK4(z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	}
	n, d, k := CheckODESolveRK4(z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	return c.rk4(nil, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

func (c *cpu[T]) ODESolveRK4Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	if bo := c.batch(); bo != nil {
		return bo.ODESolveRK4Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	}
	n, d, k := CheckODESolveRK4Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	return c.rk4(tape, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

// rk4 runs an RK4 solve of checked arguments, recording it in tape if
// non-nil.
func (c *cpu[T]) rk4(tape *ODETape, n, d, k int, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	nb := c.pool.split(n, 4*steps*odeCost(dims, k))
	c.setODE(dims, k, d, nb)
	if tape != nil {
		tape.prepare(tapeRK4, n, d, k, steps, t0, t1)
	}
	j := &c.jobs.rk4
	*j = odeRK4Job[T]{t0: t0, t1: t1, steps: steps, tape: tape, theta: c.s(theta), z0: c.s(z0), eps: c.opt(eps), z1: c.s(z1), logdet: c.s(logdet)}
	c.dispatch(j, n, nb)
	return c.odeStats(nb)
}

// odeDopri5Job: a Dormand–Prince solve by rows, recording each row's
// accepted steps in tape when it is not nil.
type odeDopri5Job[T bindings.Float] struct {
	t0, t1                     float64
	opt                        bindings.Dopri5Options
	tape                       *ODETape
	theta, z0, eps, z1, logdet []T
}

func (j *odeDopri5Job[T]) block(c *cpu[T], blk, lo, hi int) error {
	o := &c.ode
	d, n := o.d, hi-lo
	var nfe, acc int
	var err error
	if j.tape == nil {
		nfe, acc, err = bindings.ODESolveDopri5(n, o.dims, j.theta, j.t0, j.t1, j.opt, rows(j.z0, lo, hi, d), o.k, probes(o, j.eps, lo, hi),
			rows(j.z1, lo, hi, d), j.logdet[lo:hi], o.work[blk], o.isa)
	} else {
		nfe, acc, err = bindings.ODESolveDopri5Save(n, o.dims, j.theta, j.t0, j.t1, j.opt, rows(j.z0, lo, hi, d), o.k, probes(o, j.eps, lo, hi),
			rows(j.z1, lo, hi, d), j.logdet[lo:hi], rows(j.tape.buf, lo, hi, j.tape.perRowBuf), j.tape.nacc[lo:hi], o.work[blk], o.isa)
	}
	o.count(blk, nfe, acc, 0)
	if err != nil {
		// Report the row in the batch, not in the block.
		return fmt.Errorf("rows [%d, %d): %w", lo, hi, err)
	}
	return nil
}

func (c *cpu[T]) ODESolveDopri5(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	if bo := c.batch(); bo != nil {
		return bo.ODESolveDopri5(z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	}
	n, d, k := CheckODESolveDopri5(z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	return c.dopri5("ODESolveDopri5", nil, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

func (c *cpu[T]) ODESolveDopri5Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	if bo := c.batch(); bo != nil {
		return bo.ODESolveDopri5Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	}
	n, d, k := CheckODESolveDopri5Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	return c.dopri5("ODESolveDopri5Record", tape, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

// dopri5 runs a Dormand–Prince solve of checked arguments, recording it in
// tape if non-nil; op names it in errors.
func (c *cpu[T]) dopri5(op string, tape *ODETape, n, d, k int, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	// A typical solve makes a few tens of steps of 6 evaluations.
	nb := c.pool.split(n, 120*odeCost(dims, k))
	c.setODE(dims, k, d, nb)
	if tape != nil {
		tape.prepare(tapeDopri5, n, d, k, opt.MaxSteps, t0, t1)
	}
	j := &c.jobs.dopri5
	*j = odeDopri5Job[T]{t0: t0, t1: t1, opt: bindings.Dopri5Options{Atol: opt.Atol, Rtol: opt.Rtol, H0: opt.H0, MaxSteps: opt.MaxSteps},
		tape: tape, theta: c.s(theta), z0: c.s(z0), eps: c.opt(eps), z1: c.s(z1), logdet: c.s(logdet)}
	c.run(j, n, nb)
	st := c.odeStats(nb)
	// The first failing block (in block order) is the error; a failure that
	// is not numerical is a bug (shapes were checked) and panics.
	var first error
	for b := 0; b < nb; b++ {
		err := c.errs[b]
		c.errs[b] = nil
		if err == nil || first != nil {
			continue
		}
		var oe *bindings.ODEError
		if !errors.As(err, &oe) {
			panic(fmt.Sprintf("native: cpu: %v", err))
		}
		first = fmt.Errorf("native: %s: %w", op, err)
	}
	return st, first
}

// odeBackwardArgs are the arguments the two Backward jobs share: the tape
// replayed, and gz0 = ∂L/∂z0, gtheta = ∂L/∂θ (per-block partials) for
// L = Σ a1⊙z1 + Σ ald⊙logdet.
type odeBackwardArgs[T bindings.Float] struct {
	tape                             *ODETape
	theta, eps, a1, ald, gz0, gtheta []T
}

func (c *cpu[T]) newODEBackwardArgs(tape *ODETape, gz0, gtheta, a1, ald, theta, eps *Tensor) odeBackwardArgs[T] {
	return odeBackwardArgs[T]{tape: tape, theta: c.s(theta), eps: c.opt(eps), a1: c.s(a1), ald: c.s(ald), gz0: c.s(gz0), gtheta: c.s(gtheta)}
}

// odeBackward runs a prepared Backward job j (whose shared arguments are
// args) of evalsPerRow evaluations per row over row blocks, with per-block
// θ partials reduced in block order.
func (c *cpu[T]) odeBackward(j blockJob[T], args *odeBackwardArgs[T], dims []int, n, d, k, evalsPerRow int) ODEStats {
	nb := c.pool.split(n, 3*evalsPerRow*odeCost(dims, k))
	c.setODE(dims, k, d, nb)
	c.ensurePartial(nb, len(args.gtheta))
	c.dispatch(j, n, nb)
	c.reduce(nb, args.gtheta)
	return c.odeStats(nb)
}

// odeRK4BackwardJob: ODESolveRK4Backward by rows.
type odeRK4BackwardJob[T bindings.Float] struct{ odeBackwardArgs[T] }

func (j *odeRK4BackwardJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	o, tp := &c.ode, j.tape
	d := o.d
	nfe, nv, err := bindings.ODESolveRK4Backward(hi-lo, o.dims, j.theta, tp.t0, tp.t1, tp.steps, o.k, probes(o, j.eps, lo, hi),
		rows(tp.buf, lo, hi, tp.perRowBuf), rows(j.a1, lo, hi, d), j.ald[lo:hi], rows(j.gz0, lo, hi, d), c.partialOr(blk, j.gtheta), o.work[blk], o.isa)
	o.count(blk, nfe, 0, nv)
	return err
}

func (c *cpu[T]) ODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats {
	if bo := c.batchTapeOf(tape); bo != nil {
		return bo.ODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	}
	n, d, k := CheckODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	mustHostTape("ODESolveRK4Backward", tape)
	j := &c.jobs.rk4Bwd
	*j = odeRK4BackwardJob[T]{c.newODEBackwardArgs(tape, gz0, gtheta, a1, ald, theta, eps)}
	return c.odeBackward(j, &j.odeBackwardArgs, dims, n, d, k, 7*tape.steps)
}

// odeDopri5BackwardJob: ODESolveDopri5Backward by rows.
type odeDopri5BackwardJob[T bindings.Float] struct{ odeBackwardArgs[T] }

func (j *odeDopri5BackwardJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	o, tp := &c.ode, j.tape
	d := o.d
	nfe, nv, err := bindings.ODESolveDopri5Backward(hi-lo, o.dims, j.theta, tp.steps, o.k, probes(o, j.eps, lo, hi),
		rows(tp.buf, lo, hi, tp.perRowBuf), tp.nacc[lo:hi], rows(j.a1, lo, hi, d), j.ald[lo:hi], rows(j.gz0, lo, hi, d), c.partialOr(blk, j.gtheta), o.work[blk], o.isa)
	o.count(blk, nfe, 0, nv)
	return err
}

func (c *cpu[T]) ODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats {
	if bo := c.batchTapeOf(tape); bo != nil {
		return bo.ODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	}
	n, d, k := CheckODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	mustHostTape("ODESolveDopri5Backward", tape)
	j := &c.jobs.dopri5Bwd
	*j = odeDopri5BackwardJob[T]{c.newODEBackwardArgs(tape, gz0, gtheta, a1, ald, theta, eps)}
	// A typical solve makes a few tens of accepted steps of 11 evaluations.
	return c.odeBackward(j, &j.odeBackwardArgs, dims, n, d, k, 200)
}

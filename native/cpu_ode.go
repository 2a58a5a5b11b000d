//go:build cgo

package native

import (
	"errors"
	"fmt"

	"github.com/lrmf-go/lrmf/bindings"
)

var _ ODEBackend = (*cpu[float64])(nil)

// cpuODE is the cpu backend's FFJORD state: the arguments of the ODE job
// being dispatched and per-block workspaces and counters, kept between
// calls so that steady-state calls allocate nothing.
type cpuODE struct {
	dims       []int64 // dims of the current job (reused while unchanged)
	k          int     // probes per row (0: exact trace)
	d          int
	t, t0, t1  float64
	steps      int
	opt        bindings.Dopri5Options
	work       [][]float64 // per block
	nfe, accep []int       // per block
	vjp        []int       // per block (backward passes)
	tape       *ODETape    // recording (mode 1) or replayed (mode 2)
	mode       int         // 0: plain solve, 1: record into tape, 2: backward
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

func (c *cpu[T]) optEps(eps *Tensor) []T {
	if eps == nil {
		return nil
	}
	return c.s(eps)
}

// runODE runs rows [lo, hi) of the current ODE job.
func (c *cpu[T]) runODE(blk, lo, hi int) error {
	j, o := &c.job, &c.ode
	d, k := o.d, o.k
	var eps []T
	if k > 0 {
		eps = j.e[lo*k*d : hi*k*d]
	}
	n := hi - lo
	switch j.op {
	case opODEFuncForward:
		return bindings.ODEFuncForward(n, o.dims, j.a, T(o.t), j.b[lo*d:hi*d], k, eps, j.c[lo*d:hi*d], j.d[lo:hi], o.work[blk])
	case opODEFuncVJP:
		g := j.h
		if blk > 0 {
			g = c.partial(blk, len(j.h))
		}
		return bindings.ODEFuncVJP(n, o.dims, j.a, T(o.t), j.b[lo*d:hi*d], k, eps, j.f[lo*d:hi*d], j.g[lo:hi], j.c[lo*d:hi*d], g, o.work[blk])
	case opODESolveRK4:
		var nfe int
		var err error
		switch o.mode {
		case 0:
			nfe, err = bindings.ODESolveRK4(n, o.dims, j.a, o.t0, o.t1, o.steps, j.b[lo*d:hi*d], k, eps, j.c[lo*d:hi*d], j.d[lo:hi], o.work[blk])
		case 1:
			per := o.tape.perRowBuf
			nfe, err = bindings.ODESolveRK4Save(n, o.dims, j.a, o.t0, o.t1, o.steps, j.b[lo*d:hi*d], k, eps, j.c[lo*d:hi*d], j.d[lo:hi],
				o.tape.buf[lo*per:hi*per], o.work[blk])
		default:
			g := j.h
			if blk > 0 {
				g = c.partial(blk, len(j.h))
			}
			per := o.tape.perRowBuf
			var nv int
			nfe, nv, err = bindings.ODESolveRK4Backward(n, o.dims, j.a, o.t0, o.t1, o.steps, k, eps, o.tape.buf[lo*per:hi*per],
				j.f[lo*d:hi*d], j.g[lo:hi], j.c[lo*d:hi*d], g, o.work[blk])
			o.nfe[blk], o.accep[blk], o.vjp[blk] = nfe, 0, nv
			return err
		}
		o.nfe[blk], o.accep[blk], o.vjp[blk] = nfe, o.steps*n, 0
		return err
	case opODESolveDopri5:
		if o.mode == 2 {
			g := j.h
			if blk > 0 {
				g = c.partial(blk, len(j.h))
			}
			per := o.tape.perRowBuf
			nfe, nv, err := bindings.ODESolveDopri5Backward(n, o.dims, j.a, o.opt.MaxSteps, k, eps, o.tape.buf[lo*per:hi*per], o.tape.nacc[lo:hi],
				j.f[lo*d:hi*d], j.g[lo:hi], j.c[lo*d:hi*d], g, o.work[blk])
			o.nfe[blk], o.accep[blk], o.vjp[blk] = nfe, 0, nv
			return err
		}
		var nfe, acc int
		var err error
		if o.mode == 1 {
			per := o.tape.perRowBuf
			nfe, acc, err = bindings.ODESolveDopri5Save(n, o.dims, j.a, o.t0, o.t1, o.opt, j.b[lo*d:hi*d], k, eps, j.c[lo*d:hi*d], j.d[lo:hi],
				o.tape.buf[lo*per:hi*per], o.tape.nacc[lo:hi], o.work[blk])
		} else {
			nfe, acc, err = bindings.ODESolveDopri5(n, o.dims, j.a, o.t0, o.t1, o.opt, j.b[lo*d:hi*d], k, eps, j.c[lo*d:hi*d], j.d[lo:hi], o.work[blk])
		}
		o.nfe[blk], o.accep[blk], o.vjp[blk] = nfe, acc, 0
		if err != nil {
			// Report the row in the batch, not in the block.
			return fmt.Errorf("rows [%d, %d): %w", lo, hi, err)
		}
		return nil
	}
	return fmt.Errorf("runODE: unexpected op %d", j.op)
}

func (c *cpu[T]) ODEFuncForward(dz, trace, z, theta, eps *Tensor, dims []int, t float64) {
	n, d, k := CheckODEFuncForward(dz, trace, z, theta, eps, dims)
	nb := c.pool.split(n, odeCost(dims, k))
	c.setODE(dims, k, d, nb)
	c.ode.t = t
	j := &c.job
	j.a, j.b, j.e, j.c, j.d = c.s(theta), c.s(z), c.optEps(eps), c.s(dz), c.s(trace)
	c.dispatch(opODEFuncForward, n, nb)
}

func (c *cpu[T]) ODEFuncVJP(gz, gtheta, z, theta, eps, az, atr *Tensor, dims []int, t float64) {
	n, d, k := CheckODEFuncVJP(gz, gtheta, z, theta, eps, az, atr, dims)
	nb := c.pool.split(n, 3*odeCost(dims, k))
	c.setODE(dims, k, d, nb)
	c.ensurePartial(nb, theta.Len())
	c.ode.t = t
	j := &c.job
	j.a, j.b, j.e, j.f, j.g, j.c, j.h = c.s(theta), c.s(z), c.optEps(eps), c.s(az), c.s(atr), c.s(gz), c.s(gtheta)
	c.dispatch(opODEFuncVJP, n, nb)
	c.reduce(nb, j.h)
}

func (c *cpu[T]) ODESolveRK4(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	n, d, k := CheckODESolveRK4(z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	return c.rk4(nil, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

func (c *cpu[T]) ODESolveRK4Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	n, d, k := CheckODESolveRK4Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	return c.rk4(tape, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

func (c *cpu[T]) rk4(tape *ODETape, n, d, k int, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	nb := c.pool.split(n, 4*steps*odeCost(dims, k))
	c.setODE(dims, k, d, nb)
	o := &c.ode
	o.t0, o.t1, o.steps = t0, t1, steps
	o.mode, o.tape = 0, tape
	if tape != nil {
		tape.prepare(tapeRK4, n, d, k, steps, t0, t1)
		o.mode = 1
	}
	j := &c.job
	j.a, j.b, j.e, j.c, j.d = c.s(theta), c.s(z0), c.optEps(eps), c.s(z1), c.s(logdet)
	c.dispatch(opODESolveRK4, n, nb)
	return c.odeStats(nb)
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

func (c *cpu[T]) ODESolveDopri5(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	n, d, k := CheckODESolveDopri5(z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	return c.dopri5("ODESolveDopri5", nil, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

func (c *cpu[T]) ODESolveDopri5Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	n, d, k := CheckODESolveDopri5Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	return c.dopri5("ODESolveDopri5Record", tape, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

func (c *cpu[T]) dopri5(op string, tape *ODETape, n, d, k int, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	// A typical solve makes a few tens of steps of 6 evaluations.
	nb := c.pool.split(n, 120*odeCost(dims, k))
	c.setODE(dims, k, d, nb)
	o := &c.ode
	o.t0, o.t1 = t0, t1
	o.opt = bindings.Dopri5Options{Atol: opt.Atol, Rtol: opt.Rtol, H0: opt.H0, MaxSteps: opt.MaxSteps}
	o.mode, o.tape = 0, tape
	if tape != nil {
		tape.prepare(tapeDopri5, n, d, k, opt.MaxSteps, t0, t1)
		o.mode = 1
	}
	j := &c.job
	j.a, j.b, j.e, j.c, j.d = c.s(theta), c.s(z0), c.optEps(eps), c.s(z1), c.s(logdet)
	j.op, j.units, j.nb = opODESolveDopri5, n, nb
	c.pool.do(nb, c.block)
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

// odeBackward runs a Backward over row blocks with per-block θ partials
// reduced in block order.
func (c *cpu[T]) odeBackward(op opcode, gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape, n, d, k, evalsPerRow int) ODEStats {
	nb := c.pool.split(n, 3*evalsPerRow*odeCost(dims, k))
	c.setODE(dims, k, d, nb)
	c.ensurePartial(nb, theta.Len())
	o := &c.ode
	o.t0, o.t1, o.steps, o.mode, o.tape = tape.t0, tape.t1, tape.steps, 2, tape
	o.opt.MaxSteps = tape.steps
	j := &c.job
	j.a, j.e, j.f, j.g, j.c, j.h = c.s(theta), c.optEps(eps), c.s(a1), c.s(ald), c.s(gz0), c.s(gtheta)
	c.dispatch(op, n, nb)
	c.reduce(nb, j.h)
	return c.odeStats(nb)
}

func (c *cpu[T]) ODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats {
	n, d, k := CheckODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	mustHostTape("ODESolveRK4Backward", tape)
	return c.odeBackward(opODESolveRK4, gz0, gtheta, a1, ald, theta, eps, dims, tape, n, d, k, 7*tape.steps)
}

func (c *cpu[T]) ODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats {
	n, d, k := CheckODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	mustHostTape("ODESolveDopri5Backward", tape)
	// A typical solve makes a few tens of accepted steps of 11 evaluations.
	return c.odeBackward(opODESolveDopri5, gz0, gtheta, a1, ald, theta, eps, dims, tape, n, d, k, 200)
}

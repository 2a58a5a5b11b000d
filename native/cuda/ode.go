//go:build cuda

package cuda

import (
	"fmt"
	"slices"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/lrmf-go/lrmf/native"
)

// FFJORD on the GPU: native.ODEBackend over the lrmf_k_ode_* kernels of
// csrc/cuda (float32 data, every row computed in double as on the CPU).
//
// Each call is one launch over the whole batch — one thread per row, θ
// staged in shared memory (rule O of csrc/cuda/lrmf_kernels.h) — so an
// RK4 or Dormand–Prince solve, with all its steps and per-row adaptive step
// sizes, is a single kernel. θ-gradients are written per row (gpart, np×n
// doubles kept by the backend) and reduced over rows by lrmf_k_ode_gsum in
// a fixed order, so they are deterministic.
//
// The kernels keep a row's activations and tangents in a fixed per-thread
// frame, which bounds the network: D ≤ 8, tangent directions (D for the
// exact trace, k probes otherwise) ≤ 8, every width ≤ 32, Σ hidden widths
// ≤ 96, (directions)·Σ hidden ≤ 384, at most 8 entries in dims. The
// paper's [D+1, 16, 16, 16, D] fits for D ≤ 8. Larger networks run on
// native.BatchedODE over this backend's operations (cuBLAS GEMMs over all
// rows and directions of a stage, in float32), chosen per call; a tape
// recorded that way goes back to it for the backward pass. Its
// Dormand–Prince control is per row on the host (a few read-backs per
// attempt), and its float32 stages make the step sequence differ from the
// double-precision kernels' at tolerances near float32 resolution.
//
// A Dormand–Prince solve reads back 3 int64s per row (status, f
// evaluations, accepted steps) to report the statistics and the first
// failing row: one synchronisation per solve.

var _ native.ODEBackend = (*Backend)(nil)
var _ native.ODELimiter = (*Backend)(nil)

// Frame limits of the lrmf_k_ode_* kernels (LRMF_K_ODE_* in
// csrc/cuda/lrmf_kernels.h).
const (
	odeMaxD   = 8
	odeMaxM   = 8
	odeMaxW   = 32
	odeMaxSH  = 96
	odeMaxMSH = 384
	odeMaxNL  = 8
	odeMaxP   = 6144
)

// Per-row status words of lrmf_k_ode_dopri5 (lrmf.h's LRMF_ODE_*).
const (
	odeOK        = 0
	odeUnderflow = -2
	odeNonFinite = -3
	odeMaxSteps  = -4
)

// odeState is the backend's FFJORD scratch, grown to the largest call and
// reused.
type odeState struct {
	bat      *native.BatchedODE // networks beyond the frame (made on first use)
	dims     []int64            // dims last uploaded to dimsBuf
	dimsBuf  *buffer            // odeMaxNL int64s
	gpart    *buffer            // per-row θ-gradients, np×n doubles
	gpartCap int64
	info     *buffer // status, f evaluations, accepted steps: 3×n int64s
	infoCap  int64
	hostInfo []int64 // host copy of info
}

// odeTape is the device side of a native.ODETape recorded by this backend
// (its Ext): the RK4 start states or the Dormand–Prince step tape in the
// kernels' row-minor layouts, and the Dormand–Prince per-row info words,
// whose accepted-step counts the backward replays.
type odeTape struct {
	b        *Backend
	dopri5   bool
	n, d, k  int
	steps    int // RK4 steps or Dormand–Prince MaxSteps
	t0, t1   float64
	data     *buffer // double: steps×D×n (RK4) or MaxSteps×(D+2)×n
	dataCap  int64
	info     *buffer // int64: 3×n (Dormand–Prince)
	infoCap  int64
	nacc     []int64 // the tape's host counts (ODETape.PrepareExt)
	accepted int     // Σ nacc
}

// grow returns a device buffer of at least need bytes in *buf, replacing a
// smaller one (whose block returns to the pool when collected; stream order
// keeps that safe), and its address; 0 when need is 0.
func (b *Backend) grow(op string, buf **buffer, capacity *int64, need int64) uint64 {
	if need <= 0 {
		return 0
	}
	if *buf == nil || *capacity < need {
		nb, err := b.newBuffer(need)
		b.must(op+": cuMemAlloc", err)
		*buf, *capacity = nb, classSize(need)
	}
	return dptr((*buf).ptr)
}

// odeDims uploads dims (as int64) unless they are the ones on the device,
// and returns their device address.
func (b *Backend) odeDims(op string, dims []int) uint64 {
	o := &b.ode
	if o.dimsBuf == nil {
		var c int64
		b.grow(op, &o.dimsBuf, &c, 8*odeMaxNL)
	}
	same := len(o.dims) == len(dims)
	for i := 0; same && i < len(dims); i++ {
		same = o.dims[i] == int64(dims[i])
	}
	if !same {
		o.dims = o.dims[:0]
		for _, v := range dims {
			o.dims = append(o.dims, int64(v))
		}
		b.stats.Copies++
		// Pageable source: the driver has staged it when the call returns.
		b.must(op+": cuMemcpyHtoDAsync", cu.MemcpyHtoDAsync(o.dimsBuf.ptr, unsafe.Pointer(&o.dims[0]), 8*int64(len(o.dims)), b.stream))
	}
	return dptr(o.dimsBuf.ptr)
}

// odeGpart returns the per-row gradient scratch for np parameters and n rows.
func (b *Backend) odeGpart(op string, np, n int) uint64 {
	return b.grow(op, &b.ode.gpart, &b.ode.gpartCap, 8*int64(np)*int64(n))
}

// withGpart runs launch, a kernel over the n rows that writes per-row
// θ-gradients (np each) to gp, with the dims on the device at dd (not
// called when n is 0), then reduces the rows into gtheta in a fixed order
// (lrmf_k_ode_gsum; gtheta = 0 when n is 0). The context is current.
func (b *Backend) withGpart(op string, dims []int, n, np int, gtheta *native.Tensor, launch func(dd, gp uint64)) {
	var gp uint64
	if n > 0 {
		dd := b.odeDims(op, dims)
		gp = b.odeGpart(op, np, n)
		launch(dd, gp)
	}
	b.launchC(kODEGsum, np, i64(n), i64(np), gp, addr(gtheta))
}

// launchO launches an O(n, np) kernel: 128 threads, one per row, rows
// striding over a grid capped like R, and 8·np bytes of shared memory.
func (b *Backend) launchO(k kernel, n, np int, args ...uint64) {
	if n <= 0 {
		return
	}
	b.launchShared(k, min((n+blockO-1)/blockO, maxGridR), 1, blockO, 1, 8*np, args...)
}

// readInfo copies the 3·n info words at ptr to the host (waits for them).
func (b *Backend) readInfo(op string, ptr uint64, n int) []int64 {
	o := &b.ode
	if cap(o.hostInfo) < 3*n {
		o.hostInfo = make([]int64, 3*n)
	}
	h := o.hostInfo[:3*n]
	b.stats.Copies++
	b.stats.Syncs++
	b.must(op+": cuMemcpyDtoHAsync", cu.MemcpyDtoHAsync(unsafe.Pointer(&h[0]), cu.DevicePtr(ptr), 8*int64(3*n), b.stream))
	return h
}

// tapeFor returns the device side kept in tape by this backend, or a new one.
func (b *Backend) tapeFor(tape *native.ODETape) *odeTape {
	if et, ok := tape.Ext.(*odeTape); ok && et.b == b {
		return et
	}
	return &odeTape{b: b}
}

// ODEFuncForward sets dz[i] = f(z[i], t; θ) and trace[i] = tr(∂f/∂z).
func (b *Backend) ODEFuncForward(dz, trace, z, theta, eps *native.Tensor, dims []int, t float64) {
	const op = "ODEFuncForward"
	n, _, k := native.CheckODEFuncForward(dz, trace, z, theta, eps, dims)
	if bo := b.batched(dims, k); bo != nil {
		bo.ODEFuncForward(dz, trace, z, theta, eps, dims, t)
		return
	}
	np := checkODELimits(op, dims, k)
	if n == 0 {
		return
	}
	b.enter()
	defer b.leave()
	dd := b.odeDims(op, dims)
	b.launchO(kODEFwd, n, np, i64(n), i64(len(dims)), dd, addr(theta), f64(t), addr(z), i64(k), addr(eps),
		addr(dz), addr(trace))
}

// ODEFuncVJP sets gz = ∂Λ/∂z and gtheta = ∂Λ/∂θ (summed over rows) for
// Λ = Σ az⊙f + Σ atr⊙trace.
func (b *Backend) ODEFuncVJP(gz, gtheta, z, theta, eps, az, atr *native.Tensor, dims []int, t float64) {
	const op = "ODEFuncVJP"
	n, _, k := native.CheckODEFuncVJP(gz, gtheta, z, theta, eps, az, atr, dims)
	if bo := b.batched(dims, k); bo != nil {
		bo.ODEFuncVJP(gz, gtheta, z, theta, eps, az, atr, dims, t)
		return
	}
	np := checkODELimits(op, dims, k)
	b.enter()
	defer b.leave()
	b.withGpart(op, dims, n, np, gtheta, func(dd, gp uint64) {
		b.launchO(kODEVJP, n, np, i64(n), i64(len(dims)), dd, addr(theta), f64(t), addr(z), i64(k), addr(eps),
			addr(az), addr(atr), addr(gz), gp)
	})
}

// ODESolveRK4 integrates the augmented ODE with steps RK4 steps (one
// launch for the batch).
func (b *Backend) ODESolveRK4(z1, logdet, z0, theta, eps *native.Tensor, dims []int, t0, t1 float64, steps int) native.ODEStats {
	n, d, k := native.CheckODESolveRK4(z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	if bo := b.batched(dims, k); bo != nil {
		return bo.ODESolveRK4(z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	}
	return b.rk4("ODESolveRK4", nil, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

// ODESolveRK4Record is ODESolveRK4 that keeps the step start states on
// the device, in tape.
func (b *Backend) ODESolveRK4Record(tape *native.ODETape, z1, logdet, z0, theta, eps *native.Tensor, dims []int, t0, t1 float64, steps int) native.ODEStats {
	n, d, k := native.CheckODESolveRK4Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	if bo := b.batched(dims, k); bo != nil {
		return bo.ODESolveRK4Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	}
	return b.rk4("ODESolveRK4Record", tape, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

// rk4 runs an RK4 solve of checked arguments, recording it in tape if
// non-nil.
func (b *Backend) rk4(op string, tape *native.ODETape, n, d, k int, z1, logdet, z0, theta, eps *native.Tensor, dims []int, t0, t1 float64, steps int) native.ODEStats {
	np := checkODELimits(op, dims, k)
	b.enter()
	defer b.leave()
	var states uint64
	if tape != nil {
		et := b.tapeFor(tape)
		et.dopri5, et.n, et.d, et.k, et.steps, et.t0, et.t1 = false, n, d, k, steps, t0, t1
		et.nacc, et.accepted = tape.PrepareExt(et, false, n, d, k, steps, t0, t1), 0
		states = b.grow(op, &et.data, &et.dataCap, 8*int64(n)*int64(steps)*int64(d))
	}
	st := native.ODEStats{NFE: 4 * steps * n, Accepted: steps * n}
	if n == 0 {
		return st
	}
	dd := b.odeDims(op, dims)
	b.launchO(kODERK4, n, np, i64(n), i64(len(dims)), dd, addr(theta), f64(t0), f64(t1), i64(steps),
		addr(z0), i64(k), addr(eps), addr(z1), addr(logdet), states)
	return st
}

// ODESolveDopri5 integrates the augmented ODE with adaptive Dormand–Prince
// 5(4) steps controlled per row (one launch for the batch, then one
// read-back of the rows' status and counts).
func (b *Backend) ODESolveDopri5(z1, logdet, z0, theta, eps *native.Tensor, dims []int, t0, t1 float64, opt native.Dopri5Options) (native.ODEStats, error) {
	n, d, k := native.CheckODESolveDopri5(z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	if bo := b.batched(dims, k); bo != nil {
		return bo.ODESolveDopri5(z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	}
	return b.dopri5("ODESolveDopri5", nil, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

// ODESolveDopri5Record is ODESolveDopri5 that keeps each row's accepted
// steps on the device, in tape.
func (b *Backend) ODESolveDopri5Record(tape *native.ODETape, z1, logdet, z0, theta, eps *native.Tensor, dims []int, t0, t1 float64, opt native.Dopri5Options) (native.ODEStats, error) {
	n, d, k := native.CheckODESolveDopri5Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	if bo := b.batched(dims, k); bo != nil {
		return bo.ODESolveDopri5Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	}
	return b.dopri5("ODESolveDopri5Record", tape, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

// dopri5 runs a Dormand–Prince solve of checked arguments, recording it in
// tape if non-nil; op names it in errors.
func (b *Backend) dopri5(op string, tape *native.ODETape, n, d, k int, z1, logdet, z0, theta, eps *native.Tensor, dims []int, t0, t1 float64, opt native.Dopri5Options) (native.ODEStats, error) {
	np := checkODELimits(op, dims, k)
	b.enter()
	defer b.leave()
	var et *odeTape
	var tp, info uint64
	if tape != nil {
		et = b.tapeFor(tape)
		et.dopri5, et.n, et.d, et.k, et.steps, et.t0, et.t1 = true, n, d, k, opt.MaxSteps, t0, t1
		et.nacc, et.accepted = tape.PrepareExt(et, true, n, d, k, opt.MaxSteps, t0, t1), 0
		tp = b.grow(op, &et.data, &et.dataCap, 8*int64(n)*int64(opt.MaxSteps)*int64(d+2))
		info = b.grow(op, &et.info, &et.infoCap, 8*3*int64(n))
	} else {
		info = b.grow(op, &b.ode.info, &b.ode.infoCap, 8*3*int64(n))
	}
	if n == 0 {
		return native.ODEStats{}, nil
	}
	dd := b.odeDims(op, dims)
	b.launchO(kODEDopri5, n, np, i64(n), i64(len(dims)), dd, addr(theta), f64(t0), f64(t1),
		f64(opt.Atol), f64(opt.Rtol), f64(opt.H0), i64(opt.MaxSteps), addr(z0), i64(k), addr(eps),
		addr(z1), addr(logdet), tp, info)
	h := b.readInfo(op, info, n)
	var st native.ODEStats
	first := -1
	for i := 0; i < n; i++ {
		st.NFE += int(h[n+i])
		st.Accepted += int(h[2*n+i])
		if h[i] != odeOK && first < 0 {
			first = i
		}
	}
	if et != nil {
		copy(et.nacc, h[2*n:3*n])
		et.accepted = st.Accepted
	}
	if first < 0 {
		return st, nil
	}
	var sentinel error
	switch h[first] {
	case odeUnderflow:
		sentinel = native.ErrODEStepUnderflow
	case odeNonFinite:
		sentinel = native.ErrODENonFinite
	case odeMaxSteps:
		sentinel = native.ErrODEMaxSteps
	default:
		panic(fmt.Sprintf("native: cuda: %s: row %d: unknown solver status %d", op, first, h[first]))
	}
	return st, fmt.Errorf("native: cuda: %s: row %d: %w", op, first, sentinel)
}

// ownTape returns the device side of a tape that passed the contract, and
// panics unless this backend recorded it (a tape recorded by a host
// backend, or by another CUDA backend, holds nothing here to replay).
func (b *Backend) ownTape(op string, tape *native.ODETape, dopri5 bool) *odeTape {
	et, _ := tape.Ext.(*odeTape)
	if et == nil || et.b != b || et.dopri5 != dopri5 {
		panic(fmt.Sprintf("native: %s: the tape holds no solve of this method (record it with the matching Record)", op))
	}
	return et
}

// ODESolveRK4Backward differentiates the RK4 solve recorded in tape.
func (b *Backend) ODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps *native.Tensor, dims []int, tape *native.ODETape) native.ODEStats {
	const op = "ODESolveRK4Backward"
	n, _, k := native.CheckODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	if bo := b.ode.bat; bo != nil && bo.Recorded(tape) {
		return bo.ODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	}
	et := b.ownTape(op, tape, false)
	np := checkODELimits(op, dims, k)
	b.enter()
	defer b.leave()
	b.withGpart(op, dims, n, np, gtheta, func(dd, gp uint64) {
		b.launchO(kODERK4Bwd, n, np, i64(n), i64(len(dims)), dd, addr(theta), f64(et.t0), f64(et.t1),
			i64(et.steps), i64(k), addr(eps), dptr(et.data.ptr), addr(a1), addr(ald), addr(gz0), gp)
	})
	return native.ODEStats{NFE: 7 * et.steps * n, VJP: 4 * et.steps * n}
}

// ODESolveDopri5Backward differentiates the Dormand–Prince solve recorded
// in tape, replaying each row's accepted steps in reverse.
func (b *Backend) ODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps *native.Tensor, dims []int, tape *native.ODETape) native.ODEStats {
	const op = "ODESolveDopri5Backward"
	n, _, k := native.CheckODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	if bo := b.ode.bat; bo != nil && bo.Recorded(tape) {
		return bo.ODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	}
	et := b.ownTape(op, tape, true)
	np := checkODELimits(op, dims, k)
	b.enter()
	defer b.leave()
	b.withGpart(op, dims, n, np, gtheta, func(dd, gp uint64) {
		b.launchO(kODEDopri5Bwd, n, np, i64(n), i64(len(dims)), dd, addr(theta), i64(et.steps), i64(k),
			addr(eps), dptr(et.data.ptr), dptr(et.info.ptr), addr(a1), addr(ald), addr(gz0), gp)
	})
	return native.ODEStats{NFE: 11 * et.accepted, VJP: 6 * et.accepted}
}

// ---- frame limits ----------------------------------------------------------

// ODESupports implements native.ODELimiter: every valid network runs,
// within the kernels' per-thread frame on the row kernels and beyond it on
// native.BatchedODE, so it returns an error only for invalid dims or k.
func (b *Backend) ODESupports(dims []int, k int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	native.ODENumParams(dims)
	if k < 0 {
		return fmt.Errorf("native: cuda: ODESupports: %d probes", k)
	}
	return nil
}

// ODERowKernels reports whether dims with k probes (0: exact trace) fit
// the row kernels' per-thread frame; the others run on native.BatchedODE.
func (b *Backend) ODERowKernels(dims []int, k int) bool { return fitsFrame(dims, k) }

// batched returns the batched path when dims with k probes exceed the
// kernels' frame, else nil.
func (b *Backend) batched(dims []int, k int) *native.BatchedODE {
	if fitsFrame(dims, k) {
		return nil
	}
	if b.ode.bat == nil {
		b.ode.bat = native.NewBatchedODE(b)
	}
	return b.ode.bat
}

// fitsFrame reports whether checkODELimits accepts dims and k.
func fitsFrame(dims []int, k int) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	checkODELimits("fitsFrame", dims, k)
	return true
}

// checkODELimits panics unless dims and k fit the kernels' per-thread
// frame (the LRMF_K_ODE_* limits); it returns θ's length.
func checkODELimits(op string, dims []int, k int) int {
	d := dims[len(dims)-1]
	m := k
	if m == 0 {
		m = d
	}
	sh := 0
	for _, w := range dims[1 : len(dims)-1] {
		sh += w
	}
	np := native.ODENumParams(dims)
	if len(dims) > odeMaxNL || d > odeMaxD || m > odeMaxM || slices.Max(dims) > odeMaxW || sh > odeMaxSH ||
		m*sh > odeMaxMSH || np > odeMaxP {
		panic(fmt.Sprintf("native: cuda: %s: dims %v with %d trace directions exceed the CUDA kernels' limits "+
			"(≤ %d entries, D ≤ %d, directions ≤ %d, widths ≤ %d, Σ hidden ≤ %d, directions·Σ hidden ≤ %d)",
			op, dims, m, odeMaxNL, odeMaxD, odeMaxM, odeMaxW, odeMaxSH, odeMaxMSH))
	}
	return np
}

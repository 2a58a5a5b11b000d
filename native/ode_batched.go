package native

import (
	"fmt"
	"slices"
)

// BatchedODE is the FFJORD operations of ODEBackend (see ode.go for the
// maths) computed with the dynamics' layers as GEMMs over all rows of a
// stage, written once over the generic operations of its Backend (Gemm,
// GemmEx, Tanh, TanhBackward, Axpy, Mul, Copy, CopyCols and Fill): any D
// and any width, on any backend. native/cuda runs it for networks beyond
// its kernels' per-thread frame; on the cpu backend it is the "batched"
// path.
//
// A stage evaluates, for the n rows at once,
//
//	A_0 = Z·W_0[:D] + (b_0 + t·W_0[D]),  H_l = tanh(A_l),  F = H_{L−1}·W_L + b_L
//
// and the trace by m tangent directions stacked direction-major (row p·n+i
// is row i's direction p, an (m·n)-row matrix): V holds the directions (the
// exact trace: m = D unit vectors, c = 1; Hutchinson: the k probes of eps,
// c = 1/k), Ȧ_0 = V·W_0[:D], Ḣ_l = (1 − H_l²)⊙Ȧ_l (H_l replicated over the
// directions by a rank-1 GEMM), Ȧ_{l+1} = Ḣ_l·W_{l+1}, and
// tr_i = c·Σ_p V_p[i]·Ȧ_L,p[i] (the exact trace masks Ȧ_L with V in the
// GEMM's epilogue). The VJP runs the layers in reverse with the same
// stacking (the derivation is csrc/cpu/ode.inc's); its θ-gradients are
// GEMMs over all rows and directions (Σ over rows inside the GEMM).
//
// Solvers: RK4 as the row kernels (fixed steps; the same maths, so the
// results agree to rounding). Dormand–Prince: the step size, the error
// test and the accept/reject decision are per row, as in the row kernels
// and the reference, with the control on the host: each attempt uploads
// the rows' times and signed steps (0 for the rows that are finished),
// reads back their 5th-order solutions and error estimates (4 read-backs),
// and, when some row accepts, reads back the last stage and uploads the
// selected states (the host keeps each row's state; a rejected row's
// values never reach it). The backward passes replay the recorded
// stages exactly (discretize-then-optimize), as the row kernels do.
//
// Precision: everything is computed in the backend's element type
// (float32 on the cpu and cuda backends), with sums in the GEMMs; the row
// kernels compute a row in double.
//
// Memory: 6 (m·n)×w tensors per hidden layer of width w (tangents,
// replicated activations, VJP adjoints) and the elementwise products'
// (m·n)×2w scratch, for each of the last 4 shapes (n, dims, k) used;
// recorded RK4 solves keep steps·n×D states in the backend's memory
// (ODETape.Ext), Dormand–Prince ones an n×D state per attempt in which a
// row accepted a step. A BatchedODE keeps its buffers for the largest call and
// reuses them: steady-state calls allocate nothing. Not safe for
// concurrent use.
type BatchedODE struct {
	Backend
	*batchShape // the buffers of the current call's shape

	// The last few shapes' buffers: an LRMF step alternates the flow's
	// batch and the density's (twice as large).
	shapes    [4]*batchShape
	shapeNext int

	cols    [8]colEntry
	colNext int
}

// batchShape holds the buffers of one shape (n rows, dims, k probes).
type batchShape struct {
	dims       []int
	n, d, k, m int
	nh         int // hidden layers
	c          float64

	onesNcol, onesMcol, onesMrow, onesD, onesDrow *Tensor
	v                                             *Tensor   // (m·n)×D directions
	vb                                            []*Tensor // its m blocks
	vm                                            *Tensor   // v as m×(n·D)
	vhost                                         []float64

	bias0  *Tensor   // b_0 + t·W_0[D] (vector of H_1, or of D without hidden layers)
	h      []*Tensor // n×w_l hidden outputs
	hflat  []*Tensor // h as 1×(n·w)
	hrep   []*Tensor // (m·n)×w: h replicated over the directions
	hrepm  []*Tensor // hrep as m×(n·w)
	ad     []*Tensor // (m·n)×w_l pre-activation tangents; ad[nh] is (m·n)×D
	hd     []*Tensor // (m·n)×w_l activation tangents
	p      *Tensor   // (m·n)×D: V⊙Ȧ_L
	pm     *Tensor   // p as m×(n·D)
	q, qn  *Tensor   // Σ_p p_p: 1×(n·D) and n×D
	trcol  *Tensor   // n×1
	nd     *Tensor   // n×D scratch
	ndflat *Tensor   // nd as 1×(n·D)

	abar, inb, cross, crossf []*Tensor // n×w_l
	adbar, indb, qx, qxm     []*Tensor // (m·n)×w_l, qx as m×(n·w)
	adbarL, adbarLm          *Tensor   // (m·n)×D, as m×(n·D)

	// θ and gradient views, rebuilt when the tensors change.
	th, gth             *Tensor
	w, b, gw, gbcol     []*Tensor
	wz, wt, gwz, gwtcol *Tensor
	views               [8]thetaViews // of the last θ and gradient tensors
	viewNext            int
	rk                  rk4Scratch
	dp                  *dpScratch
}

// colEntry caches an n×1 view of a caller's vector.
type colEntry struct{ t, col *Tensor }

// rk4Scratch holds the RK4 solver's states.
type rk4Scratch struct {
	y, yt, l *Tensor
	kz       [4]*Tensor
	kt       [4]*Tensor
	ys       [4]*Tensor // backward: stage inputs
	kbz      [4]*Tensor
	kbt      [4]*Tensor
	yb, ybs  *Tensor
	fz, ft   *Tensor
}

// batchTape is the data of an ODETape recorded by a BatchedODE (its Ext):
// RK4 step start states (steps blocks of n×D) in the backend's memory, or
// a Dormand–Prince attempt log.
type batchTape struct {
	owner  *BatchedODE
	states *Tensor
	views  []*Tensor
	n, d   int
	steps  int
	t0, t1 float64
	dp     *dpLog
}

// NewBatchedODE returns the batched FFJORD path over b's operations.
func NewBatchedODE(b Backend) *BatchedODE {
	return &BatchedODE{Backend: b}
}

var _ ODEBackend = (*BatchedODE)(nil)

// setup sizes the buffers for n rows, dims and k probes (0: exact).
func (o *BatchedODE) setup(n int, dims []int, k int) {
	d := dims[len(dims)-1]
	m := k
	if m == 0 {
		m = d
	}
	for _, sh := range o.shapes {
		if sh != nil && sh.n == n && sh.k == k && slices.Equal(sh.dims, dims) {
			o.batchShape = sh
			return
		}
	}
	o.batchShape = &batchShape{}
	o.shapes[o.shapeNext] = o.batchShape
	o.shapeNext = (o.shapeNext + 1) % len(o.shapes)
	o.dims = append(o.dims[:0], dims...)
	o.n, o.d, o.k, o.m, o.nh = n, d, k, m, len(dims)-2
	o.c = 1
	if k > 0 {
		o.c = 1 / float64(k)
	}
	N := max(n, 1)
	M := m * N
	ones := func(r, c int) *Tensor { t := o.New(r, c); o.Fill(t, 1); return t }
	o.onesNcol, o.onesMcol, o.onesMrow, o.onesD, o.onesDrow = ones(N, 1), ones(m, 1), ones(1, m), ones(d, 1), ones(1, d)
	o.v = o.New(M, d)
	o.vm = Reshape(o.v, m, N*d)
	o.vb = o.vb[:0]
	for p := 0; p < m; p++ {
		o.vb = append(o.vb, o.View(o.v, p*N, (p+1)*N))
	}
	if k == 0 {
		// Exact trace: block p holds e_p in every row.
		o.vhost = make([]float64, M*d)
		for p := 0; p < m; p++ {
			for i := 0; i < N; i++ {
				o.vhost[(p*N+i)*d+p] = 1
			}
		}
		o.Upload(o.v, o.vhost)
	}
	o.bias0 = o.New(1, dims[1])
	o.h, o.hflat, o.hrep, o.hrepm, o.ad, o.hd = nil, nil, nil, nil, nil, nil
	o.abar, o.inb, o.cross, o.crossf, o.adbar, o.indb, o.qx, o.qxm = nil, nil, nil, nil, nil, nil, nil, nil
	for l := 0; l < o.nh; l++ {
		w := dims[l+1]
		h := o.New(N, w)
		o.h = append(o.h, h)
		o.hflat = append(o.hflat, Reshape(h, 1, N*w))
		hr := o.New(M, w)
		o.hrep = append(o.hrep, hr)
		o.hrepm = append(o.hrepm, Reshape(hr, m, N*w))
		o.ad = append(o.ad, o.New(M, w))
		o.hd = append(o.hd, o.New(M, w))
		o.abar = append(o.abar, o.New(N, w))
		o.inb = append(o.inb, o.New(N, w))
		cf := o.New(1, N*w)
		o.crossf = append(o.crossf, cf)
		o.cross = append(o.cross, Reshape(cf, N, w))
		o.adbar = append(o.adbar, o.New(M, w))
		o.indb = append(o.indb, o.New(M, w))
		qx := o.New(M, w)
		o.qx = append(o.qx, qx)
		o.qxm = append(o.qxm, Reshape(qx, m, N*w))
	}
	o.ad = append(o.ad, o.New(M, d))
	o.p = o.New(M, d)
	o.pm = Reshape(o.p, m, N*d)
	o.q = o.New(1, N*d)
	o.qn = Reshape(o.q, N, d)
	o.trcol = o.New(N, 1)
	o.nd = o.New(N, d)
	o.ndflat = Reshape(o.nd, 1, N*d)
	o.adbarL = o.New(M, d)
	o.adbarLm = Reshape(o.adbarL, m, N*d)
}

// params points the weight views at theta. The views of the last few θ
// tensors are kept (a flow of several blocks alternates between them), so
// steady-state calls allocate nothing.
func (o *BatchedODE) params(theta *Tensor) {
	if o.th == theta {
		return
	}
	v := o.viewsOf(theta, false)
	o.th, o.w, o.b, o.wz, o.wt = theta, v.w, v.b, v.wz, v.wt
}

// grads points the gradient views at gtheta (as params).
func (o *BatchedODE) grads(gtheta *Tensor) {
	if o.gth == gtheta {
		return
	}
	v := o.viewsOf(gtheta, true)
	o.gth, o.gw, o.gbcol, o.gwz, o.gwtcol = gtheta, v.w, v.b, v.wz, v.wt
}

// thetaViews are the layer views of one θ-shaped tensor: W_l, b_l (1×out,
// or out×1 for gradients), W_0[:D] and W_0[D] (1×H_1, or H_1×1).
type thetaViews struct {
	t      *Tensor
	grad   bool
	w, b   []*Tensor
	wz, wt *Tensor
}

// viewsOf returns t's views from the cache, making them if absent.
func (o *BatchedODE) viewsOf(t *Tensor, grad bool) *thetaViews {
	for i := range o.views {
		if v := &o.views[i]; v.t == t && v.grad == grad {
			return v
		}
	}
	v := &o.views[o.viewNext]
	o.viewNext = (o.viewNext + 1) % len(o.views)
	*v = thetaViews{t: t, grad: grad}
	v.w, v.b = o.layerViews(t, nil, nil, grad)
	v.wz = o.View(v.w[0], 0, o.d)
	v.wt = o.View(v.w[0], o.d, o.d+1)
	if grad {
		v.wt = Reshape(v.wt, o.dims[1], 1)
	}
	return v
}

// layerViews returns W_l (din×dout) and b_l (1×dout, or dout×1 when col)
// views of a θ-shaped vector.
func (o *BatchedODE) layerViews(t *Tensor, ws, bs []*Tensor, col bool) ([]*Tensor, []*Tensor) {
	flat := Reshape(t, t.Len(), 1)
	off := 0
	for l := 0; l+1 < len(o.dims); l++ {
		din, dout := o.dims[l], o.dims[l+1]
		ws = append(ws, Reshape(o.View(flat, off, off+din*dout), din, dout))
		off += din * dout
		bv := o.View(flat, off, off+dout)
		if !col {
			bv = Reshape(bv, 1, dout)
		}
		bs = append(bs, bv)
		off += dout
	}
	return ws, bs
}

// asCol returns t (a vector of n) as an n×1 Tensor (a cached view).
func (o *BatchedODE) asCol(t *Tensor) *Tensor {
	if t.cols == 1 {
		return t
	}
	for _, e := range o.cols {
		if e.t == t {
			return e.col
		}
	}
	col := Reshape(t, t.Len(), 1)
	o.cols[o.colNext] = colEntry{t, col}
	o.colNext = (o.colNext + 1) % len(o.cols)
	return col
}

// probes loads eps's k probes into V's blocks (Hutchinson).
func (o *BatchedODE) probes(eps *Tensor) {
	if o.k == 0 {
		return
	}
	for p := 0; p < o.m; p++ {
		o.CopyCols(o.vb[p], eps, p*o.d)
	}
}

// layerW returns layer l's weights as they multiply its input: W_0[:D]
// for the first layer (the time enters through bias0), else W_l.
func (o *BatchedODE) layerW(l int) *Tensor {
	if l == 0 {
		return o.wz
	}
	return o.w[l]
}

// eval sets f = f(z, t) (n×D) and tr (n×1) = c·Σ_p V_p⊙Ȧ_L,p summed over
// columns, keeping the activations and tangents for vjp. Row i's time is
// tv[i] when tv (n×1) is not nil, else t.
func (o *BatchedODE) eval(z *Tensor, t float64, tv, f, tr *Tensor) {
	L := o.nh
	o.Copy(o.bias0, o.b[0])
	if tv == nil {
		o.Axpy(t, o.wt, o.bias0)
	}
	in := z
	for l := 0; l <= L; l++ {
		out := f
		if l < L {
			out = o.h[l]
		}
		bias := o.b[l]
		if l == 0 {
			bias = o.bias0
		}
		o.GemmEx(false, false, 1, in, 0, o.layerW(l), 0, out, 0, Epilogue{Bias: bias})
		if l == 0 && tv != nil {
			o.Gemm(false, false, 1, tv, o.wt, 1, out) // + t_i·W_0[D]
		}
		if l < L {
			o.Tanh(out, out)
		}
		in = out
	}
	tin := o.v
	for l := 0; l <= L; l++ {
		if l == L {
			if o.k == 0 {
				o.GemmEx(false, false, 1, tin, 0, o.layerW(l), 0, o.p, 0, Epilogue{Mask: o.v})
			} else {
				o.Gemm(false, false, 1, tin, o.layerW(l), 0, o.ad[L])
				o.Mul(o.p, o.v, o.ad[L])
			}
			break
		}
		o.Gemm(false, false, 1, tin, o.layerW(l), 0, o.ad[l])
		o.Gemm(false, false, 1, o.onesMcol, o.hflat[l], 0, o.hrepm[l])
		o.TanhBackward(o.hd[l], o.hrep[l], o.ad[l])
		tin = o.hd[l]
	}
	o.Gemm(false, false, 1, o.onesMrow, o.pm, 0, o.q)
	o.Gemm(false, false, o.c, o.qn, o.onesD, 0, tr)
}

// vjp, after eval at (z, t or tv), adds ∂Λ/∂θ to the gradient views and
// sets gz = ∂Λ/∂z for Λ = Σ az⊙f + Σ atr⊙tr (atr n×1).
func (o *BatchedODE) vjp(z *Tensor, t float64, tv, az, atr, gz *Tensor) {
	L := o.nh
	// Ǡ_L = c·atr_i·V_p[i]: atr spread over the columns and directions.
	o.Gemm(false, false, o.c, atr, o.onesDrow, 0, o.nd)
	if o.k == 0 {
		// V is 0/1: the GEMM's mask epilogue applies it.
		o.GemmEx(false, false, 1, o.onesMcol, 0, o.ndflat, 0, o.adbarLm, 0, Epilogue{Mask: o.vm})
	} else {
		o.Gemm(false, false, 1, o.onesMcol, o.ndflat, 0, o.adbarLm)
		o.Mul(o.adbarL, o.adbarL, o.v)
	}
	abar, adbar := az, o.adbarL
	for l := L; l >= 0; l-- {
		in, tin := z, o.v
		if l > 0 {
			in, tin = o.h[l-1], o.hd[l-1]
		}
		gw := o.gw[l]
		if l == 0 {
			gw = o.gwz
		}
		o.Gemm(true, false, 1, in, abar, 1, gw)
		o.Gemm(true, false, 1, tin, adbar, 1, gw)
		o.Gemm(true, false, 1, abar, o.onesNcol, 1, o.gbcol[l])
		if l == 0 {
			if tv == nil {
				o.Gemm(true, false, t, abar, o.onesNcol, 1, o.gwtcol)
			} else {
				o.Gemm(true, false, 1, abar, tv, 1, o.gwtcol)
			}
			o.Gemm(false, true, 1, abar, o.wz, 0, gz)
			return
		}
		w := o.w[l]
		inb, indb := o.inb[l-1], o.indb[l-1]
		o.Gemm(false, true, 1, abar, w, 0, inb)
		o.Gemm(false, true, 1, adbar, w, 0, indb)
		// ā = (1−h²)⊙(inbar − 2h⊙Σ_p indbar_p⊙ȧ_p), ǡ_p = (1−h²)⊙indbar_p.
		o.Mul(o.qx[l-1], indb, o.ad[l-1])
		o.Gemm(false, false, 1, o.onesMrow, o.qxm[l-1], 0, o.crossf[l-1])
		o.Mul(o.cross[l-1], o.cross[l-1], o.h[l-1])
		o.Axpy(-2, o.cross[l-1], inb)
		o.TanhBackward(o.abar[l-1], o.h[l-1], inb)
		o.TanhBackward(o.adbar[l-1], o.hrep[l-1], indb)
		abar, adbar = o.abar[l-1], o.adbar[l-1]
	}
}

// prep checks nothing (the caller did) and readies the buffers and views.
func (o *BatchedODE) prep(n int, dims []int, k int, theta, eps *Tensor) {
	o.setup(n, dims, k)
	o.params(theta)
	o.probes(eps)
}

// ODEFuncForward sets dz = f(z, t; θ) and trace = tr ∂f/∂z (ODEBackend).
func (o *BatchedODE) ODEFuncForward(dz, trace, z, theta, eps *Tensor, dims []int, t float64) {
	n, _, k := CheckODEFuncForward(dz, trace, z, theta, eps, dims)
	if n == 0 {
		return
	}
	o.prep(n, dims, k, theta, eps)
	o.eval(z, t, nil, dz, o.asCol(trace))
}

// ODEFuncVJP sets gz = ∂Λ/∂z and gtheta = ∂Λ/∂θ for Λ = Σ az⊙f +
// Σ atr⊙trace (ODEBackend).
func (o *BatchedODE) ODEFuncVJP(gz, gtheta, z, theta, eps, az, atr *Tensor, dims []int, t float64) {
	n, _, k := CheckODEFuncVJP(gz, gtheta, z, theta, eps, az, atr, dims)
	o.Fill(gtheta, 0)
	if n == 0 {
		return
	}
	o.prep(n, dims, k, theta, eps)
	o.grads(gtheta)
	o.eval(z, t, nil, o.nd, o.trcol)
	o.vjp(z, t, nil, az, o.asCol(atr), gz)
}

// rk4Buffers readies the RK4 states.
func (o *BatchedODE) rk4Buffers() *rk4Scratch {
	r := &o.rk
	if r.y != nil {
		return r
	}
	n, d := o.n, o.d
	r.y, r.yt, r.l = o.New(n, d), o.New(n, d), o.New(n, 1)
	for q := 0; q < 4; q++ {
		r.kz[q], r.kt[q] = o.New(n, d), o.New(n, 1)
		r.ys[q], r.kbz[q], r.kbt[q] = o.New(n, d), o.New(n, d), o.New(n, 1)
	}
	r.yb, r.ybs = o.New(n, d), o.New(n, d)
	r.fz, r.ft = o.New(n, d), o.New(n, 1)
	return r
}

// ODESolveRK4 integrates the augmented ODE in steps RK4 steps (ODEBackend).
func (o *BatchedODE) ODESolveRK4(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	n, d, k := CheckODESolveRK4(z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	return o.rk4(nil, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

// ODESolveRK4Record is ODESolveRK4 that keeps the step start states in
// the backend's memory, in tape (ODEBackend).
func (o *BatchedODE) ODESolveRK4Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	n, d, k := CheckODESolveRK4Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	return o.rk4(tape, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

// tapeOf returns tape's batched data (reused when this BatchedODE recorded
// it before), set up for steps states of n×D.
func (o *BatchedODE) tapeOf(tape *ODETape, n, d, steps int) *batchTape {
	bt, _ := tape.Ext.(*batchTape)
	if bt == nil || bt.owner != o {
		bt = &batchTape{owner: o}
	}
	if bt.n != n || bt.d != d || bt.steps != steps || bt.states == nil {
		bt.n, bt.d, bt.steps = n, d, steps
		bt.states = o.New(max(steps*n, 1), d)
		bt.views = bt.views[:0]
		for s := 0; s < steps; s++ {
			bt.views = append(bt.views, o.View(bt.states, s*n, (s+1)*n))
		}
	}
	return bt
}

func (o *BatchedODE) rk4(tape *ODETape, n, d, k int, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	st := ODEStats{NFE: 4 * steps * n, Accepted: steps * n}
	var bt *batchTape
	if tape != nil {
		bt = o.tapeOf(tape, n, d, steps)
		bt.t0, bt.t1, bt.dp = t0, t1, nil
		tape.PrepareExt(bt, false, n, d, k, steps, t0, t1)
	}
	if n == 0 {
		return st
	}
	o.prep(n, dims, k, theta, eps)
	r := o.rk4Buffers()
	h := (t1 - t0) / float64(steps)
	o.Copy(r.y, z0)
	o.Fill(r.l, 0)
	for s := 0; s < steps; s++ {
		t := t0 + float64(s)*h
		if bt != nil {
			o.Copy(bt.views[s], r.y)
		}
		o.eval(r.y, t, nil, r.kz[0], r.kt[0])
		for q, c := range [3]float64{0.5, 0.5, 1} {
			o.Copy(r.yt, r.y)
			o.Axpy(c*h, r.kz[q], r.yt)
			o.eval(r.yt, t+c*h, nil, r.kz[q+1], r.kt[q+1])
		}
		for q, w := range [4]float64{1, 2, 2, 1} {
			o.Axpy(h/6*w, r.kz[q], r.y)
			o.Axpy(h/6*w, r.kt[q], r.l)
		}
	}
	o.Copy(z1, r.y)
	o.Fill(logdet, 0)
	o.Axpy(1, r.l, logdet)
	return st
}

// ownTape returns the batched data of a tape that passed the contract, and
// panics unless this BatchedODE recorded it.
func (o *BatchedODE) ownTape(op string, tape *ODETape, dopri5 bool) *batchTape {
	bt, _ := tape.Ext.(*batchTape)
	if bt == nil || bt.owner != o || (bt.dp != nil) != dopri5 {
		panic(fmt.Sprintf("native: %s: the tape was not recorded by this batched path (record it with the matching Record)", op))
	}
	return bt
}

// ODESolveRK4Backward differentiates the RK4 solve recorded in tape
// (ODEBackend): per step, 3 evaluations rebuild the stage inputs, then 4 ×
// (evaluation + VJP) in reverse.
func (o *BatchedODE) ODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats {
	const op = "ODESolveRK4Backward"
	n, _, k := CheckODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	bt := o.ownTape(op, tape, false)
	steps := bt.steps
	st := ODEStats{NFE: 7 * steps * n, VJP: 4 * steps * n}
	o.Fill(gtheta, 0)
	if n == 0 {
		return st
	}
	o.prep(n, dims, k, theta, eps)
	o.grads(gtheta)
	r := o.rk4Buffers()
	h := (bt.t1 - bt.t0) / float64(steps)
	wts := [4]float64{1.0 / 6, 2.0 / 6, 2.0 / 6, 1.0 / 6}
	ts := [4]float64{0, 0.5, 0.5, 1}
	cs := [3]float64{0.5, 0.5, 1}
	aldc := o.asCol(ald)
	o.Copy(r.yb, a1)
	for s := steps - 1; s >= 0; s-- {
		t := bt.t0 + float64(s)*h
		y := bt.views[s]
		o.Copy(r.ys[0], y)
		for q := 0; q < 3; q++ {
			o.eval(r.ys[q], t+ts[q]*h, nil, r.fz, r.ft)
			o.Copy(r.ys[q+1], y)
			o.Axpy(cs[q]*h, r.fz, r.ys[q+1])
		}
		for q := 0; q < 4; q++ {
			o.Fill(r.kbz[q], 0)
			o.Axpy(h*wts[q], r.yb, r.kbz[q])
			o.Fill(r.kbt[q], 0)
			o.Axpy(h*wts[q], aldc, r.kbt[q])
		}
		for q := 3; q >= 0; q-- {
			o.eval(r.ys[q], t+ts[q]*h, nil, r.fz, r.ft)
			o.vjp(r.ys[q], t+ts[q]*h, nil, r.kbz[q], r.kbt[q], r.ybs)
			o.Axpy(1, r.ybs, r.yb)
			if q > 0 {
				o.Axpy(h*cs[q-1], r.ybs, r.kbz[q-1])
			}
		}
	}
	o.Copy(gz0, r.yb)
	return st
}

// ODESolveDopri5 integrates the augmented ODE with Dormand–Prince 5(4)
// steps controlled per row (ODEBackend; see BatchedODE).
func (o *BatchedODE) ODESolveDopri5(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	n, d, k := CheckODESolveDopri5(z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	return o.dopri5("ODESolveDopri5", nil, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

// ODESolveDopri5Record is ODESolveDopri5 that records each attempt for
// the backward pass in tape (ODEBackend).
func (o *BatchedODE) ODESolveDopri5Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	n, d, k := CheckODESolveDopri5Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	return o.dopri5("ODESolveDopri5Record", tape, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

// Recorded reports whether tape holds a solve this BatchedODE recorded (so
// a backend that runs it for some networks knows whose Backward to call).
func (o *BatchedODE) Recorded(tape *ODETape) bool {
	bt, _ := tape.Ext.(*batchTape)
	return bt != nil && bt.owner == o
}

package native

import (
	"fmt"
	"math"
)

// The reference backend's FFJORD operations (see ode.go): a direct Go
// transcription, one row at a time, in float64.

// odeError wraps a sentinel with the operation's context.
func odeError(op string, sentinel error, row int, t, h float64) error {
	return fmt.Errorf("native: %s: row %d at t = %g (step %g): %w", op, row, t, h, sentinel)
}

// refODE is one row's evaluation state for the reference backend.
type refODE struct {
	dims  []int
	off   []int // θ offset of W_l
	th    []float64
	v     [][]float64 // tangent directions (D each)
	c     float64     // trace scale: 1 (exact) or 1/k
	x     []float64   // [z, t]
	hs    [][]float64 // hidden outputs h_l
	ads   [][][]float64
	fbuf  []float64
	fout  []float64 // f of stageBack's re-evaluation (unused)
	d     int
	nhide int
}

func newRefODE(dims []int, theta []float64, k int) *refODE {
	d := dims[len(dims)-1]
	r := &refODE{dims: dims, th: theta, d: d, nhide: len(dims) - 2}
	o := 0
	for l := 0; l+1 < len(dims); l++ {
		r.off = append(r.off, o)
		o += dims[l]*dims[l+1] + dims[l+1]
	}
	m := d
	if k > 0 {
		m = k
	}
	r.v = make([][]float64, m)
	if k == 0 {
		r.c = 1
		for p := range r.v {
			r.v[p] = make([]float64, d)
			r.v[p][p] = 1
		}
	} else {
		r.c = 1 / float64(k)
	}
	r.x = make([]float64, d+1)
	r.hs = make([][]float64, r.nhide)
	r.ads = make([][][]float64, r.nhide)
	for l := range r.hs {
		r.hs[l] = make([]float64, dims[l+1])
		r.ads[l] = make([][]float64, m)
		for p := range r.ads[l] {
			r.ads[l][p] = make([]float64, dims[l+1])
		}
	}
	r.fbuf = make([]float64, d)
	return r
}

// setProbes points the Hutchinson directions at row i's probes.
func (r *refODE) setProbes(eps []float64, k, i int) {
	if k == 0 {
		return
	}
	for p := 0; p < k; p++ {
		r.v[p] = eps[(i*k+p)*r.d : (i*k+p+1)*r.d]
	}
}

func (r *refODE) w(l, i, j int) float64 { return r.th[r.off[l]+i*r.dims[l+1]+j] }
func (r *refODE) b(l, j int) float64    { return r.th[r.off[l]+r.dims[l]*r.dims[l+1]+j] }

// eval computes f(z, t) into f and returns the divergence, keeping h_l and
// the tangents ȧ_l^p for vjp.
func (r *refODE) eval(z []float64, t float64, f []float64) float64 {
	copy(r.x, z)
	r.x[r.d] = t
	L := len(r.dims) - 2 // index of the output layer
	in := r.x
	for l := 0; l <= L; l++ {
		dout := r.dims[l+1]
		out := f
		if l < L {
			out = r.hs[l]
		}
		for j := 0; j < dout; j++ {
			s := r.b(l, j)
			for i := range in {
				s += in[i] * r.w(l, i, j)
			}
			if l < L {
				s = math.Tanh(s)
			}
			out[j] = s
		}
		in = out
	}
	tr := 0.0
	for p, v := range r.v {
		// ȧ_0 = [v, 0] W_0; ḣ = (1 − h²) ȧ; ȧ_{l+1} = ḣ W_{l+1}.
		tin := v
		for l := 0; l <= L; l++ {
			dout := r.dims[l+1]
			tout := r.fbuf
			if l < L {
				tout = r.ads[l][p]
			}
			for j := 0; j < dout; j++ {
				s := 0.0
				for i := range tin {
					s += tin[i] * r.w(l, i, j)
				}
				tout[j] = s
			}
			if l < L {
				hd := make([]float64, dout)
				for j := range hd {
					hd[j] = (1 - r.hs[l][j]*r.hs[l][j]) * tout[j]
				}
				tin = hd
			}
		}
		for j := 0; j < r.d; j++ {
			tr += v[j] * r.fbuf[j]
		}
	}
	return r.c * tr
}

// vjp, after eval at the same (z, t), adds ∂Λ/∂θ to g and sets gz = ∂Λ/∂z
// for Λ = az·f + atr·tr. The derivation is in csrc/cpu/ode.inc.
func (r *refODE) vjp(az []float64, atr float64, g, gz []float64) {
	L := len(r.dims) - 2
	m := len(r.v)
	abar := append([]float64(nil), az...)
	adbar := make([][]float64, m)
	for p := range adbar {
		adbar[p] = make([]float64, r.d)
		for j := range adbar[p] {
			adbar[p][j] = atr * r.c * r.v[p][j]
		}
	}
	for l := L; l >= 0; l-- {
		din, dout := r.dims[l], r.dims[l+1]
		in := r.x
		tin := make([][]float64, m)
		if l > 0 {
			in = r.hs[l-1]
			for p := range tin {
				tin[p] = make([]float64, din)
				for i := range tin[p] {
					tin[p][i] = (1 - in[i]*in[i]) * r.ads[l-1][p][i]
				}
			}
		} else {
			for p := range tin {
				tin[p] = append(append([]float64(nil), r.v[p]...), 0)
			}
		}
		gw := g[r.off[l]:]
		for i := 0; i < din; i++ {
			for j := 0; j < dout; j++ {
				s := in[i] * abar[j]
				for p := range tin {
					s += tin[p][i] * adbar[p][j]
				}
				gw[i*dout+j] += s
			}
		}
		for j := 0; j < dout; j++ {
			gw[din*dout+j] += abar[j]
		}
		inbar := make([]float64, din)
		indbar := make([][]float64, m)
		for i := 0; i < din; i++ {
			for j := 0; j < dout; j++ {
				inbar[i] += r.w(l, i, j) * abar[j]
			}
		}
		for p := range indbar {
			indbar[p] = make([]float64, din)
			for i := 0; i < din; i++ {
				for j := 0; j < dout; j++ {
					indbar[p][i] += r.w(l, i, j) * adbar[p][j]
				}
			}
		}
		if l == 0 {
			copy(gz, inbar[:r.d])
			return
		}
		h := r.hs[l-1]
		abar = make([]float64, din)
		for i := 0; i < din; i++ {
			s := 1 - h[i]*h[i]
			cross := 0.0
			for p := 0; p < m; p++ {
				cross += indbar[p][i] * r.ads[l-1][p][i]
			}
			abar[i] = s*inbar[i] - 2*h[i]*s*cross
		}
		for p := range adbar {
			adbar[p] = make([]float64, din)
			for i := 0; i < din; i++ {
				adbar[p][i] = (1 - h[i]*h[i]) * indbar[p][i]
			}
		}
	}
}

// aug evaluates the augmented dynamics [f, tr] of y = [z, l] into out.
func (r *refODE) aug(t float64, y, out []float64) {
	out[r.d] = r.eval(y[:r.d], t, out[:r.d])
}

// refODEFor returns the row evaluator for checked arguments with k probes,
// and the probes (nil for the exact trace).
func refODEFor(theta, eps *Tensor, dims []int, k int) (rr *refODE, epsv []float64) {
	if eps != nil {
		epsv = f64(eps)
	}
	return newRefODE(dims, f64(theta), k), epsv
}

func (ref) ODEFuncForward(dz, trace, z, theta, eps *Tensor, dims []int, t float64) {
	n, d, k := CheckODEFuncForward(dz, trace, z, theta, eps, dims)
	rr, ev := refODEFor(theta, eps, dims, k)
	zs, fs, ts := f64(z), f64(dz), f64(trace)
	for i := 0; i < n; i++ {
		rr.setProbes(ev, k, i)
		ts[i] = rr.eval(zs[i*d:(i+1)*d], t, fs[i*d:(i+1)*d])
	}
}

func (ref) ODEFuncVJP(gz, gtheta, z, theta, eps, az, atr *Tensor, dims []int, t float64) {
	n, d, k := CheckODEFuncVJP(gz, gtheta, z, theta, eps, az, atr, dims)
	rr, ev := refODEFor(theta, eps, dims, k)
	zs, gzs, as, trs, g := f64(z), f64(gz), f64(az), f64(atr), f64(gtheta)
	for j := range g {
		g[j] = 0
	}
	f := make([]float64, d)
	for i := 0; i < n; i++ {
		rr.setProbes(ev, k, i)
		rr.eval(zs[i*d:(i+1)*d], t, f)
		rr.vjp(as[i*d:(i+1)*d], trs[i], g, gzs[i*d:(i+1)*d])
	}
}

func (r ref) ODESolveRK4(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	n, d, k := CheckODESolveRK4(z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	return r.rk4(nil, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

func (r ref) ODESolveRK4Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	n, d, k := CheckODESolveRK4Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	return r.rk4(tape, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

// rk4 is the RK4 solve of checked arguments, recording the step start
// states in tape if non-nil.
func (ref) rk4(tape *ODETape, n, d, k int, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	rr, ev := refODEFor(theta, eps, dims, k)
	var states []float64
	if tape != nil {
		tape.prepare(tapeRK4, n, d, k, steps, t0, t1)
		states = tape.buf
	}
	zs, outs, lds := f64(z0), f64(z1), f64(logdet)
	h := (t1 - t0) / float64(steps)
	y, yt := make([]float64, d+1), make([]float64, d+1)
	ks := [4][]float64{make([]float64, d+1), make([]float64, d+1), make([]float64, d+1), make([]float64, d+1)}
	for i := 0; i < n; i++ {
		rr.setProbes(ev, k, i)
		copy(y, zs[i*d:(i+1)*d])
		y[d] = 0
		for s := 0; s < steps; s++ {
			t := t0 + float64(s)*h
			if states != nil {
				copy(states[(i*steps+s)*d:(i*steps+s+1)*d], y[:d])
			}
			rr.aug(t, y, ks[0])
			for j := range yt {
				yt[j] = y[j] + 0.5*h*ks[0][j]
			}
			rr.aug(t+0.5*h, yt, ks[1])
			for j := range yt {
				yt[j] = y[j] + 0.5*h*ks[1][j]
			}
			rr.aug(t+0.5*h, yt, ks[2])
			for j := range yt {
				yt[j] = y[j] + h*ks[2][j]
			}
			rr.aug(t+h, yt, ks[3])
			for j := range y {
				y[j] += h / 6 * (ks[0][j] + 2*ks[1][j] + 2*ks[2][j] + ks[3][j])
			}
		}
		copy(outs[i*d:(i+1)*d], y[:d])
		lds[i] = y[d]
	}
	return ODEStats{NFE: 4 * steps * n, Accepted: steps * n}
}

// Dormand–Prince 5(4) tableau: nodes, stage weights, 5th- and 4th-order
// solution weights.
var (
	dpC = [7]float64{0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1}
	dpA = [7][6]float64{
		{},
		{1.0 / 5},
		{3.0 / 40, 9.0 / 40},
		{44.0 / 45, -56.0 / 15, 32.0 / 9},
		{19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
		{9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
		{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
	}
	dpB  = [7]float64{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0}
	dpBs = [7]float64{5179.0 / 57600, 0, 7571.0 / 16695, 393.0 / 640, -92097.0 / 339200, 187.0 / 2100, 1.0 / 40}
)

func allFinite(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

func (r ref) ODESolveDopri5(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	n, d, k := CheckODESolveDopri5(z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	return r.dopri5("ODESolveDopri5", nil, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

func (r ref) ODESolveDopri5Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	n, d, k := CheckODESolveDopri5Record(tape, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	return r.dopri5("ODESolveDopri5Record", tape, n, d, k, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

// dopri5 is the Dormand–Prince solve of checked arguments, recording each
// row's accepted steps in tape if non-nil; op names it in errors.
func (ref) dopri5(op string, tape *ODETape, n, d, k int, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	rr, ev := refODEFor(theta, eps, dims, k)
	if tape != nil {
		tape.prepare(tapeDopri5, n, d, k, opt.MaxSteps, t0, t1)
		for i := range tape.nacc {
			tape.nacc[i] = 0
		}
	}
	zs, outs, lds := f64(z0), f64(z1), f64(logdet)
	var st ODEStats
	span, dir := math.Abs(t1-t0), 1.0
	if t1 < t0 {
		dir = -1
	}
	d1 := d + 1
	y, yn, yt := make([]float64, d1), make([]float64, d1), make([]float64, d1)
	var K [7][]float64
	for s := range K {
		K[s] = make([]float64, d1)
	}
	for i := 0; i < n; i++ {
		rr.setProbes(ev, k, i)
		copy(y, zs[i*d:(i+1)*d])
		y[d] = 0
		t, h := t0, math.Min(opt.H0, span)
		if span > 0 {
			rr.aug(t, y, K[0])
			st.NFE++
			if !allFinite(K[0]) || !allFinite(y) {
				return st, odeError(op, ErrODENonFinite, i, t, h)
			}
		}
		for attempts := 0; span > 0 && dir*(t1-t) > 0; attempts++ {
			if attempts >= opt.MaxSteps {
				return st, fmt.Errorf("native: %s: row %d at t = %g: %w (%d attempts)", op, i, t, ErrODEMaxSteps, opt.MaxSteps)
			}
			if h < 1e-12*span {
				return st, odeError(op, ErrODEStepUnderflow, i, t, h)
			}
			rem := dir * (t1 - t)
			last := h >= rem
			hs := h
			if last {
				hs = rem
			}
			hh := dir * hs
			for s := 1; s < 7; s++ {
				for j := 0; j < d1; j++ {
					acc := 0.0
					for q := 0; q < s; q++ {
						acc += dpA[s][q] * K[q][j]
					}
					yt[j] = y[j] + hh*acc
				}
				rr.aug(t+dpC[s]*hh, yt, K[s])
				st.NFE++
			}
			copy(yn, yt)
			e2 := 0.0
			for j := 0; j < d1; j++ {
				e := 0.0
				for q := 0; q < 7; q++ {
					e += (dpB[q] - dpBs[q]) * K[q][j]
				}
				sc := opt.Atol + opt.Rtol*math.Max(math.Abs(y[j]), math.Abs(yn[j]))
				r := hh * e / sc
				e2 += r * r
			}
			err := math.Sqrt(e2 / float64(d1))
			finite := !math.IsNaN(err) && !math.IsInf(err, 0)
			if finite && err <= 1 {
				if tape != nil {
					e := tape.buf[(i*opt.MaxSteps+int(tape.nacc[i]))*(d+2):]
					e[0], e[1] = t, hh
					copy(e[2:2+d], y[:d])
					tape.nacc[i]++
				}
				copy(y, yn)
				copy(K[0], K[6])
				if last {
					t = t1
				} else {
					t += hh
				}
				st.Accepted++
				if !allFinite(y) || !allFinite(K[0]) {
					return st, odeError(op, ErrODENonFinite, i, t, hs)
				}
				fac := 10.0
				if err > 0 {
					fac = math.Min(10, math.Max(0.2, 0.9*math.Pow(err, -0.2)))
				}
				h = hs * fac
			} else {
				fac := 0.2
				if finite {
					fac = math.Max(0.2, 0.9*math.Pow(err, -0.2))
				}
				h = hs * fac
			}
		}
		copy(outs[i*d:(i+1)*d], y[:d])
		lds[i] = y[d]
	}
	return st, nil
}

// stageBack re-evaluates g at (t, Y) and adds (∂g/∂Y)ᵀ kb to yb, the θ
// part to g. kb has D+1 entries (the last is the trace cotangent).
func (r *refODE) stageBack(t float64, Y, kb, yb, g, scratch []float64) {
	if len(r.fout) != r.d {
		r.fout = make([]float64, r.d)
	}
	r.eval(Y[:r.d], t, r.fout)
	r.vjp(kb[:r.d], kb[r.d], g, scratch)
	for j := 0; j < r.d; j++ {
		yb[j] += scratch[j]
	}
}

func (ref) ODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats {
	const op = "ODESolveRK4Backward"
	n, d, k := CheckODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	mustHostTape(op, tape)
	rr, ev := refODEFor(theta, eps, dims, k)
	as, lds, gz, g := f64(a1), f64(ald), f64(gz0), f64(gtheta)
	for j := range g {
		g[j] = 0
	}
	steps, t0 := tape.steps, tape.t0
	h := (tape.t1 - tape.t0) / float64(steps)
	d1 := d + 1
	var Y, Kb [4][]float64
	for q := range Y {
		Y[q], Kb[q] = make([]float64, d1), make([]float64, d1)
	}
	K, yb, Yb, scratch := make([]float64, d1), make([]float64, d), make([]float64, d), make([]float64, d)
	wts := [4]float64{1.0 / 6, 2.0 / 6, 2.0 / 6, 1.0 / 6}
	ts := [4]float64{0, 0.5, 0.5, 1}
	cs := [3]float64{0.5, 0.5, 1} // Y_{q+1} = y + h·cs[q]·K_q
	for i := 0; i < n; i++ {
		rr.setProbes(ev, k, i)
		copy(yb, as[i*d:(i+1)*d])
		for s := steps - 1; s >= 0; s-- {
			t := t0 + float64(s)*h
			y := tape.buf[(i*steps+s)*d : (i*steps+s+1)*d]
			copy(Y[0], y)
			for q := 0; q < 3; q++ {
				rr.aug(t+ts[q]*h, Y[q], K)
				for j := 0; j < d; j++ {
					Y[q+1][j] = y[j] + cs[q]*h*K[j]
				}
			}
			for q := 0; q < 4; q++ {
				for j := 0; j < d; j++ {
					Kb[q][j] = h * wts[q] * yb[j]
				}
				Kb[q][d] = h * wts[q] * lds[i]
			}
			for q := 3; q >= 0; q-- {
				for j := range Yb {
					Yb[j] = 0
				}
				rr.stageBack(t+ts[q]*h, Y[q], Kb[q], Yb, g, scratch)
				for j := 0; j < d; j++ {
					yb[j] += Yb[j]
					if q > 0 {
						Kb[q-1][j] += h * cs[q-1] * Yb[j]
					}
				}
			}
		}
		copy(gz[i*d:(i+1)*d], yb)
	}
	return ODEStats{NFE: 7 * steps * n, VJP: 4 * steps * n}
}

func (ref) ODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats {
	const op = "ODESolveDopri5Backward"
	n, d, k := CheckODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	mustHostTape(op, tape)
	rr, ev := refODEFor(theta, eps, dims, k)
	as, lds, gz, g := f64(a1), f64(ald), f64(gz0), f64(gtheta)
	for j := range g {
		g[j] = 0
	}
	d1 := d + 1
	var Y, K, Kb [6][]float64
	for q := range Y {
		Y[q], K[q], Kb[q] = make([]float64, d1), make([]float64, d1), make([]float64, d1)
	}
	yb, Yb, scratch := make([]float64, d), make([]float64, d), make([]float64, d)
	var st ODEStats
	for i := 0; i < n; i++ {
		rr.setProbes(ev, k, i)
		copy(yb, as[i*d:(i+1)*d])
		for m := int(tape.nacc[i]) - 1; m >= 0; m-- {
			e := tape.buf[(i*tape.steps+m)*(d+2):]
			t, hh, y := e[0], e[1], e[2:2+d]
			for s := 0; s < 6; s++ {
				for j := 0; j < d; j++ {
					acc := 0.0
					for q := 0; q < s; q++ {
						acc += dpA[s][q] * K[q][j]
					}
					Y[s][j] = y[j] + hh*acc
				}
				if s < 5 {
					rr.aug(t+dpC[s]*hh, Y[s], K[s])
					st.NFE++
				}
			}
			for q := 0; q < 6; q++ {
				for j := 0; j < d; j++ {
					Kb[q][j] = hh * dpB[q] * yb[j]
				}
				Kb[q][d] = hh * dpB[q] * lds[i]
			}
			for s := 5; s >= 0; s-- {
				for j := range Yb {
					Yb[j] = 0
				}
				rr.stageBack(t+dpC[s]*hh, Y[s], Kb[s], Yb, g, scratch)
				st.NFE++
				st.VJP++
				for j := 0; j < d; j++ {
					yb[j] += Yb[j]
					for q := 0; q < s; q++ {
						Kb[q][j] += hh * dpA[s][q] * Yb[j]
					}
				}
			}
		}
		copy(gz[i*d:(i+1)*d], yb)
	}
	return st
}

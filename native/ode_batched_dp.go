package native

import (
	"fmt"
	"math"
)

// Dormand–Prince on the batched path: the stages are batched evaluations
// at per-row times and step sizes; the step control is the reference's,
// per row, on the host.

// dpScratch holds the batched Dormand–Prince states, device and host.
type dpScratch struct {
	y, l, ynl, yt, ez, el *Tensor // n×D and n×1
	kz, kt                [7]*Tensor
	hkz, hkt              [7]*Tensor // hh⊙K
	hh, tv0, tv           *Tensor    // n×1
	hrep                  *Tensor    // n×D
	// backward
	ys             [6]*Tensor
	kbz, kbt       [6]*Tensor
	yb, ybs, ybh   *Tensor
	aldh           *Tensor
	hy, hyn, hez   []float64 // host copies n×D (hy, hl: the states)
	hk0z, hk6z     []float64 // n×D
	hl, hynl, hel  []float64 // n
	hk0t, hk6t     []float64 // n
	hhh, ht, hacc  []float64 // n
	hs             []float64 // n: step size magnitudes
	tt             []float64 // n: current times
	attempts, nacc []int
	state          []int8 // 0 active, 1 done, 2 failed
	fail           []error
}

// dpLog is a recorded batched Dormand–Prince solve: the attempts in
// which some row accepted a step, each with the states at its start
// (n×D, in the backend's memory) and every row's time and signed step
// (0 for the rows that did not accept a step in it).
type dpLog struct {
	states []*Tensor
	t, hh  [][]float64
	used   int
}

func (o *BatchedODE) dpBuffers() *dpScratch {
	if o.dp != nil && o.dp.y != nil {
		return o.dp
	}
	n, d := o.n, o.d
	s := &dpScratch{}
	nd := func() *Tensor { return o.New(n, d) }
	n1 := func() *Tensor { return o.New(n, 1) }
	s.y, s.l, s.ynl, s.yt, s.ez, s.el = nd(), n1(), n1(), nd(), nd(), n1()
	for q := 0; q < 7; q++ {
		s.kz[q], s.kt[q], s.hkz[q], s.hkt[q] = nd(), n1(), nd(), n1()
	}
	s.hh, s.tv0, s.tv, s.hrep = n1(), n1(), n1(), nd()
	for q := 0; q < 6; q++ {
		s.ys[q], s.kbz[q], s.kbt[q] = nd(), nd(), n1()
	}
	s.yb, s.ybs, s.ybh, s.aldh = nd(), nd(), nd(), n1()
	s.hy, s.hyn, s.hez = make([]float64, n*d), make([]float64, n*d), make([]float64, n*d)
	s.hl, s.hynl, s.hel = make([]float64, n), make([]float64, n), make([]float64, n)
	s.hk0z, s.hk6z, s.hk0t, s.hk6t = make([]float64, n*d), make([]float64, n*d), make([]float64, n), make([]float64, n)
	s.hhh, s.ht, s.hacc, s.hs, s.tt = make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	s.attempts, s.nacc = make([]int, n), make([]int, n)
	s.state, s.fail = make([]int8, n), make([]error, n)
	o.dp = s
	return s
}

// rowScale sets hrep (n×D) to hh spread over the columns.
func (o *BatchedODE) rowScale(s *dpScratch) {
	o.Gemm(false, false, 1, s.hh, o.onesDrow, 0, s.hrep)
}

// stageTimes sets tv = tv0 + c·hh.
func (o *BatchedODE) stageTimes(s *dpScratch, c float64) {
	o.Copy(s.tv, s.tv0)
	o.Axpy(c, s.hh, s.tv)
}

// stageInput sets yt = y + Σ_{q<st} a[st][q]·hkz_q.
func (o *BatchedODE) stageInput(s *dpScratch, y *Tensor, st int) {
	o.Copy(s.yt, y)
	for q := 0; q < st; q++ {
		if a := dpA[st][q]; a != 0 {
			o.Axpy(a, s.hkz[q], s.yt)
		}
	}
}

func (o *BatchedODE) dopri5(op string, tape *ODETape, n, d, k int, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	var st ODEStats
	var lg *dpLog
	var nacc []int64
	if tape != nil {
		bt, _ := tape.Ext.(*batchTape)
		if bt == nil || bt.owner != o {
			bt = &batchTape{owner: o}
		}
		if bt.dp == nil {
			bt.dp = &dpLog{}
		}
		bt.n, bt.d, bt.t0, bt.t1 = n, d, t0, t1
		lg = bt.dp
		lg.used = 0
		nacc = tape.PrepareExt(bt, true, n, d, k, opt.MaxSteps, t0, t1)
	}
	if n == 0 {
		return st, nil
	}
	o.prep(n, dims, k, theta, eps)
	s := o.dpBuffers()
	span, dir := math.Abs(t1-t0), 1.0
	if t1 < t0 {
		dir = -1
	}
	o.Copy(s.y, z0)
	o.Fill(s.l, 0)
	o.Download(s.hy, s.y)
	clear(s.hl)
	for i := 0; i < n; i++ {
		s.tt[i], s.hs[i], s.attempts[i], s.nacc[i], s.state[i], s.fail[i] = t0, math.Min(opt.H0, span), 0, 0, 0, nil
		if span == 0 {
			s.state[i] = 1
		}
	}
	if span > 0 {
		o.Fill(s.tv0, t0)
		o.eval(s.y, t0, nil, s.kz[0], s.kt[0])
		st.NFE += n
		o.Download(s.hk0z, s.kz[0])
		o.Download(s.hk0t, s.kt[0])
		for i := 0; i < n; i++ {
			if !allFinite(s.hk0z[i*d:(i+1)*d]) || !allFinite(s.hy[i*d:(i+1)*d]) || !allFinite(s.hk0t[i:i+1]) {
				s.state[i], s.fail[i] = 2, odeError(op, ErrODENonFinite, i, t0, s.hs[i])
			}
		}
	}
	for {
		active := 0
		for i := 0; i < n; i++ {
			s.hhh[i], s.ht[i] = 0, s.tt[i]
			if s.state[i] != 0 {
				continue
			}
			if dir*(t1-s.tt[i]) <= 0 {
				s.state[i] = 1
				continue
			}
			if s.attempts[i] >= opt.MaxSteps {
				s.state[i], s.fail[i] = 2, fmt.Errorf("native: %s: row %d at t = %g: %w (%d attempts)", op, i, s.tt[i], ErrODEMaxSteps, opt.MaxSteps)
				continue
			}
			if s.hs[i] < 1e-12*span {
				s.state[i], s.fail[i] = 2, odeError(op, ErrODEStepUnderflow, i, s.tt[i], s.hs[i])
				continue
			}
			rem := dir * (t1 - s.tt[i])
			hs := math.Min(s.hs[i], rem)
			s.hhh[i] = dir * hs
			s.attempts[i]++
			active++
		}
		if active == 0 {
			break
		}
		o.Upload(s.hh, s.hhh)
		o.Upload(s.tv0, s.ht)
		o.rowScale(s)
		o.Mul(s.hkz[0], s.hrep, s.kz[0])
		o.Mul(s.hkt[0], s.hh, s.kt[0])
		for stg := 1; stg < 7; stg++ {
			o.stageInput(s, s.y, stg)
			o.stageTimes(s, dpC[stg])
			o.eval(s.yt, 0, s.tv, s.kz[stg], s.kt[stg])
			o.Mul(s.hkz[stg], s.hrep, s.kz[stg])
			o.Mul(s.hkt[stg], s.hh, s.kt[stg])
		}
		st.NFE += 6 * active
		// yt is now the 5th-order z; the log-density and the error estimates.
		o.Copy(s.ynl, s.l)
		o.Fill(s.ez, 0)
		o.Fill(s.el, 0)
		for q := 0; q < 7; q++ {
			if dpB[q] != 0 {
				o.Axpy(dpB[q], s.hkt[q], s.ynl)
			}
			o.Axpy(dpB[q]-dpBs[q], s.hkz[q], s.ez)
			o.Axpy(dpB[q]-dpBs[q], s.hkt[q], s.el)
		}
		o.Download(s.hyn, s.yt)
		o.Download(s.hez, s.ez)
		o.Download(s.hynl, s.ynl)
		o.Download(s.hel, s.el)
		anyAcc := false
		for i := 0; i < n; i++ {
			s.hacc[i] = 0
			if s.hhh[i] == 0 {
				continue
			}
			hs := math.Abs(s.hhh[i])
			e2 := 0.0
			for j := 0; j <= d; j++ {
				y, yn, e := s.hl[i], s.hynl[i], s.hel[i]
				if j < d {
					y, yn, e = s.hy[i*d+j], s.hyn[i*d+j], s.hez[i*d+j]
				}
				sc := opt.Atol + opt.Rtol*math.Max(math.Abs(y), math.Abs(yn))
				r := e / sc
				e2 += r * r
			}
			err := math.Sqrt(e2 / float64(d+1))
			finite := !math.IsNaN(err) && !math.IsInf(err, 0)
			if finite && err <= 1 {
				s.hacc[i] = 1
				anyAcc = true
				last := hs >= dir*(t1-s.tt[i])
				if last {
					s.tt[i] = t1
				} else {
					s.tt[i] += s.hhh[i]
				}
				s.nacc[i]++
				st.Accepted++
				if !allFinite(s.hyn[i*d:(i+1)*d]) || !allFinite(s.hynl[i:i+1]) {
					s.state[i], s.fail[i] = 2, odeError(op, ErrODENonFinite, i, s.tt[i], hs)
				}
				fac := 10.0
				if err > 0 {
					fac = math.Min(10, math.Max(0.2, 0.9*math.Pow(err, -0.2)))
				}
				s.hs[i] = hs * fac
			} else {
				fac := 0.2
				if finite {
					fac = math.Max(0.2, 0.9*math.Pow(err, -0.2))
				}
				s.hs[i] = hs * fac
			}
		}
		if !anyAcc {
			continue
		}
		if lg != nil {
			o.logAttempt(lg, s, n)
		}
		// Accepted rows: y ← y5, l ← l5, K0 ← K6, selected on the host
		// (exact, and a rejected row's non-finite values stay out).
		o.Download(s.hk6z, s.kz[6])
		o.Download(s.hk6t, s.kt[6])
		for i := 0; i < n; i++ {
			if s.hacc[i] == 0 {
				continue
			}
			copy(s.hy[i*d:(i+1)*d], s.hyn[i*d:(i+1)*d])
			copy(s.hk0z[i*d:(i+1)*d], s.hk6z[i*d:(i+1)*d])
			s.hl[i], s.hk0t[i] = s.hynl[i], s.hk6t[i]
		}
		o.Upload(s.y, s.hy)
		o.Upload(s.l, s.hl)
		o.Upload(s.kz[0], s.hk0z)
		o.Upload(s.kt[0], s.hk0t)
	}
	for i := 0; i < n; i++ {
		if nacc != nil {
			nacc[i] = int64(s.nacc[i])
		}
	}
	for i := 0; i < n; i++ {
		if s.fail[i] != nil {
			return st, s.fail[i]
		}
	}
	o.Copy(z1, s.y)
	o.Upload(logdet, s.hl)
	return st, nil
}

// logAttempt records an attempt with an accepted row: the start states
// and, per row, the time and the signed step if it accepted, else 0.
func (o *BatchedODE) logAttempt(lg *dpLog, s *dpScratch, n int) {
	if lg.used == len(lg.states) {
		lg.states = append(lg.states, o.New(n, o.d))
		lg.t = append(lg.t, make([]float64, n))
		lg.hh = append(lg.hh, make([]float64, n))
	}
	u := lg.used
	if lg.states[u].rows != n || lg.states[u].cols != o.d {
		lg.states[u] = o.New(n, o.d)
		lg.t[u], lg.hh[u] = make([]float64, n), make([]float64, n)
	}
	o.Copy(lg.states[u], s.y)
	copy(lg.t[u], s.ht)
	for i := 0; i < n; i++ {
		lg.hh[u][i] = s.hhh[i] * s.hacc[i]
	}
	lg.used++
}

// ODESolveDopri5Backward differentiates the Dormand–Prince solve recorded
// in tape (ODEBackend): per recorded attempt, in reverse, 5 evaluations
// rebuild the stages and 6 × (evaluation + VJP) run back through the
// 5th-order update, rows that did not accept a step in it taking a zero
// step (whose adjoint is the identity).
func (o *BatchedODE) ODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats {
	const op = "ODESolveDopri5Backward"
	n, _, k := CheckODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	bt := o.ownTape(op, tape, true)
	acc := 0
	for i := 0; i < n; i++ {
		acc += tape.Accepted(i)
	}
	st := ODEStats{NFE: 11 * acc, VJP: 6 * acc}
	o.Fill(gtheta, 0)
	if n == 0 {
		return st
	}
	o.prep(n, dims, k, theta, eps)
	o.grads(gtheta)
	s := o.dpBuffers()
	lg := bt.dp
	aldc := o.asCol(ald)
	o.Copy(s.yb, a1)
	for u := lg.used - 1; u >= 0; u-- {
		y := lg.states[u]
		o.Upload(s.hh, lg.hh[u])
		o.Upload(s.tv0, lg.t[u])
		o.rowScale(s)
		for stg := 0; stg < 6; stg++ {
			if stg == 0 {
				o.Copy(s.ys[0], y)
			} else {
				o.stageInput(s, y, stg)
				o.Copy(s.ys[stg], s.yt)
			}
			if stg < 5 {
				o.stageTimes(s, dpC[stg])
				o.eval(s.ys[stg], 0, s.tv, s.kz[stg], s.kt[stg])
				o.Mul(s.hkz[stg], s.hrep, s.kz[stg])
			}
		}
		// Kb_q = hh·b_q·[yb, ald].
		o.Mul(s.ybh, s.hrep, s.yb)
		o.Mul(s.aldh, s.hh, aldc)
		for q := 0; q < 6; q++ {
			o.Fill(s.kbz[q], 0)
			o.Axpy(dpB[q], s.ybh, s.kbz[q])
			o.Fill(s.kbt[q], 0)
			o.Axpy(dpB[q], s.aldh, s.kbt[q])
		}
		for stg := 5; stg >= 0; stg-- {
			o.stageTimes(s, dpC[stg])
			o.eval(s.ys[stg], 0, s.tv, s.kz[6], s.kt[6])
			o.vjp(s.ys[stg], 0, s.tv, s.kbz[stg], s.kbt[stg], s.ybs)
			o.Axpy(1, s.ybs, s.yb)
			if stg > 0 {
				o.Mul(s.ybs, s.hrep, s.ybs)
				for q := 0; q < stg; q++ {
					if a := dpA[stg][q]; a != 0 {
						o.Axpy(a, s.ybs, s.kbz[q])
					}
				}
			}
		}
	}
	o.Copy(gz0, s.yb)
	return st
}

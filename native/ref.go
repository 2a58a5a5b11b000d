package native

import "math"

// ref is the float64 reference backend: the most direct Go transcription of
// each kernel's formula, single-threaded. It is the oracle every other
// backend is tested against, and the backend used when cgo is unavailable.
type ref struct{}

// NewRef returns the plain-Go float64 reference backend.
func NewRef() Backend { return ref{} }

func (ref) Name() string      { return "ref" }
func (ref) DType() DType      { return Float64 }
func (ref) Threads() int      { return 1 }
func (ref) Close()            {}
func f64(t *Tensor) []float64 { return t.store.([]float64) }

func (ref) New(rows, cols int) *Tensor {
	return NewTensor(rows, cols, Float64, make([]float64, rows*cols))
}

func (ref) View(t *Tensor, lo, hi int) *Tensor {
	CheckView(t, lo, hi)
	return NewTensor(hi-lo, t.cols, Float64, f64(t)[lo*t.cols:hi*t.cols:hi*t.cols])
}

func (ref) Upload(t *Tensor, src []float64) {
	CheckUpload(t, src)
	copy(f64(t), src)
}

func (ref) Download(dst []float64, t *Tensor) {
	CheckDownload(dst, t)
	copy(dst, f64(t))
}

func (ref) Copy(dst, src *Tensor) {
	CheckCopy(dst, src)
	copy(f64(dst), f64(src))
}

func (ref) Fill(t *Tensor, v float64) {
	x := f64(t)
	for i := range x {
		x[i] = v
	}
}

func (ref) Axpy(alpha float64, x, y *Tensor) {
	CheckAxpy(x, y)
	xs, ys := f64(x), f64(y)
	for i := range xs {
		ys[i] += alpha * xs[i]
	}
}

func (ref) Mul(out, a, b *Tensor) {
	CheckMul(out, a, b)
	as, bs, os := f64(a), f64(b), f64(out)
	for i := range as {
		os[i] = as[i] * bs[i]
	}
}

func (ref) Dot(x, y *Tensor) float64 {
	CheckDot(x, y)
	xs, ys := f64(x), f64(y)
	s := 0.0
	for i := range xs {
		s += xs[i] * ys[i]
	}
	return s
}

func (ref) Sum(x *Tensor) float64 {
	s := 0.0
	for _, v := range f64(x) {
		s += v
	}
	return s
}

func (ref) Gemm(transA, transB bool, alpha float64, a, b *Tensor, beta float64, c *Tensor) {
	m, n, k := CheckGemm(transA, transB, a, b, c)
	as, bs, cs := f64(a), f64(b), f64(c)
	at := func(i, p int) float64 {
		if transA {
			return as[p*a.cols+i]
		}
		return as[i*a.cols+p]
	}
	bt := func(p, j int) float64 {
		if transB {
			return bs[j*b.cols+p]
		}
		return bs[p*b.cols+j]
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				s += at(i, p) * bt(p, j)
			}
			if beta == 0 {
				cs[i*n+j] = alpha * s
			} else {
				cs[i*n+j] = alpha*s + beta*cs[i*n+j]
			}
		}
	}
}

func (ref) GemmEx(transA, transB bool, alpha float64, a *Tensor, a0 int, b *Tensor, beta float64, c *Tensor, c0 int, ep Epilogue) {
	m, n, k := CheckGemmEx(transA, transB, a, a0, b, c, c0, ep)
	as, bs, cs := f64(a), f64(b), f64(c)
	at := func(i, p int) float64 {
		if transA {
			return as[p*a.cols+a0+i]
		}
		return as[i*a.cols+a0+p]
	}
	bt := func(p, j int) float64 {
		if transB {
			return bs[j*b.cols+p]
		}
		return bs[p*b.cols+j]
	}
	var bias, mask, colsum []float64
	if ep.Bias != nil {
		bias = f64(ep.Bias)
	}
	if ep.Mask != nil {
		mask = f64(ep.Mask)
	}
	if ep.ColSum != nil {
		colsum = f64(ep.ColSum)
		clear(colsum)
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				s += at(i, p) * bt(p, j)
			}
			ci := &cs[i*c.cols+c0+j]
			z := alpha * s
			if beta != 0 {
				z += beta * *ci
			}
			if bias != nil {
				z += bias[j]
			}
			if ep.ReLU {
				z = max(z, 0)
			}
			if mask != nil && !(mask[i*n+j] > 0) {
				z = 0
			}
			*ci = z
			if colsum != nil {
				colsum[j] += z
			}
		}
	}
}

func (ref) SumSquares(out []float64, x *Tensor, ends []int64) {
	CheckSumSquares(out, x, ends)
	xs := f64(x)
	start := int64(0)
	for s, e := range ends {
		out[s] = 0
		for _, v := range xs[start:e] {
			out[s] += v * v
		}
		start = e
	}
}

func (ref) BiasAdd(y, bias *Tensor) {
	n, d := CheckBiasAdd(y, bias)
	ys, bs := f64(y), f64(bias)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			ys[i*d+j] += bs[j]
		}
	}
}

func (ref) BiasGrad(db, dy *Tensor) {
	n, d := CheckBiasGrad(db, dy)
	ds, gs := f64(dy), f64(db)
	for j := 0; j < d; j++ {
		s := 0.0
		for i := 0; i < n; i++ {
			s += ds[i*d+j]
		}
		gs[j] = s
	}
}

func (ref) ReLU(y, x *Tensor) {
	CheckReLU(y, x)
	xs, ys := f64(x), f64(y)
	for i, v := range xs {
		ys[i] = math.Max(v, 0)
	}
}

func (ref) ReLUBackward(dx, x, dy *Tensor) {
	CheckReLUBackward(dx, x, dy)
	xs, dys, dxs := f64(x), f64(dy), f64(dx)
	for i, v := range xs {
		if v > 0 {
			dxs[i] = dys[i]
		} else {
			dxs[i] = 0
		}
	}
}

func (ref) Tanh(y, x *Tensor) {
	CheckTanh(y, x)
	xs, ys := f64(x), f64(y)
	for i, v := range xs {
		ys[i] = math.Tanh(v)
	}
}

func (ref) TanhBackward(dx, y, dy *Tensor) {
	CheckTanhBackward(dx, y, dy)
	ys, dys, dxs := f64(y), f64(dy), f64(dx)
	for i, v := range ys {
		dxs[i] = dys[i] * (1 - v*v)
	}
}

func (ref) GaussLogProb(logp, u, x, mu, l *Tensor, logdetL float64) {
	n, d := CheckGaussLogProb(logp, u, x, mu, l)
	xs, ms, ls, us, lp := f64(x), f64(mu), f64(l), f64(u), f64(logp)
	c := -0.5*float64(d)*math.Log(2*math.Pi) + logdetL
	for i := 0; i < n; i++ {
		q := 0.0
		for r := 0; r < d; r++ {
			s := 0.0
			for j := 0; j < d; j++ {
				s += ls[r*d+j] * (xs[i*d+j] - ms[j])
			}
			us[i*d+r] = s
			q += s * s
		}
		lp[i] = c - 0.5*q
	}
}

func (ref) GaussBackward(dx, dmu, dl, x, mu, l, u, dlogp *Tensor) {
	n, d := CheckGaussBackward(dx, dmu, dl, x, mu, l, u, dlogp)
	xs, ms, ls, us, ws := f64(x), f64(mu), f64(l), f64(u), f64(dlogp)
	dms, dls := f64(dmu), f64(dl)
	clear(dms)
	clear(dls)
	for i := 0; i < n; i++ {
		w := ws[i]
		for j := 0; j < d; j++ {
			g := 0.0 // (Lᵀ u_i)_j
			for r := 0; r < d; r++ {
				g += ls[r*d+j] * us[i*d+r]
			}
			if dx != nil {
				f64(dx)[i*d+j] = -w * g
			}
			dms[j] += w * g
		}
		for r := 0; r < d; r++ {
			for j := 0; j < d; j++ {
				dls[r*d+j] -= w * us[i*d+r] * (xs[i*d+j] - ms[j])
			}
		}
	}
}

func (ref) LogDetAcc(logdet, s *Tensor) {
	n, d := CheckLogDetAcc(logdet, s)
	ss, ld := f64(s), f64(logdet)
	for i := 0; i < n; i++ {
		t := 0.0
		for j := 0; j < d; j++ {
			t += ss[i*d+j]
		}
		ld[i] += t
	}
}

func (ref) AffineForward(y, logdet, x, m, b *Tensor, ldm float64) {
	n, d := CheckAffineForward(y, logdet, x, m, b)
	xs, ys, ms, bs := f64(x), f64(y), f64(m), f64(b)
	for i := 0; i < n; i++ {
		for r := 0; r < d; r++ {
			s := bs[r]
			for j := 0; j < d; j++ {
				s += ms[r*d+j] * xs[i*d+j]
			}
			ys[i*d+r] = s
		}
	}
	if logdet != nil {
		ls := f64(logdet)
		for i := range ls {
			ls[i] += ldm
		}
	}
}

func (ref) AffineInverse(x, y, minv, b *Tensor) {
	n, d := CheckAffineInverse(x, y, minv, b)
	xs, ys, ms, bs := f64(x), f64(y), f64(minv), f64(b)
	for i := 0; i < n; i++ {
		for r := 0; r < d; r++ {
			s := 0.0
			for j := 0; j < d; j++ {
				s += ms[r*d+j] * (ys[i*d+j] - bs[j])
			}
			xs[i*d+r] = s
		}
	}
}

func (ref) Adam(p, g, m, v *Tensor, h AdamHyper) {
	CheckAdam(p, g, m, v)
	ps, gs, ms, vs := f64(p), f64(g), f64(m), f64(v)
	for i := range ps {
		ms[i] = h.Beta1*ms[i] + (1-h.Beta1)*gs[i]
		vs[i] = h.Beta2*vs[i] + (1-h.Beta2)*gs[i]*gs[i]
		ps[i] -= h.LR * (ms[i] / h.BC1) / (math.Sqrt(vs[i]/h.BC2) + h.Eps)
	}
}

func (ref) GatherRows(dst, src *Tensor, idx []int32) {
	_, d := CheckGatherRows(dst, src, idx)
	ds, ss := f64(dst), f64(src)
	for i, j := range idx {
		copy(ds[i*d:(i+1)*d], ss[int(j)*d:(int(j)+1)*d])
	}
}

func (ref) BiasReLU(y, bias *Tensor) {
	n, d := CheckBiasReLU(y, bias)
	ys, bs := f64(y), f64(bias)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			ys[i*d+j] = math.Max(ys[i*d+j]+bs[j], 0)
		}
	}
}

func (ref) BiasReLUBackward(dz, db, y, dy *Tensor) {
	n, d := CheckBiasReLUBackward(dz, db, y, dy)
	ys, dys, dzs, dbs := f64(y), f64(dy), f64(dz), f64(db)
	for k, v := range ys {
		if v > 0 {
			dzs[k] = dys[k]
		} else {
			dzs[k] = 0
		}
	}
	for j := 0; j < d; j++ {
		s := 0.0
		for i := 0; i < n; i++ {
			s += dzs[i*d+j]
		}
		dbs[j] = s
	}
}

func (ref) CopyCols(dst, src *Tensor, c0 int) {
	n, d, k := CheckCopyCols(dst, src, c0)
	ds, ss := f64(dst), f64(src)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			ds[i*k+j] = ss[i*d+c0+j]
		}
	}
}

func (ref) AddCols(dst, src *Tensor, c0 int) {
	n, d, k := CheckAddCols(dst, src, c0)
	ds, ss := f64(dst), f64(src)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			ds[i*d+c0+j] += ss[i*k+j]
		}
	}
}

// scale returns s(r), ln s(r) and ∂ln s/∂r, straight from the definitions.
func (sc Scale) scale(r float64) (s, lns, dlns float64) {
	if sc.Kind == ScaleExp {
		th := math.Tanh(r / sc.Bound)
		lns = sc.Bound * th
		return math.Exp(lns), lns, 1 - th*th
	}
	z := r + 2
	s = 1 / (1 + math.Exp(-z))
	return s, -softplus(-z), 1 - s
}

// softplus(u) = ln(1 + eᵘ), without overflow.
func softplus(u float64) float64 {
	return math.Max(u, 0) + math.Log1p(math.Exp(-math.Abs(u)))
}

func (ref) CouplingForward(y, logdet, x, h *Tensor, t0 int, sc Scale) {
	n, d, dt := CheckCouplingForward(y, logdet, x, h, t0, sc)
	xs, hs, ys := f64(x), f64(h), f64(y)
	for i := 0; i < n; i++ {
		ld := 0.0
		for j := 0; j < d; j++ {
			if j < t0 || j >= t0+dt {
				ys[i*d+j] = xs[i*d+j]
				continue
			}
			mu, r := hs[i*2*dt+j-t0], hs[i*2*dt+dt+j-t0]
			s, lns, _ := sc.scale(r)
			ys[i*d+j] = xs[i*d+j]*s + mu
			ld += lns
		}
		if logdet != nil {
			f64(logdet)[i] += ld
		}
	}
}

func (ref) CouplingInverse(x, y, h *Tensor, t0 int, sc Scale) {
	n, d, dt := CheckCouplingInverse(x, y, h, t0, sc)
	xs, hs, ys := f64(x), f64(h), f64(y)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			if j < t0 || j >= t0+dt {
				xs[i*d+j] = ys[i*d+j]
				continue
			}
			mu, r := hs[i*2*dt+j-t0], hs[i*2*dt+dt+j-t0]
			s, _, _ := sc.scale(r)
			xs[i*d+j] = (ys[i*d+j] - mu) / s
		}
	}
}

func (ref) CouplingBackward(dx, dh, x, h, dy, dlogdet *Tensor, t0 int, sc Scale) {
	n, d, dt := CheckCouplingBackward(dx, dh, x, h, dy, dlogdet, t0, sc)
	xs, hs, dys, wl, dhs := f64(x), f64(h), f64(dy), f64(dlogdet), f64(dh)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			g := dys[i*d+j]
			if j < t0 || j >= t0+dt {
				if dx != nil {
					f64(dx)[i*d+j] = g
				}
				continue
			}
			jj := j - t0
			s, _, dlns := sc.scale(hs[i*2*dt+dt+jj])
			dhs[i*2*dt+jj] = g
			dhs[i*2*dt+dt+jj] = g*xs[i*d+j]*s*dlns + wl[i]*dlns
			if dx != nil {
				f64(dx)[i*d+j] = g * s
			}
		}
	}
}

package native

import "math"

// The reference ActNorm and LU solve (Glow's vector layers), straight from
// their definitions in float64.

// actNormScale returns s(r), ln s(r) and ∂ln s/∂r for kind.
func actNormScale(kind ActNormKind, r float64) (s, lns, dlns float64) {
	if kind == ActNormExp {
		return math.Exp(r), r, 1
	}
	z := r + 2
	s = softplus(z)
	sig := 1 / (1 + math.Exp(-z))
	if s == 0 { // e^z underflowed: ln softplus(z) → z, its slope → 1
		return 0, z, 1
	}
	return s, math.Log(s), sig / s
}

func (ref) ActNormForward(y, logdet, x, r, b *Tensor, kind ActNormKind) {
	n, d := CheckActNormForward(y, logdet, x, r, b, kind)
	xs, rs, bs, ys := f64(x), f64(r), f64(b), f64(y)
	ld := 0.0
	for j := 0; j < d; j++ {
		_, lns, _ := actNormScale(kind, rs[j])
		ld += lns
	}
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			s, _, _ := actNormScale(kind, rs[j])
			ys[i*d+j] = (xs[i*d+j] + bs[j]) * s
		}
		if logdet != nil {
			f64(logdet)[i] += ld
		}
	}
}

func (ref) ActNormInverse(x, y, r, b *Tensor, kind ActNormKind) {
	n, d := CheckActNormInverse(x, y, r, b, kind)
	ys, rs, bs, xs := f64(y), f64(r), f64(b), f64(x)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			s, _, _ := actNormScale(kind, rs[j])
			xs[i*d+j] = ys[i*d+j]/s - bs[j]
		}
	}
}

func (ref) ActNormBackward(dx, dr, db, x, r, b, dy, dlogdet *Tensor, kind ActNormKind) {
	n, d := CheckActNormBackward(dx, dr, db, x, r, b, dy, dlogdet, kind)
	xs, rs, bs, dys, drs, dbs := f64(x), f64(r), f64(b), f64(dy), f64(dr), f64(db)
	w := 0.0
	if dlogdet != nil {
		for _, v := range f64(dlogdet) {
			w += v
		}
	}
	for j := 0; j < d; j++ {
		s, _, dlns := actNormScale(kind, rs[j])
		sdy, sdyx := 0.0, 0.0
		for i := 0; i < n; i++ {
			g := dys[i*d+j]
			sdy += g
			sdyx += g * (xs[i*d+j] + bs[j])
			if dx != nil {
				f64(dx)[i*d+j] = g * s
			}
		}
		dbs[j] = s * sdy
		drs[j] = dlns * (s*sdyx + w)
	}
}

func (ref) LUSolve(x, y, lu *Tensor, perm []int32) {
	n, d := CheckLUSolve(x, y, lu, perm)
	ys, ls, xs := f64(y), f64(lu), f64(x)
	for i := 0; i < n; i++ {
		xi, yi := xs[i*d:(i+1)*d], ys[i*d:(i+1)*d]
		for k := 0; k < d; k++ { // L v = Pᵀ y
			v := yi[perm[k]]
			for j := 0; j < k; j++ {
				v -= ls[k*d+j] * xi[j]
			}
			xi[k] = v
		}
		for k := d - 1; k >= 0; k-- { // U x = v
			v := xi[k]
			for j := k + 1; j < d; j++ {
				v -= ls[k*d+j] * xi[j]
			}
			xi[k] = v / ls[k*d+k]
		}
	}
}

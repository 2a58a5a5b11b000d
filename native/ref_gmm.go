package native

import "math"

// The reference backend's Gaussian-mixture operations (see gmm.go).

var _ GMMBackend = ref{}

// logSoftmax returns ln softmax(v), max-shifted.
func logSoftmax(v []float64) []float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	s := 0.0
	for _, x := range v {
		s += math.Exp(x - m)
	}
	lse := m + math.Log(s)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x - lse
	}
	return out
}

func (ref) GMMLogProb(logp, u, resp, x, mu, l, logits, logdetL *Tensor) {
	n, d, k := CheckGMMLogProb(logp, u, resp, x, mu, l, logits, logdetL)
	xs, ms, ls, lds := f64(x), f64(mu), f64(l), f64(logdetL)
	us, rs, lp := f64(u), f64(resp), f64(logp)
	lpi := logSoftmax(f64(logits))
	cd := -0.5 * float64(d) * math.Log(2*math.Pi)
	comp := make([]float64, k)
	for i := 0; i < n; i++ {
		m := math.Inf(-1)
		for c := 0; c < k; c++ {
			q := 0.0
			for r := 0; r < d; r++ {
				s := 0.0
				for j := 0; j < d; j++ {
					s += ls[(c*d+r)*d+j] * (xs[i*d+j] - ms[c*d+j])
				}
				us[(i*k+c)*d+r] = s
				q += s * s
			}
			comp[c] = lpi[c] + cd + lds[c] - 0.5*q
			m = math.Max(m, comp[c])
		}
		s := 0.0
		for c := 0; c < k; c++ {
			s += math.Exp(comp[c] - m)
		}
		lp[i] = m + math.Log(s)
		for c := 0; c < k; c++ {
			rs[i*k+c] = math.Exp(comp[c] - lp[i])
		}
	}
}

func (ref) GMMBackward(dx, dmu, dl, dlogits, wsum, x, mu, l, logits, u, resp, dlogp *Tensor) {
	n, d, k := CheckGMMBackward(dx, dmu, dl, dlogits, wsum, x, mu, l, logits, u, resp, dlogp)
	if dx != nil {
		clear(f64(dx))
	}
	xs, ms, ls, us, rs, ws := f64(x), f64(mu), f64(l), f64(u), f64(resp), f64(dlogp)
	dms, dls, dlg, wss := f64(dmu), f64(dl), f64(dlogits), f64(wsum)
	clear(dms)
	clear(dls)
	clear(wss)
	pi := logSoftmax(f64(logits))
	wtot := 0.0
	for i := 0; i < n; i++ {
		wtot += ws[i]
		for c := 0; c < k; c++ {
			w := ws[i] * rs[i*k+c]
			wss[c] += w
			uic := us[(i*k+c)*d : (i*k+c+1)*d]
			for j := 0; j < d; j++ {
				g := 0.0 // (L_cᵀ u_ic)_j
				for r := 0; r < d; r++ {
					g += ls[(c*d+r)*d+j] * uic[r]
				}
				if dx != nil {
					f64(dx)[i*d+j] -= w * g
				}
				dms[c*d+j] += w * g
			}
			for r := 0; r < d; r++ {
				for j := 0; j < d; j++ {
					dls[(c*d+r)*d+j] -= w * uic[r] * (xs[i*d+j] - ms[c*d+j])
				}
			}
		}
	}
	for c := 0; c < k; c++ {
		dlg[c] = wss[c] - math.Exp(pi[c])*wtot
	}
}

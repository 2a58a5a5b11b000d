package native

import (
	"fmt"
	"math"
)

// Gaussian-mixture operations.
//
// A K-component mixture on R^d is given by mu (K×d, row c the mean of
// component c), l ((K·d)×d, rows [c·d, (c+1)·d) the matrix L_c with
// L_cᵀL_c = Σ_c⁻¹, as for GaussLogProb), logits (a vector of K: the weights
// are π = softmax(logits)) and logdetL (a vector of K, ln|det L_c|,
// computed by the caller). A diagonal covariance is a diagonal L_c.
//
// These operations are an optional capability, GMMBackend, rather than
// methods of Backend, so that backends without them (native/cuda, for now)
// still satisfy Backend; callers type-assert.

var _ GMMBackend = ref{}

// GMMBackend is a Backend with the Gaussian-mixture kernels.
type GMMBackend interface {
	Backend
	// GMMLogProb evaluates the mixture for each row x_i of the n×d x:
	//   u_ic = L_c(x_i − mu_c)                       (u n×(K·d), u_ic at
	//                                                  columns [c·d, (c+1)·d))
	//   lp_ic = ln π_c − (d/2) ln 2π + logdetL_c − ½‖u_ic‖²
	//   logp_i = logsumexp_c lp_ic                    (vector of n)
	//   resp_ic = exp(lp_ic − logp_i)                 (n×K)
	// with a max-shifted logsumexp in float64. u and resp are kept for
	// GMMBackward.
	GMMLogProb(logp, u, resp, x, mu, l, logits, logdetL *Tensor)
	// GMMBackward is the vector-Jacobian product of GMMLogProb for
	// dlogp (vector of n), with w_ic = dlogp_i·resp_ic, g_ic = L_cᵀu_ic:
	//   dx_i = −Σ_c w_ic g_ic (n×d, or nil to skip),
	//   dmu_c = Σ_i w_ic g_ic (K×d),
	//   dl_c = −Σ_i w_ic u_ic (x_i − mu_c)ᵀ ((K·d)×d),
	//   dlogits_c = Σ_i w_ic − π_c Σ_i dlogp_i (vector of K),
	//   wsum_c = Σ_i w_ic (vector of K).
	// dl omits the ln|det L_c| term, wsum_c·L_c⁻ᵀ, which the caller adds.
	GMMBackward(dx, dmu, dl, dlogits, wsum, x, mu, l, logits, u, resp, dlogp *Tensor)
}

// checkGMM validates the mixture's shapes and returns n, d and K.
func checkGMM(op string, x, mu, l, logits *Tensor) (n, d, k int) {
	if x == nil || mu == nil {
		panic(fmt.Sprintf("native: %s: x or mu is nil", op))
	}
	n, d, k = x.rows, x.cols, mu.rows
	if k < 1 {
		panic(fmt.Sprintf("native: %s: mu has %d rows, want K ≥ 1 components", op, k))
	}
	mustShape(op, "mu", mu, k, d)
	mustShape(op, "L", l, k*d, d)
	mustLen(op, "logits", logits, k)
	return n, d, k
}

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
	const op = "GMMLogProb"
	n, d, k := checkGMM(op, x, mu, l, logits)
	mustLen(op, "logdetL", logdetL, k)
	mustShape(op, "u", u, n, k*d)
	mustShape(op, "resp", resp, n, k)
	mustLen(op, "logp", logp, n)
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
	const op = "GMMBackward"
	n, d, k := checkGMM(op, x, mu, l, logits)
	mustShape(op, "u", u, n, k*d)
	mustShape(op, "resp", resp, n, k)
	mustLen(op, "dlogp", dlogp, n)
	mustShape(op, "dmu", dmu, k, d)
	mustShape(op, "dl", dl, k*d, d)
	mustLen(op, "dlogits", dlogits, k)
	mustLen(op, "wsum", wsum, k)
	if dx != nil {
		mustShape(op, "dx", dx, n, d)
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

package native

import "fmt"

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

// Contracts of the Gaussian-mixture operations (see contract.go).

// CheckGMMLogProb checks GMMBackend.GMMLogProb: x is n×d, mu K×d with
// K ≥ 1, L (K·d)×d, logits and logdetL vectors of K, u n×(K·d), resp n×K,
// logp a vector of n. It returns n, d and K.
func CheckGMMLogProb(logp, u, resp, x, mu, l, logits, logdetL *Tensor) (n, d, k int) {
	const op = "GMMLogProb"
	n, d, k = checkGMM(op, x, mu, l, logits)
	mustLen(op, "logdetL", logdetL, k)
	mustShape(op, "u", u, n, k*d)
	mustShape(op, "resp", resp, n, k)
	mustLen(op, "logp", logp, n)
	return n, d, k
}

// CheckGMMBackward checks GMMBackend.GMMBackward: x and dx (or nil) are
// n×d, mu and dmu K×d with K ≥ 1, L and dl (K·d)×d, logits, dlogits and
// wsum vectors of K, u n×(K·d), resp n×K, dlogp a vector of n. It returns
// n, d and K.
func CheckGMMBackward(dx, dmu, dl, dlogits, wsum, x, mu, l, logits, u, resp, dlogp *Tensor) (n, d, k int) {
	const op = "GMMBackward"
	n, d, k = checkGMM(op, x, mu, l, logits)
	mustShape(op, "u", u, n, k*d)
	mustShape(op, "resp", resp, n, k)
	mustLen(op, "dlogp", dlogp, n)
	mustShape(op, "dmu", dmu, k, d)
	mustShape(op, "dl", dl, k*d, d)
	mustLen(op, "dlogits", dlogits, k)
	mustLen(op, "wsum", wsum, k)
	if dx != nil {
		mustShape(op, "dx", dx, n, d)
	}
	return n, d, k
}

// checkGMM checks the mixture's shapes and returns n, d and K.
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

//go:build cgo

package bindings

// #include "lrmf.h"
import "C"

import "fmt"

// Gaussian-mixture kernels (lrmf.h, "Gaussian mixture"). Component c of K
// has mean mu_c (row c of the K×d mu), L_c (rows [c·d, (c+1)·d) of the
// (K·d)×d l) with L_cᵀL_c = Σ_c⁻¹, log-determinant logdetL[c] = ln|det L_c|
// (computed by the caller) and weight π_c = softmax(logits)_c.

// checkGMMParams validates k and the parameter slices shared by both
// kernels.
func checkGMMParams[T Float](op string, n, d, k int, x, mu, l, logits []T) error {
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if k < 1 {
		return &Error{op, fmt.Sprintf("k = %d, want ≥ 1 component", k)}
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "mu", len(mu), k, d); err != nil {
		return err
	}
	kd, ok := mul(k, d)
	if !ok {
		return errOverflow(op)
	}
	if err := checkRows(op, "l", len(l), kd, d); err != nil {
		return err
	}
	return checkLen(op, "logits", len(logits), k)
}

// GMMLogProb evaluates the K-component mixture log-density for each row
// x_i of the n×d x:
//
//	u_ic    = L_c (x_i − mu_c)       u    n×(K·d) (out; u_ic at (i·K + c)·d)
//	lp_ic   = ln π_c − (d/2) ln 2π + logdetL[c] − ½‖u_ic‖²
//	logp_i  = logsumexp_c lp_ic      logp n (out)
//	resp_ic = exp(lp_ic − logp_i)    resp n×K (out)
//
// computed in float64 inside a row (max-shifted logsumexp). u and resp are
// kept for GMMBackward.
func GMMLogProb[T Float](n, d, k int, x, mu, l, logits, logdetL, u, resp, logp []T) error {
	const op = "GMMLogProb"
	if err := checkGMMParams(op, n, d, k, x, mu, l, logits); err != nil {
		return err
	}
	if err := checkLen(op, "logdetL", len(logdetL), k); err != nil {
		return err
	}
	kd, _ := mul(k, d)
	if err := checkRows(op, "u", len(u), n, kd); err != nil {
		return err
	}
	if err := checkRows(op, "resp", len(resp), n, k); err != nil {
		return err
	}
	if err := checkLen(op, "logp", len(logp), n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_gmm_logp_f32(i64(n), i64(d), i64(k), pf(x), pf(mu), pf(l),
			pf(logits), pf(logdetL), pf(u), pf(resp), pf(logp)))
	}
	return status(op, C.lrmf_gmm_logp_f64(i64(n), i64(d), i64(k), pd(x), pd(mu), pd(l),
		pd(logits), pd(logdetL), pd(u), pd(resp), pd(logp)))
}

// GMMBackward is the backward pass of [GMMLogProb] for upstream dlogp (n),
// given the forward's u and resp, with w_ic = dlogp_i·resp_ic and
// g_ic = L_cᵀ u_ic:
//
//	dx_i      = −Σ_c w_ic g_ic              dx      n×d (out; nil skips it)
//	dmu_c     = Σ_i w_ic g_ic               dmu     K×d (out)
//	dl_c      = −Σ_i w_ic u_ic (x_i − mu_c)ᵀ  dl    (K·d)×d (out)
//	dlogits_c = Σ_i w_ic − π_c Σ_i dlogp_i  dlogits K (out)
//	wsum_c    = Σ_i w_ic                    wsum    K (out)
//
// Sums accumulate in float64. dl is the data term only: the caller adds the
// ln|det L_c| term wsum_c·L_c⁻ᵀ. n == 0 zeroes every sum.
func GMMBackward[T Float](n, d, k int, x, mu, l, logits, u, resp, dlogp, dx, dmu, dl, dlogits, wsum []T) error {
	const op = "GMMBackward"
	if err := checkGMMParams(op, n, d, k, x, mu, l, logits); err != nil {
		return err
	}
	kd, _ := mul(k, d)
	if err := checkRows(op, "u", len(u), n, kd); err != nil {
		return err
	}
	if err := checkRows(op, "resp", len(resp), n, k); err != nil {
		return err
	}
	if err := checkLen(op, "dlogp", len(dlogp), n); err != nil {
		return err
	}
	if dx != nil {
		if err := checkRows(op, "dx", len(dx), n, d); err != nil {
			return err
		}
	}
	if err := checkRows(op, "dmu", len(dmu), k, d); err != nil {
		return err
	}
	if err := checkRows(op, "dl", len(dl), kd, d); err != nil {
		return err
	}
	if err := checkLen(op, "dlogits", len(dlogits), k); err != nil {
		return err
	}
	if err := checkLen(op, "wsum", len(wsum), k); err != nil {
		return err
	}
	if is32[T]() {
		return status(op, C.lrmf_gmm_bwd_f32(i64(n), i64(d), i64(k), pf(x), pf(mu), pf(l),
			pf(logits), pf(u), pf(resp), pf(dlogp), pf(dx), pf(dmu), pf(dl), pf(dlogits), pf(wsum)))
	}
	return status(op, C.lrmf_gmm_bwd_f64(i64(n), i64(d), i64(k), pd(x), pd(mu), pd(l),
		pd(logits), pd(u), pd(resp), pd(dlogp), pd(dx), pd(dmu), pd(dl), pd(dlogits), pd(wsum)))
}

//go:build cgo

package bindings

// #include "lrmf.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// Glow's vector layers (lrmf.h, "ActNorm" and "lu_solve"): ActNorm, a
// per-feature affine map with scale s(r) and shift b, and the inverse of
// the LU-parameterised linear layer W = P·L·U.

// ActNormKind selects ActNorm's scale function s(r); the values are lrmf.h's
// LRMF_ACTNORM_* constants.
type ActNormKind int

// Scale functions of [ActNormForward] and friends.
const (
	// ActNormExp: s = exp(r) (r is the log-scale), ln s = r.
	ActNormExp ActNormKind = C.LRMF_ACTNORM_EXP
	// ActNormSoftplus: s = softplus(r + 2), ∂s/∂r = sigmoid(r + 2).
	ActNormSoftplus ActNormKind = C.LRMF_ACTNORM_SOFTPLUS
)

// checkActNorm validates the arguments the ActNorm kernels share: sizes,
// kind, and the lengths of r and b (d each).
func checkActNorm[T Float](op string, n, d int, kind ActNormKind, r, b []T) error {
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if kind != ActNormExp && kind != ActNormSoftplus {
		return &Error{op, fmt.Sprintf("unknown ActNorm kind %d", int(kind))}
	}
	if err := checkLen(op, "r", len(r), d); err != nil {
		return err
	}
	return checkLen(op, "b", len(b), d)
}

// ActNormForward applies ActNorm to x (n×d), per feature j with
// s_j = s(r_j) the scale function kind:
//
//	y[i,j] = (x[i,j] + b[j])·s_j        y n×d (out; may be x)
//	logdet[i] += Σ_j ln s_j (float64 sum)   logdet n (nil skips it)
func ActNormForward[T Float](n, d int, kind ActNormKind, x, r, b, y, logdet []T) error {
	const op = "ActNormForward"
	if err := checkActNorm(op, n, d, kind, r, b); err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "y", len(y), n, d); err != nil {
		return err
	}
	if logdet != nil {
		if err := checkLen(op, "logdet", len(logdet), n); err != nil {
			return err
		}
	}
	if n == 0 || d == 0 {
		return nil
	}
	k := C.int(kind)
	if is32[T]() {
		return status(op, C.lrmf_actnorm_fwd_f32(i64(n), i64(d), k, pf(x), pf(r), pf(b), pf(y), pf(logdet)))
	}
	return status(op, C.lrmf_actnorm_fwd_f64(i64(n), i64(d), k, pd(x), pd(r), pd(b), pd(y), pd(logdet)))
}

// ActNormInverse inverts [ActNormForward]: x[i,j] = y[i,j]/s_j − b[j]; x is
// n×d (out; may be y).
func ActNormInverse[T Float](n, d int, kind ActNormKind, y, r, b, x []T) error {
	const op = "ActNormInverse"
	if err := checkActNorm(op, n, d, kind, r, b); err != nil {
		return err
	}
	if err := checkRows(op, "y", len(y), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if n == 0 || d == 0 {
		return nil
	}
	k := C.int(kind)
	if is32[T]() {
		return status(op, C.lrmf_actnorm_inv_f32(i64(n), i64(d), k, pf(y), pf(r), pf(b), pf(x)))
	}
	return status(op, C.lrmf_actnorm_inv_f64(i64(n), i64(d), k, pd(y), pd(r), pd(b), pd(x)))
}

// ActNormBackward is the backward pass of [ActNormForward] at x for the
// upstream gradients dy (n×d) and dlogdet (n; nil means zero):
//
//	dx[i,j] = dy[i,j]·s_j                                   dx n×d (out; may be dy; nil skips it)
//	db[j]   = s_j·Σ_i dy[i,j]                               db d (out)
//	dr[j]   = ∂ln s_j·(s_j·Σ_i dy[i,j](x[i,j]+b[j]) + Σ_i dlogdet[i])   dr d (out)
//
// with the sums in float64; n == 0 zeroes db and dr.
func ActNormBackward[T Float](n, d int, kind ActNormKind, x, r, b, dy, dlogdet, dx, dr, db []T) error {
	const op = "ActNormBackward"
	if err := checkActNorm(op, n, d, kind, r, b); err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "dy", len(dy), n, d); err != nil {
		return err
	}
	if dlogdet != nil {
		if err := checkLen(op, "dlogdet", len(dlogdet), n); err != nil {
			return err
		}
	}
	if dx != nil {
		if err := checkRows(op, "dx", len(dx), n, d); err != nil {
			return err
		}
	}
	if err := checkLen(op, "dr", len(dr), d); err != nil {
		return err
	}
	if err := checkLen(op, "db", len(db), d); err != nil {
		return err
	}
	if d == 0 {
		return nil
	}
	k := C.int(kind)
	if is32[T]() {
		return status(op, C.lrmf_actnorm_bwd_f32(i64(n), i64(d), k, pf(x), pf(r), pf(b), pf(dy), pf(dlogdet),
			pf(dx), pf(dr), pf(db)))
	}
	return status(op, C.lrmf_actnorm_bwd_f64(i64(n), i64(d), k, pd(x), pd(r), pd(b), pd(dy), pd(dlogdet),
		pd(dx), pd(dr), pd(db)))
}

// LUSolve solves W x_i = y_i for each row of y (n×d), with W = P·L·U given
// as lu (d×d: L strictly below the diagonal, its unit diagonal implied; U on
// and above) and perm (d: P[perm[k], k] = 1, so (Pᵀy)_k = y[perm[k]]):
//
//	x_i = U⁻¹ L⁻¹ Pᵀ y_i        x n×d (out; must not overlap y)
//
// by forward then back substitution, each element's sum in float64. Every
// perm[k] must lie in [0, d); that perm is a permutation and U's diagonal
// non-zero is the caller's to ensure.
func LUSolve[T Float](n, d int, lu []T, perm []int32, y, x []T) error {
	const op = "LUSolve"
	if err := checkNN(op, n, d); err != nil {
		return err
	}
	if err := checkRows(op, "lu", len(lu), d, d); err != nil {
		return err
	}
	if err := checkLen(op, "perm", len(perm), d); err != nil {
		return err
	}
	for k, p := range perm[:d] {
		if p < 0 || int(p) >= d {
			return &Error{op, fmt.Sprintf("perm[%d] = %d outside [0, %d)", k, p, d)}
		}
	}
	if err := checkRows(op, "y", len(y), n, d); err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), n, d); err != nil {
		return err
	}
	if n == 0 || d == 0 {
		return nil
	}
	pp := (*C.int32_t)(unsafe.Pointer(unsafe.SliceData(perm)))
	if is32[T]() {
		return status(op, C.lrmf_lu_solve_f32(i64(n), i64(d), pf(lu), pp, pf(y), pf(x)))
	}
	return status(op, C.lrmf_lu_solve_f64(i64(n), i64(d), pd(lu), pp, pd(y), pd(x)))
}

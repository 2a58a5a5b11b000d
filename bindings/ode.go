//go:build cgo

package bindings

// #include "lrmf.h"
import "C"

import (
	"fmt"
	"math"
	"unsafe"
)

// FFJORD kernels: the dynamics MLP f(z, t; θ) on x = [z, t], its divergence
// tr(∂f/∂z), their vector-Jacobian product, and RK4 / Dormand–Prince solves
// of the augmented ODE d[z, l]/dt = [f, tr]. See lrmf.h ("FFJORD") for the
// maths; in short:
//
//   - dims = [D+1, H1, ..., HL, D]: tanh hidden layers, linear output.
//   - θ is flat: for each layer l, W_l (dims[l]×dims[l+1], row-major, so
//     a = in·W_l + b_l) then b_l (dims[l+1]); its length is ODEFuncNumParams.
//   - k == 0: exact divergence (eps unused, may be nil); k > 0: Hutchinson
//     with the k probes of row i at eps[i·k·D : (i+1)·k·D].
//   - work: float64 scratch of at least ODEFuncWorkLen(dims, k) elements
//     (independent of n), one per concurrent call.
//   - isa: the code path ([ODEISA]): [ODEAuto] for the widest this CPU runs,
//     or one forced (tests and benchmarks compare them).

// ODEISA is a code path of the CPU ODE kernels (lrmf.h's LRMF_ODE_*).
// Every path computes in float64 and they agree to rounding: the portable
// one is the per-row code shared with the CUDA kernels
// (csrc/common/ode_rows.inc, the specification of the others), the x86-64
// vector paths (csrc/cpu/ode_vec.inc) run 4 or 8 rows per instruction, one
// row per lane, each with its own time, step size and Dormand–Prince
// decisions.
type ODEISA int

// The ODE code paths.
const (
	ODEAuto     ODEISA = iota // the widest path this CPU runs
	ODEPortable               // one row at a time
	ODEAVX2                   // 4 rows per AVX2+FMA vector
	ODEAVX512                 // 8 rows per AVX-512F vector
)

// String returns the path's name: auto, portable, avx2 or avx512.
func (i ODEISA) String() string {
	switch i {
	case ODEAuto:
		return "auto"
	case ODEPortable:
		return "portable"
	case ODEAVX2:
		return "avx2"
	case ODEAVX512:
		return "avx512"
	}
	return fmt.Sprintf("ODEISA(%d)", int(i))
}

// Resolve returns the path i selects on this CPU (ODEAuto: the widest it
// runs), or an error if the CPU or the build lacks it.
func (i ODEISA) Resolve() (ODEISA, error) { return i.check("ODEISA.Resolve") }

func (i ODEISA) check(op string) (ODEISA, error) {
	if i < ODEAuto || i > ODEAVX512 {
		return 0, &Error{op, fmt.Sprintf("unknown ODE path %v", i)}
	}
	p := C.lrmf_ode_isa_f64(C.int(i))
	if p < 0 {
		return 0, &Error{op, fmt.Sprintf("ODE path %v: this CPU (or build) lacks it", i)}
	}
	return ODEISA(p), nil
}

// ODEISAs returns the paths this CPU runs, narrowest first (ODEPortable
// always).
func ODEISAs() []ODEISA {
	var out []ODEISA
	for i := ODEPortable; i <= ODEAVX512; i++ {
		if _, err := i.Resolve(); err == nil {
			out = append(out, i)
		}
	}
	return out
}

func odeStatus(op string, rc C.int) error {
	switch rc {
	case C.LRMF_ODE_UNDERFLOW:
		return &ODEError{op, ErrODEStepUnderflow}
	case C.LRMF_ODE_NONFINITE:
		return &ODEError{op, ErrODENonFinite}
	case C.LRMF_ODE_MAXSTEPS:
		return &ODEError{op, ErrODEMaxSteps}
	}
	return status(op, rc)
}

func pdims(dims []int64) *C.int64_t { return (*C.int64_t)(unsafe.Pointer(unsafe.SliceData(dims))) }

func pw(work []float64) *C.double { return (*C.double)(unsafe.Pointer(unsafe.SliceData(work))) }

// checkDims validates dims and returns D.
func checkDims(op string, dims []int64) (int, error) {
	if len(dims) < 2 {
		return 0, &Error{op, fmt.Sprintf("len(dims) = %d, want ≥ 2 ([D+1, hidden..., D])", len(dims))}
	}
	for i, v := range dims {
		if v < 1 || v > 1<<20 {
			return 0, &Error{op, fmt.Sprintf("dims[%d] = %d outside [1, 2^20]", i, v)}
		}
	}
	if len(dims) > 1<<10 {
		return 0, &Error{op, fmt.Sprintf("len(dims) = %d > 1024", len(dims))}
	}
	if d := dims[len(dims)-1]; dims[0] != d+1 {
		return 0, &Error{op, fmt.Sprintf("dims[0] = %d, want dims[last] + 1 = %d (input is [z, t])", dims[0], d+1)}
	}
	return int(dims[len(dims)-1]), nil
}

// ODEFuncNumParams returns the length of θ for dims.
func ODEFuncNumParams(dims []int64) (int, error) {
	const op = "ODEFuncNumParams"
	if _, err := checkDims(op, dims); err != nil {
		return 0, err
	}
	return int(C.lrmf_odefunc_nparams_f64(C.int64_t(len(dims)), pdims(dims))), nil
}

// ODEFuncWorkLen returns the float64 workspace every ODE kernel needs for
// dims and k probes (k = 0: exact trace). It does not depend on n.
func ODEFuncWorkLen(dims []int64, k int) (int, error) {
	const op = "ODEFuncWorkLen"
	if _, err := checkDims(op, dims); err != nil {
		return 0, err
	}
	if k < 0 || k > 1<<20 {
		return 0, &Error{op, fmt.Sprintf("k = %d outside [0, 2^20]", k)}
	}
	return int(C.lrmf_odefunc_work_f64(C.int64_t(len(dims)), pdims(dims), i64(k))), nil
}

// checkODE validates the arguments shared by the ODE kernels (theta, z-like
// n×D input, probes, work) and returns D.
func checkODE[T Float](op string, n int, dims []int64, theta []T, z []T, zName string, k int, eps []T, work []float64, isa ODEISA) (int, error) {
	if _, err := isa.check(op); err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errNeg(op, "n", n)
	}
	d, err := checkDims(op, dims)
	if err != nil {
		return 0, err
	}
	if k < 0 || k > 1<<20 {
		return 0, &Error{op, fmt.Sprintf("k = %d outside [0, 2^20]", k)}
	}
	np := int(C.lrmf_odefunc_nparams_f64(C.int64_t(len(dims)), pdims(dims)))
	if err := checkLen(op, "theta", len(theta), np); err != nil {
		return 0, err
	}
	if err := checkRows(op, zName, len(z), n, d); err != nil {
		return 0, err
	}
	if k > 0 {
		kd, ok := mul(k, d)
		if !ok {
			return 0, errOverflow(op)
		}
		if err := checkRows(op, "eps", len(eps), n, kd); err != nil {
			return 0, err
		}
	}
	wl := int(C.lrmf_odefunc_work_f64(C.int64_t(len(dims)), pdims(dims), i64(k)))
	if err := checkLen(op, "work", len(work), wl); err != nil {
		return 0, err
	}
	return d, nil
}

func checkFiniteT(op string, t0, t1 float64) error {
	if math.IsNaN(t0) || math.IsInf(t0, 0) || math.IsNaN(t1) || math.IsInf(t1, 0) {
		return &Error{op, fmt.Sprintf("times t0 = %g, t1 = %g must be finite", t0, t1)}
	}
	return nil
}

// ODEFuncForward evaluates the dynamics for each row of z (n×D) at time t:
//
//	dz[i]    = f(z[i], t; θ)        dz n×D (out)
//	trace[i] = tr(∂f/∂z)(z[i], t)   trace n (out; exact for k = 0, else the
//	                                Hutchinson mean over the row's k probes)
func ODEFuncForward[T Float](n int, dims []int64, theta []T, t T, z []T, k int, eps, dz, trace []T, work []float64, isa ODEISA) error {
	const op = "ODEFuncForward"
	d, err := checkODE(op, n, dims, theta, z, "z", k, eps, work, isa)
	if err != nil {
		return err
	}
	if err := checkRows(op, "dz", len(dz), n, d); err != nil {
		return err
	}
	if err := checkLen(op, "trace", len(trace), n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	nl, ki, lw := C.int64_t(len(dims)), i64(k), i64(len(work))
	if is32[T]() {
		return status(op, C.lrmf_odefunc_fwd_f32(i64(n), nl, pdims(dims), pf(theta), C.float(t), pf(z), ki, pf(eps),
			pf(dz), pf(trace), pw(work), lw, C.int(isa)))
	}
	return status(op, C.lrmf_odefunc_fwd_f64(i64(n), nl, pdims(dims), pd(theta), C.double(t), pd(z), ki, pd(eps),
		pd(dz), pd(trace), pw(work), lw, C.int(isa)))
}

// ODEFuncVJP is the vector-Jacobian product of [ODEFuncForward] for the
// upstream az (n×D, for dz) and atr (n, for trace): with
// Λ = Σ_i az[i]·f(z[i], t) + Σ_i atr[i]·trace[i],
//
//	gz     = ∂Λ/∂z   n×D (out)
//	gtheta = ∂Λ/∂θ   len(theta) (out, summed over the rows in float64;
//	                 n == 0 zeroes it)
//
// The trace term differentiates through the tangents (the second derivative of tanh appears).
func ODEFuncVJP[T Float](n int, dims []int64, theta []T, t T, z []T, k int, eps, az, atr, gz, gtheta []T, work []float64, isa ODEISA) error {
	const op = "ODEFuncVJP"
	d, err := checkODE(op, n, dims, theta, z, "z", k, eps, work, isa)
	if err != nil {
		return err
	}
	if err := checkRows(op, "az", len(az), n, d); err != nil {
		return err
	}
	if err := checkLen(op, "atr", len(atr), n); err != nil {
		return err
	}
	if err := checkRows(op, "gz", len(gz), n, d); err != nil {
		return err
	}
	np := int(C.lrmf_odefunc_nparams_f64(C.int64_t(len(dims)), pdims(dims)))
	if err := checkLen(op, "gtheta", len(gtheta), np); err != nil {
		return err
	}
	nl, ki, lw := C.int64_t(len(dims)), i64(k), i64(len(work))
	if is32[T]() {
		return status(op, C.lrmf_odefunc_vjp_f32(i64(n), nl, pdims(dims), pf(theta), C.float(t), pf(z), ki, pf(eps),
			pf(az), pf(atr), pf(gz), pf(gtheta), pw(work), lw, C.int(isa)))
	}
	return status(op, C.lrmf_odefunc_vjp_f64(i64(n), nl, pdims(dims), pd(theta), C.double(t), pd(z), ki, pd(eps),
		pd(az), pd(atr), pd(gz), pd(gtheta), pw(work), lw, C.int(isa)))
}

// ODESolveRK4 integrates the augmented ODE d[z, l]/dt = [f(z, t), tr ∂f/∂z]
// from t0 to t1 (t1 < t0 runs backwards) with `steps` ≥ 1 classical RK4
// steps, from z(t0) = z0 (n×D), l(t0) = 0:
//
//	z1     = z(t1)            n×D (out)
//	logdet = l(t1) = ∫ tr dt  n   (out)
//
// It returns the number of f evaluations over all rows (4·steps·n). A
// row's probes (k > 0) stay fixed over the solve.
func ODESolveRK4[T Float](n int, dims []int64, theta []T, t0, t1 float64, steps int, z0 []T, k int, eps, z1, logdet []T, work []float64, isa ODEISA) (nfe int, err error) {
	const op = "ODESolveRK4"
	if steps < 1 {
		return 0, &Error{op, fmt.Sprintf("steps = %d, want ≥ 1", steps)}
	}
	if _, err := checkSolve(op, n, dims, theta, z0, k, eps, z1, logdet, work, isa, t0, t1); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	var cnfe C.int64_t
	var rc C.int
	nl, ki, lw := C.int64_t(len(dims)), i64(k), i64(len(work))
	if is32[T]() {
		rc = C.lrmf_ode_rk4_f32(i64(n), nl, pdims(dims), pf(theta), C.double(t0), C.double(t1), i64(steps),
			pf(z0), ki, pf(eps), pf(z1), pf(logdet), &cnfe, pw(work), lw, C.int(isa))
	} else {
		rc = C.lrmf_ode_rk4_f64(i64(n), nl, pdims(dims), pd(theta), C.double(t0), C.double(t1), i64(steps),
			pd(z0), ki, pd(eps), pd(z1), pd(logdet), &cnfe, pw(work), lw, C.int(isa))
	}
	if err := status(op, rc); err != nil {
		return 0, err
	}
	return int(cnfe), nil
}

// checkSolve validates the arguments every solver shares (dims, θ, the
// n×D z0 and z1, logdet of n, probes, workspace, finite times) and
// returns D.
func checkSolve[T Float](op string, n int, dims []int64, theta, z0 []T, k int, eps, z1, logdet []T, work []float64, isa ODEISA, t0, t1 float64) (int, error) {
	d, err := checkODE(op, n, dims, theta, z0, "z0", k, eps, work, isa)
	if err != nil {
		return 0, err
	}
	if err := checkFiniteT(op, t0, t1); err != nil {
		return 0, err
	}
	if err := checkRows(op, "z1", len(z1), n, d); err != nil {
		return 0, err
	}
	if err := checkLen(op, "logdet", len(logdet), n); err != nil {
		return 0, err
	}
	return d, nil
}

// Dopri5Options are the step-control parameters of [ODESolveDopri5].
type Dopri5Options struct {
	Atol, Rtol float64 // error tolerances: ≥ 0, Atol + Rtol > 0
	H0         float64 // first step size (> 0; clipped to |t1 − t0|)
	MaxSteps   int     // step attempts (accepted or rejected) per row, ≥ 1
}

// check validates the step control for op.
func (opt Dopri5Options) check(op string) error {
	switch {
	case !(opt.Atol >= 0) || !(opt.Rtol >= 0) || !(opt.Atol+opt.Rtol > 0) || math.IsInf(opt.Atol+opt.Rtol, 0):
		return &Error{op, fmt.Sprintf("tolerances atol = %g, rtol = %g: want finite, ≥ 0, not both 0", opt.Atol, opt.Rtol)}
	case !(opt.H0 > 0) || math.IsInf(opt.H0, 0):
		return &Error{op, fmt.Sprintf("h0 = %g, want finite and > 0", opt.H0)}
	case opt.MaxSteps < 1:
		return &Error{op, fmt.Sprintf("max steps = %d, want ≥ 1", opt.MaxSteps)}
	}
	return nil
}

// ODESolveDopri5 is [ODESolveRK4] with adaptive Dormand–Prince 5(4) steps
// controlled per row (see lrmf.h: RMS error over [z, l] relative to
// Atol + Rtol·|y|, next step h·clamp(0.9·err^(−1/5), 0.2, 10)). It returns
// the f evaluations and accepted steps summed over the rows processed. A
// numerical failure is an *[ODEError] wrapping [ErrODEStepUnderflow],
// [ErrODENonFinite] or [ErrODEMaxSteps]; z1 and logdet are then unspecified.
func ODESolveDopri5[T Float](n int, dims []int64, theta []T, t0, t1 float64, opt Dopri5Options, z0 []T, k int, eps, z1, logdet []T, work []float64, isa ODEISA) (nfe, accepted int, err error) {
	const op = "ODESolveDopri5"
	if _, err := checkSolve(op, n, dims, theta, z0, k, eps, z1, logdet, work, isa, t0, t1); err != nil {
		return 0, 0, err
	}
	if err := opt.check(op); err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, nil
	}
	var cnfe, cacc C.int64_t
	var rc C.int
	nl, ki, lw := C.int64_t(len(dims)), i64(k), i64(len(work))
	at, rt, h0, ms := C.double(opt.Atol), C.double(opt.Rtol), C.double(opt.H0), i64(opt.MaxSteps)
	if is32[T]() {
		rc = C.lrmf_ode_dopri5_f32(i64(n), nl, pdims(dims), pf(theta), C.double(t0), C.double(t1), at, rt, h0, ms,
			pf(z0), ki, pf(eps), pf(z1), pf(logdet), &cnfe, &cacc, pw(work), lw, C.int(isa))
	} else {
		rc = C.lrmf_ode_dopri5_f64(i64(n), nl, pdims(dims), pd(theta), C.double(t0), C.double(t1), at, rt, h0, ms,
			pd(z0), ki, pd(eps), pd(z1), pd(logdet), &cnfe, &cacc, pw(work), lw, C.int(isa))
	}
	return int(cnfe), int(cacc), odeStatus(op, rc)
}

func pi64(v []int64) *C.int64_t { return (*C.int64_t)(unsafe.Pointer(unsafe.SliceData(v))) }

// ODESolveRK4Save is [ODESolveRK4] that also stores each row's step start
// states z (float64) in states: n×steps×D, row i's step s at
// states[(i·steps+s)·D:]. [ODESolveRK4Backward] reads them.
func ODESolveRK4Save[T Float](n int, dims []int64, theta []T, t0, t1 float64, steps int, z0 []T, k int, eps, z1, logdet []T, states, work []float64, isa ODEISA) (nfe int, err error) {
	const op = "ODESolveRK4Save"
	if steps < 1 {
		return 0, &Error{op, fmt.Sprintf("steps = %d, want ≥ 1", steps)}
	}
	d, err := checkSolve(op, n, dims, theta, z0, k, eps, z1, logdet, work, isa, t0, t1)
	if err != nil {
		return 0, err
	}
	sd, ok := mul(steps, d)
	if !ok {
		return 0, errOverflow(op)
	}
	if err := checkRows(op, "states", len(states), n, sd); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	var cnfe C.int64_t
	var rc C.int
	nl, ki, lw := C.int64_t(len(dims)), i64(k), i64(len(work))
	if is32[T]() {
		rc = C.lrmf_ode_rk4_save_f32(i64(n), nl, pdims(dims), pf(theta), C.double(t0), C.double(t1), i64(steps),
			pf(z0), ki, pf(eps), pf(z1), pf(logdet), pw(states), &cnfe, pw(work), lw, C.int(isa))
	} else {
		rc = C.lrmf_ode_rk4_save_f64(i64(n), nl, pdims(dims), pd(theta), C.double(t0), C.double(t1), i64(steps),
			pd(z0), ki, pd(eps), pd(z1), pd(logdet), pw(states), &cnfe, pw(work), lw, C.int(isa))
	}
	if err := status(op, rc); err != nil {
		return 0, err
	}
	return int(cnfe), nil
}

// checkODEBwd validates the upstream and output arguments of the backward
// kernels and returns D.
func checkODEBwd[T Float](op string, n int, dims []int64, theta []T, k int, eps, a1, ald, gz0, gtheta []T, work []float64, isa ODEISA) (int, error) {
	d, err := checkODE(op, n, dims, theta, a1, "a1", k, eps, work, isa)
	if err != nil {
		return 0, err
	}
	if err := checkLen(op, "ald", len(ald), n); err != nil {
		return 0, err
	}
	if err := checkRows(op, "gz0", len(gz0), n, d); err != nil {
		return 0, err
	}
	if err := checkLen(op, "gtheta", len(gtheta), len(theta)); err != nil {
		return 0, err
	}
	return d, nil
}

// ODESolveRK4Backward is the exact reverse of the RK4 solve that
// [ODESolveRK4Save] recorded in states (same n, dims, θ, t0, t1, steps, k,
// eps): for L = Σ a1·z1 + Σ ald·logdet (a1 n×D, ald n) it sets
//
//	gz0    = ∂L/∂z0  n×D (out)
//	gtheta = ∂L/∂θ   len(theta) (out, summed over rows in float64; n == 0
//	                 zeroes it)
//
// and returns the f evaluations (7·steps·n: 3 per step to rebuild the stage
// inputs, one before each VJP) and VJPs (4·steps·n) it made.
func ODESolveRK4Backward[T Float](n int, dims []int64, theta []T, t0, t1 float64, steps int, k int, eps []T, states []float64, a1, ald, gz0, gtheta []T, work []float64, isa ODEISA) (nfe, nvjp int, err error) {
	const op = "ODESolveRK4Backward"
	d, err := checkODEBwd(op, n, dims, theta, k, eps, a1, ald, gz0, gtheta, work, isa)
	if err != nil {
		return 0, 0, err
	}
	if steps < 1 {
		return 0, 0, &Error{op, fmt.Sprintf("steps = %d, want ≥ 1", steps)}
	}
	if err := checkFiniteT(op, t0, t1); err != nil {
		return 0, 0, err
	}
	sd, ok := mul(steps, d)
	if !ok {
		return 0, 0, errOverflow(op)
	}
	if err := checkRows(op, "states", len(states), n, sd); err != nil {
		return 0, 0, err
	}
	var cnfe, cvjp C.int64_t
	var rc C.int
	nl, ki, lw := C.int64_t(len(dims)), i64(k), i64(len(work))
	if is32[T]() {
		rc = C.lrmf_ode_rk4_bwd_f32(i64(n), nl, pdims(dims), pf(theta), C.double(t0), C.double(t1), i64(steps), ki, pf(eps),
			pw(states), pf(a1), pf(ald), pf(gz0), pf(gtheta), &cnfe, &cvjp, pw(work), lw, C.int(isa))
	} else {
		rc = C.lrmf_ode_rk4_bwd_f64(i64(n), nl, pdims(dims), pd(theta), C.double(t0), C.double(t1), i64(steps), ki, pd(eps),
			pw(states), pd(a1), pd(ald), pd(gz0), pd(gtheta), &cnfe, &cvjp, pw(work), lw, C.int(isa))
	}
	if err := status(op, rc); err != nil {
		return 0, 0, err
	}
	return int(cnfe), int(cvjp), nil
}

// ODESolveDopri5Save is [ODESolveDopri5] that also records each row's
// accepted steps for [ODESolveDopri5Backward]: tape (float64,
// n×MaxSteps×(D+2)) holds row i's step m at tape[(i·MaxSteps+m)·(D+2):] as
// [t, signed h, z at the step start], and nacc[i] (n) their count.
func ODESolveDopri5Save[T Float](n int, dims []int64, theta []T, t0, t1 float64, opt Dopri5Options, z0 []T, k int, eps, z1, logdet []T, tape []float64, nacc []int64, work []float64, isa ODEISA) (nfe, accepted int, err error) {
	const op = "ODESolveDopri5Save"
	d, err := checkSolve(op, n, dims, theta, z0, k, eps, z1, logdet, work, isa, t0, t1)
	if err != nil {
		return 0, 0, err
	}
	if err := opt.check(op); err != nil {
		return 0, 0, err
	}
	per, ok := mul(opt.MaxSteps, d+2)
	if !ok {
		return 0, 0, errOverflow(op)
	}
	if err := checkRows(op, "tape", len(tape), n, per); err != nil {
		return 0, 0, err
	}
	if err := checkLen(op, "nacc", len(nacc), n); err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, nil
	}
	var cnfe, cacc C.int64_t
	var rc C.int
	nl, ki, lw := C.int64_t(len(dims)), i64(k), i64(len(work))
	at, rt, h0, ms := C.double(opt.Atol), C.double(opt.Rtol), C.double(opt.H0), i64(opt.MaxSteps)
	if is32[T]() {
		rc = C.lrmf_ode_dopri5_save_f32(i64(n), nl, pdims(dims), pf(theta), C.double(t0), C.double(t1), at, rt, h0, ms,
			pf(z0), ki, pf(eps), pf(z1), pf(logdet), pw(tape), pi64(nacc), &cnfe, &cacc, pw(work), lw, C.int(isa))
	} else {
		rc = C.lrmf_ode_dopri5_save_f64(i64(n), nl, pdims(dims), pd(theta), C.double(t0), C.double(t1), at, rt, h0, ms,
			pd(z0), ki, pd(eps), pd(z1), pd(logdet), pw(tape), pi64(nacc), &cnfe, &cacc, pw(work), lw, C.int(isa))
	}
	return int(cnfe), int(cacc), odeStatus(op, rc)
}

// ODESolveDopri5Backward is the exact reverse of the accepted steps that
// [ODESolveDopri5Save] recorded (same n, dims, θ, k, eps, maxSteps): the
// gradients of L = Σ a1·z1 + Σ ald·logdet as in [ODESolveRK4Backward]. The
// step sizes are treated as constants (the error estimate and step control
// are not differentiated), so this is the gradient of the computed discrete
// solution. It returns the f evaluations (11 per accepted step) and VJPs
// (6 per accepted step) it made.
func ODESolveDopri5Backward[T Float](n int, dims []int64, theta []T, maxSteps, k int, eps []T, tape []float64, nacc []int64, a1, ald, gz0, gtheta []T, work []float64, isa ODEISA) (nfe, nvjp int, err error) {
	const op = "ODESolveDopri5Backward"
	d, err := checkODEBwd(op, n, dims, theta, k, eps, a1, ald, gz0, gtheta, work, isa)
	if err != nil {
		return 0, 0, err
	}
	if maxSteps < 1 {
		return 0, 0, &Error{op, fmt.Sprintf("max steps = %d, want ≥ 1", maxSteps)}
	}
	per, ok := mul(maxSteps, d+2)
	if !ok {
		return 0, 0, errOverflow(op)
	}
	if err := checkRows(op, "tape", len(tape), n, per); err != nil {
		return 0, 0, err
	}
	if err := checkLen(op, "nacc", len(nacc), n); err != nil {
		return 0, 0, err
	}
	for i, v := range nacc[:n] {
		if v < 0 || v > int64(maxSteps) {
			return 0, 0, &Error{op, fmt.Sprintf("nacc[%d] = %d outside [0, %d]", i, v, maxSteps)}
		}
	}
	var cnfe, cvjp C.int64_t
	var rc C.int
	nl, ki, lw := C.int64_t(len(dims)), i64(k), i64(len(work))
	if is32[T]() {
		rc = C.lrmf_ode_dopri5_bwd_f32(i64(n), nl, pdims(dims), pf(theta), i64(maxSteps), ki, pf(eps),
			pw(tape), pi64(nacc), pf(a1), pf(ald), pf(gz0), pf(gtheta), &cnfe, &cvjp, pw(work), lw, C.int(isa))
	} else {
		rc = C.lrmf_ode_dopri5_bwd_f64(i64(n), nl, pdims(dims), pd(theta), i64(maxSteps), ki, pd(eps),
			pw(tape), pi64(nacc), pd(a1), pd(ald), pd(gz0), pd(gtheta), &cnfe, &cvjp, pw(work), lw, C.int(isa))
	}
	if err := status(op, rc); err != nil {
		return 0, 0, err
	}
	return int(cnfe), int(cvjp), nil
}

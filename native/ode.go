package native

import (
	"fmt"
	"math"

	"github.com/lrmf-go/lrmf/bindings"
)

// FFJORD (continuous normalizing flow) operations.
//
// The dynamics f(z, t; θ) is an MLP on x = [z, t] with layer sizes
// dims = [D+1, H1, ..., HL, D]: tanh on the hidden layers, a linear output.
// θ is one flat vector (a Tensor of Len ODENumParams(dims)): for each layer
// l, W_l (dims[l]×dims[l+1], row-major, so a = in·W_l + b_l) then b_l.
//
// The divergence tr(∂f/∂z) is exact when eps is nil (D forward-mode
// tangents), else the Hutchinson estimate (1/k) Σ_p ε_pᵀ(∂f/∂z)ε_p with
// eps an n×(k·D) Tensor holding row i's k probes (probe p at columns
// [p·D, (p+1)·D)). Probes stay fixed over a solve.
//
// These operations are an optional capability, ODEBackend, rather than
// methods of Backend, so that backends without them (any outside this repo)
// still satisfy Backend; callers type-assert.

// Sentinel errors of ODESolveDopri5 (the bindings' sentinels, so errors.Is
// matches either).
var (
	ErrODEStepUnderflow = bindings.ErrODEStepUnderflow
	ErrODENonFinite     = bindings.ErrODENonFinite
	ErrODEMaxSteps      = bindings.ErrODEMaxSteps
)

// Dopri5Options are the step-control parameters of ODESolveDopri5.
type Dopri5Options struct {
	Atol, Rtol float64 // error tolerances: ≥ 0, Atol + Rtol > 0
	H0         float64 // first step size, > 0 (clipped to |t1 − t0|)
	MaxSteps   int     // step attempts (accepted or rejected) per row, ≥ 1
}

// ODEStats counts a solve's work, summed over the rows solved.
type ODEStats struct {
	NFE      int // evaluations of f (each also gives the divergence)
	Accepted int // accepted steps (RK4: steps·n); 0 for a backward pass
	VJP      int // vector-Jacobian products of [f, tr] (backward passes)
}

// ODETape is what a recorded solve keeps for its backward pass
// (ODESolveRK4Record / ODESolveDopri5Record, then the matching Backward).
// The caller owns it; its buffers grow to the largest batch seen and are
// then reused, so steady-state solves allocate nothing. The zero value is
// ready to use. One tape per solve in flight (a Backward reads the tape of
// the last Record made with it).
//
// Memory per row, in float64s: RK4 stores the D-vector z at the start of
// every step (steps·D); Dormand–Prince reserves MaxSteps entries of
// [t, signed h, z at the step start] (MaxSteps·(D+2)) plus one int64
// count of accepted steps, of which the accepted ones are used.
type ODETape struct {
	method    int // 0: empty, 1: RK4, 2: Dormand–Prince
	n, d, k   int
	steps     int // RK4 steps, or Dormand–Prince MaxSteps
	t0, t1    float64
	buf       []float64
	nacc      []int64
	perRowBuf int

	// Ext is the recorded data of a backend that keeps it in its own
	// memory instead of the tape's host buffers (native/cuda: device
	// buffers), set through PrepareExt; nil after a solve recorded by the
	// cpu or ref backend. Only the backend that recorded the solve reads
	// it, and the built-in backends refuse to run Backward on such a tape.
	Ext any
}

// PrepareExt sets tp up for a solve recorded by a backend that keeps the
// data itself in ext (see Ext): it records the solve's shape — RK4 with
// steps steps, or Dormand–Prince (dopri5) with steps = MaxSteps — for n
// rows of dimension d with k probes (0: exact trace) from t0 to t1, so
// that FloatsPerRow and Accepted report it, drops the host step buffer,
// and returns the n accepted-step counts (zeroed) for the backend to fill
// after a Dormand–Prince solve. Steps panics on such a tape.
func (tp *ODETape) PrepareExt(ext any, dopri5 bool, n, d, k, steps int, t0, t1 float64) (nacc []int64) {
	method, per := tapeRK4, steps*d
	if dopri5 {
		method, per = tapeDopri5, steps*(d+2)
	}
	tp.method, tp.n, tp.d, tp.k, tp.steps, tp.t0, tp.t1, tp.perRowBuf = method, n, d, k, steps, t0, t1, per
	tp.buf = tp.buf[:0]
	if cap(tp.nacc) < n {
		tp.nacc = make([]int64, n)
	}
	tp.nacc = tp.nacc[:n]
	clear(tp.nacc)
	tp.Ext = ext
	return tp.nacc
}

const (
	tapeRK4 = 1 + iota
	tapeDopri5
)

// FloatsPerRow returns the float64s the tape holds per row for its last
// recorded solve (RK4: steps·D; Dormand–Prince: MaxSteps·(D+2)).
func (tp *ODETape) FloatsPerRow() int { return tp.perRowBuf }

// Accepted returns row i's accepted steps in the last recorded solve
// (RK4: steps).
func (tp *ODETape) Accepted(i int) int {
	if tp.method == tapeRK4 {
		return tp.steps
	}
	return int(tp.nacc[i])
}

// Steps returns row i's recorded accepted steps as (t, signed h) pairs
// appended to dst (Dormand–Prince tapes; RK4 gives the fixed steps).
func (tp *ODETape) Steps(dst []float64, i int) []float64 {
	if tp.method == tapeRK4 {
		h := (tp.t1 - tp.t0) / float64(tp.steps)
		for s := 0; s < tp.steps; s++ {
			dst = append(dst, tp.t0+float64(s)*h, h)
		}
		return dst
	}
	if tp.Ext != nil {
		panic("native: ODETape.Steps: the steps of this tape are held by the backend that recorded it")
	}
	per := tp.d + 2
	for m := 0; m < int(tp.nacc[i]); m++ {
		e := tp.buf[(i*tp.steps+m)*per:]
		dst = append(dst, e[0], e[1])
	}
	return dst
}

// prepare sets the tape up for a solve and grows its buffers.
func (tp *ODETape) prepare(method, n, d, k, steps int, t0, t1 float64) {
	per := steps * d
	if method == tapeDopri5 {
		per = steps * (d + 2)
	}
	tp.method, tp.n, tp.d, tp.k, tp.steps, tp.t0, tp.t1, tp.perRowBuf = method, n, d, k, steps, t0, t1, per
	tp.Ext = nil
	if need := n * per; cap(tp.buf) < need {
		tp.buf = make([]float64, need)
	}
	tp.buf = tp.buf[:n*per]
	if cap(tp.nacc) < n {
		tp.nacc = make([]int64, n)
	}
	tp.nacc = tp.nacc[:n]
}

// ODEBackend is a Backend with the FFJORD kernels.
type ODEBackend interface {
	Backend
	ODEOps
}

// ODEOps are the FFJORD operations of an ODEBackend; a BatchedODE (and the
// cpu backend's float32-on-float64 wrapper of one) provides them alone,
// over a Backend's generic ops.
type ODEOps interface {
	// ODEFuncForward sets dz[i] = f(z[i], t; θ) and trace[i] = tr(∂f/∂z)
	// at (z[i], t); z, dz are n×D, trace a vector of n, theta a vector of
	// ODENumParams(dims), eps nil (exact) or n×(k·D).
	ODEFuncForward(dz, trace, z, theta, eps *Tensor, dims []int, t float64)
	// ODEFuncVJP is the vector-Jacobian product of ODEFuncForward for az
	// (n×D, upstream of dz) and atr (vector of n, upstream of trace): with
	// Λ = Σ az⊙f + Σ atr⊙trace, gz = ∂Λ/∂z (n×D) and gtheta = ∂Λ/∂θ
	// (vector of ODENumParams(dims), summed over rows).
	ODEFuncVJP(gz, gtheta, z, theta, eps, az, atr *Tensor, dims []int, t float64)
	// ODESolveRK4 integrates d[z, l]/dt = [f(z, t), tr ∂f/∂z] from t0 to
	// t1 (either direction) in steps ≥ 1 RK4 steps from z(t0) = z0,
	// l(t0) = 0: z1 = z(t1) (n×D), logdet = ∫ tr dt (vector of n).
	ODESolveRK4(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats
	// ODESolveDopri5 is ODESolveRK4 with adaptive Dormand–Prince 5(4)
	// steps, step size controlled per row (RMS error over [z, l] relative
	// to Atol + Rtol·|y|; next step h·clamp(0.9·err^(−1/5), 0.2, 10)).
	// A numerical failure returns an error wrapping ErrODEStepUnderflow,
	// ErrODENonFinite or ErrODEMaxSteps (z1, logdet then unspecified).
	ODESolveDopri5(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error)

	// ODESolveRK4Record is ODESolveRK4 that also records in tape the step
	// start states its backward needs (steps·D float64s per row).
	ODESolveRK4Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats
	// ODESolveRK4Backward differentiates the solve recorded in tape (same
	// theta, eps, dims) exactly as computed (discretize-then-optimize):
	// for L = Σ a1⊙z1 + Σ ald⊙logdet (a1 n×D, ald a vector of n),
	// gz0 = ∂L/∂z0 (n×D) and gtheta = ∂L/∂θ (summed over rows). Per step
	// it makes 3 evaluations to rebuild the stage inputs and 4 × (one
	// evaluation + one VJP), against 4 evaluations forward.
	ODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats
	// ODESolveDopri5Record is ODESolveDopri5 that also records each row's
	// accepted steps (t, h and the start state) in tape.
	ODESolveDopri5Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error)
	// ODESolveDopri5Backward is ODESolveRK4Backward for a recorded
	// Dormand–Prince solve: it replays the accepted steps in reverse and
	// backpropagates exactly through each step's 5th-order update; the
	// error estimate and step-size control are not differentiated (the
	// step sequence is a constant), so this is the exact gradient of the
	// computed discrete solution. Per accepted step: 5 evaluations to
	// rebuild the stages and 6 × (evaluation + VJP).
	ODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats
}

// ODELimiter is implemented by ODE backends whose kernels only take
// networks up to some size (native/cuda: a per-thread frame); callers
// check before building a model rather than meet a panic mid-run.
type ODELimiter interface {
	// ODESupports returns nil if dims with k Hutchinson probes (0: the
	// exact trace) can run, else an error naming the limit.
	ODESupports(dims []int, k int) error
}

// ODEPather is implemented by ODE backends with more than one code path
// for the FFJORD kernels. Every path computes the same functions (they
// agree to rounding); tests and benchmarks compare them. The cpu backend
// has "portable" (one row at a time: the per-row code the CUDA kernels
// share), "avx2" and "avx512" (4 or 8 rows per vector instruction, one row
// per lane) and "batched" (BatchedODE: the layers as GEMMs over all rows
// of a stage). By default ("auto") the backend picks the path per call.
type ODEPather interface {
	// ODEPaths lists the paths this backend runs on this machine.
	ODEPaths() []string
	// SetODEPath forces path name for the calls that follow ("auto": the
	// backend's choice); an unknown or unavailable name is an error that
	// lists the available ones.
	SetODEPath(name string) error
}

// ODENumParams returns the length of θ for dims (which it panics on if
// invalid).
func ODENumParams(dims []int) int {
	checkODEDims("ODENumParams", dims)
	p := 0
	for l := 0; l+1 < len(dims); l++ {
		p += dims[l]*dims[l+1] + dims[l+1]
	}
	return p
}

// Contracts of the FFJORD operations (see contract.go). dims is
// [D+1, hidden..., D] with every size in [1, 2^20]; theta is a vector of
// ODENumParams(dims); eps is nil (the exact trace, k = 0) or n×(k·D) with
// k ≥ 1; times are finite.

// CheckODEFuncForward checks ODEBackend.ODEFuncForward (dz = f(z, t; θ),
// trace = tr ∂f/∂z): z and dz are n×D, trace a vector of n. It returns n,
// D and k.
func CheckODEFuncForward(dz, trace, z, theta, eps *Tensor, dims []int) (n, d, k int) {
	const op = "ODEFuncForward"
	n, d, k = checkODE(op, z, theta, eps, dims)
	mustShape(op, "dz", dz, n, d)
	mustLen(op, "trace", trace, n)
	return n, d, k
}

// CheckODEFuncVJP checks ODEBackend.ODEFuncVJP (gz = ∂Λ/∂z, gtheta =
// ∂Λ/∂θ for Λ = Σ az⊙f + Σ atr⊙trace): z, az and gz are n×D, atr a vector
// of n, gtheta of θ's Len. It returns n, D and k.
func CheckODEFuncVJP(gz, gtheta, z, theta, eps, az, atr *Tensor, dims []int) (n, d, k int) {
	const op = "ODEFuncVJP"
	n, d, k = checkODE(op, z, theta, eps, dims)
	mustShape(op, "gz", gz, n, d)
	mustShape(op, "az", az, n, d)
	mustLen(op, "atr", atr, n)
	mustLen(op, "gtheta", gtheta, theta.Len())
	return n, d, k
}

// CheckODESolveRK4 checks ODEBackend.ODESolveRK4 (z1 = z(t1), logdet =
// ∫ tr dt in steps RK4 steps from z0 at t0): z0 and z1 are n×D, logdet a
// vector of n, steps ≥ 1. It returns n, D and k.
func CheckODESolveRK4(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) (n, d, k int) {
	return checkRK4("ODESolveRK4", z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

// CheckODESolveRK4Record checks ODEBackend.ODESolveRK4Record: tape is not
// nil and the rest is as for CheckODESolveRK4.
func CheckODESolveRK4Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) (n, d, k int) {
	const op = "ODESolveRK4Record"
	mustTape(op, tape)
	return checkRK4(op, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

// CheckODESolveDopri5 checks ODEBackend.ODESolveDopri5: z0 and z1 are
// n×D, logdet a vector of n; opt has finite tolerances Atol, Rtol ≥ 0 not
// both 0, a finite H0 > 0 and MaxSteps ≥ 1. It returns n, D and k.
func CheckODESolveDopri5(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (n, d, k int) {
	return checkDopri5("ODESolveDopri5", z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

// CheckODESolveDopri5Record checks ODEBackend.ODESolveDopri5Record: tape
// is not nil and the rest is as for CheckODESolveDopri5.
func CheckODESolveDopri5Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (n, d, k int) {
	const op = "ODESolveDopri5Record"
	mustTape(op, tape)
	return checkDopri5(op, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

// CheckODESolveRK4Backward checks ODEBackend.ODESolveRK4Backward: tape
// holds an RK4 solve (ODESolveRK4Record) of n rows of dimension D with k
// probes, the k of eps; a1 and gz0 are n×D, ald a vector of n, gtheta of
// θ's Len. It returns n, D and k. Whose memory holds the tape (ODETape.Ext)
// is the backend's to check.
func CheckODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) (n, d, k int) {
	return checkBackward("ODESolveRK4Backward", tapeRK4, gz0, gtheta, a1, ald, theta, eps, dims, tape)
}

// CheckODESolveDopri5Backward is CheckODESolveRK4Backward for
// ODEBackend.ODESolveDopri5Backward: tape holds a Dormand–Prince solve
// (ODESolveDopri5Record).
func CheckODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) (n, d, k int) {
	return checkBackward("ODESolveDopri5Backward", tapeDopri5, gz0, gtheta, a1, ald, theta, eps, dims, tape)
}

// mustHostTape panics if tape was recorded by a backend that holds its
// data in its own memory (ODETape.Ext), which only that backend can read:
// the host backends' Backward calls it after the contract.
func mustHostTape(op string, tape *ODETape) {
	if tape.Ext != nil {
		panic(fmt.Sprintf("native: %s: the tape was recorded by a backend that holds it in its own memory (%T)", op, tape.Ext))
	}
}

func mustTape(op string, tape *ODETape) {
	if tape == nil {
		panic(fmt.Sprintf("native: %s: tape is nil", op))
	}
}

func checkODEDims(op string, dims []int) {
	if len(dims) < 2 {
		panic(fmt.Sprintf("native: %s: dims %v: want [D+1, hidden..., D]", op, dims))
	}
	for _, v := range dims {
		if v < 1 || v > 1<<20 {
			panic(fmt.Sprintf("native: %s: dims %v: every size must be in [1, 2^20]", op, dims))
		}
	}
	if dims[0] != dims[len(dims)-1]+1 {
		panic(fmt.Sprintf("native: %s: dims %v: dims[0] must be dims[last]+1 (input [z, t])", op, dims))
	}
}

// checkODE validates the shared shapes and returns n, D and k (0: exact).
func checkODE(op string, z, theta, eps *Tensor, dims []int) (n, d, k int) {
	np := ODENumParams(dims)
	d = dims[len(dims)-1]
	if z == nil {
		panic(fmt.Sprintf("native: %s: z is nil", op))
	}
	n = z.rows
	mustShape(op, "z", z, n, d)
	mustLen(op, "theta", theta, np)
	if eps != nil {
		if eps.rows != n || eps.cols == 0 || eps.cols%d != 0 {
			panic(fmt.Sprintf("native: %s: eps is %d×%d, want %d×(k·%d) with k ≥ 1", op, eps.rows, eps.cols, n, d))
		}
		k = eps.cols / d
	}
	return n, d, k
}

// checkTimes panics unless t0 and t1 are finite.
func checkTimes(op string, t0, t1 float64) {
	if math.IsNaN(t0) || math.IsInf(t0, 0) || math.IsNaN(t1) || math.IsInf(t1, 0) {
		panic(fmt.Sprintf("native: %s: times %g, %g must be finite", op, t0, t1))
	}
}

// checkSolve checks the shapes every solve shares: z0 and z1 n×D, logdet
// a vector of n.
func checkSolve(op string, z1, logdet *Tensor, n, d int) {
	mustShape(op, "z1", z1, n, d)
	mustLen(op, "logdet", logdet, n)
}

func checkRK4(op string, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) (n, d, k int) {
	n, d, k = checkODE(op, z0, theta, eps, dims)
	checkTimes(op, t0, t1)
	if steps < 1 {
		panic(fmt.Sprintf("native: %s: steps %d, want ≥ 1", op, steps))
	}
	checkSolve(op, z1, logdet, n, d)
	return n, d, k
}

func checkDopri5(op string, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (n, d, k int) {
	n, d, k = checkODE(op, z0, theta, eps, dims)
	checkTimes(op, t0, t1)
	if !(opt.Atol >= 0) || !(opt.Rtol >= 0) || !(opt.Atol+opt.Rtol > 0) || math.IsInf(opt.Atol+opt.Rtol, 0) {
		panic(fmt.Sprintf("native: %s: tolerances atol %g, rtol %g: want finite, ≥ 0, not both 0", op, opt.Atol, opt.Rtol))
	}
	if !(opt.H0 > 0) || math.IsInf(opt.H0, 0) {
		panic(fmt.Sprintf("native: %s: h0 %g, want finite and > 0", op, opt.H0))
	}
	if opt.MaxSteps < 1 {
		panic(fmt.Sprintf("native: %s: max steps %d, want ≥ 1", op, opt.MaxSteps))
	}
	checkSolve(op, z1, logdet, n, d)
	return n, d, k
}

// checkBackward checks a Backward's arguments against its tape, which must
// hold a solve of method.
func checkBackward(op string, method int, gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) (n, d, k int) {
	if tape == nil || tape.method != method {
		panic(fmt.Sprintf("native: %s: the tape holds no solve of this method (record it with the matching Record)", op))
	}
	n, d, k = checkODE(op, a1, theta, eps, dims)
	if n != tape.n || d != tape.d || k != tape.k {
		panic(fmt.Sprintf("native: %s: a1 is %d×%d with k = %d, the tape recorded %d×%d with k = %d", op, n, d, k, tape.n, tape.d, tape.k))
	}
	mustShape(op, "gz0", gz0, n, d)
	mustLen(op, "ald", ald, n)
	mustLen(op, "gtheta", gtheta, theta.Len())
	return n, d, k
}

package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/native"
)

// FFJORDOptions configure an FFJORD flow (Grathwohl et al., 2019): Blocks
// continuous transforms stacked, each dz/dt = f(z, t; θ_k) integrated over
// t ∈ [0, 1], f an MLP on [z, t] with Depth hidden tanh layers of Hidden
// units and a linear output of size D.
//
// The zero value takes the paper's network (2 blocks of [16, 16, 16] tanh)
// and the reference solver: Dormand–Prince 5(4) at atol = rtol = 1e-5 with
// the exact trace.
type FFJORDOptions struct {
	Blocks int // stacked transforms (default 2)
	Hidden int // units per hidden layer (default 16)
	Depth  int // hidden layers (default 3)

	// Solver is "dopri5" (adaptive Dormand–Prince 5(4), default) or "rk4"
	// (fixed-step classical Runge–Kutta).
	Solver string
	// Steps is the number of RK4 steps over [0, 1] (default 10).
	Steps int
	// Atol and Rtol are Dormand–Prince's error tolerances (default 1e-5
	// each); MaxSteps bounds its step attempts per row and solve (default
	// 200). A recorded solve reserves MaxSteps·(D+2) float64s per row.
	Atol, Rtol float64
	MaxSteps   int // Dormand–Prince step attempts per row and solve
	// Trace is "exact" (default: D tangent passes give tr ∂f/∂z exactly) or
	// "hutchinson" (Probes Rademacher probes ε, tr ≈ mean εᵀ(∂f/∂z)ε: an
	// unbiased estimate for high D, drawn afresh for every Forward).
	Trace  string
	Probes int // Hutchinson probes per row (default 1)
}

// PaperFFJORD is the FFJORD of the LRMF paper's experiments: two stacked
// transforms of [16, 16, 16] tanh, Dormand–Prince with atol 1e-5.
var PaperFFJORD = FFJORDOptions{Blocks: 2, Hidden: 16, Depth: 3, Solver: "dopri5", Atol: 1e-5, Rtol: 1e-5}

// ffjordDefaults is what the zero fields of an FFJORDOptions select (Probes
// only with the Hutchinson trace; Atol and Rtol only when both are 0).
var ffjordDefaults = FFJORDOptions{Blocks: 2, Hidden: 16, Depth: 3, Solver: "dopri5", Steps: 10,
	Atol: 1e-5, Rtol: 1e-5, MaxSteps: 200, Trace: "exact", Probes: 1}

func (o FFJORDOptions) withDefaults() FFJORDOptions {
	d := ffjordDefaults
	if o.Blocks == 0 {
		o.Blocks = d.Blocks
	}
	if o.Hidden == 0 {
		o.Hidden = d.Hidden
	}
	if o.Depth == 0 {
		o.Depth = d.Depth
	}
	if o.Solver == "" {
		o.Solver = d.Solver
	}
	if o.Steps == 0 {
		o.Steps = d.Steps
	}
	if o.Atol == 0 && o.Rtol == 0 {
		o.Atol, o.Rtol = d.Atol, d.Rtol
	}
	if o.MaxSteps == 0 {
		o.MaxSteps = d.MaxSteps
	}
	if o.Trace == "" {
		o.Trace = d.Trace
	}
	if o.Probes == 0 && o.Trace == "hutchinson" {
		o.Probes = d.Probes
	}
	return o
}

func (o FFJORDOptions) validate(dim int) error {
	switch {
	case dim < 1:
		return fmt.Errorf("model: FFJORD needs at least 1 dimension, the data have %d", dim)
	case o.Blocks < 1 || o.Hidden < 1 || o.Depth < 1:
		return fmt.Errorf("model: FFJORD blocks=%d hidden=%d depth=%d must be positive", o.Blocks, o.Hidden, o.Depth)
	case o.Blocks > 1<<10 || o.Hidden > 1<<16 || o.Depth > 1<<8 || dim >= 1<<20:
		return fmt.Errorf("model: FFJORD blocks=%d hidden=%d depth=%d on %d dimensions: too large (at most 1024 blocks, 65536 units, 256 layers, 2^20−1 dimensions)", o.Blocks, o.Hidden, o.Depth, dim)
	case o.Solver != "dopri5" && o.Solver != "rk4":
		return fmt.Errorf("model: FFJORD solver %q: want dopri5 or rk4", o.Solver)
	case o.Steps < 1:
		return fmt.Errorf("model: FFJORD RK4 steps = %d must be positive", o.Steps)
	case !(o.Atol >= 0) || !(o.Rtol >= 0) || !(o.Atol+o.Rtol > 0) || math.IsInf(o.Atol+o.Rtol, 0):
		return fmt.Errorf("model: FFJORD tolerances atol = %v, rtol = %v: want finite, ≥ 0 and not both 0", o.Atol, o.Rtol)
	case o.MaxSteps < 1:
		return fmt.Errorf("model: FFJORD max steps = %d must be positive", o.MaxSteps)
	case o.Trace != "exact" && o.Trace != "hutchinson":
		return fmt.Errorf("model: FFJORD trace %q: want exact or hutchinson", o.Trace)
	case o.Trace == "hutchinson" && o.Probes < 1:
		return fmt.Errorf("model: FFJORD Hutchinson probes = %d must be positive", o.Probes)
	case o.Trace == "exact" && o.Probes != 0:
		return fmt.Errorf("model: FFJORD probes = %d given with the exact trace (set Trace to hutchinson)", o.Probes)
	}
	return nil
}

// FFJORD is a continuous normalizing flow T = Φ_K ∘ … ∘ Φ_1, where Φ_k maps
// z(0) to z(1) under dz/dt = f(z, t; θ_k) and
//
//	ln|det ∂Φ_k/∂z(0)| = ∫₀¹ tr(∂f/∂z)(z(t), t) dt,
//
// integrated together with z as the augmented state [z, l] for the whole
// batch in one kernel call per block. The inverse integrates from t = 1
// back to 0. Gradients replay each solve's recorded steps backwards
// (discretize-then-optimize), so they are the exact gradients of the
// computed solution.
//
// Each θ_k is one Param of length native.ODENumParams([D+1, H, …, H, D])
// (per layer W (in×out, row-major) then b), Glorot-uniform initialised with
// zero biases, so T starts as a random smooth map, not the identity:
// Align pre-fits it to the identity (Config.IdentityPrefit).
//
// The backend must implement native.ODEBackend.
type FFJORD struct {
	be   native.ODEBackend
	d    int
	o    FFJORDOptions
	dims []int
	ps   []*Param
	dopt native.Dopri5Options
	rng  *rand.Rand

	tapes []native.ODETape // one per block
	n     int              // batch size the buffers are sized for
	mid   []*native.Tensor // outputs of blocks 0..K−2
	ld    *native.Tensor   // one block's log-det (n)
	eps   []*native.Tensor // per block n×(k·D) probes, Hutchinson only
	host  []float64        // probe staging
	grad  [2]*native.Tensor
	infer bool // skip recording (evaluation only)
	fwdOK bool // the last Forward recorded tapes
	stats SolverStats
}

// NewFFJORD returns an FFJORD flow on R^d. In Hutchinson mode the flow
// keeps rng and draws its probes from it for its lifetime.
func NewFFJORD(be native.Backend, d int, o FFJORDOptions, rng *rand.Rand) (*FFJORD, error) {
	o = o.withDefaults()
	if err := o.validate(d); err != nil {
		return nil, err
	}
	ob, ok := be.(native.ODEBackend)
	if !ok {
		return nil, fmt.Errorf("model: FFJORD: backend %s has no ODE kernels", be.Name())
	}
	f := &FFJORD{be: ob, d: d, o: o, rng: rng, tapes: make([]native.ODETape, o.Blocks)}
	f.dims = append(f.dims, d+1)
	for l := 0; l < o.Depth; l++ {
		f.dims = append(f.dims, o.Hidden)
	}
	f.dims = append(f.dims, d)
	if lim, ok := be.(native.ODELimiter); ok {
		if err := lim.ODESupports(f.dims, o.Probes); err != nil {
			return nil, fmt.Errorf("model: FFJORD on backend %s: %w", be.Name(), err)
		}
	}
	np := native.ODENumParams(f.dims)
	v := make([]float64, np)
	for k := 0; k < o.Blocks; k++ {
		p := newParam(be, fmt.Sprintf("ode%d.theta", k), 1, np)
		clear(v)
		off := 0
		for l := 0; l+1 < len(f.dims); l++ {
			in, out := f.dims[l], f.dims[l+1]
			a := math.Sqrt(6 / float64(in+out))
			for i := 0; i < in*out; i++ {
				v[off+i] = a * (2*rng.Float64() - 1)
			}
			off += in*out + out // biases stay 0
		}
		be.Upload(p.Value, v)
		f.ps = append(f.ps, p)
	}
	f.dopt = native.Dopri5Options{Atol: o.Atol, Rtol: o.Rtol, H0: 0.05, MaxSteps: o.MaxSteps}
	return f, nil
}

// FFJORDFlow returns a FlowMaker for FFJORD with options o.
func FFJORDFlow(o FFJORDOptions) FlowMaker {
	return func(be native.Backend, dim int, rng *rand.Rand) (Flow, error) {
		return NewFFJORD(be, dim, o, rng)
	}
}

// FFJORDDensity returns a DensityMaker for the density of an FFJORD flow x
// → z with a standard-normal base (a FlowDensity).
func FFJORDDensity(o FFJORDOptions) DensityMaker {
	return densityOf(func(be native.Backend, dim int, rng *rand.Rand) (*FFJORD, error) {
		return NewFFJORD(be, dim, o, rng)
	})
}

// Dim returns D.
func (f *FFJORD) Dim() int { return f.d }

// Params returns θ_1, …, θ_K.
func (f *FFJORD) Params() []*Param { return f.ps }

// Options returns the options in effect (defaults filled in).
func (f *FFJORD) Options() FFJORDOptions { return f.o }

// Dims returns the dynamics' layer sizes [D+1, H, …, H, D].
func (f *FFJORD) Dims() []int { return append([]int(nil), f.dims...) }

// SolverStats returns the solver work since the flow was built.
func (f *FFJORD) SolverStats() SolverStats { return f.stats }

func (f *FFJORD) setInference(on bool) { f.infer = on }

func (f *FFJORD) resize(n int) {
	if f.n == n && f.ld != nil {
		return
	}
	f.n = n
	f.mid = f.mid[:0]
	for k := 0; k+1 < f.o.Blocks; k++ {
		f.mid = append(f.mid, f.be.New(n, f.d))
	}
	f.ld = f.be.New(n, 1)
	f.grad[0], f.grad[1] = f.be.New(n, f.d), f.be.New(n, f.d)
	f.eps = f.eps[:0]
	if f.o.Trace == "hutchinson" {
		for k := 0; k < f.o.Blocks; k++ {
			f.eps = append(f.eps, f.be.New(n, f.o.Probes*f.d))
		}
		f.host = make([]float64, n*f.o.Probes*f.d)
	}
}

// probes returns block k's probes (nil: exact trace), drawing fresh
// Rademacher ones when draw is set.
func (f *FFJORD) probes(k int, draw bool) *native.Tensor {
	if len(f.eps) == 0 {
		return nil
	}
	if draw {
		var bits uint64
		for i := range f.host {
			if i%64 == 0 {
				bits = f.rng.Uint64() // one bit per entry
			}
			f.host[i] = float64(int(bits&1)*2 - 1)
			bits >>= 1
		}
		f.be.Upload(f.eps[k], f.host)
	}
	return f.eps[k]
}

func (f *FFJORD) check(op string, x *native.Tensor) error {
	if x.Cols() != f.d {
		return fmt.Errorf("model: FFJORD.%s: input has %d columns, the flow has dimension %d", op, x.Cols(), f.d)
	}
	return nil
}

// solve integrates block k from t0 to t1: z1 = Φ(z0), f.ld = ∫ tr dt. It
// records the tape unless evaluating or inverting (record false).
func (f *FFJORD) solve(k int, z1, z0, eps *native.Tensor, t0, t1 float64, record bool) error {
	var st native.ODEStats
	var err error
	th := f.ps[k].Value
	switch {
	case f.o.Solver == "rk4" && record:
		st = f.be.ODESolveRK4Record(&f.tapes[k], z1, f.ld, z0, th, eps, f.dims, t0, t1, f.o.Steps)
	case f.o.Solver == "rk4":
		st = f.be.ODESolveRK4(z1, f.ld, z0, th, eps, f.dims, t0, t1, f.o.Steps)
	case record:
		st, err = f.be.ODESolveDopri5Record(&f.tapes[k], z1, f.ld, z0, th, eps, f.dims, t0, t1, f.dopt)
	default:
		st, err = f.be.ODESolveDopri5(z1, f.ld, z0, th, eps, f.dims, t0, t1, f.dopt)
	}
	f.stats.Solves++
	f.stats.Rows += z0.Rows()
	f.stats.NFE += st.NFE
	f.stats.Accepted += st.Accepted
	if err != nil {
		hint := ""
		switch {
		case errors.Is(err, native.ErrODEMaxSteps):
			hint = fmt.Sprintf(" (raise the step budget, now %d, or loosen atol/rtol)", f.o.MaxSteps)
		case errors.Is(err, native.ErrODEStepUnderflow):
			hint = " (the dynamics are too stiff for these tolerances: loosen atol/rtol or lower the learning rate)"
		}
		return fmt.Errorf("model: FFJORD block %d, t = %g → %g: %w%s", k, t0, t1, err, hint)
	}
	return nil
}

// Forward sets y = T(x) and adds Σ_k ∫₀¹ tr(∂f/∂z) dt to logdet[i].
func (f *FFJORD) Forward(y, logdet, x *native.Tensor) error {
	if err := f.check("Forward", x); err != nil {
		return err
	}
	f.resize(x.Rows())
	f.fwdOK = false
	in := x
	for k := range f.ps {
		out := y
		if k+1 < len(f.ps) {
			out = f.mid[k]
		}
		if err := f.solve(k, out, in, f.probes(k, true), 0, 1, !f.infer); err != nil {
			return err
		}
		f.be.Axpy(1, f.ld, logdet)
		in = out
	}
	f.fwdOK = !f.infer
	return nil
}

// Inverse sets x = T⁻¹(y) by integrating each block from t = 1 back to 0,
// last block first. It is the inverse of the exact flow; the discrete
// solves invert each other to the solver's accuracy (RK4: O(h⁴);
// Dormand–Prince: about the tolerances).
func (f *FFJORD) Inverse(x, y *native.Tensor) error {
	if err := f.check("Inverse", y); err != nil {
		return err
	}
	f.resize(y.Rows())
	f.fwdOK = false // Inverse reuses the buffers of Forward
	in := y
	for k := len(f.ps) - 1; k >= 0; k-- {
		out := x
		if k > 0 {
			out = f.mid[k-1]
		}
		if err := f.solve(k, out, in, f.probes(k, true), 1, 0, false); err != nil {
			return err
		}
		in = out
	}
	return nil
}

// Backward propagates dy and dlogdet through the blocks in reverse order,
// replaying each block's recorded solve.
func (f *FFJORD) Backward(dx, dy, dlogdet *native.Tensor) error {
	if !f.fwdOK {
		return fmt.Errorf("model: FFJORD.Backward needs a Forward (not in evaluation mode, not followed by Inverse) first")
	}
	g := dy
	for k := len(f.ps) - 1; k >= 0; k-- {
		out := dx
		if k > 0 || dx == nil {
			out = f.grad[k%2]
		}
		var st native.ODEStats
		if f.o.Solver == "rk4" {
			st = f.be.ODESolveRK4Backward(out, f.ps[k].Grad, g, dlogdet, f.ps[k].Value, f.probes(k, false), f.dims, &f.tapes[k])
		} else {
			st = f.be.ODESolveDopri5Backward(out, f.ps[k].Grad, g, dlogdet, f.ps[k].Value, f.probes(k, false), f.dims, &f.tapes[k])
		}
		f.stats.Backwards++
		f.stats.BackwardRows += g.Rows()
		f.stats.BackwardNFE += st.NFE
		f.stats.VJP += st.VJP
		g = out
	}
	return nil
}

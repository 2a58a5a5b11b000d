package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/native"
)

// GlowOptions sizes a Glow flow for vectors (Kingma & Dhariwal, 2018): Blocks
// steps of [ActNorm → invertible linear W = P·L·U → affine coupling], each
// coupling an MLP of Depth hidden layers of Hidden ReLU units with scale
// function Scale. A zero field selects the default (GlowOptions{} is 4
// blocks of 2 × 32, as RealNVPOptions{}).
type GlowOptions struct {
	Blocks  int                // steps (default 4)
	Hidden  int                // units per hidden layer (default 32)
	Depth   int                // hidden layers per coupling network (default 2)
	Scale   native.Scale       // coupling scale (default: exp, bound DefaultBound(Blocks))
	ActNorm native.ActNormKind // ActNorm's scale function (default ActNormExp, s = e^r)
	// Identity makes the flow start as the identity map: ActNorm s = 1,
	// b = 0 and W = I (P = L = U = I), with no data-dependent step. Without
	// it each ActNorm is initialised on the first batch it sees (its output
	// then has zero mean and unit variance per feature) and each W is a
	// rotation drawn as in Glow. GlowFlow sets it: LRMF's T must start at the
	// identity, the map that moves nothing.
	Identity bool
}

var glowDefaults = GlowOptions{Blocks: 4, Hidden: 32, Depth: 2, ActNorm: native.ActNormExp}

func (o GlowOptions) withDefaults() GlowOptions {
	d := glowDefaults
	if o.Blocks == 0 {
		o.Blocks = d.Blocks
	}
	if o.Hidden == 0 {
		o.Hidden = d.Hidden
	}
	if o.Depth == 0 {
		o.Depth = d.Depth
	}
	if o.Scale.Kind == 0 {
		o.Scale = defaultScale(o.Blocks)
	}
	if o.ActNorm == 0 {
		o.ActNorm = d.ActNorm
	}
	return o
}

func (o GlowOptions) validate(dim int) error {
	if o.ActNorm != native.ActNormExp && o.ActNorm != native.ActNormSoftplus {
		return fmt.Errorf("model: Glow: unknown ActNorm kind %d", o.ActNorm)
	}
	r := RealNVPOptions{Blocks: o.Blocks, Hidden: o.Hidden, Depth: o.Depth, Scale: o.Scale}
	if err := r.validate(dim); err != nil {
		return fmt.Errorf("model: Glow: %w", err)
	}
	return nil
}

// fixedRand returns a generator that depends only on (what, d, k): the
// fixed permutations and rotations of a flow are then the same in every
// build of it, so they need no place among the parameters or in a
// checkpoint, and a run's seed only moves the trained weights' start.
func fixedRand(what uint64, d, k int) *rand.Rand {
	return rand.New(rand.NewPCG(0x6c726d66_676c6f77^what, uint64(d)<<32|uint64(k)))
}

// ---- ActNorm ---------------------------------------------------------------

// actNorm is y = (x + b)·s(r) per feature with ln|det| = Σ_j ln s(r_j).
// While b holds NaN (its state when built without Identity) a forward first
// sets b = −mean and s = 1/std of its input batch. The NaN lives in the
// parameters, not in a flag: values loaded over it (a checkpoint,
// CopyParams) are kept, so a resumed run continues with them, and
// parameters reset to the built state (ShiftTest's refits) initialise again
// on their next data. The check reads b (D values) on every forward.
type actNorm struct {
	be   native.Backend
	d    int
	kind native.ActNormKind
	r, b *Param
	x    *native.Tensor // last forward input
	host []float64      // d scratch
}

func newActNorm(be native.Backend, name string, d int, kind native.ActNormKind, identity bool) *actNorm {
	a := &actNorm{be: be, d: d, kind: kind, r: newParam(be, name+".r", 1, d), b: newParam(be, name+".b", 1, d),
		host: make([]float64, d)}
	for j := range a.host {
		a.host[j] = actNormR(kind, 1)
	}
	be.Upload(a.r.Value, a.host)
	if !identity { // else b = 0
		be.Fill(a.b.Value, math.NaN())
	}
	return a
}

// actNormR returns the r with s(r) = s: ln s (exp) or softplus⁻¹(s) − 2.
func actNormR(kind native.ActNormKind, s float64) float64 {
	if kind == native.ActNormExp {
		return math.Log(s)
	}
	return s + math.Log(-math.Expm1(-s)) - 2 // ln(e^s − 1) − 2
}

// pending reports whether b still holds the NaN of an uninitialised layer.
func (a *actNorm) pending() bool {
	a.be.Download(a.host, a.b.Value)
	return math.IsNaN(a.host[0])
}

// initFrom sets b_j = −mean_i x_ij and s_j = 1/std_i x_ij (std taken as 1
// where it is below 1e-6 or n < 2).
func (a *actNorm) initFrom(x *native.Tensor) {
	n, d := x.Rows(), a.d
	xs := make([]float64, n*d) // once per layer
	a.be.Download(xs, x)
	r, b := make([]float64, d), make([]float64, d)
	for j := 0; j < d; j++ {
		mu := 0.0
		for i := 0; i < n; i++ {
			mu += xs[i*d+j]
		}
		mu /= float64(max(n, 1))
		v := 0.0
		for i := 0; i < n; i++ {
			v += (xs[i*d+j] - mu) * (xs[i*d+j] - mu)
		}
		sd := 1.0
		if n > 1 && v/float64(n) > 1e-12 {
			sd = math.Sqrt(v / float64(n))
		}
		b[j], r[j] = -mu, actNormR(a.kind, 1/sd)
	}
	a.be.Upload(a.b.Value, b)
	a.be.Upload(a.r.Value, r)
}

func (a *actNorm) forward(y, logdet, x *native.Tensor) {
	if a.pending() {
		a.initFrom(x)
	}
	a.x = x
	a.be.ActNormForward(y, logdet, x, a.r.Value, a.b.Value, a.kind)
}

func (a *actNorm) inverse(x, y *native.Tensor) error {
	if a.pending() {
		return fmt.Errorf("model: Glow.Inverse before the ActNorm layers have seen data (run Forward first)")
	}
	a.be.ActNormInverse(x, y, a.r.Value, a.b.Value, a.kind)
	return nil
}

func (a *actNorm) backward(dx, dy, dlogdet *native.Tensor) {
	a.be.ActNormBackward(dx, a.r.Grad, a.b.Grad, a.x, a.r.Value, a.b.Value, dy, dlogdet, a.kind)
}

// ---- the LU-parameterised linear layer -------------------------------------

// luLinear is y_i = W x_i with W = P·L·U: P a fixed permutation, L unit
// lower-triangular (parameter L, its strictly lower part), U upper with the
// strictly upper part from parameter U and diagonal U_kk = sign_k·e^(logs_k)
// (parameter logs, fixed signs), so ln|det W| = Σ_k logs_k = Σ_k ln|U_kk|.
// The parts of L and U outside their triangles are unused and get zero
// gradients. The inverse is two triangular solves (Backend.LUSolve).
//
// W, the packed lu and Σ logs are assembled on the backend from the
// parameters with Backend ops (masks, GEMMs, Mul; see build), and the
// backward is GEMMs and masks too: a forward and a backward move nothing
// between host and device. The masks, P and the signs are constants
// uploaded once.
type luLinear struct {
	be         native.Backend
	d          int
	l, u, logs *Param
	perm       []int32   // P[perm[k], k] = 1
	sign       []float64 // signs of U's diagonal
	// assembled by build: W = P·L·U, P·L (L unit lower), U, diag(U),
	// Σ logs; by inverse: the packed lu (L strictly below the diagonal, U on
	// and above it)
	w, pl, um, ud, ldT, lu *native.Tensor
	zero                   *native.Tensor // 1×d zeros (bias of AffineForward)
	x                      *native.Tensor // last forward input
	// constants: strictly lower / strictly upper masks, I, P (d×d), the
	// signs and ones as 1×d rows, ones as a d×1 column
	maskL, maskU, eye, p, signs, onesRow, onesCol *native.Tensor
	// scratch: L's strict lower part, G = ∂L/∂W, Gm = PᵀG, a product,
	// s = sign⊙e^logs (1×d), the backward's 1×1 Σ dlogdet
	tmp, dw, gm, prod, s, s11 *native.Tensor
	ones                      [2]*native.Tensor // n×1 ones of the last two batch sizes
	onesNext                  int
	cols                      [4][2]*native.Tensor // n×1 views of the callers' vectors
	colNext                   int
	sh                        []float64 // host scratch for construction
}

// newLULinear returns W = I (identity), or else Glow's start: W a random
// rotation Q (Haar, from rng) factorised with partial pivoting as P·L·U.
func newLULinear(be native.Backend, name string, d int, identity bool, rng *rand.Rand) *luLinear {
	sq := func() *native.Tensor { return be.New(d, d) }
	f := &luLinear{be: be, d: d, l: newParam(be, name+".L", d, d), u: newParam(be, name+".U", d, d),
		logs: newParam(be, name+".logs", 1, d), perm: make([]int32, d), sign: make([]float64, d),
		w: sq(), lu: sq(), um: sq(), ud: sq(), ldT: be.New(1, 1), zero: be.New(1, d),
		maskL: sq(), maskU: sq(), eye: sq(), p: sq(), signs: be.New(1, d), onesRow: be.New(1, d),
		onesCol: be.New(d, 1), tmp: sq(), pl: sq(), dw: sq(), gm: sq(), prod: sq(), s: be.New(1, d), s11: be.New(1, 1),
		sh: make([]float64, d)}
	for k := range f.perm {
		f.perm[k], f.sign[k] = int32(k), 1
	}
	if !identity {
		q := randomRotation(d, rng)
		lower, upper, perm := pivotedLU(q, d)
		for k := 0; k < d; k++ {
			f.perm[k] = int32(perm[k])
			u := upper[k*d+k]
			f.sign[k], f.sh[k] = math.Copysign(1, u), math.Log(math.Abs(u))
			upper[k*d+k], lower[k*d+k] = 0, 0
		}
		be.Upload(f.l.Value, lower)
		be.Upload(f.u.Value, upper)
		be.Upload(f.logs.Value, f.sh)
	}
	ml, mu, eye, p := make([]float64, d*d), make([]float64, d*d), make([]float64, d*d), make([]float64, d*d)
	for r := 0; r < d; r++ {
		for c := 0; c < d; c++ {
			switch {
			case c < r:
				ml[r*d+c] = 1
			case c > r:
				mu[r*d+c] = 1
			default:
				eye[r*d+c] = 1
			}
		}
		p[int(f.perm[r])*d+r] = 1
	}
	be.Upload(f.maskL, ml)
	be.Upload(f.maskU, mu)
	be.Upload(f.eye, eye)
	be.Upload(f.p, p)
	be.Upload(f.signs, f.sign)
	be.Fill(f.onesRow, 1)
	be.Fill(f.onesCol, 1)
	return f
}

// randomRotation returns a d×d orthogonal matrix drawn from the Haar measure:
// Gram–Schmidt on Gaussian columns (QR with R's diagonal made positive).
func randomRotation(d int, rng *rand.Rand) []float64 {
	q := make([]float64, d*d) // column-major while building: q[c*d+r]
	for c := 0; c < d; c++ {
		col := q[c*d : (c+1)*d]
		for r := range col {
			col[r] = rng.NormFloat64()
		}
		for pass := 0; pass < 2; pass++ { // twice is enough (Kahan)
			for p := 0; p < c; p++ {
				prev, dot := q[p*d:(p+1)*d], 0.0
				for r := range col {
					dot += prev[r] * col[r]
				}
				for r := range col {
					col[r] -= dot * prev[r]
				}
			}
		}
		nrm := 0.0
		for _, v := range col {
			nrm += v * v
		}
		nrm = math.Sqrt(nrm)
		for r := range col {
			col[r] /= nrm
		}
	}
	out := make([]float64, d*d) // row-major
	for c := 0; c < d; c++ {
		for r := 0; r < d; r++ {
			out[r*d+c] = q[c*d+r]
		}
	}
	return out
}

// pivotedLU factorises the d×d row-major a as a = P·L·U by Gaussian
// elimination with partial pivoting: it returns L (unit diagonal stored),
// U and perm with P[perm[k], k] = 1, i.e. row k of L·U is row perm[k] of a.
func pivotedLU(a []float64, d int) (lower, upper []float64, perm []int) {
	m := append([]float64(nil), a...)
	lower = make([]float64, d*d)
	perm = make([]int, d)
	for k := range perm {
		perm[k] = k
	}
	for k := 0; k < d; k++ {
		p := k
		for i := k + 1; i < d; i++ {
			if math.Abs(m[i*d+k]) > math.Abs(m[p*d+k]) {
				p = i
			}
		}
		if p != k {
			for j := 0; j < d; j++ {
				m[k*d+j], m[p*d+j] = m[p*d+j], m[k*d+j]
				lower[k*d+j], lower[p*d+j] = lower[p*d+j], lower[k*d+j]
			}
			perm[k], perm[p] = perm[p], perm[k]
		}
		for i := k + 1; i < d; i++ {
			f := m[i*d+k] / m[k*d+k]
			lower[i*d+k] = f
			for j := k; j < d; j++ {
				m[i*d+j] -= f * m[k*d+j]
			}
		}
	}
	for k := 0; k < d; k++ {
		lower[k*d+k] = 1
		for j := 0; j < k; j++ {
			m[k*d+j] = 0
		}
	}
	return lower, m, perm
}

// build assembles, on the backend, P·L = P + P·(L_param⊙maskL) (L unit
// lower; P only moves entries, so both terms are exact and do not
// overlap), diag(U) = I⊙(1·s) with s = sign⊙e^logs, U = U_param⊙maskU +
// diag(U), W = (P·L)·U and ldT = Σ_k logs_k (1×1). No host transfer.
func (f *luLinear) build() {
	be := f.be
	be.Mul(f.tmp, f.l.Value, f.maskL) // strict lower part of L
	be.Copy(f.pl, f.p)
	be.Gemm(false, false, 1, f.p, f.tmp, 1, f.pl)
	// s = (sign + 0)·e^logs, and Σ logs into ldT
	be.Fill(f.ldT, 0)
	be.ActNormForward(f.s, f.ldT, f.signs, f.logs.Value, f.zero, native.ActNormExp)
	be.Gemm(false, false, 1, f.onesCol, f.s, 0, f.ud) // every row is s
	be.Mul(f.ud, f.ud, f.eye)
	be.Mul(f.um, f.u.Value, f.maskU)
	be.Axpy(1, f.ud, f.um)
	be.Gemm(false, false, 1, f.pl, f.um, 0, f.w)
}

// onesN returns an n×1 column of ones (the last two batch sizes are kept,
// so alternating two sizes allocates nothing).
func (f *luLinear) onesN(n int) *native.Tensor {
	for _, t := range f.ones {
		if t != nil && t.Rows() == n {
			return t
		}
	}
	t := f.be.New(n, 1)
	f.be.Fill(t, 1)
	f.ones[f.onesNext] = t
	f.onesNext = (f.onesNext + 1) % len(f.ones)
	return t
}

// col returns the vector t as an n×1 Tensor (itself, or a cached view).
func (f *luLinear) col(t *native.Tensor) *native.Tensor {
	if t.Cols() == 1 {
		return t
	}
	for _, e := range f.cols {
		if e[0] == t {
			return e[1]
		}
	}
	c := native.Reshape(t, t.Len(), 1)
	f.cols[f.colNext] = [2]*native.Tensor{t, c}
	f.colNext = (f.colNext + 1) % len(f.cols)
	return c
}

// addLogDet sets logdet[i] += scale·Σ_k logs_k (logdet a vector of n) from
// the ldT of the last build, on the backend.
func (f *luLinear) addLogDet(logdet *native.Tensor, scale float64) {
	f.be.Gemm(false, false, scale, f.onesN(logdet.Len()), f.ldT, 1, f.col(logdet))
}

func (f *luLinear) forward(y, logdet, x *native.Tensor) {
	f.build()
	f.x = x
	f.be.AffineForward(y, nil, x, f.w, f.zero, 0)
	if logdet != nil {
		f.addLogDet(logdet, 1)
	}
}

// inverse solves with the packed lu = L_param⊙maskL + U (L strictly below
// the diagonal, U on and above it), built on the backend.
func (f *luLinear) inverse(x, y *native.Tensor) {
	f.build()
	f.be.Copy(f.lu, f.tmp)
	f.be.Axpy(1, f.um, f.lu)
	f.be.LUSolve(x, y, f.lu, f.perm)
}

// backward sets dx = W ᵀdy per row (dx n×D, not nil) and, with
// G = Σ_i dy_i x_iᵀ = ∂L/∂W and Gm = PᵀG = ∂L/∂(L·U):
//
//	∂L/∂L = strictly lower part of Gm·Uᵀ,  ∂L/∂U = strictly upper part of Lᵀ·Gm,
//	∂L/∂logs_k = (Lᵀ·Gm)_kk·U_kk + Σ_i dlogdet_i.
func (f *luLinear) backward(dx, dy, dlogdet *native.Tensor) {
	f.backwardScaled(dx, dy, dlogdet, 1)
}

// backwardScaled is backward with the log-det term scale·Σ_i dlogdet_i on
// every ∂/∂logs_k (dlogdet nil: none), all on the backend: the image GLOW
// applies W to every pixel row and owes each image h·w·Σ_k logs_k, so its
// scale is h·w.
func (f *luLinear) backwardScaled(dx, dy, dlogdet *native.Tensor, scale float64) {
	be := f.be
	be.Gemm(false, false, 1, dy, f.w, 0, dx)
	be.Gemm(true, false, 1, dy, f.x, 0, f.dw)
	be.Gemm(true, false, 1, f.p, f.dw, 0, f.gm) // Gm = PᵀG: exact row permutation
	be.Gemm(false, true, 1, f.gm, f.um, 0, f.prod)
	be.Mul(f.l.Grad, f.prod, f.maskL)
	be.Gemm(true, false, 1, f.pl, f.dw, 0, f.prod) // Lᵀ·Gm = (P·L)ᵀ·G, as PᵀP = I
	be.Mul(f.u.Grad, f.prod, f.maskU)
	be.Mul(f.prod, f.prod, f.ud) // (Lᵀ·Gm)_kk·U_kk on the diagonal, 0 elsewhere
	be.Gemm(false, false, 1, f.onesRow, f.prod, 0, f.logs.Grad)
	if dlogdet != nil && scale != 0 {
		be.Gemm(true, false, scale, f.col(dlogdet), f.onesN(dlogdet.Len()), 0, f.s11)
		be.Gemm(false, false, 1, f.s11, f.onesRow, 1, f.logs.Grad)
	}
}

// ---- the Glow flow ----------------------------------------------------------

// glowStep is one step of flow: ActNorm, then W = P·L·U, then a coupling.
type glowStep struct {
	an *actNorm
	lu *luLinear
	c  *coupling
}

// Glow is a Glow flow on R^D: Blocks steps of [ActNorm → W = P·L·U →
// affine coupling] (the coupling as in RealNVP, alternating halves), so
//
//	ln|det ∂T/∂x| = Σ_steps (Σ_j ln s_j + Σ_k ln|U_kk| + Σ_j ln s_coupling,j).
//
// The couplings' networks end in zero-initialised layers. With
// GlowOptions.Identity the whole flow starts as the identity; otherwise the
// ActNorm layers are set from the first batch Forward sees and each W
// starts as a random rotation (the permutations and rotations depend only on
// D and the step, not on rng: see fixedRand).
type Glow struct {
	be    native.Backend
	d     int
	steps []glowStep
	ps    []*Param

	n    int
	mid  []*native.Tensor // 3 per step, the last one unused (it is y)
	grad [2]*native.Tensor
}

// NewGlow returns a Glow flow on R^d; rng draws the coupling networks'
// weights.
func NewGlow(be native.Backend, d int, o GlowOptions, rng *rand.Rand) (*Glow, error) {
	o = o.withDefaults()
	if err := o.validate(d); err != nil {
		return nil, err
	}
	f := &Glow{be: be, d: d}
	ro := RealNVPOptions{Blocks: o.Blocks, Hidden: o.Hidden, Depth: o.Depth, Scale: o.Scale}
	for k := 0; k < o.Blocks; k++ {
		name := fmt.Sprintf("block%d", k)
		an := newActNorm(be, name+".an", d, o.ActNorm, o.Identity)
		lu := newLULinear(be, name+".lu", d, o.Identity, fixedRand(1, d, k))
		c, err := newCoupling(be, name, d, k, ro, rng)
		if err != nil {
			return nil, err
		}
		f.steps = append(f.steps, glowStep{an, lu, c})
		f.ps = append(f.ps, an.r, an.b, lu.l, lu.u, lu.logs)
		f.ps = append(f.ps, c.net.ps...)
	}
	packParams(be, f.ps) // one arena: Adam and the clip in one pass each
	return f, nil
}

// GlowFlow returns a FlowMaker for a Glow flow with options o that starts
// as the identity (o.Identity set).
func GlowFlow(o GlowOptions) FlowMaker {
	return func(be native.Backend, dim int, rng *rand.Rand) (Flow, error) {
		o.Identity = true
		return NewGlow(be, dim, o, rng)
	}
}

// GlowDensity returns a DensityMaker for a Glow density (standard-normal
// base) with Glow's initialisation unless o.Identity.
func GlowDensity(o GlowOptions) DensityMaker {
	return densityOf(func(be native.Backend, dim int, rng *rand.Rand) (*Glow, error) {
		return NewGlow(be, dim, o, rng)
	})
}

// Dim returns D.
func (f *Glow) Dim() int { return f.d }

// Params returns, per step, the ActNorm r and b, the LU layer's L, U and
// logs, and the coupling network's weights and biases.
func (f *Glow) Params() []*Param { return f.ps }

func (f *Glow) resize(n int) {
	if f.n == n && f.mid != nil {
		return
	}
	f.n = n
	f.mid = f.mid[:0]
	for k := 0; k < 3*len(f.steps); k++ {
		f.mid = append(f.mid, f.be.New(n, f.d))
	}
	f.grad[0], f.grad[1] = f.be.New(n, f.d), f.be.New(n, f.d)
}

func (f *Glow) check(op string, x *native.Tensor) error {
	if x.Cols() != f.d {
		return fmt.Errorf("model: Glow.%s: input has %d columns, the flow has dimension %d", op, x.Cols(), f.d)
	}
	return nil
}

// Forward sets y = T(x) and adds the steps' log-dets to logdet[i].
func (f *Glow) Forward(y, logdet, x *native.Tensor) error {
	if err := f.check("Forward", x); err != nil {
		return err
	}
	f.resize(x.Rows())
	in := x
	for k, s := range f.steps {
		a, l := f.mid[3*k], f.mid[3*k+1]
		out := y
		if k+1 < len(f.steps) {
			out = f.mid[3*k+2]
		}
		s.an.forward(a, logdet, in)
		s.lu.forward(l, logdet, a)
		s.c.forward(out, logdet, l)
		in = out
	}
	return nil
}

// Inverse sets x = T⁻¹(y), undoing the steps in reverse order.
func (f *Glow) Inverse(x, y *native.Tensor) error {
	if err := f.check("Inverse", y); err != nil {
		return err
	}
	f.resize(y.Rows())
	in := y
	for k := len(f.steps) - 1; k >= 0; k-- {
		s := f.steps[k]
		l, a := f.mid[3*k+1], f.mid[3*k]
		s.c.inverse(l, in)
		s.lu.inverse(a, l)
		out := x
		if k > 0 {
			out = f.mid[3*k-1]
		}
		if err := s.an.inverse(out, a); err != nil {
			return err
		}
		in = out
	}
	return nil
}

// Backward propagates dy and dlogdet through the steps in reverse order.
func (f *Glow) Backward(dx, dy, dlogdet *native.Tensor) error {
	if f.n == 0 {
		return fmt.Errorf("model: Glow.Backward called before Forward")
	}
	g := dy
	for k := len(f.steps) - 1; k >= 0; k-- {
		s := f.steps[k]
		s.c.backward(f.grad[0], g, dlogdet)
		s.lu.backward(f.grad[1], f.grad[0], dlogdet)
		out := f.grad[1] // in place
		if k == 0 {
			out = dx
		}
		s.an.backward(out, f.grad[1], dlogdet)
		g = f.grad[1]
	}
	return nil
}

package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/native"
)

// RealNVPOptions sizes a Real NVP flow (Dinh et al., 2017): Blocks affine
// coupling layers, each with an MLP of Depth hidden layers of Hidden ReLU
// units, and the scale function Scale. A zero field selects the default
// below (the network lrmf align uses); PaperRealNVP is the paper's.
type RealNVPOptions struct {
	Blocks int          // coupling layers (default 4; paper: 4)
	Hidden int          // units per hidden layer (default 32; paper: 512)
	Depth  int          // hidden layers per coupling network (default 2; paper: 2)
	Scale  native.Scale // default: exp with soft bound DefaultBound(Blocks) (4 up to 4 blocks)
}

// PaperRealNVP is the network of the LRMF paper: 4 blocks of 2 × 512 ReLU.
var PaperRealNVP = RealNVPOptions{Blocks: 4, Hidden: 512, Depth: 2}

// DefaultScale is the soft-bounded exponential scale of a network of up
// to 4 blocks (DefaultBound gives the bound for deeper ones).
var DefaultScale = native.Scale{Kind: native.ScaleExp, Bound: 4}

// DefaultBound is the exp scale's default soft bound B (ln s ∈ (−B, B))
// for a network of the given number of coupling blocks: DefaultScale.Bound
// = 4 up to 4 blocks, 16/blocks beyond, so that the total log-scale one
// coordinate can receive (it is transformed in about half the blocks)
// stays within ±8 nats whatever the depth. Why: a density fitted to A is
// evaluated on B's points when θS starts from θA*; where B leaves A's
// support, the couplings' scales can all sit at the bound, and with 8
// blocks at bound 4 (e^16 per coordinate) the moons pair's first joint
// losses were ~10⁸ nats and θS never recovered (held-out LRMF 10⁷–10¹⁰);
// with bound 2 they were ~10⁵, as with 4 blocks, and the runs ended sane.
func DefaultBound(blocks int) float64 {
	if blocks <= 4 {
		return DefaultScale.Bound
	}
	return DefaultScale.Bound * 4 / float64(blocks)
}

// defaultScale is the scale a zero RealNVPOptions.Scale or
// GlowOptions.Scale selects: exp with bound DefaultBound(blocks).
func defaultScale(blocks int) native.Scale {
	return native.Scale{Kind: native.ScaleExp, Bound: DefaultBound(blocks)}
}

// realNVPDefaults is what the zero fields of a RealNVPOptions select: 4
// blocks of 2 × 32 ReLU (wider networks are slower for no gain on 2-D
// data; the paper's 512 is PaperRealNVP).
var realNVPDefaults = RealNVPOptions{Blocks: 4, Hidden: 32, Depth: 2}

func (o RealNVPOptions) withDefaults() RealNVPOptions {
	d := realNVPDefaults
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
	return o
}

func (o RealNVPOptions) validate(dim int) error {
	switch {
	case dim < 2:
		return fmt.Errorf("model: Real NVP needs at least 2 dimensions to split into halves, the data have %d", dim)
	case o.Blocks < 1 || o.Hidden < 1 || o.Depth < 1:
		return fmt.Errorf("model: Real NVP blocks=%d hidden=%d depth=%d must be positive", o.Blocks, o.Hidden, o.Depth)
	case o.Blocks > 1<<10 || o.Hidden > 1<<16 || o.Depth > 1<<8:
		return fmt.Errorf("model: Real NVP blocks=%d hidden=%d depth=%d: too large (at most 1024 blocks, 65536 units, 256 layers)", o.Blocks, o.Hidden, o.Depth)
	case o.Scale.Kind == native.ScaleExp && !(o.Scale.Bound > 0):
		return fmt.Errorf("model: Real NVP exp scale needs a positive bound, got %v", o.Scale.Bound)
	case o.Scale.Kind != native.ScaleExp && o.Scale.Kind != native.ScaleSigmoid:
		return fmt.Errorf("model: Real NVP: unknown scale kind %d", o.Scale.Kind)
	}
	return nil
}

// coupling is one affine coupling layer on R^D. Columns [c0, c0+dc) pass
// through unchanged and condition an MLP whose output h = [μ | r] transforms
// columns [t0, t0+dt):
//
//	y_t = x_t ⊙ s(r) + μ,  ln|det ∂y/∂x| = Σ_j ln s(r_j).
type coupling struct {
	be                native.Backend
	d, c0, dc, t0, dt int
	sc                native.Scale
	net               *mlp

	x, h *native.Tensor // last Forward input and network output
	dh   *native.Tensor // ∂L/∂h
	n    int
}

// newCoupling builds block k: even blocks transform the second half of the
// columns given the first, odd blocks the first given the second — the
// "alternating halves" permutation (a swap when D = 2).
func newCoupling(be native.Backend, name string, d, k int, o RealNVPOptions, rng *rand.Rand) (*coupling, error) {
	half := d / 2
	c := &coupling{be: be, d: d, sc: o.Scale}
	if k%2 == 0 {
		c.c0, c.dc, c.t0, c.dt = 0, half, half, d-half
	} else {
		c.c0, c.dc, c.t0, c.dt = d-half, half, 0, d-half
	}
	var err error
	c.net, err = newMLP(be, name, c.dc, o.Hidden, o.Depth, 2*c.dt, rng)
	return c, err
}

func (c *coupling) resize(n int) {
	if c.n != n || c.dh == nil {
		c.n = n
		c.dh = c.be.New(n, 2*c.dt)
	}
}

// forward: the network reads the conditioning columns of x in place.
func (c *coupling) forward(y, logdet, x *native.Tensor) {
	c.resize(x.Rows())
	c.x, c.h = x, c.net.forwardAt(x, c.c0)
	c.be.CouplingForward(y, logdet, x, c.h, c.t0, c.sc)
}

func (c *coupling) inverse(x, y *native.Tensor) {
	c.resize(y.Rows())
	h := c.net.forwardAt(y, c.c0)
	c.be.CouplingInverse(x, y, h, c.t0, c.sc)
}

// backward sets the network's gradients and, when dx is not nil, dx: the
// network's input gradient is added into dx's conditioning columns by its
// last GemmEx (beta = 1), on top of what CouplingBackward wrote there.
func (c *coupling) backward(dx, dy, dlogdet *native.Tensor) {
	c.be.CouplingBackward(dx, c.dh, c.x, c.h, dy, dlogdet, c.t0, c.sc)
	c.net.backwardInto(c.dh, dx, c.c0, 1)
}

// colPerm is x ↦ x·Π for the permutation matrix Π_ij = [i = π(j)], so
// (x·Π)_j = x_π(j), and the coupling it conjugates; u, v are the coupling's
// input and output (n×D) and du its input gradient.
type colPerm struct {
	p        *native.Tensor // Π, D×D
	u, v, du *native.Tensor
}

func newColPerm(be native.Backend, d, k int) *colPerm {
	pi := fixedRand(2, d, k).Perm(d)
	m := make([]float64, d*d)
	for j, i := range pi {
		m[i*d+j] = 1
	}
	c := &colPerm{p: be.New(d, d)}
	be.Upload(c.p, m)
	return c
}

// RealNVP is a Real NVP flow: a chain of affine coupling layers with
// alternating halves. For D > 2 every block k ≥ 1 works in its own fixed
// column order: x ↦ (c_k(x·Π_k))·Π_kᵀ with Π_k a permutation matrix
// (ln|det| = 0, exact in floating point), so over the blocks every column
// conditions the others (fixed halves alone never mix within a half). The
// permutations depend only on D and k (see fixedRand). For D ≤ 2 there are
// none: alternating halves already swap the two columns. Every coupling's
// network ends in a zero-initialised layer, so the flow starts as the
// identity. Its parameters live in one Arena (ArenasOf(f.Params(), nil)
// finds it), so that an optimiser runs over all of them in one pass.
type RealNVP struct {
	be     native.Backend
	d      int
	blocks []*coupling
	perms  []*colPerm // Π_k of block k; nil for D ≤ 2 and for k = 0
	ps     []*Param

	n    int
	mid  []*native.Tensor // outputs of blocks 0..K−2 (inputs of 1..K−1)
	grad [2]*native.Tensor
}

// NewRealNVP returns a Real NVP flow on R^d.
func NewRealNVP(be native.Backend, d int, o RealNVPOptions, rng *rand.Rand) (*RealNVP, error) {
	o = o.withDefaults()
	if err := o.validate(d); err != nil {
		return nil, err
	}
	f := &RealNVP{be: be, d: d}
	for k := 0; k < o.Blocks; k++ {
		c, err := newCoupling(be, fmt.Sprintf("block%d", k), d, k, o, rng)
		if err != nil {
			return nil, err
		}
		f.blocks = append(f.blocks, c)
		f.ps = append(f.ps, c.net.ps...)
	}
	if d > 2 {
		f.perms = make([]*colPerm, len(f.blocks))
		for k := 1; k < len(f.blocks); k++ {
			f.perms[k] = newColPerm(be, d, k)
		}
	}
	packParams(be, f.ps)
	return f, nil
}

// RealNVPFlow returns a FlowMaker for RealNVP with options o.
func RealNVPFlow(o RealNVPOptions) FlowMaker {
	return func(be native.Backend, dim int, rng *rand.Rand) (Flow, error) {
		return NewRealNVP(be, dim, o, rng)
	}
}

// RealNVPDensity returns a DensityMaker for a Real NVP density.
func RealNVPDensity(o RealNVPOptions) DensityMaker {
	return densityOf(func(be native.Backend, dim int, rng *rand.Rand) (*RealNVP, error) {
		return NewRealNVP(be, dim, o, rng)
	})
}

// Dim returns D.
func (f *RealNVP) Dim() int { return f.d }

// Params returns every coupling network's weights and biases.
func (f *RealNVP) Params() []*Param { return f.ps }

func (f *RealNVP) resize(n int) {
	if f.n == n && (len(f.mid) > 0 || len(f.blocks) == 1) {
		return
	}
	f.n = n
	f.mid = f.mid[:0]
	for k := 0; k+1 < len(f.blocks); k++ {
		f.mid = append(f.mid, f.be.New(n, f.d))
	}
	f.grad[0], f.grad[1] = f.be.New(n, f.d), f.be.New(n, f.d)
	for _, p := range f.perms {
		if p != nil {
			p.u, p.v, p.du = f.be.New(n, f.d), f.be.New(n, f.d), f.be.New(n, f.d)
		}
	}
}

// forward runs block k: out = c_k(in), or (c_k(in·Π_k))·Π_kᵀ.
func (f *RealNVP) forward(k int, out, logdet, in *native.Tensor) {
	if f.perms == nil || f.perms[k] == nil {
		f.blocks[k].forward(out, logdet, in)
		return
	}
	p := f.perms[k]
	f.be.Gemm(false, false, 1, in, p.p, 0, p.u)
	f.blocks[k].forward(p.v, logdet, p.u)
	f.be.Gemm(false, true, 1, p.v, p.p, 0, out)
}

// inverse undoes block k: out = c_k⁻¹(in), or (c_k⁻¹(in·Π_k))·Π_kᵀ.
func (f *RealNVP) inverse(k int, out, in *native.Tensor) {
	if f.perms == nil || f.perms[k] == nil {
		f.blocks[k].inverse(out, in)
		return
	}
	p := f.perms[k]
	f.be.Gemm(false, false, 1, in, p.p, 0, p.v)
	f.blocks[k].inverse(p.u, p.v)
	f.be.Gemm(false, true, 1, p.u, p.p, 0, out)
}

// backward runs block k's backward: dv = dy·Π_k, then the coupling's, then
// dx = du·Π_kᵀ (dx not nil for k ≥ 1).
func (f *RealNVP) backward(k int, dx, dy, dlogdet *native.Tensor) {
	if f.perms == nil || f.perms[k] == nil {
		f.blocks[k].backward(dx, dy, dlogdet)
		return
	}
	p := f.perms[k]
	f.be.Gemm(false, false, 1, dy, p.p, 0, p.v) // v is not needed after the forward
	f.blocks[k].backward(p.du, p.v, dlogdet)
	f.be.Gemm(false, true, 1, p.du, p.p, 0, dx)
}

func (f *RealNVP) check(op string, x *native.Tensor) error {
	if x.Cols() != f.d {
		return fmt.Errorf("model: RealNVP.%s: input has %d columns, the flow has dimension %d", op, x.Cols(), f.d)
	}
	return nil
}

// Forward sets y = T(x) and adds Σ_blocks Σ_j ln s_j to logdet[i].
func (f *RealNVP) Forward(y, logdet, x *native.Tensor) error {
	if err := f.check("Forward", x); err != nil {
		return err
	}
	f.resize(x.Rows())
	in := x
	for k := range f.blocks {
		out := y
		if k+1 < len(f.blocks) {
			out = f.mid[k]
		}
		f.forward(k, out, logdet, in)
		in = out
	}
	return nil
}

// Inverse sets x = T⁻¹(y), running the blocks backwards.
func (f *RealNVP) Inverse(x, y *native.Tensor) error {
	if err := f.check("Inverse", y); err != nil {
		return err
	}
	f.resize(y.Rows())
	in := y
	for k := len(f.blocks) - 1; k >= 0; k-- {
		out := x
		if k > 0 {
			out = f.mid[k-1]
		}
		f.inverse(k, out, in)
		in = out
	}
	return nil
}

// Backward propagates dy and dlogdet through the blocks in reverse order.
func (f *RealNVP) Backward(dx, dy, dlogdet *native.Tensor) error {
	if f.n == 0 {
		return fmt.Errorf("model: RealNVP.Backward called before Forward")
	}
	g := dy
	for k := len(f.blocks) - 1; k >= 0; k-- {
		out := dx
		if k > 0 {
			out = f.grad[k%2]
		}
		f.backward(k, out, g, dlogdet)
		g = out
	}
	return nil
}

package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/native"
)

// GLOWBackToBack is the back-to-back flow of the LRMF paper's GLOW
// experiment, T(x) = G2⁻¹(G1(x)) for two GLOW flows G1, G2 on the same
// images (n×D rows, D = H·W·C, NHWC), with
//
//	ln|det ∂T/∂x| = ln|det ∂G1/∂x (x)| − ln|det ∂G2/∂x (T(x))|
//
// and T⁻¹ = G1⁻¹∘G2. A single image GLOW cannot be an LRMF map T (its
// squeezes and splits reorder the pixels even with identity layers); two
// GLOWs back to back map images to images, and with G2 = G1 (same
// parameters) T is the identity, the start LRMF needs. From fitted models
// G_B of B and G_A of A, G1 = G_B and G2 = G_A give the paper's
// T(b) = G_A⁻¹(G_B(b)).
//
// Backward differentiates both GLOWs (G2 through GLOW.InverseBackward);
// Freeze removes one from Params, e.g. to keep G_A fixed.
type GLOWBackToBack struct {
	be      native.Backend
	g1, g2  *GLOW
	frozen  [2]bool
	ps      []*Param
	n       int
	u, du   *native.Tensor // G1(x) and ∂L/∂G1(x), n×D
	ld      *native.Tensor // Inverse's unused log-det, n×1
	forward bool           // the last pass was Forward
}

// NewGLOWBackToBack returns T = G2⁻¹∘G1 over g1 and g2, which must be on
// the same backend, image shape and options. T takes them over: their
// parameters are T's (trained in place), renamed "g1.<name>" and
// "g2.<name>" so that T's names are unique.
func NewGLOWBackToBack(g1, g2 *GLOW) (*GLOWBackToBack, error) {
	switch {
	case g1 == nil || g2 == nil || g1 == g2:
		return nil, fmt.Errorf("model: GLOWBackToBack needs two distinct GLOWs")
	case g1.be != g2.be:
		return nil, fmt.Errorf("model: GLOWBackToBack: the GLOWs are on different backends")
	case g1.shape != g2.shape || g1.o != g2.o:
		return nil, fmt.Errorf("model: GLOWBackToBack: G1 (%v, %+v) and G2 (%v, %+v) differ", g1.shape, g1.o, g2.shape, g2.o)
	}
	t := &GLOWBackToBack{be: g1.be, g1: g1, g2: g2}
	for i, g := range []*GLOW{g1, g2} {
		for _, p := range g.ps {
			p.Name = fmt.Sprintf("g%d.%s", i+1, p.Name)
		}
	}
	t.setParams()
	return t, nil
}

// NewFreshGLOWBackToBack returns T = G2⁻¹∘G1 with G1 a new GLOW (its
// random weights from rng) and G2 a copy of it, so T is the identity (to
// rounding). Run InitFromData on a batch before training.
func NewFreshGLOWBackToBack(be native.Backend, s ImageShape, o GLOWOptions, rng *rand.Rand) (*GLOWBackToBack, error) {
	g1, err := NewGLOW(be, s, o, rng)
	if err != nil {
		return nil, err
	}
	g2, err := NewGLOW(be, s, o, rng)
	if err != nil {
		return nil, err
	}
	CopyParams(be, g2.ps, g1.ps)
	return NewGLOWBackToBack(g1, g2)
}

// GLOWBackToBackFlow returns a FlowMaker for a fresh back-to-back GLOW on
// images of shape s (the identity map at construction; see
// NewFreshGLOWBackToBack and InitFromData).
func GLOWBackToBackFlow(s ImageShape, o GLOWOptions) FlowMaker {
	return func(be native.Backend, dim int, rng *rand.Rand) (Flow, error) {
		if dim != s.Dim() {
			return nil, fmt.Errorf("model: back-to-back GLOW on %d×%d×%d images has dimension %d, the data have %d", s.H, s.W, s.C, s.Dim(), dim)
		}
		return NewFreshGLOWBackToBack(be, s, o, rng)
	}
}

func (t *GLOWBackToBack) setParams() {
	t.ps = t.ps[:0]
	if !t.frozen[0] {
		t.ps = append(t.ps, t.g1.ps...)
	}
	if !t.frozen[1] {
		t.ps = append(t.ps, t.g2.ps...)
	}
}

// Freeze sets which GLOWs are held fixed: a frozen GLOW's parameters leave
// Params (so an optimiser built afterwards does not move them); Backward
// still propagates through it. Call it before building the optimiser.
func (t *GLOWBackToBack) Freeze(g1, g2 bool) {
	t.frozen = [2]bool{g1, g2}
	t.setParams()
}

// G1 returns the first GLOW (T = G2⁻¹∘G1).
func (t *GLOWBackToBack) G1() *GLOW { return t.g1 }

// G2 returns the second GLOW, applied inverted.
func (t *GLOWBackToBack) G2() *GLOW { return t.g2 }

// Dim returns H·W·C.
func (t *GLOWBackToBack) Dim() int { return t.g1.d }

// Shape returns the image shape.
func (t *GLOWBackToBack) Shape() ImageShape { return t.g1.shape }

// Params returns G1's then G2's parameters, less the frozen ones.
func (t *GLOWBackToBack) Params() []*Param { return t.ps }

func (t *GLOWBackToBack) resize(n int) {
	if t.n == n && t.u != nil {
		return
	}
	t.n = n
	t.u, t.du, t.ld = t.be.New(n, t.g1.d), t.be.New(n, t.g1.d), t.be.New(n, 1)
}

// Forward sets y = G2⁻¹(G1(x)) and adds ln|det ∂G1/∂x (x)| −
// ln|det ∂G2/∂x (y)| to logdet.
func (t *GLOWBackToBack) Forward(y, logdet, x *native.Tensor) error {
	t.resize(x.Rows())
	t.forward = false
	if err := t.g1.Forward(t.u, logdet, x); err != nil {
		return err
	}
	if err := t.g2.InverseLogDet(y, logdet, t.u); err != nil {
		return err
	}
	t.forward = true
	return nil
}

// Inverse sets x = G1⁻¹(G2(y)).
func (t *GLOWBackToBack) Inverse(x, y *native.Tensor) error {
	t.resize(y.Rows())
	t.forward = false
	t.be.Fill(t.ld, 0)
	if err := t.g2.Forward(t.u, t.ld, y); err != nil {
		return err
	}
	return t.g1.Inverse(x, t.u)
}

// Backward propagates dy and dlogdet (n×D, n) of the last Forward: G2's
// inverse product gives ∂L/∂G1(x), G1's backward ∂L/∂x (into dx when not
// nil). Both GLOWs' Grads are set, frozen or not.
func (t *GLOWBackToBack) Backward(dx, dy, dlogdet *native.Tensor) error {
	if !t.forward {
		return fmt.Errorf("model: GLOWBackToBack.Backward called before Forward (or after an Inverse)")
	}
	if err := t.g2.InverseBackward(t.du, dy, dlogdet); err != nil {
		return err
	}
	return t.g1.Backward(dx, t.du, dlogdet)
}

// InitFromData makes T the identity again from data: G1 gets GLOW's
// data-dependent initialisation on the n×D batch x (GLOW.InitFromData)
// and G2 a copy of G1's parameters. It overwrites fitted weights, so it is
// meant for a fresh T.
func (t *GLOWBackToBack) InitFromData(x *native.Tensor) error {
	if err := t.g1.InitFromData(x); err != nil {
		return err
	}
	CopyParams(t.be, t.g2.ps, t.g1.ps)
	t.forward = false
	return nil
}

package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/native"
)

// GLOWOptions sizes a GLOW flow (Kingma & Dhariwal, 2018) on H×W×C images:
// Levels levels, each a squeeze then Steps steps of [ActNorm → invertible
// 1×1 convolution (LU) → affine coupling with a network of Hidden filters],
// and between levels a split that factors out half of the channels. A zero
// field selects the default below (sized for a CPU); PaperGLOW is the
// paper's (supp. §8.3).
type GLOWOptions struct {
	Levels int // L (default 3; paper: 3)
	Steps  int // K per level (default 4; paper: 8)
	Hidden int // F, filters of the coupling networks (default 32; paper: 512)
	// Scale is the couplings' scale function (default ScaleSigmoid,
	// s = sigmoid(h + 2), the paper's). With it a zero-initialised
	// coupling starts at s = sigmoid(2) ≈ 0.88, not the identity; an
	// exp scale (DefaultScale) starts at s = 1, so a GLOW that skips
	// InitFromData (ActNorm at the identity, W a rotation) is then an
	// orthogonal map and its density exactly N(0, I).
	Scale native.Scale
}

// PaperGLOW is the network of the LRMF paper's GLOW experiment.
var PaperGLOW = GLOWOptions{Levels: 3, Steps: 8, Hidden: 512, Scale: native.Scale{Kind: native.ScaleSigmoid}}

var imageGlowDefaults = GLOWOptions{Levels: 3, Steps: 4, Hidden: 32, Scale: native.Scale{Kind: native.ScaleSigmoid}}

func (o GLOWOptions) withDefaults() GLOWOptions {
	if o.Levels == 0 {
		o.Levels = imageGlowDefaults.Levels
	}
	if o.Steps == 0 {
		o.Steps = imageGlowDefaults.Steps
	}
	if o.Hidden == 0 {
		o.Hidden = imageGlowDefaults.Hidden
	}
	if o.Scale.Kind == 0 {
		o.Scale = native.Scale{Kind: native.ScaleSigmoid}
	}
	return o
}

// ImageShape is the shape of one image, H×W pixels of C channels, stored
// as a row of H·W·C values in NHWC order.
type ImageShape struct{ H, W, C int }

// Dim returns H·W·C.
func (s ImageShape) Dim() int { return s.H * s.W * s.C }

func (o GLOWOptions) validate(s ImageShape) error {
	switch {
	case o.Levels < 1 || o.Steps < 1 || o.Hidden < 1:
		return fmt.Errorf("model: GLOW levels=%d steps=%d hidden=%d must be positive", o.Levels, o.Steps, o.Hidden)
	case o.Levels > 8 || o.Steps > 64 || o.Hidden > 1<<14:
		return fmt.Errorf("model: GLOW levels=%d steps=%d hidden=%d: too large (at most 8, 64, 16384)", o.Levels, o.Steps, o.Hidden)
	case o.Scale.Kind == native.ScaleExp && !(o.Scale.Bound > 0):
		return fmt.Errorf("model: GLOW exp scale needs a positive bound, got %v", o.Scale.Bound)
	case o.Scale.Kind != native.ScaleExp && o.Scale.Kind != native.ScaleSigmoid:
		return fmt.Errorf("model: GLOW: unknown scale kind %d", o.Scale.Kind)
	case s.H < 1 || s.W < 1 || s.C < 1:
		return fmt.Errorf("model: GLOW: image shape %d×%d×%d must be positive", s.H, s.W, s.C)
	case s.H%(1<<o.Levels) != 0 || s.W%(1<<o.Levels) != 0:
		return fmt.Errorf("model: GLOW: %d levels halve the image %d times, so H and W must be divisible by %d; the images are %d×%d",
			o.Levels, o.Levels, 1<<o.Levels, s.H, s.W)
	}
	return nil
}

// imageStep is one layer of a level, on per-pixel tensors.
type imageStep interface {
	// forward sets y = step(x) and adds its per-image log-det to ld.
	forward(y, ld, x *native.Tensor)
	// inverse sets x = step⁻¹(y) and, when ld is not nil, adds the
	// inverse's per-image log-det ln|det ∂step⁻¹/∂y| = −(forward's at x).
	inverse(x, ld, y *native.Tensor)
	// backward is the vector-Jacobian product of the last forward.
	backward(dx, dy, dld *native.Tensor)
	// invBackward is the vector-Jacobian product of the last inverse,
	// x = step⁻¹(y): given dx = ∂L/∂x and dld = ∂L/∂(its log-det) per
	// image, it sets the parameters' Grad and dy = ∂L/∂y; tmp is a
	// scratch of y's shape (glowimage_inverse.go).
	invBackward(dy, dx, dld, x, y, tmp *native.Tensor)
	params() []*Param
}

// glowLevel is one scale: squeeze, then the steps on (n·h·w)×c, then
// (except at the last level) the split: channels [0, c/2) continue, [c/2,
// c) are factored out to the output at column off of each image's row.
type glowLevel struct {
	g     imgGeom // after the squeeze
	steps []imageStep
	last  bool
	off   int // first output column of the factored-out part
	nz    int // its width per image: h·w·c/2, or h·w·c at the last level

	in   *native.Tensor   // squeezed input (n·hw)×c
	outs []*native.Tensor // output of each step
	grad [2]*native.Tensor
	kept *native.Tensor // (n·hw)×c/2, the next level's input (and its gradient on the way back)
	z    *native.Tensor // (n·hw)×(c − c/2 or c)
	zImg *native.Tensor // z as n×nz
	din  *native.Tensor // gradient of the squeezed input
	tmp  *native.Tensor // (n·hw)×c scratch of the inverse's backward
}

// GLOW is a multi-scale GLOW flow on images of a fixed ImageShape, a Flow
// on R^D with D = H·W·C (a row is one image, NHWC). T(x) is the
// concatenation, per image, of the channels factored out at each level and
// the last level's output, so FlowDensity(GLOW) is GLOW's density with a
// standard-normal base. It needs a native.ImageBackend.
//
// Before training, InitFromData runs the data-dependent initialisation of
// the ActNorms (and of the coupling networks' normalisation) on a batch.
type GLOW struct {
	be     native.Backend
	ib     native.ImageBackend
	shape  ImageShape
	o      GLOWOptions
	levels []*glowLevel
	ps     []*Param
	d      int

	n       int
	xPix    *native.Tensor // the last x, and its per-pixel view
	xLast   *native.Tensor
	dxPix   *native.Tensor
	dxLast  *native.Tensor
	back    *native.Tensor // Inverse: the per-pixel image being built
	gxLast  *native.Tensor // InverseBackward: the last dx, and its per-pixel view
	gxPix   *native.Tensor
	invLast *native.Tensor // Inverse: the last x, and its per-pixel view
	invPix  *native.Tensor
	pass    glowPass // the last pass, which Backward or InverseBackward differentiates
}

// glowPass names the pass whose intermediate values a GLOW holds: the
// steps keep one set of activations, so Backward needs Forward to have run
// last and InverseBackward needs Inverse.
type glowPass int

const (
	passNone glowPass = iota
	passForward
	passInverse
)

// NewGLOW returns a GLOW flow on images of shape s.
func NewGLOW(be native.Backend, s ImageShape, o GLOWOptions, rng *rand.Rand) (*GLOW, error) {
	o = o.withDefaults()
	if err := o.validate(s); err != nil {
		return nil, err
	}
	ib, ok := be.(native.ImageBackend)
	if !ok {
		return nil, fmt.Errorf("model: GLOW needs a backend with image kernels; %s has none", be.Name())
	}
	f := &GLOW{be: be, ib: ib, shape: s, o: o, d: s.Dim()}
	h, w, c, off := s.H, s.W, s.C, 0
	for l := 0; l < o.Levels; l++ {
		h, w, c = h/2, w/2, 4*c
		lev := &glowLevel{g: imgGeom{h, w, c}, last: l == o.Levels-1, off: off}
		for k := 0; k < o.Steps; k++ {
			name := fmt.Sprintf("l%d.s%d", l, k)
			an := newPixActNorm(be, name+".actnorm", lev.g)
			inv := newPixLU(be, name+".inv1x1", lev.g, l*o.Steps+k)
			cp := newGLOWCoupling(be, ib, name, lev.g, o.Hidden, o.Scale, rng)
			lev.steps = append(lev.steps, an, inv, cp)
			f.ps = append(f.ps, an.params()...)
			f.ps = append(f.ps, inv.params()...)
			f.ps = append(f.ps, cp.params()...)
		}
		if lev.last {
			lev.nz = h * w * c
		} else {
			lev.nz = h * w * (c - c/2)
			c /= 2
		}
		off += lev.nz
		f.levels = append(f.levels, lev)
	}
	packParams(be, f.ps) // one arena: Adam and the clip in one pass each
	return f, nil
}

// GLOWFlow returns a FlowMaker for GLOW on images of shape s (the
// dimension it is called with must be s.Dim()).
func GLOWFlow(s ImageShape, o GLOWOptions) FlowMaker {
	return func(be native.Backend, dim int, rng *rand.Rand) (Flow, error) {
		if dim != s.Dim() {
			return nil, fmt.Errorf("model: GLOW on %d×%d×%d images has dimension %d, the data have %d", s.H, s.W, s.C, s.Dim(), dim)
		}
		return NewGLOW(be, s, o, rng)
	}
}

// GLOWDensity returns a DensityMaker for the GLOW density (standard-normal
// base) on images of shape s.
func GLOWDensity(s ImageShape, o GLOWOptions) DensityMaker {
	return densityOf(GLOWFlow(s, o))
}

// Dim returns H·W·C.
func (f *GLOW) Dim() int { return f.d }

// Shape returns the image shape.
func (f *GLOW) Shape() ImageShape { return f.shape }

// Options returns the options with defaults filled in.
func (f *GLOW) Options() GLOWOptions { return f.o }

// Params returns every step's parameters, level by level.
func (f *GLOW) Params() []*Param { return f.ps }

func (f *GLOW) resize(n int) {
	if f.n == n && f.levels[0].in != nil {
		return
	}
	f.n = n
	be := f.be
	for _, lev := range f.levels {
		np, c := n*lev.g.hw(), lev.g.c
		lev.in, lev.din, lev.tmp = be.New(np, c), be.New(np, c), be.New(np, c)
		lev.outs = lev.outs[:0]
		for range lev.steps {
			lev.outs = append(lev.outs, be.New(np, c))
		}
		lev.grad[0], lev.grad[1] = be.New(np, c), be.New(np, c)
		zc := c
		if !lev.last {
			zc = c - c/2
			lev.kept = be.New(np, c/2)
		}
		lev.z = be.New(np, zc)
		lev.zImg = reshape(lev.z, n, lev.nz)
	}
	s := f.shape
	f.back = be.New(n*s.H*s.W, s.C)
}

// pix returns x (n×D) as the (n·H·W)×C pixels, reusing the last view.
func (f *GLOW) pix(x *native.Tensor, last **native.Tensor, view **native.Tensor) *native.Tensor {
	if *last != x {
		*last, *view = x, reshape(x, x.Rows()*f.shape.H*f.shape.W, f.shape.C)
	}
	return *view
}

func (f *GLOW) check(op string, x *native.Tensor) error {
	if x.Cols() != f.d {
		return fmt.Errorf("model: GLOW.%s: input has %d columns, the flow is on %d×%d×%d images (%d)", op, x.Cols(), f.shape.H, f.shape.W, f.shape.C, f.d)
	}
	return nil
}

// Forward sets y = T(x) and adds ln|det ∂T/∂x| to logdet.
func (f *GLOW) Forward(y, logdet, x *native.Tensor) error {
	if err := f.check("Forward", x); err != nil {
		return err
	}
	n := x.Rows()
	f.resize(n)
	f.pass = passForward
	be := f.be
	cur := f.pix(x, &f.xLast, &f.xPix)
	h, w := f.shape.H, f.shape.W
	be.Fill(y, 0)
	for _, lev := range f.levels {
		f.ib.Squeeze(lev.in, cur, n, h, w)
		h, w = lev.g.h, lev.g.w
		t := lev.in
		for k, s := range lev.steps {
			s.forward(lev.outs[k], logdet, t)
			t = lev.outs[k]
		}
		if lev.last {
			be.Copy(lev.z, t)
		} else {
			c := lev.g.c
			be.CopyCols(lev.kept, t, 0)
			be.CopyCols(lev.z, t, c/2)
			cur = lev.kept
		}
		be.AddCols(y, lev.zImg, lev.off)
	}
	return nil
}

// Inverse sets x = T⁻¹(y).
func (f *GLOW) Inverse(x, y *native.Tensor) error { return f.inverse("Inverse", x, nil, y) }

// InverseLogDet sets x = T⁻¹(y) (n×D) and adds ln|det ∂T⁻¹/∂y| =
// −ln|det ∂T/∂x (x)| to logdet (a vector of n); InverseBackward then
// differentiates this pass.
func (f *GLOW) InverseLogDet(x, logdet, y *native.Tensor) error {
	return f.inverse("InverseLogDet", x, logdet, y)
}

func (f *GLOW) inverse(op string, x, ld, y *native.Tensor) error {
	if err := f.check(op, y); err != nil {
		return err
	}
	n := y.Rows()
	f.resize(n)
	f.pass = passInverse
	be := f.be
	var next *native.Tensor // the inverse of the level above: its unsqueezed input
	for l := len(f.levels) - 1; l >= 0; l-- {
		lev := f.levels[l]
		be.CopyCols(lev.zImg, y, lev.off)
		t := lev.outs[len(lev.steps)-1]
		if lev.last {
			be.Copy(t, lev.z)
		} else {
			be.Fill(t, 0)
			be.AddCols(t, next, 0)
			be.AddCols(t, lev.z, lev.g.c/2)
		}
		for k := len(lev.steps) - 1; k >= 0; k-- {
			out := lev.in
			if k > 0 {
				out = lev.outs[k-1]
			}
			lev.steps[k].inverse(out, ld, t)
			t = out
		}
		// Unsqueeze into the level below's kept channels (or the image).
		if l > 0 {
			next = f.levels[l-1].kept
		} else {
			next = f.back
		}
		f.ib.Unsqueeze(next, lev.in, n, 2*lev.g.h, 2*lev.g.w)
	}
	be.Copy(f.pix(x, &f.invLast, &f.invPix), f.back)
	return nil
}

// Backward propagates dy and dlogdet through the levels in reverse.
func (f *GLOW) Backward(dx, dy, dlogdet *native.Tensor) error {
	if f.n == 0 || f.xLast == nil || f.pass != passForward {
		return fmt.Errorf("model: GLOW.Backward called before Forward (or after an Inverse, which replaced Forward's activations)")
	}
	n, be := f.n, f.be
	var dnext *native.Tensor // gradient of the level above's unsqueezed input
	for l := len(f.levels) - 1; l >= 0; l-- {
		lev := f.levels[l]
		g := lev.grad[0]
		be.CopyCols(lev.zImg, dy, lev.off)
		if lev.last {
			be.Copy(g, lev.z)
		} else {
			be.Fill(g, 0)
			be.AddCols(g, dnext, 0)
			be.AddCols(g, lev.z, lev.g.c/2)
		}
		for k := len(lev.steps) - 1; k >= 0; k-- {
			out := lev.din
			if k > 0 {
				out = lev.grad[(len(lev.steps)-k)%2]
			}
			lev.steps[k].backward(out, g, dlogdet)
			g = out
		}
		if l > 0 {
			dnext = f.levels[l-1].kept
			f.ib.Unsqueeze(dnext, lev.din, n, 2*lev.g.h, 2*lev.g.w)
		} else if dx != nil {
			f.ib.Unsqueeze(f.pix(dx, &f.dxLast, &f.dxPix), lev.din, n, 2*lev.g.h, 2*lev.g.w)
		}
	}
	return nil
}

// InitFromData runs GLOW's data-dependent initialisation on the n×D batch
// x, level by level and step by step: each ActNorm is set so that its
// output has zero mean and unit variance per channel, and each coupling
// network's hidden convolutions likewise (see glowCoupling).
func (f *GLOW) InitFromData(x *native.Tensor) error {
	if err := f.check("InitFromData", x); err != nil {
		return err
	}
	n := x.Rows()
	f.resize(n)
	be := f.be
	ld := be.New(n, 1)
	cur := reshape(x, n*f.shape.H*f.shape.W, f.shape.C)
	h, w := f.shape.H, f.shape.W
	for _, lev := range f.levels {
		f.ib.Squeeze(lev.in, cur, n, h, w)
		h, w = lev.g.h, lev.g.w
		t := lev.in
		for k, s := range lev.steps {
			switch s := s.(type) {
			case *pixActNorm:
				s.initFromData(t)
			case *glowCoupling:
				s.initFromData(t)
			}
			s.forward(lev.outs[k], ld, t)
			t = lev.outs[k]
		}
		if !lev.last {
			be.CopyCols(lev.kept, t, 0)
			cur = lev.kept
		}
	}
	f.xLast, f.pass = nil, passNone
	return nil
}

package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/native"
)

// ImageStepInverse wraps the inverse of one image-GLOW layer on h×w×c
// images as a Flow on n×(h·w·c) rows (Forward = the layer's inverse with
// its log-det, Backward = its invBackward), so that the external tests'
// finite-difference helpers can check each layer's inverse product alone.
// kind is "actnorm", "inv1x1" or "coupling".
type ImageStepInverse struct {
	be         native.Backend
	s          imageStep
	g          imgGeom
	x, y, tmp  *native.Tensor
	scratchOut *native.Tensor
}

// NewImageStepInverse builds the layer (random coupling weights from rng).
func NewImageStepInverse(be native.Backend, kind string, h, w, c, hidden int, rng *rand.Rand) (*ImageStepInverse, error) {
	g := imgGeom{h, w, c}
	f := &ImageStepInverse{be: be, g: g}
	switch kind {
	case "actnorm":
		f.s = newPixActNorm(be, "an", g)
	case "inv1x1":
		f.s = newPixLU(be, "lu", g, 0)
	case "coupling":
		f.s = newGLOWCoupling(be, be.(native.ImageBackend), "cp", g, hidden, native.Scale{Kind: native.ScaleSigmoid}, rng)
	default:
		return nil, fmt.Errorf("unknown layer %q", kind)
	}
	return f, nil
}

func (f *ImageStepInverse) Dim() int         { return f.g.hw() * f.g.c }
func (f *ImageStepInverse) Params() []*Param { return f.s.params() }
func (f *ImageStepInverse) pix(t *native.Tensor) *native.Tensor {
	return reshape(t, t.Rows()*f.g.hw(), f.g.c)
}

// Forward sets out = layer⁻¹(in) and adds its log-det.
func (f *ImageStepInverse) Forward(out, logdet, in *native.Tensor) error {
	f.x, f.y = f.pix(out), f.pix(in)
	f.tmp = f.be.New(f.y.Rows(), f.y.Cols())
	f.s.inverse(f.x, logdet, f.y)
	return nil
}

// Inverse sets in = layer(out).
func (f *ImageStepInverse) Inverse(in, out *native.Tensor) error {
	f.s.forward(f.pix(in), f.be.New(out.Rows(), 1), f.pix(out))
	return nil
}

// Backward is the layer's invBackward.
func (f *ImageStepInverse) Backward(dIn, dOut, dlogdet *native.Tensor) error {
	if dIn == nil {
		dIn = f.be.New(dOut.Rows(), dOut.Cols())
	}
	f.s.invBackward(f.pix(dIn), f.pix(dOut), dlogdet, f.x, f.y, f.tmp)
	return nil
}

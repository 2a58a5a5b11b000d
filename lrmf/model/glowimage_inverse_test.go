package model_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/model/modeltest"
	"github.com/lrmf-go/lrmf/native"
)

// glowInverse is the Flow y ↦ G⁻¹(y) of a GLOW G: Forward is
// InverseLogDet, Backward InverseBackward, Inverse G's Forward.
type glowInverse struct {
	be native.Backend
	g  *model.GLOW
}

func (f glowInverse) Dim() int               { return f.g.Dim() }
func (f glowInverse) Params() []*model.Param { return f.g.Params() }
func (f glowInverse) Forward(x, ld, y *native.Tensor) error {
	return f.g.InverseLogDet(x, ld, y)
}
func (f glowInverse) Inverse(y, x *native.Tensor) error {
	return f.g.Forward(y, f.be.New(x.Rows(), 1), x)
}
func (f glowInverse) Backward(dy, dx, dld *native.Tensor) error {
	return f.g.InverseBackward(dy, dx, dld)
}

// The inverse of each image-GLOW layer alone: ∂/∂y and ∂/∂(every
// parameter) of Σ wx·layer⁻¹(y) + wl·(its log-det) against finite
// differences, and its log-det against ln|det| of the finite-difference
// Jacobian.
func TestGLOWLayerInverseGradients(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, kind := range []string{"actnorm", "inv1x1", "coupling"} {
		f, err := model.NewImageStepInverse(be, kind, 2, 2, 4, 3, rng)
		require.NoError(t, err)
		modeltest.Perturb(be, f.Params(), rng, 0.3)
		y := modeltest.Rand(be, rng, 3, f.Dim(), 1)
		t.Run(kind, func(t *testing.T) {
			modeltest.FlowGradients(t, be, f, y, rng, 1e-6)
			modeltest.FlowLogDet(t, be, f, y, 1e-7)
			modeltest.FlowInverse(t, be, f, y, 1e-10)
		})
	}
}

// GLOW's inverse as a whole (levels, squeezes, splits): the same checks on
// y ↦ G⁻¹(y) with InverseLogDet and InverseBackward.
func TestGLOWInverseGradients(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, c := range []struct {
		s model.ImageShape
		o model.GLOWOptions
	}{
		{model.ImageShape{H: 4, W: 4, C: 1}, model.GLOWOptions{Levels: 2, Steps: 2, Hidden: 3}},
		{model.ImageShape{H: 4, W: 2, C: 2}, model.GLOWOptions{Levels: 1, Steps: 1, Hidden: 4}},
	} {
		g, err := model.NewGLOW(be, c.s, c.o, rng)
		require.NoError(t, err)
		require.NoError(t, g.InitFromData(modeltest.Rand(be, rng, 8, c.s.Dim(), 1)))
		modeltest.Perturb(be, g.Params(), rng, 0.3)
		f := glowInverse{be, g}
		y := modeltest.Rand(be, rng, 3, c.s.Dim(), 1)
		modeltest.FlowGradients(t, be, f, y, rng, 1e-6)
		modeltest.FlowInverse(t, be, f, y, 1e-10)
		modeltest.FlowLogDet(t, be, f, y, 1e-7)
	}
}

// Backward differentiates Forward's activations and InverseBackward
// Inverse's: the other order is an error, not a wrong gradient.
func TestGLOWBackwardNeedsItsPass(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	s := model.ImageShape{H: 4, W: 4, C: 1}
	g, err := model.NewGLOW(be, s, model.GLOWOptions{Levels: 2, Steps: 1, Hidden: 2}, rng)
	require.NoError(t, err)
	x, y, dx, ld := be.New(2, 16), be.New(2, 16), be.New(2, 16), be.New(2, 1)
	require.ErrorContains(t, g.InverseBackward(dx, y, ld), "before Inverse")
	require.NoError(t, g.Forward(y, ld, x))
	require.ErrorContains(t, g.InverseBackward(dx, y, ld), "before Inverse")
	require.NoError(t, g.Inverse(x, y))
	require.ErrorContains(t, g.Backward(dx, y, ld), "before Forward")
	require.NoError(t, g.InverseBackward(dx, y, ld))
	require.ErrorContains(t, g.InverseBackward(dx, be.New(3, 16), be.New(3, 1)), "last Inverse of 2")
}

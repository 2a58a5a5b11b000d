package model_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/model/modeltest"
	"github.com/lrmf-go/lrmf/native"
)

var scales = []native.Scale{
	{Kind: native.ScaleExp, Bound: 2},
	{Kind: native.ScaleSigmoid},
}

func TestRealNVPFlowChecks(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, sc := range scales {
		for _, d := range []int{2, 3, 5} {
			for _, depth := range []int{1, 2} {
				t.Run(fmt.Sprintf("kind=%d/D=%d/depth=%d", sc.Kind, d, depth), func(t *testing.T) {
					f, err := model.NewRealNVP(be, d, model.RealNVPOptions{Blocks: 3, Hidden: 6, Depth: depth, Scale: sc}, rng)
					require.NoError(t, err)
					// The output layers start at zero (identity flow); move
					// every parameter so the checks see a generic point.
					modeltest.Perturb(be, f.Params(), rng, 0.5)
					x := modeltest.Rand(be, rng, 5, d, 1.5)
					modeltest.FlowGradients(t, be, f, x, rng, 1e-6)
					modeltest.FlowInverse(t, be, f, x, 1e-10)
					modeltest.FlowLogDet(t, be, f, x, 1e-7)
				})
			}
		}
	}
}

func TestRealNVPStartsAsIdentity(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	f, err := model.NewRealNVP(be, 3, model.RealNVPOptions{}, rng)
	require.NoError(t, err)
	x := modeltest.Rand(be, rng, 10, 3, 2)
	y, ld := be.New(10, 3), be.New(10, 1)
	require.NoError(t, f.Forward(y, ld, x))
	xs, ys, lds := make([]float64, 30), make([]float64, 30), make([]float64, 10)
	be.Download(xs, x)
	be.Download(ys, y)
	be.Download(lds, ld)
	require.Equal(t, xs, ys)
	require.Equal(t, make([]float64, 10), lds)
}

func TestRealNVPDensityGradients(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, sc := range scales {
		mk := model.RealNVPDensity(model.RealNVPOptions{Blocks: 2, Hidden: 5, Depth: 2, Scale: sc})
		p, err := mk(be, 2, rng)
		require.NoError(t, err)
		modeltest.Perturb(be, p.Params(), rng, 0.5)
		modeltest.DensityGradients(t, be, p, modeltest.Rand(be, rng, 6, 2, 1.5), rng, 1e-6)
	}
}

func TestRealNVPRejectsBadOptions(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	_, err := model.NewRealNVP(be, 1, model.RealNVPOptions{}, rng)
	require.ErrorContains(t, err, "at least 2 dimensions")
	_, err = model.NewRealNVP(be, 2, model.RealNVPOptions{Blocks: -1}, rng)
	require.Error(t, err)
	_, err = model.NewRealNVP(be, 2, model.RealNVPOptions{Hidden: 99999999}, rng)
	require.ErrorContains(t, err, "too large")
	_, err = model.NewRealNVP(be, 2, model.RealNVPOptions{Scale: native.Scale{Kind: native.ScaleExp, Bound: -1}}, rng)
	require.ErrorContains(t, err, "positive bound")
}

// In float32 on the CPU backend the inverse recovers x to 1e-5.
func TestRealNVPInverseFloat32(t *testing.T) {
	be, err := native.NewCPU(native.Float32, 2)
	if err != nil {
		t.Skip(err)
	}
	defer be.Close()
	rng := newRNG(t)
	for _, sc := range scales {
		f, err := model.NewRealNVP(be, 3, model.RealNVPOptions{Blocks: 4, Hidden: 16, Scale: sc}, rng)
		require.NoError(t, err)
		modeltest.Perturb(be, f.Params(), rng, 0.3)
		modeltest.FlowInverse(t, be, f, modeltest.Rand(be, rng, 500, 3, 2), 1e-5)
	}
}

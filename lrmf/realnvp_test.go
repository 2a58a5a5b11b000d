package lrmf_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/lrmftest"
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
					f, err := lrmf.NewRealNVP(be, d, lrmf.RealNVPOptions{Blocks: 3, Hidden: 6, Depth: depth, Scale: sc}, rng)
					require.NoError(t, err)
					// The output layers start at zero (identity flow); move
					// every parameter so the checks see a generic point.
					lrmftest.Perturb(be, f.Params(), rng, 0.5)
					x := lrmftest.Rand(be, rng, 5, d, 1.5)
					lrmftest.FlowGradients(t, be, f, x, rng, 1e-6)
					lrmftest.FlowInverse(t, be, f, x, 1e-10)
					lrmftest.FlowLogDet(t, be, f, x, 1e-7)
				})
			}
		}
	}
}

func TestRealNVPStartsAsIdentity(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	f, err := lrmf.NewRealNVP(be, 3, lrmf.RealNVPOptions{}, rng)
	require.NoError(t, err)
	x := lrmftest.Rand(be, rng, 10, 3, 2)
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
		mk := lrmf.RealNVPDensity(lrmf.RealNVPOptions{Blocks: 2, Hidden: 5, Depth: 2, Scale: sc})
		p, err := mk(be, 2, rng)
		require.NoError(t, err)
		lrmftest.Perturb(be, p.Params(), rng, 0.5)
		lrmftest.DensityGradients(t, be, p, lrmftest.Rand(be, rng, 6, 2, 1.5), rng, 1e-6)
	}
}

func TestRealNVPRejectsBadOptions(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	_, err := lrmf.NewRealNVP(be, 1, lrmf.RealNVPOptions{}, rng)
	require.ErrorContains(t, err, "at least 2 dimensions")
	_, err = lrmf.NewRealNVP(be, 2, lrmf.RealNVPOptions{Blocks: -1}, rng)
	require.Error(t, err)
	_, err = lrmf.NewRealNVP(be, 2, lrmf.RealNVPOptions{Hidden: 99999999}, rng)
	require.ErrorContains(t, err, "too large")
	_, err = lrmf.NewRealNVP(be, 2, lrmf.RealNVPOptions{Scale: native.Scale{Kind: native.ScaleExp, Bound: -1}}, rng)
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
		f, err := lrmf.NewRealNVP(be, 3, lrmf.RealNVPOptions{Blocks: 4, Hidden: 16, Scale: sc}, rng)
		require.NoError(t, err)
		lrmftest.Perturb(be, f.Params(), rng, 0.3)
		lrmftest.FlowInverse(t, be, f, lrmftest.Rand(be, rng, 500, 3, 2), 1e-5)
	}
}

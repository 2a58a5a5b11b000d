package lrmf

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// JointPhase on the Gaussian oracle: A ~ N(0, I), B ~ N((2, 0), I), an
// affine T and a Gaussian θS started at θA* (fitted here, as a caller
// would). The mini-batch LRMF starts near ℓ(B; θB*) − ℓ(B; θA*) = ½‖δ‖² = 2
// and falls to about 0; bad inputs are errors.
func TestJointPhaseGaussianOracle(t *testing.T) {
	be := native.NewRef()
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 13))
	const n = 2000
	ha, hb := make([]float64, 2*n), make([]float64, 2*n)
	for i := range ha {
		ha[i], hb[i] = rng.NormFloat64(), rng.NormFloat64()
		if i%2 == 0 {
			hb[i] += 2
		}
	}
	a, b := be.New(n, 2), be.New(n, 2)
	be.Upload(a, ha)
	be.Upload(b, hb)
	fitted := func(x *native.Tensor) (model.Density, float64) {
		d, err := model.GaussianDensity()(be, 2, rng)
		require.NoError(t, err)
		require.NoError(t, d.(model.MLEFitter).FitMLE(x))
		lp := be.New(n, 1)
		require.NoError(t, d.LogProb(lp, x))
		return d, be.Sum(lp) / n
	}
	dens, la := fitted(a)
	_, lb := fitted(b)
	flow, err := model.AffineFlow()(be, 2, rng)
	require.NoError(t, err)
	pts, err := JointPhase(context.Background(), be, a, b, flow, dens, la+lb, JointOptions{Steps: 1500, Batch: 256, LR: 1e-2})
	require.NoError(t, err)
	require.Len(t, pts, 1500)
	require.InDelta(t, 2, pts[0].Loss, 0.3)
	last := 0.0
	for _, p := range pts[len(pts)-100:] {
		last += p.Loss / 100
	}
	require.InDelta(t, 0, last, 0.05)

	_, err = JointPhase(context.Background(), be, a, b, flow, dens, 0, JointOptions{Steps: 1, Batch: n + 1, LR: 1e-2})
	require.ErrorContains(t, err, "batch")
	_, err = JointPhase(context.Background(), be, a, be.New(n, 3), flow, dens, 0, JointOptions{Steps: 1, Batch: 8, LR: 1e-2})
	require.ErrorContains(t, err, "dimensional")
	_, err = JointPhase(context.Background(), be, a, b, flow, dens, 0, JointOptions{Steps: 1, Batch: 8})
	require.ErrorContains(t, err, "learning rate")
}

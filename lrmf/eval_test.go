package lrmf

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// EvalFlow and EvalLogProb on a finished Result reproduce what Align
// reported: T(A) and ℓ(B; θS).
func TestEvalOnResult(t *testing.T) {
	be, err := native.Open("ref", native.Float64, 1)
	require.NoError(t, err)
	defer be.Close()
	p := data.MoonsPair(300, 0.05, 50, 1)
	spec := model.ModelSpec{Kind: "realnvp", Blocks: 2, Hidden: 8, Depth: 1}
	// The whole data for fitting and reporting (no held-out or validation
	// part), so that ℓ(B; θS) is over every row of B.
	res, err := Align(context.Background(), p.A, p.B, Config{Backend: be, Flow: spec, Density: spec, Steps: 20, LR: 0.01, Seed: 1,
		Holdout: -1, Validation: -1, FitOptions: FitOptions{FitSteps: 20, Batch: 64}})
	require.NoError(t, err)
	mb, err := res.ModelBackend()
	require.NoError(t, err)
	require.Equal(t, be, mb)

	y, err := EvalFlow(mb, res.Flow, p.A)
	require.NoError(t, err)
	assert.InDeltaSlice(t, res.Transformed.RawMatrix().Data, y.RawMatrix().Data, 1e-12)
	lp, err := EvalLogProb(mb, res.Density, p.B)
	require.NoError(t, err)
	require.Len(t, lp, 300)
	mean := 0.0
	for _, v := range lp {
		mean += v / 300
	}
	assert.InDelta(t, res.LogLikB, mean, 1e-10)

	three := mat.NewDense(2, 3, nil)
	_, err = EvalFlow(mb, res.Flow, three)
	assert.ErrorContains(t, err, "3 columns")
	_, err = EvalLogProb(mb, res.DensityA, three)
	assert.ErrorContains(t, err, "3 columns")
	_, err = EvalLogProb(nil, res.DensityA, p.A)
	assert.ErrorContains(t, err, "nil backend")
	_, err = EvalLogProb(mb, nil, p.A)
	assert.ErrorContains(t, err, "nil density")
	_, err = EvalFlow(mb, res.Flow, &mat.Dense{})
	assert.ErrorContains(t, err, "no rows")

	// Without Config.Backend, Align closes the backend it opened.
	res2, err := Align(context.Background(), p.A, p.B, affineGaussian(Config{Steps: 5, FitOptions: FitOptions{Batch: 64}}))
	require.NoError(t, err)
	_, err = res2.ModelBackend()
	assert.ErrorIs(t, err, ErrBackendClosed)
}

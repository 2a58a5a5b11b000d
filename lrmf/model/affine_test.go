package model_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/model/modeltest"
	"github.com/lrmf-go/lrmf/native"
)

func TestAffineGradientsInverseLogDet(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, d := range []int{1, 2, 4} {
		f := model.NewAffine(be, d)
		modeltest.Perturb(be, f.Params(), rng, 0.3)
		x := modeltest.Rand(be, rng, 6, d, 2)
		modeltest.FlowGradients(t, be, f, x, rng, 1e-6)
		modeltest.FlowInverse(t, be, f, x, 1e-10)
		modeltest.FlowLogDet(t, be, f, x, 1e-7)
	}
}

func TestAffineInverseOfSingularFails(t *testing.T) {
	be := native.NewRef()
	f := model.NewAffine(be, 2)
	be.Fill(f.Params()[0].Value, 1) // A = [[1,1],[1,1]] is singular
	x := be.New(3, 2)
	require.Error(t, f.Inverse(x, x))
	require.Error(t, f.Forward(be.New(3, 2), be.New(3, 1), x))
}

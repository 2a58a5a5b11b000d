package lrmf

import (
	"context"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// poisoned is a density whose log-densities turn NaN once *on is set. It
// hides the Gaussian's closed-form fit, so θA*, θB* are fitted by gradient.
type poisoned struct {
	model.Density
	be native.Backend
	on *atomic.Bool
}

func (d *poisoned) LogProb(logp, x *native.Tensor) error {
	if err := d.Density.LogProb(logp, x); err != nil {
		return err
	}
	if d.on.Load() {
		d.be.Fill(logp, math.NaN())
	}
	return nil
}

// A run that turns NaN stops with status diverged and an error naming the
// step and the model where the non-finite values began: the flow, the
// density θS, or the fit of θA*.
func TestAlignDivergenceNamesTheModel(t *testing.T) {
	p := data.Blobs(500, 1)
	run := func(t *testing.T, cfg Config) error {
		res, err := Align(context.Background(), p.A, p.B, cfg)
		require.ErrorIs(t, err, ErrDiverged)
		require.NotNil(t, res)
		assert.Equal(t, Diverged, res.Status)
		t.Log(err)
		return err
	}
	t.Run("flow", func(t *testing.T) {
		mk := func(be native.Backend, d int, _ *rand.Rand) (model.Flow, error) {
			return &nanAfter{Affine: model.NewAffine(be, d), be: be, after: 30}, nil
		}
		err := run(t, affineGaussian(Config{Steps: 200, NewFlow: mk, Seed: 1}))
		assert.Contains(t, err.Error(), "at step 31 of the joint phase, in the flow affine:")
	})
	poison := func(on *atomic.Bool) model.DensityMaker {
		return func(be native.Backend, d int, rng *rand.Rand) (model.Density, error) {
			return &poisoned{Density: model.NewGaussian(be, d), be: be, on: on}, nil
		}
	}
	t.Run("density θS", func(t *testing.T) {
		var on atomic.Bool
		cfg := affineGaussian(Config{Steps: 200, NewDensity: poison(&on), Seed: 1, FitOptions: FitOptions{FitSteps: 20}})
		cfg.ProgressEvery = 1
		cfg.Progress = func(pr Progress) {
			if pr.Phase == "joint" && pr.Step == 20 {
				on.Store(true)
			}
		}
		err := run(t, cfg)
		assert.Contains(t, err.Error(), "at step 21 of the joint phase, in the density θS (gaussian):")
	})
	t.Run("θA* fit", func(t *testing.T) {
		var on atomic.Bool
		on.Store(true)
		err := run(t, affineGaussian(Config{Steps: 200, NewDensity: poison(&on), Seed: 1, FitOptions: FitOptions{FitSteps: 20}}))
		assert.Contains(t, err.Error(), "at step 1 of the θA* fit:")
	})
}

package paper

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/lrmf/data"
)

// The two domains are 32×32 images in [0, 1] whose ink sits where each
// construction puts it: MNIST's 28×28 frame padded by 2 (so the outer 2
// pixels are background), the USPS-style digits filling the frame.
func TestGLOWDigitImages(t *testing.T) {
	dir, err := data.MNISTDir()
	if err != nil {
		t.Skip(err)
	}
	a, ha, b, hb, err := glowDigitImages(dir, 20, 5)
	require.NoError(t, err)
	for _, m := range []interface{ Dims() (int, int) }{a, ha, b, hb} {
		_, c := m.Dims()
		require.Equal(t, 1024, c)
	}
	border, inkB := 0.0, 0.0
	for i := 0; i < 20; i++ {
		ra, rb := a.RawRowView(i), b.RawRowView(i)
		for y := 0; y < 32; y++ {
			for x := 0; x < 32; x++ {
				v := ra[y*32+x]
				require.True(t, v >= 0 && v <= 1)
				if y < 2 || y >= 30 || x < 2 || x >= 30 {
					border += v
				}
				if y < 4 || y >= 28 || x < 4 || x >= 28 {
					inkB += rb[y*32+x]
				}
			}
		}
	}
	assert.Zero(t, border, "MNIST padding must be background")
	assert.Positive(t, inkB, "USPS-style digits fill the frame, so some ink reaches the outer 4 pixels")
	assert.InDelta(t, 1.0, BitsPerDim(1024*math.Ln2), 1e-12)
}

func TestGLOWDigitsRejectsBadConfig(t *testing.T) {
	_, err := GLOWDigits(context.Background(), GLOWDigitsConfig{N: 9990, HeldOut: 20})
	require.ErrorContains(t, err, "exceeds")
	_, err = GLOWDigits(context.Background(), GLOWDigitsConfig{N: 10, Batch: 20})
	require.ErrorContains(t, err, "batch 20 exceeds")
}

// The domain classifier tells two shifted Gaussian clouds apart and is at
// chance on two draws of one distribution.
func TestDomainAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 5))
	draw := func(shift float64) *mat.Dense {
		m := mat.NewDense(400, 64, nil)
		for i := 0; i < 400; i++ {
			for j := 0; j < 64; j++ {
				m.Set(i, j, rng.NormFloat64()+shift)
			}
		}
		return m
	}
	x := draw(0)
	assert.Greater(t, domainAccuracy(x, draw(0.5)), 0.9)
	assert.InDelta(t, 0.5, domainAccuracy(x, draw(0)), 0.08)
}

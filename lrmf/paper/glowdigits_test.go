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
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
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
	_, err = GLOWDigits(context.Background(), GLOWDigitsConfig{N: 64, LRMFRuns: []string{"latent"}})
	require.ErrorContains(t, err, `unknown LRMF run "latent"`)
}

// Both LRMF runs on tiny models: the back-to-back T = G_A⁻¹∘G_B starts at
// LRMF ≈ 0 (batch noise) by construction, the fresh T = id at the gap
// between the domains under θA*, far above; the fresh T(B) before training
// is B itself, so its classifier accuracy is A vs B's; the fitted models
// are copied, not trained.
func TestGLOWDigitsLRMFRuns(t *testing.T) {
	if _, err := data.MNISTDir(); err != nil {
		t.Skip(err)
	}
	be, err := native.NewCPU(native.Float32, 2)
	require.NoError(t, err)
	defer be.Close()
	cfg := GLOWDigitsConfig{N: 64, HeldOut: 32, Steps: 3, Batch: 16, LRMFSteps: 3, Seed: testseed.Seed(t),
		Model: model.GLOWOptions{Levels: 2, Steps: 1, Hidden: 4}, Backend: be}
	r, err := GLOWDigits(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, r.LRMF, 2)
	b2b, scratch := r.LRMF[0], r.LRMF[1]
	require.Equal(t, GLOWRunBackToBack, b2b.Kind)
	require.Equal(t, GLOWRunScratch, scratch.Kind)
	for _, l := range r.LRMF {
		require.Len(t, l.Trajectory, 3, l.Kind)
		require.Empty(t, l.Err, l.Kind)
		require.Equal(t, 32, l.HeldOut)
	}
	assert.Equal(t, scratch.AccAB, scratch.AccATB0, "T = id: A vs T(B) is A vs B")
	assert.Zero(t, scratch.NonFinite0)
	l0, s0 := b2b.Trajectory[0].Loss, scratch.Trajectory[0].Loss
	assert.Greater(t, s0, 10*math.Abs(l0), "LRMF at step 1: back-to-back %.2f, from scratch %.2f", l0, s0)
	assert.Equal(t, b2b.CAB, scratch.CAB)
	first, mean, sd := scratch.BlockStats(2)
	assert.Equal(t, []int{1, 3}, first)
	assert.Len(t, mean, 2)
	assert.Zero(t, sd[1], "a block of one step")

	// The fitted densities were copied: θA* and θB* are those of the same
	// fits without the alignment.
	cfg.LRMFSteps = -1
	again, err := GLOWDigits(context.Background(), cfg)
	require.NoError(t, err)
	assert.Empty(t, again.LRMF)
	for i, f := range []GLOWFit{r.A, r.B} {
		for k, p := range f.Density.Params() {
			got, want := make([]float64, p.Value.Len()), make([]float64, p.Value.Len())
			be.Download(got, p.Value)
			be.Download(want, []GLOWFit{again.A, again.B}[i].Density.Params()[k].Value)
			require.Equal(t, want, got, "%s %s", f.Domain, p.Name)
		}
	}
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

// nanFlow maps rows whose first value is negative to NaN and the others
// to themselves.
type nanFlow struct {
	be native.Backend
	d  int
}

func (f nanFlow) Dim() int               { return f.d }
func (f nanFlow) Params() []*model.Param { return nil }
func (f nanFlow) Forward(y, ld, x *native.Tensor) error {
	v := make([]float64, x.Len())
	f.be.Download(v, x)
	for i := 0; i < x.Rows(); i++ {
		if v[i*f.d] < 0 {
			v[i*f.d+1] = math.NaN()
		}
	}
	f.be.Upload(y, v)
	return nil
}
func (f nanFlow) Inverse(x, y *native.Tensor) error         { return nil }
func (f nanFlow) Backward(dx, dy, dld *native.Tensor) error { return nil }

// startRows keeps the rows T maps to finite values, over chunks whose
// last one overlaps the one before.
func TestStartRowsFinite(t *testing.T) {
	be := native.NewRef()
	x := be.New(5, 3)
	be.Upload(x, []float64{1, 1, 1, -1, 2, 2, 3, 3, 3, 4, 4, 4, -5, 5, 5})
	got, left, bad, err := startRows(be, nanFlow{be, 3}, nil, nil, x, 2, 1)
	require.NoError(t, err)
	assert.Equal(t, 2, left)
	assert.Zero(t, bad)
	v := make([]float64, got.Len())
	be.Download(v, got)
	assert.Equal(t, []float64{1, 1, 1, 3, 3, 3, 4, 4, 4}, v)
	be.Upload(x, []float64{1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5})
	got, left, bad, err = startRows(be, nanFlow{be, 3}, nil, nil, x, 2, 1)
	require.NoError(t, err)
	assert.Zero(t, left+bad)
	assert.Same(t, x, got)
}

// With densities, startRows also leaves out the rows where
// ln pS(T(b)) + ln|det ∇T(b)| is off ln pB(b) by more than tol: here T is
// the identity on the finite rows, pB = N(0, I) and pS = N((3, 0, 0), I),
// so the gap is 3·b₀ − 4.5, within 1 only for b₀ = 1.5.
func TestStartRowsConsistent(t *testing.T) {
	be := native.NewRef()
	x := be.New(5, 3)
	be.Upload(x, []float64{1, 1, 1, -1, 2, 2, 3, 3, 3, 1.5, 4, 4, -5, 5, 5})
	pB, pS := model.NewGaussian(be, 3), model.NewGaussian(be, 3)
	be.Upload(pS.Params()[0].Value, []float64{3, 0, 0})
	got, nonFinite, bad, err := startRows(be, nanFlow{be, 3}, pS, pB, x, 2, 1)
	require.NoError(t, err)
	assert.Equal(t, 2, nonFinite)
	assert.Equal(t, 2, bad)
	v := make([]float64, got.Len())
	be.Download(v, got)
	assert.Equal(t, []float64{1.5, 4, 4}, v)
}

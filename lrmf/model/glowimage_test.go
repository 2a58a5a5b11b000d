package model_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/internal/sanitize"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/model/modeltest"
	"github.com/lrmf-go/lrmf/native"
)

// GLOW on 4×4 images (two levels, so a split and the factored-out
// channels are exercised) and on 4×4×2 with one level: gradients of every
// parameter and of x against finite differences, inverse∘forward, and the
// log-det against ln|det J| of the finite-difference Jacobian.
func TestGLOWFlowChecks(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, c := range []struct {
		s model.ImageShape
		o model.GLOWOptions
	}{
		{model.ImageShape{H: 4, W: 4, C: 1}, model.GLOWOptions{Levels: 2, Steps: 2, Hidden: 3}},
		{model.ImageShape{H: 4, W: 2, C: 2}, model.GLOWOptions{Levels: 1, Steps: 1, Hidden: 4}},
	} {
		f, err := model.NewGLOW(be, c.s, c.o, rng)
		require.NoError(t, err)
		x := modeltest.Rand(be, rng, 3, c.s.Dim(), 1)
		require.NoError(t, f.InitFromData(modeltest.Rand(be, rng, 8, c.s.Dim(), 1)))
		modeltest.Perturb(be, f.Params(), rng, 0.3)
		modeltest.FlowGradients(t, be, f, x, rng, 1e-6)
		modeltest.FlowInverse(t, be, f, x, 1e-10)
		modeltest.FlowLogDet(t, be, f, x, 1e-7)
	}
}

func TestGLOWDensityGradients(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	s := model.ImageShape{H: 4, W: 4, C: 1}
	p, err := model.GLOWDensity(s, model.GLOWOptions{Levels: 2, Steps: 1, Hidden: 3})(be, s.Dim(), rng)
	require.NoError(t, err)
	modeltest.Perturb(be, p.Params(), rng, 0.3)
	modeltest.DensityGradients(t, be, p, modeltest.Rand(be, rng, 2, s.Dim(), 1), rng, 1e-6)
}

// ActNorm's data-dependent initialisation whitens each channel of the
// first step's input; the zero-initialised couplings start as the identity
// on their halves, so T is invertible from the start.
func TestGLOWInitFromData(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	s := model.ImageShape{H: 8, W: 8, C: 1}
	f, err := model.NewGLOW(be, s, model.GLOWOptions{Levels: 3, Steps: 2, Hidden: 4}, rng)
	require.NoError(t, err)
	x := modeltest.Rand(be, rng, 16, s.Dim(), 3)
	require.NoError(t, f.InitFromData(x))
	modeltest.FlowInverse(t, be, f, x, 1e-9)
}

func TestGLOWRejectsBadShapes(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	_, err := model.NewGLOW(be, model.ImageShape{H: 12, W: 12, C: 1}, model.GLOWOptions{Levels: 3}, rng)
	require.ErrorContains(t, err, "divisible by 8")
	_, err = model.NewGLOW(be, model.ImageShape{H: 8, W: 8, C: 1}, model.GLOWOptions{Levels: -1}, rng)
	require.ErrorContains(t, err, "must be positive")
	_, err = model.NewGLOW(be, model.ImageShape{H: 8, W: 8, C: 1}, model.GLOWOptions{Scale: native.Scale{Kind: native.ScaleExp}}, rng)
	require.ErrorContains(t, err, "positive bound")
	_, err = model.GLOWFlow(model.ImageShape{H: 8, W: 8, C: 1}, model.GLOWOptions{})(be, 63, rng)
	require.ErrorContains(t, err, "dimension 64")
	f, err := model.NewGLOW(be, model.ImageShape{H: 4, W: 4, C: 1}, model.GLOWOptions{Levels: 2}, rng)
	require.NoError(t, err)
	require.ErrorContains(t, f.Forward(be.New(2, 15), be.New(2, 1), be.New(2, 15)), "16")
}

// On the float32 cpu backend (the image kernels in C) the inverse recovers
// x to 1e-4 and the log-density matches the float64 reference's.
func TestGLOWFloat32MatchesRef(t *testing.T) {
	be, err := native.NewCPU(native.Float32, 2)
	if err != nil {
		t.Skip(err)
	}
	defer be.Close()
	ref := native.NewRef()
	s := model.ImageShape{H: 8, W: 8, C: 1}
	o := model.GLOWOptions{Levels: 2, Steps: 2, Hidden: 8}
	p32, err := model.GLOWDensity(s, o)(be, s.Dim(), newRNG(t))
	require.NoError(t, err)
	p64, err := model.GLOWDensity(s, o)(ref, s.Dim(), newRNG(t))
	require.NoError(t, err)
	rng := newRNG(t)
	xs := make([]float64, 6*s.Dim())
	for i := range xs {
		xs[i] = float64(float32(rng.Float64()))
	}
	x32, x64 := be.New(6, s.Dim()), ref.New(6, s.Dim())
	be.Upload(x32, xs)
	ref.Upload(x64, xs)
	f32, f64 := p32.(*model.FlowDensity).Flow().(*model.GLOW), p64.(*model.FlowDensity).Flow().(*model.GLOW)
	require.NoError(t, f32.InitFromData(x32))
	require.NoError(t, f64.InitFromData(x64))
	modeltest.Perturb(ref, f64.Params(), rng, 0.2)
	for i, p := range f64.Params() {
		v := make([]float64, p.Value.Len())
		ref.Download(v, p.Value)
		be.Upload(f32.Params()[i].Value, v)
	}
	l32, l64 := be.New(6, 1), ref.New(6, 1)
	require.NoError(t, p32.LogProb(l32, x32))
	require.NoError(t, p64.LogProb(l64, x64))
	g32, g64 := make([]float64, 6), make([]float64, 6)
	be.Download(g32, l32)
	ref.Download(g64, l64)
	for i := range g64 {
		require.InDelta(t, g64[i], g32[i], 1e-4*max(1, abs(g64[i])), "logp[%d]", i)
	}
	modeltest.FlowInverse(t, be, f32, x32, 1e-4)
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// A GLOW density training step (LogProb and Backward) allocates nothing
// once its buffers exist, in float32 and float64 on the cpu backend: the
// ActNorm and 1×1 convolution run the vector layers' kernels on the pixel
// rows, their log-dets go to the images by GEMMs, and the LU layer's host
// scratch is its own.
func TestGLOWDensityStepAllocatesNothing(t *testing.T) {
	sanitize.SkipAllocationCounts(t)
	s := model.ImageShape{H: 8, W: 8, C: 1}
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		be, err := native.NewCPU(dt, 2)
		if err != nil {
			t.Skip(err)
		}
		rng := newRNG(t)
		p, err := model.GLOWDensity(s, model.GLOWOptions{Levels: 2, Steps: 2, Hidden: 8})(be, s.Dim(), rng)
		require.NoError(t, err)
		x := modeltest.Rand(be, rng, 4, s.Dim(), 1)
		require.NoError(t, p.(*model.FlowDensity).Flow().(*model.GLOW).InitFromData(x))
		require.Zero(t, densityStepAllocs(t, be, p, x), "%v", dt)
		be.Close()
	}
}

// With the exp coupling scale and no data-dependent initialisation, GLOW
// is an orthogonal map (ActNorm at the identity, W a rotation, couplings
// at s = 1), so its density is exactly N(0, I): the latent density q of
// the GLOW digits' LRMF starts there. (With GLOW's sigmoid(h + 2) scale it
// would not: s = sigmoid(2) at the start.)
func TestGLOWExpScaleStartsAtStandardNormal(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	s := model.ImageShape{H: 8, W: 8, C: 1}
	p, err := model.GLOWDensity(s, model.GLOWOptions{Levels: 2, Steps: 2, Hidden: 4, Scale: model.DefaultScale})(be, s.Dim(), rng)
	require.NoError(t, err)
	x := modeltest.Rand(be, rng, 5, s.Dim(), 2)
	lp := be.New(5, 1)
	require.NoError(t, p.LogProb(lp, x))
	xs, got := download(be, x), download(be, lp)
	for i := range got {
		want := -0.5 * float64(s.Dim()) * math.Log(2*math.Pi)
		for _, v := range xs[i*s.Dim() : (i+1)*s.Dim()] {
			want -= 0.5 * v * v
		}
		require.InDelta(t, want, got[i], 1e-9*math.Abs(want), "row %d", i)
	}
}

// Every channel count splits: the squeeze before each level makes it 4·C
// (then 2·C after a split), always even, so an odd C such as RGB's 3 needs
// no error — the flow is invertible with the right log-det.
func TestGLOWOddChannels(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	s := model.ImageShape{H: 4, W: 4, C: 3}
	f, err := model.NewGLOW(be, s, model.GLOWOptions{Levels: 2, Steps: 1, Hidden: 3}, rng)
	require.NoError(t, err)
	x := modeltest.Rand(be, rng, 2, s.Dim(), 1)
	require.NoError(t, f.InitFromData(modeltest.Rand(be, rng, 8, s.Dim(), 1)))
	modeltest.Perturb(be, f.Params(), rng, 0.3)
	modeltest.FlowInverse(t, be, f, x, 1e-10)
	modeltest.FlowLogDet(t, be, f, x, 1e-7)
}

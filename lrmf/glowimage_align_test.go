package lrmf

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// tinyImages returns n 8×8×1 images per set: a bright square at a random
// place plus noise; B's squares are dimmer and its background brighter.
func tinyImages(t *testing.T, n int) (a, b *mat.Dense) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 0x1a6e))
	img := func(fg, bg float64) []float64 {
		v := make([]float64, 64)
		r, c := rng.IntN(5), rng.IntN(5)
		for i := range 8 {
			for j := range 8 {
				x := bg
				if i >= r && i < r+4 && j >= c && j < c+4 {
					x = fg
				}
				v[i*8+j] = x + 0.1*rng.NormFloat64()
			}
		}
		return v
	}
	a, b = mat.NewDense(n, 64, nil), mat.NewDense(n, 64, nil)
	for i := range n {
		a.SetRow(i, img(1, 0))
		b.SetRow(i, img(0.7, 0.2))
	}
	return a, b
}

// tinyGLOW is a glow-image density small enough for tests: 8×8×1, two
// levels of one step with 4 filters.
var tinyGLOW = model.ModelSpec{Kind: "glow-image", Image: model.ImageShape{H: 8, W: 8, C: 1}, Levels: 2, Blocks: 1, Hidden: 4}

func glowImageConfig(be native.Backend) Config {
	return Config{Backend: be, Flow: model.ModelSpec{Kind: "affine"}, Density: tinyGLOW, Steps: 40, LR: 1e-3, Seed: 7, Restarts: 1,
		FitOptions: FitOptions{FitSteps: 20, Batch: 32}}
}

// actNormSize returns Σ|b| + Σ|r| over the ActNorm parameters of a GLOW
// density (0 as built: the identity).
func actNormSize(t *testing.T, be native.Backend, d model.Density) float64 {
	s, n := 0.0, 0
	for _, p := range d.Params() {
		if name := p.Name; len(name) > 9 && (name[len(name)-9:] == "actnorm.b" || name[len(name)-9:] == "actnorm.r") {
			v := make([]float64, p.Value.Len())
			be.Download(v, p.Value)
			for _, x := range v {
				s += math.Abs(x)
			}
			n++
		}
	}
	require.Equal(t, 4, n, "two levels of one step: two ActNorms of b and r")
	return s
}

// Align with the glow-image density runs, reports finite figures, and
// θA*, θB* got GLOW's data-dependent initialisation: with a fit rate of
// 1e-9 their ActNorms would stay at the identity (0) without it.
func TestAlignGLOWImage(t *testing.T) {
	a, b := tinyImages(t, 400)
	be, err := native.Open(native.DefaultBackend(), native.Float64, 1)
	require.NoError(t, err)
	defer be.Close()
	cfg := glowImageConfig(be)
	cfg.FitLR = 1e-9
	res, err := Align(context.Background(), a, b, cfg)
	require.NoError(t, err)
	t.Log(res.Summary())
	assert.Equal(t, tinyGLOW.Normalized(), res.Config.Density)
	for _, x := range []float64{res.LRMF, res.LRMFSE, res.CAB, res.LogLikTA, res.LogLikB, res.LogDet} {
		assert.False(t, math.IsNaN(x) || math.IsInf(x, 0), "a figure is %v", x)
	}
	for _, d := range []model.Density{res.DensityA, res.DensityB} {
		g := d.(*model.FlowDensity).Flow().(*model.GLOW)
		assert.Equal(t, tinyGLOW.Image, g.Shape())
		assert.Greater(t, actNormSize(t, be, d), 0.1, "ActNorm still at the identity: InitFromData did not run")
	}
}

// An image kind's bad shape is refused before anything is built.
func TestAlignGLOWImageBadShape(t *testing.T) {
	a, b := tinyImages(t, 400)
	be := native.NewRef()
	for _, c := range []struct {
		spec model.ModelSpec
		want string
	}{
		{model.ModelSpec{Kind: "glow-image"}, "ModelSpec.Image"},
		{model.ModelSpec{Kind: "glow-image", Image: model.ImageShape{H: 8, W: 4, C: 1}}, "the data have 64 columns"},
		{model.ModelSpec{Kind: "glow-image", Image: model.ImageShape{H: 8, W: 8, C: 1}, Levels: 4}, "divisible by 2^4 = 16"},
	} {
		cfg := glowImageConfig(be)
		cfg.Density = c.spec
		_, err := Align(context.Background(), a, b, cfg)
		assert.ErrorContains(t, err, "Config.Density")
		assert.ErrorContains(t, err, c.want)
	}
}

// countedDensity and countedFlow count their InitFromData calls.
type countedDensity struct {
	model.Density
	n *int
}

func (c countedDensity) InitFromData(x *native.Tensor) error {
	*c.n++
	di, _ := model.DataInitializerOf(c.Density)
	return di.InitFromData(x)
}

type countedFlow struct {
	model.Flow
	n *int
}

func (c countedFlow) InitFromData(*native.Tensor) error { *c.n++; return nil }

// A glow-image run resumed from its checkpoint ends bit-identical to the
// uninterrupted run, and the data-dependent initialisations ran once per
// fresh model (θA*, θB*, and a flow that has one) in the fresh runs and not
// at all in the resumed one (θS is θA*'s copy; the checkpoint holds every
// parameter).
func TestResumeIsBitIdenticalGLOWImage(t *testing.T) {
	for _, counted := range []bool{false, true} {
		t.Run(map[bool]string{false: "spec", true: "counted"}[counted], func(t *testing.T) { testResumeGLOWImage(t, counted) })
	}
}

func testResumeGLOWImage(t *testing.T, counted bool) {
	a, b := tinyImages(t, 400)
	be, err := native.Open(native.DefaultBackend(), native.Float64, 2)
	require.NoError(t, err)
	defer be.Close()
	var dinit, finit int
	config := func() Config {
		cfg := glowImageConfig(be)
		if counted {
			dm, err := cfg.Density.DensityMaker()
			require.NoError(t, err)
			cfg.NewDensity = func(be native.Backend, dim int, rng *rand.Rand) (model.Density, error) {
				d, err := dm(be, dim, rng)
				return countedDensity{d, &dinit}, err
			}
			fm, err := cfg.Flow.FlowMaker()
			require.NoError(t, err)
			cfg.NewFlow = func(be native.Backend, dim int, rng *rand.Rand) (model.Flow, error) {
				f, err := fm(be, dim, rng)
				return countedFlow{f, &finit}, err
			}
		}
		return cfg
	}
	full, err := Align(context.Background(), a, b, config())
	require.NoError(t, err)
	if counted {
		assert.Equal(t, [2]int{2, 1}, [2]int{dinit, finit}, "fresh run: θA*, θB* and the flow initialised once each")
	}

	stop := 25
	ctx, cancel := context.WithCancel(context.Background())
	cfg := config()
	var saved *Checkpoint
	cfg.Checkpoint = func(c *Checkpoint) error { saved = c; return nil }
	cfg.ProgressEvery = 1
	cfg.Progress = func(pr Progress) {
		if pr.Phase == "joint" && pr.Step == stop {
			cancel()
		}
	}
	_, err = Align(ctx, a, b, cfg)
	require.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, saved)
	require.Equal(t, stop, saved.Step())
	path := filepath.Join(t.TempDir(), "ck.lrmf")
	require.NoError(t, saved.WriteFile(path))
	ck, err := ReadCheckpoint(path)
	require.NoError(t, err)
	assert.Equal(t, tinyGLOW.Normalized(), ck.Config().Density, "the spec survives the file")

	dinit, finit = 0, 0
	cfg2 := ck.Config()
	if counted {
		c := config()
		cfg2.NewDensity, cfg2.NewFlow = c.NewDensity, c.NewFlow
	}
	cfg2.Backend, cfg2.Resume = be, ck
	resumed, err := Align(context.Background(), a, b, cfg2)
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 0}, [2]int{dinit, finit}, "a resumed run initialises nothing from data")
	assert.Equal(t, math.Float64bits(full.LRMF), math.Float64bits(resumed.LRMF), "LRMF %v vs %v", full.LRMF, resumed.LRMF)
	assert.Equal(t, full.History, resumed.History)
	assert.Equal(t, full.CAB, resumed.CAB)
	assert.Equal(t, full.Transformed.RawMatrix().Data, resumed.Transformed.RawMatrix().Data)
	assert.Equal(t, full.HeldOut, resumed.HeldOut)
}

// A checkpoint of a glow-image run is refused by a run that asks for
// another image shape, level count or filter count, naming what differs.
func TestResumeRefusesOtherGLOWImageShape(t *testing.T) {
	a, b := tinyImages(t, 400)
	be, err := native.Open(native.DefaultBackend(), native.Float64, 1)
	require.NoError(t, err)
	defer be.Close()
	cfg := glowImageConfig(be)
	cfg.Steps = 5
	var saved *Checkpoint
	cfg.Checkpoint = func(c *Checkpoint) error { saved = c; return nil }
	_, err = Align(context.Background(), a, b, cfg)
	require.NoError(t, err)
	require.NotNil(t, saved)
	for _, c := range []struct {
		change func(*model.ModelSpec)
		want   string
	}{
		{func(s *model.ModelSpec) { s.Image = model.ImageShape{H: 4, W: 16, C: 1} }, "density image: 8x8x1 (checkpoint) vs 4x16x1 (run)"},
		{func(s *model.ModelSpec) { s.Levels = 1 }, "density levels: 2 (checkpoint) vs 1 (run)"},
		{func(s *model.ModelSpec) { s.Hidden = 8 }, "density hidden: 4 (checkpoint) vs 8 (run)"},
	} {
		cfg2 := saved.Config()
		cfg2.Backend, cfg2.Resume, cfg2.Steps = be, saved, 10
		c.change(&cfg2.Density)
		_, err := Align(context.Background(), a, b, cfg2)
		require.Error(t, err)
		assert.Contains(t, err.Error(), c.want)
		assert.NotContains(t, err.Error(), "flow", "only the density differs")
	}
}

// The image kinds take FFJORD-sized budgets with a batch of 64, and their
// held-out part needs 100 rows, not D + 1 = 1025 for 32×32 images; low
// dimensions keep D + 1 (at least 10).
func TestImageKindDefaults(t *testing.T) {
	for _, k := range [][2]string{{"glow-b2b", "glow-image"}, {"affine", "glow-image"}, {"glow-b2b", "gaussian"}} {
		c := DefaultConfigFor(k[0], k[1])
		assert.Equal(t, [6]int{1000, 1000, 64, 100, 500, 1}, [6]int{c.Steps, c.FitSteps, c.Batch, c.EvalEvery, c.Patience, c.Restarts}, "%v", k)
	}
	c := DefaultConfigFor("realnvp", "realnvp")
	assert.Equal(t, [3]int{20000, 20000, 256}, [3]int{c.Steps, c.FitSteps, c.Batch})
	for d, want := range map[int]int{1: 10, 2: 10, 9: 10, 10: 11, 50: 51, 99: 100, 100: 100, 1024: 100} {
		assert.Equal(t, want, MinHeldOutRows(d), "D = %d", d)
	}
}

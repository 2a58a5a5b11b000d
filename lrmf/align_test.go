package lrmf

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/internal/linalg"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// affineGaussian returns c with the models these tests were written for,
// an affine flow and a Gaussian density, and, where c leaves them zero, the
// step budgets and learning rate such tests used (2000 steps, lr 0.01; the
// zero Config is now lrmf align's Real NVP run, see DefaultConfig), one
// restart, and the whole data for fitting and reporting (Holdout and
// Validation negative), as before the held-out split: their oracles are
// moments of the full data.
func affineGaussian(c Config) Config {
	c.Flow, c.Density = model.ModelSpec{Kind: "affine"}, model.ModelSpec{Kind: "gaussian"}
	if c.Holdout == 0 {
		c.Holdout = -1
	}
	if c.Validation == 0 {
		c.Validation = -1
	}
	if c.Restarts == 0 {
		c.Restarts = 1
	}
	if c.Steps == 0 {
		c.Steps = 2000
	}
	if c.FitSteps == 0 {
		c.FitSteps = 2000
	}
	if c.LR == 0 {
		c.LR = 0.01
	}
	return c
}

// moments returns the mean and the 1/n covariance of the rows of x.
func moments(x *mat.Dense) ([]float64, *mat.SymDense) {
	n, d := x.Dims()
	mean := make([]float64, d)
	for j := range mean {
		mean[j] = mat.Sum(x.ColView(j)) / float64(n)
	}
	cov := mat.NewSymDense(d, nil)
	for j := 0; j < d; j++ {
		for k := j; k < d; k++ {
			s := 0.0
			for i := 0; i < n; i++ {
				s += (x.At(i, j) - mean[j]) * (x.At(i, k) - mean[k])
			}
			cov.SetSym(j, k, s/float64(n))
		}
	}
	return mean, cov
}

func logDetSym(t *testing.T, s mat.Symmetric) float64 {
	var c mat.Cholesky
	require.True(t, c.Factorize(s))
	return c.LogDet()
}

// otMap returns the Gaussian optimal-transport map from N(mA, SA) to
// N(mB, SB): M* = SA^{-1/2}(SA^{1/2} SB SA^{1/2})^{1/2} SA^{-1/2},
// t* = mB − M* mA (METHOD.md §6).
func otMap(t *testing.T, mA []float64, sA *mat.SymDense, mB []float64, sB *mat.SymDense) (*mat.Dense, []float64) {
	h, err := linalg.SymPow(sA, 0.5)
	require.NoError(t, err)
	hi, err := linalg.SymPow(sA, -0.5)
	require.NoError(t, err)
	var inner mat.Dense
	inner.Product(h, sB, h)
	d := len(mA)
	innerSym := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			innerSym.SetSym(i, j, 0.5*(inner.At(i, j)+inner.At(j, i)))
		}
	}
	root, err := linalg.SymPow(innerSym, 0.5)
	require.NoError(t, err)
	var m mat.Dense
	m.Product(hi, root, hi)
	tv := make([]float64, d)
	for i := range tv {
		tv[i] = mB[i]
		for j := 0; j < d; j++ {
			tv[i] -= m.At(i, j) * mA[j]
		}
	}
	return &m, tv
}

// With θS at its optimum for a given affine T, LRMF has the closed form
// ln det Σ_S − ½ ln det S_T(A) − ½ ln det S_B, Σ_S = ½(S_T(A) + S_B) + ¼δδᵀ
// (METHOD.md §6). The data are non-Gaussian (moons), so this checks the
// objective's bookkeeping, not a Gaussian coincidence.
func TestLRMFOracleGaussianAffine(t *testing.T) {
	be := native.NewRef()
	p := data.MoonsPair(1000, 0.05, 50, 3)
	a, b := toTensor(be, p.A), toTensor(be, p.B)
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 12))
	f := model.NewAffine(be, 2)
	abuf := []float64{1.2 + 0.1*rng.Float64(), 0.3, -0.2, 0.8}
	be.Upload(f.Params()[0].Value, abuf)                 // A
	be.Upload(f.Params()[1].Value, []float64{0.4, -0.7}) // b

	ga, gb := model.NewGaussian(be, 2), model.NewGaussian(be, 2)
	require.NoError(t, ga.FitMLE(a))
	require.NoError(t, gb.FitMLE(b))
	la, err := model.MeanLogProb(be, ga, a)
	require.NoError(t, err)
	lb, err := model.MeanLogProb(be, gb, b)
	require.NoError(t, err)

	y, _, err := model.Transform(be, f, a)
	require.NoError(t, err)
	ty := mat.NewDense(1000, 2, nil)
	be.Download(ty.RawMatrix().Data, y)
	mT, sT := moments(ty)
	mB, sB := moments(p.B)
	sS := mat.NewSymDense(2, nil)
	delta := []float64{mT[0] - mB[0], mT[1] - mB[1]}
	for i := 0; i < 2; i++ {
		for j := i; j < 2; j++ {
			sS.SetSym(i, j, 0.5*(sT.At(i, j)+sB.At(i, j))+0.25*delta[i]*delta[j])
		}
	}
	gs := model.NewGaussian(be, 2)
	require.NoError(t, gs.SetMoments([]float64{0.5 * (mT[0] + mB[0]), 0.5 * (mT[1] + mB[1])}, sS))

	got, err := EvalLRMF(be, f, gs, la+lb, a, b)
	require.NoError(t, err)
	want := logDetSym(t, sS) - 0.5*logDetSym(t, sT) - 0.5*logDetSym(t, sB)
	assert.InDelta(t, want, got, 1e-9)
	assert.Greater(t, got, 0.0)
}

func transportError(t *testing.T, res *Result, p data.Pair) (mErr, tErr float64) {
	mA, sA := moments(p.A)
	mB, sB := moments(p.B)
	mStar, tStar := otMap(t, mA, sA, mB, sB)
	m, b := res.Flow.(*model.Affine).Matrix()
	var diff mat.Dense
	diff.Sub(m, mStar)
	mErr = mat.Norm(&diff, 2) / mat.Norm(mStar, 2)
	dt := math.Hypot(b[0]-tStar[0], b[1]-tStar[1])
	tErr = dt / math.Max(math.Hypot(tStar[0], tStar[1]), 1)
	return mErr, tErr
}

// Affine LRMF with a Gaussian density must reach LRMF ≈ 0 and recover the
// Gaussian optimal-transport map, on blobs and on the moons pair.
func TestAlignAffineRecoversOTMap(t *testing.T) {
	for _, name := range []string{"blobs", "moons"} {
		t.Run(name, func(t *testing.T) {
			p, err := data.Builtin(name, 2000, 5)
			require.NoError(t, err)
			be, err := native.Open(native.DefaultBackend(), native.Float64, 2)
			require.NoError(t, err)
			defer be.Close()
			res, err := Align(context.Background(), p.A, p.B, affineGaussian(Config{Backend: be, Steps: 3000, LR: 0.01, Seed: 1, FitOptions: FitOptions{Batch: 1000}}))
			require.NoError(t, err)
			mErr, tErr := transportError(t, res, p)
			t.Logf("%s: LRMF %.3g after %d steps (%s); ‖M−M*‖/‖M*‖ = %.3g, ‖b−t*‖ rel = %.3g, %.3f ms/step",
				name, res.LRMF, res.Steps, res.StoppedBy, mErr, tErr, res.MsPerStep)
			assert.Less(t, math.Abs(res.LRMF), 1e-3)
			assert.Less(t, mErr, 1e-2)
			assert.Less(t, tErr, 1e-2)
			assert.Equal(t, Converged, res.Status)

			// T(A) has B's first two moments.
			mT, sT := moments(res.Transformed)
			mB, sB := moments(p.B)
			assert.InDeltaSlice(t, mB, mT, 1e-2)
			assert.InDeltaSlice(t, sB.RawSymmetric().Data, sT.RawSymmetric().Data, 1e-2)
		})
	}
}

func TestAlignGradientFitMatchesMLE(t *testing.T) {
	p := data.Blobs(2000, 9)
	f64, err := native.Open(native.DefaultBackend(), native.Float64, 0)
	require.NoError(t, err)
	defer f64.Close()
	cfg := affineGaussian(Config{Backend: f64, Steps: 1, Seed: 2})
	cfg.GradientFit, cfg.FitSteps, cfg.Batch, cfg.FitLR = true, 4000, 500, 0.02
	res, err := Align(context.Background(), p.A, p.B, cfg)
	require.NoError(t, err)
	be := native.NewRef()
	ga, gb := model.NewGaussian(be, 2), model.NewGaussian(be, 2)
	require.NoError(t, ga.FitMLE(toTensor(be, p.A)))
	require.NoError(t, gb.FitMLE(toTensor(be, p.B)))
	la, _ := model.MeanLogProb(be, ga, toTensor(be, p.A))
	lb, _ := model.MeanLogProb(be, gb, toTensor(be, p.B))
	t.Logf("gradient-fitted c_AB %.6f after %d+%d steps, closed form %.6f", res.CAB, res.FitStepsA, res.FitStepsB, la+lb)
	assert.InDelta(t, la+lb, res.CAB, 2e-3)
	assert.LessOrEqual(t, res.CAB, la+lb+1e-12, "a fitted c_AB cannot exceed the maximum likelihood")
}

func TestAlignBadInput(t *testing.T) {
	good := mat.NewDense(10, 2, nil)
	for i := 0; i < 10; i++ {
		good.Set(i, 0, float64(i))
		good.Set(i, 1, float64(i*i%7))
	}
	nan := mat.DenseCopyOf(good)
	nan.Set(3, 1, math.NaN())
	three := mat.NewDense(10, 3, nil)
	ctx := context.Background()
	cases := []struct {
		name string
		a, b *mat.Dense
		cfg  Config
		want string
	}{
		{"nan", nan, good, Config{}, "dataset A: row 3, column 1 is NaN"},
		{"dims", good, three, Config{}, "same dimension"},
		{"batch", good, good, Config{FitOptions: FitOptions{Batch: 11}}, "Config.Batch = 11 exceeds the 10 rows of A"},
		{"lr", good, good, Config{LR: -1}, "Config.LR"},
		{"threshold", good, good, Config{Threshold: math.Inf(1)}, "Config.Threshold"},
		{"empty", &mat.Dense{}, good, Config{}, "dataset A is empty"},
	}
	for _, c := range cases {
		_, err := Align(ctx, c.a, c.b, c.cfg)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
	}
}

func TestAlignCancel(t *testing.T) {
	p := data.Blobs(2000, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := affineGaussian(Config{Steps: 1 << 30, Seed: 1, ProgressEvery: 10, Progress: func(pr Progress) {
		if pr.Phase == "joint" && pr.Step >= 50 {
			cancel()
		}
	}})
	start := time.Now()
	res, err := Align(ctx, p.A, p.B, cfg)
	require.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, res)
	assert.Equal(t, Canceled, res.Status)
	assert.False(t, res.Converged)
	assert.InDelta(t, 50, res.Steps, 1)
	assert.Less(t, time.Since(start), 30*time.Second)
}

// nanAfter is an affine flow whose output turns NaN after a number of
// Forward calls, standing in for any numerical blow-up.
type nanAfter struct {
	*model.Affine
	be           native.Backend
	calls, after int
}

func (f *nanAfter) Forward(y, logdet, x *native.Tensor) error {
	if err := f.Affine.Forward(y, logdet, x); err != nil {
		return err
	}
	if f.calls++; f.calls > f.after {
		f.be.Fill(y, math.NaN())
	}
	return nil
}

func TestAlignDivergenceIsReported(t *testing.T) {
	p := data.Blobs(500, 1)
	mk := func(be native.Backend, d int, _ *rand.Rand) (model.Flow, error) {
		return &nanAfter{Affine: model.NewAffine(be, d), be: be, after: 30}, nil
	}
	res, err := Align(context.Background(), p.A, p.B, affineGaussian(Config{Steps: 200, NewFlow: mk, Seed: 1}))
	require.ErrorIs(t, err, ErrDiverged)
	assert.Contains(t, err.Error(), "at step 31")
	require.NotNil(t, res)
	assert.Equal(t, Diverged, res.Status)
	assert.False(t, res.Converged)
	assert.True(t, math.IsNaN(res.LRMF))
}

// Same seed, backend and thread count: bit-identical results.
func TestAlignReproducible(t *testing.T) {
	p := data.MoonsPair(1000, 0.05, 50, 4)
	run := func() *Result {
		be, err := native.Open(native.DefaultBackend(), native.Float64, 2)
		require.NoError(t, err)
		defer be.Close()
		res, err := Align(context.Background(), p.A, p.B, affineGaussian(Config{Backend: be, Steps: 200, Seed: 42}))
		require.NoError(t, err)
		return res
	}
	r1, r2 := run(), run()
	assert.Equal(t, math.Float64bits(r1.LRMF), math.Float64bits(r2.LRMF))
	assert.Equal(t, r1.History, r2.History)
}

// The mixture plugs into Align through Config.NewDensity (no closed-form
// MLE, so θA*, θB* are fitted by gradient ascent).
func TestGMMWithAlign(t *testing.T) {
	p := data.Blobs(1000, 3)
	res, err := Align(context.Background(), p.A, p.B, Config{
		Flow: model.ModelSpec{Kind: "affine"}, NewDensity: model.GMMDensity(2), Steps: 400, LR: 0.02, Seed: 1,
		FitOptions: FitOptions{FitSteps: 400, Batch: 500}})
	require.NoError(t, err)
	t.Logf("GMM(2) + affine on blobs: LRMF %.4g, c_AB %.4g, %d steps (%s)", res.LRMF, res.CAB, res.Steps, res.StoppedBy)
	assert.False(t, math.IsNaN(res.LRMF) || math.IsInf(res.LRMF, 0))
	assert.False(t, math.IsNaN(res.CAB) || math.IsInf(res.CAB, 0))
}

// Align must keep working when the context is already done before start.
func TestAlignPreCanceled(t *testing.T) {
	p := data.Blobs(100, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Align(ctx, p.A, p.B, Config{})
	if err == nil || res == nil || res.Status != Canceled {
		t.Fatalf("Align on a canceled context: res %+v, err %v", res, err)
	}
}

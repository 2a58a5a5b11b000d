package lrmf

import (
	"context"
	"errors"
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

// gaussSample draws n rows of N(mean, LLᵀ) with L lower-triangular given
// row-major.
func gaussSample(rng *rand.Rand, n int, mean, l []float64) *mat.Dense {
	d := len(mean)
	x := mat.NewDense(n, d, nil)
	z := make([]float64, d)
	for i := range n {
		for j := range z {
			z[j] = rng.NormFloat64()
		}
		for j := range d {
			v := mean[j]
			for k := 0; k <= j; k++ {
				v += l[j*d+k] * z[k]
			}
			x.Set(i, j, v)
		}
	}
	return x
}

// banana draws n i.i.d. rows (u, u² + 0.3z) with u ~ U(−1.5, 1.5) and
// z ~ N(0, 1): a curved, non-Gaussian cloud.
func banana(rng *rand.Rand, n int) *mat.Dense {
	x := mat.NewDense(n, 2, nil)
	for i := range n {
		u := 3*rng.Float64() - 1.5
		x.Set(i, 0, u)
		x.Set(i, 1, u*u+0.3*rng.NormFloat64())
	}
	return x
}

func stack(a, b *mat.Dense) *mat.Dense {
	var s mat.Dense
	s.Stack(a, b)
	return &s
}

func refBackend(t testing.TB) native.Backend {
	be, err := native.Open("ref", native.Float64, 1)
	require.NoError(t, err)
	t.Cleanup(be.Close)
	return be
}

// dΛ of the closed-form Gaussian equals the formula derived from the
// moments, computed here independently with gonum: with equal sizes
// METHOD §6's ln det Σ_S − ½ ln det S_A − ½ ln det S_B, with unequal
// sizes that plus ½ tr(Σ_S⁻¹(C_A + C_B)) − D (see gaussShift).
func TestShiftGaussianDLambdaClosedForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 2))
	for _, sizes := range [][2]int{{400, 400}, {250, 600}, {700, 90}} {
		a := gaussSample(rng, sizes[0], []float64{0, 1, -1}, []float64{1, 0, 0, 0.5, 0.8, 0, -0.2, 0.3, 0.6})
		b := gaussSample(rng, sizes[1], []float64{0.3, 1, -0.8}, []float64{1.2, 0, 0, 0.1, 0.7, 0, 0.2, -0.3, 0.9})
		res, err := ShiftTest(context.Background(), a, b, ShiftConfig{Permutations: 1})
		require.NoError(t, err)
		require.True(t, res.ClosedForm)

		_, sA := moments(a)
		_, sB := moments(b)
		pooled := stack(a, b)
		mP, sP := moments(pooled)
		want := logDetSym(t, sP) - 0.5*logDetSym(t, sA) - 0.5*logDetSym(t, sB)
		if sizes[0] != sizes[1] {
			// C_X = second moment of X about the pooled mean.
			var prec mat.SymDense
			var chol mat.Cholesky
			require.True(t, chol.Factorize(sP))
			require.NoError(t, chol.InverseTo(&prec))
			tr := 0.0
			for _, x := range []*mat.Dense{a, b} {
				n, d := x.Dims()
				for i := range n {
					for j := range d {
						for k := range d {
							tr += prec.At(j, k) * (x.At(i, j) - mP[j]) * (x.At(i, k) - mP[k]) / float64(n)
						}
					}
				}
			}
			want += 0.5*tr - 3
		}
		assert.InDelta(t, want, res.DLambda, 1e-10, "sizes %v", sizes)
		assert.Greater(t, res.DLambda, 0.0)
		// ℓ(X; θX) of a Gaussian MLE: −(D/2)(ln 2π + 1) − ½ ln det S_X.
		assert.InDelta(t, -1.5*(math.Log(2*math.Pi)+1)-0.5*logDetSym(t, sA), res.LogLikA, 1e-10)
		assert.InDelta(t, -1.5*(math.Log(2*math.Pi)+1)-0.5*logDetSym(t, sB), res.LogLikB, 1e-10)
	}
}

// The host fast path and the generic path (Gaussian density, FitMLE,
// LogProb and Backward on the reference backend) compute the same
// statistics, and so, with the same seed, the same p-values.
func TestShiftFastMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 4))
	a := gaussSample(rng, 300, []float64{0, 0, 0}, []float64{1, 0, 0, 0.3, 1, 0, 0, 0.2, 1})
	b := gaussSample(rng, 170, []float64{0.1, 0, 0}, []float64{1, 0, 0, 0.3, 1.1, 0, 0, 0.2, 1})
	cfg := ShiftConfig{Permutations: 49, Seed: 7}
	fast, err := ShiftTest(context.Background(), a, b, cfg)
	require.NoError(t, err)
	cfg.Backend, cfg.NewDensity = refBackend(t), model.GaussianDensity()
	gen, err := ShiftTest(context.Background(), a, b, cfg)
	require.NoError(t, err)
	assert.True(t, fast.ClosedForm)
	assert.True(t, gen.ClosedForm)
	assert.Equal(t, "custom", gen.Density.Kind)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"S", gen.Score, fast.Score}, {"|g_A|", gen.GradA, fast.GradA}, {"|g_B|", gen.GradB, fast.GradB},
		{"dΛ", gen.DLambda, fast.DLambda}, {"ℓ(A;θA)", gen.LogLikA, fast.LogLikA}, {"ℓ(B;θB)", gen.LogLikB, fast.LogLikB},
		{"ℓ(A;θS)", gen.LogLikSA, fast.LogLikSA}, {"ℓ(B;θS)", gen.LogLikSB, fast.LogLikSB},
	} {
		assert.InDelta(t, c.want, c.got, 1e-9*(1+math.Abs(c.want)), c.name)
	}
	assert.Less(t, fast.GradPooled, 1e-12)
	assert.Less(t, gen.GradPooled, 1e-12)
	assert.Equal(t, fast.ScoreP, gen.ScoreP)
	assert.Equal(t, fast.DLambdaP, gen.DLambdaP)
}

// numGradMeanLogProb returns ∂ℓ(X; θ)/∂θ for every element of every
// parameter of d by central differences.
func numGradMeanLogProb(t *testing.T, be native.Backend, d model.Density, x *native.Tensor) [][]float64 {
	const h = 1e-5
	var out [][]float64
	for _, p := range d.Params() {
		v := make([]float64, p.Value.Len())
		be.Download(v, p.Value)
		g := make([]float64, len(v))
		for i := range v {
			f := func(delta float64) float64 {
				old := v[i]
				v[i] = old + delta
				be.Upload(p.Value, v)
				v[i] = old
				l, err := model.MeanLogProb(be, d, x)
				require.NoError(t, err)
				return l
			}
			g[i] = (f(h) - f(-h)) / (2 * h)
			be.Upload(p.Value, v)
		}
		out = append(out, g)
	}
	return out
}

// The score statistic's gradients g_X = ∇θ ℓ(X; θS) match finite
// differences of ℓ, on the host fast path (analytic formulas) and on the
// generic path (Density.Backward), for the relabelled sets too.
func TestShiftScoreGradientsFiniteDifferences(t *testing.T) {
	be := refBackend(t)
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 6))
	a := gaussSample(rng, 60, []float64{1, -1}, []float64{1, 0, 0.5, 0.7})
	b := gaussSample(rng, 45, []float64{0.5, -1}, []float64{0.8, 0, -0.2, 1.1})
	pooled := stack(a, b)
	fast, err := newGaussShift(pooled, 60, 45, false)
	require.NoError(t, err)
	gen, err := newGenericShift(context.Background(), be, pooled, 60, 45, model.GaussianDensity(), ShiftConfig{}.withDefaults(60, 45))
	require.NoError(t, err)

	idx := make([]int32, 105)
	for i := range idx {
		idx[i] = int32(i)
	}
	for trial := range 2 {
		if trial == 1 {
			rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		}
		ia, ib := idx[:60], idx[60:]
		stF, err := fast.eval(context.Background(), ia, ib)
		require.NoError(t, err)
		stG, err := gen.eval(context.Background(), ia, ib)
		require.NoError(t, err)
		assert.InDelta(t, stF.score, stG.score, 1e-10)

		for set, rows := range [][]int32{ia, ib} {
			x := be.New(len(rows), 2)
			be.GatherRows(x, gen.pooled, rows)
			num := numGradMeanLogProb(t, be, gen.ds, x)
			// Fast path: ∇μ and ∇L.
			assert.InDeltaSlice(t, num[0], fast.gradMu[set], 1e-7, "fast ∇μ, set %d, trial %d", set, trial)
			assert.InDeltaSlice(t, num[1], fast.gradL[set], 1e-7, "fast ∇L, set %d, trial %d", set, trial)
			// Generic path: fullGrad accumulates −∇ℓ (a loss gradient).
			fg := []*fullGrad{gen.gA, gen.gB}[set]
			_, err := fg.norm()
			require.NoError(t, err)
			norm2 := 0.0
			for i, acc := range fg.acc {
				got := make([]float64, acc.Len())
				be.Download(got, acc)
				for j := range got {
					got[j] = -got[j]
					norm2 += got[j] * got[j]
				}
				assert.InDeltaSlice(t, num[i], got, 1e-7, "generic param %d, set %d, trial %d", i, set, trial)
			}
			assert.InDelta(t, []float64{stG.gradA, stG.gradB}[set], math.Sqrt(norm2), 1e-12)
		}
	}
}

// Under H0 the permutation p-values are uniform on {1/100, …, 1} (N = 99):
// P(p ≤ 0.05) is exactly 0.05. Over 200 independent pairs drawn from one
// distribution the number of rejections at α = 0.05 is Binomial(200, 0.05)
// (mean 10, sd 3.1); the band [0.01, 0.10] (2 to 20 rejections) misses it
// with probability 0.0004 + 0.0012 for a correct test, while a test whose
// size is off by a factor of 2 falls outside it about half the time. The
// rejections at α = 0.5 are Binomial(200, 0.5) (sd 7.1): [0.4, 0.6] is
// ±2.8 sd. Unequal sizes and a non-Gaussian distribution (banana: the
// Gaussian density misspecified) exercise the general case. (Not the
// moons: data.Moons places points on an even grid of angles, so two draws
// are more alike than random halves of their union, and the test is
// conservative on them — p-values skewed towards 1.)
func TestShiftNullCalibration(t *testing.T) {
	const pairs, perms = 200, 99
	type tally struct{ at05, at50 int }
	var score, dl tally
	seed := testseed.Seed(t)
	for s := range pairs {
		rng := rand.New(rand.NewPCG(uint64(s), seed)) // pair s of the seed's stream
		var a, b *mat.Dense
		if s%2 == 0 {
			a = gaussSample(rng, 300, []float64{1, 2}, []float64{1, 0, 0.6, 0.5})
			b = gaussSample(rng, 500, []float64{1, 2}, []float64{1, 0, 0.6, 0.5})
		} else {
			a, b = banana(rng, 400), banana(rng, 250)
		}
		res, err := ShiftTest(context.Background(), a, b, ShiftConfig{Permutations: perms, Seed: uint64(1000 + s)})
		require.NoError(t, err)
		for _, c := range []struct {
			p  float64
			tl *tally
		}{{res.ScoreP, &score}, {res.DLambdaP, &dl}} {
			if c.p <= 0.05 {
				c.tl.at05++
			}
			if c.p <= 0.5 {
				c.tl.at50++
			}
		}
	}
	t.Logf("false-positive rate at α = 0.05: score %.3f, dΛ %.3f; at α = 0.5: score %.3f, dΛ %.3f (%d pairs, N = %d)",
		float64(score.at05)/pairs, float64(dl.at05)/pairs, float64(score.at50)/pairs, float64(dl.at50)/pairs, pairs, perms)
	for name, tl := range map[string]tally{"score": score, "dΛ": dl} {
		assert.GreaterOrEqual(t, tl.at05, 2, "%s: too few rejections at α = 0.05", name)
		assert.LessOrEqual(t, tl.at05, 20, "%s: too many rejections at α = 0.05", name)
		assert.GreaterOrEqual(t, tl.at50, 80, "%s: at α = 0.5", name)
		assert.LessOrEqual(t, tl.at50, 120, "%s: at α = 0.5", name)
	}
}

// A and a rotated copy are told apart: the moons pair (B an independent
// draw rotated by 50° about its centroid) and a correlated Gaussian blob
// against itself rotated by 50°.
func TestShiftDetectsRotation(t *testing.T) {
	p := data.MoonsPair(2000, 0.05, 50, 1)
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 9))
	blob := gaussSample(rng, 2000, []float64{2, -1}, []float64{1.5, 0, 0.9, 0.4})
	for _, c := range []struct {
		name string
		a, b *mat.Dense
	}{{"moons", p.A, p.B}, {"blob", blob, data.Rotate(blob, 50)}} {
		res, err := ShiftTest(context.Background(), c.a, c.b, ShiftConfig{Seed: 1})
		require.NoError(t, err)
		t.Logf("%s: S = %.4g (p = %.3g), dΛ = %.4g nats (p = %.3g), %.4f ms per relabelling",
			c.name, res.Score, res.ScoreP, res.DLambda, res.DLambdaP, res.MsPerPermutation)
		assert.Equal(t, DefaultPermutations, res.Permutations)
		assert.Less(t, res.ScoreP, 0.01, c.name)
		assert.Less(t, res.DLambdaP, 0.01, c.name)
		assert.Greater(t, res.DLambda, 0.0)
	}
}

// The gradient-fit path (Real NVP density) runs end to end on a small
// budget, is reproducible for a seed, and dΛ on a rotated pair is not
// negative beyond the fits' noise (θA, θB and θS get equal budgets).
func TestShiftGradientFitRealNVP(t *testing.T) {
	p := data.MoonsPair(200, 0.05, 50, 2)
	cfg := ShiftConfig{
		Backend: refBackend(t), Density: model.ModelSpec{Kind: "realnvp", Blocks: 2, Hidden: 8},
		Permutations: 3, FitOptions: FitOptions{FitSteps: 30, Batch: 64, FitLR: 3e-3}, Seed: 4,
	}
	var calls int
	cfg.Progress = func(done, total int) { calls++; assert.Equal(t, 3, total) }
	r1, err := ShiftTest(context.Background(), p.A, p.B, cfg)
	require.NoError(t, err)
	assert.Equal(t, 4, calls)
	assert.False(t, r1.ClosedForm)
	assert.Equal(t, "realnvp", r1.Density.Kind)
	for _, v := range []float64{r1.Score, r1.DLambda, r1.LogLikA, r1.LogLikB, r1.LogLikSA, r1.LogLikSB} {
		assert.False(t, math.IsNaN(v) || math.IsInf(v, 0))
	}
	assert.Greater(t, r1.DLambda, -0.05)
	assert.Greater(t, r1.GradPooled, 0.0) // 30 steps do not converge
	for _, pv := range []float64{r1.ScoreP, r1.DLambdaP} {
		assert.Contains(t, []float64{0.25, 0.5, 0.75, 1}, pv)
	}
	cfg.Progress = nil
	r2, err := ShiftTest(context.Background(), p.A, p.B, cfg)
	require.NoError(t, err)
	assert.Equal(t, r1.Score, r2.Score)
	assert.Equal(t, r1.DLambda, r2.DLambda)
	assert.Equal(t, r1.ScoreP, r2.ScoreP)

	cfg.ScoreOnly = true
	r3, err := ShiftTest(context.Background(), p.A, p.B, cfg)
	require.NoError(t, err)
	assert.True(t, math.IsNaN(r3.DLambda) && math.IsNaN(r3.DLambdaP) && math.IsNaN(r3.LogLikA))
	assert.InDelta(t, r1.Score, r3.Score, 1e-12, "θS does not depend on ScoreOnly")
}

func TestShiftReproducibleAndScoreOnly(t *testing.T) {
	p := data.Gauss2D(150, 3)
	b := data.Gauss2D(120, 4).A // same distribution as p.A
	r1, err := ShiftTest(context.Background(), p.A, b, ShiftConfig{Permutations: 99, Seed: 11})
	require.NoError(t, err)
	r2, err := ShiftTest(context.Background(), p.A, b, ShiftConfig{Permutations: 99, Seed: 11})
	require.NoError(t, err)
	assert.Equal(t, r1.ScoreP, r2.ScoreP)
	assert.Equal(t, r1.DLambdaP, r2.DLambdaP)
	r3, err := ShiftTest(context.Background(), p.A, b, ShiftConfig{Permutations: 99, Seed: 11, ScoreOnly: true})
	require.NoError(t, err)
	assert.Equal(t, r1.ScoreP, r3.ScoreP)
	assert.True(t, math.IsNaN(r3.DLambda))
	assert.Equal(t, 150, r1.RowsA)
	assert.Equal(t, 120, r1.RowsB)
	assert.Equal(t, 2, r1.Dim)
}

func TestShiftErrors(t *testing.T) {
	ok := data.Gauss2D(50, 1)
	three := mat.NewDense(5, 3, []float64{1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 0, 4, 3, 1, 1})
	nan := mat.DenseCopyOf(ok.B)
	nan.Set(7, 1, math.NaN())
	two := mat.NewDense(2, 2, []float64{1, 2, 3, 5})
	line := mat.NewDense(4, 2, []float64{1, 1, 2, 2, 3, 3, 4, 4})
	cases := []struct {
		name string
		a, b *mat.Dense
		cfg  ShiftConfig
		want string
	}{
		{"dims", ok.A, three, ShiftConfig{}, "same dimension"},
		{"nan", ok.A, nan, ShiftConfig{}, "dataset B: row 7, column 1 is NaN"},
		{"empty", &mat.Dense{}, ok.B, ShiftConfig{}, "dataset A is empty"},
		{"few rows gaussian", two, ok.B, ShiftConfig{}, "too few rows: A has 2, the test needs at least 3"},
		{"negative N", ok.A, ok.B, ShiftConfig{Permutations: -1}, "Permutations = -1"},
		{"schedule", ok.A, ok.B, ShiftConfig{FitOptions: FitOptions{Schedule: "linear"}}, "Schedule"},
		{"density", ok.A, ok.B, ShiftConfig{Density: model.ModelSpec{Kind: "maf"}}, `unknown density "maf"`},
		{"degenerate", line, line, ShiftConfig{}, "not positive definite"},
		{"batch", ok.A, ok.B, ShiftConfig{FitOptions: FitOptions{GradientFit: true, Batch: 51}}, "Batch = 51"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ShiftTest(context.Background(), c.a, c.b, c.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ShiftTest(ctx, ok.A, ok.B, ShiftConfig{})
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
}

// BenchmarkShiftTestGaussian measures relabellings of the closed-form
// Gaussian at n = 2×2000, D = 2 (b.N relabellings in one call).
func BenchmarkShiftTestGaussian(b *testing.B) {
	p := data.MoonsPair(2000, 0.05, 50, 1)
	b.ResetTimer()
	res, err := ShiftTest(context.Background(), p.A, p.B, ShiftConfig{Permutations: b.N, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.MsPerPermutation*1e6, "ns/relabelling")
}

package lrmf

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/twosample"
	"github.com/lrmf-go/lrmf/native"
)

// randomRows returns per-row values of an evaluation of n rows of A and m
// of B, heavy-tailed (a few rows far out, as held-out log-densities are).
func randomRows(rng *rand.Rand, n, m int) rowValues {
	draw := func(k int, loc float64) []float64 {
		x := make([]float64, k)
		for i := range x {
			x[i] = loc + rng.NormFloat64()
			if rng.IntN(50) == 0 {
				x[i] -= 50 * rng.Float64()
			}
		}
		return x
	}
	return rowValues{lpA: draw(n, -1), lpTA: draw(n, -1.2), ld: draw(n, 0.1), lpB: draw(m, -0.8), lpSB: draw(m, -0.9)}
}

// The estimate's means and standard errors against a direct computation
// from the definitions: LRMF = mean u + mean v with u, v the per-row terms,
// SE = √(var u/n + var v/m) (n − 1 variances); trimmed, the k = ⌊g·n⌋
// extreme rows by u (and by v) are dropped from every term's mean and the
// variance is the winsorised one over (1 − 2k/n)².
func TestEstimateAgainstDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 7))
	const n, m = 400, 300
	v := randomRows(rng, n, m)
	u, w := make([]float64, n), make([]float64, m)
	for i := range u {
		u[i] = v.lpA[i] - v.lpTA[i] - v.ld[i]
	}
	for j := range w {
		w[j] = v.lpB[j] - v.lpSB[j]
	}
	meanOf := func(x []float64) float64 {
		s := 0.0
		for _, y := range x {
			s += y
		}
		return s / float64(len(x))
	}
	varOf := func(x []float64) float64 {
		mu, s := meanOf(x), 0.0
		for _, y := range x {
			s += (y - mu) * (y - mu)
		}
		return s / float64(len(x)-1)
	}

	e := v.estimate(nil, nil, true, -1)
	assert.InDelta(t, meanOf(u)+meanOf(w), e.LRMF, 1e-12)
	assert.InDelta(t, meanOf(v.lpA)+meanOf(v.lpB), e.CAB, 1e-12)
	assert.InDelta(t, meanOf(v.ld), e.LogDet, 1e-12)
	assert.InDelta(t, math.Sqrt(varOf(u)/n+varOf(w)/m), e.SE.LRMF, 1e-12)
	assert.InDelta(t, math.Sqrt(varOf(v.lpA)/n+varOf(v.lpB)/m), e.SE.CAB, 1e-12)
	assert.InDelta(t, math.Sqrt(varOf(v.lpTA)/n), e.SE.LogLikTA, 1e-12)
	assert.InDelta(t, math.Sqrt(varOf(v.lpSB)/m), e.SE.LogLikB, 1e-12)
	assert.InDelta(t, math.Sqrt(varOf(v.ld)/n), e.SE.LogDet, 1e-12)
	assert.Equal(t, [2]int{n, m}, [2]int{e.RowsA, e.RowsB})
	// Pairing: the SE of u is far below what independent terms would give.
	assert.Less(t, e.SE.LRMF, math.Sqrt((varOf(v.lpA)+varOf(v.lpTA)+varOf(v.ld))/n+(varOf(v.lpB)+varOf(v.lpSB))/m))

	// Trimmed by 5%: 20 rows of A, 15 of B at each end.
	const g = 0.05
	trimmed := func(x []float64, k int) (mu, se float64) {
		s := slices.Clone(x)
		slices.Sort(s)
		mu = meanOf(s[k : len(s)-k])
		for i := range k {
			s[i], s[len(s)-1-i] = s[k], s[len(s)-1-k]
		}
		return mu, math.Sqrt(varOf(s)/float64(len(s))) / (1 - 2*float64(k)/float64(len(s)))
	}
	et := v.estimate(nil, nil, true, g)
	require.Equal(t, [2]int{20, 15}, [2]int{et.TrimA, et.TrimB})
	mu, seu := trimmed(u, 20)
	mw, sew := trimmed(w, 15)
	assert.InDelta(t, mu+mw, et.LRMF, 1e-12)
	assert.InDelta(t, math.Hypot(seu, sew), et.SE.LRMF, 1e-12)
	assert.InDelta(t, et.LRMF, et.CAB-et.LogLikTA-et.LogLikB-et.LogDet, 1e-12)
	assert.Less(t, et.SE.LRMF, e.SE.LRMF, "trimming the far rows shrinks the SE")

	// Row subsets pick rows by index.
	sub := v.estimate([]int32{3, 5}, []int32{1}, false, -1)
	assert.InDelta(t, (u[3]+u[5])/2+w[1], sub.LRMF, 1e-12)
	assert.Nil(t, sub.SE)
}

// Every branch of the verdict (Status's table), on both sides of each
// boundary.
func TestVerdictTable(t *testing.T) {
	const d = 0.1
	cases := []struct {
		lrmf, ucb        float64
		tested, rejected bool
		want             Status
	}{
		{0.02, 0.07, true, false, Converged},
		{0.02, 0.07, false, false, Converged},
		{0.02, 0.07, true, true, Distinguishable},
		{0.05, 0.11, true, false, Inconclusive},
		{0.05, 0.11, true, true, Inconclusive},
		{0.10, 0.15, true, false, NotConverged},
		{0.30, 0.40, true, true, NotConverged},
		{-0.30, -0.15, true, true, Undershot},
		{-0.30, -0.15, false, false, Undershot},
		// Significantly below −δ, but the two-sample test cannot tell
		// T(A) from B: θS's larger sample, not an under-fitted c_AB.
		{-0.30, -0.15, true, false, Converged},
		// UCB at −δ exactly is not significantly below it.
		{-0.20, -0.10, true, true, Distinguishable},
		{-0.20, -0.10, false, false, Converged},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, heldOutVerdict(c.lrmf, c.ucb, d, c.tested, c.rejected), "%+v", c)
	}
	assert.Equal(t, Converged, verdict(0.099, d))
	assert.Equal(t, NotConverged, verdict(0.1, d))
	assert.Equal(t, Undershot, verdict(-0.1, d))
	assert.Equal(t, Converged, verdict(-0.099, d))
	assert.InDelta(t, 1.6448536269514722, zScore(0.95), 1e-12)
}

// The sentence says the verdict in words, with the held-out sizes, the
// bound and the two-sample test.
func TestVerdictSentence(t *testing.T) {
	cfg := Config{Threshold: 0.1, Confidence: 0.95, Alpha: 0.05}
	ts := &twosample.MMDResult{P: 0.41, RowsX: 400, RowsY: 400}
	h := &Estimate{RowsA: 400, RowsB: 400}
	r := &Result{Config: cfg, Status: Converged, LRMF: 0.031, LRMFSE: 0.024, UpperBound: 0.0705, HeldOut: h, TwoSample: ts}
	assert.Equal(t, "converged: LRMF = 0.031 ± 0.024 nats (held-out, 400 + 400 points; upper 95% bound 0.0705 < δ = 0.1); "+
		"two-sample test: T(A) and B indistinguishable (MMD p = 0.41, 400 + 400 held-out and validation points)", r.Verdict())
	for status, want := range map[Status]string{
		Distinguishable: "the density family cannot see the difference",
		Inconclusive:    "too uncertain",
		NotConverged:    "remain distinguishable to the density family",
		Undershot:       "c_AB is under-fitted",
	} {
		r.Status = status
		if status == Distinguishable {
			r.TwoSample = &twosample.MMDResult{P: 0.002, RowsX: 400, RowsY: 400}
		}
		assert.Contains(t, r.Verdict(), want, status)
		assert.True(t, strings.HasPrefix(r.Verdict(), string(status)+": "), status)
	}
	r = &Result{Config: cfg, Status: Converged, LRMF: 0.05, Train: Estimate{RowsA: 2000, RowsB: 2000}, TwoSample: ts}
	assert.Contains(t, r.Verdict(), "(training data, no held-out part, 2000 + 2000 points; |LRMF| < δ = 0.1)")
	assert.Contains(t, r.Verdict(), "not part of this verdict")
	assert.Contains(t, r.Summary(), "training data (2000 + 2000 points)")
}

// The split is a function of (seed, set, n, fractions): the same inputs
// give the same parts, another seed other ones; the parts are disjoint,
// cover every row, are sorted and have SplitSizes' sizes.
func TestSplitDeterministicAndDisjoint(t *testing.T) {
	for _, c := range []struct {
		n            int
		holdout, val float64
	}{{2000, 0.2, 0.1}, {301, 0.25, 0.5}, {50, -1, 0.1}, {50, 0.2, -1}, {50, -1, -1}} {
		s1 := splitSet(c.n, c.holdout, c.val, 7, 0)
		s2 := splitSet(c.n, c.holdout, c.val, 7, 0)
		assert.Equal(t, s1, s2)
		train, val, held := SplitSizes(c.n, c.holdout, c.val)
		require.Equal(t, [3]int{train, val, held}, [3]int{len(s1.train), len(s1.val), len(s1.held)}, "%+v", c)
		seen := make([]bool, c.n)
		for _, part := range [][]int32{s1.train, s1.val, s1.held} {
			assert.True(t, slices.IsSorted(part))
			for _, i := range part {
				require.False(t, seen[i], "row %d in two parts", i)
				seen[i] = true
			}
		}
		assert.NotContains(t, seen, false)
		if held > 0 && held < c.n {
			assert.NotEqual(t, s1.held, splitSet(c.n, c.holdout, c.val, 8, 0).held, "seed")
			assert.NotEqual(t, s1.held, splitSet(c.n, c.holdout, c.val, 7, 1).held, "set")
		}
	}
	train, val, held := SplitSizes(2000, 0.2, 0.1)
	assert.Equal(t, [3]int{1440, 160, 400}, [3]int{train, val, held})
}

// Bad split settings are errors naming the field, before any work.
func TestAlignSplitErrors(t *testing.T) {
	p := data.MoonsPair(200, 0.05, 50, 1)
	ctx := context.Background()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Holdout: 0.7}, "Config.Holdout = 0.7"},
		{Config{Holdout: math.NaN()}, "Config.Holdout = NaN"},
		{Config{Validation: 0.6}, "Config.Validation = 0.6"},
		{Config{Holdout: 0.04}, "Config.Holdout = 0.04 leaves 8 held-out rows of A's 200"},
		{Config{Confidence: 1}, "Config.Confidence"},
		{Config{Alpha: 1}, "Config.Alpha"},
		{Config{FitOptions: FitOptions{Trim: 0.3}}, "Config.Trim"},
		{Config{Restarts: -1}, "Config.Restarts"},
		{Config{FitOptions: FitOptions{Batch: 190}}, "Config.Batch = 190 exceeds the 144 training rows of A"},
		{Config{Restarts: 2, CheckpointEvery: 5}, "periodic checkpoints need a single restart"},
	} {
		_, err := Align(ctx, p.A, p.B, c.cfg)
		require.Error(t, err, c.want)
		assert.Contains(t, err.Error(), c.want)
	}
}

// earlyStop keeps the parameters of the best (smoothed) evaluation,
// stops Patience steps after the last improvement, and restores them.
func TestEarlyStopKeepsAndRestoresBest(t *testing.T) {
	be := native.NewRef()
	p := &model.Param{Name: "x", Value: be.New(1, 1), Grad: be.New(1, 1)}
	e := newEarlyStop(be, []*model.Param{p}, 300)
	// Evaluations every 100 steps of an objective that falls, then rises.
	values := []float64{5, 4, 3, 2, 2.5, 3, 3.5, 4, 4.5, 5}
	stopAt := 0
	for i, v := range values {
		step := 100 * (i + 1)
		be.Upload(p.Value, []float64{float64(step)}) // the parameter records its step
		if e.observe(step, v) {
			stopAt = step
			break
		}
	}
	// The smoothed values: 5, 4.7, 4.19, 3.533, 3.2231, 3.15617, 3.25932...
	// best at step 600; no improvement for 300 steps by step 900.
	assert.Equal(t, 900, stopAt)
	assert.Equal(t, 600, e.bestStep)
	e.restore()
	got := []float64{0}
	be.Download(got, p.Value)
	assert.Equal(t, 600.0, got[0])
	var rep PhaseReport
	e.report(&rep, 1)
	assert.Equal(t, 9, rep.Evaluations)
	assert.Equal(t, 600, rep.BestStep)
	assert.InDelta(t, 3.15617, rep.BestValue, 1e-5)

	// The plateau schedule divided the rate by √10 at step 800 (Patience/2
	// after the last improvement).
	assert.InDelta(t, plateauDecay, e.scale, 1e-15)
	assert.Equal(t, 800, e.lastDecay)
	assert.InDelta(t, 3e-3*plateauDecay, lrAt(Plateau, e, 3e-3, 900, 20000), 1e-15)
	assert.Equal(t, 3e-3, lrAt(Plateau, nil, 3e-3, 1, 20000), "no validation: cosine, which starts at the rate")
}

// A gradient fit whose validation rows come from elsewhere gets worse on
// them as it fits its training rows: early stopping ends it by patience
// and restores parameters better on the validation rows than those it
// stopped at.
func TestFitEarlyStoppingRestoresBest(t *testing.T) {
	be, err := native.Open(native.DefaultBackend(), native.Float64, 1)
	require.NoError(t, err)
	defer be.Close()
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 3))
	x, xv := mat.NewDense(1000, 2, nil), mat.NewDense(200, 2, nil)
	for i := range 1000 {
		x.Set(i, 0, 3+0.5*rng.NormFloat64())
		x.Set(i, 1, -2+0.5*rng.NormFloat64())
	}
	for i := range 200 {
		xv.Set(i, 0, rng.NormFloat64())
		xv.Set(i, 1, rng.NormFloat64())
	}
	opt := FitOptions{GradientFit: true, FitSteps: 4000, Batch: 100, FitLR: 0.02, Schedule: "constant", ClipNorm: 10, Tol: 1e-12,
		EvalEvery: 50, Patience: 400, Trim: -1}
	fit := func(o FitOptions, val bool) (PhaseReport, float64) {
		d := model.NewGaussian(be, 2)
		f := &fitter{opt: o, be: be, rng: rand.New(rand.NewPCG(1, 1)), dim: 2, every: 1 << 30}
		var v *native.Tensor
		if val {
			v = toTensor(be, xv)
		}
		rep, err := f.fit(context.Background(), "fit-A", d, toTensor(be, x), v)
		require.NoError(t, err)
		ll, err := model.MeanLogProb(be, d, toTensor(be, xv))
		require.NoError(t, err)
		return rep, ll
	}
	rep, restored := fit(opt, true)
	assert.Equal(t, "patience", rep.StoppedBy)
	assert.Less(t, rep.Steps, opt.FitSteps)
	assert.Less(t, rep.BestStep, rep.Steps)
	assert.GreaterOrEqual(t, rep.Steps-rep.BestStep, opt.Patience)
	// The same trajectory without validation, stopped where that fit
	// stopped: the parameters early stopping did not keep.
	o := opt
	o.FitSteps = rep.Steps
	_, last := fit(o, false)
	assert.Greater(t, restored, last+0.05, "restored %v, stopped at %v", restored, last)
	t.Logf("stopped at %d, best %d: validation ℓ %.4f restored, %.4f at the stop", rep.Steps, rep.BestStep, restored, last)
}

// Evaluating the validation objective allocates nothing once its buffers
// exist (it reuses the phase's batch buffers), for fits and the joint
// phase.
func TestValidationEvaluationAllocatesNothing(t *testing.T) {
	be, err := native.NewCPU(native.Float32, 1)
	if err != nil {
		t.Skip(err)
	}
	defer be.Close()
	j := newRealNVPJoint(t, be, model.RealNVPOptions{Hidden: 16}, 128)
	av, bv := toTensor(be, data.MoonsPair(300, 0.05, 50, 2).A), toTensor(be, data.MoonsPair(250, 0.05, 50, 3).B)
	val := j.newValidation(av, bv, make([]float64, 300), make([]float64, 250), 1000, 0.02)
	if _, err := val.lrmf(); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(20, func() {
		if _, err := val.lrmf(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("joint validation: %.1f allocations per evaluation, want 0", a)
	}
	d := j.dens
	xb, lp := be.New(256, 2), be.New(256, 1)
	fv := newFitValidation(be, d, av, xb, lp, 1000, 0.02)
	if _, err := fv.meanLogProb(); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(20, func() {
		if _, err := fv.meanLogProb(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("fit validation: %.1f allocations per evaluation, want 0", a)
	}
}

// Restarts: the same (seed, threads, restarts) give the same result; the
// kept restart is the one with the lowest validation LRMF; with two
// threads they run on two sibling backends at once (go test -race).
func TestRestarts(t *testing.T) {
	p := data.MoonsPair(600, 0.05, 50, 4)
	run := func() *Result {
		be, err := native.Open(native.DefaultBackend(), native.Float64, 2)
		require.NoError(t, err)
		defer be.Close()
		spec := model.ModelSpec{Kind: "realnvp", Blocks: 2, Hidden: 8}
		res, err := Align(context.Background(), p.A, p.B, Config{Backend: be, Flow: spec, Density: spec, Steps: 300, LR: 3e-3, Seed: 5,
			Restarts: 3, FitOptions: FitOptions{FitSteps: 200, Batch: 64, EvalEvery: 50, Patience: 1000}})
		require.NoError(t, err)
		return res
	}
	r1, r2 := run(), run()
	require.Len(t, r1.Restarts, 3)
	chosen, seeds := -1, map[uint64]bool{}
	for i, rr := range r1.Restarts {
		assert.Equal(t, i, rr.Index)
		seeds[rr.Seed] = true
		if rr.Chosen {
			require.Equal(t, -1, chosen, "one restart is chosen")
			chosen = i
		}
		assert.Equal(t, 6, rr.Steps/50, "every restart ran its budget: %+v", rr)
	}
	assert.Len(t, seeds, 3, "each restart has its own seed")
	require.NotEqual(t, -1, chosen)
	for _, rr := range r1.Restarts {
		assert.LessOrEqual(t, r1.Restarts[chosen].ValidationLRMF, rr.ValidationLRMF)
	}
	assert.NotEqual(t, r1.Restarts[0].ValidationLRMF, r1.Restarts[1].ValidationLRMF, "restarts differ")
	assert.Equal(t, r1.History, r2.History)
	assert.Equal(t, math.Float64bits(r1.LRMF), math.Float64bits(r2.LRMF))
	assert.Equal(t, r1.Transformed.RawMatrix().Data, r2.Transformed.RawMatrix().Data)
	for i := range r1.Restarts {
		a, b := r1.Restarts[i], r2.Restarts[i]
		a.Seconds, b.Seconds = 0, 0
		assert.Equal(t, a, b)
	}
	// The Result's models are the chosen restart's: its held-out LRMF is
	// the run's.
	assert.InDelta(t, r1.Restarts[chosen].LRMF, r1.LRMF, 1e-9)
	assert.Equal(t, r1.Restarts[chosen].Steps, r1.Steps)

	// The two-sample test sees every point no model was fitted to: the
	// held-out and validation parts of each set, and nothing else.
	cfg := r1.Config
	sa, sb := splitSet(600, cfg.Holdout, cfg.Validation, cfg.Seed, 0), splitSet(600, cfg.Holdout, cfg.Validation, cfg.Seed, 1)
	ia, ib := unionRows(sa.held, sa.val), unionRows(sb.held, sb.val)
	require.NotNil(t, r1.TwoSample)
	require.Equal(t, len(ia), r1.TwoSample.RowsX)
	require.Equal(t, len(ib), r1.TwoSample.RowsY)
	assert.Equal(t, r1.HeldOut.RowsA+r1.Validation.RowsA, r1.TwoSample.RowsX)
	want, err := twosample.MMD(rowsOf(r1.Transformed, ia), rowsOf(p.B, ib), twosample.MMDOptions{Seed: cfg.Seed})
	require.NoError(t, err)
	assert.Equal(t, want.MMD2, r1.TwoSample.MMD2)
	assert.Equal(t, want.P, r1.TwoSample.P)
}

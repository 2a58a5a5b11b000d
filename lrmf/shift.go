package lrmf

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// ShiftConfig configures ShiftTest. The zero value of every field selects
// the default given in its comment, from DefaultShiftConfig.
type ShiftConfig struct {
	// Backend runs the generic path (default: as Config.Backend,
	// native.DefaultBackend() in DefaultDType, opened and closed by
	// ShiftTest). The closed-form Gaussian path computes on the host in
	// float64 and does not use it.
	Backend native.Backend
	// Density names the density family M (default {Kind: "gaussian"}).
	Density model.ModelSpec
	// NewDensity, when not nil, builds a custom density instead of Density
	// (always on the generic path).
	NewDensity model.DensityMaker

	// Permutations is N, the number of random relabellings of A ∪ B
	// (default DefaultPermutations; negative is an error). Cost: the score
	// statistic needs only θS, fitted once, so each relabelling costs two
	// log-likelihood passes and one gradient pass over A ∪ B. dΛ refits θA and θB
	// to every relabelled pair: free with the closed-form Gaussian
	// (tens of thousands of relabellings per second at n = 2×2000, D = 2),
	// but two gradient fits of FitSteps steps each otherwise (a Real NVP
	// density: seconds per relabelling, so minutes for N = 199; lower N or
	// set ScoreOnly).
	Permutations int
	// Seed seeds the relabellings and, on the generic path, density
	// initialisation and the fits' batch order (default 1, as Config.Seed:
	// Seed 0 and Seed 1 are the same test).
	Seed uint64
	// ScoreOnly skips dΛ (no per-relabelling fits): the result's DLambda,
	// DLambdaP, LogLikA and LogLikB are NaN.
	ScoreOnly bool

	// FitOptions configure the fits of θS, θA, θB exactly as they configure
	// Align's θA*, θB* (GradientFit: gradient fits even when the density has
	// a closed-form MLE); defaults FitSteps 2000, Batch 256 (each fit step
	// draws 2b rows), FitLR 3e-3, Schedule cosine, ClipNorm 10, Tol 1e-4,
	// EvalEvery 250, Patience 500.
	FitOptions
	// Validation is the fraction of each fitted set (A ∪ B for θS, A and B
	// of every labelling for θA, θB) that a gradient fit holds out for early
	// stopping, as Align's fits do (default 0.1, at most 0.5; negative:
	// none, the fits use every row and run to FitSteps or Tol). The rows
	// held out are the same positions of every labelling, drawn once from
	// Seed, so the permutation test stays exact. The statistics are always
	// evaluated on every row. Closed-form fits ignore it.
	Validation float64

	// Progress, if not nil, is called after the observed statistics
	// (done = 0) and after each relabelling, with total = N.
	Progress func(done, total int)
}

// withDefaults fills c's zero fields from DefaultShiftConfig for datasets
// of na and nb rows and normalises the density spec.
func (c ShiftConfig) withDefaults(na, nb int) ShiftConfig {
	d := DefaultShiftConfig()
	if c.Density.Kind == "" {
		c.Density.Kind = d.Density.Kind
	}
	c.Density = c.Density.Normalized()
	if c.Permutations == 0 {
		c.Permutations = d.Permutations
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if c.Validation == 0 {
		c.Validation = d.Validation
	}
	ta, _, _ := SplitSizes(na, 0, c.Validation)
	tb, _, _ := SplitSizes(nb, 0, c.Validation)
	c.FitOptions = c.FitOptions.withDefaults(d.FitOptions, max(ta, 1), max(tb, 1))
	return c
}

// validate checks a filled-in configuration for datasets of na and nb rows.
func (c ShiftConfig) validate(na, nb int) error {
	if c.Permutations < 0 {
		return fmt.Errorf("lrmf: ShiftConfig.Permutations = %d is negative (0 selects %d)", c.Permutations, DefaultPermutations)
	}
	if math.IsNaN(c.Validation) || c.Validation > 0.5 {
		return fmt.Errorf("lrmf: ShiftConfig.Validation = %v: want a fraction in (0, 0.5], or negative for none", c.Validation)
	}
	return c.FitOptions.validate("ShiftConfig", na, nb)
}

// ShiftResult is the outcome of ShiftTest on A (RowsA×Dim) and B
// (RowsB×Dim). Log-likelihoods are per-sample means in nats.
//
// θS is fitted to the pooled rows A ∪ B (each row weighted equally, the
// maximum of nA·ℓ(A; θ) + nB·ℓ(B; θ)); θA, θB to A and B alone.
type ShiftResult struct {
	// Density is the density family used (Normalized; Kind "custom" for
	// ShiftConfig.NewDensity), and ClosedForm whether the fits were
	// closed-form MLEs (false: gradient fits).
	Density    model.ModelSpec
	ClosedForm bool
	// RowsA, RowsB, Dim are nA, nB and D.
	RowsA, RowsB, Dim int
	// Permutations is N, the relabellings drawn; Seed their seed.
	Permutations int
	Seed         uint64

	// Score is the score-test statistic of supplementary §8.4,
	// S = ‖g_A‖ + ‖g_B‖ with g_X = ∇θ ℓ(X; θ) at θ = θS (Euclidean norm
	// over all of the density's parameters). Under H0 (one θ is optimal
	// for both sets) both gradients vanish as the sets grow; GradA and
	// GradB are ‖g_A‖ and ‖g_B‖.
	//
	// S assumes θS is (close to) a maximiser: a residual pooled gradient g
	// (GradPooled = ‖∇θ ℓ(A ∪ B; θS)‖, 0 up to rounding for closed-form
	// fits) adds about 2‖g‖ to S under every relabelling and masks the
	// shift: with g_A = g + a, g_B = g + b and nA·a + nB·b = 0,
	// S ≈ 2‖g‖ + ĝ·(a + b) to first order, and a + b = 0 when nA = nB. An
	// under-fitted θS thus costs the score test power; give gradient fits
	// more steps when GradPooled is not small next to S.
	Score, GradA, GradB, GradPooled float64
	// ScoreP is the permutation p-value of Score:
	// (1 + #{relabellings with S* ≥ S}) / (N + 1).
	ScoreP float64

	// DLambda is dΛ = ℓ(A; θA) + ℓ(B; θB) − ℓ(A; θS) − ℓ(B; θS), in nats:
	// ≥ 0 when θA and θB are exact maxima (θA maximises ℓ(A; ·), so
	// ℓ(A; θA) ≥ ℓ(A; θS), and likewise for B). With nA = nB, θS also
	// maximises ℓ(A; θ) + ℓ(B; θ) and dΛ is METHOD §2's likelihood ratio;
	// for the Gaussian it is then ln det Σ_S − ½ ln det S_A − ½ ln det S_B.
	// With nA ≠ nB it is at least METHOD's value (θS maximises the
	// size-weighted sum instead); gaussShift derives the Gaussian's form.
	// DLambdaP is its permutation p-value. Both are NaN with ScoreOnly.
	DLambda, DLambdaP float64
	// LogLikA = ℓ(A; θA), LogLikB = ℓ(B; θB) (NaN with ScoreOnly);
	// LogLikSA = ℓ(A; θS), LogLikSB = ℓ(B; θS).
	LogLikA, LogLikB, LogLikSA, LogLikSB float64

	// Seconds is the whole call's wall time; MsPerPermutation the mean time
	// of one relabelling (refits and statistics), in milliseconds.
	Seconds, MsPerPermutation float64
}

// shiftStats are the statistics of one labelling.
type shiftStats struct {
	gradA, gradB   float64
	llA, llB       float64 // ℓ(A; θA), ℓ(B; θB); NaN when score-only
	llSA, llSB     float64 // ℓ(A; θS), ℓ(B; θS)
	score, dLambda float64
	scoreOnly      bool
}

func (s *shiftStats) finish() {
	s.score = s.gradA + s.gradB
	s.dLambda = math.NaN()
	if !s.scoreOnly {
		s.dLambda = s.llA + s.llB - s.llSA - s.llSB
	}
}

// shiftEval computes the statistics of a labelling: a and b are the rows
// of the pooled data [A; B] that form the relabelled A and B.
type shiftEval interface {
	eval(ctx context.Context, a, b []int32) (shiftStats, error)
	// pooledGrad returns ‖∇θ ℓ(A ∪ B; θS)‖.
	pooledGrad() (float64, error)
}

// ShiftTest tests whether datasets A (nA×D) and B (nB×D) come from the same
// distribution as far as the density family M can tell, with two
// statistics and permutation p-values:
//
//   - the score test (supplementary §8.4): fit one θS to A ∪ B, then
//     S = ‖∇θ ℓ(A; θS)‖ + ‖∇θ ℓ(B; θS)‖ (ℓ the per-sample mean
//     log-likelihood);
//   - the likelihood ratio dΛ = ℓ(A; θA) + ℓ(B; θB) − ℓ(A; θS) − ℓ(B; θS),
//     with θA, θB fitted to each set alone (see ShiftResult.DLambda).
//
// Fits are closed-form MLEs when the density implements model.MLEFitter (and
// GradientFit is not set), else the Adam fits Align uses for θA*, θB*.
// Gradient fits of θA and θB start from θS's initial parameters, so the
// three fits get the same budget from the same start, as Align's do
// (warm-starting them from the fitted θS gives them more optimisation than
// θS: with Real NVP on two draws of one distribution that inflated dΛ by
// 0.09–0.11 nats, against 0.00–0.02 cold). The p-values come from N random
// relabellings of A ∪ B into sets of nA and nB rows (drawn from Seed, so
// reproducible): each statistic is recomputed on every relabelling and
// p = (1 + #{relabelled ≥ observed}) / (N + 1), counting values within a
// relative 1e-9 of the observed one as ties (≥), so rounding cannot make
// the test anti-conservative. Under H0 (A and B exchangeable) p is
// uniform on {1/(N+1), …, 1}: P(p ≤ α) ≤ α for any α. See
// ShiftConfig.Permutations for the cost.
//
// The Gaussian density with closed-form fits runs on the host from
// sufficient statistics (Σx, Σxxᵀ over the smaller set); every other
// density on the backend. Errors: empty or non-finite data, different
// dimensions, fewer than 2 rows in a set (D+1 for the Gaussian), a bad
// configuration, a singular covariance, ErrDiverged (wrapped) from a
// gradient fit, or ctx.Err() when the context ends the run.
func ShiftTest(ctx context.Context, a, b *mat.Dense, cfg ShiftConfig) (*ShiftResult, error) {
	start := time.Now()
	na, nb, dim, err := checkPair(a, b)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(na, nb)
	if err := cfg.validate(na, nb); err != nil {
		return nil, err
	}
	spec, mk := cfg.Density, cfg.NewDensity
	if mk != nil {
		spec = model.ModelSpec{Kind: "custom"}
	} else if spec.Kind != "gaussian" || cfg.GradientFit {
		if mk, err = spec.DensityMaker(); err != nil {
			return nil, err
		}
	}
	minRows := 2
	if spec.Kind == "gaussian" {
		minRows = dim + 1
	}
	for _, s := range []struct {
		name string
		n    int
	}{{"A", na}, {"B", nb}} {
		if s.n < minRows {
			return nil, fmt.Errorf("lrmf: too few rows: %s has %d, the test needs at least %d per set (%s density, D = %d)", s.name, s.n, minRows, spec.Kind, dim)
		}
	}
	res := &ShiftResult{Density: spec, RowsA: na, RowsB: nb, Dim: dim, Permutations: cfg.Permutations, Seed: cfg.Seed}

	// Pooled rows [A; B]; idx holds the smaller set's rows first (see
	// labels), so the observed labelling is idx as built.
	n := na + nb
	pooled := mat.NewDense(n, dim, nil)
	pooled.Slice(0, na, 0, dim).(*mat.Dense).Copy(a)
	pooled.Slice(na, n, 0, dim).(*mat.Dense).Copy(b)
	k := min(na, nb)
	idx := make([]int32, 0, n)
	if na <= nb {
		for i := range n {
			idx = append(idx, int32(i))
		}
	} else {
		for i := na; i < n; i++ {
			idx = append(idx, int32(i))
		}
		for i := range na {
			idx = append(idx, int32(i))
		}
	}
	labels := func() (ia, ib []int32) {
		if na <= nb {
			return idx[:k], idx[k:]
		}
		return idx[k:], idx[:k]
	}

	var ev shiftEval
	if mk == nil { // the Gaussian with closed-form fits
		g, err := newGaussShift(pooled, na, nb, cfg.ScoreOnly)
		if err != nil {
			return nil, err
		}
		ev, res.ClosedForm = g, true
	} else {
		be, owned, err := openBackend(cfg.Backend)
		if err != nil {
			return nil, err
		}
		if owned {
			defer be.Close()
		}
		g, err := newGenericShift(ctx, be, pooled, na, nb, mk, cfg)
		if err != nil {
			return nil, err
		}
		ev, res.ClosedForm = g, g.closedForm
	}

	ia, ib := labels()
	obs, err := ev.eval(ctx, ia, ib)
	if err != nil {
		return nil, err
	}
	if !finite(obs.score) || (!cfg.ScoreOnly && !finite(obs.dLambda)) {
		return nil, fmt.Errorf("lrmf: %w: the statistics are not finite (S = %v, dΛ = %v)", ErrDiverged, obs.score, obs.dLambda)
	}
	if cfg.Progress != nil {
		cfg.Progress(0, cfg.Permutations)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7065726d)) // "perm"
	geScore, geDL := 0, 0
	permStart := time.Now()
	for p := 1; p <= cfg.Permutations; p++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Partial Fisher–Yates: idx[:k] becomes a uniform random k-subset
		// of the pooled rows (uniform whatever idx held before).
		for i := range k {
			j := i + rng.IntN(n-i)
			idx[i], idx[j] = idx[j], idx[i]
		}
		ia, ib := labels()
		st, err := ev.eval(ctx, ia, ib)
		if err != nil {
			return nil, fmt.Errorf("lrmf: relabelling %d: %w", p, err)
		}
		if atLeast(st.score, obs.score) {
			geScore++
		}
		if !cfg.ScoreOnly && atLeast(st.dLambda, obs.dLambda) {
			geDL++
		}
		if cfg.Progress != nil {
			cfg.Progress(p, cfg.Permutations)
		}
	}
	res.MsPerPermutation = 1000 * time.Since(permStart).Seconds() / float64(cfg.Permutations)

	np1 := float64(cfg.Permutations + 1)
	res.Score, res.GradA, res.GradB = obs.score, obs.gradA, obs.gradB
	if res.GradPooled, err = ev.pooledGrad(); err != nil {
		return nil, err
	}
	res.ScoreP = float64(1+geScore) / np1
	res.DLambda, res.DLambdaP = math.NaN(), math.NaN()
	res.LogLikA, res.LogLikB, res.LogLikSA, res.LogLikSB = obs.llA, obs.llB, obs.llSA, obs.llSB
	if !cfg.ScoreOnly {
		res.DLambda = obs.dLambda
		res.DLambdaP = float64(1+geDL) / np1
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// atLeast reports x ≥ obs, counting values within a relative 1e-9 of obs
// as ties (a relabelling that reproduces the observed split sums the same
// rows in another order) and a NaN as ≥: both err on the conservative
// side.
func atLeast(x, obs float64) bool {
	return x >= obs-1e-9*math.Abs(obs) || math.IsNaN(x)
}

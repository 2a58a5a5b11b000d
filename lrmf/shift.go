package lrmf

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/native"
)

// DefaultPermutations is the number of relabellings ShiftTest draws when
// ShiftConfig.Permutations is 0. With N relabellings the smallest p-value
// the test can report is 1/(N+1): 0.005 for 199.
const DefaultPermutations = 199

// ShiftConfig configures ShiftTest. The zero value of every field selects
// the default given in its comment.
type ShiftConfig struct {
	// Backend runs the generic path (default: native.DefaultBackend() in
	// float64 with one thread per CPU). The closed-form Gaussian path
	// computes on the host in float64 and does not use it.
	Backend native.Backend
	// Density names the density family M (default {Kind: "gaussian"}).
	Density ModelSpec
	// NewDensity, when not nil, builds a custom density instead of Density
	// (always on the generic path).
	NewDensity DensityMaker

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
	// initialisation and the fits' batch order.
	Seed uint64
	// ScoreOnly skips dΛ (no per-relabelling fits): the result's DLambda,
	// DLambdaP, LogLikA and LogLikB are NaN.
	ScoreOnly bool

	// GradientFit fits θS, θA, θB by gradient ascent even when the density
	// has a closed-form MLE. The other fields below configure gradient fits
	// exactly as the same-named Config fields do for Align's θA*, θB*.
	GradientFit bool
	FitSteps    int     // step budget of each fit (default 2000)
	Batch       int     // b: each fit step draws 2b rows (default 256, capped at the smaller set)
	LR          float64 // Adam's learning rate (default 0.01)
	Schedule    string  // "cosine" (default) or "constant"
	ClipNorm    float64 // gradient-norm cap (default 10; negative: none)
	Tol         float64 // a fit stops when its full-data gradient norm is below Tol (default 1e-4)

	// Progress, if not nil, is called after the observed statistics
	// (done = 0) and after each relabelling, with total = N.
	Progress func(done, total int)
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
	Density    ModelSpec
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

func (c ShiftConfig) validate() error {
	switch {
	case c.Permutations < 0:
		return fmt.Errorf("lrmf: ShiftConfig.Permutations = %d is negative (0 selects %d)", c.Permutations, DefaultPermutations)
	case c.FitSteps < 0:
		return fmt.Errorf("lrmf: ShiftConfig.FitSteps = %d is negative", c.FitSteps)
	case c.Batch < 0:
		return fmt.Errorf("lrmf: ShiftConfig.Batch = %d is negative", c.Batch)
	case !(c.LR >= 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("lrmf: ShiftConfig.LR = %v must be positive and finite (0 selects the default)", c.LR)
	case c.Schedule != "" && c.Schedule != "cosine" && c.Schedule != "constant":
		return fmt.Errorf("lrmf: ShiftConfig.Schedule = %q: want \"cosine\" or \"constant\"", c.Schedule)
	case math.IsNaN(c.ClipNorm) || math.IsInf(c.ClipNorm, 0):
		return fmt.Errorf("lrmf: ShiftConfig.ClipNorm = %v must be finite", c.ClipNorm)
	case !(c.Tol >= 0) || math.IsInf(c.Tol, 0):
		return fmt.Errorf("lrmf: ShiftConfig.Tol = %v must be non-negative and finite", c.Tol)
	}
	return nil
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
// Fits are closed-form MLEs when the density implements MLEFitter (and
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
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Permutations == 0 {
		cfg.Permutations = DefaultPermutations
	}
	spec := cfg.Density
	if spec.Kind == "" {
		spec.Kind = "gaussian"
	}
	spec = spec.Normalized()
	if cfg.NewDensity != nil {
		spec = ModelSpec{Kind: "custom"}
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
	if spec.Kind == "gaussian" && cfg.NewDensity == nil && !cfg.GradientFit {
		g, err := newGaussShift(pooled, na, nb, cfg.ScoreOnly)
		if err != nil {
			return nil, err
		}
		ev, res.ClosedForm = g, true
	} else {
		be := cfg.Backend
		if be == nil {
			var err error
			if be, err = native.Open(native.DefaultBackend(), native.Float64, 0); err != nil {
				return nil, err
			}
			defer be.Close()
		}
		g, err := newGenericShift(ctx, be, pooled, na, nb, spec, cfg)
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

// gaussShift evaluates the statistics of the full-covariance Gaussian with
// closed-form fits from sufficient statistics, on the host in float64.
//
// The rows are centred at the pooled mean μS, so θS = (μS = 0,
// L = Σ_S^{-1/2}) with Σ_S = (1/n) Σ x xᵀ is fixed under relabelling. For
// a set X of m rows, with d_X = mean x and C_X = mean x xᵀ (second moment
// about μS) and S_X = C_X − d_X d_Xᵀ its own MLE covariance:
//
//	ℓ(X; θX) = −(D/2) ln 2π − ½ ln det S_X − D/2,
//	ℓ(X; θS) = −(D/2) ln 2π − ½ ln det Σ_S − ½ tr(Σ_S⁻¹ C_X),
//	∇μ ℓ(X; θS) = Σ_S⁻¹ d_X,   ∇L ℓ(X; θS) = −L C_X + L⁻ᵀ   (Gaussian.Backward
//	with weights 1/m), L⁻ᵀ = Σ_S^{1/2}.
//
// Hence dΛ = ln det Σ_S − ½ ln det S_A − ½ ln det S_B − D +
// ½ tr(Σ_S⁻¹ (C_A + C_B)); Σ_S = w_A C_A + w_B C_B (w_X = n_X/n), so with
// n_A = n_B the trace is 2D and dΛ = ln det Σ_S − ½ ln det S_A − ½ ln det S_B.
// Only the smaller set's sums are accumulated per labelling; the other's
// are the pooled totals minus them.
type gaussShift struct {
	d, na, nb int
	x         []float64 // centred pooled rows, n×d
	// Σ_S⁻¹, L = Σ_S^{-1/2}, L⁻ᵀ = Σ_S^{1/2} (row-major d×d), ln det Σ_S.
	prec, l, linvT []float64
	logdetS        float64
	t1, t2         []float64 // Σ x, Σ x xᵀ over all rows
	s1, s2         []float64 // over the smaller set
	cov, chol      []float64 // scratch: a set's S_X and its Cholesky factor
	gl             []float64 // scratch: ∇L
	scoreOnly      bool
	// gradMu, gradL hold the last eval's gradients, A's then B's (tests).
	gradMu, gradL [2][]float64
}

func newGaussShift(pooled *mat.Dense, na, nb int, scoreOnly bool) (*gaussShift, error) {
	n, d := pooled.Dims()
	g := &gaussShift{d: d, na: na, nb: nb, x: make([]float64, n*d), scoreOnly: scoreOnly,
		t1: make([]float64, d), t2: make([]float64, d*d), s1: make([]float64, d), s2: make([]float64, d*d),
		cov: make([]float64, d*d), chol: make([]float64, d*d), gl: make([]float64, d*d)}
	for i := range 2 {
		g.gradMu[i], g.gradL[i] = make([]float64, d), make([]float64, d*d)
	}
	mean := make([]float64, d)
	for i := range n {
		for j := range d {
			mean[j] += pooled.At(i, j)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := range n {
		for j := range d {
			g.x[i*d+j] = pooled.At(i, j) - mean[j]
		}
	}
	g.sums(g.t1, g.t2, nil, n)
	sigma := mat.NewSymDense(d, nil)
	for j := range d {
		for k := j; k < d; k++ {
			sigma.SetSym(j, k, g.t2[j*d+k]/float64(n))
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(sigma) {
		return nil, fmt.Errorf("lrmf: the pooled covariance of A ∪ B is not positive definite (are the data degenerate?)")
	}
	g.logdetS = chol.LogDet()
	var prec mat.SymDense
	if err := chol.InverseTo(&prec); err != nil {
		return nil, fmt.Errorf("lrmf: the pooled covariance of A ∪ B: %w", err)
	}
	l, err := symPow(sigma, -0.5)
	if err != nil {
		return nil, fmt.Errorf("lrmf: the pooled covariance of A ∪ B: %w", err)
	}
	linv, err := symPow(sigma, 0.5)
	if err != nil {
		return nil, fmt.Errorf("lrmf: the pooled covariance of A ∪ B: %w", err)
	}
	g.prec, g.l, g.linvT = make([]float64, d*d), l.RawMatrix().Data, linv.RawMatrix().Data
	for j := range d {
		for k := range d {
			g.prec[j*d+k] = prec.At(j, k)
		}
	}
	return g, nil
}

// sums sets s1 = Σ x_i and the upper triangle of s2 = Σ x_i x_iᵀ over the
// rows rows (all n rows when rows is nil), then mirrors s2.
func (g *gaussShift) sums(s1, s2 []float64, rows []int32, n int) {
	d := g.d
	clear(s1)
	clear(s2)
	add := func(r []float64) {
		for j, v := range r {
			s1[j] += v
			row := s2[j*d:]
			for k := j; k < d; k++ {
				row[k] += v * r[k]
			}
		}
	}
	if rows == nil {
		for i := range n {
			add(g.x[i*d : (i+1)*d])
		}
	} else {
		for _, i := range rows {
			add(g.x[int(i)*d : (int(i)+1)*d])
		}
	}
	for j := range d {
		for k := range j {
			s2[j*d+k] = s2[k*d+j]
		}
	}
}

func (g *gaussShift) eval(_ context.Context, a, b []int32) (shiftStats, error) {
	st := shiftStats{scoreOnly: g.scoreOnly}
	small, smallIsA := a, true
	if len(b) < len(a) {
		small, smallIsA = b, false
	}
	g.sums(g.s1, g.s2, small, 0)
	d := g.d
	const ln2pi = 1.8378770664093453 // ln 2π
	// set 0 is A, set 1 is B.
	for set := range 2 {
		m := g.na
		if set == 1 {
			m = g.nb
		}
		fromSmall := (set == 0) == smallIsA
		inv := 1 / float64(m)
		dx, c := g.gradMu[set], g.cov // d_X, then C_X in cov
		for j := range d {
			s := g.s1[j]
			if !fromSmall {
				s = g.t1[j] - s
			}
			dx[j] = s * inv
		}
		for j := range d * d {
			s := g.s2[j]
			if !fromSmall {
				s = g.t2[j] - s
			}
			c[j] = s * inv
		}
		// ℓ(X; θS) and ∇L = −L C_X + L⁻ᵀ.
		tr := 0.0
		for j := range d {
			for k := range d {
				tr += g.prec[j*d+k] * c[k*d+j]
			}
		}
		llS := -0.5*float64(d)*ln2pi - 0.5*g.logdetS - 0.5*tr
		gl := g.gradL[set]
		norm2 := 0.0
		for j := range d {
			for k := range d {
				s := 0.0
				for t := range d {
					s += g.l[j*d+t] * c[t*d+k]
				}
				gl[j*d+k] = g.linvT[j*d+k] - s
				norm2 += gl[j*d+k] * gl[j*d+k]
			}
		}
		// ∇μ = Σ_S⁻¹ d_X, written over d_X (gradMu) via gl's scratch row.
		mu := g.gl[:d]
		for j := range d {
			s := 0.0
			for k := range d {
				s += g.prec[j*d+k] * dx[k]
			}
			mu[j] = s
		}
		llX := math.NaN()
		if !g.scoreOnly {
			// S_X = C_X − d_X d_Xᵀ; ln det S_X by Cholesky.
			for j := range d {
				for k := range d {
					c[j*d+k] -= dx[j] * dx[k]
				}
			}
			ld, ok := cholLogDet(c, g.chol, d)
			if !ok {
				return st, fmt.Errorf("lrmf: the covariance of the %s set (%d rows) is not positive definite", "AB"[set:set+1], m)
			}
			llX = -0.5*float64(d)*ln2pi - 0.5*ld - 0.5*float64(d)
		}
		copy(dx, mu)
		for _, v := range dx {
			norm2 += v * v
		}
		if set == 0 {
			st.gradA, st.llSA, st.llA = math.Sqrt(norm2), llS, llX
		} else {
			st.gradB, st.llSB, st.llB = math.Sqrt(norm2), llS, llX
		}
	}
	st.finish()
	return st, nil
}

// pooledGrad returns ‖∇θ ℓ(A ∪ B; θS)‖ from the totals: ∇μ = Σ_S⁻¹ mean x,
// ∇L = −L Σ_S + L⁻ᵀ (both 0 up to rounding).
func (g *gaussShift) pooledGrad() (float64, error) {
	d, n := g.d, float64(len(g.x)/g.d)
	norm2 := 0.0
	for j := range d {
		mu, gl := 0.0, 0.0
		for k := range d {
			mu += g.prec[j*d+k] * g.t1[k] / n
			s := 0.0
			for t := range d {
				s += g.l[j*d+t] * g.t2[t*d+k] / n
			}
			gl = g.linvT[j*d+k] - s
			norm2 += gl * gl
		}
		norm2 += mu * mu
	}
	return math.Sqrt(norm2), nil
}

// cholLogDet returns ln det of the symmetric d×d matrix a (row-major) by
// an in-place Cholesky factorisation into l, and false when a is not
// positive definite.
func cholLogDet(a, l []float64, d int) (float64, bool) {
	ld := 0.0
	for j := range d {
		s := a[j*d+j]
		for k := range j {
			s -= l[j*d+k] * l[j*d+k]
		}
		if !(s > 0) || math.IsInf(s, 0) {
			return math.NaN(), false
		}
		ljj := math.Sqrt(s)
		l[j*d+j] = ljj
		ld += 2 * math.Log(ljj)
		for i := j + 1; i < d; i++ {
			s := a[i*d+j]
			for k := range j {
				s -= l[i*d+k] * l[j*d+k]
			}
			l[i*d+j] = s / ljj
		}
	}
	return ld, true
}

// genericShift evaluates the statistics with any Density on a backend: θS
// is fitted once to A ∪ B; each labelling gathers its two sets, evaluates
// ℓ and ‖∇θ ℓ‖ at θS on each, and (unless score-only) fits θA and θB,
// starting from θS's initial parameters, with Align's fitting code.
type genericShift struct {
	r          *run
	pooled     *native.Tensor
	xa, xb     *native.Tensor
	ds, da, db Density
	gA, gB     *fullGrad
	scoreOnly  bool
	closedForm bool
	init       []*native.Tensor // θS before its fit: where θA, θB start
}

func newGenericShift(ctx context.Context, be native.Backend, pooled *mat.Dense, na, nb int, spec ModelSpec, sc ShiftConfig) (*genericShift, error) {
	_, dim := pooled.Dims()
	cfg := Config{Backend: be, Density: spec, NewDensity: sc.NewDensity, GradientFit: sc.GradientFit,
		FitSteps: sc.FitSteps, Batch: sc.Batch, LR: sc.LR, FitLR: sc.LR, Schedule: sc.Schedule,
		ClipNorm: sc.ClipNorm, Tol: sc.Tol, Seed: sc.Seed}
	cfg = cfg.withDefaults(na, nb)
	if cfg.Batch > min(na, nb) {
		return nil, fmt.Errorf("lrmf: ShiftConfig.Batch = %d exceeds the rows of the smaller set (%d)", cfg.Batch, min(na, nb))
	}
	if cfg.NewDensity == nil {
		mk, err := spec.DensityMaker()
		if err != nil {
			return nil, err
		}
		cfg.NewDensity = mk
	}
	pcg := rand.NewPCG(cfg.Seed, 0x6c726d66) // "lrmf", as Align
	r := &run{cfg: cfg, be: be, pcg: pcg, rng: rand.New(pcg), start: time.Now(), dim: dim}
	g := &genericShift{r: r, scoreOnly: sc.ScoreOnly}
	g.pooled = toTensor(be, pooled)
	g.xa, g.xb = be.New(na, dim), be.New(nb, dim)
	var err error
	newDensity := func(which string) (Density, error) {
		d, err := cfg.NewDensity(be, dim, r.rng)
		if err != nil {
			return nil, fmt.Errorf("lrmf: building the density for %s: %w", which, err)
		}
		return d, nil
	}
	if g.ds, err = newDensity("S"); err != nil {
		return nil, err
	}
	_, mle := g.ds.(MLEFitter)
	g.closedForm = mle && !cfg.GradientFit
	// θS is fitted before θA, θB are built, so it does not depend on
	// ScoreOnly (building a density may draw from r.rng).
	for _, p := range g.ds.Params() {
		t := be.New(p.Value.Rows(), p.Value.Cols())
		be.Copy(t, p.Value)
		g.init = append(g.init, t)
	}
	if _, err := r.fit(ctx, "fit-S", g.ds, g.pooled); err != nil {
		return nil, err
	}
	if !g.scoreOnly {
		if g.da, err = newDensity("A"); err != nil {
			return nil, err
		}
		if g.db, err = newDensity("B"); err != nil {
			return nil, err
		}
	}
	g.gA, g.gB = newFullGrad(be, g.ds, g.xa), newFullGrad(be, g.ds, g.xb)
	return g, nil
}

func (g *genericShift) pooledGrad() (float64, error) {
	return newFullGrad(g.r.be, g.ds, g.pooled).norm()
}

func (g *genericShift) eval(ctx context.Context, a, b []int32) (shiftStats, error) {
	st := shiftStats{scoreOnly: g.scoreOnly}
	be := g.r.be
	be.GatherRows(g.xa, g.pooled, a)
	be.GatherRows(g.xb, g.pooled, b)
	var err error
	if st.llSA, err = meanLogProb(be, g.ds, g.xa); err != nil {
		return st, err
	}
	if st.llSB, err = meanLogProb(be, g.ds, g.xb); err != nil {
		return st, err
	}
	if st.gradA, err = g.gA.norm(); err != nil {
		return st, err
	}
	if st.gradB, err = g.gB.norm(); err != nil {
		return st, err
	}
	st.llA, st.llB = math.NaN(), math.NaN()
	if !g.scoreOnly {
		for _, f := range []struct {
			phase string
			d     Density
			x     *native.Tensor
			ll    *float64
		}{{"fit-A", g.da, g.xa, &st.llA}, {"fit-B", g.db, g.xb, &st.llB}} {
			for i, p := range f.d.Params() {
				be.Copy(p.Value, g.init[i])
			}
			if _, err = g.r.fit(ctx, f.phase, f.d, f.x); err != nil {
				return st, err
			}
			if *f.ll, err = meanLogProb(be, f.d, f.x); err != nil {
				return st, err
			}
		}
	}
	st.finish()
	return st, nil
}

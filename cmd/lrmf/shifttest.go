package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/lrmf-go/lrmf/internal/atomicfile"
	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// shiftOpts are the flags of "lrmf shift-test".
type shiftOpts struct {
	sourceFlags
	density        string
	blocks, hidden int
	depth          int
	scale          string
	bound          float64
	gradientFit    bool
	fitSteps       int
	batch          int
	lr, tol        float64
	validation     float64
	patience       int
	perms          int
	seed           uint64
	alpha          float64
	scoreOnly      bool
	jsonOut        bool
	out            string
	threads        int
	backend, dtype string
	quiet          bool
}

// shiftFlags registers the flags of lrmf shift-test on o, with the defaults
// of lrmf.DefaultShiftConfig.
func shiftFlags(o *shiftOpts) *flag.FlagSet {
	d, rn, fj := lrmf.DefaultShiftConfig(), realNVPDefaults, ffjordDefaults
	fs := flag.NewFlagSet("shift-test", flag.ContinueOnError)
	o.sourceFlags.register(fs)
	fs.StringVar(&o.density, "density", d.Density.Kind, "density family: gaussian (full covariance, closed-form fits), realnvp or ffjord (gradient fits; ffjord with its default solver, dopri5 at atol = rtol = 1e-5 and the exact trace)")
	fs.IntVar(&o.blocks, "blocks", 0, fmt.Sprintf("Real NVP coupling blocks or FFJORD transforms (0: realnvp %d, ffjord %d)", rn.Blocks, fj.Blocks))
	fs.IntVar(&o.hidden, "hidden", 0, fmt.Sprintf("hidden units per layer (0: realnvp %d, ffjord %d)", rn.Hidden, fj.Hidden))
	fs.IntVar(&o.depth, "depth", 0, fmt.Sprintf("hidden layers per network (0: realnvp %d, ffjord %d)", rn.Depth, fj.Depth))
	fs.StringVar(&o.scale, "scale", rn.Scale, "Real NVP scale function: exp or sigmoid")
	fs.Float64Var(&o.bound, "scale-bound", 0, "bound B of the exp scale: ln s = B·tanh(h/B) (0: 4 for up to 4 blocks, 16/blocks beyond, so deep flows keep the same total scale range)")
	fs.BoolVar(&o.gradientFit, "gradient-fit", d.GradientFit, "fit by gradient ascent even when a closed form exists")
	fs.IntVar(&o.fitSteps, "fit-steps", d.FitSteps, "step budget of each gradient fit (θS once; θA and θB per relabelling)")
	fs.IntVar(&o.batch, "batch", d.Batch, "gradient fits draw 2×batch rows per step (at most the smaller dataset's rows)")
	fs.Float64Var(&o.lr, "lr", d.FitLR, "Adam learning rate of gradient fits")
	fs.Float64Var(&o.tol, "tol", d.Tol, "a gradient fit stops when its full-data gradient norm falls below it")
	fs.Float64Var(&o.validation, "validation", d.Validation, "fraction of each fitted set a gradient fit holds out for early stopping, in (0, 0.5] (the same positions for every relabelling)")
	fs.IntVar(&o.patience, "patience", d.Patience, "a gradient fit stops after this many steps without validation improvement; negative: never")
	fs.IntVar(&o.perms, "permutations", d.Permutations, "N: random relabellings of A ∪ B for the p-values (smallest p = 1/(N+1))")
	fs.Uint64Var(&o.seed, "seed", d.Seed, "random seed (built-in data, relabellings, initialisation)")
	fs.Float64Var(&o.alpha, "alpha", 0.05, "significance level: a shift is reported when the score test's p ≤ alpha")
	fs.BoolVar(&o.scoreOnly, "score-only", false, "compute only the score test (no per-relabelling fits; fast for any density)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as one JSON object instead of text")
	fs.StringVar(&o.out, "out", "", "also write the JSON result to `FILE` (atomically)")
	fs.IntVar(&o.threads, "threads", runtime.NumCPU(), "host threads for the cpu backend")
	fs.StringVar(&o.backend, "backend", native.DefaultBackend(), "compute backend for densities without the closed-form path: "+strings.Join(native.Backends(), ", "))
	fs.StringVar(&o.dtype, "dtype", lrmf.DefaultDType.String(), "element type: float32 or float64 (ref: float64 only, the default there)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress or notes on stderr")
	return fs
}

func helpShiftTest(w io.Writer) {
	fmt.Fprint(w, `Usage: lrmf shift-test [flags]

Tests whether datasets A and B differ as far as the density family can
tell (a domain shift), before or instead of aligning them. One density θS
is fitted to A ∪ B, θA and θB to each set, and two statistics are computed
(ℓ = per-sample mean log-likelihood, nats):

  score test (supplementary §8.4)  S  = ‖∇θ ℓ(A; θS)‖ + ‖∇θ ℓ(B; θS)‖
  likelihood ratio                 dΛ = ℓ(A; θA) + ℓ(B; θB) − ℓ(A; θS) − ℓ(B; θS)

Each gets a permutation p-value: A ∪ B is relabelled at random into sets of
the original sizes --permutations times and p = (1 + #{S* ≥ S}) / (N + 1).
Under H0 (A and B exchangeable) P(p ≤ alpha) ≤ alpha. The verdict ("shift
detected" when p ≤ --alpha, else "no shift detected") uses the score test's
p; dΛ and its p-value are reported beside it. With no
--a/--b it tests the built-in moons pair (B rotated by 50°: a shift).

Cost: the Gaussian density is fitted in closed form, and a relabelling
takes tens of microseconds at 2×2000 rows. Gradient-fitted densities
(realnvp) fit θA and θB again for every relabelling (2 × --fit-steps steps):
seconds each, so lower --permutations or use --score-only, which needs
only θS.

Output: text on stdout, or with --json one JSON object (keys: shift, alpha,
score, score_p, grad_a, grad_b, grad_pooled = ‖∇θ ℓ(A ∪ B; θS)‖, dlambda,
dlambda_p, loglik_a, loglik_b, loglik_sa, loglik_sb, permutations, seed,
density, closed_form, backend, data, seconds, ms_per_permutation; dlambda*
and loglik_a/b are null with --score-only). --out FILE also writes that
object, atomically. The score test assumes θS converged: a note on stderr
says when grad_pooled is over a quarter of S (raise --fit-steps).

Exit status: 0 whenever the test ran, whether or not a shift was detected
(read the verdict, or "shift" in the JSON); 2 usage error; 1 other error
(unreadable or malformed files, A and B of different dimension, too few
rows, an unwritable --out).

Flags:
`)
	var o shiftOpts
	printDefaults(w, shiftFlags(&o))
}

// shiftReport is the JSON object of lrmf shift-test.
type shiftReport struct {
	Shift            bool            `json:"shift"`
	Alpha            float64         `json:"alpha"`
	Score            float64         `json:"score"`
	ScoreP           float64         `json:"score_p"`
	GradA            float64         `json:"grad_a"`
	GradB            float64         `json:"grad_b"`
	GradPooled       float64         `json:"grad_pooled"` // ‖∇θ ℓ(A ∪ B; θS)‖: θS's convergence
	DLambda          *float64        `json:"dlambda"`
	DLambdaP         *float64        `json:"dlambda_p"`
	LogLikA          *float64        `json:"loglik_a"`
	LogLikB          *float64        `json:"loglik_b"`
	LogLikSA         float64         `json:"loglik_sa"`
	LogLikSB         float64         `json:"loglik_sb"`
	Permutations     int             `json:"permutations"`
	Seed             uint64          `json:"seed"`
	Density          model.ModelSpec `json:"density"`
	ClosedForm       bool            `json:"closed_form"`
	Backend          string          `json:"backend"` // "host/float64" on the closed-form Gaussian path
	Data             reportData      `json:"data"`
	Seconds          float64         `json:"seconds"`
	MsPerPermutation float64         `json:"ms_per_permutation"`
}

func (o *shiftOpts) validate(set map[string]bool) error {
	if err := checkSourceAndDensity(o.a, o.b, set, o.density, o.scale, o.dtype); err != nil {
		return err
	}
	return firstBad([]flagCheck{
		{o.n < 1, "n", o.n, "a positive integer"},
		{o.blocks < 0, "blocks", o.blocks, "a positive integer (0: the model's default)"},
		{o.hidden < 0, "hidden", o.hidden, "a positive integer (0: the model's default)"},
		{o.depth < 0, "depth", o.depth, "a positive integer (0: the model's default)"},
		{!(o.bound >= 0) || math.IsInf(o.bound, 0), "scale-bound", o.bound, "0 (the default) or positive and finite"},
		{o.fitSteps < 1, "fit-steps", o.fitSteps, "a positive integer"},
		{o.batch < 1, "batch", o.batch, "a positive integer"},
		{!(o.lr > 0) || math.IsInf(o.lr, 0), "lr", o.lr, "positive and finite"},
		{!(o.tol >= 0) || math.IsInf(o.tol, 0), "tol", o.tol, "non-negative and finite"},
		{!(o.validation > 0 && o.validation <= 0.5), "validation", o.validation, "a fraction in (0, 0.5]"},
		{o.patience == 0, "patience", o.patience, "a positive number of steps, or negative for no early stopping"},
		{o.perms < 1, "permutations", o.perms, "a positive integer"},
		{!(o.alpha > 0 && o.alpha < 1), "alpha", o.alpha, "a level in (0, 1)"},
		{o.threads < 1, "threads", o.threads, "a positive integer"},
	})
}

func (o *shiftOpts) spec() model.ModelSpec {
	return (&alignOpts{blocks: o.blocks, hidden: o.hidden, depth: o.depth, scale: o.scale, bound: o.bound,
		solver: ffjordDefaults.Solver, odeSteps: ffjordDefaults.ODESteps, atol: ffjordDefaults.Atol, rtol: ffjordDefaults.Rtol,
		odeMaxSteps: ffjordDefaults.MaxSteps, trace: ffjordDefaults.Trace}).spec(o.density)
}

func runShiftTest(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var o shiftOpts
	fs := shiftFlags(&o)
	set, err := parseOnlyFlags(fs, args, stdout, helpShiftTest, "shift-test")
	if err != nil {
		return 0, err
	}
	if o.backend == "ref" && !set["dtype"] {
		o.dtype = "float64" // the reference backend's only type
	}
	if err := o.validate(set); err != nil {
		return 0, err
	}
	// The same loaders, built-in pairs and errors as lrmf align.
	a, b, _, _, src, err := (&alignOpts{sourceFlags: o.sourceFlags, seed: o.seed}).loadData()
	if err != nil {
		return 0, err
	}
	na, dim := a.Dims()
	nb, _ := b.Dims()
	batch := o.batch
	if batch > min(na, nb) {
		if set["batch"] {
			return 0, usagef("--batch = %d exceeds the rows of the data (A: %d, B: %d)", batch, na, nb)
		}
		batch = min(na, nb)
	}
	if o.out != "" {
		if fi, err := os.Stat(o.out); err == nil && fi.IsDir() {
			return 0, fmt.Errorf("--out %s is a directory; give a file name", o.out)
		}
		if err := prepareOut(filepath.Dir(o.out)); err != nil {
			return 0, err
		}
	}
	dt, _ := native.ParseDType(o.dtype)
	be, err := native.Open(o.backend, dt, o.threads)
	if err != nil {
		return 0, usagef("--backend %s: %v", o.backend, err)
	}
	defer be.Close()

	closedForm := o.density == "gaussian" && !o.gradientFit
	backend := "host/float64"
	if !closedForm {
		backend = be.Name() + "/" + be.DType().String()
	}
	cfg := lrmf.ShiftConfig{
		Backend: be, Density: o.spec(), Permutations: o.perms, Seed: o.seed, ScoreOnly: o.scoreOnly, Validation: o.validation,
		FitOptions: lrmf.FitOptions{GradientFit: o.gradientFit, FitSteps: o.fitSteps, Batch: batch, FitLR: o.lr, Tol: o.tol, Patience: o.patience},
	}
	note := func(format string, args ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, format+"\n", args...)
		}
	}
	fitKind := "closed-form fits"
	if !closedForm {
		fitKind = fmt.Sprintf("gradient fits of %d steps", o.fitSteps)
	}
	note("lrmf shift-test: %s, A %d×%d, B %d×%d, density %s (%s), %d relabellings, seed %d, %s",
		src, na, dim, nb, dim, o.density, fitKind, o.perms, o.seed, backend)
	if floor := 1 / float64(o.perms+1); floor > o.alpha {
		note("note: with %d relabellings the smallest p-value is %.3g, above --alpha %g: no shift can be detected; raise --permutations", o.perms, floor, o.alpha)
	}
	if !closedForm && !o.scoreOnly {
		note("note: %s refits θA and θB (2 × %d steps) for each of the %d relabellings; this takes a while (use --score-only, or fewer --permutations, for a quick answer)", o.density, o.fitSteps, o.perms)
	}
	if !closedForm && !o.quiet {
		var last time.Time
		start := time.Now()
		cfg.Progress = func(done, total int) {
			if done == total || time.Since(last) >= 2*time.Second {
				fmt.Fprintf(stderr, "relabelling %d/%d  %.1fs\n", done, total, time.Since(start).Seconds())
				last = time.Now()
			}
		}
	}

	res, err := lrmf.ShiftTest(ctx, a, b, cfg)
	if err != nil {
		return 0, err
	}
	rep := shiftReport{
		Shift: res.ScoreP <= o.alpha, Alpha: o.alpha,
		Score: res.Score, ScoreP: res.ScoreP, GradA: res.GradA, GradB: res.GradB, GradPooled: res.GradPooled,
		LogLikSA: res.LogLikSA, LogLikSB: res.LogLikSB,
		Permutations: res.Permutations, Seed: res.Seed, Density: res.Density, ClosedForm: res.ClosedForm, Backend: backend,
		Data:    reportData{Source: src, RowsA: na, RowsB: nb, Dim: dim},
		Seconds: res.Seconds, MsPerPermutation: res.MsPerPermutation,
	}
	if !o.scoreOnly {
		rep.DLambda, rep.DLambdaP, rep.LogLikA, rep.LogLikB = &res.DLambda, &res.DLambdaP, &res.LogLikA, &res.LogLikB
	}
	if o.out != "" {
		err := atomicfile.Write(o.out, 0o644, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(&rep)
		})
		if err != nil {
			return 0, err
		}
	}
	if res.GradPooled > res.Score/4 {
		note("note: θS is not converged (‖∇θ ℓ(A ∪ B; θS)‖ = %.3g next to S = %.3g): the score test loses power; raise --fit-steps", res.GradPooled, res.Score)
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(&rep); err != nil {
			return 0, err
		}
		return exitOK, nil
	}
	verdict := fmt.Sprintf("no shift detected (p = %.3g, score test, S = %.4g)", res.ScoreP, res.Score)
	if rep.Shift {
		verdict = fmt.Sprintf("shift detected at p = %.3g (score test, S = %.4g)", res.ScoreP, res.Score)
	}
	if !o.scoreOnly {
		verdict += fmt.Sprintf("; dΛ = %.4g nats, p = %.3g", res.DLambda, res.DLambdaP)
	}
	fmt.Fprintln(stdout, verdict)
	if !o.scoreOnly && (res.DLambdaP <= o.alpha) != rep.Shift {
		fmt.Fprintf(stdout, "note: the likelihood-ratio test disagrees at alpha = %g (dΛ p = %.3g)\n", o.alpha, res.DLambdaP)
	}
	fmt.Fprintf(stdout, "alpha = %g, %d relabellings (smallest possible p = %.3g), %.3g ms per relabelling, %.3g s in all\n",
		o.alpha, res.Permutations, 1/float64(res.Permutations+1), res.MsPerPermutation, res.Seconds)
	if o.out != "" {
		fmt.Fprintf(stdout, "wrote %s\n", o.out)
	}
	return exitOK, nil
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/atomicfile"
	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/twosample"
	"github.com/lrmf-go/lrmf/native"
)

// alignOpts are the flags of "lrmf align".
type alignOpts struct {
	sourceFlags
	flow, density   string
	blocks, hidden  int
	depth           int
	image           string           // --image HxWxC, for the image kinds
	imageShape      model.ImageShape // parsed by validate
	levels          int
	scale           string
	scaleSet        bool // --scale given (the image kinds default to sigmoid)
	bound           float64
	solver, trace   string
	odeSteps        int
	atol, rtol      float64
	odeMaxSteps     int
	probes          int
	prefit          int
	steps, fitSteps int
	batch           int
	evalEvery       int
	patience        int
	restarts        int
	holdout         float64
	validation      float64
	confidence      float64
	alpha           float64
	trim            float64
	lr, fitLR       float64
	schedule        string
	tol, threshold  float64
	clipNorm        float64
	seed            uint64
	threads         int
	backend, dtype  string
	out             string
	gradientFit     bool
	quiet           bool
	resume          string
	ckEvery         int
	plots           bool
}

// runTag is what lrmf align records in a checkpoint's Config.Tag so that
// --resume can reload the same data.
type runTag struct {
	Data string `json:"data,omitempty"` // built-in pair name
	N    int    `json:"n,omitempty"`
	Seed uint64 `json:"seed"`
	A    string `json:"a,omitempty"`
	B    string `json:"b,omitempty"`
}

// modelDefaults are the Real NVP and FFJORD sizes and solver settings a
// zero flag selects (model.ModelSpec.Normalized's defaults), for the flag
// defaults and their help text.
var (
	realNVPDefaults   = model.ModelSpec{Kind: "realnvp"}.Normalized()
	ffjordDefaults    = model.ModelSpec{Kind: "ffjord"}.Normalized()
	glowImageDefaults = model.ModelSpec{Kind: "glow-image"}.Normalized()
	hutchinsonProbes  = model.ModelSpec{Kind: "ffjord", Trace: "hutchinson"}.Normalized().Probes
)

// alignFlags registers the flags of lrmf align on o. Every default comes
// from lrmf.DefaultConfig (and the model defaults above), so no flags give
// the zero lrmf.Config's run. The budgets that depend on the model family
// (steps, fit steps, batch, evaluation period, patience, restarts) default
// to 0, which the library resolves with lrmf.DefaultConfigFor; their help
// text gives both families' values from the same table.
func alignFlags(o *alignOpts) *flag.FlagSet {
	d, rn, fj := lrmf.DefaultConfig(), realNVPDefaults, ffjordDefaults
	ff := lrmf.DefaultConfigFor("ffjord", "ffjord")
	family := func(what string, rv, fv any) string {
		return fmt.Sprintf("%s (0: the family's default, %v; %v when the flow or density is ffjord or an image model)", what, rv, fv)
	}
	fs := flag.NewFlagSet("align", flag.ContinueOnError)
	o.sourceFlags.register(fs)
	fs.StringVar(&o.flow, "flow", d.Flow.Kind, "flow T, one of "+strings.Join(model.FlowKinds, ", ")+": realnvp (affine couplings), glow (ActNorm, LU linear, coupling), ffjord (continuous flow), affine (T(x) = AᵀA·x + b), glow-b2b (T = G2⁻¹∘G1 of two GLOWs on H×W×C images, the identity at the start, needs --image)")
	fs.StringVar(&o.density, "density", d.Density.Kind, "density family, one of "+strings.Join(model.DensityKinds, ", ")+": realnvp, glow or ffjord (flows with a standard-normal base), gaussian (full covariance) or glow-image (multi-scale GLOW on H×W×C images, needs --image)")
	fs.IntVar(&o.blocks, "blocks", 0, fmt.Sprintf("Real NVP or Glow coupling blocks, stacked FFJORD transforms, or glow-image steps K per level (0: realnvp and glow %d, ffjord %d, as in the paper; glow-image %d, paper %d)",
		rn.Blocks, fj.Blocks, glowImageDefaults.Blocks, model.PaperGLOW.Steps))
	fs.IntVar(&o.hidden, "hidden", 0, fmt.Sprintf("hidden units per layer of the Real NVP coupling networks or FFJORD dynamics, or glow-image filters F (0: realnvp %d, ffjord %d, glow-image %d; paper: %d, %d, %d)",
		rn.Hidden, fj.Hidden, glowImageDefaults.Hidden, model.PaperRealNVP.Hidden, model.PaperFFJORD.Hidden, model.PaperGLOW.Hidden))
	fs.StringVar(&o.image, "image", "", "glow-image and glow-b2b: the shape `HxWxC` of the images, each data row holding its H·W·C values channels-last (e.g. 32x32x1); required with either")
	fs.IntVar(&o.levels, "levels", 0, fmt.Sprintf("glow-image and glow-b2b: levels L, each a squeeze, K steps and a split, so H and W must be divisible by 2^L (0: %d, as in the paper)", glowImageDefaults.Levels))
	fs.IntVar(&o.depth, "depth", 0, fmt.Sprintf("hidden layers of the Real NVP coupling networks or FFJORD dynamics (0: realnvp %d, ffjord %d, as in the paper)", rn.Depth, fj.Depth))
	fs.StringVar(&o.solver, "solver", fj.Solver, "FFJORD ODE solver: dopri5 (adaptive Dormand–Prince 5(4)) or rk4 (fixed steps)")
	fs.IntVar(&o.odeSteps, "ode-steps", fj.ODESteps, "FFJORD RK4 steps over t ∈ [0, 1]")
	fs.Float64Var(&o.atol, "atol", fj.Atol, "FFJORD Dormand–Prince absolute tolerance")
	fs.Float64Var(&o.rtol, "rtol", fj.Rtol, "FFJORD Dormand–Prince relative tolerance")
	fs.IntVar(&o.odeMaxSteps, "ode-max-steps", fj.MaxSteps, "FFJORD Dormand–Prince step attempts per row and solve before giving up")
	fs.StringVar(&o.trace, "trace", fj.Trace, "FFJORD divergence: exact (D tangent passes) or hutchinson (Rademacher probes, unbiased)")
	fs.IntVar(&o.probes, "probes", hutchinsonProbes, "Hutchinson probes per row (with --trace hutchinson)")
	fs.IntVar(&o.prefit, "prefit", d.IdentityPrefit, fmt.Sprintf("Adam steps pre-fitting the flow to the identity (0: %d for an ffjord flow, none otherwise; negative: none)", lrmf.DefaultFFJORDPrefit))
	fs.StringVar(&o.scale, "scale", rn.Scale, "Real NVP scale function: exp (ln s soft-bounded by --scale-bound) or sigmoid (s = sigmoid(h + 2), GLOW; glow-image's default)")
	fs.Float64Var(&o.bound, "scale-bound", 0, "bound B of the exp scale: ln s = B·tanh(h/B) (0: 4 for up to 4 blocks, 16/blocks beyond, so deep flows keep the same total scale range)")
	fs.IntVar(&o.steps, "steps", 0, family("cap on the steps of each restart's joint phase", d.Steps, ff.Steps))
	fs.IntVar(&o.fitSteps, "fit-steps", 0, family("cap on the steps of each gradient fit of θA*, θB* (each step draws 2×batch rows)", d.FitSteps, ff.FitSteps))
	fs.IntVar(&o.batch, "batch", 0, fmt.Sprintf("mini-batch size drawn from A and from B (at most the smaller training part) (0: the family's default, %v; %v when the flow or density is ffjord, %v for an image model)",
		d.Batch, ff.Batch, lrmf.DefaultConfigFor("glow-b2b", "glow-image").Batch))
	fs.IntVar(&o.evalEvery, "eval-every", 0, family("steps between evaluations of the validation objective (early stopping)", d.EvalEvery, ff.EvalEvery))
	fs.IntVar(&o.patience, "patience", 0, family("steps without validation improvement that stop a phase; negative: no early stopping", d.Patience, ff.Patience))
	fs.IntVar(&o.restarts, "restarts", 0, family("independent joint phases (concurrent when threads allow); the lowest validation LRMF is kept", d.Restarts, ff.Restarts))
	fs.Float64Var(&o.holdout, "holdout", d.Holdout, "fraction of each set held out for the reported LRMF, its standard error and the two-sample test, in (0, 0.5]")
	fs.Float64Var(&o.validation, "validation", d.Validation, "fraction of the rest held out for early stopping and choosing among restarts, in (0, 0.5]")
	fs.Float64Var(&o.confidence, "confidence", d.Confidence, "one-sided level of the upper bound LRMF + z·SE compared with δ, in (0.5, 1)")
	fs.Float64Var(&o.alpha, "alpha", d.Alpha, "level of the two-sample test of T(A) against B on the held-out and validation points, in (0, 1)")
	fs.Float64Var(&o.trim, "trim", d.Trim, "fraction of held-out and validation rows dropped at each end of the per-row LRMF terms before averaging, in (0, 0.2]")
	fs.Float64Var(&o.lr, "lr", d.LR, "Adam learning rate of the joint phase")
	fs.Float64Var(&o.fitLR, "fit-lr", 0, "Adam learning rate of gradient fits (0: same as --lr)")
	fs.StringVar(&o.schedule, "schedule", d.Schedule, "learning-rate schedule of every phase: cosine (to lr/100 over the phase's cap), constant, or plateau (÷√10 after half the patience without validation improvement, to lr/100)")
	fs.Float64Var(&o.clipNorm, "clip", d.ClipNorm, "cap on each model's gradient norm before an Adam step (negative: no clipping)")
	fs.Float64Var(&o.tol, "tol", d.Tol, "ε: a phase stops when its gradient norm falls below it")
	fs.Float64Var(&o.threshold, "threshold", d.Threshold, "δ (nats): alignment succeeded when the held-out LRMF's upper bound is below δ and the two-sample test does not reject")
	fs.Uint64Var(&o.seed, "seed", d.Seed, "random seed (data, initialisation, batch order)")
	fs.IntVar(&o.threads, "threads", runtime.NumCPU(), "host threads for the cpu backend")
	fs.StringVar(&o.backend, "backend", native.DefaultBackend(), "compute backend: "+strings.Join(native.Backends(), ", "))
	fs.StringVar(&o.dtype, "dtype", lrmf.DefaultDType.String(), "element type: float32 or float64 (the ref backend computes in float64 only, and defaults to it)")
	fs.StringVar(&o.out, "out", "lrmf-out", "output `DIR` for report.json and transformed.csv")
	fs.BoolVar(&o.gradientFit, "gradient-fit", d.GradientFit, "fit θA*, θB* by gradient ascent even when a closed form exists")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress output")
	fs.StringVar(&o.resume, "resume", "", "continue the run saved in checkpoint `FILE` (its settings and data are reused; --steps may extend it)")
	fs.IntVar(&o.ckEvery, "checkpoint-every", 0, "also save DIR/checkpoint.lrmf every N joint steps (it is always saved at the end and on interrupt)")
	fs.BoolVar(&o.plots, "plots", true, "for 2-D data also write DIR/scatter, lrmf and displacement .png and .svg (A, T(A), B; LRMF per step; x − T(x))")
	return fs
}

func helpAlign(w io.Writer) {
	fmt.Fprint(w, `Usage: lrmf align [flags]

Aligns dataset A to dataset B with a Log-Likelihood Ratio Minimizing Flow.
Each set is split (seeded) into a training part, a validation part
(--validation) and a held-out part (--holdout). It fits the density family to
A's and B's training parts (θA*, θB*, c_AB), trains the flow T and a shared
density θS on mini-batches (--restarts times from different initialisations,
each stopped early on the validation LRMF; the best is kept), then evaluates
on the held-out points

  LRMF = c_AB − ℓ(T(A); θS) − ℓ(B; θS) − mean ln|det ∇T|   (nats, ≥ 0 at the optimum)

with its standard error SE, and runs a kernel two-sample test of T(A) against
B on the held-out and validation points (those no model was fitted to). The verdict, with UCB = LRMF + z·SE (z from --confidence):

  converged        UCB < δ and the two-sample test does not reject (p > --alpha)
  distinguishable  UCB < δ but the two-sample test rejects: the density family
                   cannot see a difference that remains
  inconclusive     LRMF < δ ≤ UCB: not enough evidence either way
  not-converged    LRMF ≥ δ
  undershot        UCB < −δ: c_AB under-fitted, the indicator cannot be trusted

With no flags it aligns the built-in moons pair (2000 points each, the
second rotated by 50°).

Outputs in --out (each written atomically, only when the run finishes):
  report.json      status, verdict (the sentence printed), lrmf, lrmf_se,
                   upper_bound and the four terms (held-out), held_out, train
                   and validation (the same per part, with SEs for held-out),
                   two_sample, fit_a, fit_b, joint and restarts (how each phase
                   ended), steps, seconds, ms_per_step, arm_accuracy (built-in
                   labelled data), history (chosen restart, per step: loss,
                   grad_t, grad_s), the full config; FFJORD models add nfe
                   (evaluations of the dynamics per row) and solver
  transformed.csv  T(A), every row of A in A's order
  scatter, lrmf, displacement (.png and .svg)
                   A, T(A) and B; the LRMF curve; x − T(x) (2-D data only,
                   unless --plots=false)
  checkpoint.lrmf  the trained models, optimiser and random state (versioned,
                   checksummed): lrmf apply --model uses it, --resume continues it
                   (single-restart runs). It is also saved on Ctrl-C and, with
                   --checkpoint-every, during the run (--restarts 1 only).

Exit status: 0 converged, 3 ran but did not converge (not-converged,
distinguishable, inconclusive, undershot), 2 usage error, 1 other error
(bad data, divergence).

Flags:
`)
	var o alignOpts
	printDefaults(w, alignFlags(&o))
}

// report is report.json.
type report struct {
	Status    lrmf.Status `json:"status"`
	Converged bool        `json:"converged"`
	// Verdict is the sentence lrmf align prints (lrmf.Result.Verdict).
	Verdict string `json:"verdict"`
	// LRMF and its terms on the held-out parts (the figures the verdict
	// uses), with LRMF's standard error and upper confidence bound.
	LRMF       float64 `json:"lrmf"`
	LRMFSE     float64 `json:"lrmf_se"`
	UpperBound float64 `json:"upper_bound"`
	CAB        float64 `json:"c_ab"`
	LogLikTA   float64 `json:"loglik_ta"`
	LogLikB    float64 `json:"loglik_b"`
	LogDet     float64 `json:"logdet"`
	// LRMFTrain is LRMF on the training parts (train.lrmf).
	LRMFTrain  float64              `json:"lrmf_train"`
	HeldOut    *lrmf.Estimate       `json:"held_out,omitempty"`
	Train      lrmf.Estimate        `json:"train"`
	Validation *lrmf.Estimate       `json:"validation,omitempty"`
	TwoSample  *twosample.MMDResult `json:"two_sample,omitempty"`
	Threshold  float64              `json:"threshold"`
	Steps      int                  `json:"steps"`
	StoppedBy  string               `json:"stopped_by"`
	FitStepsA  int                  `json:"fit_steps_a"`
	FitStepsB  int                  `json:"fit_steps_b"`
	FitA       lrmf.PhaseReport     `json:"fit_a"`
	FitB       lrmf.PhaseReport     `json:"fit_b"`
	Joint      lrmf.PhaseReport     `json:"joint"`
	Restarts   []lrmf.RestartReport `json:"restarts"`
	// PrefitSteps and PrefitMSE: the identity pre-fit of the flow.
	PrefitSteps int        `json:"prefit_steps,omitempty"`
	PrefitMSE   float64    `json:"prefit_mse,omitempty"`
	Seconds     float64    `json:"seconds"`
	FitSec      float64    `json:"fit_seconds"`
	JointSec    float64    `json:"joint_seconds"`
	MsPerStep   float64    `json:"ms_per_step"`
	Data        reportData `json:"data"`
	Config      reportCfg  `json:"config"`
	// ArmAccuracy is the share of A's points whose nearest neighbour in B,
	// after T, carries the same label (built-in data with labels only).
	ArmAccuracy *float64 `json:"arm_accuracy,omitempty"`
	// NFE summarises the ODE solver work (FFJORD models only): mean
	// evaluations of the dynamics per row and transform, forward and in
	// backward passes; Solver has the raw counts per model.
	NFE     *reportNFE         `json:"nfe,omitempty"`
	Solver  *lrmf.SolverReport `json:"solver,omitempty"`
	History []lrmf.Point       `json:"history"`
}

// reportNFE is report.json's NFE summary.
type reportNFE struct {
	Flow     *nfeSummary `json:"flow,omitempty"`
	DensityS *nfeSummary `json:"density_s,omitempty"`
}

// nfeSummary is one model's mean evaluations of f per row and transform.
type nfeSummary struct {
	Forward  float64 `json:"forward_per_row"`
	Backward float64 `json:"backward_per_row"`
}

func summarizeNFE(r *lrmf.SolverReport) *reportNFE {
	if r == nil {
		return nil
	}
	sum := func(s *model.SolverStats) *nfeSummary {
		if s == nil {
			return nil
		}
		return &nfeSummary{Forward: s.NFEPerRow(), Backward: s.BackwardNFEPerRow()}
	}
	return &reportNFE{Flow: sum(r.Flow), DensityS: sum(r.DensityS)}
}

type reportData struct {
	Source string `json:"source"` // file names or "builtin:NAME"
	RowsA  int    `json:"rows_a"`
	RowsB  int    `json:"rows_b"`
	Dim    int    `json:"dim"`
}

type reportCfg struct {
	lrmf.Config
	Backend string `json:"backend"`
	DType   string `json:"dtype"`
	Threads int    `json:"threads"`
	N       int    `json:"n,omitempty"`
}

// validate checks flag values that do not depend on the data.
func (o *alignOpts) validate(set map[string]bool) error {
	if !slices.Contains(model.FlowKinds, o.flow) {
		return usagef("unknown --flow %q (available: %s)", o.flow, strings.Join(model.FlowKinds, ", "))
	}
	if err := checkSourceAndDensity(o.a, o.b, set, o.density, o.scale, o.dtype); err != nil {
		return err
	}
	if o.schedule != lrmf.Plateau && o.schedule != "cosine" && o.schedule != "constant" {
		return usagef("unknown --schedule %q (available: cosine, constant, plateau)", o.schedule)
	}
	if o.solver != "dopri5" && o.solver != "rk4" {
		return usagef("unknown --solver %q (available: dopri5, rk4)", o.solver)
	}
	if o.trace != "exact" && o.trace != "hutchinson" {
		return usagef("unknown --trace %q (available: exact, hutchinson)", o.trace)
	}
	if o.flow != "ffjord" && o.density != "ffjord" {
		for _, f := range []string{"solver", "ode-steps", "atol", "rtol", "ode-max-steps", "trace", "probes"} {
			if set[f] {
				return usagef("--%s applies to ffjord models only (--flow ffjord or --density ffjord)", f)
			}
		}
	}
	if set["probes"] && o.trace != "hutchinson" {
		return usagef("--probes needs --trace hutchinson")
	}
	if err := o.checkImageFlags(set); err != nil {
		return err
	}
	return firstBad([]flagCheck{
		{o.n < 1, "n", o.n, "a positive integer"},
		{o.blocks < 0, "blocks", o.blocks, "a positive integer (0: the model's default)"},
		{o.hidden < 0, "hidden", o.hidden, "a positive integer (0: the model's default)"},
		{o.depth < 0, "depth", o.depth, "a positive integer (0: the model's default)"},
		{o.odeSteps < 1, "ode-steps", o.odeSteps, "a positive integer"},
		{!(o.atol >= 0) || math.IsInf(o.atol, 0), "atol", o.atol, "non-negative and finite"},
		{!(o.rtol >= 0) || math.IsInf(o.rtol, 0), "rtol", o.rtol, "non-negative and finite"},
		{o.atol+o.rtol == 0, "rtol", o.rtol, "positive when --atol is 0"},
		{o.odeMaxSteps < 1, "ode-max-steps", o.odeMaxSteps, "a positive integer"},
		{o.probes < 1, "probes", o.probes, "a positive integer"},
		{!(o.bound >= 0) || math.IsInf(o.bound, 0), "scale-bound", o.bound, "0 (the default) or positive and finite"},
		{o.steps < 0, "steps", o.steps, "a positive integer (0: the family's default)"},
		{o.fitSteps < 0, "fit-steps", o.fitSteps, "a positive integer (0: the family's default)"},
		{o.batch < 0, "batch", o.batch, "a positive integer (0: the family's default)"},
		{o.evalEvery < 0, "eval-every", o.evalEvery, "a positive integer (0: the family's default)"},
		{o.restarts < 0, "restarts", o.restarts, "a positive integer (0: the family's default)"},
		{!(o.holdout > 0 && o.holdout <= 0.5), "holdout", o.holdout, "a fraction in (0, 0.5]"},
		{!(o.validation > 0 && o.validation <= 0.5), "validation", o.validation, "a fraction in (0, 0.5]"},
		{!(o.confidence > 0.5 && o.confidence < 1), "confidence", o.confidence, "a level in (0.5, 1)"},
		{!(o.alpha > 0 && o.alpha < 1), "alpha", o.alpha, "a level in (0, 1)"},
		{!(o.trim > 0 && o.trim <= 0.2), "trim", o.trim, "a fraction in (0, 0.2]"},
		{!(o.lr > 0) || math.IsInf(o.lr, 0), "lr", o.lr, "positive and finite"},
		{!(o.fitLR >= 0) || math.IsInf(o.fitLR, 0), "fit-lr", o.fitLR, "non-negative and finite"},
		{!(o.tol >= 0) || math.IsInf(o.tol, 0), "tol", o.tol, "non-negative and finite"},
		{o.clipNorm == 0 || math.IsNaN(o.clipNorm) || math.IsInf(o.clipNorm, 0), "clip", o.clipNorm, "a positive cap, or negative for none"},
		{!(o.threshold > 0) || math.IsInf(o.threshold, 0), "threshold", o.threshold, "positive and finite"},
		{o.threads < 1, "threads", o.threads, "a positive integer"},
		{o.out == "", "out", o.out, "a directory"},
	})
}

// imageKinds returns the image kinds (model.ImageKinds) among the flow and
// the density.
func (o *alignOpts) imageKinds() []string {
	var ks []string
	for _, k := range []string{o.flow, o.density} {
		if model.IsImageKind(k) && !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	return ks
}

// checkImageFlags checks --image and --levels against the model kinds and
// parses --image (the data's columns are checked by checkImage).
func (o *alignOpts) checkImageFlags(set map[string]bool) error {
	kinds := o.imageKinds()
	if len(kinds) == 0 {
		for _, f := range []string{"image", "levels"} {
			if set[f] {
				return usagef("--%s applies to the image models only (%s)", f, strings.Join(model.ImageKinds, ", "))
			}
		}
		return nil
	}
	if !set["image"] { // checkSourceAndDensity has caught it for the density
		return usagef("--flow %s needs --image HxWxC, the shape of the images the data rows hold", o.flow)
	}
	sh, err := model.ParseImageShape(o.image)
	if err != nil {
		return usagef("--image = %q: want HxWxC, three positive integers such as 32x32x1", o.image)
	}
	o.imageShape = sh
	return firstBad([]flagCheck{{o.levels < 0 || o.levels > 8, "levels", o.levels, "an integer in [1, 8] (0: the default, 3)"}})
}

// checkImage checks, before any file is written, the image models' shape
// against the data's dim columns and the levels.
func (o *alignOpts) checkImage(dim int) error {
	for _, k := range o.imageKinds() {
		sh, s, which := o.imageShape, o.spec(k), "density"
		if k == o.flow {
			which = "flow"
		}
		if sh.Dim() != dim {
			return usagef("--image %v has H·W·C = %d values per image, the data have %d columns", sh, sh.Dim(), dim)
		}
		if d := 1 << s.Levels; sh.H%d != 0 || sh.W%d != 0 {
			return usagef("--image %v with --levels %d: each level halves H and W, so both must be divisible by 2^%d = %d", sh, s.Levels, s.Levels, d)
		}
		if err := s.CheckImage(dim); err != nil {
			return usagef("--%s %s (--image, --levels, --blocks, --hidden, --scale): %v", which, k, err)
		}
	}
	return nil
}

// checkSplit checks, before any file is written, that --holdout leaves
// enough held-out rows of each set and that an explicit --batch fits in the
// training parts; and that --checkpoint-every comes with one restart.
func (o *alignOpts) checkSplit(na, nb, dim int) error {
	for _, s := range []struct {
		name string
		n    int
	}{{"A", na}, {"B", nb}} {
		train, _, held := lrmf.SplitSizes(s.n, o.holdout, o.validation)
		if need := lrmf.MinHeldOutRows(dim); held < need {
			return usagef("--holdout = %v leaves %d held-out rows of %s's %d; the held-out estimate needs at least %d (D = %d): raise --holdout or give more data",
				o.holdout, held, s.name, s.n, need, dim)
		}
		if o.batch > train {
			return usagef("--batch = %d exceeds the %d training rows of %s (after --holdout and --validation)", o.batch, train, s.name)
		}
	}
	if o.ckEvery > 0 {
		restarts := o.restarts
		if restarts == 0 {
			restarts = lrmf.DefaultConfigFor(o.flow, o.density).Restarts
		}
		if restarts > 1 {
			return usagef("--checkpoint-every needs a single restart: add --restarts 1 (this run would make %d)", restarts)
		}
	}
	return nil
}

// resumable lists the flags that may be given with --resume; the others
// would change the saved run.
var resumable = map[string]bool{"resume": true, "steps": true, "out": true, "threads": true, "backend": true,
	"dtype": true, "quiet": true, "checkpoint-every": true, "a": true, "b": true, "plots": true}

// fromCheckpoint reads the --resume checkpoint and takes the run's settings
// and data source from it.
func (o *alignOpts) fromCheckpoint(set map[string]bool) (*lrmf.Checkpoint, error) {
	for _, name := range slices.Sorted(maps.Keys(set)) {
		if !resumable[name] {
			return nil, usagef("--%s cannot be changed when resuming (the checkpoint fixes it)", name)
		}
	}
	ck, err := lrmf.ReadCheckpoint(o.resume)
	if err != nil {
		return nil, err
	}
	cfg := ck.Config()
	var tag runTag
	if len(cfg.Tag) > 0 {
		if err := json.Unmarshal(cfg.Tag, &tag); err != nil {
			return nil, fmt.Errorf("%s: unreadable run tag: %v", o.resume, err)
		}
	}
	if o.a == "" {
		if tag.A != "" {
			o.a, o.b = tag.A, tag.B
		} else if tag.Data != "" {
			o.dataName, o.n = tag.Data, tag.N
		} else {
			return nil, usagef("%s does not say which data it was trained on: give --a and --b", o.resume)
		}
	}
	o.seed = tag.Seed
	o.flow, o.density = cfg.Flow.Kind, cfg.Density.Kind
	for _, s := range []model.ModelSpec{cfg.Flow, cfg.Density} {
		if model.IsImageKind(s.Kind) { // the saved shape, for validate
			o.image, o.levels = s.Image.String(), s.Levels
			set["image"] = true
		}
	}
	if name, dtype := ck.Backend(); !set["backend"] && !set["dtype"] && name != "" {
		o.backend, o.dtype = name, dtype
	}
	if !set["steps"] {
		o.steps = cfg.Steps
	}
	o.batch = cfg.Batch
	set["batch"] = true
	return ck, nil
}

// spec returns the ModelSpec of a model kind with the Real NVP (and Glow)
// and FFJORD flags; zero sizes take the model's defaults (ModelSpec.Normalized).
func (o *alignOpts) spec(kind string) model.ModelSpec {
	s := model.ModelSpec{Kind: kind}
	switch kind {
	case "ffjord":
		s = model.ModelSpec{Kind: kind, Blocks: o.blocks, Hidden: o.hidden, Depth: o.depth, Solver: o.solver, ODESteps: o.odeSteps,
			Atol: o.atol, Rtol: o.rtol, MaxSteps: o.odeMaxSteps, Trace: o.trace}
		if o.trace == "hutchinson" {
			s.Probes = o.probes
		}
	case "realnvp", "glow":
		s = model.ModelSpec{Kind: kind, Blocks: o.blocks, Hidden: o.hidden, Depth: o.depth, Scale: o.scale}
		if o.scale == "exp" {
			s.Bound = o.bound
		}
	}
	if model.IsImageKind(kind) {
		s = model.ModelSpec{Kind: kind, Blocks: o.blocks, Hidden: o.hidden, Image: o.imageShape, Levels: o.levels}
		if o.scaleSet {
			s.Scale = o.scale
			if o.scale == "exp" {
				s.Bound = o.bound
			}
		}
	}
	return s.Normalized()
}

// fitOptions returns the fit and training options the flags give, with
// the batch size b (capped at the data's rows).
func (o *alignOpts) fitOptions(b int) lrmf.FitOptions {
	return lrmf.FitOptions{GradientFit: o.gradientFit, FitSteps: o.fitSteps, Batch: b,
		FitLR: o.fitLR, Schedule: o.schedule, ClipNorm: o.clipNorm, Tol: o.tol, EvalEvery: o.evalEvery, Patience: o.patience, Trim: o.trim}
}

// loadData returns A, B, their labels (built-in data only; nil otherwise)
// and a description of where they came from.
func (o *alignOpts) loadData() (a, b *mat.Dense, la, lb []int, src string, err error) {
	if o.a == "" {
		p, err := data.Builtin(o.dataName, o.n, o.seed)
		if err != nil {
			return nil, nil, nil, nil, "", usagef("--data: %v", err)
		}
		return p.A, p.B, p.LabelsA, p.LabelsB, "builtin:" + p.Name, nil
	}
	if a, err = data.ReadFile(o.a); err != nil {
		return nil, nil, nil, nil, "", err
	}
	if b, err = data.ReadFile(o.b); err != nil {
		return nil, nil, nil, nil, "", err
	}
	_, da := a.Dims()
	_, db := b.Dims()
	if da != db {
		return nil, nil, nil, nil, "", fmt.Errorf("%s has %d columns but %s has %d: A and B must have the same dimension", o.a, da, o.b, db)
	}
	return a, b, nil, nil, o.a + " " + o.b, nil
}

// prepareOut creates dir if needed and checks that files can be written
// there, before any training time is spent.
func prepareOut(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".lrmf-probe-*")
	if err != nil {
		return fmt.Errorf("--out %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func runAlign(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var o alignOpts
	fs := alignFlags(&o)
	set, err := parseOnlyFlags(fs, args, stdout, helpAlign, "align")
	if err != nil {
		return 0, err
	}
	o.scaleSet = set["scale"]
	var ck *lrmf.Checkpoint
	if o.resume != "" {
		if ck, err = o.fromCheckpoint(set); err != nil {
			return 0, err
		}
	}
	if o.backend == "ref" && !set["dtype"] {
		o.dtype = "float64" // the reference backend's only type
	}
	if err := o.validate(set); err != nil {
		return 0, err
	}
	a, b, la, lb, src, err := o.loadData()
	if err != nil {
		return 0, err
	}
	na, dim := a.Dims()
	nb, _ := b.Dims()
	if o.batch > min(na, nb) {
		return 0, usagef("--batch = %d exceeds the rows of the data (A: %d, B: %d)", o.batch, na, nb)
	}
	if ck == nil {
		if err := o.checkImage(dim); err != nil {
			return 0, err
		}
		if err := o.checkSplit(na, nb, dim); err != nil {
			return 0, err
		}
	}
	if err := prepareOut(o.out); err != nil {
		return 0, err
	}
	dt, _ := native.ParseDType(o.dtype)
	be, err := native.Open(o.backend, dt, o.threads)
	if err != nil {
		return 0, usagef("--backend %s: %v", o.backend, err)
	}
	defer be.Close()

	cfg := lrmf.Config{
		Backend: be, Flow: o.spec(o.flow), Density: o.spec(o.density), Steps: o.steps, LR: o.lr,
		FitOptions:     o.fitOptions(o.batch),
		IdentityPrefit: o.prefit, Threshold: o.threshold, Seed: o.seed,
		Holdout: o.holdout, Validation: o.validation, Restarts: o.restarts, Confidence: o.confidence, Alpha: o.alpha,
	}
	tag := runTag{Seed: o.seed, A: o.a, B: o.b}
	if o.a == "" {
		tag.Data, tag.N = o.dataName, o.n
	}
	if cfg.Tag, err = json.Marshal(tag); err != nil {
		return 0, err
	}
	if ck != nil {
		cfg = ck.Config()
		cfg.Backend, cfg.Resume = be, ck
		if set["steps"] {
			cfg.Steps = o.steps
		}
	}
	ckPath := filepath.Join(o.out, "checkpoint.lrmf")
	cfg.CheckpointEvery = o.ckEvery
	var lastSaved int
	cfg.Checkpoint = func(c *lrmf.Checkpoint) error {
		lastSaved = c.Step()
		return c.WriteFile(ckPath)
	}
	pr := newProgress(stderr, o.quiet)
	cfg.Progress, cfg.ProgressEvery = pr.update, 10
	fmt.Fprintf(stderr, "lrmf align: %s, A %d×%d, B %d×%d, flow %s, density %s, backend %s/%s ×%d threads\n",
		src, na, dim, nb, dim, o.flow, o.density, be.Name(), be.DType(), be.Threads())
	res, err := lrmf.Align(ctx, a, b, cfg)
	pr.finish()
	if err != nil {
		if res != nil && res.Status == lrmf.Canceled && lastSaved > 0 {
			return 0, fmt.Errorf("interrupted after %d joint steps; saved %s — continue with: lrmf align --resume %s --out %s", lastSaved, ckPath, ckPath, o.out)
		}
		if res != nil && res.Status == lrmf.Canceled && res.Config.Restarts > 1 {
			return 0, fmt.Errorf("interrupted; nothing saved (a run of %d restarts checkpoints only at its end; --restarts 1 also saves on interrupt): %w", res.Config.Restarts, err)
		}
		if res != nil && res.Status == lrmf.Diverged {
			kept := "nothing written to " + o.out
			if lastSaved > 0 {
				kept = fmt.Sprintf("only %s (step %d, before the divergence) in %s", filepath.Base(ckPath), lastSaved, o.out)
			}
			return 0, fmt.Errorf("status %s: %w\n%s", res.Status, err, kept)
		}
		return 0, err
	}

	rep := report{
		Status: res.Status, Converged: res.Converged, Verdict: res.Verdict(), LRMF: res.LRMF, LRMFSE: res.LRMFSE, UpperBound: res.UpperBound,
		CAB: res.CAB, LogLikTA: res.LogLikTA, LogLikB: res.LogLikB, LogDet: res.LogDet, Threshold: res.Config.Threshold,
		LRMFTrain: res.Train.LRMF, HeldOut: res.HeldOut, Train: res.Train, Validation: res.Validation, TwoSample: res.TwoSample,
		FitA: res.FitA, FitB: res.FitB, Joint: res.Joint, Restarts: res.Restarts,
		Steps: res.Steps, StoppedBy: res.StoppedBy, FitStepsA: res.FitStepsA, FitStepsB: res.FitStepsB,
		Seconds: res.TotalSeconds, FitSec: res.FitSeconds, JointSec: res.JointSeconds, MsPerStep: res.MsPerStep,
		Data:    reportData{Source: src, RowsA: na, RowsB: nb, Dim: dim},
		Config:  reportCfg{Config: res.Config, Backend: be.Name(), DType: be.DType().String(), Threads: be.Threads()},
		History: res.History,
		Solver:  res.Solver, NFE: summarizeNFE(res.Solver),
		PrefitSteps: res.PrefitSteps, PrefitMSE: res.PrefitMSE,
	}
	if o.a == "" {
		rep.Config.N = o.n
		if la != nil {
			acc, err := lrmf.NeighbourAgreement(res.Transformed, la, b, lb)
			if err != nil {
				return 0, err
			}
			rep.ArmAccuracy = &acc
		}
	}
	if err := writeOutputs(o.out, &rep, res.Transformed); err != nil {
		return 0, err
	}
	fmt.Fprintln(stdout, res.Summary())
	if n := rep.NFE; n != nil {
		for _, m := range []struct {
			name string
			s    *nfeSummary
		}{{"flow", n.Flow}, {"density θS", n.DensityS}} {
			if m.s != nil {
				fmt.Fprintf(stdout, "NFE (%s): %.1f per row and transform forward, %.1f in backward passes\n", m.name, m.s.Forward, m.s.Backward)
			}
		}
	}
	if rep.ArmAccuracy != nil {
		fmt.Fprintf(stdout, "arm accuracy (nearest neighbour in B after T has the same label): %.4f\n", *rep.ArmAccuracy)
	}
	fmt.Fprintf(stdout, "wrote %s, %s and %s\n", filepath.Join(o.out, "report.json"), filepath.Join(o.out, "transformed.csv"), ckPath)
	if err := writeAlignFigures(o.plots, o.out, src, a, b, res, stdout); err != nil {
		return 0, err
	}
	if !res.Converged {
		return exitNotConverged, nil
	}
	return exitOK, nil
}

// writeOutputs writes transformed.csv, then report.json, each atomically.
func writeOutputs(dir string, rep *report, y *mat.Dense) error {
	_, d := y.Dims()
	header := columnNames(d)
	if err := data.WriteCSV(filepath.Join(dir, "transformed.csv"), y, nil, header); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "report.json"), 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	})
}

// progress prints training progress to stderr: a live line rewritten in
// place on a terminal, plain periodic lines otherwise.
type progress struct {
	w     io.Writer
	quiet bool
	tty   bool
	last  time.Time
	live  bool
}

func newProgress(w io.Writer, quiet bool) *progress {
	return &progress{w: w, quiet: quiet, tty: isTerminal(w)}
}

func (p *progress) update(s lrmf.Progress) {
	if p.quiet {
		return
	}
	phase := s.Phase
	if s.Restart > 0 { // restarts after the first are labelled (they may run at once)
		phase = fmt.Sprintf("%s/%d", phase, s.Restart+1)
	}
	line := fmt.Sprintf("%-6s step %d/%d  loss %.6g  |grad| %.3g  %.1fs", phase, s.Step, s.Steps, s.Loss, s.GradNorm, s.Elapsed.Seconds())
	if s.Steps == 0 {
		line = fmt.Sprintf("%-6s closed-form fit  %.1fs", s.Phase, s.Elapsed.Seconds())
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.live = true
		if s.Done {
			fmt.Fprintln(p.w)
			p.live = false
		}
		return
	}
	// Plain output: a line per phase end and at most one every 2 seconds.
	if s.Done || time.Since(p.last) >= 2*time.Second {
		fmt.Fprintln(p.w, line)
		p.last = time.Now()
	}
}

func (p *progress) finish() {
	if p.live {
		fmt.Fprintln(p.w)
		p.live = false
	}
}

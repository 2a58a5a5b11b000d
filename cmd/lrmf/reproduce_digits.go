package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/gonum/mat"
	gplot "gonum.org/v1/plot"

	"github.com/lrmf-go/lrmf/internal/atomicfile"
	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/embed"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/paper"
	"github.com/lrmf-go/lrmf/lrmf/plot"
	"github.com/lrmf-go/lrmf/native"
)

// digitsExpOpts are the flags of lrmf reproduce that only the digits
// experiment reads.
type digitsExpOpts struct {
	dim                   int
	embed                 string
	flow, density         string
	flows, densities      []string // flow and density split at commas, by validate
	blocks, hidden, depth int
	batch                 int
	lr                    float64
	aeSteps, aeHidden     int
	k                     int
	mnistDir              string
	quiet                 bool
}

// digitsFlagNames lists those flags, for the check that other experiments
// are not given them.
var digitsFlagNames = []string{"dim", "embed", "flow", "density", "blocks", "hidden", "depth", "batch", "lr", "ae-steps", "ae-hidden", "k", "mnist-dir", "quiet"}

// digitsImagesPerDigit is the number of images of each digit in the
// decoded grids.
const digitsImagesPerDigit = 8

// registerDigitsFlags adds the digits experiment's flags to fs.
func registerDigitsFlags(fs *flag.FlagSet, o *digitsExpOpts) {
	fs.IntVar(&o.dim, "dim", paper.DigitsDefaultDim, "digits: D, the dimension of the shared embedding (2 to 256)")
	fs.StringVar(&o.embed, "embed", paper.EmbedPCA, "digits: shared embedding: pca (standardised scores) or ae (autoencoder, whitened codes)")
	fs.StringVar(&o.flow, "flow", lrmf.DefaultConfig().Flow.Kind, "digits: flow T: "+strings.Join(model.FlowKinds, ", ")+"; a comma-separated list aligns with each (e.g. affine,realnvp,glow)")
	fs.StringVar(&o.density, "density", "", "digits: density family: "+strings.Join(model.DensityKinds, ", ")+", one per --flow, comma-separated (default: the flow's kind when it is also a density, else gaussian)")
	fs.IntVar(&o.blocks, "blocks", 0, "digits: coupling blocks (or stacked transforms) of the flow and density (0: the model's default)")
	fs.IntVar(&o.hidden, "hidden", 0, "digits: hidden units per layer of the flow's and density's networks (0: the model's default)")
	fs.IntVar(&o.depth, "depth", 0, "digits: hidden layers of those networks (0: the model's default)")
	fs.IntVar(&o.batch, "batch", 0, fmt.Sprintf("digits: mini-batch size of the alignment (0: lrmf align's, %d)", lrmf.DefaultConfig().Batch))
	fs.Float64Var(&o.lr, "lr", 0, fmt.Sprintf("digits: Adam learning rate of the alignment (0: lrmf align's, %g)", lrmf.DefaultConfig().LR))
	fs.IntVar(&o.aeSteps, "ae-steps", 0, fmt.Sprintf("digits: autoencoder training steps (0: %d)", embed.DefaultAESteps))
	fs.IntVar(&o.aeHidden, "ae-hidden", 0, fmt.Sprintf("digits: autoencoder hidden width (0: %d)", embed.DefaultAEHidden))
	fs.IntVar(&o.k, "k", paper.DigitsDefaultK, "digits: k of the k-NN classifiers")
	fs.StringVar(&o.mnistDir, "mnist-dir", "", "digits: `DIR` holding the MNIST idx files (default: $"+data.MNISTDirEnv+", else the "+data.MNISTModule+" module's data directory)")
	fs.BoolVar(&o.quiet, "quiet", false, "digits: no progress output")
}

// helpDigits is the digits paragraph of lrmf reproduce's help.
const helpDigits = `
digits: the digit-embedding experiment (supplementary §8.3). A = the first
n USPS-style digits (MNIST test digits cropped to their ink and scaled to
fill 16×16; a stand-in, the real USPS set cannot be obtained here), B = the
first n MNIST training digits resized to 16×16. One embedding of both
(--embed pca, or ae: an autoencoder trained with lrmf's kernels) at --dim D;
A is aligned to B with lrmf align's defaults and --flow/--density (a
list, e.g. --flow affine,realnvp,glow, aligns once with each). Prints
each alignment's held-out verdict and LRMF, and the class agreement of
each map T: the accuracy of a k-NN classifier (--k) fitted on B's
embedding, applied to T(A) with A's labels as truth, for the identity,
the Gaussian OT map (closed form of affine + Gaussian LRMF), CORAL and
each LRMF flow; the within-domain
(leave-one-out) k-NN accuracy of A and of B; and the share of the gap
between the identity and B's within-domain accuracy that each map closes.
Writes DIR/digits.json, DIR/digits-projection.png/.svg (A, T(A), B on the
first two principal axes of the embedding, coloured by digit) and
DIR/digits-images.png/.svg (decoded A, T(A), B, 8 per digit).
`

// digitsSpec returns the ModelSpec of kind with the size flags, defaults
// filled in (any kind, so a new model kind needs no change here).
func (o *digitsExpOpts) spec(kind string) model.ModelSpec {
	return model.ModelSpec{Kind: kind, Blocks: o.blocks, Hidden: o.hidden, Depth: o.depth}.Normalized()
}

// validate checks the digits flags for sets of n digits each and fills
// in flows and densities (the density of each flow defaulted).
func (o *digitsExpOpts) validate(n int) error {
	p := data.USPSSide * data.USPSSide
	o.flows = strings.Split(o.flow, ",")
	if o.density == "" {
		o.densities = nil
		for _, f := range o.flows {
			d := "gaussian"
			if slices.Contains(model.DensityKinds, f) {
				d = f
			}
			o.densities = append(o.densities, d)
		}
		o.density = strings.Join(o.densities, ",")
	} else {
		o.densities = strings.Split(o.density, ",")
	}
	if len(o.densities) != len(o.flows) {
		return usagef("--density %q: want one density per --flow (%d)", o.density, len(o.flows))
	}
	for i, f := range o.flows {
		if !slices.Contains(model.FlowKinds, f) {
			return usagef("--flow %q: want one of %s", f, strings.Join(model.FlowKinds, ", "))
		}
		if !slices.Contains(model.DensityKinds, o.densities[i]) {
			return usagef("--density %q: want one of %s", o.densities[i], strings.Join(model.DensityKinds, ", "))
		}
	}
	switch {
	case n > paper.DigitsMaxA:
		return usagef("--n = %d: the USPS-style domain is built from MNIST's %d test digits", n, paper.DigitsMaxA)
	case o.dim < 2 || o.dim > p:
		return usagef("--dim = %d: want 2 to %d (16×16 pixels; the projection and the couplings need D ≥ 2)", o.dim, p)
	case o.dim > 2*n-1:
		return usagef("--dim = %d exceeds 2·n − 1 = %d, the dimensions %d + %d points span after centring", o.dim, 2*n-1, n, n)
	case o.embed != paper.EmbedPCA && o.embed != paper.EmbedAE:
		return usagef("--embed %q: want %s or %s", o.embed, paper.EmbedPCA, paper.EmbedAE)
	case o.blocks < 0 || o.hidden < 0 || o.depth < 0:
		return usagef("--blocks, --hidden, --depth: want 0 (default) or a positive integer")
	case o.batch < 0 || o.batch > n:
		return usagef("--batch = %d: want 0 (default) or 1 to n = %d", o.batch, n)
	case !(o.lr >= 0) || math.IsInf(o.lr, 0):
		return usagef("--lr = %v: want 0 (default) or a positive rate", o.lr)
	case o.aeSteps < 0 || o.aeHidden < 0:
		return usagef("--ae-steps, --ae-hidden: want 0 (default) or a positive integer")
	case (o.aeSteps > 0 || o.aeHidden > 0) && o.embed != paper.EmbedAE:
		return usagef("--ae-steps and --ae-hidden apply to --embed ae only")
	case o.k < 1 || o.k > n-1:
		return usagef("--k = %d: want 1 to n − 1 = %d", o.k, n-1)
	}
	for i, f := range o.flows {
		if _, err := o.spec(f).FlowMaker(); err != nil {
			return usagef("--flow %s: %v", f, err)
		}
		if _, err := o.spec(o.densities[i]).DensityMaker(); err != nil {
			return usagef("--density %s: %v", o.densities[i], err)
		}
	}
	return nil
}

// digitsReport is DIR/digits.json.
type digitsReport struct {
	N        int             `json:"n"` // digits per domain
	Dim      int             `json:"dim"`
	Seed     uint64          `json:"seed"`
	Backend  string          `json:"backend"`
	Embed    embedReport     `json:"embedding"`
	PCA      *embedReport    `json:"pca_same_dim,omitempty"`
	AE       *aeReport       `json:"autoencoder,omitempty"`
	Flow     model.ModelSpec `json:"flow"`
	Density  model.ModelSpec `json:"density"`
	Status   lrmf.Status     `json:"status"`
	LRMF     float64         `json:"lrmf"`
	CAB      float64         `json:"c_ab"`
	Steps    int             `json:"steps"`
	FitSteps int             `json:"fit_steps"`
	AlignSec float64         `json:"align_seconds"`
	FitSec   float64         `json:"align_fit_seconds"`   // fits of θA*, θB* (and pre-fit)
	JointSec float64         `json:"align_joint_seconds"` // joint phase
	MsStep   float64         `json:"ms_per_step"`         // joint phase
	K        int             `json:"k"`
	WithinA  float64         `json:"within_a"`
	WithinB  float64         `json:"within_b"`
	Maps     []mapReport     `json:"maps"`
	// Alignments has one entry per --flow; the fields above from Status
	// to MsStep repeat the first's.
	Alignments []alignReport `json:"alignments"`
	Goal       bool          `json:"goal_met"` // some alignment converged and closed ≥ ½ of the gap
	Seconds    float64       `json:"seconds"`
}

// embedReport is paper.EmbeddingStats in digits.json.
type embedReport struct {
	Kind       string   `json:"kind"`
	MSE        float64  `json:"mse"`          // per pixel, fit data
	HeldOutMSE *float64 `json:"held_out_mse"` // null without held-out images
	WithinA    float64  `json:"within_a"`
	WithinB    float64  `json:"within_b"`
	Seconds    float64  `json:"seconds"`
}

func newEmbedReport(s paper.EmbeddingStats) embedReport {
	return embedReport{Kind: s.Kind, MSE: s.MSE, HeldOutMSE: finitePtr(s.HeldOutMSE), WithinA: s.WithinA, WithinB: s.WithinB, Seconds: s.Seconds}
}

// aeReport is the autoencoder's configuration and training in digits.json.
type aeReport struct {
	Hidden   int     `json:"hidden"`
	Depth    int     `json:"depth"`
	Steps    int     `json:"steps"`
	Batch    int     `json:"batch"`
	LR       float64 `json:"lr"`
	FinalMSE float64 `json:"final_mse"`
	Seconds  float64 `json:"seconds"`
}

// alignReport is one alignment in digits.json: its verdict (Status, the
// held-out LRMF ± its standard error and upper bound, Verdict's sentence)
// and its map's score.
type alignReport struct {
	Map        string          `json:"map"`
	Flow       model.ModelSpec `json:"flow"`
	Density    model.ModelSpec `json:"density"`
	Status     lrmf.Status     `json:"status"`
	LRMF       *float64        `json:"lrmf"`
	LRMFSE     *float64        `json:"lrmf_se"`
	UpperBound *float64        `json:"upper_bound"`
	TrainLRMF  *float64        `json:"train_lrmf"`
	Verdict    string          `json:"verdict"`
	Steps      int             `json:"steps"`
	FitSteps   int             `json:"fit_steps"`
	Seconds    float64         `json:"seconds"`
	MsStep     float64         `json:"ms_per_step"`
	// FitA, FitB and Joint say how each phase ended: steps, stop reason,
	// the step kept (best validation value) and that value.
	FitA      lrmf.PhaseReport `json:"fit_a"`
	FitB      lrmf.PhaseReport `json:"fit_b"`
	Joint     lrmf.PhaseReport `json:"joint"`
	Agreement *float64         `json:"agreement"`
	GapClosed *float64         `json:"gap_closed"`
}

type mapReport struct {
	Name      string   `json:"name"`
	Agreement *float64 `json:"agreement"` // null when the map failed
	GapClosed *float64 `json:"gap_closed"`
	Seconds   float64  `json:"seconds"`
}

// finitePtr returns &v, or nil for NaN or ±Inf (JSON has no NaN).
func finitePtr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func reproduceDigits(ctx context.Context, o *reproduceOpts, stdout, stderr io.Writer) error {
	d := &o.digits
	be, err := native.Open(native.DefaultBackend(), digitsDType(), o.threads)
	if err != nil {
		return err
	}
	defer be.Close()
	cfg := paper.DigitsConfig{
		NA: o.n, NB: o.n, Dim: d.dim, Embed: d.embed, K: d.k, MNISTDir: d.mnistDir,
		AE: embed.AutoencoderConfig{Steps: d.aeSteps, Hidden: d.aeHidden},
	}
	for i, f := range d.flows {
		ac := lrmf.Config{
			Backend: be, Flow: d.spec(f), Density: d.spec(d.densities[i]),
			Steps: o.steps, LR: d.lr, Seed: o.seed,
			FitOptions: lrmf.FitOptions{FitSteps: o.fitSteps, Batch: d.batch},
		}
		if i == 0 {
			cfg.Align = ac
		} else {
			cfg.More = append(cfg.More, ac)
		}
	}
	prog := newProgress(stderr, d.quiet)
	cfg.Align.Progress = prog.update
	cfg.Stage = func(s string) {
		prog.finish()
		if !d.quiet {
			fmt.Fprintf(stderr, "lrmf reproduce digits: %s\n", s)
		}
	}
	fmt.Fprintf(stderr, "lrmf reproduce digits: n = %d per domain, D = %d, embedding %s, flow %s, density %s, seed %d, %s/%s ×%d threads\n",
		o.n, d.dim, d.embed, d.flow, d.density, o.seed, be.Name(), be.DType(), be.Threads())
	res, err := paper.Digits(ctx, cfg)
	prog.finish()
	if err != nil {
		return err
	}
	defer res.Close()
	written, err := writeDigitsFigures(o.out, res, d.flows[0])
	if err != nil {
		return err
	}
	rep := newDigitsReport(res, be)
	path := filepath.Join(o.out, "digits.json")
	err = atomicfile.Write(path, 0o644, func(w io.Writer) error {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(rep)
	})
	if err != nil {
		return err
	}
	printDigits(stdout, res, rep, be)
	fmt.Fprintf(stdout, "wrote %s, %s\n", path, strings.Join(written, ", "))
	return nil
}

// digitsDType is float32, or float64 on the reference backend.
func digitsDType() native.DType {
	if native.DefaultBackend() == "ref" {
		return native.Float64
	}
	return lrmf.DefaultDType
}

func newDigitsReport(res *paper.DigitsResult, be native.Backend) digitsReport {
	c := res.Config
	rep := digitsReport{
		N: c.NA, Dim: c.Dim, Seed: c.Align.Seed, Backend: be.Name() + "/" + be.DType().String(),
		Embed: newEmbedReport(res.Embedding), K: c.K,
		WithinA: res.Embedding.WithinA, WithinB: res.Embedding.WithinB, Seconds: res.Seconds,
	}
	if res.PCA != nil {
		s := newEmbedReport(*res.PCA)
		rep.PCA = &s
	}
	if ae := res.Pair.AE; ae != nil {
		ac := ae.Config
		rep.AE = &aeReport{Hidden: ac.Hidden, Depth: ac.Depth, Steps: ac.Steps, Batch: ac.Batch, LR: ac.LR, FinalMSE: ae.FinalMSE, Seconds: ae.Seconds}
	}
	if a := res.Align; a != nil {
		rep.Flow, rep.Density = a.Config.Flow, a.Config.Density
		rep.Status, rep.LRMF, rep.CAB, rep.Steps, rep.FitSteps, rep.AlignSec = a.Status, a.LRMF, a.CAB, a.Steps, max(a.FitStepsA, a.FitStepsB), a.TotalSeconds
		rep.FitSec, rep.JointSec, rep.MsStep = a.FitSeconds, a.JointSeconds, a.MsPerStep
		if math.IsNaN(rep.LRMF) || math.IsInf(rep.LRMF, 0) {
			rep.LRMF = 0
		}
	}
	for _, m := range res.Maps {
		rep.Maps = append(rep.Maps, mapReport{Name: m.Name, Agreement: finitePtr(m.Agreement), GapClosed: finitePtr(res.GapClosed(m.Name)), Seconds: m.Seconds})
	}
	for _, al := range res.Alignments {
		a := al.Result
		ar := alignReport{Map: al.Map, Flow: a.Config.Flow, Density: a.Config.Density, Status: a.Status,
			LRMF: finitePtr(a.LRMF), LRMFSE: finitePtr(a.LRMFSE), UpperBound: finitePtr(a.UpperBound), TrainLRMF: finitePtr(a.Train.LRMF),
			Verdict: a.Verdict(), Steps: a.Steps, FitSteps: max(a.FitStepsA, a.FitStepsB), Seconds: a.TotalSeconds, MsStep: a.MsPerStep,
			FitA: a.FitA, FitB: a.FitB, Joint: a.Joint}
		if m := res.Map(al.Map); m != nil {
			ar.Agreement, ar.GapClosed = finitePtr(m.Agreement), finitePtr(res.GapClosed(al.Map))
		}
		rep.Alignments = append(rep.Alignments, ar)
		if a.Converged && res.GapClosed(al.Map) >= 0.5 {
			rep.Goal = true
		}
	}
	return rep
}

// printDigits prints the experiment's numbers.
func printDigits(w io.Writer, res *paper.DigitsResult, rep digitsReport, be native.Backend) {
	c := res.Config
	fmt.Fprintf(w, "digits: A = USPS-style (first %d MNIST test digits), B = first %d MNIST training digits, 16×16; seed %d, %s/%s\n",
		c.NA, c.NB, c.Align.Seed, be.Name(), be.DType())
	stats := func(name string, s paper.EmbeddingStats) {
		held := "-"
		if !math.IsNaN(s.HeldOutMSE) {
			held = fmt.Sprintf("%.4f", s.HeldOutMSE)
		}
		fmt.Fprintf(w, "  %-18s %8.4f %12s %9.4f %9.4f %8.1fs\n", name, s.MSE, held, s.WithinA, s.WithinB, s.Seconds)
	}
	fmt.Fprintf(w, "embedding, D = %d: reconstruction MSE per pixel (fit data, held-out) and %d-NN leave-one-out accuracy within each domain\n", c.Dim, c.K)
	fmt.Fprintf(w, "  %-18s %8s %12s %9s %9s %9s\n", "embedding", "MSE", "held-out MSE", "within A", "within B", "time")
	stats(res.Embedding.Kind, res.Embedding)
	if res.PCA != nil {
		stats("pca (same D)", *res.PCA)
	}
	// Each alignment: its configuration, the held-out verdict, the
	// training data's LRMF and the time.
	alignOf := map[string]*lrmf.Result{}
	for _, al := range res.Alignments {
		a := al.Result
		alignOf[al.Map] = a
		cfg := a.Config
		fit := fmt.Sprintf("%d fit steps", cfg.FitSteps)
		if a.FitStepsA == 0 && a.FitStepsB == 0 {
			fit = "θA*, θB* in closed form"
		}
		fmt.Fprintf(w, "alignment: flow %s, density %s; %s, %d joint steps, batch %d, lr %g %s\n",
			cfg.Flow.Kind, cfg.Density.Kind, fit, a.Steps, cfg.Batch, cfg.LR, cfg.Schedule)
		fmt.Fprintf(w, "  %s\n", a.Verdict())
		fmt.Fprintf(w, "  training data: LRMF = %.4g nats, c_AB = %.4g; %.1f s (fits %.1f s, joint %.1f s, %.3f ms/step)\n",
			a.Train.LRMF, a.CAB, a.TotalSeconds, a.FitSeconds, a.JointSeconds, a.MsPerStep)
		if j := a.Joint; j.Evaluations > 0 {
			fmt.Fprintf(w, "  joint phase: stopped by %s after %d steps; kept step %d (validation LRMF %.4g)\n", j.StoppedBy, j.Steps, j.BestStep, j.BestValue)
		}
		if al.Err != nil {
			fmt.Fprintf(w, "  %v\n", al.Err)
		}
	}
	fmt.Fprintf(w, "class agreement: %d-NN classifier fitted on B's embedding, applied to T(A), A's labels as truth\n", c.K)
	fmt.Fprintf(w, "  %-18s %9s %11s %8s %18s  %s\n", "map", "agreement", "gap closed", "time", "LRMF (held-out)", "verdict")
	for _, m := range res.Maps {
		name, lr, verdict := m.Name, "-", "-"
		if a := alignOf[m.Name]; a != nil {
			name = "lrmf (" + a.Config.Flow.Kind + ")"
			lr, verdict = fmt.Sprintf("%.3g ± %.2g", a.LRMF, a.LRMFSE), string(a.Status)
		}
		ag, gap := "failed", "-"
		if !math.IsNaN(m.Agreement) {
			ag = fmt.Sprintf("%.4f", m.Agreement)
			if g := res.GapClosed(m.Name); !math.IsNaN(g) {
				gap = fmt.Sprintf("%.3f", g)
			}
		}
		fmt.Fprintf(w, "  %-18s %9s %11s %7.1fs %18s  %s\n", name, ag, gap, m.Seconds, lr, verdict)
	}
	fmt.Fprintf(w, "  %-18s %9.4f %11s\n", "within B (LOO)", res.Embedding.WithinB, "1")
	fmt.Fprintf(w, "  (gap closed = (agreement − identity's) / (within B − identity's); the goal of issue #12 is converged and ≥ 0.5)\n")
	verdict := "not met"
	if rep.Goal {
		verdict = "met"
	}
	var per []string
	for _, al := range res.Alignments {
		per = append(per, fmt.Sprintf("%s %s, gap closed %s", al.Result.Config.Flow.Kind, al.Result.Status, fmtMaybe(res.GapClosed(al.Map))))
	}
	fmt.Fprintf(w, "goal: %s (%s); %.1f s in all\n", verdict, strings.Join(per, "; "), res.Seconds)
}

func fmtMaybe(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

// writeDigitsFigures writes the projection and the decoded images of the
// LRMF map (of the identity when the alignment failed) and returns the
// paths.
func writeDigitsFigures(dir string, res *paper.DigitsResult, flow string) ([]string, error) {
	name, label := paper.MapLRMF, "T(A), lrmf "+flow
	if m := res.Map(name); m == nil || m.TA == nil {
		name, label = paper.MapIdentity, "T(A): alignment failed, identity"
	}
	a, ta, b, err := res.Projection(name)
	if err != nil {
		return nil, err
	}
	la, lb := res.Pair.A.Labels, res.Pair.B.Labels
	var row []*gplot.Plot
	for _, s := range []struct {
		title string
		xy    *mat.Dense
		l     []int
	}{{"A: USPS-style (before)", a, la}, {label + " (after)", ta, la}, {"B: MNIST", b, lb}} {
		p, err := plot.DigitScatter(s.title, s.xy, s.l)
		if err != nil {
			return nil, err
		}
		row = append(row, p)
	}
	plot.SameRange(row...)
	written, err := plot.SaveGrid([][]*gplot.Plot{row}, plot.PanelSize, plot.PanelSize, filepath.Join(dir, "digits-projection"))
	if err != nil {
		return nil, err
	}
	ia, ita, ib, err := res.DecodedGrid(name, digitsImagesPerDigit)
	if err != nil {
		return nil, err
	}
	dec := "decoded (PCA)"
	if res.Embedding.Kind == paper.EmbedAE {
		dec = "decoded (autoencoder)"
	}
	var imgs []*gplot.Plot
	for _, s := range []struct {
		title string
		x     *mat.Dense
	}{{"A " + dec, ia}, {"T(A) " + dec, ita}, {"B " + dec, ib}} {
		p, err := plot.DigitImages(s.title, s.x, data.USPSSide, digitsImagesPerDigit)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, p)
	}
	w, h := plot.DigitImagesSize(10*digitsImagesPerDigit, data.USPSSide, digitsImagesPerDigit, 3)
	paths, err := plot.SaveGrid([][]*gplot.Plot{imgs}, w, h, filepath.Join(dir, "digits-images"))
	if err != nil {
		return nil, err
	}
	return append(written, paths...), nil
}

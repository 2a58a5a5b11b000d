package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
	gplot "gonum.org/v1/plot"

	"github.com/lrmf-go/lrmf/internal/atomicfile"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/paper"
	"github.com/lrmf-go/lrmf/lrmf/plot"
	"github.com/lrmf-go/lrmf/native"
)

// glowExpOpts are the glow-digits experiment's own flags.
type glowExpOpts struct {
	levels, steps, hidden int
	paperSize             bool
	lrmfSteps             int
	lrmfLR                float64
	lrmfRuns              string
	lrmfFloat64           bool
}

// glowFlagNames lists them, for the check that other experiments are not
// given them.
var glowFlagNames = []string{"glow-levels", "glow-steps", "glow-hidden", "glow-paper", "glow-lrmf-steps", "glow-lrmf-lr", "glow-lrmf-runs", "glow-lrmf-float64"}

// registerGLOWFlags adds the glow-digits experiment's flags to fs.
func registerGLOWFlags(fs *flag.FlagSet, o *glowExpOpts) {
	fs.IntVar(&o.levels, "glow-levels", 0, "glow-digits: GLOW levels L (0: 3)")
	fs.IntVar(&o.steps, "glow-steps", 0, "glow-digits: steps K per level (0: 4)")
	fs.IntVar(&o.hidden, "glow-hidden", 0, "glow-digits: filters F of the coupling networks (0: 32)")
	fs.BoolVar(&o.paperSize, "glow-paper", false, "glow-digits: the paper's GLOW, L = 3, K = 8, F = 512 (meant for a GPU)")
	fs.IntVar(&o.lrmfSteps, "glow-lrmf-steps", 0, "glow-digits: LRMF joint steps aligning B to A after the fits (0: 100; negative: none)")
	fs.Float64Var(&o.lrmfLR, "glow-lrmf-lr", 0, "glow-digits: Adam's rate of the LRMF joint phase (0: 1e-5, the supplement's)")
	fs.StringVar(&o.lrmfRuns, "glow-lrmf-runs", paper.GLOWRunBackToBack+","+paper.GLOWRunScratch,
		"glow-digits: the LRMF runs, comma-separated: back-to-back (T = G_A⁻¹∘G_B from the fitted models), scratch (a fresh back-to-back T = id)")
	fs.BoolVar(&o.lrmfFloat64, "glow-lrmf-float64", false, "glow-digits: run the LRMF alignments in float64 (the fits stay float32)")
}

const helpGLOW = `
glow-digits: GLOW densities on 32×32×1 digits (supp. §8.3): θA* on MNIST
(training split, padded to 32×32) and θB* on the USPS-style domain (MNIST
test split, data.USPSStyle, upsampled 2×), values in [0, 1] plus fresh
dequantisation noise 0.05·(2u − 1) per batch. --n images per domain
(default 1000), 500 held out each; Adam 1e-3 cosine, batch 32, --steps
per fit (default 300); L = 3 levels × K = 4 steps × F = 32 filters unless
--glow-levels/--glow-steps/--glow-hidden or --glow-paper (3 × 8 × 512).
Prints each model's held-out NLL in nats per image and bits per dimension
beside the paper's (−2094.7 MNIST, −2185.3 USPS, nats). Then LRMF aligns B
to A with a back-to-back flow T = G2⁻¹∘G1 of two GLOWs, θS starting at θA*,
both trained (see paper.GLOWLRMF), in the runs --glow-lrmf-runs names:
back-to-back (G1 = θB*'s GLOW, G2 = θA*'s: the paper's T = G_A⁻¹∘G_B,
LRMF = 0 at the start by construction) and scratch (a fresh pair, T = id),
each --glow-lrmf-steps joint steps (default 100) at Adam --glow-lrmf-lr
(default 1e-5), batch 32. Training images of B whose T(b) is non-finite at
the start, or (back to back) off ln pB*(b) by more than 1 nat there, are
left out of the joint phase and counted. Prints per run the LRMF trajectory (mean ± SD
per block of steps), its mean ± SD per batch and a logistic-regression
domain classifier's held-out accuracy on A vs T(B) (0.5: indistinguishable)
beside the paper's (≈ 0 ± 32–41 nats; 0.59–0.66). The defaults take about
15 minutes on 2 shared cores. Writes DIR/glow-digits.csv (the per-step
batch NLL of both fits), DIR/glow-digits-lrmf.csv (the joint steps of
every run) and DIR/glow-digits-images.png/.svg (held-out A, B and T(B)
of every run).
`

func reproduceGLOWDigits(ctx context.Context, o *reproduceOpts, stdout, stderr io.Writer) error {
	g := o.glow
	mo := model.GLOWOptions{Levels: g.levels, Steps: g.steps, Hidden: g.hidden}
	if g.paperSize {
		mo = model.PaperGLOW
	}
	dt := native.Float32
	if native.DefaultBackend() == "ref" {
		dt = native.Float64
	}
	be, err := native.Open(native.DefaultBackend(), dt, o.threads)
	if err != nil {
		return err
	}
	defer be.Close()
	var runs []string
	var lrmfBE native.Backend
	for _, r := range strings.Split(g.lrmfRuns, ",") {
		if r = strings.TrimSpace(r); r != "" {
			runs = append(runs, r)
		}
	}
	if g.lrmfFloat64 && be.DType() != native.Float64 {
		lbe, err := native.Open(native.DefaultBackend(), native.Float64, o.threads)
		if err != nil {
			return err
		}
		defer lbe.Close()
		lrmfBE = lbe
	}
	cfg := paper.GLOWDigitsConfig{LRMFBackend: lrmfBE, N: o.n, Model: mo, Steps: o.steps, Seed: o.seed, Backend: be, LRMFSteps: g.lrmfSteps, LRMFLR: g.lrmfLR, LRMFRuns: runs,
		Stage: func(s string) { fmt.Fprintf(stderr, "glow-digits: %s\n", s) }}
	res, err := paper.GLOWDigits(ctx, cfg)
	if err != nil {
		return err
	}
	c := res.Config
	fmt.Fprintf(stdout, "GLOW digits (%s backend, %v): L = %d levels × K = %d steps × F = %d filters, n = %d per domain (%d held out), %d Adam steps of batch %d, %.0f s\n",
		res.Backend, be.DType(), c.Model.Levels, c.Model.Steps, c.Model.Hidden, c.N, c.HeldOut, c.Steps, c.Batch, res.Seconds)
	fmt.Fprintf(stdout, "  %-22s %14s %12s %16s\n", "held-out NLL", "nats/image", "bits/dim", "paper nats/image")
	for _, f := range []struct {
		name  string
		fit   paper.GLOWFit
		paper float64
	}{{"θA* MNIST", res.A, paper.GLOWPaperNLLMNIST}, {"θB* USPS-style", res.B, paper.GLOWPaperNLLUSPS}} {
		fmt.Fprintf(stdout, "  %-22s %14.1f %12.4f %16.1f   (%.2f steps/s)\n", f.name, f.fit.NLL, paper.BitsPerDim(f.fit.NLL), f.paper, f.fit.StepsPerS)
	}
	fmt.Fprintf(stdout, "(the paper's models are L = 3 × K = 8 × F = 512 trained to convergence on full MNIST/USPS; bits/dim on [0, 1] values, add 8 for the 256-level scale)\n")
	path := filepath.Join(o.out, "glow-digits.csv")
	err = atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if _, err := io.WriteString(w, "step,nll_mnist,nll_usps\n"); err != nil {
			return err
		}
		for i := range res.A.TrainNLL {
			line := strconv.Itoa(i) + "," + strconv.FormatFloat(res.A.TrainNLL[i], 'g', 8, 64) + "," +
				strconv.FormatFloat(res.B.TrainNLL[i], 'g', 8, 64) + "\n"
			if _, err := io.WriteString(w, line); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", path)
	if len(res.LRMF) > 0 {
		return reportGLOWLRMF(res.LRMF, o.out, stdout)
	}
	return nil
}

// glowRunTitle describes a run's T.
func glowRunTitle(kind string) string {
	if kind == paper.GLOWRunScratch {
		return "from scratch, T = G2⁻¹∘G1 fresh (G2 = G1: T = id)"
	}
	return "back to back, T = G_A⁻¹∘G_B from θA*, θB*"
}

// reportGLOWLRMF prints each alignment's trajectory and classifier beside
// the paper's and writes their CSV and image grids.
func reportGLOWLRMF(runs []*paper.GLOWLRMF, dir string, stdout io.Writer) error {
	for _, l := range runs {
		reportGLOWRun(l, stdout)
	}
	path := filepath.Join(dir, "glow-digits-lrmf.csv")
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if _, err := io.WriteString(w, "run,step,lrmf,grad_t,grad_s\n"); err != nil {
			return err
		}
		for _, l := range runs {
			for _, p := range l.Trajectory {
				if _, err := fmt.Fprintf(w, "%s,%d,%.8g,%.8g,%.8g\n", l.Kind, p.Step, p.Loss, p.GradT, p.GradS); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	l0 := runs[0]
	panels := []struct {
		title string
		x     *mat.Dense
	}{{"A (MNIST, held out)", l0.A}, {"B (USPS-style, held out)", l0.B}}
	for _, l := range runs {
		title := "T(B) = G_A⁻¹(G_B(B)), trained"
		if l.Kind == paper.GLOWRunScratch {
			title = "T(B), T from scratch, trained"
		}
		panels = append(panels, struct {
			title string
			x     *mat.Dense
		}{title, l.TB})
	}
	var ps []*gplot.Plot
	for _, s := range panels {
		p, err := plot.DigitImages(s.title, s.x, paper.GLOWDigitsSide, 8)
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	n, _ := l0.A.Dims()
	w, h := plot.DigitImagesSize(n, paper.GLOWDigitsSide, 8, float64(len(ps)))
	paths, err := plot.SaveGrid([][]*gplot.Plot{ps}, w, h, filepath.Join(dir, "glow-digits-images"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s %s\n", path, strings.Join(paths, " "))
	return nil
}

// reportGLOWRun prints one alignment.
func reportGLOWRun(l *paper.GLOWLRMF, stdout io.Writer) {
	o, pts := l.Options, l.Trajectory
	fmt.Fprintf(stdout, "LRMF B → A, %s, θS from θA*, both trained: %d of %d Adam steps at %g, batch %d, %s, %.0f s\n",
		glowRunTitle(l.Kind), len(pts), o.Steps, o.LR, o.Batch, l.Backend, l.Seconds)
	if l.NonFiniteB+l.InconsistentB > 0 {
		fmt.Fprintf(stdout, "  of %d training images of B, T(b) at the start is non-finite on %d and (back to back) off ln pB*(b) by > 1 nat on %d (G_A⁻¹ of latents G_A was not fitted to); the joint phase draws from the other %d, c_AB on them\n",
			l.NonFiniteB+l.InconsistentB+l.TrainB, l.NonFiniteB, l.InconsistentB, l.TrainB)
	}
	if l.Err != "" {
		fmt.Fprintf(stdout, "  stopped: %s\n", l.Err)
	}
	verdict := "did not run"
	if len(pts) > 0 {
		k := max(1, (len(pts)+4)/5)
		first, mean, sd := l.BlockStats(k)
		fmt.Fprintf(stdout, "  c_AB = %.1f nats; mini-batch LRMF: step 1: %.1f;", l.CAB, pts[0].Loss)
		for i := range first {
			last := min(first[i]+k-1, pts[len(pts)-1].Step)
			fmt.Fprintf(stdout, " steps %d–%d: %.1f ± %.1f;", first[i], last, mean[i], sd[i])
		}
		fmt.Fprintf(stdout, " step %d: %.1f; ‖g_T‖ %.3g → %.3g\n", pts[len(pts)-1].Step, pts[len(pts)-1].Loss, pts[0].GradT, pts[len(pts)-1].GradT)
		verdict = "does not reach 0"
		if math.Abs(l.Mean) < 2*l.SD/math.Sqrt(float64(len(pts))) || math.Abs(l.Mean) < 1 {
			verdict = "≈ 0 (within its batch noise)"
		}
		if nb := len(mean); l.Err != "" {
			verdict = fmt.Sprintf("diverged after %d steps (from %.1f at step 1)", len(pts), pts[0].Loss)
		} else if l.Kind == paper.GLOWRunScratch {
			verdict = fmt.Sprintf("from %.1f to %.1f ± %.1f in the last block: it does not reach 0", mean[0], mean[nb-1], sd[nb-1])
			if math.Abs(mean[nb-1]) < 2*sd[nb-1] {
				verdict = fmt.Sprintf("from %.1f to %.1f ± %.1f in the last block: ≈ 0", mean[0], mean[nb-1], sd[nb-1])
			}
		}
	}
	fmt.Fprintf(stdout, "  %-34s %18s %18s\n", "", "here", "paper")
	if len(pts) > 0 {
		fmt.Fprintf(stdout, "  %-34s %9.1f ± %-6.1f %18s\n", "LRMF per batch, mean ± SD (nats)", l.Mean, l.SD, "≈ 0 ± 32–41")
	}
	fmt.Fprintf(stdout, "  %-34s %18.3f %18s\n", "classifier A vs T(B) (held out)", l.AccATB, "0.59–0.66")
	fmt.Fprintf(stdout, "  %-34s %18.3f %18s\n", "  the same before the joint phase", l.AccATB0, "")
	fmt.Fprintf(stdout, "  %-34s %18.3f %18s\n", "classifier A vs B (held out)", l.AccAB, "")
	fmt.Fprintf(stdout, "  T(B) overflows (a non-finite pixel) on %d of %d held-out images after, %d before the joint phase (left out by the classifier, white in the grid)\n",
		l.NonFinite, l.HeldOut, l.NonFinite0)
	aligned := "not aligned: the classifier still tells A from T(B)"
	if l.AccATB < 0.55 && l.NonFinite == 0 {
		aligned = "the classifier cannot tell A from T(B)"
	}
	fmt.Fprintf(stdout, "  LRMF %s; %s (0.5 = indistinguishable)\n", verdict, aligned)
}

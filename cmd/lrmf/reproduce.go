package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot/vg"

	"github.com/lrmf-go/lrmf/internal/atomicfile"
	"github.com/lrmf-go/lrmf/lrmf/paper"
	"github.com/lrmf-go/lrmf/lrmf/plot"
)

// experiment is one paper result that lrmf reproduce can recompute, with
// the --n and --seed it uses when they are not given.
type experiment struct {
	summary string
	run     func(ctx context.Context, o *reproduceOpts, stdout, stderr io.Writer) error
	n       int
	seed    uint64
	trains  bool // runs lrmf.Align: --steps, --fit-steps and --threads apply
}

func experiments() map[string]experiment {
	return map[string]experiment{
		"example-2.2": {"vanishing gradient of a Gaussian-mixture likelihood (regression of √(−ln|g|) on μ)", reproduceExample22, 100000, example22DefaultSeed, false},
		"fig8":        {"affine flow + Gaussian density on blobs and moons: moments matched, LRMF → 0 (plots)", reproduceFig8, figN, figSeed, true},
		"fig9":        {"Real NVP flow + Real NVP density on blobs and moons: LRMF → 0, arms kept (plots)", reproduceFig9, figN, figSeed, true},
		"digits":      {"USPS-style → MNIST embeddings (PCA or autoencoder): LRMF, class agreement vs identity, Gaussian OT, CORAL (plots)", reproduceDigits, paper.DigitsDefaultN, figSeed, true},
		"glow-digits": {"GLOW densities on 32×32 MNIST and USPS-style digits: θA*, θB* held-out NLL vs the paper's", reproduceGLOWDigits, 1000, figSeed, true},
	}
}

// experimentOrder lists the experiments in the order of the paper (and of
// lrmf reproduce's help and error messages).
var experimentOrder = []string{"example-2.2", "fig8", "fig9", "digits", "glow-digits"}

// experimentNames returns the experiment names in the paper's order. It
// panics if experimentOrder and experiments() disagree (a programmer
// error).
func experimentNames() []string {
	ex := experiments()
	if len(ex) != len(experimentOrder) {
		panic("lrmf reproduce: experimentOrder does not list every experiment")
	}
	for _, n := range experimentOrder {
		if _, ok := ex[n]; !ok {
			panic("lrmf reproduce: experimentOrder names an unknown experiment " + n)
		}
	}
	return slices.Clone(experimentOrder)
}

type reproduceOpts struct {
	n               int
	seed            uint64
	out             string
	steps, fitSteps int
	threads         int
	digits          digitsExpOpts
	glow            glowExpOpts
}

// example22DefaultSeed is the draw lrmf reproduce uses by default; see the
// README for the spread over draws.
const example22DefaultSeed = 3

func reproduceFlags(o *reproduceOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("reproduce", flag.ContinueOnError)
	fs.IntVar(&o.n, "n", 0, "sample size of A (and of B) (default: example-2.2 100000, fig8/fig9/digits 2000)")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed of the sample, or of digits' training (default: example-2.2 3, fig8/fig9/digits 1)")
	fs.StringVar(&o.out, "out", ".", "output `DIR` for NAME.csv or the figures (created if missing)")
	fs.IntVar(&o.steps, "steps", 0, "fig8/fig9/digits: joint-phase step budget (default: lrmf align's, 20000)")
	fs.IntVar(&o.fitSteps, "fit-steps", 0, "fig9/digits: step budget of each gradient fit of θA*, θB* (default: lrmf align's, 20000)")
	fs.IntVar(&o.threads, "threads", runtime.NumCPU(), "fig8/fig9/digits: host threads for the cpu backend")
	registerDigitsFlags(fs, &o.digits)
	registerGLOWFlags(fs, &o.glow)
	return fs
}

func helpReproduce(w io.Writer) {
	fmt.Fprint(w, `Usage: lrmf reproduce NAME [flags]

Recomputes a result of the paper, prints it next to the paper's values and
writes the series behind it to DIR/NAME.csv and its figures to DIR as PNG
and SVG. Names:
`)
	ex := experiments()
	for _, n := range experimentNames() {
		fmt.Fprintf(w, "  %-12s %s\n", n, ex[n].summary)
	}
	fmt.Fprint(w, `
example-2.2: A is an n-point sample of ½N(−1, 0.5²) + ½N(1, 0.5²), the model
½N(0, 1.25) + ½N(μ, 1.25) (1.25 the variance); g(μ) = dℓ/dμ for μ in
linspace(4, 20, 100), ℓ the mean log-likelihood of A, computed in float64
with the Gaussian-mixture kernels. √(−ln|g|) is regressed on μ over the
indices [20, 80); the paper reports a = 0.6, b = −1.168, r = 0.99996.
The CSV has the columns mu, g, sqrt_neg_log_abs_g.

fig8, fig9: lrmf align with lrmf align's default settings (n = 2000 points
per set, seed 1, 20000 joint steps, batch 256, lr 0.003 cosine, float32)
on the built-in blobs and moons pairs, fig8 with the affine flow and the
Gaussian density (paper Figure 8), fig9 with a Real NVP flow and a Real NVP
density (4 blocks, 2 × 32 ReLU; paper Figure 9). Each prints the LRMF on
the full data, the arm accuracy on moons and the moment errors of T(A)
against B next to the paper's (qualitative) claims, and writes
DIR/NAME-DATA-PANEL.png/.svg for the panels scatter, lrmf, density-a,
density-b, density-s and displacement, and DIR/NAME.png/.svg with both
datasets' main panels side by side.
`+helpDigits+helpGLOW+`
Flags marked digits: apply to digits only.

Flags:
`)
	var o reproduceOpts
	printDefaults(w, reproduceFlags(&o))
}

func runReproduce(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var o reproduceOpts
	fs := reproduceFlags(&o)
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			helpReproduce(stdout)
		}
		return 0, err
	}
	rest := fs.Args()
	if name == "" && len(rest) > 0 {
		// Flags may also follow a NAME given after flags.
		name = rest[0]
		if err := parseFlags(fs, rest[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				helpReproduce(stdout)
			}
			return 0, err
		}
		rest = fs.Args()
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	avail := strings.Join(experimentNames(), ", ")
	ex, ok := experiments()[name]
	switch {
	case name == "":
		return 0, usagef("missing experiment NAME (available: %s)", avail)
	case !ok:
		return 0, usagef("unknown experiment %q (available: %s)", name, avail)
	case len(rest) > 0:
		return 0, usagef("unexpected argument %q", rest[0])
	case !ex.trains && (set["steps"] || set["fit-steps"] || set["threads"]):
		return 0, usagef("--steps, --fit-steps and --threads apply to fig8 and fig9 only (and to digits)")
	case set["n"] && o.n < 1:
		return 0, usagef("--n = %d: want a positive integer", o.n)
	case o.out == "":
		return 0, usagef("--out DIR must not be empty")
	case set["steps"] && o.steps < 1:
		return 0, usagef("--steps = %d: want a positive integer", o.steps)
	case set["fit-steps"] && o.fitSteps < 1:
		return 0, usagef("--fit-steps = %d: want a positive integer", o.fitSteps)
	case o.threads < 1:
		return 0, usagef("--threads = %d: want a positive integer", o.threads)
	}
	if name != "digits" {
		for _, f := range digitsFlagNames {
			if set[f] {
				return 0, usagef("--%s applies to digits only", f)
			}
		}
	}
	if name != "glow-digits" {
		for _, f := range glowFlagNames {
			if set[f] {
				return 0, usagef("--%s applies to glow-digits only", f)
			}
		}
	}
	if !set["n"] {
		o.n = ex.n
	}
	if name == "digits" {
		if err := o.digits.validate(o.n); err != nil {
			return 0, err
		}
	}
	if !set["seed"] {
		o.seed = ex.seed
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return 0, err
	}
	if err := ex.run(ctx, &o, stdout, stderr); err != nil {
		return 0, err
	}
	return exitOK, nil
}

func reproduceExample22(_ context.Context, o *reproduceOpts, stdout, _ io.Writer) error {
	res, err := paper.Example22(o.n, o.seed)
	if err != nil {
		return err
	}
	path := filepath.Join(o.out, "example-2.2.csv")
	err = atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if _, err := io.WriteString(w, "mu,g,sqrt_neg_log_abs_g\n"); err != nil {
			return err
		}
		for i := range res.Mu {
			line := strconv.FormatFloat(res.Mu[i], 'g', -1, 64) + "," +
				strconv.FormatFloat(res.G[i], 'g', -1, 64) + "," +
				strconv.FormatFloat(res.Y[i], 'g', -1, 64) + "\n"
			if _, err := io.WriteString(w, line); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	pl, err := plot.Regression(fmt.Sprintf("Example 2.2: n = %d, seed %d", res.N, res.Seed), "μ", "√(−ln|g(μ)|)",
		res.Mu, res.Y, res.Lo, res.Hi, res.A, res.B, res.R, &[2]float64{paper.Example22A, paper.Example22B})
	if err != nil {
		return err
	}
	figs, err := plot.Save(pl, 6*vg.Inch, 4*vg.Inch, filepath.Join(o.out, "example-2.2"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Example 2.2 (n = %d, seed %d, %s backend, float64): √(−ln|g|) ≈ a·μ + b over μ[%d:%d] = [%.4g, %.4g]\n",
		res.N, res.Seed, res.Backend, res.Lo, res.Hi, res.Mu[res.Lo], res.Mu[res.Hi-1])
	fmt.Fprintf(stdout, "        %10s %10s\n", "measured", "paper")
	fmt.Fprintf(stdout, "  a     %10.5f %10.5g\n", res.A, paper.Example22A)
	fmt.Fprintf(stdout, "  b     %10.5f %10.5g\n", res.B, paper.Example22B)
	fmt.Fprintf(stdout, "  r     %10.6f %10.5g\n", res.R, paper.Example22R)
	fmt.Fprintf(stdout, "(paper, other draws: a in [0.59, 0.61], b in [-1.20, -1.13], r > 0.9999)\n")
	fmt.Fprintf(stdout, "wrote %s, %s\n", path, strings.Join(figs, ", "))
	return nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/gonum/mat"
	gplot "gonum.org/v1/plot"

	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/plot"
	"github.com/lrmf-go/lrmf/native"
)

// Defaults of lrmf reproduce fig8 and fig9: lrmf align's built-in data size
// and seed.
const (
	figN    = 2000
	figSeed = 1
)

// figDatasets are the pairs of Figures 8 and 9, in the paper's row order.
var figDatasets = []string{"blobs", "moons"}

// figure describes one of the paper's alignment figures.
type figure struct {
	name, flow, density string
	// grid lists the panels of NAME.png (one row per dataset).
	grid []plot.Panel
	// paper is what the paper reports for it (qualitatively).
	paper []string
}

var (
	fig8 = figure{
		name: "fig8", flow: "affine", density: "gaussian",
		grid: []plot.Panel{plot.PanelScatter, plot.PanelDisplacement, plot.PanelLRMF},
		paper: []string{
			"LRMF decreases to ≈ 0 on both pairs (rightmost column of Figure 8)",
			"the optimal affine LRMF w.r.t. the Gaussian family matches the first two moments of T(A) and B",
			"\"even a severely under-parameterized LRMF does a good job at aligning distributions\"",
		},
	}
	fig9 = figure{
		name: "fig9", flow: "realnvp", density: "realnvp",
		grid: []plot.Panel{plot.PanelDensityA, plot.PanelDensityB, plot.PanelScatter, plot.PanelDensityS, plot.PanelDisplacement, plot.PanelLRMF},
		paper: []string{
			"LRMF decreases over time and reaches ≈ 0 when the sets are aligned (Figure 9c)",
			"Real NVP overfits the blobs but aligns them nevertheless; θS matches θB* at convergence (9e)",
			"on moons the arms are preserved (a point of A lands on B's corresponding arm)",
		},
	}
)

func reproduceFig8(ctx context.Context, o *reproduceOpts, stdout, stderr io.Writer) error {
	return reproduceFigure(ctx, fig8, o, stdout, stderr)
}

func reproduceFig9(ctx context.Context, o *reproduceOpts, stdout, stderr io.Writer) error {
	return reproduceFigure(ctx, fig9, o, stdout, stderr)
}

// figRun is the outcome of one dataset of a figure.
type figRun struct {
	data       string
	res        *lrmf.Result
	arm        float64 // NaN without labels
	dMean, dSd float64 // ‖m_T(A) − m_B‖, ‖S_T(A) − S_B‖_F / ‖S_B‖_F
	panels     []*gplot.Plot
}

// reproduceFigure aligns each pair of figDatasets with f's models and lrmf
// align's default settings, writes the panels, and prints the results next
// to the paper's claims.
func reproduceFigure(ctx context.Context, f figure, o *reproduceOpts, stdout, stderr io.Writer) error {
	var ao alignOpts
	alignFlags(&ao) // lrmf align's defaults
	if o.steps > 0 {
		ao.steps = o.steps
	}
	if o.fitSteps > 0 {
		ao.fitSteps = o.fitSteps
	}
	dtype := lrmf.DefaultDType
	if native.DefaultBackend() == "ref" {
		dtype = native.Float64 // the reference backend's only type
	}
	be, err := native.Open(native.DefaultBackend(), dtype, o.threads)
	if err != nil {
		return err
	}
	defer be.Close()

	var runs []figRun
	var written []string
	for _, name := range figDatasets {
		p, err := data.Builtin(name, o.n, o.seed)
		if err != nil {
			return err
		}
		// The paper's Algorithm 1: one run, fitted and evaluated on all
		// the data (no held-out or validation part), as its figures are.
		cfg := lrmf.Config{
			Backend: be, Flow: ao.spec(f.flow), Density: ao.spec(f.density), Steps: ao.steps, LR: ao.lr,
			FitOptions: ao.fitOptions(min(ao.batch, o.n)), Threshold: ao.threshold, Seed: o.seed,
			Holdout: -1, Validation: -1, Restarts: 1,
		}
		fmt.Fprintf(stderr, "lrmf reproduce %s: %s, %d points per set, flow %s, density %s, %d steps, %s/%s ×%d threads\n",
			f.name, name, o.n, f.flow, f.density, cfg.Steps, be.Name(), be.DType(), be.Threads())
		res, err := lrmf.Align(ctx, p.A, p.B, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r := figRun{data: name, res: res, arm: math.NaN()}
		if p.LabelsA != nil {
			if r.arm, err = lrmf.NeighbourAgreement(res.Transformed, p.LabelsA, p.B, p.LabelsB); err != nil {
				return err
			}
		}
		r.dMean, r.dSd = momentErrors(res.Transformed, p.B)
		if r.panels, err = plot.Build(name, p.A, p.B, res); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for i, pn := range plot.AllPanels {
			h := plot.PanelSize
			if pn == plot.PanelLRMF {
				h = plot.PanelSize * 3 / 4
			}
			paths, err := plot.Save(r.panels[i], plot.PanelSize, h, filepath.Join(o.out, f.name+"-"+name+"-"+string(pn)))
			if err != nil {
				return err
			}
			written = append(written, paths...)
		}
		runs = append(runs, r)
	}
	var grid [][]*gplot.Plot
	for _, r := range runs {
		var row []*gplot.Plot
		for _, pn := range f.grid {
			for i, q := range plot.AllPanels {
				if q == pn {
					row = append(row, r.panels[i])
				}
			}
		}
		grid = append(grid, row)
	}
	paths, err := plot.SaveGrid(grid, 3.5*72, 3.5*72, filepath.Join(o.out, f.name))
	if err != nil {
		return err
	}
	written = append(written, paths...)
	printFigure(stdout, f, o, runs, be)
	fmt.Fprintf(stdout, "wrote %s and %d panel files (%s-DATA-PANEL.png/.svg)\n", strings.Join(paths, ", "), len(written)-len(paths), filepath.Join(o.out, f.name))
	return nil
}

// printFigure prints the measured numbers of each run and the paper's claims.
func printFigure(w io.Writer, f figure, o *reproduceOpts, runs []figRun, be native.Backend) {
	cfg := runs[0].res.Config
	fit := fmt.Sprintf("fit steps %d", cfg.FitSteps)
	if runs[0].res.FitStepsA == 0 && runs[0].res.FitStepsB == 0 {
		fit = "θA*, θB* in closed form"
	}
	fmt.Fprintf(w, "%s: flow %s, density %s; n = %d per set, seed %d, %d joint steps, %s, batch %d, lr %g %s, %s/%s\n",
		f.name, f.flow, f.density, o.n, o.seed, cfg.Steps, fit, cfg.Batch, cfg.LR, cfg.Schedule, be.Name(), be.DType())
	fmt.Fprintf(w, "  %-6s %12s %-14s %10s %14s %9s %8s\n", "data", "LRMF (nats)", "status", "|Δmean|", "‖ΔΣ‖F/‖ΣB‖F", "arm acc", "time")
	for _, r := range runs {
		arm := "-"
		if !math.IsNaN(r.arm) {
			arm = fmt.Sprintf("%.4f", r.arm)
		}
		fmt.Fprintf(w, "  %-6s %12.4g %-14s %10.3g %14.3g %9s %7.1fs\n",
			r.data, r.res.LRMF, r.res.Status, r.dMean, r.dSd, arm, r.res.TotalSeconds)
	}
	fmt.Fprintf(w, "  (LRMF on the full data, success when |LRMF| < %g; |Δmean|, ‖ΔΣ‖: sample moments of T(A) against B;\n", cfg.Threshold)
	fmt.Fprintf(w, "   arm acc: share of T(A) whose nearest neighbour in B lies on the same moon arm)\n")
	fmt.Fprintf(w, "paper (qualitative):\n")
	for _, c := range f.paper {
		fmt.Fprintf(w, "  - %s\n", c)
	}
}

// momentErrors returns ‖m_X − m_Y‖₂ and ‖S_X − S_Y‖_F / ‖S_Y‖_F for the
// sample means m and ML covariances S of the rows of x and y.
func momentErrors(x, y *mat.Dense) (dMean, dCov float64) {
	mx, sx := plot.Moments(x)
	my, sy := plot.Moments(y)
	for i := range mx {
		dMean += (mx[i] - my[i]) * (mx[i] - my[i])
	}
	var d mat.Dense
	d.Sub(sx, sy)
	return math.Sqrt(dMean), mat.Norm(&d, 2) / mat.Norm(sy, 2)
}

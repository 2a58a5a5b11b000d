package plot

import (
	"fmt"
	"image/color"
	"path/filepath"
	"slices"

	"gonum.org/v1/gonum/mat"
	gplot "gonum.org/v1/plot"

	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/model"
)

// Panel names one figure Build can draw from an lrmf.Result; it is also the
// file-name suffix WriteResult uses.
type Panel string

// The panels of a Result.
const (
	// PanelScatter: A, T(A), B and, when the densities are Gaussian, the
	// 3σ ellipses of θA* (blue), of the sample moments of T(A) (cyan), of
	// θB* (red) and of θS (black, dashed), drawn in that order.
	PanelScatter Panel = "scatter"
	// PanelLRMF: the joint phase's mini-batch LRMF per step (LossCurve).
	PanelLRMF Panel = "lrmf"
	// PanelDensityA, PanelDensityB, PanelDensityS: exp ln p of θA* (with A
	// drawn over it), θB* (with B) and θS (with T(A) in cyan and B in red)
	// on a grid over the bounding box of A, T(A) and B.
	PanelDensityA Panel = "density-a"
	PanelDensityB Panel = "density-b"
	PanelDensityS Panel = "density-s"
	// PanelDisplacement: arrows along x − T(x) on a grid over the bounding
	// box of A, T(A) and B, over faint points of A.
	PanelDisplacement Panel = "displacement"
)

// AllPanels lists every Panel in the order Build draws them by default.
var AllPanels = []Panel{PanelScatter, PanelLRMF, PanelDensityA, PanelDensityB, PanelDensityS, PanelDisplacement}

// Grid sizes Build uses.
const (
	DensityGrid = 120 // points per side of a density heat map
	ArrowGrid   = 21  // points per side of the displacement field
)

// Build draws the requested panels (AllPanels if none) of the alignment
// res of a (nA×2) to b (nB×2), in the order asked, each titled
// "title: what it shows" (just "what it shows" when title is empty).
// res must come from lrmf.Align(ctx, a, b, cfg) with cfg.Backend set
// (the density and displacement panels evaluate the trained models on it)
// and must have finished (res.Transformed set). It returns an error
// wrapping ErrNot2D when the data are not 2-D.
func Build(title string, a, b *mat.Dense, res *lrmf.Result, panels ...Panel) ([]*gplot.Plot, error) {
	if len(panels) == 0 {
		panels = AllPanels
	}
	if err := check2D("A", a); err != nil {
		return nil, err
	}
	if err := check2D("B", b); err != nil {
		return nil, err
	}
	if res == nil || res.Transformed == nil {
		return nil, fmt.Errorf("plot: Build: the result has no T(A) (did Align finish?)")
	}
	ta := res.Transformed
	if ra, _ := a.Dims(); ta.RawMatrix().Rows != ra {
		return nil, fmt.Errorf("plot: Build: T(A) has %d rows, A has %d (is res the alignment of a to b?)", ta.RawMatrix().Rows, ra)
	}
	if err := check2D("T(A)", ta); err != nil {
		return nil, err
	}
	var grid *Grid // built on first use
	gridFor := func(n int) (Grid, error) {
		if grid != nil && grid.NX == n {
			return *grid, nil
		}
		g, err := BoundingGrid(n, 0.05, a, ta, b)
		grid = &g
		return g, err
	}
	name := func(s string) string {
		if title == "" {
			return s
		}
		return title + ": " + s
	}
	var out []*gplot.Plot
	for _, pn := range panels {
		var (
			p   *gplot.Plot
			err error
		)
		switch pn {
		case PanelScatter:
			ells, e := gaussianEllipses(res, ta)
			if e != nil {
				return nil, e
			}
			if p, err = Scatter(a, ta, b, ells); err == nil {
				p.Title.Text = name("A (blue), T(A) (cyan), B (red)")
			}
		case PanelLRMF:
			if p, err = LossCurve(res.History, res.LRMF); err == nil {
				p.Title.Text = name(fmt.Sprintf("LRMF over %d steps", res.Steps))
			}
		case PanelDensityA, PanelDensityB, PanelDensityS:
			p, err = densityPanel(res, pn, a, ta, b, gridFor)
			if err == nil {
				p.Title.Text = name(p.Title.Text)
			}
		case PanelDisplacement:
			var g Grid
			if g, err = gridFor(ArrowGrid); err != nil {
				return nil, err
			}
			be, e := res.ModelBackend()
			if e != nil {
				return nil, e
			}
			tx, e := lrmf.EvalFlow(be, res.Flow, g.Points())
			if e != nil {
				return nil, e
			}
			if p, err = Displacement(g, tx, a, ColorA); err == nil {
				p.Title.Text = name(p.Title.Text)
			}
		default:
			return nil, fmt.Errorf("plot: unknown panel %q (available: %v)", pn, AllPanels)
		}
		if err != nil {
			return nil, fmt.Errorf("plot: panel %s: %w", pn, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func densityPanel(res *lrmf.Result, pn Panel, a, ta, b *mat.Dense, gridFor func(int) (Grid, error)) (*gplot.Plot, error) {
	g, err := gridFor(DensityGrid)
	if err != nil {
		return nil, err
	}
	be, err := res.ModelBackend()
	if err != nil {
		return nil, err
	}
	d, pts, c, what := res.DensityA, a, color.Color(ColorA), "θA* fitted to A"
	switch pn {
	case PanelDensityB:
		d, pts, c, what = res.DensityB, b, ColorB, "θB* fitted to B"
	case PanelDensityS:
		d, pts, c, what = res.Density, ta, ColorTA, "θS fitted to T(A) and B"
	}
	if d == nil {
		return nil, fmt.Errorf("the result holds no density for %s", pn)
	}
	lp, err := lrmf.EvalLogProb(be, d, g.Points())
	if err != nil {
		return nil, err
	}
	p, err := Density(g, lp, pts, c)
	if err != nil {
		return nil, err
	}
	if pn == PanelDensityS {
		d, err := faintDots(b, ColorB)
		if err != nil {
			return nil, err
		}
		p.Add(d)
	}
	p.Title.Text = what
	return p, nil
}

// gaussianEllipses returns the 3σ ellipses of θA*, θB*, θS and of the
// sample moments of T(A) when res's densities are Gaussian, else nil.
func gaussianEllipses(res *lrmf.Result, ta *mat.Dense) ([]Ellipse, error) {
	ga, okA := res.DensityA.(*model.Gaussian)
	gb, okB := res.DensityB.(*model.Gaussian)
	gs, okS := res.Density.(*model.Gaussian)
	if !okA || !okB || !okS {
		return nil, nil
	}
	var ells []Ellipse
	for _, m := range []struct {
		g      *model.Gaussian
		label  string
		c      color.Color
		dashed bool
	}{{ga, "3σ θA*", ColorA, false}, {gb, "3σ θB*", ColorB, false}, {gs, "3σ θS (dashed)", colorS, true}} {
		mean, cov, err := m.g.Moments()
		if err != nil {
			return nil, err
		}
		ells = append(ells, Ellipse{Label: m.label, Mean: mean, Cov: cov, Color: m.c, Dashed: m.dashed})
	}
	mean, cov := Moments(ta)
	// T(A)'s before θB* and θS: at convergence the three coincide, and
	// each is drawn over the one before.
	ells = slices.Insert(ells, 1, Ellipse{Label: "3σ of T(A)", Mean: mean, Cov: cov, Color: ColorTA})
	return ells, nil
}

// Moments returns the sample mean (length D) and the maximum-likelihood
// covariance (1/n) Σ (x_i − m)(x_i − m)ᵀ (D×D) of the rows of the n×D x
// (n ≥ 1).
func Moments(x *mat.Dense) (mean []float64, cov *mat.SymDense) {
	n, d := x.Dims()
	mean = make([]float64, d)
	for j := range mean {
		mean[j] = mat.Sum(x.ColView(j)) / float64(n)
	}
	cov = mat.NewSymDense(d, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			for k := j; k < d; k++ {
				cov.SetSym(j, k, cov.At(j, k)+(x.At(i, j)-mean[j])*(x.At(i, k)-mean[k]))
			}
		}
	}
	cov.ScaleSym(1/float64(n), cov)
	return mean, cov
}

// WriteResult draws the panels of res (see Build; AllPanels if none) and
// writes each, PanelSize square (the LRMF curve PanelSize wide and 3/4 as
// high), to dir/prefix+PANEL.png and .svg atomically, e.g. with prefix
// "fig8-moons-": fig8-moons-scatter.png. It returns the paths written.
func WriteResult(dir, prefix, title string, a, b *mat.Dense, res *lrmf.Result, panels ...Panel) ([]string, error) {
	if len(panels) == 0 {
		panels = AllPanels
	}
	ps, err := Build(title, a, b, res, panels...)
	if err != nil {
		return nil, err
	}
	var paths []string
	for i, p := range ps {
		h := PanelSize
		if panels[i] == PanelLRMF {
			h = PanelSize * 3 / 4
		}
		got, err := Save(p, PanelSize, h, filepath.Join(dir, prefix+string(panels[i])))
		if err != nil {
			return paths, err
		}
		paths = append(paths, got...)
	}
	return paths, nil
}

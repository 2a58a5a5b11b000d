package plot

import (
	"fmt"
	"image/color"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Colours of the regression panel.
var (
	colOut  = color.NRGBA{R: 160, G: 160, B: 160, A: 255} // points outside the fit range
	colFit  = color.NRGBA{R: 31, G: 90, B: 200, A: 255}   // points inside it
	colLine = color.NRGBA{R: 215, G: 35, B: 35, A: 255}   // the measured line
	colRef  = color.NRGBA{R: 30, G: 30, B: 30, A: 255}    // the paper's line
)

// Regression draws the points (x_i, y_i) (grey; blue for i in [lo, hi), the
// range the line was fitted over), the fitted line y = a·x + b over that
// range (red, with a, b and r in the legend) and, when ref is set, the
// reference line y = ref[0]·x + ref[1] over the whole x range (dashed
// black). Non-finite points are left out. x and y have the same length n,
// 0 ≤ lo < hi ≤ n.
func Regression(title, xlabel, ylabel string, x, y []float64, lo, hi int, a, b, r float64, ref *[2]float64) (*gplot.Plot, error) {
	n := len(x)
	if len(y) != n || n == 0 {
		return nil, fmt.Errorf("plot: Regression: %d x values and %d y values", n, len(y))
	}
	if lo < 0 || hi > n || lo >= hi {
		return nil, fmt.Errorf("plot: Regression: fit range [%d, %d) outside [0, %d)", lo, hi, n)
	}
	if !finite(a) || !finite(b) {
		return nil, fmt.Errorf("plot: Regression: line a = %v, b = %v", a, b)
	}
	var in, out plotter.XYs
	for i := range x {
		if !finite(x[i]) || !finite(y[i]) {
			continue
		}
		p := plotter.XY{X: x[i], Y: y[i]}
		if i >= lo && i < hi {
			in = append(in, p)
		} else {
			out = append(out, p)
		}
	}
	if len(in) < 2 {
		return nil, fmt.Errorf("plot: Regression: fewer than 2 finite points in the fit range")
	}
	p := gplot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	if len(out) > 0 {
		s, err := plotter.NewScatter(out)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle.Color, s.GlyphStyle.Radius, s.GlyphStyle.Shape = colOut, vg.Points(2), draw.CircleGlyph{}
		p.Add(s)
		p.Legend.Add("outside the fit range", s)
	}
	s, err := plotter.NewScatter(in)
	if err != nil {
		return nil, err
	}
	s.GlyphStyle.Color, s.GlyphStyle.Radius, s.GlyphStyle.Shape = colFit, vg.Points(2), draw.CircleGlyph{}
	p.Add(s)
	p.Legend.Add(fmt.Sprintf("fit range (%d points)", len(in)), s)
	fit, err := plotter.NewLine(plotter.XYs{{X: x[lo], Y: a*x[lo] + b}, {X: x[hi-1], Y: a*x[hi-1] + b}})
	if err != nil {
		return nil, err
	}
	fit.Color, fit.Width = colLine, vg.Points(1.5)
	p.Add(fit)
	p.Legend.Add(fmt.Sprintf("measured: %.4f·x %+.4f, r = %.6f", a, b, r), fit)
	if ref != nil {
		x0, x1 := x[0], x[n-1]
		l, err := plotter.NewLine(plotter.XYs{{X: x0, Y: ref[0]*x0 + ref[1]}, {X: x1, Y: ref[0]*x1 + ref[1]}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Dashes = colRef, []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("paper: %.4g·x %+.4g", ref[0], ref[1]), l)
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

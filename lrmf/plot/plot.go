// Package plot draws the figures of an LRMF alignment of 2-D data (the
// panels of Figures 8 and 9 of the paper) with gonum.org/v1/plot:
//
//   - Scatter: A (blue), T(A) (cyan) and B (red), with 3σ ellipses of
//     Gaussian models;
//   - LossCurve: the mini-batch LRMF over the joint steps, with a red zero
//     line;
//   - Density: a heat map of a fitted density exp(ln p) on a grid;
//   - Displacement: arrows along v = x − T(x) at grid points.
//
// Build assembles them from an lrmf.Result; Save writes one panel and
// SaveGrid several side by side, each as PNG and SVG, atomically.
//
// All point sets are *mat.Dense with one point per row and 2 columns.
package plot

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"

	"gonum.org/v1/gonum/mat"
	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/lrmf-go/lrmf/internal/atomicfile"
)

// DPI is the resolution of the PNG files: a panel w×h long is
// w·DPI/inch × h·DPI/inch pixels.
const DPI = 96

// PanelSize is the side of the square panels Build makes, and the size
// callers are expected to pass to Save for them (5 in: 480×480 pixels).
const PanelSize = 5 * vg.Inch

// Colours of the three point sets, as in the paper's figures.
var (
	ColorA  = color.NRGBA{R: 31, G: 90, B: 200, A: 255}   // A: blue
	ColorTA = color.NRGBA{R: 0, G: 200, B: 215, A: 255}   // T(A): cyan
	ColorB  = color.NRGBA{R: 215, G: 35, B: 35, A: 255}   // B: red
	colorS  = color.NRGBA{R: 30, G: 30, B: 30, A: 255}    // θS ellipse
	colZero = color.NRGBA{R: 220, G: 0, B: 0, A: 255}     // zero line
	colRaw  = color.NRGBA{R: 150, G: 170, B: 200, A: 255} // raw loss
)

// ErrNot2D is returned (wrapped) when a point set does not have 2 columns.
var ErrNot2D = errors.New("plot: the data must have 2 columns")

// check2D validates a point set that must be non-empty, n×2 and finite.
func check2D(name string, x *mat.Dense) error {
	if x == nil || x.IsEmpty() {
		return fmt.Errorf("plot: %s is empty", name)
	}
	n, d := x.Dims()
	if d != 2 {
		return fmt.Errorf("%w: %s is %d×%d", ErrNot2D, name, n, d)
	}
	for i := 0; i < n; i++ {
		if !finite(x.At(i, 0)) || !finite(x.At(i, 1)) {
			return fmt.Errorf("plot: %s: row %d is not finite (%v, %v)", name, i, x.At(i, 0), x.At(i, 1))
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Save writes p, w×h long, to base+".png" (at DPI) and base+".svg", each
// atomically (a temporary file in the same directory renamed over the
// target), and returns the two paths. The directory must exist.
func Save(p *gplot.Plot, w, h vg.Length, base string) ([]string, error) {
	if p == nil {
		return nil, fmt.Errorf("plot: Save: nil plot")
	}
	return writeBoth(base, w, h, func(c draw.Canvas) { p.Draw(c) })
}

// SaveGrid writes the plots of rows as one image of len(rows) rows and
// max len(row) columns, each tile w×h long, to base+".png" and base+".svg"
// (atomically), and returns the two paths. A nil plot leaves its tile
// blank; the axes of a column and of a row are aligned.
func SaveGrid(rows [][]*gplot.Plot, w, h vg.Length, base string) ([]string, error) {
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	if cols == 0 {
		return nil, fmt.Errorf("plot: SaveGrid: no plots")
	}
	grid := make([][]*gplot.Plot, len(rows))
	for i, r := range rows {
		grid[i] = make([]*gplot.Plot, cols)
		copy(grid[i], r)
	}
	tiles := draw.Tiles{Rows: len(rows), Cols: cols, PadX: vg.Millimeter, PadY: vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	W, H := w*vg.Length(cols), h*vg.Length(len(rows))
	return writeBoth(base, W, H, func(c draw.Canvas) {
		canvases := gplot.Align(grid, tiles, c)
		for i := range grid {
			for j, p := range grid[i] {
				if p != nil {
					p.Draw(canvases[i][j])
				}
			}
		}
	})
}

// writeBoth renders drawFn on a PNG and an SVG canvas of w×h and writes
// them atomically to base.png and base.svg.
func writeBoth(base string, w, h vg.Length, drawFn func(draw.Canvas)) ([]string, error) {
	if !(w > 0 && h > 0) {
		return nil, fmt.Errorf("plot: size %v×%v: want positive lengths", w, h)
	}
	if base == "" || filepath.Base(base) == "." || filepath.Base(base) == string(filepath.Separator) {
		return nil, fmt.Errorf("plot: empty file name %q", base)
	}
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(DPI))
	drawFn(draw.New(img))
	svg := vgsvg.New(w, h)
	drawFn(draw.New(svg))
	png, svgPath := base+".png", base+".svg"
	for _, f := range []struct {
		path string
		wt   io.WriterTo
	}{{png, vgimg.PngCanvas{Canvas: img}}, {svgPath, svg}} {
		err := atomicfile.Write(f.path, 0o644, func(w io.Writer) error {
			_, err := f.wt.WriteTo(w)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return []string{png, svgPath}, nil
}

// squareRange sets both axes of p to ranges of equal length covering
// [x0, x1]×[y0, y1], so that a square panel shows the data without
// distortion (up to the axes' label widths).
func squareRange(p *gplot.Plot, x0, x1, y0, y1 float64) {
	cx, cy := (x0+x1)/2, (y0+y1)/2
	half := max(x1-x0, y1-y0) / 2
	if !(half > 0) {
		half = 1
	}
	p.X.Min, p.X.Max = cx-half, cx+half
	p.Y.Min, p.Y.Max = cy-half, cy+half
}

// newPlot returns a plot titled title with x/y axis labels.
func newPlot(title, xl, yl string) *gplot.Plot {
	p := gplot.New()
	p.Title.Text = title
	p.X.Label.Text = xl
	p.Y.Label.Text = yl
	return p
}

package plot

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/gonum/mat"
	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// DigitColors are the colours of the digit classes 0–9 in DigitScatter
// (the ten-colour "tab10" palette of matplotlib, which stays distinct for
// common colour-vision deficiencies better than a hue wheel does).
var DigitColors = [10]color.NRGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255},
	{140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255},
}

// DigitScatter returns a panel titled title with the rows of the n×2 xy as
// dots coloured by their digit labels[i] ∈ {0, …, 9} (DigitColors), and a
// legend of the digits at the top right. The axes span equal lengths
// around the points (squareRange), so that a square panel is undistorted;
// SameRange gives several panels one range. It is an error if xy is not
// n×2 and finite or len(labels) ≠ n or a label is not a digit.
func DigitScatter(title string, xy *mat.Dense, labels []int) (*gplot.Plot, error) {
	if err := check2D(title, xy); err != nil {
		return nil, err
	}
	n, _ := xy.Dims()
	if len(labels) != n {
		return nil, fmt.Errorf("plot: DigitScatter: %d labels for %d points", len(labels), n)
	}
	var pts [10]plotter.XYs
	for i, l := range labels {
		if l < 0 || l > 9 {
			return nil, fmt.Errorf("plot: DigitScatter: label %d of point %d is not a digit 0-9", l, i)
		}
		pts[l] = append(pts[l], plotter.XY{X: xy.At(i, 0), Y: xy.At(i, 1)})
	}
	p := newPlot(title, "axis 1", "axis 2")
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = 8
	p.Legend.ThumbnailWidth = 6
	for d, xy := range pts {
		if len(xy) == 0 {
			continue
		}
		s, err := plotter.NewScatter(xy)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle = draw.GlyphStyle{Color: withAlpha(DigitColors[d], 170), Radius: 1.4, Shape: draw.CircleGlyph{}}
		p.Add(s)
		p.Legend.Add(strconv.Itoa(d), s)
	}
	x0, x1, y0, y1 := bounds(xy)
	pad := 0.04 * max(x1-x0, y1-y0)
	squareRange(p, x0-pad, x1+pad, y0-pad, y1+pad)
	return p, nil
}

// SameRange sets every plot's axes to one square range covering all of
// theirs, so panels drawn side by side share a scale.
func SameRange(ps ...*gplot.Plot) {
	x0, x1, y0, y1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, p := range ps {
		x0, x1 = min(x0, p.X.Min), max(x1, p.X.Max)
		y0, y1 = min(y0, p.Y.Min), max(y1, p.Y.Max)
	}
	for _, p := range ps {
		squareRange(p, x0, x1, y0, y1)
	}
}

// DigitImages returns a panel titled title showing the rows of the
// n×side² imgs as side×side grey-level images (row-major, 0 black
// background, 1 white ink, values clamped to [0, 1]) in a grid of cols
// columns and ⌈n/cols⌉ rows, filled row by row, with a one-pixel grey
// border between tiles. The axes are hidden. It is an error if imgs is
// empty, its columns are not side², cols < 1, or a value is NaN.
func DigitImages(title string, imgs *mat.Dense, side, cols int) (*gplot.Plot, error) {
	if imgs == nil || imgs.IsEmpty() {
		return nil, fmt.Errorf("plot: DigitImages: no images")
	}
	n, p := imgs.Dims()
	switch {
	case side < 1 || p != side*side:
		return nil, fmt.Errorf("plot: DigitImages: images of %d pixels, want side² = %d", p, side*side)
	case cols < 1:
		return nil, fmt.Errorf("plot: DigitImages: %d columns, want at least 1", cols)
	}
	rows := (n + cols - 1) / cols
	const gap = 1
	w, h := cols*(side+gap)+gap, rows*(side+gap)+gap
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 96 // the border
	}
	for k := range n {
		r0, c0 := gap+(k/cols)*(side+gap), gap+(k%cols)*(side+gap)
		for y := range side {
			for x, v := range imgs.RawRowView(k)[y*side : (y+1)*side] {
				if math.IsNaN(v) {
					return nil, fmt.Errorf("plot: DigitImages: image %d, pixel %d is NaN", k, y*side+x)
				}
				img.SetGray(c0+x, r0+y, color.Gray{Y: uint8(math.Round(255 * min(max(v, 0), 1)))})
			}
		}
	}
	pl := gplot.New()
	pl.Title.Text = title
	pl.HideAxes()
	pl.Add(plotter.NewImage(img, 0, 0, float64(w), float64(h)))
	pl.X.Min, pl.X.Max, pl.Y.Min, pl.Y.Max = 0, float64(w), 0, float64(h)
	return pl, nil
}

// DigitImagesSize returns the panel size at which DigitImages of n images
// of side pixels in cols columns shows each image pixel as scale PNG
// pixels, plus room for the title.
func DigitImagesSize(n, side, cols int, scale float64) (w, h vg.Length) {
	rows := (n + cols - 1) / cols
	px := vg.Inch / DPI * vg.Length(scale)
	return px * vg.Length(cols*(side+1)+1), px*vg.Length(rows*(side+1)+1) + 0.4*vg.Inch
}

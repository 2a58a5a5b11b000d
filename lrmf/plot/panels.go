package plot

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/lrmf-go/lrmf/lrmf"
)

// Ellipse is the 3σ contour {x : (x − μ)ᵀ Σ⁻¹ (x − μ) = 9} of a 2-D
// Gaussian N(Mean, Cov), drawn by Scatter in Color (dashed if Dashed) and
// listed in the legend as Label.
type Ellipse struct {
	Label  string
	Mean   []float64     // μ, length 2
	Cov    mat.Symmetric // Σ, 2×2 positive definite
	Color  color.Color
	Dashed bool
}

// points returns n+1 points of the 3σ contour, the last equal to the first:
// μ + 3 L (cos t, sin t) with Σ = L Lᵀ.
func (e Ellipse) points(n int) (plotter.XYs, error) {
	if len(e.Mean) != 2 || e.Cov == nil || e.Cov.SymmetricDim() != 2 {
		return nil, fmt.Errorf("plot: ellipse %q: want a mean of length 2 and a 2×2 covariance", e.Label)
	}
	var ch mat.Cholesky
	if !ch.Factorize(e.Cov) {
		return nil, fmt.Errorf("plot: ellipse %q: the covariance is not positive definite", e.Label)
	}
	var l mat.TriDense
	ch.LTo(&l)
	xy := make(plotter.XYs, n+1)
	for i := range xy {
		s, c := math.Sincos(2 * math.Pi * float64(i%n) / float64(n))
		xy[i].X = e.Mean[0] + 3*(l.At(0, 0)*c)
		xy[i].Y = e.Mean[1] + 3*(l.At(1, 0)*c+l.At(1, 1)*s)
	}
	return xy, nil
}

// xys adapts the rows of an n×2 matrix to plotter.XYer.
type xys struct{ m *mat.Dense }

func (p xys) Len() int                { r, _ := p.m.Dims(); return r }
func (p xys) XY(i int) (x, y float64) { return p.m.At(i, 0), p.m.At(i, 1) }

// withAlpha returns c with alpha a (0–255), not premultiplied.
func withAlpha(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: a}
}

// dots returns a scatter of the rows of x as small filled circles.
func dots(x *mat.Dense, c color.Color, radius vg.Length) (*plotter.Scatter, error) {
	s, err := plotter.NewScatter(xys{x})
	if err != nil {
		return nil, err
	}
	s.GlyphStyle = draw.GlyphStyle{Color: c, Radius: radius, Shape: draw.CircleGlyph{}}
	return s, nil
}

// faintDots returns a scatter of at most 400 evenly spaced rows of x as
// faint small dots, to show where data lie over a heat map.
func faintDots(x *mat.Dense, c color.Color) (*plotter.Scatter, error) {
	n, _ := x.Dims()
	k := (n + 399) / 400
	sub := mat.NewDense((n+k-1)/k, 2, nil)
	for i := 0; i < n; i += k {
		sub.SetRow(i/k, x.RawRowView(i)[:2])
	}
	return dots(sub, withAlpha(c, 150), 0.7)
}

// bounds returns the bounding box of the rows of the given n×2 sets (nil
// sets are skipped).
func bounds(sets ...*mat.Dense) (x0, x1, y0, y1 float64) {
	x0, y0 = math.Inf(1), math.Inf(1)
	x1, y1 = math.Inf(-1), math.Inf(-1)
	for _, s := range sets {
		if s == nil {
			continue
		}
		n, _ := s.Dims()
		for i := 0; i < n; i++ {
			x, y := s.At(i, 0), s.At(i, 1)
			x0, x1 = min(x0, x), max(x1, x)
			y0, y1 = min(y0, y), max(y1, y)
		}
	}
	return x0, x1, y0, y1
}

// Scatter returns a panel with the points of a (nA×2, blue), b (nB×2,
// red) and ta = T(A) (nA×2, cyan, drawn last; nil to omit), and the 3σ
// contours of ells in their order, with a legend of the ellipses at the
// top left (the title names the point colours). The axes span equal
// lengths around the points and ellipses, with room above them for the
// legend, so that a square panel is undistorted.
func Scatter(a, ta, b *mat.Dense, ells []Ellipse) (*gplot.Plot, error) {
	if err := check2D("A", a); err != nil {
		return nil, err
	}
	if err := check2D("B", b); err != nil {
		return nil, err
	}
	if ta != nil {
		if err := check2D("T(A)", ta); err != nil {
			return nil, err
		}
	}
	p := newPlot("A (blue), T(A) (cyan), B (red)", "x₀", "x₁")
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = 9
	type set struct {
		x *mat.Dense
		c color.Color
	}
	for _, s := range []set{{a, ColorA}, {b, ColorB}, {ta, ColorTA}} {
		if s.x == nil {
			continue
		}
		sc, err := dots(s.x, withAlpha(s.c, 140), 1.3)
		if err != nil {
			return nil, err
		}
		p.Add(sc)
	}
	x0, x1, y0, y1 := bounds(a, ta, b)
	for _, e := range ells {
		pts, err := e.points(200)
		if err != nil {
			return nil, err
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.LineStyle = draw.LineStyle{Color: e.Color, Width: 1.8}
		if e.Dashed {
			l.LineStyle.Dashes = []vg.Length{5, 3}
		}
		p.Add(l)
		p.Legend.Add(e.Label, l)
		for _, q := range pts {
			x0, x1 = min(x0, q.X), max(x1, q.X)
			y0, y1 = min(y0, q.Y), max(y1, q.Y)
		}
	}
	pad := 0.04 * max(x1-x0, y1-y0)
	// Room above the points for the legend (one line per ellipse).
	top := 0.07 * float64(len(ells)) * max(x1-x0, y1-y0)
	squareRange(p, x0-pad, x1+pad, y0-pad, y1+pad+top)
	return p, nil
}

// LossCurve returns a panel of the training history: the mini-batch LRMF
// of every joint step (light, thinned to at most 2000 points), its running
// median over the len(hist)/50 steps up to each (blue; a median, so that a
// single outlying batch does not show as a plateau), a red line at zero, and
// final, the LRMF on the full data after training, as a black dot at the
// last step (NaN: omitted). The y range covers the 99th percentile of the
// losses (and 0 and final); larger early values are cut off, which the axis
// label says.
func LossCurve(hist []lrmf.Point, final float64) (*gplot.Plot, error) {
	if len(hist) == 0 {
		return nil, fmt.Errorf("plot: LossCurve: empty history")
	}
	n := len(hist)
	raw := make(plotter.XYs, 0, min(n, 2000))
	stride := (n + 1999) / 2000
	losses := make([]float64, 0, n)
	for i, h := range hist {
		if !finite(h.Loss) {
			return nil, fmt.Errorf("plot: LossCurve: step %d has loss %v", h.Step, h.Loss)
		}
		losses = append(losses, h.Loss)
		if i%stride == 0 || i == n-1 {
			raw = append(raw, plotter.XY{X: float64(h.Step), Y: h.Loss})
		}
	}
	win := max(1, n/50)
	median := make(plotter.XYs, 0, len(raw))
	buf := make([]float64, win)
	for i := win - 1; i < n; i++ {
		if (i-win+1)%stride == 0 || i == n-1 {
			copy(buf, losses[i-win+1:i+1])
			slices.Sort(buf)
			m := buf[win/2]
			if win%2 == 0 {
				m = (buf[win/2-1] + buf[win/2]) / 2
			}
			median = append(median, plotter.XY{X: float64(hist[i].Step), Y: m})
		}
	}
	sorted := slices.Clone(losses)
	slices.Sort(sorted)
	hi := sorted[min(n-1, int(0.99*float64(n)))]
	lo := min(0, sorted[0])
	if finite(final) {
		hi, lo = max(hi, final), min(lo, final)
	}
	hi = max(hi, 0)
	span := hi - lo
	if !(span > 0) {
		span = 1
	}
	p := newPlot("LRMF during training", "joint step", "LRMF (nats)")
	if sorted[n-1] > hi+0.05*span {
		p.Y.Label.Text = fmt.Sprintf("LRMF (nats; cut at %.3g, max %.3g)", hi+0.05*span, sorted[n-1])
	}
	x0, x1 := float64(hist[0].Step), float64(hist[n-1].Step)
	if x1 == x0 {
		x0, x1 = x0-1, x1+1
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = 10
	rl, err := plotter.NewLine(raw)
	if err != nil {
		return nil, err
	}
	rl.LineStyle = draw.LineStyle{Color: colRaw, Width: 0.6}
	p.Add(rl)
	p.Legend.Add("mini-batch", rl)
	if win > 1 && len(median) > 1 {
		ml, err := plotter.NewLine(median)
		if err != nil {
			return nil, err
		}
		ml.LineStyle = draw.LineStyle{Color: ColorA, Width: 1.8}
		p.Add(ml)
		p.Legend.Add(fmt.Sprintf("median of %d steps", win), ml)
	}
	zero, err := plotter.NewLine(plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}})
	if err != nil {
		return nil, err
	}
	zero.LineStyle = draw.LineStyle{Color: colZero, Width: 1.2}
	p.Add(zero)
	if finite(final) {
		f, err := plotter.NewScatter(plotter.XYs{{X: float64(hist[n-1].Step), Y: final}})
		if err != nil {
			return nil, err
		}
		f.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: 3.5, Shape: draw.CircleGlyph{}}
		p.Add(f)
		p.Legend.Add(fmt.Sprintf("full data: %.3g", final), f)
	}
	// After Add, which widens the axes to the data.
	p.X.Min, p.X.Max = x0, x1
	p.Y.Min, p.Y.Max = lo-0.05*span, hi+0.05*span
	return p, nil
}

// Grid is the regular NX×NY lattice x_i = X0 + i·(X1−X0)/(NX−1),
// y_j = Y0 + j·(Y1−Y0)/(NY−1) over the rectangle [X0, X1]×[Y0, Y1].
type Grid struct {
	X0, X1, Y0, Y1 float64
	NX, NY         int
}

// BoundingGrid returns an n×n Grid over the square that covers the rows of
// the given n×2 sets (nil sets skipped) with a margin of pad times its
// side on every edge.
func BoundingGrid(n int, pad float64, sets ...*mat.Dense) (Grid, error) {
	if n < 2 {
		return Grid{}, fmt.Errorf("plot: BoundingGrid: n = %d, want at least 2", n)
	}
	for i, s := range sets {
		if s != nil {
			if err := check2D(fmt.Sprintf("set %d", i), s); err != nil {
				return Grid{}, err
			}
		}
	}
	x0, x1, y0, y1 := bounds(sets...)
	if !finite(x0) {
		return Grid{}, fmt.Errorf("plot: BoundingGrid: no points")
	}
	cx, cy := (x0+x1)/2, (y0+y1)/2
	half := max(x1-x0, y1-y0) / 2
	if !(half > 0) {
		half = 1
	}
	half *= 1 + 2*pad
	return Grid{X0: cx - half, X1: cx + half, Y0: cy - half, Y1: cy + half, NX: n, NY: n}, nil
}

func (g Grid) check() error {
	if g.NX < 2 || g.NY < 2 || !(g.X1 > g.X0) || !(g.Y1 > g.Y0) || !finite(g.X1-g.X0) || !finite(g.Y1-g.Y0) {
		return fmt.Errorf("plot: bad grid %+v: want NX, NY ≥ 2 and finite X0 < X1, Y0 < Y1", g)
	}
	return nil
}

// X returns x_i.
func (g Grid) X(i int) float64 { return g.X0 + float64(i)*(g.X1-g.X0)/float64(g.NX-1) }

// Y returns y_j.
func (g Grid) Y(j int) float64 { return g.Y0 + float64(j)*(g.Y1-g.Y0)/float64(g.NY-1) }

// Points returns the grid as an (NX·NY)×2 matrix whose row j·NX + i is
// (x_i, y_j).
func (g Grid) Points() *mat.Dense {
	m := mat.NewDense(g.NX*g.NY, 2, nil)
	for j := 0; j < g.NY; j++ {
		for i := 0; i < g.NX; i++ {
			m.Set(j*g.NX+i, 0, g.X(i))
			m.Set(j*g.NX+i, 1, g.Y(j))
		}
	}
	return m
}

// gridZ adapts values on a Grid to plotter.GridXYZ.
type gridZ struct {
	g Grid
	z []float64 // row j·NX + i
}

func (z gridZ) Dims() (c, r int)   { return z.g.NX, z.g.NY }
func (z gridZ) Z(c, r int) float64 { return z.z[r*z.g.NX+c] }
func (z gridZ) X(c int) float64    { return z.g.X(c) }
func (z gridZ) Y(r int) float64    { return z.g.Y(r) }
func (z gridZ) Min() (m float64)   { return slices.Min(z.z) }
func (z gridZ) Max() (m float64)   { return slices.Max(z.z) }
func densityPalette() palette.Palette {
	return palette.Reverse(moreland.BlackBody()).Palette(256)
}

// Density returns a heat map of exp(logp) on g (logp has NX·NY values,
// logp[j·NX + i] at (x_i, y_j), e.g. from lrmf.EvalLogProb on g.Points();
// −∞ is zero density): white where the density is 0, through yellow and
// red, to black from its 99.5th percentile over the grid up (so that the
// sharp peaks of an overfitted density do not wash out the rest). At most
// 400 evenly spaced rows of pts (n×2; nil to omit) are drawn over it as
// faint dots in colour c.
func Density(g Grid, logp []float64, pts *mat.Dense, c color.Color) (*gplot.Plot, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	if len(logp) != g.NX*g.NY {
		return nil, fmt.Errorf("plot: Density: %d values for a %d×%d grid", len(logp), g.NX, g.NY)
	}
	if pts != nil {
		if err := check2D("points", pts); err != nil {
			return nil, err
		}
	}
	z := make([]float64, len(logp))
	for i, v := range logp {
		if math.IsNaN(v) || math.IsInf(v, 1) {
			return nil, fmt.Errorf("plot: Density: ln p = %v at grid point %d", v, i)
		}
		z[i] = math.Exp(v)
	}
	gz := gridZ{g, z}
	pal := densityPalette()
	hm := plotter.NewHeatMap(gz, pal)
	hm.Rasterized = true
	hm.Min = 0
	sorted := slices.Clone(z)
	slices.Sort(sorted)
	hm.Max = sorted[len(sorted)*995/1000]
	if !(hm.Max > 0) {
		hm.Max = 1
	}
	hm.Overflow = pal.Colors()[len(pal.Colors())-1]
	p := newPlot("density", "x₀", "x₁")
	p.Add(hm)
	if pts != nil {
		d, err := faintDots(pts, c)
		if err != nil {
			return nil, err
		}
		p.Add(d)
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = g.X0, g.X1, g.Y0, g.Y1
	return p, nil
}

// arrows draws an arrow from each point P_k along s·V_k, shortened to
// maxLen (data units) if longer, coloured from light to dark by
// min(1, |V_k|/vdark).
type arrows struct {
	p, v   []plotter.XY
	scale  float64
	maxLen float64
	vdark  float64
}

// Plot implements gplot.Plotter.
func (a *arrows) Plot(c draw.Canvas, plt *gplot.Plot) {
	trX, trY := plt.Transforms(&c)
	for k, p := range a.p {
		v := a.v[k]
		m := math.Hypot(v.X, v.Y)
		if m == 0 || a.vdark == 0 {
			continue
		}
		t := min(1, m/a.vdark)
		col := color.NRGBA{R: uint8(200 * (1 - t)), G: uint8(215 * (1 - t)), B: uint8(255 - 140*t), A: 255}
		s := a.scale
		if s*m > a.maxLen {
			s = a.maxLen / m
		}
		x0, y0 := trX(p.X), trY(p.Y)
		x1, y1 := trX(p.X+s*v.X), trY(p.Y+s*v.Y)
		if !c.Contains(vg.Point{X: x0, Y: y0}) {
			continue
		}
		sty := draw.LineStyle{Color: col, Width: 0.6 + 0.9*vg.Length(t)}
		c.StrokeLine2(sty, x0, y0, x1, y1)
		// Head: two strokes 25° off the shaft, a third of its length
		// (at most 5 pt) long, drawn in canvas units.
		dx, dy := float64(x1-x0), float64(y1-y0)
		l := math.Hypot(dx, dy)
		if l < 0.5 {
			continue
		}
		h := min(5, l/3)
		ang := math.Atan2(dy, dx)
		for _, da := range []float64{math.Pi - 0.44, math.Pi + 0.44} {
			s, cs := math.Sincos(ang + da)
			c.StrokeLine2(sty, x1, y1, x1+vg.Length(h*cs), y1+vg.Length(h*s))
		}
	}
}

// Displacement returns the displacement field of a flow on g: at every
// grid point x_k (row k of g.Points()) an arrow from x_k along
// s·v_k, v_k = x_k − T(x_k) (tx holds T(x_k), (NX·NY)×2), so pointing back
// from where T sends x_k. Length and darkness grow with |v_k|: the length
// is s·|v_k| with one s for all arrows, chosen so that the 75th percentile
// of |v_k| spans 0.9 of a grid cell, except that arrows are cut at 1.5
// cells (far from the data a flow's extrapolation can be wild); the title
// states s, max |v_k| and how many arrows were cut. Darkness saturates at
// the 95th percentile. The rows of pts (n×2; nil to omit) are drawn
// underneath as faint dots in colour c.
func Displacement(g Grid, tx, pts *mat.Dense, c color.Color) (*gplot.Plot, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	if err := check2D("T(x)", tx); err != nil {
		return nil, err
	}
	if r, _ := tx.Dims(); r != g.NX*g.NY {
		return nil, fmt.Errorf("plot: Displacement: %d rows of T(x) for a %d×%d grid", r, g.NX, g.NY)
	}
	if pts != nil {
		if err := check2D("points", pts); err != nil {
			return nil, err
		}
	}
	x := g.Points()
	ar := &arrows{}
	norms := make([]float64, 0, g.NX*g.NY)
	for k := 0; k < g.NX*g.NY; k++ {
		p := plotter.XY{X: x.At(k, 0), Y: x.At(k, 1)}
		v := plotter.XY{X: p.X - tx.At(k, 0), Y: p.Y - tx.At(k, 1)}
		if !finite(v.X) || !finite(v.Y) {
			return nil, fmt.Errorf("plot: Displacement: T(x) is not finite at grid point %d", k)
		}
		ar.p, ar.v = append(ar.p, p), append(ar.v, v)
		norms = append(norms, math.Hypot(v.X, v.Y))
	}
	slices.Sort(norms)
	vmax := norms[len(norms)-1]
	ar.vdark = norms[len(norms)*95/100]
	cell := min((g.X1-g.X0)/float64(g.NX-1), (g.Y1-g.Y0)/float64(g.NY-1))
	ar.scale, ar.maxLen = 1, 1.5*cell
	if q := norms[len(norms)*3/4]; q > 0 {
		ar.scale = 0.9 * cell / q
	}
	cut := 0
	for _, m := range norms {
		if ar.scale*m > ar.maxLen {
			cut++
		}
	}
	title := fmt.Sprintf("x − T(x) ×%.2g (max |v| %.3g)", ar.scale, vmax)
	if cut > 0 {
		title = fmt.Sprintf("x − T(x) ×%.2g (max |v| %.3g; %d cut)", ar.scale, vmax, cut)
	}
	p := newPlot(title, "x₀", "x₁")
	if pts != nil {
		d, err := dots(pts, withAlpha(c, 60), 0.8)
		if err != nil {
			return nil, err
		}
		p.Add(d)
	}
	p.Add(ar)
	dx, dy := (g.X1-g.X0)/float64(g.NX-1), (g.Y1-g.Y0)/float64(g.NY-1)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = g.X0-dx, g.X1+dx, g.Y0-dy, g.Y1+dy
	return p, nil
}

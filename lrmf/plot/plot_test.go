package plot

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	gplot "gonum.org/v1/plot"

	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// checkPNG decodes path and checks its size in pixels and that it is not a
// single colour.
func checkPNG(t *testing.T, path string, w, h int) image.Image {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, path)
	require.Equal(t, image.Rect(0, 0, w, h), img.Bounds(), path)
	colours := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bb, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, bb, a}] = true
		}
	}
	assert.Greater(t, len(colours), 2, "%s has %d colours", path, len(colours))
	return img
}

// checkSVG checks that path is non-empty, well-formed XML with an <svg>
// root.
func checkSVG(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotEmpty(t, raw)
	dec := xml.NewDecoder(bytes.NewReader(raw))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, path)
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	assert.Equal(t, "svg", root, path)
	return string(raw)
}

// countColour counts the pixels of img within tol (per 8-bit channel) of c.
func countColour(img image.Image, r, g, b uint8, tol int) int {
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			R, G, B, _ := img.At(x, y).RGBA()
			if abs(int(R>>8)-int(r)) <= tol && abs(int(G>>8)-int(g)) <= tol && abs(int(B>>8)-int(b)) <= tol {
				n++
			}
		}
	}
	return n
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestEllipseIsThreeSigma(t *testing.T) {
	cov := mat.NewSymDense(2, []float64{2, 0.7, 0.7, 0.5})
	e := Ellipse{Label: "e", Mean: []float64{1, -2}, Cov: cov}
	pts, err := e.points(50)
	require.NoError(t, err)
	require.Len(t, pts, 51)
	var inv mat.Dense
	require.NoError(t, inv.Inverse(cov))
	for _, p := range pts {
		d := mat.NewVecDense(2, []float64{p.X - 1, p.Y + 2})
		assert.InDelta(t, 9, mat.Inner(d, &inv, d), 1e-9)
	}
	_, err = Ellipse{Mean: []float64{0, 0}, Cov: mat.NewSymDense(2, []float64{1, 2, 2, 1})}.points(10)
	assert.ErrorContains(t, err, "not positive definite")
}

func TestPanelsWritePNGAndSVG(t *testing.T) {
	p := data.Blobs(300, 2)
	dir := t.TempDir()
	meanA, covA := Moments(p.A)
	meanB, covB := Moments(p.B)
	sc, err := Scatter(p.A, nil, p.B, []Ellipse{{Label: "A", Mean: meanA, Cov: covA, Color: ColorA}, {Label: "B", Mean: meanB, Cov: covB, Color: ColorB, Dashed: true}})
	require.NoError(t, err)
	paths, err := Save(sc, PanelSize, PanelSize, filepath.Join(dir, "scatter"))
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, "scatter.png"), filepath.Join(dir, "scatter.svg")}, paths)
	img := checkPNG(t, paths[0], 480, 480)
	// Both point sets are drawn in their colours (blue and red pixels).
	assert.Greater(t, countColour(img, ColorB.R, ColorB.G, ColorB.B, 40), 200)
	assert.Greater(t, countColour(img, ColorA.R, ColorA.G, ColorA.B, 40), 200)
	svg := checkSVG(t, paths[1])
	assert.Contains(t, svg, "A (blue), T(A) (cyan), B (red)")

	hist := make([]lrmf.Point, 1000)
	for i := range hist {
		hist[i] = lrmf.Point{Step: i + 1, Loss: 5*math.Exp(-float64(i)/100) + 0.01*math.Sin(float64(i))}
	}
	hist[0].Loss = 1e6 // an early outlier is cut off, and the label says so
	lc, err := LossCurve(hist, 0.02)
	require.NoError(t, err)
	assert.Contains(t, lc.Y.Label.Text, "cut at")
	assert.Less(t, lc.Y.Max, 10.0)
	assert.Less(t, lc.Y.Min, 0.0) // the zero line is visible
	paths, err = Save(lc, 6*72, 4*72, filepath.Join(dir, "lrmf"))
	require.NoError(t, err)
	img = checkPNG(t, paths[0], 576, 384)
	assert.Greater(t, countColour(img, 220, 0, 0, 30), 100, "no red zero line")
	checkSVG(t, paths[1])

	g, err := BoundingGrid(40, 0.05, p.A, p.B)
	require.NoError(t, err)
	assert.InDelta(t, g.X1-g.X0, g.Y1-g.Y0, 1e-12)
	lp := make([]float64, g.NX*g.NY)
	pts := g.Points()
	for k := range lp {
		x, y := pts.At(k, 0), pts.At(k, 1)
		lp[k] = -(x*x + y*y) / 2
	}
	lp[0] = math.Inf(-1) // zero density is allowed
	dp, err := Density(g, lp, p.A, ColorA)
	require.NoError(t, err)
	paths, err = Save(dp, 300, 300, filepath.Join(dir, "density"))
	require.NoError(t, err)
	checkPNG(t, paths[0], 400, 400)
	checkSVG(t, paths[1])

	// T(x) = x + (1, 0): every arrow has length 1 before scaling.
	tx := mat.DenseCopyOf(pts)
	for k := 0; k < g.NX*g.NY; k++ {
		tx.Set(k, 0, tx.At(k, 0)+1)
	}
	dsp, err := Displacement(g, tx, p.A, ColorA)
	require.NoError(t, err)
	// Every |v| is 1, so the scale is 0.9 cell / 1 and none is cut.
	assert.Equal(t, fmt.Sprintf("x − T(x) ×%.2g (max |v| 1)", 0.9*(g.X1-g.X0)/float64(g.NX-1)), dsp.Title.Text)
	paths, err = Save(dsp, PanelSize, PanelSize, filepath.Join(dir, "disp"))
	require.NoError(t, err)
	checkPNG(t, paths[0], 480, 480)
	checkSVG(t, paths[1])

	paths, err = SaveGrid([][]*gplot.Plot{{sc, lc}, {nil, dsp}}, 200, 200, filepath.Join(dir, "grid"))
	require.NoError(t, err)
	checkPNG(t, paths[0], 533, 533) // 400 pt at 96 dpi
	checkSVG(t, paths[1])

	// Nothing but the files asked for: no temporary files are left.
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 10)
}

func TestPanelErrors(t *testing.T) {
	three := mat.NewDense(3, 3, []float64{1, 2, 3, 4, 5, 6, 7, 8, 10})
	two := mat.NewDense(3, 2, []float64{1, 2, 3, 4, 5, 7})
	_, err := Scatter(three, nil, two, nil)
	assert.True(t, errors.Is(err, ErrNot2D), "%v", err)
	_, err = Scatter(two, nil, mat.NewDense(1, 2, []float64{math.NaN(), 0}), nil)
	assert.ErrorContains(t, err, "not finite")
	_, err = LossCurve(nil, 0)
	assert.Error(t, err)
	_, err = LossCurve([]lrmf.Point{{Step: 1, Loss: math.Inf(1)}}, 0)
	assert.Error(t, err)
	g := Grid{X0: 0, X1: 1, Y0: 0, Y1: 1, NX: 3, NY: 3}
	_, err = Density(g, make([]float64, 8), nil, ColorA)
	assert.ErrorContains(t, err, "8 values")
	_, err = Density(Grid{X0: 1, X1: 1, Y0: 0, Y1: 1, NX: 3, NY: 3}, make([]float64, 9), nil, ColorA)
	assert.ErrorContains(t, err, "bad grid")
	_, err = Displacement(g, two, nil, ColorA)
	assert.ErrorContains(t, err, "3 rows")
	_, err = BoundingGrid(1, 0, two)
	assert.Error(t, err)
	_, err = Save(nil, 10, 10, filepath.Join(t.TempDir(), "x"))
	assert.Error(t, err)
	_, err = Save(gplot.New(), 10, 10, filepath.Join(t.TempDir(), "no", "such", "dir", "x"))
	assert.Error(t, err)
	_, err = SaveGrid(nil, 10, 10, filepath.Join(t.TempDir(), "x"))
	assert.Error(t, err)
}

// alignBlobs aligns a small blobs pair with the given models on a float64
// backend that the caller must close.
func alignBlobs(t *testing.T, flow, density model.ModelSpec, steps int) (*data.Pair, *lrmf.Result, native.Backend) {
	t.Helper()
	be, err := native.Open(native.DefaultBackend(), native.Float64, 2)
	require.NoError(t, err)
	p := data.Blobs(400, 1)
	res, err := lrmf.Align(context.Background(), p.A, p.B, lrmf.Config{
		Backend:    be,
		Flow:       flow,
		Density:    density,
		Steps:      steps,
		LR:         0.01,
		Seed:       1,
		FitOptions: lrmf.FitOptions{FitSteps: steps, Batch: 128},
	})
	require.NoError(t, err)
	return &p, res, be
}

func TestWriteResultGaussian(t *testing.T) {
	p, res, be := alignBlobs(t, model.ModelSpec{Kind: "affine"}, model.ModelSpec{Kind: "gaussian"}, 1500)
	defer be.Close()
	dir := t.TempDir()
	paths, err := WriteResult(dir, "t-", "blobs", p.A, p.B, res)
	require.NoError(t, err)
	require.Len(t, paths, 2*len(AllPanels))
	for i, pn := range AllPanels {
		png, svg := paths[2*i], paths[2*i+1]
		assert.Equal(t, filepath.Join(dir, "t-"+string(pn)+".png"), png)
		h := 480
		if pn == PanelLRMF {
			h = 360
		}
		checkPNG(t, png, 480, h)
		s := checkSVG(t, svg)
		assert.Contains(t, s, "blobs: ")
	}
	ps, err := Build("", p.A, p.B, res, PanelScatter)
	require.NoError(t, err)
	// The four Gaussian ellipses are in the legend.
	s, err := os.ReadFile(paths[1])
	require.NoError(t, err)
	for _, l := range []string{"3σ θA*", "3σ θB*", "3σ θS", "3σ of T(A)"} {
		assert.Contains(t, string(s), l)
	}
	assert.Equal(t, "A (blue), T(A) (cyan), B (red)", ps[0].Title.Text)

	_, err = Build("", p.A, p.B, res, "histogram")
	assert.ErrorContains(t, err, `unknown panel "histogram"`)
	_, err = Build("", p.B.Slice(0, 10, 0, 2).(*mat.Dense), p.B, res)
	assert.ErrorContains(t, err, "10")

	// A Result whose backend Align opened and closed cannot be evaluated.
	closed := *res
	closed.Config.Backend = nil
	_, err = Build("", p.A, p.B, &closed, PanelDensityS)
	assert.ErrorIs(t, err, lrmf.ErrBackendClosed)
	// ... but the panels that need no evaluation still work.
	_, err = Build("", p.A, p.B, &closed, PanelScatter, PanelLRMF)
	assert.NoError(t, err)
}

func TestBuildRealNVP(t *testing.T) {
	spec := model.ModelSpec{Kind: "realnvp", Blocks: 2, Hidden: 8, Depth: 1}
	p, res, be := alignBlobs(t, spec, spec, 30)
	defer be.Close()
	ps, err := Build("x", p.A, p.B, res)
	require.NoError(t, err)
	require.Len(t, ps, len(AllPanels))
	paths, err := SaveGrid([][]*gplot.Plot{ps[:3], ps[3:]}, 150, 150, filepath.Join(t.TempDir(), "all"))
	require.NoError(t, err)
	checkPNG(t, paths[0], 600, 400)
	svg := checkSVG(t, paths[1])
	assert.False(t, strings.Contains(svg, "3σ"), "Real NVP densities have no ellipses")
}

// The regression panel decodes, and the measured line (red) and the
// fitted points (blue) are drawn.
func TestRegressionPanel(t *testing.T) {
	x, y := make([]float64, 100), make([]float64, 100)
	for i := range x {
		x[i] = 4 + 16*float64(i)/99
		y[i] = 0.6*x[i] - 1.17 + 0.01*math.Sin(float64(i))
	}
	p, err := Regression("Example 2.2", "μ", "√(−ln|g|)", x, y, 20, 80, 0.6, -1.17, 0.99996, &[2]float64{0.6, -1.168})
	require.NoError(t, err)
	dir := t.TempDir()
	paths, err := Save(p, 6*72, 4*72, filepath.Join(dir, "reg"))
	require.NoError(t, err)
	img := checkPNG(t, paths[0], 6*DPI, 4*DPI)
	checkSVG(t, paths[1])
	assert.Greater(t, countColour(img, 215, 35, 35, 30), 50, "red fitted line")
	assert.Greater(t, countColour(img, 31, 90, 200, 30), 50, "blue fit-range points")
	_, err = Regression("", "", "", x, y[:5], 0, 5, 1, 0, 1, nil)
	assert.Error(t, err)
	_, err = Regression("", "", "", x, y, 50, 40, 1, 0, 1, nil)
	assert.ErrorContains(t, err, "fit range")
}

package plot

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	gplot "gonum.org/v1/plot"
)

// Ten clusters, one per digit: each digit's colour appears in the PNG;
// SameRange gives two panels one square range covering both.
func TestDigitScatter(t *testing.T) {
	xy := mat.NewDense(200, 2, nil)
	labels := make([]int, 200)
	for i := range 200 {
		d := i % 10
		s, c := math.Sincos(2 * math.Pi * float64(d) / 10)
		xy.Set(i, 0, 3*c+0.01*float64(i/10))
		xy.Set(i, 1, 3*s)
		labels[i] = d
	}
	p, err := DigitScatter("digits", xy, labels)
	require.NoError(t, err)
	far := mat.NewDense(1, 2, []float64{20, -1})
	q, err := DigitScatter("far", far, []int{3})
	require.NoError(t, err)
	SameRange(p, q)
	assert.Equal(t, p.X.Min, q.X.Min)
	assert.Equal(t, p.Y.Max, q.Y.Max)
	assert.InDelta(t, p.X.Max-p.X.Min, p.Y.Max-p.Y.Min, 1e-12)
	assert.True(t, p.X.Max >= 20 && p.X.Min <= -3)

	dir := t.TempDir()
	paths, err := SaveGrid([][]*gplot.Plot{{p, q}}, PanelSize, PanelSize, filepath.Join(dir, "scatter"))
	require.NoError(t, err)
	img := checkPNG(t, paths[0], 960, 480)
	checkSVG(t, paths[1])
	for d, c := range DigitColors {
		assert.Positive(t, countColour(img, c.R, c.G, c.B, 40), "digit %d's colour is missing", d)
	}

	_, err = DigitScatter("x", xy, labels[:5])
	assert.ErrorContains(t, err, "5 labels for 200 points")
	bad := append([]int(nil), labels...)
	bad[7] = 10
	_, err = DigitScatter("x", xy, bad)
	assert.ErrorContains(t, err, "label 10 of point 7 is not a digit")
	_, err = DigitScatter("x", mat.NewDense(2, 3, nil), []int{0, 1})
	assert.ErrorIs(t, err, ErrNot2D)
}

// A 2×3 grid of 4×4 images: white squares, a black one and a grey one
// appear at their tiles' pixels in the PNG when drawn at 1 px per pixel
// (DigitImagesSize), and the border is grey.
func TestDigitImages(t *testing.T) {
	const side = 4
	imgs := mat.NewDense(5, side*side, nil)
	for k := range 5 {
		for j := range side * side {
			imgs.Set(k, j, []float64{1, 0, 0.5, 2, -1}[k]) // 2 and −1 clamp to 1 and 0
		}
	}
	p, err := DigitImages("grid", imgs, side, 3)
	require.NoError(t, err)
	w, h := DigitImagesSize(5, side, 3, 10)
	paths, err := Save(p, w, h, filepath.Join(t.TempDir(), "images"))
	require.NoError(t, err)
	checkSVG(t, paths[1])
	f, err := os.Open(paths[0])
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	// 3·5 + 1 = 16 columns and 2·5 + 1 = 11 rows of image pixels, 10 PNG
	// pixels each, plus the title band.
	assert.Equal(t, 160, img.Bounds().Dx())
	assert.Equal(t, 110+int(math.Round(0.4*DPI)), img.Bounds().Dy())
	// Tile 0 white, 1 black, 2 mid grey, 3 white (clamped), 4 black (clamped).
	white := countColour(img, 255, 255, 255, 2)
	grey := countColour(img, 128, 128, 128, 3)
	assert.Greater(t, white, 2*side*side*60, "white pixels")
	assert.Greater(t, grey, side*side*60, "grey pixels")
	assert.Greater(t, countColour(img, 0, 0, 0, 2), 2*side*side*60, "black pixels")

	_, err = DigitImages("x", imgs, 5, 3)
	assert.ErrorContains(t, err, "images of 16 pixels, want side² = 25")
	_, err = DigitImages("x", imgs, side, 0)
	assert.ErrorContains(t, err, "0 columns")
	imgs.Set(2, 3, math.NaN())
	_, err = DigitImages("x", imgs, side, 3)
	assert.ErrorContains(t, err, "image 2, pixel 3 is NaN")
	_, err = DigitImages("x", nil, side, 3)
	assert.ErrorContains(t, err, "no images")
}

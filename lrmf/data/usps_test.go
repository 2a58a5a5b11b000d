package data

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// frame returns a 28×28 image with the given pixels set.
func frame(pix map[[2]int]uint8) []uint8 {
	p := make([]uint8, 28*28)
	for rc, v := range pix {
		p[rc[0]*28+rc[1]] = v
	}
	return p
}

func images(imgs ...[]uint8) *Images {
	im := &Images{N: len(imgs), Rows: 28, Cols: 28}
	for i, p := range imgs {
		im.Pix = append(im.Pix, p...)
		im.Labels = append(im.Labels, i%10)
	}
	return im
}

// Hand-checkable cases: the box is scaled by 16/max(h, w) and centred.
func TestUSPSStyleByHand(t *testing.T) {
	// A 4-tall, 2-wide block at rows 5-8, columns 20-21: s = 4, so it
	// becomes 16×8 at columns 4-11.
	block := map[[2]int]uint8{}
	for r := 5; r < 9; r++ {
		block[[2]int{r, 20}], block[[2]int{r, 21}] = 200, 200
	}
	// A 2-tall, 1-wide stroke of 255 over 51 at rows 3-4, column 7: s = 8,
	// rows 0-7 are 1, rows 8-15 are 51/255, at columns 4-11.
	stroke := map[[2]int]uint8{{3, 7}: 255, {4, 7}: 51}
	// One pixel fills the frame.
	dot := map[[2]int]uint8{{27, 0}: 9}
	x, labels := USPSStyle(images(frame(block), frame(stroke), frame(dot), frame(nil)))
	r, c := x.Dims()
	require.Equal(t, [2]int{4, 256}, [2]int{r, c})
	assert.Equal(t, []int{0, 1, 2, 3}, labels)
	for i := range 16 {
		for j := range 16 {
			inside := j >= 4 && j < 12
			want := [3]float64{0, 0, 1}
			if inside {
				want[0] = 1
				want[1] = 1
				if i >= 8 {
					want[1] = 0.2
				}
			}
			for k := range 3 {
				assert.InDelta(t, want[k], x.At(k, i*16+j), 1e-12, "image %d pixel (%d, %d)", k, i, j)
			}
			assert.Equal(t, 0.0, x.At(3, i*16+j), "an image with no ink stays 0")
		}
	}
}

// Properties over all 10000 MNIST test digits.
func TestUSPSStyleProperties(t *testing.T) {
	im, err := LoadMNIST(mnistDir(t), MNISTTest)
	require.NoError(t, err)
	x, labels := USPSStyle(im)
	n, d := x.Dims()
	require.Equal(t, [2]int{10000, 256}, [2]int{n, d})
	assert.Equal(t, im.Labels, labels, "labels kept in order")
	labels[0] = -1
	assert.NotEqual(t, -1, im.Labels[0], "labels are a copy")

	for i := range n {
		row := x.RawRowView(i)
		top, bot, left, right := 16, -1, 16, -1
		peak := 0.0
		for k, v := range row {
			require.True(t, v >= 0 && v <= 1, "image %d: grey level %v outside [0, 1]", i, v)
			peak = max(peak, v)
			if v > 0 {
				top, bot = min(top, k/16), max(bot, k/16)
				left, right = min(left, k%16), max(right, k%16)
			}
		}
		require.Equal(t, 1.0, peak, "image %d: darkest pixel", i)
		r0, r1, c0, c1, ok := inkBox(im.Image(i), 28, 28)
		require.True(t, ok)
		// The longer side of the box fills the frame; the shorter is centred.
		long, short := [2]int{top, bot}, [2]int{left, right}
		if c1-c0 > r1-r0 {
			long, short = short, long
		}
		require.Equal(t, [2]int{0, 15}, long, "image %d: box %dx%d does not fill the frame", i, r1-r0, c1-c0)
		require.InDelta(t, short[0], 15-short[1], 1, "image %d: short side %v not centred", i, short)
	}

	// Deterministic.
	y, _ := USPSStyle(im)
	assert.True(t, mat.Equal(x, y))
}

// Area averaging conserves ink: Σ out = s_y·s_x·Σ src/255. Resizing to the
// same side is the identity.
func TestResized(t *testing.T) {
	im, err := LoadMNIST(mnistDir(t), MNISTTest)
	require.NoError(t, err)
	im = im.Head(500)
	x := im.Resized(USPSSide)
	n, d := x.Dims()
	require.Equal(t, [2]int{500, 256}, [2]int{n, d})
	s := 16.0 / 28
	for i := range n {
		var in, out float64
		for _, v := range im.Image(i) {
			in += float64(v) / 255
		}
		for _, v := range x.RawRowView(i) {
			require.True(t, v >= 0 && v <= 1+1e-12, "grey level %v", v)
			out += v
		}
		require.InDelta(t, s*s*in, out, 1e-9*in, "image %d", i)
	}
	same := im.Resized(28)
	assert.True(t, mat.EqualApprox(same, im.Matrix(), 1e-13))
}

package data

import (
	"gonum.org/v1/gonum/mat"
)

// USPSSide is the side, in pixels, of a USPS digit image (16×16).
const USPSSide = 16

// USPSStyle turns MNIST digits into a USPS-style domain: a stand-in for the
// USPS digits of the paper's experiment, which cannot be obtained here. It
// imitates how USPS was normalised (LeCun et al. 1989: each digit scaled to
// fill a 16×16 frame), not the USPS images themselves: the writers,
// scanner and deslanting of USPS are absent. Use MNIST's test split, so
// that no image is shared with an MNIST domain drawn from the training
// split.
//
// For each image of im (any Rows×Cols):
//
//  1. Crop to the bounding box of its ink: the smallest rectangle holding
//     every pixel with a grey level above 0 (MNIST's background is exactly
//     0, so no ink is lost).
//  2. Scale the box by s = 16/max(h, w), keeping its aspect ratio as USPS
//     does, so that its longer side fills the 16 pixels and the shorter side
//     is centred (at a fractional offset if need be). Each output pixel is
//     the area average of the source pixels it covers (a box filter, exact
//     for any s), with the region outside the box counted as background.
//  3. Rescale grey levels to [0, 1] per image by dividing by the image's
//     largest value: the background stays 0 and the darkest pixel is 1
//     (USPS itself stores each image stretched to [−1, 1]; an affine map of
//     that range is immaterial after the embedding's standardisation).
//
// It returns an N×256 matrix (empty if N = 0), row i the 16×16 image of im's image i in
// row-major order, and a copy of the labels. An image with no ink stays
// all 0. The result depends only on im.
func USPSStyle(im *Images) (*mat.Dense, []int) {
	const side = USPSSide
	if im.N == 0 {
		return &mat.Dense{}, []int{}
	}
	out := mat.NewDense(im.N, side*side, nil)
	var wy, wx []float64
	var tmp []float64
	for i := range im.N {
		src := im.Image(i)
		r0, r1, c0, c1, ok := inkBox(src, im.Rows, im.Cols)
		if !ok {
			continue
		}
		h, w := r1-r0, c1-c0
		s := float64(side) / float64(max(h, w))
		wy = areaWeights(wy, h, s, (side-float64(h)*s)/2, side)
		wx = areaWeights(wx, w, s, (side-float64(w)*s)/2, side)
		tmp = resample(tmp, out.RawRowView(i), src[r0*im.Cols:], im.Cols, h, w, c0, wy, wx, s*s, side)
		peak := 0.0
		row := out.RawRowView(i)
		for _, v := range row {
			peak = max(peak, v)
		}
		if peak > 0 {
			for k := range row {
				row[k] /= peak
			}
		}
	}
	return out, append([]int(nil), im.Labels...)
}

// Resized returns the images resampled whole (no cropping) to side×side by
// area averaging, as an N×side² matrix with grey levels v/255 ∈ [0, 1]:
// MNIST in USPS's 16×16 frame, for an embedding shared with USPSStyle (whose
// input dimension must match). The digit keeps MNIST's framing (a 20×20 box
// centred in 28×28 becomes about 11.4 px in 16) and grey scale; USPSStyle
// differs from it in exactly the normalisation USPS applied. The matrix
// is empty if N = 0. It panics if side < 1.
func (im *Images) Resized(side int) *mat.Dense {
	if side < 1 {
		panic("data: Images.Resized: side < 1")
	}
	if im.N == 0 {
		return &mat.Dense{}
	}
	out := mat.NewDense(im.N, side*side, nil)
	sy := float64(side) / float64(im.Rows)
	sx := float64(side) / float64(im.Cols)
	wy := areaWeights(nil, im.Rows, sy, 0, side)
	wx := areaWeights(nil, im.Cols, sx, 0, side)
	var tmp []float64
	for i := range im.N {
		tmp = resample(tmp, out.RawRowView(i), im.Image(i), im.Cols, im.Rows, im.Cols, 0, wy, wx, sy*sx/255, side)
	}
	return out
}

// inkBox returns the bounding box [r0, r1)×[c0, c1) of the non-zero pixels
// of a rows×cols image, and false if there are none.
func inkBox(p []uint8, rows, cols int) (r0, r1, c0, c1 int, ok bool) {
	r0, c0 = rows, cols
	for r := range rows {
		for c, v := range p[r*cols : (r+1)*cols] {
			if v > 0 {
				r0, r1 = min(r0, r), max(r1, r+1)
				c0, c1 = min(c0, c), max(c1, c+1)
			}
		}
	}
	return r0, r1, c0, c1, r1 > r0
}

// areaWeights fills w (grown to side·n) with the overlaps of the box-filter
// resampling of n source pixels scaled by s and shifted by off output
// pixels: w[j·n+x] is the length, in source pixels, of the intersection of
// source pixel [x, x+1) with the preimage [(j−off)/s, (j+1−off)/s) of
// output pixel j. Each output pixel inside the image covers 1/s source
// pixels, so s²·Σ w_y·w_x·v is an area average.
func areaWeights(w []float64, n int, s, off float64, side int) []float64 {
	w = append(w[:0], make([]float64, side*n)...)
	for j := range side {
		a, b := (float64(j)-off)/s, (float64(j+1)-off)/s
		for x := max(0, int(a)); x < n && float64(x) < b; x++ {
			if o := min(b, float64(x+1)) - max(a, float64(x)); o > 0 {
				w[j*n+x] = o
			}
		}
	}
	return w
}

// resample writes dst[i·side+j] = scale·Σ_y Σ_x wy[i·h+y]·wx[j·w+x]·src[y·stride+c0+x]
// for the h×w window of src starting at column c0, using tmp (grown to
// h·side) for the row pass, and returns tmp.
func resample(tmp, dst []float64, src []uint8, stride, h, w, c0 int, wy, wx []float64, scale float64, side int) []float64 {
	tmp = append(tmp[:0], make([]float64, h*side)...)
	for y := range h {
		row := src[y*stride+c0 : y*stride+c0+w]
		t := tmp[y*side : (y+1)*side]
		for j := range side {
			acc := 0.0
			for x, v := range row {
				acc += wx[j*w+x] * float64(v)
			}
			t[j] = acc
		}
	}
	for i := range side {
		d := dst[i*side : (i+1)*side]
		for y := range h {
			if a := wy[i*h+y]; a != 0 {
				for j, v := range tmp[y*side : (y+1)*side] {
					d[j] += a * v
				}
			}
		}
		for j := range d {
			d[j] *= scale
		}
	}
	return tmp
}

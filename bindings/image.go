//go:build cgo

package bindings

// #include "lrmf.h"
import "C"

import "fmt"

// Image kernels (lrmf.h, "Images"). An image batch is n×h×w×c in NHWC
// order: pixel p = (b·h + i)·w + j of image b is row p of an (n·h·w)×c
// matrix. The convolution is k×k (k odd, ≤ 63), stride 1, zero "same"
// padding of r = (k−1)/2, no bias; with edge an extra input channel is 1
// where a tap falls in the padding and 0 inside (OpenAI Glow's
// add_edge_padding), built on the fly. Weights are (k²·(cin+edge))×cout,
// row (ky·k + kx)·(cin+edge) + ci. The convolution kernels compute output
// rows [p0, p1) of the n·h·w pixels and read the whole input, so callers
// split a batch by pixel ranges.

// convMaxC is the kernels' largest channel count.
const convMaxC = 1 << 20

// checkConv validates the sizes shared by the convolution kernels.
func checkConv(op string, n, h, w, cin, cout, k, p0, p1 int) (np int, err error) {
	for _, v := range []struct {
		name string
		v    int
	}{{"n", n}, {"h", h}, {"w", w}, {"cin", cin}, {"cout", cout}} {
		if v.v < 0 {
			return 0, errNeg(op, v.name, v.v)
		}
	}
	if k < 1 || k%2 == 0 || k > 63 {
		return 0, &Error{op, fmt.Sprintf("kernel size k = %d, want odd in [1, 63]", k)}
	}
	if cin > convMaxC || cout > convMaxC {
		return 0, &Error{op, fmt.Sprintf("channels %d, %d: want ≤ 2^20", cin, cout)}
	}
	hw, ok := mul(h, w)
	if ok {
		np, ok = mul(n, hw)
	}
	if !ok || np > 1<<42 {
		return 0, errOverflow(op)
	}
	if p0 < 0 || p1 < p0 || p1 > np {
		return 0, &Error{op, fmt.Sprintf("pixel range [%d, %d) outside [0, %d)", p0, p1, np)}
	}
	return np, nil
}

// Conv2DWorkLen returns the workspace length (elements of T) the three
// convolution kernels need for these channel counts and kernel size: a
// few MiB at most, independent of n, h and w; 0 for invalid sizes (which
// the kernels reject).
func Conv2DWorkLen[T Float](cin, cout, k int, edge bool) int {
	if cin < 0 || cout < 0 || k < 1 || k%2 == 0 || k > 63 || cin > convMaxC || cout > convMaxC {
		return 0
	}
	var r C.int64_t
	if is32[T]() {
		r = C.lrmf_conv2d_work_f32(i64(cin), i64(cout), i64(k), i64(b2i(edge)))
	} else {
		r = C.lrmf_conv2d_work_f64(i64(cin), i64(cout), i64(k), i64(b2i(edge)))
	}
	return max(int(r), 0)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Im2Col writes rows [p0, p1) of the im2col matrix of x (n×h×w×c) into
// cols ((p1−p0)×(k²·(c+edge))): row p−p0 is the k×k neighbourhood of pixel
// p, tap (ky, kx) at columns [(ky·k + kx)·(c+edge), +c) = x[b, i+ky−r,
// j+kx−r, :] (0 outside the image), then, with edge, 1 outside and 0
// inside.
func Im2Col[T Float](n, h, w, c, k int, edge bool, x []T, p0, p1 int, cols []T) error {
	const op = "Im2Col"
	np, err := checkConv(op, n, h, w, c, 0, k, p0, p1)
	if err != nil {
		return err
	}
	if err := checkRows(op, "x", len(x), np, c); err != nil {
		return err
	}
	if err := checkRows(op, "cols", len(cols), p1-p0, k*k*(c+b2i(edge))); err != nil {
		return err
	}
	if p1 == p0 {
		return nil
	}
	e := i64(b2i(edge))
	if is32[T]() {
		return status(op, C.lrmf_im2col_f32(i64(n), i64(h), i64(w), i64(c), i64(k), e, pf(x), i64(p0), i64(p1), pf(cols)))
	}
	return status(op, C.lrmf_im2col_f64(i64(n), i64(h), i64(w), i64(c), i64(k), e, pd(x), i64(p0), i64(p1), pd(cols)))
}

// checkConvBufs validates the convolution's buffers: a (n·h·w)×ca, b
// (n·h·w)×cb, wt (k²·(cin+edge))×cout and work.
func checkConvBufs[T Float](op string, np, cin, cout, k int, edge bool, an string, a []T, ca int, bn string, b []T, cb int, wn string, wt []T, work []T) error {
	if err := checkRows(op, an, len(a), np, ca); err != nil {
		return err
	}
	if err := checkRows(op, bn, len(b), np, cb); err != nil {
		return err
	}
	if err := checkRows(op, wn, len(wt), k*k*(cin+b2i(edge)), cout); err != nil {
		return err
	}
	return checkLen(op, "work", len(work), Conv2DWorkLen[T](cin, cout, k, edge))
}

// Conv2DForward sets rows [p0, p1) of y ((n·h·w)×cout) to the convolution
// of x (n×h×w×cin) with wt ((k²·(cin+edge))×cout):
//
//	y[p, co] = Σ_{ky,kx,ci} xe[b, i+ky−r, j+kx−r, ci]·wt[(ky·k+kx)·(cin+edge) + ci, co]
//
// with xe the zero-padded input (and the edge channel). work holds at least
// Conv2DWorkLen elements; concurrent calls need separate work.
func Conv2DForward[T Float](n, h, w, cin, cout, k int, edge bool, x, wt []T, p0, p1 int, y, work []T) error {
	const op = "Conv2DForward"
	np, err := checkConv(op, n, h, w, cin, cout, k, p0, p1)
	if err != nil {
		return err
	}
	if err := checkConvBufs(op, np, cin, cout, k, edge, "x", x, cin, "y", y, cout, "wt", wt, work); err != nil {
		return err
	}
	if p1 == p0 || cout == 0 {
		return nil
	}
	e := i64(b2i(edge))
	if is32[T]() {
		return status(op, C.lrmf_conv2d_fwd_f32(i64(n), i64(h), i64(w), i64(cin), i64(cout), i64(k), e,
			pf(x), pf(wt), i64(p0), i64(p1), pf(y), pf(work), i64(len(work))))
	}
	return status(op, C.lrmf_conv2d_fwd_f64(i64(n), i64(h), i64(w), i64(cin), i64(cout), i64(k), e,
		pd(x), pd(wt), i64(p0), i64(p1), pd(y), pd(work), i64(len(work))))
}

// Conv2DBackwardData sets rows [p0, p1) of dx ((n·h·w)×cin) to the input
// gradient of [Conv2DForward] for upstream dy ((n·h·w)×cout):
//
//	dx[q, ci] = Σ_{p, tap: p + off(tap) = q} Σ_co dy[p, co]·wt[(tap, ci), co]
//
// (the edge channel's weights do not enter).
func Conv2DBackwardData[T Float](n, h, w, cin, cout, k int, edge bool, dy, wt []T, p0, p1 int, dx, work []T) error {
	const op = "Conv2DBackwardData"
	np, err := checkConv(op, n, h, w, cin, cout, k, p0, p1)
	if err != nil {
		return err
	}
	if err := checkConvBufs(op, np, cin, cout, k, edge, "dy", dy, cout, "dx", dx, cin, "wt", wt, work); err != nil {
		return err
	}
	if p1 == p0 || cin == 0 {
		return nil
	}
	e := i64(b2i(edge))
	if is32[T]() {
		return status(op, C.lrmf_conv2d_bwd_data_f32(i64(n), i64(h), i64(w), i64(cin), i64(cout), i64(k), e,
			pf(dy), pf(wt), i64(p0), i64(p1), pf(dx), pf(work), i64(len(work))))
	}
	return status(op, C.lrmf_conv2d_bwd_data_f64(i64(n), i64(h), i64(w), i64(cin), i64(cout), i64(k), e,
		pd(dy), pd(wt), i64(p0), i64(p1), pd(dx), pd(work), i64(len(work))))
}

// Conv2DBackwardFilter sets dw ((k²·(cin+edge))×cout) to the weight
// gradient of [Conv2DForward] over the pixels [p0, p1):
//
//	dw = Σ_{p0 ≤ p < p1} col(p)ᵀ dy[p, :]
//
// with col(p) row p of the im2col matrix ([Im2Col]); an empty range zeroes
// dw.
func Conv2DBackwardFilter[T Float](n, h, w, cin, cout, k int, edge bool, x, dy []T, p0, p1 int, dw, work []T) error {
	const op = "Conv2DBackwardFilter"
	np, err := checkConv(op, n, h, w, cin, cout, k, p0, p1)
	if err != nil {
		return err
	}
	if err := checkConvBufs(op, np, cin, cout, k, edge, "x", x, cin, "dy", dy, cout, "dw", dw, work); err != nil {
		return err
	}
	if k*k*(cin+b2i(edge)) == 0 || cout == 0 {
		return nil
	}
	e := i64(b2i(edge))
	if is32[T]() {
		return status(op, C.lrmf_conv2d_bwd_filter_f32(i64(n), i64(h), i64(w), i64(cin), i64(cout), i64(k), e,
			pf(x), pf(dy), i64(p0), i64(p1), pf(dw), pf(work), i64(len(work))))
	}
	return status(op, C.lrmf_conv2d_bwd_filter_f64(i64(n), i64(h), i64(w), i64(cin), i64(cout), i64(k), e,
		pd(x), pd(dy), i64(p0), i64(p1), pd(dw), pd(work), i64(len(work))))
}

// checkSqueeze validates Squeeze / Unsqueeze's sizes: x n×h×w×c with h, w
// even, y n×(h/2)×(w/2)×(4c).
func checkSqueeze[T Float](op string, n, h, w, c int, x, y []T) error {
	if _, err := checkConv(op, n, h, w, c, 0, 1, 0, 0); err != nil {
		return err
	}
	if h%2 != 0 || w%2 != 0 {
		return &Error{op, fmt.Sprintf("image %d×%d: want even height and width", h, w)}
	}
	np := n * h * w
	if err := checkRows(op, "x", len(x), np, c); err != nil {
		return err
	}
	return checkRows(op, "y", len(y), np, c)
}

// Squeeze sets y (n×(h/2)×(w/2)×(4c)) from x (n×h×w×c), Glow's squeeze2d:
//
//	y[b, i, j, ci·4 + dy·2 + dx] = x[b, 2i+dy, 2j+dx, ci].
//
// y must not overlap x.
func Squeeze[T Float](n, h, w, c int, x, y []T) error {
	const op = "Squeeze"
	if err := checkSqueeze(op, n, h, w, c, x, y); err != nil {
		return err
	}
	if n*h*w*c == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_squeeze_f32(i64(n), i64(h), i64(w), i64(c), pf(x), pf(y)))
	}
	return status(op, C.lrmf_squeeze_f64(i64(n), i64(h), i64(w), i64(c), pd(x), pd(y)))
}

// Unsqueeze is the inverse of [Squeeze] (and its transpose, so also its
// backward): x (n×h×w×c) from y (n×(h/2)×(w/2)×(4c)); h, w, c are x's.
func Unsqueeze[T Float](n, h, w, c int, y, x []T) error {
	const op = "Unsqueeze"
	if err := checkSqueeze(op, n, h, w, c, x, y); err != nil {
		return err
	}
	if n*h*w*c == 0 {
		return nil
	}
	if is32[T]() {
		return status(op, C.lrmf_unsqueeze_f32(i64(n), i64(h), i64(w), i64(c), pf(y), pf(x)))
	}
	return status(op, C.lrmf_unsqueeze_f64(i64(n), i64(h), i64(w), i64(c), pd(y), pd(x)))
}

package native

import "fmt"

// Image operations (GLOW).
//
// An image batch of N images of H×W pixels and C channels is stored NHWC:
// pixel p = (b·H + i)·W + j of image b is row p of an (N·H·W)×C Tensor, so
// a per-channel operation on images (ActNorm, a 1×1 convolution, an affine
// coupling on channels) is the row-wise operation of Backend on that
// Tensor. The operations here are the ones that mix pixels.
//
// They are an optional capability, ImageBackend, found by type assertion
// as for GMMBackend.

// ConvGeom is the geometry of a convolution over an image batch: N images
// of H×W pixels, a K×K kernel (K odd, 1 ≤ K ≤ 63), stride 1, zero "same"
// padding of R = (K−1)/2 pixels, no bias. With Edge, one more input channel
// is appended that is 1 where a tap falls in the padding and 0 inside the
// image (OpenAI Glow's add_edge_padding), so the network can tell the
// border from dark pixels; it has weights but no storage.
type ConvGeom struct {
	N, H, W, K int
	Edge       bool
}

// Pixels returns N·H·W, the rows of the batch's Tensors.
func (g ConvGeom) Pixels() int { return g.N * g.H * g.W }

// InChannels returns the channels the weights see for cin image channels:
// cin + 1 with Edge, else cin.
func (g ConvGeom) InChannels(cin int) int {
	if g.Edge {
		return cin + 1
	}
	return cin
}

// ImageBackend is a Backend with the image kernels.
type ImageBackend interface {
	Backend
	// Conv2D sets y to the convolution of x with wt:
	//   y[p, co] = Σ_{ky,kx,ci} xe[b, i+ky−R, j+kx−R, ci]·wt[(ky·K + kx)·ce + ci, co]
	// with xe the zero-padded input (plus the edge channel, ce = cin+Edge).
	// x is (N·H·W)×cin, wt (K²·ce)×cout, y (N·H·W)×cout (y must not be x).
	Conv2D(y, x, wt *Tensor, g ConvGeom)
	// Conv2DBackwardData sets dx to the input gradient of Conv2D for the
	// upstream dy: dx[q, ci] = Σ_{p, tap: p + off(tap) = q} dy[p, :]·wt[(tap, ci), :]ᵀ
	// (the edge channel's weights do not enter). dy is (N·H·W)×cout,
	// wt (K²·ce)×cout, dx (N·H·W)×cin (dx must not be dy).
	Conv2DBackwardData(dx, dy, wt *Tensor, g ConvGeom)
	// Conv2DBackwardFilter sets dw to the weight gradient of Conv2D:
	//   dw[(tap, ci), co] = Σ_p xe[p + off(tap), ci]·dy[p, co],
	// x (N·H·W)×cin, dy (N·H·W)×cout, dw (K²·ce)×cout.
	Conv2DBackwardFilter(dw, x, dy *Tensor, g ConvGeom)
	// Squeeze sets y to x with each 2×2 block of pixels moved into channels
	// (Glow's squeeze2d): y[b, i, j, ci·4 + dy·2 + dx] = x[b, 2i+dy, 2j+dx, ci].
	// x is (n·h·w)×c with h, w even, y (n·(h/2)·(w/2))×4c; y must not be x.
	Squeeze(y, x *Tensor, n, h, w int)
	// Unsqueeze is the inverse of Squeeze (and its transpose, so also its
	// vector-Jacobian product): x (n·h·w)×c from y (n·(h/2)·(w/2))×4c; n, h,
	// w are x's. x must not be y.
	Unsqueeze(x, y *Tensor, n, h, w int)
}

// Contracts of the image operations (see contract.go).

// checkConvGeom panics unless g is a valid geometry.
func checkConvGeom(op string, g ConvGeom) {
	if g.N < 0 || g.H < 0 || g.W < 0 {
		panic(fmt.Sprintf("native: %s: negative batch %d×%d×%d", op, g.N, g.H, g.W))
	}
	if g.K < 1 || g.K%2 == 0 || g.K > 63 {
		panic(fmt.Sprintf("native: %s: kernel size %d, want odd in [1, 63]", op, g.K))
	}
}

// checkConvTensors checks a Conv2D-family call: a (N·H·W)×cin input, b
// (N·H·W)×cout, wt (K²·ce)×cout, and that a and b are distinct Tensors.
func checkConvTensors(op, an string, a *Tensor, bn string, b, wt *Tensor, g ConvGeom, cinFromA bool) (cin, cout int) {
	checkConvGeom(op, g)
	if a == nil || b == nil || wt == nil {
		panic(fmt.Sprintf("native: %s: nil tensor", op))
	}
	np := g.Pixels()
	if cinFromA {
		cin, cout = a.cols, b.cols
	} else {
		cin, cout = b.cols, a.cols
	}
	mustShape(op, an, a, np, a.cols)
	mustShape(op, bn, b, np, b.cols)
	mustShape(op, "wt", wt, g.K*g.K*g.InChannels(cin), cout)
	if a == b {
		panic(fmt.Sprintf("native: %s: %s and %s are the same tensor", op, an, bn))
	}
	return cin, cout
}

// CheckConv2D checks ImageBackend.Conv2D: x is (N·H·W)×cin, y
// (N·H·W)×cout, wt (K²·(cin+Edge))×cout, y not x. It returns cin, cout.
func CheckConv2D(y, x, wt *Tensor, g ConvGeom) (cin, cout int) {
	return checkConvTensors("Conv2D", "x", x, "y", y, wt, g, true)
}

// CheckConv2DBackwardData checks ImageBackend.Conv2DBackwardData: dy is
// (N·H·W)×cout, dx (N·H·W)×cin, wt (K²·(cin+Edge))×cout, dx not dy. It
// returns cin, cout.
func CheckConv2DBackwardData(dx, dy, wt *Tensor, g ConvGeom) (cin, cout int) {
	return checkConvTensors("Conv2DBackwardData", "dy", dy, "dx", dx, wt, g, false)
}

// CheckConv2DBackwardFilter checks ImageBackend.Conv2DBackwardFilter: x is
// (N·H·W)×cin, dy (N·H·W)×cout, dw (K²·(cin+Edge))×cout. It returns cin,
// cout.
func CheckConv2DBackwardFilter(dw, x, dy *Tensor, g ConvGeom) (cin, cout int) {
	return checkConvTensors("Conv2DBackwardFilter", "x", x, "dy", dy, dw, g, true)
}

// checkSqueeze checks Squeeze/Unsqueeze: x (n·h·w)×c, y
// (n·(h/2)·(w/2))×4c, h and w even, x not y. It returns c.
func checkSqueeze(op string, x, y *Tensor, n, h, w int) (c int) {
	if n < 0 || h < 0 || w < 0 || h%2 != 0 || w%2 != 0 {
		panic(fmt.Sprintf("native: %s: batch %d×%d×%d, want non-negative with even height and width", op, n, h, w))
	}
	if x == nil || y == nil {
		panic(fmt.Sprintf("native: %s: nil tensor", op))
	}
	c = x.cols
	mustShape(op, "x", x, n*h*w, c)
	mustShape(op, "y", y, n*(h/2)*(w/2), 4*c)
	if x == y {
		panic(fmt.Sprintf("native: %s: x and y are the same tensor", op))
	}
	return c
}

// CheckSqueeze checks ImageBackend.Squeeze: x is (n·h·w)×c with h, w even,
// y (n·(h/2)·(w/2))×4c, y not x. It returns c.
func CheckSqueeze(y, x *Tensor, n, h, w int) (c int) { return checkSqueeze("Squeeze", x, y, n, h, w) }

// CheckUnsqueeze checks ImageBackend.Unsqueeze: the shapes of CheckSqueeze.
// It returns c.
func CheckUnsqueeze(x, y *Tensor, n, h, w int) (c int) {
	return checkSqueeze("Unsqueeze", x, y, n, h, w)
}

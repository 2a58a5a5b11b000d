package nativetest

import (
	"fmt"

	"github.com/lrmf-go/lrmf/native"
)

// convShapes are the geometries of the Image subtest, {N, H, W, cin, cout,
// K, edge}: a single pixel, odd sizes, a 5×5 kernel, and batches large
// enough that a multi-threaded backend splits them into pixel blocks.
var convShapes = [][7]int{
	{1, 1, 1, 1, 1, 1, 0}, {2, 3, 4, 2, 3, 3, 1}, {1, 5, 5, 3, 2, 5, 0},
	{4, 16, 16, 3, 5, 3, 1}, {2, 16, 12, 16, 8, 3, 1}, {3, 8, 8, 0, 4, 3, 1},
}

// testImage compares the image kernels of backends implementing
// native.ImageBackend with the reference (skipped for the others), with
// every output poisoned: the convolution and its two gradients, squeeze
// and unsqueeze.
func testImage(h *harness) {
	b, ok := h.b.(native.ImageBackend)
	if !ok {
		h.t.Skipf("%s backend has no image kernels (not a native.ImageBackend)", h.b.Name())
	}
	r := h.ref.(native.ImageBackend)
	for _, s := range convShapes {
		g := native.ConvGeom{N: s[0], H: s[1], W: s[2], K: s[5], Edge: s[6] == 1}
		cin, cout, np := s[3], s[4], g.Pixels()
		kf := g.K * g.K * g.InChannels(cin)
		name := fmt.Sprintf("(%+v,cin=%d,cout=%d)", g, cin, cout)
		x, wt, dy := h.rand(np, cin, 1), h.rand(kf, cout, 1), h.rand(np, cout, 1)
		y := h.out(np, cout)
		b.Conv2D(y.b, x.b, wt.b, g)
		r.Conv2D(y.r, x.r, wt.r, g)
		h.check("Conv2D"+name, y)
		dx := h.out(np, cin)
		b.Conv2DBackwardData(dx.b, dy.b, wt.b, g)
		r.Conv2DBackwardData(dx.r, dy.r, wt.r, g)
		h.check("Conv2DBackwardData"+name, dx)
		dw := h.out(kf, cout)
		b.Conv2DBackwardFilter(dw.b, x.b, dy.b, g)
		r.Conv2DBackwardFilter(dw.r, x.r, dy.r, g)
		h.check("Conv2DBackwardFilter"+name, dw)
	}
	for _, s := range [][4]int{{1, 2, 2, 1}, {3, 4, 6, 3}, {64, 8, 8, 4}} {
		n, hh, w, c := s[0], s[1], s[2], s[3]
		name := fmt.Sprintf("(n=%d,h=%d,w=%d,c=%d)", n, hh, w, c)
		x := h.rand(n*hh*w, c, 1)
		y := h.out(n*hh*w/4, 4*c)
		b.Squeeze(y.b, x.b, n, hh, w)
		r.Squeeze(y.r, x.r, n, hh, w)
		h.check("Squeeze"+name, y)
		x2 := h.out(n*hh*w, c)
		b.Unsqueeze(x2.b, y.b, n, hh, w)
		r.Unsqueeze(x2.r, y.r, n, hh, w)
		h.check("Unsqueeze"+name, x2)
	}
}

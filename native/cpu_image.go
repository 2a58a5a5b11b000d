//go:build cgo

package native

import "github.com/lrmf-go/lrmf/bindings"

var _ ImageBackend = (*cpu[float64])(nil)

// The convolutions split the batch by output pixels: each block reads the
// whole input (no halo copies) and packs into its own workspace,
// c.gemmWork[blk], grown to bindings.Conv2DWorkLen on first use.

// imageJobs holds the image operations' argument structs (one cpuJobs
// field).
type imageJobs[T bindings.Float] struct {
	conv    convJob[T]
	squeeze squeezeJob[T]
}

// convWork returns block blk's convolution workspace.
func (c *cpu[T]) convWork(blk, cin, cout, k int, edge bool) []T {
	if need := bindings.Conv2DWorkLen[T](cin, cout, k, edge); len(c.gemmWork[blk]) < need {
		c.gemmWork[blk] = make([]T, need)
	}
	return c.gemmWork[blk]
}

// convJob: one of the three convolutions (op 0 forward, 1 input gradient,
// 2 weight gradient) by pixel blocks; the weight gradient sums each block
// ≥ 1 into its partial.
type convJob[T bindings.Float] struct {
	op        int
	g         ConvGeom
	cin, cout int
	a, b, w   []T // forward: x, y, wt; data: dy, dx, wt; filter: x, dy, dw
}

func (j *convJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	g := j.g
	work := c.convWork(blk, j.cin, j.cout, g.K, g.Edge)
	switch j.op {
	case 0:
		return bindings.Conv2DForward(g.N, g.H, g.W, j.cin, j.cout, g.K, g.Edge, j.a, j.w, lo, hi, j.b, work)
	case 1:
		return bindings.Conv2DBackwardData(g.N, g.H, g.W, j.cin, j.cout, g.K, g.Edge, j.a, j.w, lo, hi, j.b, work)
	}
	return bindings.Conv2DBackwardFilter(g.N, g.H, g.W, j.cin, j.cout, g.K, g.Edge, j.a, j.b, lo, hi, c.partialOr(blk, j.w), work)
}

// convSplit is the number of pixel blocks of a convolution: each block
// re-packs the K²·ce×cout weights, so blocks are kept to ≥ 256 pixels.
func (c *cpu[T]) convSplit(g ConvGeom, cin, cout int) int {
	np := g.Pixels()
	nb := c.pool.split(np, 2*g.K*g.K*g.InChannels(cin)*cout)
	return max(1, min(nb, np/256))
}

func (c *cpu[T]) Conv2D(y, x, wt *Tensor, g ConvGeom) {
	cin, cout := CheckConv2D(y, x, wt, g)
	j := &c.jobs.img.conv
	*j = convJob[T]{op: 0, g: g, cin: cin, cout: cout, a: c.s(x), b: c.s(y), w: c.s(wt)}
	c.dispatch(j, g.Pixels(), c.convSplit(g, cin, cout))
}

func (c *cpu[T]) Conv2DBackwardData(dx, dy, wt *Tensor, g ConvGeom) {
	cin, cout := CheckConv2DBackwardData(dx, dy, wt, g)
	j := &c.jobs.img.conv
	*j = convJob[T]{op: 1, g: g, cin: cin, cout: cout, a: c.s(dy), b: c.s(dx), w: c.s(wt)}
	c.dispatch(j, g.Pixels(), c.convSplit(g, cin, cout))
}

func (c *cpu[T]) Conv2DBackwardFilter(dw, x, dy *Tensor, g ConvGeom) {
	cin, cout := CheckConv2DBackwardFilter(dw, x, dy, g)
	nb := c.convSplit(g, cin, cout)
	c.ensurePartial(nb, dw.Len())
	j := &c.jobs.img.conv
	*j = convJob[T]{op: 2, g: g, cin: cin, cout: cout, a: c.s(x), b: c.s(dy), w: c.s(dw)}
	c.dispatch(j, g.Pixels(), nb)
	c.reduce(nb, j.w)
}

// squeezeJob: Squeeze (or Unsqueeze when inv) by images.
type squeezeJob[T bindings.Float] struct {
	inv     bool
	h, w, c int
	x, y    []T
}

func (j *squeezeJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	hw := j.h * j.w * j.c
	x, y := j.x[lo*hw:hi*hw], j.y[lo*hw:hi*hw]
	if j.inv {
		return bindings.Unsqueeze(hi-lo, j.h, j.w, j.c, y, x)
	}
	return bindings.Squeeze(hi-lo, j.h, j.w, j.c, x, y)
}

func (c *cpu[T]) Squeeze(y, x *Tensor, n, h, w int) {
	ch := CheckSqueeze(y, x, n, h, w)
	j := &c.jobs.img.squeeze
	*j = squeezeJob[T]{h: h, w: w, c: ch, x: c.s(x), y: c.s(y)}
	c.dispatch(j, n, c.pool.split(n, h*w*ch))
}

func (c *cpu[T]) Unsqueeze(x, y *Tensor, n, h, w int) {
	ch := CheckUnsqueeze(x, y, n, h, w)
	j := &c.jobs.img.squeeze
	*j = squeezeJob[T]{inv: true, h: h, w: w, c: ch, x: c.s(x), y: c.s(y)}
	c.dispatch(j, n, c.pool.split(n, h*w*ch))
}

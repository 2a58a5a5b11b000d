package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/native"
)

// glowCoupling is GLOW's affine coupling on a per-pixel tensor of c
// channels: the first ca = c/2 channels pass through and condition a
// convolutional network whose output h = [μ | r] (c − ca channels each)
// transforms the others, y_b = x_b ⊙ s(r) + μ with s = sigmoid(r + 2)
// (native's ScaleSigmoid, GLOW's) or GLOWOptions.Scale; per image
// ln|det| = Σ_pixels Σ_j ln s(r_j).
//
// The network (OpenAI Glow's f): edge-padded 3×3 conv (ca+1 → F) + bias →
// ReLU → 1×1 conv (F → F) + bias → ReLU → edge-padded 3×3 conv (F+1 →
// 2(c−ca)) + bias, the last initialised to zero so the coupling starts as
// the identity. Glow's ActNorms after the hidden convolutions are folded
// into those convolutions' weights and biases: initFromData scales each
// output channel to zero mean and unit variance on a batch, which is what
// their data-dependent initialisation does at the start.
type glowCoupling struct {
	be      native.Backend
	ib      native.ImageBackend
	g       imgGeom
	ca, cb  int
	f       int
	w1, b1  *Param // (9·(ca+1))×F, 1×F
	w2, b2  *Param // F×F, 1×F
	w3, b3  *Param // (9·(F+1))×2cb, 1×2cb
	ps      []*Param
	n       int
	geom    native.ConvGeom
	xa      *native.Tensor // (n·hw)×ca
	a1, a2  *native.Tensor // (n·hw)×F
	h, dh   *native.Tensor // (n·hw)×2cb
	d1, d2  *native.Tensor // (n·hw)×F
	dxa     *native.Tensor
	ldp     *native.Tensor // per-pixel log-det, (n·hw)×1
	dldp    *native.Tensor
	onesHW  *native.Tensor // 1×hw
	x       *native.Tensor
	scale   native.Scale
	ldpImg  *native.Tensor // ldp as n×hw
	dldpImg *native.Tensor // dldp as n×hw
	tb      *native.Tensor // (n·hw)×cb scratch of the inverse's log-det and backward
	hz      *native.Tensor // (n·hw)×2cb, [0 | r], for the inverse's backward
}

func newGLOWCoupling(be native.Backend, ib native.ImageBackend, name string, g imgGeom, f int, sc native.Scale, rng *rand.Rand) *glowCoupling {
	ca := g.c / 2
	cb := g.c - ca
	c := &glowCoupling{be: be, ib: ib, g: g, ca: ca, cb: cb, f: f, scale: sc}
	c.w1, c.b1 = newParam(be, name+".conv1.W", 9*(ca+1), f), newParam(be, name+".conv1.b", 1, f)
	c.w2, c.b2 = newParam(be, name+".conv2.W", f, f), newParam(be, name+".conv2.b", 1, f)
	c.w3, c.b3 = newParam(be, name+".conv3.W", 9*(f+1), 2*cb), newParam(be, name+".conv3.b", 1, 2*cb)
	c.ps = []*Param{c.w1, c.b1, c.w2, c.b2, c.w3, c.b3}
	// He-uniform hidden weights (rescaled by initFromData); w3 = 0.
	heInit(be, c.w1.Value, 9*(ca+1), rng)
	heInit(be, c.w2.Value, f, rng)
	return c
}

// heInit fills w with U(−a, a), a = √(6/fanIn).
func heInit(be native.Backend, w *native.Tensor, fanIn int, rng *rand.Rand) {
	a := math.Sqrt(6 / float64(max(fanIn, 1)))
	v := make([]float64, w.Len())
	for i := range v {
		v[i] = a * (2*rng.Float64() - 1)
	}
	be.Upload(w, v)
}

func (c *glowCoupling) params() []*Param { return c.ps }

func (c *glowCoupling) resize(n int) {
	if c.n == n && c.xa != nil {
		return
	}
	be, np, hw := c.be, n*c.g.hw(), c.g.hw()
	c.n = n
	c.geom = native.ConvGeom{N: n, H: c.g.h, W: c.g.w, K: 3, Edge: true}
	c.xa, c.dxa = be.New(np, c.ca), be.New(np, c.ca)
	c.a1, c.a2, c.d1, c.d2 = be.New(np, c.f), be.New(np, c.f), be.New(np, c.f), be.New(np, c.f)
	c.h, c.dh, c.hz = be.New(np, 2*c.cb), be.New(np, 2*c.cb), be.New(np, 2*c.cb)
	c.tb = be.New(np, c.cb)
	c.ldp, c.dldp = be.New(np, 1), be.New(np, 1)
	c.ldpImg, c.dldpImg = reshape(c.ldp, n, hw), reshape(c.dldp, n, hw)
	c.onesHW = be.New(1, hw)
	be.Fill(c.onesHW, 1)
}

// net sets c.h = f(c.xa) (keeping the activations).
func (c *glowCoupling) net() {
	c.ib.Conv2D(c.a1, c.xa, c.w1.Value, c.geom)
	c.be.BiasReLU(c.a1, c.b1.Value)
	c.be.Gemm(false, false, 1, c.a1, c.w2.Value, 0, c.a2)
	c.be.BiasReLU(c.a2, c.b2.Value)
	c.ib.Conv2D(c.h, c.a2, c.w3.Value, c.geom)
	c.be.BiasAdd(c.h, c.b3.Value)
}

func (c *glowCoupling) forward(y, ld, x *native.Tensor) {
	c.resize(ld.Rows())
	c.x = x
	c.be.CopyCols(c.xa, x, 0)
	c.net()
	c.be.Fill(c.ldp, 0)
	c.be.CouplingForward(y, c.ldp, x, c.h, c.ca, c.scale)
	c.be.LogDetAcc(ld, c.ldpImg)
}

// inverse: x_b = (y_b − μ)/s(r) with [μ | r] = net(y_a). Its log-det,
// −Σ_pixels Σ_j ln s(r_j) per image, comes from CouplingForward on a
// zeroed scratch (only its logdet output is used), summed per image by a
// GEMM with −1.
func (c *glowCoupling) inverse(x, ld, y *native.Tensor) {
	c.resize(y.Rows() / c.g.hw())
	c.be.CopyCols(c.xa, y, 0)
	c.net()
	c.be.CouplingInverse(x, y, c.h, c.ca, c.scale)
	if ld != nil {
		c.be.Fill(c.tb, 0)
		c.be.Fill(c.ldp, 0)
		c.be.CouplingForward(c.tb, c.ldp, c.tb, c.h, 0, c.scale)
		c.be.Gemm(false, true, -1, c.ldpImg, c.onesHW, 1, ld)
	}
}

// backward: dlogdet per image is broadcast to the pixels (a rank-1 GEMM),
// then the coupling's and the network's vector-Jacobian products.
func (c *glowCoupling) backward(dx, dy, dld *native.Tensor) {
	be := c.be
	be.Gemm(false, false, 1, dld, c.onesHW, 0, c.dldpImg)
	be.CouplingBackward(dx, c.dh, c.x, c.h, dy, c.dldp, c.ca, c.scale)
	c.netBackward(dx)
}

// netBackward takes c.dh = ∂L/∂h for the network's last evaluation (on
// c.xa), sets the network's parameter gradients and, when dx is not nil,
// adds ∂L/∂x_a to dx's first ca columns.
func (c *glowCoupling) netBackward(dx *native.Tensor) {
	be, ib := c.be, c.ib
	ib.Conv2DBackwardFilter(c.w3.Grad, c.a2, c.dh, c.geom)
	be.BiasGrad(c.b3.Grad, c.dh)
	ib.Conv2DBackwardData(c.d2, c.dh, c.w3.Value, c.geom)
	be.BiasReLUBackward(c.d2, c.b2.Grad, c.a2, c.d2)
	be.Gemm(true, false, 1, c.a1, c.d2, 0, c.w2.Grad)
	be.Gemm(false, true, 1, c.d2, c.w2.Value, 0, c.d1)
	be.BiasReLUBackward(c.d1, c.b1.Grad, c.a1, c.d1)
	ib.Conv2DBackwardFilter(c.w1.Grad, c.xa, c.d1, c.geom)
	if dx != nil {
		ib.Conv2DBackwardData(c.dxa, c.d1, c.w1.Value, c.geom)
		be.AddCols(dx, c.dxa, 0)
	}
}

// initFromData rescales the hidden convolutions so that their
// pre-activations have zero mean and unit variance per channel on x.
func (c *glowCoupling) initFromData(x *native.Tensor) {
	c.resize(x.Rows() / c.g.hw())
	c.be.CopyCols(c.xa, x, 0)
	c.ib.Conv2D(c.a1, c.xa, c.w1.Value, c.geom)
	normalizeLayer(c.be, c.w1, c.b1, c.a1)
	c.be.Fill(c.a1, 0)
	c.ib.Conv2D(c.a1, c.xa, c.w1.Value, c.geom)
	c.be.BiasReLU(c.a1, c.b1.Value)
	c.be.Gemm(false, false, 1, c.a1, c.w2.Value, 0, c.a2)
	normalizeLayer(c.be, c.w2, c.b2, c.a2)
}

// normalizeLayer scales column j of w by 1/σ_j and sets b_j = −μ_j/σ_j,
// with μ, σ the statistics of column j of the pre-activation pre (= x·w).
func normalizeLayer(be native.Backend, w, b *Param, pre *native.Tensor) {
	mean, sd := colStats(be, pre)
	wv := make([]float64, w.Value.Len())
	be.Download(wv, w.Value)
	f := w.Value.Cols()
	for i := 0; i < len(wv); i++ {
		wv[i] /= sd[i%f]
	}
	be.Upload(w.Value, wv)
	bv := make([]float64, f)
	for j := range bv {
		bv[j] = -mean[j] / sd[j]
	}
	be.Upload(b.Value, bv)
}

// String names the coupling's shape, for errors.
func (c *glowCoupling) String() string {
	return fmt.Sprintf("coupling(%d×%d×%d, F=%d)", c.g.h, c.g.w, c.g.c, c.f)
}

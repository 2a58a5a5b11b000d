package model

import (
	"fmt"
	"math"

	"github.com/lrmf-go/lrmf/native"
)

// The layers of a GLOW step on a per-pixel tensor: an image batch of n
// images of h×w pixels and c channels is the (n·h·w)×c Tensor whose row p
// is pixel p (NHWC), so a per-channel map is a row-wise map: GLOW's ActNorm
// and 1×1 convolution are the vector Glow's layers (glow.go) on those rows.
// Each layer adds its per-image log-determinant to a vector of n.

// reshape returns t's storage as a rows×cols Tensor (rows·cols = t.Len());
// a Tensor is row-major on every backend, so the n×(h·w·c) images and the
// (n·h·w)×c pixels are the same memory.
func reshape(t *native.Tensor, rows, cols int) *native.Tensor {
	if rows*cols != t.Len() {
		panic(fmt.Sprintf("model: reshape %v to %d×%d", t, rows, cols))
	}
	return native.NewTensor(rows, cols, t.DType(), t.Store())
}

// imgGeom is a per-pixel tensor's image geometry.
type imgGeom struct{ h, w, c int }

func (g imgGeom) hw() int { return g.h * g.w }

// pixActNorm is the vector ActNorm (actNorm: Backend.ActNormForward,
// Inverse, Backward) on the (n·h·w)×c pixel rows, one per-channel map
// shared by every pixel: y = (x + b)·e^r (ActNormExp). Each image's
// log-det is data-independent, h·w·Σ_j r_j, and is added for all n images
// by one rank-one GEMM, logdet += h·w·1_{n×c}·rᵀ, with no read-back; the
// backward adds h·w·Σ_i dlogdet_i to every ∂/∂r_j the same way,
// dr += h·w·dlogdetᵀ·1_{n×c}.
type pixActNorm struct {
	an   *actNorm
	g    imgGeom
	ones *native.Tensor // n×c of ones
	zero *native.Tensor // 1×c of zeros (a zero shift for ActNormInverse)
}

func newPixActNorm(be native.Backend, name string, g imgGeom) *pixActNorm {
	return &pixActNorm{an: newActNorm(be, name, g.c, native.ActNormExp, true), g: g, zero: be.New(1, g.c)}
}

// resize keeps ones at n×c for n images.
func (a *pixActNorm) resize(n int) {
	if a.ones == nil || a.ones.Rows() != n {
		a.ones = a.an.be.New(n, a.g.c)
		a.an.be.Fill(a.ones, 1)
	}
}

func (a *pixActNorm) params() []*Param { return []*Param{a.an.r, a.an.b} }

func (a *pixActNorm) forward(y, ld, x *native.Tensor) {
	an := a.an
	a.resize(ld.Rows())
	an.x = x
	an.be.ActNormForward(y, nil, x, an.r.Value, an.b.Value, an.kind)
	an.be.Gemm(false, true, float64(a.g.hw()), a.ones, an.r.Value, 1, ld)
}

// inverse: x = y·e^(−r) − b; its log-det, −h·w·Σ_j r_j per image, is
// added by the forward's rank-one GEMM with the opposite sign.
func (a *pixActNorm) inverse(x, ld, y *native.Tensor) {
	an := a.an
	an.be.ActNormInverse(x, y, an.r.Value, an.b.Value, an.kind)
	if ld != nil {
		a.resize(ld.Rows())
		an.be.Gemm(false, true, -float64(a.g.hw()), a.ones, an.r.Value, 1, ld)
	}
}

func (a *pixActNorm) backward(dx, dy, dld *native.Tensor) {
	an := a.an
	an.be.ActNormBackward(dx, an.r.Grad, an.b.Grad, an.x, an.r.Value, an.b.Value, dy, nil, an.kind)
	an.be.Gemm(true, false, float64(a.g.hw()), dld, a.ones, 1, an.r.Grad)
}

// initFromData is Glow's data-dependent initialisation: b and r are set so
// that the output has zero mean and unit variance per channel on the pixel
// rows x (actNorm.initFrom).
func (a *pixActNorm) initFromData(x *native.Tensor) { a.an.initFrom(x) }

// pixLU is the invertible 1×1 convolution: the vector LU-parameterised
// linear layer (luLinear, W = P·L·U, inverse by Backend.LUSolve) on the
// pixel rows, y_p = W x_p for every pixel p. Per image
// ln|det| = h·w·Σ_k logs_k, the Σ logs that assembling W on the backend
// yields anyway, added to the n images by a rank-one GEMM (no read-back);
// the backward's log-det term is h·w·Σ_i dlogdet_i on every ∂/∂logs_k. W starts as a random rotation
// drawn from fixedRand, so P and the signs of U's diagonal, which are not
// parameters, are the same in every build of the flow (a checkpoint
// restores L, U and logs over them).
type pixLU struct {
	lu    *luLinear
	g     imgGeom
	eye   *native.Tensor // c×c identity
	winvT *native.Tensor // (W⁻¹)ᵀ, c×c, for the inverse's backward
}

func newPixLU(be native.Backend, name string, g imgGeom, k int) *pixLU {
	l := &pixLU{lu: newLULinear(be, name, g.c, false, fixedRand(2, g.c, k)), g: g,
		eye: be.New(g.c, g.c), winvT: be.New(g.c, g.c)}
	e := make([]float64, g.c*g.c)
	for i := 0; i < g.c; i++ {
		e[i*g.c+i] = 1
	}
	be.Upload(l.eye, e)
	return l
}

func (l *pixLU) params() []*Param { return []*Param{l.lu.l, l.lu.u, l.lu.logs} }

func (l *pixLU) forward(y, ld, x *native.Tensor) {
	f := l.lu
	f.build()
	f.x = x
	f.be.AffineForward(y, nil, x, f.w, f.zero, 0)
	f.addLogDet(ld, float64(l.g.hw()))
}

// inverse: x_p = W⁻¹y_p (two triangular solves); its log-det is
// −h·w·Σ_k logs_k per image.
func (l *pixLU) inverse(x, ld, y *native.Tensor) {
	l.lu.inverse(x, y)
	if ld != nil {
		l.lu.addLogDet(ld, -float64(l.g.hw()))
	}
}

func (l *pixLU) backward(dx, dy, dld *native.Tensor) {
	l.lu.backwardScaled(dx, dy, dld, float64(l.g.hw()))
}

// colStats returns the mean and standard deviation (floored at 1e-6) of
// each column of x.
func colStats(be native.Backend, x *native.Tensor) (mean, sd []float64) {
	n, c := x.Rows(), x.Cols()
	v := make([]float64, x.Len())
	be.Download(v, x)
	mean, sd = make([]float64, c), make([]float64, c)
	for i := 0; i < n; i++ {
		for j := 0; j < c; j++ {
			mean[j] += v[i*c+j]
		}
	}
	for j := range mean {
		mean[j] /= float64(max(n, 1))
	}
	for i := 0; i < n; i++ {
		for j := 0; j < c; j++ {
			d := v[i*c+j] - mean[j]
			sd[j] += d * d
		}
	}
	for j := range sd {
		sd[j] = math.Max(math.Sqrt(sd[j]/float64(max(n, 1))), 1e-6)
	}
	return mean, sd
}

package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/native"
)

// The layers of a GLOW step on a per-pixel tensor: an image batch of n
// images of h×w pixels and c channels is the (n·h·w)×c Tensor whose row p
// is pixel p (NHWC), so a per-channel map is a row-wise map. Each layer adds
// its per-image log-determinant to a vector of n.

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

// pixAffine is a per-pixel affine map of the channels, y = x·M + b with M
// (c×c) built on the host from the parameters, and per image
// ln|det| = h·w·ln|det M|. Two kinds:
//
//	ActNorm:      M = diag(exp(logs)), b trainable (data-dependent init);
//	1×1 conv, LU: M = Wᵀ, W = P·L·(U + diag(sign·exp(logs))) with P a fixed
//	              permutation, L unit lower and U strictly upper triangular
//	              (Kingma & Dhariwal's LU parameterisation), b = 0,
//	              initialised from the LU of a random rotation.
//
// The per-pixel GEMM costs c² per pixel, nothing beside the coupling's
// convolutions; M is rebuilt on each call (c ≤ a few dozen).
type pixAffine struct {
	be   native.Backend
	g    imgGeom
	lu   bool
	logs *Param // 1×c
	bias *Param // 1×c (ActNorm only)
	low  *Param // c×c, strictly lower part used (LU only)
	up   *Param // c×c, strictly upper part used (LU only)
	perm []float64
	sign []float64
	ps   []*Param

	m, mt, minv, cinv *native.Tensor // M (c×c), scratch, M⁻¹, −b·M⁻¹
	dm, zero          *native.Tensor
	n                 int
	ones              *native.Tensor // n×1
	x                 *native.Tensor // last forward input
	// host scratch, c×c or c
	hl, hu, hs, hb, hm, hdm []float64
}

func newPixAffine(be native.Backend, name string, g imgGeom, lu bool, rng *rand.Rand) *pixAffine {
	c := g.c
	a := &pixAffine{be: be, g: g, lu: lu}
	a.hl, a.hu, a.hs, a.hb = make([]float64, c*c), make([]float64, c*c), make([]float64, c), make([]float64, c)
	a.hm, a.hdm = make([]float64, c*c), make([]float64, c*c)
	a.logs = newParam(be, name+".logs", 1, c)
	a.ps = append(a.ps, a.logs)
	if lu {
		a.low, a.up = newParam(be, name+".L", c, c), newParam(be, name+".U", c, c)
		a.ps = append(a.ps, a.low, a.up)
		a.initRotation(rng)
	} else {
		a.bias = newParam(be, name+".b", 1, c)
		a.ps = append(a.ps, a.bias)
	}
	a.m, a.minv, a.cinv, a.dm, a.zero = be.New(c, c), be.New(c, c), be.New(1, c), be.New(c, c), be.New(1, c)
	return a
}

// initRotation sets W = P·L·U from the pivoted LU of a random rotation Q
// (QR of a Gaussian matrix): L's and U's off-diagonal parts, sign_j and
// logs_j = ln|U_jj|, and P = Q·(L·U)⁻¹ rounded to the permutation it is.
func (a *pixAffine) initRotation(rng *rand.Rand) {
	c := a.g.c
	g := mat.NewDense(c, c, nil)
	for i := 0; i < c; i++ {
		for j := 0; j < c; j++ {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q mat.Dense
	qr.QTo(&q)
	var lu mat.LU
	lu.Factorize(&q)
	var l mat.TriDense
	var u mat.TriDense
	lu.LTo(&l)
	lu.UTo(&u)
	var lum, luinv, p mat.Dense
	lum.Mul(&l, &u)
	if err := luinv.Inverse(&lum); err != nil {
		panic("model: LU of a rotation is singular") // a rotation is never singular
	}
	p.Mul(&q, &luinv)
	a.perm = make([]float64, c*c)
	a.sign = make([]float64, c)
	for i := 0; i < c; i++ {
		for j := 0; j < c; j++ {
			a.perm[i*c+j] = math.Round(p.At(i, j))
			switch {
			case i > j:
				a.hl[i*c+j] = l.At(i, j)
			case i < j:
				a.hu[i*c+j] = u.At(i, j)
			}
		}
		d := u.At(i, i)
		a.sign[i] = math.Copysign(1, d)
		a.hs[i] = math.Log(math.Abs(d))
	}
	a.be.Upload(a.low.Value, a.hl)
	a.be.Upload(a.up.Value, a.hu)
	a.be.Upload(a.logs.Value, a.hs)
}

// build downloads the parameters and sets hm = M (row-major c×c) on the
// host and returns ln|det M| = Σ logs. For LU it also leaves L (unit lower)
// in hl and Ũ = U + diag(sign·exp(logs)) in hu.
func (a *pixAffine) build() float64 {
	c := a.g.c
	a.be.Download(a.hs, a.logs.Value)
	ld := 0.0
	for _, v := range a.hs {
		ld += v
	}
	clear(a.hm)
	if !a.lu {
		for j := 0; j < c; j++ {
			a.hm[j*c+j] = math.Exp(a.hs[j])
		}
		return ld
	}
	a.be.Download(a.hl, a.low.Value)
	a.be.Download(a.hu, a.up.Value)
	for i := 0; i < c; i++ {
		for j := 0; j < c; j++ {
			switch {
			case i == j:
				a.hl[i*c+j] = 1
				a.hu[i*c+j] = a.sign[j] * math.Exp(a.hs[j])
			case i < j:
				a.hl[i*c+j] = 0
			default:
				a.hu[i*c+j] = 0
			}
		}
	}
	// W = P·(L·Ũ); M = Wᵀ, so hm[j][i] = W[i][j].
	lu := mulHost(a.hl, a.hu, c)
	w := mulHost(a.perm, lu, c)
	for i := 0; i < c; i++ {
		for j := 0; j < c; j++ {
			a.hm[j*c+i] = w[i*c+j]
		}
	}
	return ld
}

// mulHost returns the c×c product a·b (row-major).
func mulHost(a, b []float64, c int) []float64 {
	out := make([]float64, c*c)
	for i := 0; i < c; i++ {
		for k := 0; k < c; k++ {
			if v := a[i*c+k]; v != 0 {
				for j := 0; j < c; j++ {
					out[i*c+j] += v * b[k*c+j]
				}
			}
		}
	}
	return out
}

func (a *pixAffine) resize(n int) {
	if a.n != n || a.ones == nil {
		a.n = n
		a.ones = a.be.New(n, 1)
		a.be.Fill(a.ones, 1)
	}
}

func (a *pixAffine) params() []*Param { return a.ps }

func (a *pixAffine) forward(y, ld, x *native.Tensor) {
	a.resize(ld.Rows())
	ldm := a.build()
	a.be.Upload(a.m, a.hm)
	a.x = x
	a.be.Gemm(false, false, 1, x, a.m, 0, y)
	if !a.lu {
		a.be.BiasAdd(y, a.bias.Value)
	}
	a.be.Axpy(float64(a.g.hw())*ldm, a.ones, ld)
}

func (a *pixAffine) inverse(x, y *native.Tensor) {
	c := a.g.c
	a.build()
	m := mat.NewDense(c, c, append([]float64(nil), a.hm...))
	var inv mat.Dense
	if err := inv.Inverse(m); err != nil {
		panic(fmt.Sprintf("model: GLOW: a 1×1 map is singular: %v", err))
	}
	a.be.Upload(a.minv, inv.RawMatrix().Data)
	// x = (y − b)·M⁻¹ = y·M⁻¹ + cinv with cinv = −b·M⁻¹.
	a.be.Gemm(false, false, 1, y, a.minv, 0, x)
	if !a.lu {
		a.be.Download(a.hb, a.bias.Value)
		ci := make([]float64, c)
		for j := 0; j < c; j++ {
			for k := 0; k < c; k++ {
				ci[j] -= a.hb[k] * inv.At(k, j)
			}
		}
		a.be.Upload(a.cinv, ci)
		a.be.BiasAdd(x, a.cinv)
	}
}

// backward: dM = xᵀ·dy, db = Σ dy, dx = dy·Mᵀ; the log-det term adds
// h·w·Σ_i dlogdet_i to every ∂/∂logs_j. The chain from dM to L, U, logs
// runs on the host.
func (a *pixAffine) backward(dx, dy, dld *native.Tensor) {
	c := a.g.c
	a.be.Gemm(true, false, 1, a.x, dy, 0, a.dm)
	if !a.lu {
		a.be.BiasGrad(a.bias.Grad, dy)
	}
	if dx != nil {
		a.be.Gemm(false, true, 1, dy, a.m, 0, dx)
	}
	sdl := float64(a.g.hw()) * a.be.Sum(dld)
	a.build()
	a.be.Download(a.hdm, a.dm)
	gs := make([]float64, c)
	if !a.lu {
		for j := 0; j < c; j++ {
			gs[j] = a.hdm[j*c+j]*math.Exp(a.hs[j]) + sdl
		}
		a.be.Upload(a.logs.Grad, gs)
		return
	}
	// dW = dMᵀ; W = P·L·Ũ: dL = (Pᵀ·dW)·Ũᵀ, dŨ = (P·L)ᵀ·dW.
	dw := make([]float64, c*c)
	for i := 0; i < c; i++ {
		for j := 0; j < c; j++ {
			dw[i*c+j] = a.hdm[j*c+i]
		}
	}
	pt := transposeHost(a.perm, c)
	ptdw := mulHost(pt, dw, c)
	dl := mulHost(ptdw, transposeHost(a.hu, c), c)
	du := mulHost(transposeHost(a.hl, c), ptdw, c)
	for i := 0; i < c; i++ {
		for j := 0; j < c; j++ {
			if i <= j {
				dl[i*c+j] = 0
			}
			if i >= j {
				if i == j {
					gs[j] = du[j*c+j]*a.sign[j]*math.Exp(a.hs[j]) + sdl
				}
				du[i*c+j] = 0
			}
		}
	}
	a.be.Upload(a.low.Grad, dl)
	a.be.Upload(a.up.Grad, du)
	a.be.Upload(a.logs.Grad, gs)
}

func transposeHost(a []float64, c int) []float64 {
	t := make([]float64, c*c)
	for i := 0; i < c; i++ {
		for j := 0; j < c; j++ {
			t[j*c+i] = a[i*c+j]
		}
	}
	return t
}

// initFromData sets an ActNorm's logs and b so that y = x·diag(e^logs) + b
// has zero mean and unit variance per channel on the batch x (Kingma &
// Dhariwal's data-dependent initialisation).
func (a *pixAffine) initFromData(x *native.Tensor) {
	if a.lu {
		return
	}
	mean, sd := colStats(a.be, x)
	for j := range mean {
		a.hs[j] = -math.Log(sd[j])
		a.hb[j] = -mean[j] / sd[j]
	}
	a.be.Upload(a.logs.Value, a.hs)
	a.be.Upload(a.bias.Value, a.hb)
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

package model

import (
	"fmt"

	"github.com/lrmf-go/lrmf/native"
)

// The gradient of the image GLOW's inverse. lrmf's flows differentiate
// their forward map; the back-to-back flow T = G2⁻¹∘G1 (glowimage_b2b.go)
// also needs the vector-Jacobian product of x = G⁻¹(y) with respect to y
// and to G's parameters, including that of the inverse's log-det
// ln|det ∂G⁻¹/∂y| = −ln|det ∂G/∂x (x)|. Each layer's is composed from the
// Backend ops its forward backward uses, fed with the inverse's quantities:
// no new kernel. Every layer's invBackward takes dx = ∂L/∂x, dld =
// ∂L/∂(inverse log-det) per image (n×1), the inverse's output x and input
// y, and a scratch tmp of y's shape; it overwrites its parameters' Grad
// and sets dy = ∂L/∂y.

// invBackward of x = y·e^(−r) − b (per channel, on pixel rows), inverse
// log-det −h·w·Σ_j r_j per image:
//
//	dy = dx·e^(−r),  db_j = −Σ_p dx_pj,
//	dr_j = −Σ_p dx_pj (x_pj + b_j) − h·w·Σ_i dld_i,
//
// i.e. ActNormBackward (the forward's vector-Jacobian product at x) with
// its dy taken as −dx·e^(−r) and no log-det term, then the log-det term by
// the forward's rank-one GEMM with −h·w.
func (a *pixActNorm) invBackward(dy, dx, dld, x, y, tmp *native.Tensor) {
	an, be := a.an, a.an.be
	a.resize(dld.Rows())
	be.ActNormInverse(dy, dx, an.r.Value, a.zero, an.kind) // dx·e^(−r)
	be.Fill(tmp, 0)
	be.Axpy(-1, dy, tmp)
	be.ActNormBackward(nil, an.r.Grad, an.b.Grad, x, an.r.Value, an.b.Value, tmp, nil, an.kind)
	be.Gemm(true, false, -float64(a.g.hw()), dld, a.ones, 1, an.r.Grad)
}

// invBackward of x_p = W⁻¹y_p with W = P·L·U, inverse log-det
// −h·w·Σ_k logs_k per image: dy = W⁻ᵀdx per row (dy = dx·W⁻¹, with
// (W⁻¹)ᵀ from LUSolve on the identity), and since dx = −W⁻¹·dW·x,
// ∂L/∂W = −Σ_p (W⁻ᵀdx_p) x_pᵀ: the forward's backwardScaled with its dy
// taken as −W⁻ᵀdx and x the inverse's output, its log-det scale
// −h·w. backwardScaled also writes its input gradient, which is
// not wanted here, into dy before dy is set.
func (l *pixLU) invBackward(dy, dx, dld, x, y, tmp *native.Tensor) {
	f, be := l.lu, l.lu.be
	be.LUSolve(l.winvT, l.eye, f.lu, f.perm) // row i = W⁻¹e_i: (W⁻¹)ᵀ
	be.Gemm(false, true, -1, dx, l.winvT, 0, tmp)
	f.x = x
	f.backwardScaled(dy, tmp, dld, -float64(l.g.hw()))
	be.Gemm(false, true, 1, dx, l.winvT, 0, dy)
}

// invBackward of the coupling's inverse x_a = y_a, x_b = (y_b − μ)/s(r)
// with [μ | r] = net(y_a) (activations kept by inverse), inverse log-det
// −Σ_pixels Σ_j ln s(r_j):
//
//	dy_b = dx_b/s,  dμ = −dx_b/s,
//	dr = ∂ln s/∂r·(−dx_b ⊙ x_b − dld),
//	dy_a = dx_a + (the network's input gradient for dh = [dμ | dr]).
//
// dy_b is CouplingInverse of dx with h = [0 | r]; dh is CouplingBackward
// (the forward's product at x) with its dy taken as −dy and its per-pixel
// log-det weight −dld; the network's backward is the forward's.
func (c *glowCoupling) invBackward(dy, dx, dld, x, y, tmp *native.Tensor) {
	be := c.be
	be.Gemm(false, false, -1, dld, c.onesHW, 0, c.dldpImg)
	be.CopyCols(c.tb, c.h, c.cb)
	be.Fill(c.hz, 0)
	be.AddCols(c.hz, c.tb, c.cb)
	be.CouplingInverse(dy, dx, c.hz, c.ca, c.scale) // [dx_a | dx_b/s]
	be.Fill(tmp, 0)
	be.Axpy(-1, dy, tmp)
	be.CouplingBackward(nil, c.dh, x, c.h, tmp, c.dldp, c.ca, c.scale)
	c.netBackward(dy)
}

// InverseBackward is the vector-Jacobian product of the last InverseLogDet
// (or Inverse), x = T⁻¹(y): given dx = ∂L/∂x (n×D) and dlogdet =
// ∂L/∂ln|det ∂T⁻¹/∂y| (a vector of n), it sets every Param's Grad to ∂L/∂φ
// (overwriting) and, when dy is not nil, dy = ∂L/∂y (n×D). The levels are
// taken in forward order (the inverse ran them last to first): at each, dx
// is squeezed, the steps' inverse products run first to last, and the
// gradient of the level's output is split into the factored-out columns
// of dy and the kept channels, the next level's input.
func (f *GLOW) InverseBackward(dy, dx, dlogdet *native.Tensor) error {
	if f.n == 0 || f.pass != passInverse {
		return fmt.Errorf("model: GLOW.InverseBackward called before Inverse (or after a Forward, which replaced Inverse's activations)")
	}
	if err := f.check("InverseBackward", dx); err != nil {
		return err
	}
	if dx.Rows() != f.n || dlogdet.Rows() != f.n || (dy != nil && (dy.Rows() != f.n || dy.Cols() != f.d)) {
		return fmt.Errorf("model: GLOW.InverseBackward: dx %v, dy %v, dlogdet %v for the last Inverse of %d images", dx, dy, dlogdet, f.n)
	}
	n, be := f.n, f.be
	src := f.pix(dx, &f.gxLast, &f.gxPix)
	h, w := f.shape.H, f.shape.W
	if dy != nil {
		be.Fill(dy, 0)
	}
	for _, lev := range f.levels {
		f.ib.Squeeze(lev.din, src, n, h, w)
		h, w = lev.g.h, lev.g.w
		g := lev.din
		for k, s := range lev.steps {
			x := lev.in // the step's inverse output
			if k > 0 {
				x = lev.outs[k-1]
			}
			out := lev.grad[k%2]
			s.invBackward(out, g, dlogdet, x, lev.outs[k], lev.tmp)
			g = out
		}
		if lev.last {
			be.Copy(lev.z, g)
		} else {
			be.CopyCols(lev.z, g, lev.g.c/2)
			be.CopyCols(lev.kept, g, 0)
			src = lev.kept
		}
		if dy != nil {
			be.AddCols(dy, lev.zImg, lev.off)
		}
	}
	return nil
}

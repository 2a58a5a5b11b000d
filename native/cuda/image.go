//go:build cuda

package cuda

/*
#include "cublas_shim.h"
*/
import "C"

import (
	"fmt"

	"github.com/lrmf-go/lrmf/native"
)

// The image operations (native.ImageBackend). A convolution is im2col
// (lrmf_k_im2col) into a device chunk of at most imgColsElems floats, then
// one GEMM per chunk (cuBLAS, or lrmf_k_gemm); the input gradient first
// flips the weights (lrmf_k_conv2d_flip) and convolves dy with them; the
// weight gradient accumulates chunkᵀ·dy over chunks.

var _ native.ImageBackend = (*Backend)(nil)

// imgColsElems caps one im2col chunk (128 MiB of float32).
const imgColsElems = 1 << 25

// imageState is the backend's image scratch, grown to the largest call.
type imageState struct {
	cols    *buffer // an im2col chunk
	colsCap int64
	wf      *buffer // flipped weights
	wfCap   int64
}

// gemmPtr is Gemm on device addresses with row-major leading dimensions
// (the context is current): C = alpha·op(A)·op(B) + beta·C, op(A) m×k,
// op(B) k×n, C m×n with leading dimension ldc.
func (b *Backend) gemmPtr(op string, transA, transB bool, m, n, k int, alpha float64, a uint64, lda int, bb uint64, ldb int, beta float64, c uint64, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if b.blas != nil && !b.useKernel && k > 0 && max(m, n, k, lda, ldb, ldc) <= 1<<31-1 {
		b.stats.Gemms++
		st := C.lrmf_cublas_sgemm(b.blas, C.int(boolInt(transB)), C.int(boolInt(transA)),
			C.int(n), C.int(m), C.int(k), C.float(alpha),
			C.uintptr_t(bb), C.int(ldb), C.uintptr_t(a), C.int(lda),
			C.float(beta), C.uintptr_t(c), C.int(ldc))
		if st != 0 {
			panic(fmt.Sprintf("native: cuda: %s: GEMM(m=%d, n=%d, k=%d): cublasSgemm_v2 returned status %d", op, m, n, k, int(st)))
		}
		return
	}
	gx, gy := (n+tileGemm-1)/tileGemm, min((m+tileGemm-1)/tileGemm, maxGridYZ)
	b.launch(kGemm, gx, gy, tileGemm, tileGemm,
		i64(boolInt(transA)), i64(boolInt(transB)), i64(m), i64(n), i64(k),
		f64(alpha), a, i64(lda), bb, i64(ldb), f64(beta), c, i64(ldc))
}

// convChunk returns the pixels per im2col chunk for rows of kk elements.
func convChunk(np, kk int) int { return max(1, min(np, imgColsElems/max(kk, 1))) }

// convPass sets rows of out ((N·H·W)×nout) to im2col(src; c channels,
// edge)·wt chunk by chunk (the context is current).
func (b *Backend) convPass(op string, g native.ConvGeom, c int, edge bool, src, wt uint64, nout int, out uint64) {
	np, kk := g.Pixels(), g.K*g.K*(c+boolInt(edge))
	mc := convChunk(np, kk)
	cols := b.grow(op, &b.img.cols, &b.img.colsCap, 4*int64(mc)*int64(kk))
	for q0 := 0; q0 < np; q0 += mc {
		q1 := min(np, q0+mc)
		b.launchR(kIm2col, (q1-q0)*kk, i64(g.N), i64(g.H), i64(g.W), i64(c), i64(g.K), i64(boolInt(edge)),
			src, i64(q0), i64(q1), cols)
		b.gemmPtr(op, false, false, q1-q0, nout, kk, 1, cols, kk, wt, nout, 0, out+4*uint64(q0*nout), nout)
	}
}

// Conv2D sets y to the convolution of x with wt.
func (b *Backend) Conv2D(y, x, wt *native.Tensor, g native.ConvGeom) {
	cin, cout := native.CheckConv2D(y, x, wt, g)
	if g.Pixels() == 0 || cout == 0 {
		return
	}
	b.enter()
	defer b.leave()
	if g.K*g.K*g.InChannels(cin) == 0 {
		b.launchR(kFill, y.Len(), i64(y.Len()), f64(0), addr(y))
		return
	}
	b.convPass("Conv2D", g, cin, g.Edge, addr(x), addr(wt), cout, addr(y))
}

// Conv2DBackwardData sets dx to the input gradient of Conv2D.
func (b *Backend) Conv2DBackwardData(dx, dy, wt *native.Tensor, g native.ConvGeom) {
	const op = "Conv2DBackwardData"
	cin, cout := native.CheckConv2DBackwardData(dx, dy, wt, g)
	if g.Pixels() == 0 || cin == 0 {
		return
	}
	b.enter()
	defer b.leave()
	if cout == 0 {
		b.launchR(kFill, dx.Len(), i64(dx.Len()), f64(0), addr(dx))
		return
	}
	nf := g.K * g.K * cout * cin
	wf := b.grow(op, &b.img.wf, &b.img.wfCap, 4*int64(nf))
	b.launchR(kConv2dFlip, nf, i64(cin), i64(cout), i64(g.K), i64(boolInt(g.Edge)), addr(wt), wf)
	b.convPass(op, g, cout, false, addr(dy), wf, cin, addr(dx))
}

// Conv2DBackwardFilter sets dw to the weight gradient of Conv2D.
func (b *Backend) Conv2DBackwardFilter(dw, x, dy *native.Tensor, g native.ConvGeom) {
	const op = "Conv2DBackwardFilter"
	cin, cout := native.CheckConv2DBackwardFilter(dw, x, dy, g)
	np, kf := g.Pixels(), g.K*g.K*g.InChannels(cin)
	if kf == 0 || cout == 0 {
		return
	}
	b.enter()
	defer b.leave()
	if np == 0 {
		b.launchR(kFill, dw.Len(), i64(dw.Len()), f64(0), addr(dw))
		return
	}
	mc := convChunk(np, kf)
	cols := b.grow(op, &b.img.cols, &b.img.colsCap, 4*int64(mc)*int64(kf))
	for q0 := 0; q0 < np; q0 += mc {
		q1 := min(np, q0+mc)
		b.launchR(kIm2col, (q1-q0)*kf, i64(g.N), i64(g.H), i64(g.W), i64(cin), i64(g.K), i64(boolInt(g.Edge)),
			addr(x), i64(q0), i64(q1), cols)
		beta := 1.0
		if q0 == 0 {
			beta = 0
		}
		b.gemmPtr(op, true, false, kf, cout, q1-q0, 1, cols, kf, addr(dy)+4*uint64(q0*cout), cout, beta, addr(dw), cout)
	}
}

// Squeeze moves each 2×2 block of pixels into channels.
func (b *Backend) Squeeze(y, x *native.Tensor, n, h, w int) {
	c := native.CheckSqueeze(y, x, n, h, w)
	b.runR(kSqueeze, n*h*w*c, i64(n), i64(h), i64(w), i64(c), addr(x), addr(y))
}

// Unsqueeze inverts Squeeze.
func (b *Backend) Unsqueeze(x, y *native.Tensor, n, h, w int) {
	c := native.CheckUnsqueeze(x, y, n, h, w)
	b.runR(kUnsqueeze, n*h*w*c, i64(n), i64(h), i64(w), i64(c), addr(y), addr(x))
}

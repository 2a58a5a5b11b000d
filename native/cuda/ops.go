//go:build cuda

package cuda

/*
#include "cublas_shim.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/lrmf-go/lrmf/native"
)

// runR launches an R(units) kernel (launchR) with the context current.
func (b *Backend) runR(k kernel, units int, args ...uint64) {
	b.enter()
	defer b.leave()
	b.launchR(k, units, args...)
}

// runC launches a C(outputs) kernel (launchC) with the context current.
func (b *Backend) runC(k kernel, outputs int, args ...uint64) {
	b.enter()
	defer b.leave()
	b.launchC(k, outputs, args...)
}

// New returns a zeroed rows×cols Tensor.
func (b *Backend) New(rows, cols int) *native.Tensor {
	native.CheckNew(rows, cols)
	n := rows * cols
	if n == 0 {
		return native.NewTensor(rows, cols, native.Float32, devStore{buf: emptyBuffer})
	}
	b.enter()
	defer b.leave()
	buf, err := b.newBuffer(4 * int64(n))
	b.must(fmt.Sprintf("New(%d, %d): cuMemAlloc", rows, cols), err)
	b.stats.Copies++
	b.must("New: cuMemsetD32Async", cu.MemsetD32Async(buf.ptr, 0, int64(n), b.stream))
	return native.NewTensor(rows, cols, native.Float32, devStore{buf: buf})
}

// View returns rows [lo, hi) of t, sharing t's storage.
func (b *Backend) View(t *native.Tensor, lo, hi int) *native.Tensor {
	native.CheckView(t, lo, hi)
	s := store(t)
	return native.NewTensor(hi-lo, t.Cols(), native.Float32, devStore{buf: s.buf, off: s.off + lo*t.Cols()})
}

// staging returns the host float32 buffer grown to n elements.
func (b *Backend) staging(n int) []float32 {
	if cap(b.h32) < n {
		b.h32 = make([]float32, n)
	}
	return b.h32[:n]
}

// Upload copies src into t, rounding to float32.
func (b *Backend) Upload(t *native.Tensor, src []float64) {
	native.CheckUpload(t, src)
	if len(src) == 0 {
		return
	}
	h := b.staging(len(src))
	for i, v := range src {
		h[i] = float32(v)
	}
	b.enter()
	defer b.leave()
	b.stats.Copies++
	// From pageable memory the driver stages the data before it returns,
	// so h may be reused at once; the copy itself runs in stream order.
	b.must("Upload: cuMemcpyHtoDAsync", cu.MemcpyHtoDAsync(cu.DevicePtr(addr(t)), unsafe.Pointer(&h[0]), 4*int64(len(h)), b.stream))
}

// Download copies t into dst as float64 (waits for the stream).
func (b *Backend) Download(dst []float64, t *native.Tensor) {
	native.CheckDownload(dst, t)
	if len(dst) == 0 {
		return
	}
	h := b.staging(len(dst))
	b.enter()
	b.stats.Copies++
	b.stats.Syncs++
	err := cu.MemcpyDtoHAsync(unsafe.Pointer(&h[0]), cu.DevicePtr(addr(t)), 4*int64(len(h)), b.stream)
	b.leave()
	b.must("Download: cuMemcpyDtoHAsync", err)
	for i, v := range h {
		dst[i] = float64(v)
	}
}

// Copy sets dst = src.
func (b *Backend) Copy(dst, src *native.Tensor) {
	n := native.CheckCopy(dst, src)
	if n == 0 || addr(dst) == addr(src) {
		return
	}
	b.enter()
	defer b.leave()
	b.stats.Copies++
	b.must("Copy: cuMemcpyDtoDAsync", cu.MemcpyDtoDAsync(cu.DevicePtr(addr(dst)), cu.DevicePtr(addr(src)), 4*int64(n), b.stream))
}

// Fill sets every element of t to v.
func (b *Backend) Fill(t *native.Tensor, v float64) {
	n := t.Len()
	b.runR(kFill, n, i64(n), f64(v), addr(t))
}

// Axpy sets y += alpha·x.
func (b *Backend) Axpy(alpha float64, x, y *native.Tensor) {
	n := native.CheckAxpy(x, y)
	b.runR(kAxpy, n, i64(n), f64(alpha), addr(x), addr(y))
}

// Mul sets out = a⊙b (out may be a or b).
func (b *Backend) Mul(out, x, y *native.Tensor) {
	n := native.CheckMul(out, x, y)
	b.runR(kMul, n, i64(n), addr(x), addr(y), addr(out))
}

// Dot returns Σ x_i y_i, accumulated in double on the device.
func (b *Backend) Dot(x, y *native.Tensor) float64 {
	n := native.CheckDot(x, y)
	b.enter()
	defer b.leave()
	b.launchS(kDot, i64(n), addr(x), addr(y), dptr(b.scratch.ptr))
	return b.readScalar("Dot")
}

// Sum returns Σ x_i, accumulated in double on the device.
func (b *Backend) Sum(x *native.Tensor) float64 {
	n := x.Len()
	b.enter()
	defer b.leave()
	b.launchS(kSum, i64(n), addr(x), dptr(b.scratch.ptr))
	return b.readScalar("Sum")
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// Gemm sets C = alpha·op(A)·op(B) + beta·C (row-major). With cuBLAS the
// row-major product is computed as the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ:
// a row-major X is its transpose in column-major order with the same
// leading dimension, so the operands swap and keep their transposition
// flags.
func (b *Backend) Gemm(transA, transB bool, alpha float64, a, bb *native.Tensor, beta float64, c *native.Tensor) {
	m, n, k := native.CheckGemm(transA, transB, a, bb, c)
	if m == 0 || n == 0 {
		return
	}
	b.enter()
	defer b.leave()
	b.gemmAt(transA, transB, m, n, k, alpha, addr(a), a.Cols(), addr(bb), bb.Cols(), beta, addr(c), n)
}

// gemmAt is Gemm on device addresses with leading dimensions (row-major,
// m, n > 0), with the context current: cuBLAS when loaded, else
// lrmf_k_gemm.
func (b *Backend) gemmAt(transA, transB bool, m, n, k int, alpha float64, pa uint64, lda int, pb uint64, ldb int, beta float64, pc uint64, ldc int) {
	if b.blas != nil && !b.useKernel && k > 0 && max(m, n, k, lda, ldb, ldc) <= 1<<31-1 {
		b.stats.Gemms++
		st := C.lrmf_cublas_sgemm(b.blas, C.int(boolInt(transB)), C.int(boolInt(transA)),
			C.int(n), C.int(m), C.int(k), C.float(alpha),
			C.uintptr_t(pb), C.int(ldb), C.uintptr_t(pa), C.int(lda),
			C.float(beta), C.uintptr_t(pc), C.int(ldc))
		if st != 0 {
			panic(fmt.Sprintf("native: cuda: Gemm(m=%d, n=%d, k=%d): cublasSgemm_v2 returned status %d", m, n, k, int(st)))
		}
		return
	}
	// The kernel's blocks stride over tiles, so a capped grid is correct.
	gx, gy := (n+tileGemm-1)/tileGemm, min((m+tileGemm-1)/tileGemm, maxGridYZ)
	b.launch(kGemm, gx, gy, tileGemm, tileGemm,
		i64(boolInt(transA)), i64(boolInt(transB)), i64(m), i64(n), i64(k),
		f64(alpha), pa, i64(lda), pb, i64(ldb), f64(beta), pc, i64(ldc))
}

// BiasAdd sets y[i,j] += bias[j].
func (b *Backend) BiasAdd(y, bias *native.Tensor) {
	n, d := native.CheckBiasAdd(y, bias)
	b.runR(kBiasAdd, n*d, i64(n), i64(d), addr(bias), addr(y))
}

// BiasGrad sets db[j] = Σ_i dy[i,j].
func (b *Backend) BiasGrad(db, dy *native.Tensor) {
	n, d := native.CheckBiasGrad(db, dy)
	b.runC(kBiasGrad, d, i64(n), i64(d), addr(dy), addr(db))
}

// ReLU sets y = max(x, 0).
func (b *Backend) ReLU(y, x *native.Tensor) {
	n := native.CheckReLU(y, x)
	b.runR(kReLUFwd, n, i64(n), addr(x), addr(y))
}

// ReLUBackward sets dx = dy·[x > 0].
func (b *Backend) ReLUBackward(dx, x, dy *native.Tensor) {
	n := native.CheckReLUBackward(dx, x, dy)
	b.runR(kReLUBwd, n, i64(n), addr(x), addr(dy), addr(dx))
}

// Tanh sets y = tanh(x).
func (b *Backend) Tanh(y, x *native.Tensor) {
	n := native.CheckTanh(y, x)
	b.runR(kTanhFwd, n, i64(n), addr(x), addr(y))
}

// TanhBackward sets dx = dy·(1 − y²).
func (b *Backend) TanhBackward(dx, y, dy *native.Tensor) {
	n := native.CheckTanhBackward(dx, y, dy)
	b.runR(kTanhBwd, n, i64(n), addr(y), addr(dy), addr(dx))
}

// GaussLogProb evaluates the Gaussian log-density of each row of x.
func (b *Backend) GaussLogProb(logp, u, x, mu, l *native.Tensor, logdetL float64) {
	n, d := native.CheckGaussLogProb(logp, u, x, mu, l)
	b.runR(kGaussLogp, n, i64(n), i64(d), addr(x), addr(mu), addr(l), f64(logdetL), addr(u), addr(logp))
}

// GaussBackward is the vector-Jacobian product of GaussLogProb.
func (b *Backend) GaussBackward(dx, dmu, dl, x, mu, l, u, dlogp *native.Tensor) {
	n, d := native.CheckGaussBackward(dx, dmu, dl, x, mu, l, u, dlogp)
	b.enter()
	defer b.leave()
	if dx != nil {
		b.launchR(kGaussBwdDx, n, i64(n), i64(d), addr(l), addr(u), addr(dlogp), addr(dx))
	}
	b.launchC(kGaussBwdParams, d+d*d, i64(n), i64(d), addr(x), addr(mu), addr(l), addr(u), addr(dlogp), addr(dmu), addr(dl))
}

// LogDetAcc sets logdet[i] += Σ_j s[i,j].
func (b *Backend) LogDetAcc(logdet, s *native.Tensor) {
	n, d := native.CheckLogDetAcc(logdet, s)
	b.runR(kLogdetAcc, n, i64(n), i64(d), addr(s), addr(logdet))
}

// AffineForward sets y_i = M x_i + b and, when logdet is not nil,
// logdet[i] += ldm.
func (b *Backend) AffineForward(y, logdet, x, m, bias *native.Tensor, ldm float64) {
	n, d := native.CheckAffineForward(y, logdet, x, m, bias)
	b.runR(kAffineFwd, n, i64(n), i64(d), addr(x), addr(m), addr(bias), f64(ldm), addr(y), addr(logdet))
}

// AffineInverse sets x_i = Minv (y_i − b).
func (b *Backend) AffineInverse(x, y, minv, bias *native.Tensor) {
	n, d := native.CheckAffineInverse(x, y, minv, bias)
	b.runR(kAffineInv, n, i64(n), i64(d), addr(y), addr(minv), addr(bias), addr(x))
}

// Adam applies one Adam step.
func (b *Backend) Adam(p, g, m, v *native.Tensor, h native.AdamHyper) {
	n := native.CheckAdam(p, g, m, v)
	b.runR(kAdam, n, i64(n), addr(p), addr(g), addr(m), addr(v),
		f64(h.LR), f64(h.Beta1), f64(h.Beta2), f64(h.Eps), f64(h.BC1), f64(h.BC2))
}

// GatherRows sets dst[i,:] = src[idx[i],:]. idx is copied to a device
// buffer that is kept and reused.
func (b *Backend) GatherRows(dst, src *native.Tensor, idx []int32) {
	n, d := native.CheckGatherRows(dst, src, idx)
	if n == 0 {
		return
	}
	b.enter()
	defer b.leave()
	if need := 4 * int64(n); need > b.idxBytes {
		buf, err := b.newBuffer(need)
		b.must("GatherRows: cuMemAlloc", err)
		b.idx, b.idxBytes = buf, classSize(need)
	}
	b.stats.Copies++
	b.must("GatherRows: cuMemcpyHtoDAsync", cu.MemcpyHtoDAsync(b.idx.ptr, unsafe.Pointer(&idx[0]), 4*int64(n), b.stream))
	b.launchR(kGatherRows, n*d, i64(n), i64(d), addr(src), dptr(b.idx.ptr), addr(dst))
}

// BiasReLU sets y = max(y + bias, 0) in place.
func (b *Backend) BiasReLU(y, bias *native.Tensor) {
	n, d := native.CheckBiasReLU(y, bias)
	b.runR(kBiasReLUFwd, n*d, i64(n), i64(d), addr(bias), addr(y))
}

// BiasReLUBackward sets dz = dy·[y > 0] and db = Σ_i dz[i,:].
func (b *Backend) BiasReLUBackward(dz, db, y, dy *native.Tensor) {
	n, d := native.CheckBiasReLUBackward(dz, db, y, dy)
	b.enter()
	defer b.leave()
	b.launchR(kBiasReLUBwdDz, n*d, i64(n), i64(d), addr(y), addr(dy), addr(dz))
	b.launchC(kBiasGrad, d, i64(n), i64(d), addr(dz), addr(db))
}

// CopyCols sets dst = src[:, c0:c0+k].
func (b *Backend) CopyCols(dst, src *native.Tensor, c0 int) {
	n, d, k := native.CheckCopyCols(dst, src, c0)
	b.runR(kCopyCols, n*k, i64(n), i64(d), i64(c0), i64(k), addr(src), addr(dst))
}

// AddCols sets dst[:, c0:c0+k] += src.
func (b *Backend) AddCols(dst, src *native.Tensor, c0 int) {
	n, d, k := native.CheckAddCols(dst, src, c0)
	b.runR(kAddCols, n*k, i64(n), i64(d), i64(c0), i64(k), addr(src), addr(dst))
}

// CouplingForward applies an affine coupling to columns [t0, t0+dt) of x.
func (b *Backend) CouplingForward(y, logdet, x, h *native.Tensor, t0 int, sc native.Scale) {
	n, d, dt := native.CheckCouplingForward(y, logdet, x, h, t0, sc)
	b.runR(kCouplingFwd, n, i64(n), i64(d), i64(t0), i64(dt), i64(int(sc.Kind)), f64(sc.Bound),
		addr(x), addr(h), addr(y), addr(logdet))
}

// CouplingInverse inverts CouplingForward.
func (b *Backend) CouplingInverse(x, y, h *native.Tensor, t0 int, sc native.Scale) {
	n, d, dt := native.CheckCouplingInverse(x, y, h, t0, sc)
	b.runR(kCouplingInv, n, i64(n), i64(d), i64(t0), i64(dt), i64(int(sc.Kind)), f64(sc.Bound),
		addr(y), addr(h), addr(x))
}

// CouplingBackward is the vector-Jacobian product of CouplingForward.
func (b *Backend) CouplingBackward(dx, dh, x, h, dy, dlogdet *native.Tensor, t0 int, sc native.Scale) {
	n, d, dt := native.CheckCouplingBackward(dx, dh, x, h, dy, dlogdet, t0, sc)
	b.runR(kCouplingBwd, n, i64(n), i64(d), i64(t0), i64(dt), i64(int(sc.Kind)), f64(sc.Bound),
		addr(x), addr(h), addr(dy), addr(dlogdet), addr(dx), addr(dh))
}

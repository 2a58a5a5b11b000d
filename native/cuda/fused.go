//go:build cuda

package cuda

import (
	"unsafe"

	"gorgonia.org/cu"

	"github.com/lrmf-go/lrmf/native"
)

// GemmEx is Gemm on column windows with an epilogue: the product (cuBLAS
// or lrmf_k_gemm, with the windows' addresses and the tensors' row lengths
// as leading dimensions, so nothing is copied), then lrmf_k_gemm_epi for
// bias, ReLU and mask, then lrmf_k_col_sum for the column sums.
func (b *Backend) GemmEx(transA, transB bool, alpha float64, a *native.Tensor, a0 int, bb *native.Tensor, beta float64, c *native.Tensor, c0 int, ep native.Epilogue) {
	m, n, k := native.CheckGemmEx(transA, transB, a, a0, bb, c, c0, ep)
	if n == 0 {
		return
	}
	pc, ldc := addr(c)+4*uint64(c0), c.Cols()
	b.enter()
	defer b.leave()
	if m > 0 {
		b.gemmAt(transA, transB, m, n, k, alpha, addr(a)+4*uint64(a0), a.Cols(), addr(bb), bb.Cols(), beta, pc, ldc)
		if ep.Bias != nil || ep.ReLU || ep.Mask != nil {
			b.launchR(kGemmEpi, m*n, i64(m), i64(n), addr(ep.Bias), i64(boolInt(ep.ReLU)), addr(ep.Mask), pc, i64(ldc))
		}
	}
	if ep.ColSum != nil {
		b.launchC(kColSum, n, i64(m), i64(n), pc, i64(ldc), addr(ep.ColSum))
	}
}

// segState holds SumSquares' device buffers, grown as needed and kept: the
// segment ends (int64) and the per-segment results (float64).
type segState struct {
	ends, out *buffer
	bytes     int64 // capacity of each, in bytes
}

// SumSquares sets out[s] = Σ x_j² over each segment with one launch
// (lrmf_k_sum_squares, one block per segment) and one read-back for all
// segments: the gradient norms of a whole parameter arena cost one host
// synchronisation instead of one per parameter.
func (b *Backend) SumSquares(out []float64, x *native.Tensor, ends []int64) {
	native.CheckSumSquares(out, x, ends)
	ns := len(ends)
	if ns == 0 {
		return
	}
	b.enter()
	defer b.leave()
	if need := 8 * int64(ns); need > b.seg.bytes {
		e, err := b.newBuffer(need)
		b.must("SumSquares: cuMemAlloc", err)
		o, err := b.newBuffer(need)
		b.must("SumSquares: cuMemAlloc", err)
		b.seg = segState{ends: e, out: o, bytes: classSize(need)}
	}
	b.stats.Copies++
	b.must("SumSquares: cuMemcpyHtoDAsync", cu.MemcpyHtoDAsync(b.seg.ends.ptr, unsafe.Pointer(&ends[0]), 8*int64(ns), b.stream))
	b.launchC(kSumSquares, ns, i64(ns), dptr(b.seg.ends.ptr), addr(x), dptr(b.seg.out.ptr))
	b.stats.Copies++
	b.stats.Syncs++
	// Into pageable memory: returns once the copy (and so the kernel) is done.
	b.must("SumSquares: cuMemcpyDtoHAsync", cu.MemcpyDtoHAsync(unsafe.Pointer(&out[0]), b.seg.out.ptr, 8*int64(ns), b.stream))
}

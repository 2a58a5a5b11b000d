//go:build cuda

package cuda

import (
	"unsafe"

	"gorgonia.org/cu"

	"github.com/lrmf-go/lrmf/native"
)

// Glow's vector layers: ActNorm and the LU layer's inverse (lrmf_k_actnorm_*,
// lrmf_k_lu_solve).

// ActNormForward sets y = (x + b)·s(r) and logdet[i] += Σ_j ln s_j.
func (b *Backend) ActNormForward(y, logdet, x, r, bias *native.Tensor, kind native.ActNormKind) {
	n, d := native.CheckActNormForward(y, logdet, x, r, bias, kind)
	b.runR(kActnormFwd, n, i64(n), i64(d), i64(int(kind)), addr(x), addr(r), addr(bias), addr(y), addr(logdet))
}

// ActNormInverse sets x = y/s(r) − b.
func (b *Backend) ActNormInverse(x, y, r, bias *native.Tensor, kind native.ActNormKind) {
	n, d := native.CheckActNormInverse(x, y, r, bias, kind)
	b.runR(kActnormInv, n, i64(n), i64(d), i64(int(kind)), addr(y), addr(r), addr(bias), addr(x))
}

// ActNormBackward is the vector-Jacobian product of ActNormForward: the
// parameter sums first (they read dy, which dx may overwrite), then dx.
func (b *Backend) ActNormBackward(dx, dr, db, x, r, bias, dy, dlogdet *native.Tensor, kind native.ActNormKind) {
	n, d := native.CheckActNormBackward(dx, dr, db, x, r, bias, dy, dlogdet, kind)
	b.enter()
	defer b.leave()
	b.launchC(kActnormBwdParams, d, i64(n), i64(d), i64(int(kind)), addr(x), addr(r), addr(bias), addr(dy),
		addr(dlogdet), addr(dr), addr(db))
	if dx != nil {
		b.launchR(kActnormBwdDx, n*d, i64(n), i64(d), i64(int(kind)), addr(r), addr(dy), addr(dx))
	}
}

// LUSolve sets x_i = U⁻¹L⁻¹Pᵀy_i. perm is copied to the device buffer of
// GatherRows' indices (stream order keeps an earlier launch's indices
// intact until it has run).
func (b *Backend) LUSolve(x, y, lu *native.Tensor, perm []int32) {
	n, d := native.CheckLUSolve(x, y, lu, perm)
	if n == 0 || d == 0 {
		return
	}
	b.enter()
	defer b.leave()
	if need := 4 * int64(d); need > b.idxBytes {
		buf, err := b.newBuffer(need)
		b.must("LUSolve: cuMemAlloc", err)
		b.idx, b.idxBytes = buf, classSize(need)
	}
	b.stats.Copies++
	b.must("LUSolve: cuMemcpyHtoDAsync", cu.MemcpyHtoDAsync(b.idx.ptr, unsafe.Pointer(&perm[0]), 4*int64(d), b.stream))
	b.launchR(kLuSolve, n, i64(n), i64(d), addr(lu), dptr(b.idx.ptr), addr(y), addr(x))
}

//go:build cuda

package cuda

import (
	"fmt"

	"github.com/lrmf-go/lrmf/native"
)

// Shape checks, copied from package native (where they are unexported) with
// the same panic messages, so a shape bug reads the same on every backend.

func mustShape(op, name string, t *native.Tensor, rows, cols int) {
	if t == nil {
		panic(fmt.Sprintf("native: %s: %s is nil", op, name))
	}
	if t.Rows() != rows || t.Cols() != cols {
		panic(fmt.Sprintf("native: %s: %s is %d×%d, want %d×%d", op, name, t.Rows(), t.Cols(), rows, cols))
	}
}

func mustLen(op, name string, t *native.Tensor, n int) {
	if t == nil {
		panic(fmt.Sprintf("native: %s: %s is nil", op, name))
	}
	if t.Len() != n {
		panic(fmt.Sprintf("native: %s: %s has %d elements, want %d", op, name, t.Len(), n))
	}
}

// gemmDims returns m, n, k of C = op(A)·op(B) after checking the shapes.
func gemmDims(transA, transB bool, a, b, c *native.Tensor) (m, n, k int) {
	m, k = a.Rows(), a.Cols()
	if transA {
		m, k = k, m
	}
	kb, n := b.Rows(), b.Cols()
	if transB {
		kb, n = n, kb
	}
	if k != kb {
		panic(fmt.Sprintf("native: Gemm: inner dimensions differ: op(A) is %d×%d, op(B) is %d×%d", m, k, kb, n))
	}
	mustShape("Gemm", "C", c, m, n)
	return m, n, k
}

// checkGauss validates GaussLogProb/GaussBackward shapes and returns n, d.
func checkGauss(op string, x, mu, l, u *native.Tensor) (n, d int) {
	n, d = x.Rows(), x.Cols()
	mustLen(op, "mu", mu, d)
	mustShape(op, "L", l, d, d)
	mustShape(op, "u", u, n, d)
	return n, d
}

func checkGather(dst, src *native.Tensor, idx []int32) {
	mustShape("GatherRows", "dst", dst, len(idx), src.Cols())
	for i, j := range idx {
		if j < 0 || int(j) >= src.Rows() {
			panic(fmt.Sprintf("native: GatherRows: idx[%d] = %d outside [0, %d)", i, j, src.Rows()))
		}
	}
}

// checkCols validates CopyCols/AddCols: wide is n×D, narrow n×k, and
// columns [c0, c0+k) lie inside [0, D). It returns n, D, k.
func checkCols(op string, wide, narrow *native.Tensor, c0 int) (n, d, k int) {
	if wide == nil || narrow == nil {
		panic(fmt.Sprintf("native: %s: nil tensor", op))
	}
	n, d, k = wide.Rows(), wide.Cols(), narrow.Cols()
	if narrow.Rows() != n {
		panic(fmt.Sprintf("native: %s: %d rows and %d rows", op, narrow.Rows(), n))
	}
	if c0 < 0 || c0 > d-k {
		panic(fmt.Sprintf("native: %s: columns [%d, %d) outside a %d-column tensor", op, c0, c0+k, d))
	}
	return n, d, k
}

// checkScale panics on an unknown kind or a non-positive exp bound.
func checkScale(op string, sc native.Scale) {
	switch {
	case sc.Kind == native.ScaleExp && !(sc.Bound > 0):
		panic(fmt.Sprintf("native: %s: exp scale bound %v, want > 0", op, sc.Bound))
	case sc.Kind != native.ScaleExp && sc.Kind != native.ScaleSigmoid:
		panic(fmt.Sprintf("native: %s: unknown scale kind %d", op, uint8(sc.Kind)))
	}
}

// checkCoupling validates the shared coupling arguments: x (or y) is n×D,
// h is n×2dt with [t0, t0+dt) inside [0, D), and sc is valid. It returns
// n, D, dt.
func checkCoupling(op string, x, h *native.Tensor, t0 int, sc native.Scale) (n, d, dt int) {
	checkScale(op, sc)
	if x == nil || h == nil {
		panic(fmt.Sprintf("native: %s: nil tensor", op))
	}
	n, d = x.Rows(), x.Cols()
	if h.Cols()%2 != 0 {
		panic(fmt.Sprintf("native: %s: h has %d columns, want an even number [μ | r]", op, h.Cols()))
	}
	dt = h.Cols() / 2
	mustShape(op, "h", h, n, 2*dt)
	if t0 < 0 || t0 > d-dt {
		panic(fmt.Sprintf("native: %s: transformed columns [%d, %d) outside a %d-column tensor", op, t0, t0+dt, d))
	}
	return n, d, dt
}

func viewBounds(t *native.Tensor, lo, hi int) {
	if lo < 0 || hi < lo || hi > t.Rows() {
		panic(fmt.Sprintf("native: View: rows [%d, %d) outside a %d-row tensor", lo, hi, t.Rows()))
	}
}

func mustLenSlice(op string, got, want int) {
	if got != want {
		panic(fmt.Sprintf("native: %s: slice has %d elements, tensor %d", op, got, want))
	}
}

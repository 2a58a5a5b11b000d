package native

import "fmt"

// Argument contracts of the Backend operations.
//
// Each operation's shape contract is written once, here, as a Check
// function named after the operation; every backend (ref, cpu, native/cuda)
// calls it first with its own arguments, so a shape bug panics with the
// same message on every backend. A Check function panics ("native: Op:
// ...") on a mismatch, which is a bug in the caller and never a property
// of the data, and returns the sizes the kernel needs. The maths of each
// operation is on its Backend method; the contracts of the optional
// families are beside their interfaces (ode.go, gmm.go). Fill and Sum
// accept any Tensor and have none.
//
// Shapes: "n×d" names rows×cols; "a vector of d" is any Tensor of Len d.
// An optional output (nil to skip) is checked only when it is not nil.

// CheckNew checks the shape of a new rows×cols Tensor (Backend.New,
// NewTensor): rows, cols ≥ 0.
func CheckNew(rows, cols int) {
	if rows < 0 || cols < 0 {
		panic(fmt.Sprintf("native: NewTensor: negative shape %d×%d", rows, cols))
	}
}

// CheckView checks Backend.View: 0 ≤ lo ≤ hi ≤ t.Rows().
func CheckView(t *Tensor, lo, hi int) {
	if lo < 0 || hi < lo || hi > t.rows {
		panic(fmt.Sprintf("native: View: rows [%d, %d) outside a %d-row tensor", lo, hi, t.rows))
	}
}

// CheckUpload checks Backend.Upload: len(src) = t.Len().
func CheckUpload(t *Tensor, src []float64) { mustLenSlice("Upload", len(src), t.Len()) }

// CheckDownload checks Backend.Download: len(dst) = t.Len().
func CheckDownload(dst []float64, t *Tensor) { mustLenSlice("Download", len(dst), t.Len()) }

// CheckCopy checks Backend.Copy: dst has src's shape. It returns src.Len().
func CheckCopy(dst, src *Tensor) (n int) {
	mustShape("Copy", "dst", dst, src.rows, src.cols)
	return src.Len()
}

// CheckAxpy checks Backend.Axpy (y += alpha·x): y has x's Len n, which it
// returns.
func CheckAxpy(x, y *Tensor) (n int) {
	mustLen("Axpy", "y", y, x.Len())
	return x.Len()
}

// CheckMul checks Backend.Mul (out = a⊙b): b and out have a's shape r×w.
// It returns a.Len() = r·w.
func CheckMul(out, a, b *Tensor) (n int) {
	mustShape("Mul", "b", b, a.rows, a.cols)
	mustShape("Mul", "out", out, a.rows, a.cols)
	return a.Len()
}

// CheckDot checks Backend.Dot (Σ x_i y_i): y has x's Len n, which it
// returns.
func CheckDot(x, y *Tensor) (n int) {
	mustLen("Dot", "y", y, x.Len())
	return x.Len()
}

// CheckGemm checks Backend.Gemm (C = alpha·op(A)·op(B) + beta·C): op(A) is
// m×k, op(B) k×n and C m×n, with op(X) = Xᵀ when transX. It returns m, n, k.
func CheckGemm(transA, transB bool, a, b, c *Tensor) (m, n, k int) {
	m, k = a.rows, a.cols
	if transA {
		m, k = k, m
	}
	kb, n := b.rows, b.cols
	if transB {
		kb, n = n, kb
	}
	if k != kb {
		panic(fmt.Sprintf("native: Gemm: inner dimensions differ: op(A) is %d×%d, op(B) is %d×%d", m, k, kb, n))
	}
	mustShape("Gemm", "C", c, m, n)
	return m, n, k
}

// CheckReshape checks Reshape: rows, cols ≥ 0 and rows·cols = t.Len().
func CheckReshape(t *Tensor, rows, cols int) {
	CheckNew(rows, cols)
	if rows*cols != t.Len() {
		panic(fmt.Sprintf("native: Reshape: %v has %d elements, not %d×%d", t, t.Len(), rows, cols))
	}
}

// CheckGemmEx checks Backend.GemmEx: op(B) is k×n; C has m rows and the
// window [c0, c0+n) inside its columns; A has m rows and the window
// [a0, a0+k) (k rows and [a0, a0+m) when transA); ep's Bias and ColSum are
// vectors of n, its Mask m×n. It returns m, n, k.
func CheckGemmEx(transA, transB bool, a *Tensor, a0 int, b, c *Tensor, c0 int, ep Epilogue) (m, n, k int) {
	const op = "GemmEx"
	k, n = b.rows, b.cols
	if transB {
		k, n = n, k
	}
	m = c.rows
	ar, aw := m, k // A's rows and window width
	if transA {
		ar, aw = k, m
	}
	if a.rows != ar {
		panic(fmt.Sprintf("native: %s: A is %d×%d, want %d rows (op(B) is %d×%d, C has %d rows, transA=%v)", op, a.rows, a.cols, ar, k, n, m, transA))
	}
	mustWindow(op, "A", a, a0, aw)
	mustWindow(op, "C", c, c0, n)
	if ep.Bias != nil {
		mustLen(op, "bias", ep.Bias, n)
	}
	if ep.Mask != nil {
		mustShape(op, "mask", ep.Mask, m, n)
	}
	if ep.ColSum != nil {
		mustLen(op, "colsum", ep.ColSum, n)
	}
	return m, n, k
}

// mustWindow panics unless the columns [c0, c0+w) lie inside t's.
func mustWindow(op, name string, t *Tensor, c0, w int) {
	if c0 < 0 || w > t.cols || c0 > t.cols-w {
		panic(fmt.Sprintf("native: %s: columns [%d, %d) of %s outside its %d", op, c0, c0+w, name, t.cols))
	}
}

// CheckSumSquares checks Backend.SumSquares: len(out) = len(ends), ends
// nonnegative and nondecreasing, the last at most x.Len().
func CheckSumSquares(out []float64, x *Tensor, ends []int64) {
	const op = "SumSquares"
	if len(out) != len(ends) {
		panic(fmt.Sprintf("native: %s: len(out) = %d, len(ends) = %d", op, len(out), len(ends)))
	}
	prev := int64(0)
	for s, e := range ends {
		if e < prev {
			panic(fmt.Sprintf("native: %s: ends[%d] = %d < %d: segments must be nonnegative and in order", op, s, e, prev))
		}
		prev = e
	}
	if prev > int64(x.Len()) {
		panic(fmt.Sprintf("native: %s: segments end at %d, past %v", op, prev, x))
	}
}

// CheckBiasAdd checks Backend.BiasAdd (y[i,j] += bias[j]): y is n×d, bias
// a vector of d. It returns n, d.
func CheckBiasAdd(y, bias *Tensor) (n, d int) {
	mustLen("BiasAdd", "bias", bias, y.cols)
	return y.rows, y.cols
}

// CheckBiasGrad checks Backend.BiasGrad (db[j] = Σ_i dy[i,j]): dy is n×d,
// db a vector of d. It returns n, d.
func CheckBiasGrad(db, dy *Tensor) (n, d int) {
	mustLen("BiasGrad", "db", db, dy.cols)
	return dy.rows, dy.cols
}

// CheckReLU checks Backend.ReLU (y = max(x, 0)): y has x's Len n, which it
// returns.
func CheckReLU(y, x *Tensor) (n int) {
	mustLen("ReLU", "y", y, x.Len())
	return x.Len()
}

// CheckReLUBackward checks Backend.ReLUBackward (dx = dy·[x > 0]): dy and
// dx have x's Len n, which it returns.
func CheckReLUBackward(dx, x, dy *Tensor) (n int) {
	mustLen("ReLUBackward", "dy", dy, x.Len())
	mustLen("ReLUBackward", "dx", dx, x.Len())
	return x.Len()
}

// CheckTanh checks Backend.Tanh (y = tanh(x)): y has x's Len n, which it
// returns.
func CheckTanh(y, x *Tensor) (n int) {
	mustLen("Tanh", "y", y, x.Len())
	return x.Len()
}

// CheckTanhBackward checks Backend.TanhBackward (dx = dy·(1 − y²)): dy and
// dx have y's Len n, which it returns.
func CheckTanhBackward(dx, y, dy *Tensor) (n int) {
	mustLen("TanhBackward", "dy", dy, y.Len())
	mustLen("TanhBackward", "dx", dx, y.Len())
	return y.Len()
}

// checkGauss checks the arguments the two Gaussian operations share: x and
// u are n×d, mu a vector of d, L d×d. It returns n, d.
func checkGauss(op string, x, mu, l, u *Tensor) (n, d int) {
	n, d = x.rows, x.cols
	mustLen(op, "mu", mu, d)
	mustShape(op, "L", l, d, d)
	mustShape(op, "u", u, n, d)
	return n, d
}

// CheckGaussLogProb checks Backend.GaussLogProb (u_i = L(x_i − mu),
// logp_i = −(d/2) ln 2π + logdetL − ½‖u_i‖²): x and u are n×d, mu a vector
// of d, L d×d, logp a vector of n. It returns n, d.
func CheckGaussLogProb(logp, u, x, mu, l *Tensor) (n, d int) {
	const op = "GaussLogProb"
	n, d = checkGauss(op, x, mu, l, u)
	mustLen(op, "logp", logp, n)
	return n, d
}

// CheckGaussBackward checks Backend.GaussBackward: x, u and dx (or nil) are
// n×d, mu and dmu vectors of d, L and dl d×d, dlogp a vector of n. It
// returns n, d.
func CheckGaussBackward(dx, dmu, dl, x, mu, l, u, dlogp *Tensor) (n, d int) {
	const op = "GaussBackward"
	n, d = checkGauss(op, x, mu, l, u)
	mustLen(op, "dlogp", dlogp, n)
	mustLen(op, "dmu", dmu, d)
	mustShape(op, "dl", dl, d, d)
	if dx != nil {
		mustShape(op, "dx", dx, n, d)
	}
	return n, d
}

// CheckLogDetAcc checks Backend.LogDetAcc (logdet[i] += Σ_j s[i,j]): s is
// n×d, logdet a vector of n. It returns n, d.
func CheckLogDetAcc(logdet, s *Tensor) (n, d int) {
	mustLen("LogDetAcc", "logdet", logdet, s.rows)
	return s.rows, s.cols
}

// CheckAffineForward checks Backend.AffineForward (y_i = M x_i + b,
// logdet[i] += ldm): x and y are n×d, M d×d, b a vector of d, logdet (or
// nil) a vector of n. It returns n, d.
func CheckAffineForward(y, logdet, x, m, b *Tensor) (n, d int) {
	const op = "AffineForward"
	n, d = x.rows, x.cols
	mustShape(op, "y", y, n, d)
	mustShape(op, "M", m, d, d)
	mustLen(op, "b", b, d)
	if logdet != nil {
		mustLen(op, "logdet", logdet, n)
	}
	return n, d
}

// CheckAffineInverse checks Backend.AffineInverse (x_i = Minv (y_i − b)):
// y and x are n×d, Minv d×d, b a vector of d. It returns n, d.
func CheckAffineInverse(x, y, minv, b *Tensor) (n, d int) {
	const op = "AffineInverse"
	n, d = y.rows, y.cols
	mustShape(op, "x", x, n, d)
	mustShape(op, "Minv", minv, d, d)
	mustLen(op, "b", b, d)
	return n, d
}

// CheckAdam checks Backend.Adam: g, m and v have p's Len n, which it
// returns.
func CheckAdam(p, g, m, v *Tensor) (n int) {
	n = p.Len()
	mustLen("Adam", "g", g, n)
	mustLen("Adam", "m", m, n)
	mustLen("Adam", "v", v, n)
	return n
}

// CheckGatherRows checks Backend.GatherRows (dst[i,:] = src[idx[i],:]):
// src is N×d, dst n×d with n = len(idx), every idx in [0, N). It returns
// n, d.
func CheckGatherRows(dst, src *Tensor, idx []int32) (n, d int) {
	mustShape("GatherRows", "dst", dst, len(idx), src.cols)
	for i, j := range idx {
		if j < 0 || int(j) >= src.rows {
			panic(fmt.Sprintf("native: GatherRows: idx[%d] = %d outside [0, %d)", i, j, src.rows))
		}
	}
	return len(idx), src.cols
}

// CheckBiasReLU checks Backend.BiasReLU (y = max(y + bias, 0)): y is n×d,
// bias a vector of d. It returns n, d.
func CheckBiasReLU(y, bias *Tensor) (n, d int) {
	mustLen("BiasReLU", "bias", bias, y.cols)
	return y.rows, y.cols
}

// CheckBiasReLUBackward checks Backend.BiasReLUBackward (dz = dy·[y > 0],
// db = Σ_i dz[i,:]): y, dy and dz are n×d, db a vector of d. It returns
// n, d.
func CheckBiasReLUBackward(dz, db, y, dy *Tensor) (n, d int) {
	const op = "BiasReLUBackward"
	n, d = y.rows, y.cols
	mustShape(op, "dy", dy, n, d)
	mustShape(op, "dz", dz, n, d)
	mustLen(op, "db", db, d)
	return n, d
}

// checkCols checks CopyCols/AddCols: wide is n×D, narrow n×k, and columns
// [c0, c0+k) lie inside [0, D). It returns n, D, k.
func checkCols(op string, wide, narrow *Tensor, c0 int) (n, d, k int) {
	if wide == nil || narrow == nil {
		panic(fmt.Sprintf("native: %s: nil tensor", op))
	}
	n, d, k = wide.rows, wide.cols, narrow.cols
	if narrow.rows != n {
		panic(fmt.Sprintf("native: %s: %d rows and %d rows", op, narrow.rows, n))
	}
	if c0 < 0 || c0 > d-k {
		panic(fmt.Sprintf("native: %s: columns [%d, %d) outside a %d-column tensor", op, c0, c0+k, d))
	}
	return n, d, k
}

// CheckCopyCols checks Backend.CopyCols (dst = src[:, c0:c0+k]): src is
// n×D, dst n×k, 0 ≤ c0 ≤ D−k. It returns n, D, k.
func CheckCopyCols(dst, src *Tensor, c0 int) (n, d, k int) {
	return checkCols("CopyCols", src, dst, c0)
}

// CheckAddCols checks Backend.AddCols (dst[:, c0:c0+k] += src): src is
// n×k, dst n×D, 0 ≤ c0 ≤ D−k. It returns n, D, k.
func CheckAddCols(dst, src *Tensor, c0 int) (n, d, k int) {
	return checkCols("AddCols", dst, src, c0)
}

// checkScale panics on an unknown kind or a non-positive exp bound.
func checkScale(op string, sc Scale) {
	switch {
	case sc.Kind == ScaleExp && !(sc.Bound > 0):
		panic(fmt.Sprintf("native: %s: exp scale bound %v, want > 0", op, sc.Bound))
	case sc.Kind != ScaleExp && sc.Kind != ScaleSigmoid:
		panic(fmt.Sprintf("native: %s: unknown scale kind %d", op, uint8(sc.Kind)))
	}
}

// checkCoupling checks the arguments the coupling operations share: sc is
// a valid scale, x (or y) is n×D, h is n×2dt with [t0, t0+dt) inside
// [0, D). It returns n, D, dt.
func checkCoupling(op string, x, h *Tensor, t0 int, sc Scale) (n, d, dt int) {
	checkScale(op, sc)
	if x == nil || h == nil {
		panic(fmt.Sprintf("native: %s: nil tensor", op))
	}
	n, d = x.rows, x.cols
	if h.cols%2 != 0 {
		panic(fmt.Sprintf("native: %s: h has %d columns, want an even number [μ | r]", op, h.cols))
	}
	dt = h.cols / 2
	mustShape(op, "h", h, n, 2*dt)
	if t0 < 0 || t0 > d-dt {
		panic(fmt.Sprintf("native: %s: transformed columns [%d, %d) outside a %d-column tensor", op, t0, t0+dt, d))
	}
	return n, d, dt
}

// CheckCouplingForward checks Backend.CouplingForward (y_t = x_t ⊙ s(r) +
// μ on the columns [t0, t0+dt), y = x elsewhere, logdet[i] += Σ_j ln s(r_ij)):
// sc is ScaleExp with Bound > 0 or ScaleSigmoid; x and y are n×D; h = [μ | r]
// is n×2dt with 0 ≤ t0 ≤ D−dt; logdet (or nil) is a vector of n. It returns
// n, D, dt.
func CheckCouplingForward(y, logdet, x, h *Tensor, t0 int, sc Scale) (n, d, dt int) {
	const op = "CouplingForward"
	n, d, dt = checkCoupling(op, x, h, t0, sc)
	mustShape(op, "y", y, n, d)
	if logdet != nil {
		mustLen(op, "logdet", logdet, n)
	}
	return n, d, dt
}

// CheckCouplingInverse checks Backend.CouplingInverse (x_t = (y_t − μ) /
// s(r), x = y elsewhere): sc as for CheckCouplingForward; y and x are n×D;
// h is n×2dt with 0 ≤ t0 ≤ D−dt. It returns n, D, dt.
func CheckCouplingInverse(x, y, h *Tensor, t0 int, sc Scale) (n, d, dt int) {
	const op = "CouplingInverse"
	n, d, dt = checkCoupling(op, y, h, t0, sc)
	mustShape(op, "x", x, n, d)
	return n, d, dt
}

// CheckCouplingBackward checks Backend.CouplingBackward: sc as for
// CheckCouplingForward; x, dy and dx (or nil) are n×D; h and dh are n×2dt
// with 0 ≤ t0 ≤ D−dt; dlogdet is a vector of n. It returns n, D, dt.
func CheckCouplingBackward(dx, dh, x, h, dy, dlogdet *Tensor, t0 int, sc Scale) (n, d, dt int) {
	const op = "CouplingBackward"
	n, d, dt = checkCoupling(op, x, h, t0, sc)
	mustShape(op, "dy", dy, n, d)
	mustLen(op, "dlogdet", dlogdet, n)
	mustShape(op, "dh", dh, n, 2*dt)
	if dx != nil {
		mustShape(op, "dx", dx, n, d)
	}
	return n, d, dt
}

// checkActNorm checks the arguments the ActNorm operations share: kind is
// known, x is n×D, r and b vectors of D. It returns n, D.
func checkActNorm(op string, x, r, b *Tensor, kind ActNormKind) (n, d int) {
	if kind != ActNormExp && kind != ActNormSoftplus {
		panic(fmt.Sprintf("native: %s: unknown ActNorm kind %d", op, uint8(kind)))
	}
	if x == nil {
		panic(fmt.Sprintf("native: %s: nil tensor", op))
	}
	n, d = x.rows, x.cols
	mustLen(op, "r", r, d)
	mustLen(op, "b", b, d)
	return n, d
}

// CheckActNormForward checks Backend.ActNormForward (y = (x + b)·s(r),
// logdet[i] += Σ_j ln s_j): kind is ActNormExp or ActNormSoftplus; x and y
// are n×D; r and b vectors of D; logdet (or nil) a vector of n. It returns
// n, D.
func CheckActNormForward(y, logdet, x, r, b *Tensor, kind ActNormKind) (n, d int) {
	const op = "ActNormForward"
	n, d = checkActNorm(op, x, r, b, kind)
	mustShape(op, "y", y, n, d)
	if logdet != nil {
		mustLen(op, "logdet", logdet, n)
	}
	return n, d
}

// CheckActNormInverse checks Backend.ActNormInverse (x = y/s(r) − b): kind
// as for CheckActNormForward; y and x are n×D; r and b vectors of D. It
// returns n, D.
func CheckActNormInverse(x, y, r, b *Tensor, kind ActNormKind) (n, d int) {
	const op = "ActNormInverse"
	n, d = checkActNorm(op, y, r, b, kind)
	mustShape(op, "x", x, n, d)
	return n, d
}

// CheckActNormBackward checks Backend.ActNormBackward: kind as for
// CheckActNormForward; x, dy and dx (or nil) are n×D; r, b, dr and db
// vectors of D; dlogdet (or nil) a vector of n. It returns n, D.
func CheckActNormBackward(dx, dr, db, x, r, b, dy, dlogdet *Tensor, kind ActNormKind) (n, d int) {
	const op = "ActNormBackward"
	n, d = checkActNorm(op, x, r, b, kind)
	mustShape(op, "dy", dy, n, d)
	if dlogdet != nil {
		mustLen(op, "dlogdet", dlogdet, n)
	}
	if dx != nil {
		mustShape(op, "dx", dx, n, d)
	}
	mustLen(op, "dr", dr, d)
	mustLen(op, "db", db, d)
	return n, d
}

// CheckLUSolve checks Backend.LUSolve (x_i = U⁻¹L⁻¹Pᵀy_i): y and x are n×D
// and distinct tensors, lu is D×D, perm holds D indices in [0, D) (that
// they are a permutation is the caller's to ensure). It returns n, D.
func CheckLUSolve(x, y, lu *Tensor, perm []int32) (n, d int) {
	const op = "LUSolve"
	if y == nil {
		panic("native: LUSolve: y is nil")
	}
	n, d = y.rows, y.cols
	mustShape(op, "x", x, n, d)
	mustShape(op, "lu", lu, d, d)
	if x == y {
		panic("native: LUSolve: x is y (the solve cannot run in place)")
	}
	if len(perm) != d {
		panic(fmt.Sprintf("native: LUSolve: perm has %d entries, want %d", len(perm), d))
	}
	for k, p := range perm {
		if p < 0 || int(p) >= d {
			panic(fmt.Sprintf("native: LUSolve: perm[%d] = %d outside [0, %d)", k, p, d))
		}
	}
	return n, d
}

// The building blocks of the contracts.

// mustShape panics unless t is a rows×cols Tensor.
func mustShape(op, name string, t *Tensor, rows, cols int) {
	if t == nil {
		panic(fmt.Sprintf("native: %s: %s is nil", op, name))
	}
	if t.rows != rows || t.cols != cols {
		panic(fmt.Sprintf("native: %s: %s is %d×%d, want %d×%d", op, name, t.rows, t.cols, rows, cols))
	}
}

// mustLen panics unless t is a Tensor of Len n.
func mustLen(op, name string, t *Tensor, n int) {
	if t == nil {
		panic(fmt.Sprintf("native: %s: %s is nil", op, name))
	}
	if t.Len() != n {
		panic(fmt.Sprintf("native: %s: %s has %d elements, want %d", op, name, t.Len(), n))
	}
}

// mustLenSlice panics unless a host slice of got elements matches a Tensor
// of want.
func mustLenSlice(op string, got, want int) {
	if got != want {
		panic(fmt.Sprintf("native: %s: slice has %d elements, tensor %d", op, got, want))
	}
}

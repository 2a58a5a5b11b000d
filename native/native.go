// Package native is lrmf's compute layer: a Tensor type for 2-D row-major
// arrays that live on some device, and a Backend interface whose methods are
// the kernels of csrc/include/lrmf.h expressed over Tensors.
//
// Layers above this package (package lrmf) never index host slices: they
// allocate Tensors from a Backend and call its methods, so a GPU backend can
// implement Backend without the layers changing. Three implementations exist:
//
//   - NewRef: a plain-Go float64 reference, the test oracle. Always available.
//   - NewCPU: the C kernels of csrc/cpu through package bindings (cgo), in
//     float32 or float64, parallel over row blocks with a fixed split.
//   - native/cuda (build tag cuda): the CUDA kernels of csrc/cuda.
//
// Shapes are checked on every call, by the operation's Check function
// (contract.go), which every backend calls; a mismatch is a programming
// error and panics with the operation's name, in the manner of gonum's BLAS. Numerical
// conditions (NaN, non-positive-definite matrices) are the caller's to detect.
// A Backend is not safe for concurrent use; use one per goroutine.
package native

import "fmt"

// DType is the element type of a Tensor.
type DType uint8

// Element types.
const (
	Float32 DType = iota + 1
	Float64
)

// String returns "float32" or "float64".
func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// ParseDType converts "float32" or "float64" to a DType.
func ParseDType(s string) (DType, error) {
	switch s {
	case "float32":
		return Float32, nil
	case "float64":
		return Float64, nil
	}
	return 0, fmt.Errorf("unknown dtype %q (want float32 or float64)", s)
}

// Tensor is a rows×cols row-major matrix stored on a Backend's device.
// Vectors are 1×d or n×1 Tensors; operations that take vectors check Len.
// The storage is owned by the Backend that made the Tensor and is opaque to
// everyone else: host backends keep a []float32 or []float64, a GPU backend a
// device pointer.
type Tensor struct {
	rows, cols int
	dtype      DType
	store      any
}

// NewTensor wraps backend storage as a rows×cols Tensor. It is for Backend
// implementations; users get Tensors from Backend.New.
func NewTensor(rows, cols int, dt DType, store any) *Tensor {
	CheckNew(rows, cols)
	return &Tensor{rows: rows, cols: cols, dtype: dt, store: store}
}

// Rows returns the number of rows.
func (t *Tensor) Rows() int { return t.rows }

// Cols returns the number of columns.
func (t *Tensor) Cols() int { return t.cols }

// Len returns rows·cols.
func (t *Tensor) Len() int { return t.rows * t.cols }

// DType returns the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Store returns the backend-owned storage (for Backend implementations).
func (t *Tensor) Store() any { return t.store }

// String describes the shape, e.g. "Tensor(2000×2 float32)".
func (t *Tensor) String() string {
	return fmt.Sprintf("Tensor(%d×%d %v)", t.rows, t.cols, t.dtype)
}

// Reshape returns t's elements as a rows×cols Tensor sharing t's storage
// (Tensors are contiguous and row-major, so this is a view, not a copy);
// rows·cols must equal t.Len(). With View it carves per-parameter
// matrices out of one long vector (a model's parameter arena).
func Reshape(t *Tensor, rows, cols int) *Tensor {
	CheckReshape(t, rows, cols)
	return &Tensor{rows: rows, cols: cols, dtype: t.dtype, store: t.store}
}

// Epilogue is what GemmEx does to each element z of its product before
// storing it, in this order (a nil Tensor or false skips its step; each
// step is rounded to the element type as a separate pass would round it):
//
//	z += Bias[j]              Bias: a vector of n
//	z = max(z, 0)             ReLU
//	z = z·[Mask[i,j] > 0]     Mask: m×n (ReLU's backward, given its output)
//
// then, when ColSum (a vector of n) is not nil, ColSum[j] = Σ_i z[i,j]
// over the stored z, accumulated in float64. None of them may share
// storage with GemmEx's C.
type Epilogue struct {
	Bias   *Tensor
	ReLU   bool
	Mask   *Tensor
	ColSum *Tensor
}

// AdamHyper holds one Adam step's hyper-parameters. BC1 = 1 − Beta1^t and
// BC2 = 1 − Beta2^t are the bias corrections for step t (t ≥ 1).
type AdamHyper struct {
	LR, Beta1, Beta2, Eps, BC1, BC2 float64
}

// ScaleKind selects the scale function s(r) of an affine coupling.
type ScaleKind uint8

// Scale functions of the coupling operations.
const (
	// ScaleExp: s = exp(α) with the soft bound α = Bound·tanh(r/Bound), so
	// ln s ∈ (−Bound, Bound) and one step cannot overflow. Bound > 0.
	ScaleExp ScaleKind = iota + 1
	// ScaleSigmoid: s = sigmoid(r + 2) (GLOW), so s ∈ (0, 1) and
	// ln s = −softplus(−(r+2)). Bound is ignored.
	ScaleSigmoid
)

// String returns "exp" or "sigmoid".
func (k ScaleKind) String() string {
	switch k {
	case ScaleExp:
		return "exp"
	case ScaleSigmoid:
		return "sigmoid"
	}
	return fmt.Sprintf("ScaleKind(%d)", uint8(k))
}

// Scale is a coupling's scale function.
type Scale struct {
	Kind  ScaleKind
	Bound float64
}

// ActNormKind selects ActNorm's per-feature scale function s(r).
type ActNormKind uint8

// Scale functions of the ActNorm operations.
const (
	// ActNormExp: s = exp(r), r the log-scale (Glow's code), so ln s = r.
	ActNormExp ActNormKind = iota + 1
	// ActNormSoftplus: s = softplus(r + 2) = ln(1 + e^(r+2)) (the LRMF
	// authors' Glow), ∂s/∂r = sigmoid(r + 2).
	ActNormSoftplus
)

// String returns "exp" or "softplus".
func (k ActNormKind) String() string {
	switch k {
	case ActNormExp:
		return "exp"
	case ActNormSoftplus:
		return "softplus"
	}
	return fmt.Sprintf("ActNormKind(%d)", uint8(k))
}

// Backend is a device and its kernels. Every method documents its maths and
// the shapes it requires; "n×d" names rows×cols, "vector of d" any Tensor of
// Len d. Outputs come first and are overwritten unless the method says +=.
// Sums accumulate in float64 on every backend.
type Backend interface {
	// Name identifies the backend, e.g. "cpu", "ref", "cuda".
	Name() string
	// DType is the element type of every Tensor this backend makes.
	DType() DType
	// Threads is the number of row blocks a batch is split into at most.
	Threads() int
	// Close releases the backend's threads and device resources. Tensors
	// made by a closed backend must not be used.
	Close()

	// New returns a zeroed rows×cols Tensor.
	New(rows, cols int) *Tensor
	// View returns rows [lo, hi) of t, sharing t's storage.
	View(t *Tensor, lo, hi int) *Tensor
	// Upload copies src (row-major, len t.Len()) into t, converting to DType.
	Upload(t *Tensor, src []float64)
	// Download copies t into dst (len t.Len()) as float64.
	Download(dst []float64, t *Tensor)
	// Copy sets dst = src (same shape).
	Copy(dst, src *Tensor)
	// Fill sets every element of t to v.
	Fill(t *Tensor, v float64)
	// Axpy sets y += alpha·x (same Len).
	Axpy(alpha float64, x, y *Tensor)
	// Mul sets out = a⊙b, the elementwise (Hadamard) product
	// out_ij = a_ij·b_ij rounded once; a, b and out are all r×w, and out
	// may be a or b (in place).
	Mul(out, a, b *Tensor)
	// Dot returns Σ x_i y_i (same Len).
	Dot(x, y *Tensor) float64
	// Sum returns Σ x_i.
	Sum(x *Tensor) float64

	// Gemm sets C = alpha·op(A)·op(B) + beta·C with op(X) = Xᵀ when transX.
	// op(A) is m×k, op(B) is k×n, C is m×n. With beta = 0, C is not read.
	Gemm(transA, transB bool, alpha float64, a, b *Tensor, beta float64, c *Tensor)
	// GemmEx is Gemm on column windows, with an epilogue (see Epilogue):
	//   C[:, c0:c0+n] = ep(alpha·op(A[:, a0:a0+w])·op(B) + beta·C[:, c0:c0+n]),
	// op(A) m×k, op(B) k×n; A's window is w = k columns wide (m×k of an
	// m×? A), or w = m when transA (A is k×?); C is m×?, its window n wide.
	// The windows are read and written in place (strided), so a layer can
	// take some columns of its input and add into some columns of its
	// output without copies. With beta = 0, C is not read.
	GemmEx(transA, transB bool, alpha float64, a *Tensor, a0 int, b *Tensor, beta float64, c *Tensor, c0 int, ep Epilogue)
	// SumSquares sets out[s] = Σ_{j ∈ segment s} x_j² for the segments
	// [ends[s−1], ends[s]) of x's elements (ends[−1] = 0; ends nondecreasing,
	// the last ≤ x.Len(); len(out) = len(ends)), accumulated in float64:
	// the squared norms of the parameters held in one arena, in one call
	// (one read-back on a GPU).
	SumSquares(out []float64, x *Tensor, ends []int64)
	// BiasAdd sets y[i,j] += bias[j]; y is n×d, bias a vector of d.
	BiasAdd(y, bias *Tensor)
	// BiasGrad sets db[j] = Σ_i dy[i,j]; dy is n×d, db a vector of d.
	BiasGrad(db, dy *Tensor)
	// ReLU sets y = max(x, 0) elementwise (same Len; y may be x).
	ReLU(y, x *Tensor)
	// ReLUBackward sets dx = dy·[x > 0] (same Len; dx may be dy).
	ReLUBackward(dx, x, dy *Tensor)
	// Tanh sets y = tanh(x) (same Len; y may be x).
	Tanh(y, x *Tensor)
	// TanhBackward sets dx = dy·(1 − y²) where y = tanh(x) (dx may be dy).
	TanhBackward(dx, y, dy *Tensor)

	// GaussLogProb evaluates the Gaussian log-density with mean mu and
	// L (LᵀL = Σ⁻¹) for each row x_i of the n×d x:
	//   u_i = L(x_i − mu),  logp_i = −(d/2) ln 2π + logdetL − ½‖u_i‖².
	// u is n×d (kept for GaussBackward), logp a vector of n, mu of d, L d×d,
	// logdetL = ln|det L|.
	GaussLogProb(logp, u, x, mu, l *Tensor, logdetL float64)
	// GaussBackward is the vector-Jacobian product of GaussLogProb for
	// weights w = dlogp (vector of n), with g_i = Lᵀu_i:
	//   dx_i = −w_i g_i (dx n×d, or nil to skip), dmu = Σ w_i g_i (vector of d),
	//   dl = −Σ w_i u_i (x_i − mu)ᵀ (d×d).
	// dl omits the ln|det L| term, (Σ w_i)·L⁻ᵀ, which the caller adds.
	GaussBackward(dx, dmu, dl, x, mu, l, u, dlogp *Tensor)
	// LogDetAcc sets logdet[i] += Σ_j s[i,j]; s is n×d, logdet a vector of n.
	LogDetAcc(logdet, s *Tensor)
	// AffineForward sets y_i = M x_i + b and, when logdet is not nil,
	// logdet[i] += ldm (= ln|det M|). x, y are n×d, M d×d, b a vector of d.
	AffineForward(y, logdet, x, m, b *Tensor, ldm float64)
	// AffineInverse sets x_i = Minv (y_i − b); Minv = M⁻¹ is d×d.
	AffineInverse(x, y, minv, b *Tensor)
	// Adam applies one Adam step to p with gradient g and moments m, v
	// (all the same Len): m = β1 m + (1−β1) g, v = β2 v + (1−β2) g²,
	// p −= lr·(m/BC1)/(√(v/BC2) + eps).
	Adam(p, g, m, v *Tensor, h AdamHyper)
	// GatherRows sets dst[i,:] = src[idx[i],:]; dst is len(idx)×d, src n×d,
	// every idx in [0, n).
	GatherRows(dst, src *Tensor, idx []int32)

	// BiasReLU sets y[i,j] = max(y[i,j] + bias[j], 0) in place; y is n×d,
	// bias a vector of d.
	BiasReLU(y, bias *Tensor)
	// BiasReLUBackward, with y the output of BiasReLU, sets dz = dy·[y > 0]
	// (dz may be dy) and db[j] = Σ_i dz[i,j]; y, dy, dz are n×d, db a vector
	// of d.
	BiasReLUBackward(dz, db, y, dy *Tensor)
	// CopyCols sets dst = src[:, c0:c0+k]; dst is n×k, src n×D, 0 ≤ c0 ≤ D−k.
	CopyCols(dst, src *Tensor, c0 int)
	// AddCols sets dst[:, c0:c0+k] += src; src is n×k, dst n×D, 0 ≤ c0 ≤ D−k.
	AddCols(dst, src *Tensor, c0 int)
	// CouplingForward applies an affine coupling to the columns [t0, t0+dt)
	// of x (n×D), with h (n×2dt) = [μ | r] (μ = h[:, :dt], r = h[:, dt:]):
	//   y_t = x_t ⊙ s(r) + μ, y = x on all other columns (y n×D; may be x),
	//   logdet[i] += Σ_j ln s(r_ij) (a vector of n, or nil to skip).
	CouplingForward(y, logdet, x, h *Tensor, t0 int, sc Scale)
	// CouplingInverse sets x_t = (y_t − μ) / s(r) and x = y on all other
	// columns (x n×D; may be y); h was computed from the untouched columns.
	CouplingInverse(x, y, h *Tensor, t0 int, sc Scale)
	// CouplingBackward is the vector-Jacobian product of CouplingForward at
	// x, h for dy (n×D) and dlogdet (a vector of n):
	//   dx = dy on the untouched columns, dx_t = dy_t ⊙ s (dx n×D, may be dy,
	//   or nil to skip),
	//   dh[:, :dt] = dy_t, dh[:, dt:] = dy_t ⊙ x_t ⊙ ∂s/∂r + dlogdet_i·∂ln s/∂r
	//   (dh n×2dt),
	// with ∂ln s/∂r = 1 − tanh²(r/Bound) (ScaleExp) or 1 − s (ScaleSigmoid)
	// and ∂s/∂r = s·∂ln s/∂r.
	CouplingBackward(dx, dh, x, h, dy, dlogdet *Tensor, t0 int, sc Scale)

	// ActNormForward applies ActNorm (Glow) to x (n×D), per feature j with
	// s_j = s(r_j) of kind:
	//   y_ij = (x_ij + b_j)·s_j (y n×D; may be x),
	//   logdet[i] += Σ_j ln s_j (a vector of n, or nil to skip);
	// r and b are vectors of D.
	ActNormForward(y, logdet, x, r, b *Tensor, kind ActNormKind)
	// ActNormInverse sets x_ij = y_ij/s_j − b_j (x n×D; may be y).
	ActNormInverse(x, y, r, b *Tensor, kind ActNormKind)
	// ActNormBackward is the vector-Jacobian product of ActNormForward at x
	// for dy (n×D) and dlogdet (a vector of n, or nil for zero):
	//   dx_ij = dy_ij·s_j (dx n×D, may be dy, or nil to skip),
	//   db_j = s_j·Σ_i dy_ij (a vector of D),
	//   dr_j = ∂ln s_j/∂r_j·(s_j·Σ_i dy_ij (x_ij + b_j) + Σ_i dlogdet_i)
	//   (a vector of D),
	// with ∂ln s/∂r = 1 (ActNormExp) or sigmoid(r+2)/s (ActNormSoftplus).
	ActNormBackward(dx, dr, db, x, r, b, dy, dlogdet *Tensor, kind ActNormKind)
	// LUSolve sets x_i = W⁻¹ y_i for each row of y (n×D), W = P·L·U given by
	// lu (D×D: L strictly below the diagonal, unit diagonal implied; U on
	// and above) and perm (P[perm[k], k] = 1, so (Pᵀy)_k = y[perm[k]]):
	// x_i = U⁻¹ L⁻¹ Pᵀ y_i by forward then back substitution. x is n×D and
	// must not be y; perm is a permutation of [0, D) and U's diagonal has
	// no zero.
	LUSolve(x, y, lu *Tensor, perm []int32)
}

package model

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/internal/linalg"
	"github.com/lrmf-go/lrmf/native"
)

// Affine is the flow T(x) = AᵀA·x + b with A (D×D) and b (1×D). M = AᵀA is
// symmetric positive semi-definite by construction (definite while A is
// invertible), so T is invertible with
//
//	ln|det ∂T/∂x| = ln det(AᵀA) = 2 ln|det A|,  the same for every x.
//
// It starts as the identity (A = I, b = 0). With a Gaussian density, the
// zero of LRMF over this family is the Gaussian optimal-transport map.
type Affine struct {
	be   native.Backend
	d    int
	a, b *Param
	ps   []*Param

	ah, mh    *linalg.Mat    // A and M = AᵀA on the host
	m, minv   *native.Tensor // M and M⁻¹ on the backend
	dm        *native.Tensor // ∂L/∂M data term
	ldm       float64
	x         *native.Tensor // last Forward input
	gbuf, dab []float64      // host scratch for the parameter gradient
}

// NewAffine returns the identity affine flow on R^d.
func NewAffine(be native.Backend, d int) *Affine {
	f := &Affine{be: be, d: d, ah: linalg.NewMat(d), mh: linalg.NewMat(d),
		m: be.New(d, d), minv: be.New(d, d), dm: be.New(d, d),
		gbuf: make([]float64, d*d), dab: make([]float64, d*d)}
	f.a = newParam(be, "A", d, d)
	f.b = newParam(be, "b", 1, d)
	f.ps = []*Param{f.a, f.b}
	be.Upload(f.a.Value, linalg.Identity(d))
	return f
}

// AffineFlow returns a FlowMaker for Affine.
func AffineFlow() FlowMaker {
	return func(be native.Backend, dim int, _ *rand.Rand) (Flow, error) {
		return NewAffine(be, dim), nil
	}
}

// Dim returns D.
func (f *Affine) Dim() int { return f.d }

// Params returns [A, b].
func (f *Affine) Params() []*Param { return f.ps }

// updateM recomputes M = AᵀA on the host, uploads it and sets ldm.
func (f *Affine) updateM() error {
	f.be.Download(f.ah.Buf, f.a.Value)
	blas64.Gemm(blas.Trans, blas.NoTrans, 1, f.ah.General(f.ah.Buf), f.ah.General(f.ah.Buf), 0, f.mh.General(f.mh.Buf))
	ld, err := f.mh.LogAbsDet()
	if err != nil {
		return fmt.Errorf("model: Affine: AᵀA is singular (ln det = %v)", ld)
	}
	f.ldm = ld
	f.be.Upload(f.m, f.mh.Buf)
	return nil
}

// Forward sets y_i = M x_i + b and adds ln det M to logdet[i].
func (f *Affine) Forward(y, logdet, x *native.Tensor) error {
	if x.Cols() != f.d {
		return fmt.Errorf("model: Affine.Forward: x has %d columns, the flow has dimension %d", x.Cols(), f.d)
	}
	if err := f.updateM(); err != nil {
		return err
	}
	f.x = x
	f.be.AffineForward(y, logdet, x, f.m, f.b.Value, f.ldm)
	return nil
}

// Inverse sets x_i = M⁻¹(y_i − b).
func (f *Affine) Inverse(x, y *native.Tensor) error {
	if err := f.updateM(); err != nil {
		return err
	}
	inv, err := f.mh.Inverse()
	if err != nil {
		return fmt.Errorf("model: Affine.Inverse: %w", err)
	}
	f.be.Upload(f.minv, inv)
	f.be.AffineInverse(x, y, f.minv, f.b.Value)
	return nil
}

// Backward computes, for the last Forward and G = ∂L/∂M:
//
//	∂L/∂x_i = M dy_i (M is symmetric),  ∂L/∂b = Σ_i dy_i,
//	G = Σ_i dy_i x_iᵀ + (Σ_i dlogdet_i) M⁻¹,  ∂L/∂A = A(G + Gᵀ),
//
// the last from M = AᵀA.
func (f *Affine) Backward(dx, dy, dlogdet *native.Tensor) error {
	if f.x == nil {
		return fmt.Errorf("model: Affine.Backward called before Forward")
	}
	be := f.be
	if dx != nil {
		be.Gemm(false, false, 1, dy, f.m, 0, dx)
	}
	be.BiasGrad(f.b.Grad, dy)
	be.Gemm(true, false, 1, dy, f.x, 0, f.dm)
	be.Download(f.gbuf, f.dm)
	inv, err := f.mh.Inverse()
	if err != nil {
		return fmt.Errorf("model: Affine.Backward: %w", err)
	}
	sw := be.Sum(dlogdet)
	d, g := f.d, f.gbuf
	for i := range g {
		g[i] += sw * inv[i]
	}
	for i := 0; i < d; i++ { // G + Gᵀ, in place
		for j := i; j < d; j++ {
			s := g[i*d+j] + g[j*d+i]
			g[i*d+j], g[j*d+i] = s, s
		}
	}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, f.ah.General(f.ah.Buf), f.ah.General(g), 0, f.ah.General(f.dab))
	be.Upload(f.a.Grad, f.dab)
	return nil
}

// Matrix returns M = AᵀA and b on the host.
func (f *Affine) Matrix() (m *mat.Dense, b []float64) {
	abuf := make([]float64, f.d*f.d)
	f.be.Download(abuf, f.a.Value)
	a := mat.NewDense(f.d, f.d, abuf)
	m = mat.NewDense(f.d, f.d, nil)
	m.Mul(a.T(), a)
	b = make([]float64, f.d)
	f.be.Download(b, f.b.Value)
	return m, b
}

package native_test

import (
	"fmt"
	"github.com/lrmf-go/lrmf/internal/sanitize"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distmv"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/native"
	"github.com/lrmf-go/lrmf/native/nativetest"
)

func TestCPUConformance(t *testing.T) {
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		for _, threads := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%v/threads=%d", dt, threads), func(t *testing.T) {
				b, err := native.NewCPU(dt, threads)
				if err != nil {
					t.Skip("cpu backend unavailable in this build:", err)
				}
				defer b.Close()
				nativetest.Run(t, b)
			})
		}
	}
}

// The reference backend is the oracle, so it is itself checked against
// gonum: GEMM against mat.Dense products and the Gaussian log-density
// against distmv.Normal.
func TestRefGemmAgainstGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 1))
	r := native.NewRef()
	m, n, k := 5, 4, 3
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			a := randDense(rng, m, k)
			b := randDense(rng, k, n)
			c := randDense(rng, m, n)
			var want mat.Dense
			want.Mul(a, b)
			want.Scale(2, &want)
			var cc mat.Dense
			cc.Scale(0.5, c)
			want.Add(&want, &cc)

			at, bt := a, b
			if ta {
				at = mat.DenseCopyOf(a.T())
			}
			if tb {
				bt = mat.DenseCopyOf(b.T())
			}
			ta2, tb2, ct := toT(r, at), toT(r, bt), toT(r, c)
			r.Gemm(ta, tb, 2, ta2, tb2, 0.5, ct)
			got := make([]float64, m*n)
			r.Download(got, ct)
			assert.InDeltaSlice(t, want.RawMatrix().Data, got, 1e-12)
		}
	}
}

func TestRefGaussAgainstGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 2))
	r := native.NewRef()
	d, n := 3, 20
	// L = chol(Σ⁻¹)ᵀ gives LᵀL = Σ⁻¹.
	sig := mat.NewSymDense(d, []float64{2, 0.3, -0.2, 0.3, 1, 0.1, -0.2, 0.1, 0.5})
	var chol mat.Cholesky
	require.True(t, chol.Factorize(sig))
	var prec mat.SymDense
	require.NoError(t, chol.InverseTo(&prec))
	var pc mat.Cholesky
	require.True(t, pc.Factorize(&prec))
	var u mat.TriDense
	pc.UTo(&u) // prec = UᵀU, so L = U
	mu := []float64{0.5, -1, 2}
	normal, ok := distmv.NewNormal(mu, sig, nil)
	require.True(t, ok)
	x := randDense(rng, n, d)
	L := mat.DenseCopyOf(&u)
	logdet := math.Log(math.Abs(mat.Det(L)))
	lp, ut := r.New(n, 1), r.New(n, d)
	r.GaussLogProb(lp, ut, toT(r, x), toT(r, mat.NewDense(1, d, mu)), toT(r, L), logdet)
	got := make([]float64, n)
	r.Download(got, lp)
	for i := 0; i < n; i++ {
		assert.InDelta(t, normal.LogProb(x.RawRowView(i)), got[i], 1e-12)
	}
}

func TestOpenAndRegistry(t *testing.T) {
	_, err := native.Open("nope", native.Float64, 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ref")
	_, err = native.Open("ref", native.Float32, 1)
	require.ErrorContains(t, err, "float64 only")
	b, err := native.Open(native.DefaultBackend(), native.Float64, 2)
	require.NoError(t, err)
	b.Close()
	_, err = native.ParseDType("float16")
	require.Error(t, err)
}

func TestShapeMismatchPanics(t *testing.T) {
	for _, name := range []string{"ref", native.DefaultBackend()} {
		b, err := native.Open(name, native.Float64, 1)
		require.NoError(t, err)
		assert.PanicsWithValue(t, "native: Gemm: inner dimensions differ: op(A) is 2×3, op(B) is 4×2", func() {
			b.Gemm(false, false, 1, b.New(2, 3), b.New(4, 2), 0, b.New(2, 2))
		})
		assert.Panics(t, func() { b.GatherRows(b.New(1, 2), b.New(3, 2), []int32{3}) })
		b.Close()
	}
}

func randDense(rng *rand.Rand, r, c int) *mat.Dense {
	x := make([]float64, r*c)
	for i := range x {
		x[i] = 2*rng.Float64() - 1
	}
	return mat.NewDense(r, c, x)
}

func toT(b native.Backend, m *mat.Dense) *native.Tensor {
	r, c := m.Dims()
	t := b.New(r, c)
	b.Upload(t, mat.DenseCopyOf(m).RawMatrix().Data)
	return t
}

// Every cpu operation allocates nothing per call once its workspaces exist,
// on batches that split into row blocks: the job structs are reused and
// dispatched through an interface holding a pointer.
func TestCPUOpsAllocateNothing(t *testing.T) {
	sanitize.SkipAllocationCounts(t)
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		be, err := native.NewCPU(dt, 3)
		if err != nil {
			t.Skip("cpu backend unavailable in this build:", err)
		}
		b := be.(native.GMMBackend)
		const n, d, k, h = 40000, 4, 3, 16
		x, y, u, dx := b.New(n, d), b.New(n, d), b.New(n, d), b.New(n, d)
		vec, vecN, vecD, sq := b.New(n, 1), b.New(n, 1), b.New(1, d), b.New(d, d)
		hid, w, wg, bias := b.New(n, h), b.New(d, h), b.New(d, h), b.New(1, h)
		coup, dcoup := b.New(n, d), b.New(n, d) // [μ | r] for dt = d/2
		narrow := b.New(n, 2)
		mu, l, logits, ld := b.New(k, d), b.New(k*d, d), b.New(1, k), b.New(1, k)
		ku, resp, dmu, dl, dlg, ws := b.New(n, k*d), b.New(n, k), b.New(k, d), b.New(k*d, d), b.New(1, k), b.New(1, k)
		p, g, m, v := b.New(n, d), b.New(n, d), b.New(n, d), b.New(n, d)
		for i, t := range []*native.Tensor{x, y, hid, w, coup, l} {
			b.Fill(t, 0.1*float64(i+1))
		}
		w2, hid2, bias2 := b.New(2, h), b.New(n, h), b.New(1, h)
		ssq, ssqEnds := make([]float64, 3), []int64{7, 7, int64(n * d)}
		idx := make([]int32, n)
		sc := native.Scale{Kind: native.ScaleExp, Bound: 2}
		perm := make([]int32, d)
		for i := range perm {
			perm[i] = int32(d - 1 - i)
		}
		b.Fill(sq, 1)
		vecD2 := b.New(1, d)
		for name, f := range map[string]func(){
			"Gemm":   func() { b.Gemm(false, false, 1, x, w, 0, hid) },
			"GemmTN": func() { b.Gemm(true, false, 1, x, hid, 0, wg) },
			"GemmEx": func() {
				b.GemmEx(false, false, 1, x, 1, w2, 0, hid, 0, native.Epilogue{Bias: bias, ReLU: true, Mask: hid2, ColSum: bias2})
			},
			"SumSquares":       func() { b.SumSquares(ssq, p, ssqEnds) },
			"BiasAdd":          func() { b.BiasAdd(hid, bias) },
			"BiasGrad":         func() { b.BiasGrad(bias, hid) },
			"BiasReLU":         func() { b.BiasReLU(hid, bias) },
			"BiasReLUBackward": func() { b.BiasReLUBackward(hid, bias, hid, hid) },
			"ReLU":             func() { b.ReLU(y, x) },
			"ReLUBackward":     func() { b.ReLUBackward(dx, x, y) },
			"Tanh":             func() { b.Tanh(y, x) },
			"TanhBackward":     func() { b.TanhBackward(dx, y, x) },
			"Axpy":             func() { b.Axpy(0.5, x, y) },
			"Mul":              func() { b.Mul(y, x, y) },
			"Dot":              func() { b.Dot(x, y) },
			"Sum":              func() { b.Sum(x) },
			"Adam": func() {
				b.Adam(p, g, m, v, native.AdamHyper{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, BC1: 0.1, BC2: 0.001})
			},
			"GaussLogProb":     func() { b.GaussLogProb(vec, u, x, vecD, sq, 0) },
			"GaussBackward":    func() { b.GaussBackward(dx, vecD, sq, x, vecD, sq, u, vec) },
			"LogDetAcc":        func() { b.LogDetAcc(vec, x) },
			"AffineForward":    func() { b.AffineForward(y, vec, x, sq, vecD, 0.5) },
			"AffineInverse":    func() { b.AffineInverse(y, x, sq, vecD) },
			"GatherRows":       func() { b.GatherRows(y, x, idx) },
			"CopyCols":         func() { b.CopyCols(narrow, x, 1) },
			"AddCols":          func() { b.AddCols(x, narrow, 2) },
			"CouplingForward":  func() { b.CouplingForward(y, vec, x, coup, 1, sc) },
			"CouplingInverse":  func() { b.CouplingInverse(y, x, coup, 1, sc) },
			"CouplingBackward": func() { b.CouplingBackward(dx, dcoup, x, coup, y, vecN, 1, sc) },
			"GMMLogProb":       func() { b.GMMLogProb(vec, ku, resp, x, mu, l, logits, ld) },
			"GMMBackward":      func() { b.GMMBackward(dx, dmu, dl, dlg, ws, x, mu, l, logits, ku, resp, vecN) },
			"ActNormForward":   func() { b.ActNormForward(y, vec, x, vecD, vecD, native.ActNormSoftplus) },
			"ActNormInverse":   func() { b.ActNormInverse(y, x, vecD, vecD, native.ActNormExp) },
			"ActNormBackward":  func() { b.ActNormBackward(dx, vecD, vecD2, x, vecD, vecD, y, vecN, native.ActNormExp) },
			"LUSolve":          func() { b.LUSolve(y, x, sq, perm) },
		} {
			// Warm up the workspaces and the pool's workers (see
			// TestCPUODEAllocatesNothing).
			for i := 0; i < 10; i++ {
				f()
			}
			if a := testing.AllocsPerRun(20, f); a != 0 {
				t.Errorf("%v %s: %.1f allocations per call, want 0", dt, name, a)
			}
		}
		be.Close()
	}
}

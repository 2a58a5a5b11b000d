package native_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distmv"

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
	rng := rand.New(rand.NewPCG(nativetest.Seed(t), 1))
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
	rng := rand.New(rand.NewPCG(nativetest.Seed(t), 2))
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

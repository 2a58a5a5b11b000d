//go:build cgo

package bindings_test

import (
	"github.com/lrmf-go/lrmf/internal/sanitize"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/bindings"
)

// both runs a generic test body for float32 and float64.
func both(t *testing.T, f32, f64 func(*testing.T)) {
	t.Helper()
	t.Run("f32", f32)
	t.Run("f64", f64)
}

func tol[T bindings.Float]() float64 {
	var z T
	if any(z) == any(float32(0)) {
		return 1e-5
	}
	return 1e-12
}

func conv[T bindings.Float](v ...float64) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}

// near asserts got ≈ want elementwise, relative to max(1, |want|).
func near[T bindings.Float](t *testing.T, want []float64, got []T) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		d := tol[T]() * math.Max(1, math.Abs(want[i]))
		assert.InDelta(t, want[i], float64(got[i]), d, "index %d", i)
	}
}

// ---- Gemm ---------------------------------------------------------------

func testGemm[T bindings.Float](t *testing.T) {
	// A (2×3) · B (3×2) = [[58 64] [139 154]].
	aN := conv[T](1, 2, 3, 4, 5, 6)    // A, lda 3
	aT := conv[T](1, 4, 2, 5, 3, 6)    // Aᵀ stored 3×2, lda 2
	bN := conv[T](7, 8, 9, 10, 11, 12) // B, ldb 2
	bT := conv[T](7, 9, 11, 8, 10, 12) // Bᵀ stored 2×3, ldb 3
	want := []float64{58, 64, 139, 154}
	nan := T(math.NaN())
	for _, tc := range []struct {
		name     string
		ta, tb   bool
		a, b     []T
		lda, ldb int
	}{
		{"NN", false, false, aN, bN, 3, 2},
		{"TN", true, false, aT, bN, 2, 2},
		{"NT", false, true, aN, bT, 3, 3},
		{"TT", true, true, aT, bT, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := []T{nan, nan, nan, nan}
			require.NoError(t, bindings.Gemm(tc.ta, tc.tb, 2, 2, 3, 1, tc.a, tc.lda, tc.b, tc.ldb, 0, c, 2))
			near(t, want, c)

			// alpha, beta and padded ldc: the padding column stays untouched.
			c = conv[T](1, 2, -1, 3, 4, -1)
			require.NoError(t, bindings.Gemm(tc.ta, tc.tb, 2, 2, 3, 2, tc.a, tc.lda, tc.b, tc.ldb, 0.5, c, 3))
			near(t, []float64{116.5, 129, -1, 279.5, 310, -1}, c)
		})
	}

	t.Run("padded lda ldb", func(t *testing.T) {
		a := conv[T](1, 2, 3, -9, 4, 5, 6)        // lda 4, last row unpadded
		b := conv[T](7, 8, -9, 9, 10, -9, 11, 12) // ldb 3
		c := make([]T, 4)
		require.NoError(t, bindings.Gemm(false, false, 2, 2, 3, 1, a, 4, b, 3, 0, c, 2))
		near(t, want, c)
	})

	t.Run("k=0 scales C by beta", func(t *testing.T) {
		c := conv[T](1, 2, 3, 4)
		require.NoError(t, bindings.Gemm[T](false, false, 2, 2, 0, 1, nil, 0, nil, 2, 3, c, 2))
		near(t, []float64{3, 6, 9, 12}, c)
		c = []T{nan, nan, nan, nan}
		require.NoError(t, bindings.Gemm[T](true, true, 2, 2, 0, 1, nil, 2, nil, 0, 0, c, 2))
		near(t, []float64{0, 0, 0, 0}, c)
	})

	t.Run("m=0 is a no-op", func(t *testing.T) {
		require.NoError(t, bindings.Gemm[T](false, false, 0, 2, 3, 1, nil, 3, bN, 2, 0, nil, 2))
	})

	t.Run("tiled vs naive", func(t *testing.T) {
		// Sizes beyond the 64×64 tile with ragged edges, all four layouts.
		const m, n, k = 37, 131, 70
		val := func(i, j, s int) float64 { return float64((i*7+j*13+s)%17-8) / 8 }
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				ar, ac := m, k
				if ta {
					ar, ac = k, m
				}
				br, bc := k, n
				if tb {
					br, bc = n, k
				}
				lda, ldb, ldc := ac+1, bc+2, n+3
				a := make([]T, (ar-1)*lda+ac)
				b := make([]T, (br-1)*ldb+bc)
				c := make([]T, (m-1)*ldc+n)
				for i := 0; i < ar; i++ {
					for j := 0; j < ac; j++ {
						a[i*lda+j] = T(val(i, j, 1))
					}
				}
				for i := 0; i < br; i++ {
					for j := 0; j < bc; j++ {
						b[i*ldb+j] = T(val(i, j, 5))
					}
				}
				for i := range c {
					c[i] = T(val(i, 0, 3))
				}
				wantC := make([]float64, len(c))
				for i := range c {
					wantC[i] = float64(c[i])
				}
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						s := 0.0
						for p := 0; p < k; p++ {
							av := a[i*lda+p]
							if ta {
								av = a[p*lda+i]
							}
							bv := b[p*ldb+j]
							if tb {
								bv = b[j*ldb+p]
							}
							s += float64(av) * float64(bv)
						}
						wantC[i*ldc+j] = 1.5*s - 0.5*wantC[i*ldc+j]
					}
				}
				require.NoError(t, bindings.Gemm(ta, tb, m, n, k, 1.5, a, lda, b, ldb, -0.5, c, ldc))
				for i := range c {
					assert.InDelta(t, wantC[i], float64(c[i]), 1e3*tol[T](), "ta=%v tb=%v i=%d", ta, tb, i)
				}
			}
		}
	})
}

func TestGemm(t *testing.T) { both(t, testGemm[float32], testGemm[float64]) }

// ---- bias, activations ----------------------------------------------------

func testBias[T bindings.Float](t *testing.T) {
	y := conv[T](1, 2, 3, 4, 5, 6)
	require.NoError(t, bindings.BiasAdd(2, 3, conv[T](10, 20, 30), y))
	near(t, []float64{11, 22, 33, 14, 25, 36}, y)

	// 2×70 crosses the 64-column accumulator chunk.
	dy := make([]T, 2*70)
	for i := range dy {
		dy[i] = T(i)
	}
	db := make([]T, 70)
	require.NoError(t, bindings.BiasGrad(2, 70, dy, db))
	want := make([]float64, 70)
	for j := range want {
		want[j] = float64(j + 70 + j)
	}
	near(t, want, db)

	// An empty batch zeroes db.
	db = conv[T](1, 2, 3)
	require.NoError(t, bindings.BiasGrad[T](0, 3, nil, db))
	near(t, []float64{0, 0, 0}, db)
}

func TestBias(t *testing.T) { both(t, testBias[float32], testBias[float64]) }

func testActivations[T bindings.Float](t *testing.T) {
	x := conv[T](-2, -0, 0.5, 3)
	y := make([]T, 4)
	require.NoError(t, bindings.ReLU(x, y))
	near(t, []float64{0, 0, 0.5, 3}, y)

	dx := make([]T, 4)
	require.NoError(t, bindings.ReLUBackward(x, conv[T](1, 2, 3, 4), dx))
	near(t, []float64{0, 0, 3, 4}, dx)

	require.NoError(t, bindings.Tanh(x, y))
	near(t, []float64{math.Tanh(-2), 0, math.Tanh(0.5), math.Tanh(3)}, y)

	require.NoError(t, bindings.TanhBackward(conv[T](0, 0.5, -0.5, 1), conv[T](2, 2, 4, 3), dx))
	near(t, []float64{2, 1.5, 3, 0}, dx)

	// In place, as the header allows.
	z := conv[T](-1, 1)
	require.NoError(t, bindings.ReLU(z, z))
	near(t, []float64{0, 1}, z)
	g := conv[T](5, 6)
	require.NoError(t, bindings.ReLUBackward(conv[T](1, -1), g, g))
	near(t, []float64{5, 0}, g)
	z = conv[T](0, 1)
	require.NoError(t, bindings.Tanh(z, z))
	near(t, []float64{0, math.Tanh(1)}, z)
	g = conv[T](2, 2)
	require.NoError(t, bindings.TanhBackward(conv[T](0, 0.5), g, g))
	near(t, []float64{2, 1.5}, g)
}

func TestActivations(t *testing.T) { both(t, testActivations[float32], testActivations[float64]) }

// ---- Gaussian -------------------------------------------------------------

func testGauss[T bindings.Float](t *testing.T) {
	// L = [[2 0] [1 1]], mu = [0.5 1]. Row 0: x−mu = [0.5 1], u = [1 1.5],
	// ‖u‖² = 3.25. Row 1: x = mu, u = 0.
	x := conv[T](1, 2, 0.5, 1)
	mu := conv[T](0.5, 1)
	l := conv[T](2, 0, 1, 1)
	ld := math.Log(2)
	u := make([]T, 4)
	logp := make([]T, 2)
	require.NoError(t, bindings.GaussLogProb(2, 2, x, mu, l, T(ld), u, logp))
	near(t, []float64{1, 1.5, 0, 0}, u)
	c0 := -math.Log(2*math.Pi) + ld
	near(t, []float64{c0 - 1.625, c0}, logp)

	// w = [2 3]: g_0 = Lᵀu_0 = [3.5 1.5], g_1 = 0.
	w := conv[T](2, 3)
	dx := make([]T, 4)
	dmu := make([]T, 2)
	dl := make([]T, 4)
	require.NoError(t, bindings.GaussBackward(2, 2, x, mu, l, u, w, dx, dmu, dl))
	near(t, []float64{-7, -3, 0, 0}, dx)
	near(t, []float64{7, 3}, dmu)
	near(t, []float64{-1, -2, -1.5, -3}, dl)

	// dx may be nil.
	dmu2 := make([]T, 2)
	dl2 := make([]T, 4)
	require.NoError(t, bindings.GaussBackward(2, 2, x, mu, l, u, w, nil, dmu2, dl2))
	assert.Equal(t, dmu, dmu2)
	assert.Equal(t, dl, dl2)

	// d = 0: logp is the constant logdetL.
	logp = conv[T](9)
	require.NoError(t, bindings.GaussLogProb[T](1, 0, nil, nil, nil, 0.25, nil, logp))
	near(t, []float64{0.25}, logp)
}

func TestGauss(t *testing.T) { both(t, testGauss[float32], testGauss[float64]) }

// ---- flows ----------------------------------------------------------------

func testFlows[T bindings.Float](t *testing.T) {
	logdet := conv[T](1, 2)
	require.NoError(t, bindings.LogDetAcc(2, 3, conv[T](1, 2, 3, -1, -2, 0.5), logdet))
	near(t, []float64{7, -0.5}, logdet)

	// M = [[2 1] [0 3]], b = [1 −1].
	m := conv[T](2, 1, 0, 3)
	minv := conv[T](0.5, -1.0/6, 0, 1.0/3)
	b := conv[T](1, -1)
	x := conv[T](1, 2, -1, 0)
	y := make([]T, 4)
	logdet = conv[T](0.5, 1)
	require.NoError(t, bindings.AffineForward(2, 2, x, m, b, T(math.Log(6)), y, logdet))
	near(t, []float64{5, 5, -1, -1}, y)
	near(t, []float64{0.5 + math.Log(6), 1 + math.Log(6)}, logdet)

	y2 := make([]T, 4)
	require.NoError(t, bindings.AffineForward(2, 2, x, m, b, 7, y2, nil))
	assert.Equal(t, y, y2)

	back := make([]T, 4)
	require.NoError(t, bindings.AffineInverse(2, 2, y, minv, b, back))
	near(t, []float64{1, 2, -1, 0}, back)
}

func TestFlows(t *testing.T) { both(t, testFlows[float32], testFlows[float64]) }

// ---- optimiser and vector helpers ----------------------------------------

func testAdam[T bindings.Float](t *testing.T) {
	const lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
	p0 := []float64{1, -2, 0.5}
	g := []float64{0.5, -0.25, 0}
	m0 := []float64{0, 0.1, -0.2}
	v0 := []float64{0, 0.01, 0.04}
	const step = 3
	bc1, bc2 := 1-math.Pow(b1, step), 1-math.Pow(b2, step)
	wantP := make([]float64, 3)
	wantM := make([]float64, 3)
	wantV := make([]float64, 3)
	for i := range p0 {
		wantM[i] = b1*m0[i] + (1-b1)*g[i]
		wantV[i] = b2*v0[i] + (1-b2)*g[i]*g[i]
		wantP[i] = p0[i] - lr*(wantM[i]/bc1)/(math.Sqrt(wantV[i]/bc2)+eps)
	}
	p, m, v := conv[T](p0...), conv[T](m0...), conv[T](v0...)
	require.NoError(t, bindings.Adam(p, conv[T](g...), m, v, lr, b1, b2, eps, bc1, bc2))
	near(t, wantM, m)
	near(t, wantV, v)
	near(t, wantP, p)
}

func TestAdam(t *testing.T) { both(t, testAdam[float32], testAdam[float64]) }

func testVector[T bindings.Float](t *testing.T) {
	y := conv[T](1, 2, 3)
	require.NoError(t, bindings.Axpy(2, conv[T](1, -1, 0.5), y))
	near(t, []float64{3, 0, 4}, y)

	m := conv[T](9, 9, 9)
	require.NoError(t, bindings.Mul(conv[T](1, -2, 0.5), y, m))
	near(t, []float64{3, 0, 2}, m)
	require.NoError(t, bindings.Mul(m, m, m)) // out = a = b
	near(t, []float64{9, 0, 4}, m)

	require.NoError(t, bindings.Fill(T(2.5), y))
	near(t, []float64{2.5, 2.5, 2.5}, y)

	dot, err := bindings.Dot(conv[T](1, 2, 3), conv[T](4, -5, 6))
	require.NoError(t, err)
	assert.Equal(t, 12.0, dot)
	x := conv[T](3, 4)
	dot, err = bindings.Dot(x, x)
	require.NoError(t, err)
	assert.Equal(t, 25.0, dot)

	s, err := bindings.Sum(conv[T](1, 2, 3.5))
	require.NoError(t, err)
	assert.Equal(t, 6.5, s)

	// Accumulation is in float64: adding 2^-30 to 1 is lost in float32,
	// exact in float64.
	big := make([]T, 10001)
	big[0] = 1
	for i := 1; i < len(big); i++ {
		big[i] = T(math.Ldexp(1, -30))
	}
	s, err = bindings.Sum(big)
	require.NoError(t, err)
	assert.Equal(t, 1+1e4*math.Ldexp(1, -30), s)

	s, err = bindings.Sum[T](nil)
	require.NoError(t, err)
	assert.Zero(t, s)
	dot, err = bindings.Dot[T](nil, nil)
	require.NoError(t, err)
	assert.Zero(t, dot)
}

func TestVector(t *testing.T) { both(t, testVector[float32], testVector[float64]) }

func testGather[T bindings.Float](t *testing.T) {
	src := conv[T](0, 1, 10, 11, 20, 21)
	dst := make([]T, 6)
	require.NoError(t, bindings.GatherRows(3, 2, src, []int32{2, 0, 2}, dst))
	near(t, []float64{20, 21, 0, 1, 20, 21}, dst)
}

func TestGather(t *testing.T) { both(t, testGather[float32], testGather[float64]) }

// ---- Real NVP: bias + ReLU, columns, coupling -----------------------------

func testBiasReLU[T bindings.Float](t *testing.T) {
	y := conv[T](1, -2, 0.5, -1, 3, -0.5)
	require.NoError(t, bindings.BiasReLU(2, 3, conv[T](-0.5, 1, 0.5), y))
	near(t, []float64{0.5, 0, 1, 0, 4, 0}, y)

	// The output y decides which gradients pass; y == 0 passes none.
	dy := conv[T](1, 2, 3, 4, 5, 6)
	dz := make([]T, 6)
	db := make([]T, 3)
	require.NoError(t, bindings.BiasReLUBackward(2, 3, y, dy, dz, db))
	near(t, []float64{1, 0, 3, 0, 5, 0}, dz)
	near(t, []float64{1, 5, 3}, db)

	// In place, dz == dy.
	require.NoError(t, bindings.BiasReLUBackward(2, 3, y, dy, dy, db))
	near(t, []float64{1, 0, 3, 0, 5, 0}, dy)
	near(t, []float64{1, 5, 3}, db)

	// An empty batch zeroes db.
	require.NoError(t, bindings.BiasReLUBackward[T](0, 3, nil, nil, nil, db))
	near(t, []float64{0, 0, 0}, db)
}

func TestBiasReLU(t *testing.T) { both(t, testBiasReLU[float32], testBiasReLU[float64]) }

func testColumns[T bindings.Float](t *testing.T) {
	src := conv[T](1, 2, 3, 4, 5, 6, 7, 8) // 2×4
	dst := make([]T, 4)
	require.NoError(t, bindings.CopyCols(2, 4, 1, 2, src, dst))
	near(t, []float64{2, 3, 6, 7}, dst)
	require.NoError(t, bindings.CopyCols(2, 4, 3, 1, src, dst[:2]))
	near(t, []float64{4, 8, 6, 7}, dst)

	acc := conv[T](1, 1, 1, 1, 1, 1, 1, 1)
	require.NoError(t, bindings.AddCols(2, 4, 2, 2, conv[T](10, 20, 30, 40), acc))
	near(t, []float64{1, 1, 11, 21, 1, 1, 31, 41}, acc)
	require.NoError(t, bindings.AddCols[T](2, 4, 4, 0, nil, acc)) // empty range at the end
}

func TestColumns(t *testing.T) { both(t, testColumns[float32], testColumns[float64]) }

// scaleOf is the coupling scale in float64: s, ln s, ∂ln s/∂r.
func scaleOf(kind bindings.ScaleKind, bound, r float64) (s, lns, dlns float64) {
	if kind == bindings.ScaleExp {
		th := math.Tanh(r / bound)
		return math.Exp(bound * th), bound * th, 1 - th*th
	}
	s = 1 / (1 + math.Exp(-(r + 2)))
	return s, math.Log(s), 1 - s
}

func testCoupling[T bindings.Float](t *testing.T) {
	// n = 2, d = 3, transformed column 1 (t0 = 1, dt = 1); h rows [μ r].
	x := []float64{1, 2, 3, -1, 0.5, 4}
	h := []float64{0.5, 1, -0.25, -5}
	dy := []float64{0.5, -1, 2, 1.5, 3, -2}
	wl := []float64{0.75, -1.25}
	for name, kind := range map[string]bindings.ScaleKind{"exp": bindings.ScaleExp, "sigmoid": bindings.ScaleSigmoid} {
		t.Run(name, func(t *testing.T) {
			const bound = 2.0
			wantY := append([]float64(nil), x...)
			wantLD := []float64{0.125, -0.5}
			wantDX := append([]float64(nil), dy...)
			wantDH := make([]float64, 4)
			for i := 0; i < 2; i++ {
				mu, r := h[2*i], h[2*i+1]
				s, lns, dlns := scaleOf(kind, bound, r)
				wantY[3*i+1] = x[3*i+1]*s + mu
				wantLD[i] += lns
				wantDX[3*i+1] = dy[3*i+1] * s
				wantDH[2*i] = dy[3*i+1]
				wantDH[2*i+1] = dy[3*i+1]*x[3*i+1]*s*dlns + wl[i]*dlns
			}

			y := make([]T, 6)
			ld := conv[T](0.125, -0.5)
			require.NoError(t, bindings.CouplingForward(2, 3, 1, 1, kind, bound, conv[T](x...), conv[T](h...), y, ld))
			near(t, wantY, y)
			near(t, wantLD, ld)

			back := make([]T, 6)
			require.NoError(t, bindings.CouplingInverse(2, 3, 1, 1, kind, bound, y, conv[T](h...), back))
			near(t, x, back)

			dx, dh := make([]T, 6), make([]T, 4)
			require.NoError(t, bindings.CouplingBackward(2, 3, 1, 1, kind, bound, conv[T](x...), conv[T](h...),
				conv[T](dy...), conv[T](wl...), dx, dh))
			near(t, wantDX, dx)
			near(t, wantDH, dh)

			// nil logdet and nil dx are skipped; the rest is unchanged.
			y2, dh2 := make([]T, 6), make([]T, 4)
			require.NoError(t, bindings.CouplingForward(2, 3, 1, 1, kind, bound, conv[T](x...), conv[T](h...), y2, nil))
			assert.Equal(t, y, y2)
			require.NoError(t, bindings.CouplingBackward(2, 3, 1, 1, kind, bound, conv[T](x...), conv[T](h...),
				conv[T](dy...), conv[T](wl...), nil, dh2))
			assert.Equal(t, dh, dh2)
		})
	}

	// The exp bound holds for any r: |ln s| < bound.
	ld := make([]T, 1)
	y := make([]T, 1)
	require.NoError(t, bindings.CouplingForward(1, 1, 0, 1, bindings.ScaleExp, 3, conv[T](1), conv[T](0, 1e6), y, ld))
	assert.InDelta(t, 3, float64(ld[0]), 1e-6)
	near(t, []float64{math.Exp(3)}, y)
}

func TestCoupling(t *testing.T) { both(t, testCoupling[float32], testCoupling[float64]) }

// ---- validation -----------------------------------------------------------

func testValidation[T bindings.Float](t *testing.T) {
	const s = 7 // sentinel every output starts with
	out := func(n int) []T {
		o := make([]T, n)
		for i := range o {
			o[i] = s
		}
		return o
	}
	untouched := func(t *testing.T, o []T) {
		t.Helper()
		for i, v := range o {
			assert.Equal(t, T(s), v, "output written at %d", i)
		}
	}
	a6, b6 := conv[T](1, 2, 3, 4, 5, 6), conv[T](1, 2, 3, 4, 5, 6)
	for _, tc := range []struct {
		name, op, msg string
		call          func(o []T) error
	}{
		{"gemm negative m", "Gemm", "negative size m = -1", func(o []T) error {
			return bindings.Gemm(false, false, -1, 2, 3, 1, a6, 3, b6, 2, 0, o, 2)
		}},
		{"gemm negative k", "Gemm", "negative size k = -3", func(o []T) error {
			return bindings.Gemm(false, false, 2, 2, -3, 1, a6, 3, b6, 2, 0, o, 2)
		}},
		{"gemm lda", "Gemm", "leading dimension lda = 2 < row length 3", func(o []T) error {
			return bindings.Gemm(false, false, 2, 2, 3, 1, a6, 2, b6, 2, 0, o, 2)
		}},
		{"gemm lda transposed", "Gemm", "leading dimension lda = 1 < row length 2", func(o []T) error {
			return bindings.Gemm(true, false, 2, 2, 3, 1, a6, 1, b6, 2, 0, o, 2)
		}},
		{"gemm ldb transposed", "Gemm", "leading dimension ldb = 2 < row length 3", func(o []T) error {
			return bindings.Gemm(false, true, 2, 2, 3, 1, a6, 3, b6, 2, 0, o, 2)
		}},
		{"gemm ldc", "Gemm", "leading dimension ldc = 1 < row length 2", func(o []T) error {
			return bindings.Gemm(false, false, 2, 2, 3, 1, a6, 3, b6, 2, 0, o, 1)
		}},
		{"gemm short a", "Gemm", "len(a) = 5 < 6 required", func(o []T) error {
			return bindings.Gemm(false, false, 2, 2, 3, 1, a6[:5], 3, b6, 2, 0, o, 2)
		}},
		{"gemm short a padded", "Gemm", "len(a) = 6 < 7 required", func(o []T) error {
			return bindings.Gemm(false, false, 2, 2, 3, 1, a6, 4, b6, 2, 0, o, 2)
		}},
		{"gemm short c", "Gemm", "len(c) = 4 < 5 required", func(o []T) error {
			return bindings.Gemm(false, false, 2, 2, 3, 1, a6, 3, b6, 2, 0, o, 3)
		}},
		{"gemm overflow", "Gemm", "size overflow", func(o []T) error {
			return bindings.Gemm(false, false, 2, 2, 3, 1, a6, math.MaxInt, b6, 2, 0, o, 2)
		}},
		{"bias add negative d", "BiasAdd", "negative size d = -1", func(o []T) error {
			return bindings.BiasAdd(2, -1, a6, o)
		}},
		{"bias add short bias", "BiasAdd", "len(bias) = 1 < 2 required", func(o []T) error {
			return bindings.BiasAdd(2, 2, a6[:1], o)
		}},
		{"bias grad short dy", "BiasGrad", "len(dy) = 5 < 6 required", func(o []T) error {
			return bindings.BiasGrad(3, 2, a6[:5], o)
		}},
		{"bias grad short db", "BiasGrad", "len(db) = 4 < 5 required", func(o []T) error {
			return bindings.BiasGrad(1, 5, a6, o)
		}},
		{"relu mismatch", "ReLU", "len(y) = 4 != len(x) = 3", func(o []T) error {
			return bindings.ReLU(a6[:3], o)
		}},
		{"relu bwd mismatch", "ReLUBackward", "len(dx) = 4 != len(x) = 3", func(o []T) error {
			return bindings.ReLUBackward(a6[:3], b6[:3], o)
		}},
		{"tanh mismatch", "Tanh", "len(y) = 4 != len(x) = 5", func(o []T) error {
			return bindings.Tanh(a6[:5], o)
		}},
		{"tanh bwd mismatch", "TanhBackward", "len(dy) = 2 != len(y) = 4", func(o []T) error {
			return bindings.TanhBackward(a6[:4], b6[:2], o)
		}},
		{"gauss negative n", "GaussLogProb", "negative size n = -2", func(o []T) error {
			return bindings.GaussLogProb(-2, 2, a6, b6, a6, 0, o, o)
		}},
		{"gauss short l", "GaussLogProb", "len(l) = 3 < 4 required", func(o []T) error {
			return bindings.GaussLogProb(2, 2, a6, b6, a6[:3], 0, o, o)
		}},
		{"gauss short logp", "GaussLogProb", "len(logp) = 1 < 2 required", func(o []T) error {
			return bindings.GaussLogProb(2, 2, a6, b6, a6, 0, o, o[:1])
		}},
		{"gauss bwd short dx", "GaussBackward", "len(dx) = 3 < 4 required", func(o []T) error {
			return bindings.GaussBackward(2, 2, a6, b6, a6, b6, b6, o[:3], o, o)
		}},
		{"gauss bwd short dl", "GaussBackward", "len(dl) = 3 < 4 required", func(o []T) error {
			return bindings.GaussBackward(2, 2, a6, b6, a6, b6, b6, nil, o, o[:3])
		}},
		{"logdet short s", "LogDetAcc", "len(s) = 6 < 8 required", func(o []T) error {
			return bindings.LogDetAcc(2, 4, a6, o)
		}},
		{"affine fwd short logdet", "AffineForward", "len(logdet) = 1 < 2 required", func(o []T) error {
			return bindings.AffineForward(2, 2, a6, b6, a6, 0, o, o[:1])
		}},
		{"affine fwd short m", "AffineForward", "len(m) = 3 < 4 required", func(o []T) error {
			return bindings.AffineForward(2, 2, a6, b6[:3], a6, 0, o, nil)
		}},
		{"affine inv short x", "AffineInverse", "len(x) = 3 < 4 required", func(o []T) error {
			return bindings.AffineInverse(2, 2, a6, b6, a6, o[:3])
		}},
		{"adam mismatch", "Adam", "len(v) = 3 != len(p) = 4", func(o []T) error {
			return bindings.Adam(o, a6[:4], b6[:4], a6[:3], 0.1, 0.9, 0.999, 1e-8, 0.1, 0.001)
		}},
		{"axpy mismatch", "Axpy", "len(y) = 4 != len(x) = 6", func(o []T) error {
			return bindings.Axpy(1, a6, o)
		}},
		{"mul mismatch b", "Mul", "len(b) = 4 != len(a) = 6", func(o []T) error {
			return bindings.Mul(a6, o, b6)
		}},
		{"mul mismatch out", "Mul", "len(out) = 4 != len(a) = 6", func(o []T) error {
			return bindings.Mul(a6, b6, o)
		}},
		{"gather negative d", "GatherRows", "negative size d = -2", func(o []T) error {
			return bindings.GatherRows(2, -2, a6, []int32{0, 1}, o)
		}},
		{"gather short idx", "GatherRows", "len(idx) = 1 < 2 required", func(o []T) error {
			return bindings.GatherRows(2, 2, a6, []int32{0}, o)
		}},
		{"gather index too big", "GatherRows", "idx[1] = 3 out of range [0, 3)", func(o []T) error {
			return bindings.GatherRows(2, 2, a6, []int32{0, 3}, o)
		}},
		{"gather index negative", "GatherRows", "idx[0] = -1 out of range [0, 3)", func(o []T) error {
			return bindings.GatherRows(2, 2, a6, []int32{-1, 0}, o)
		}},
		{"bias relu short bias", "BiasReLU", "len(bias) = 1 < 2 required", func(o []T) error {
			return bindings.BiasReLU(2, 2, a6[:1], o)
		}},
		{"bias relu bwd short dz", "BiasReLUBackward", "len(dz) = 3 < 4 required", func(o []T) error {
			return bindings.BiasReLUBackward(2, 2, a6, b6, o[:3], o)
		}},
		{"bias relu bwd short db", "BiasReLUBackward", "len(db) = 1 < 2 required", func(o []T) error {
			return bindings.BiasReLUBackward(2, 2, a6, b6, o, o[:1])
		}},
		{"copy cols negative c0", "CopyCols", "negative size c0 = -1", func(o []T) error {
			return bindings.CopyCols(2, 3, -1, 1, a6, o)
		}},
		{"copy cols range", "CopyCols", "columns [c0, c0+k) = [2, 4) outside [0, 3)", func(o []T) error {
			return bindings.CopyCols(2, 3, 2, 2, a6, o)
		}},
		{"copy cols short dst", "CopyCols", "len(dst) = 4 < 6 required", func(o []T) error {
			return bindings.CopyCols(2, 3, 0, 3, a6, o)
		}},
		{"add cols negative k", "AddCols", "negative size k = -2", func(o []T) error {
			return bindings.AddCols(2, 3, 0, -2, a6, o)
		}},
		{"add cols short src", "AddCols", "len(src) = 3 < 4 required", func(o []T) error {
			return bindings.AddCols(2, 2, 0, 2, a6[:3], o)
		}},
		{"coupling negative t0", "CouplingForward", "negative size t0 = -1", func(o []T) error {
			return bindings.CouplingForward(2, 2, -1, 1, bindings.ScaleExp, 1, a6, b6, o, nil)
		}},
		{"coupling range", "CouplingForward", "columns [t0, t0+dt) = [1, 3) outside [0, 2)", func(o []T) error {
			return bindings.CouplingForward(2, 2, 1, 2, bindings.ScaleExp, 1, a6, b6, o, nil)
		}},
		{"coupling kind", "CouplingForward", "unknown scale kind 3", func(o []T) error {
			return bindings.CouplingForward(2, 2, 0, 1, 3, 1, a6, b6, o, nil)
		}},
		{"coupling bound", "CouplingInverse", "scale bound = 0, want > 0 for ScaleExp", func(o []T) error {
			return bindings.CouplingInverse(2, 2, 0, 1, bindings.ScaleExp, 0, a6, b6, o)
		}},
		{"coupling bound NaN", "CouplingBackward", "scale bound = NaN, want > 0 for ScaleExp", func(o []T) error {
			return bindings.CouplingBackward(2, 2, 0, 1, bindings.ScaleExp, T(math.NaN()), a6, b6, a6, b6, o, o)
		}},
		{"coupling bound zero sizes", "CouplingForward", "scale bound = -1, want > 0 for ScaleExp", func(o []T) error {
			return bindings.CouplingForward[T](0, 0, 0, 0, bindings.ScaleExp, -1, nil, nil, nil, nil)
		}},
		{"coupling dt overflow", "CouplingForward", "size overflow", func(o []T) error {
			return bindings.CouplingForward(1, math.MaxInt, 0, math.MaxInt/2+1, bindings.ScaleSigmoid, 0, a6, b6, o, nil)
		}},
		{"coupling short h", "CouplingForward", "len(h) = 3 < 4 required", func(o []T) error {
			return bindings.CouplingForward(2, 2, 0, 1, bindings.ScaleSigmoid, 0, a6, b6[:3], o, nil)
		}},
		{"coupling short logdet", "CouplingForward", "len(logdet) = 1 < 2 required", func(o []T) error {
			return bindings.CouplingForward(2, 2, 0, 1, bindings.ScaleSigmoid, 0, a6, b6, o, o[:1])
		}},
		{"coupling inv short x", "CouplingInverse", "len(x) = 3 < 4 required", func(o []T) error {
			return bindings.CouplingInverse(2, 2, 0, 1, bindings.ScaleSigmoid, 0, a6, b6, o[:3])
		}},
		{"coupling bwd short dlogdet", "CouplingBackward", "len(dlogdet) = 1 < 2 required", func(o []T) error {
			return bindings.CouplingBackward(2, 2, 0, 1, bindings.ScaleSigmoid, 0, a6, b6, a6, b6[:1], nil, o)
		}},
		{"coupling bwd short dh", "CouplingBackward", "len(dh) = 3 < 4 required", func(o []T) error {
			return bindings.CouplingBackward(2, 2, 0, 1, bindings.ScaleSigmoid, 0, a6, b6, a6, b6, nil, o[:3])
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := out(4)
			var err error
			require.NotPanics(t, func() { err = tc.call(o) })
			var be *bindings.Error
			require.ErrorAs(t, err, &be)
			assert.Equal(t, tc.op, be.Op)
			assert.Equal(t, tc.msg, be.Msg)
			assert.Equal(t, "bindings: "+tc.op+": "+tc.msg, err.Error())
			untouched(t, o)
		})
	}

	t.Run("dot mismatch", func(t *testing.T) {
		v, err := bindings.Dot(a6, b6[:5])
		var be *bindings.Error
		require.ErrorAs(t, err, &be)
		assert.Equal(t, "Dot", be.Op)
		assert.Equal(t, "len(y) = 5 != len(x) = 6", be.Msg)
		assert.Zero(t, v)
	})

	t.Run("size 0 calls succeed with nil slices", func(t *testing.T) {
		assert.NoError(t, bindings.Gemm[T](false, false, 0, 0, 0, 1, nil, 0, nil, 0, 0, nil, 0))
		assert.NoError(t, bindings.BiasAdd[T](0, 3, a6, nil))
		assert.NoError(t, bindings.BiasGrad[T](3, 0, nil, nil))
		assert.NoError(t, bindings.ReLU[T](nil, nil))
		assert.NoError(t, bindings.ReLUBackward[T](nil, nil, nil))
		assert.NoError(t, bindings.Tanh[T](nil, nil))
		assert.NoError(t, bindings.TanhBackward[T](nil, nil, nil))
		assert.NoError(t, bindings.GaussLogProb[T](0, 0, nil, nil, nil, 0, nil, nil))
		assert.NoError(t, bindings.GaussBackward[T](0, 0, nil, nil, nil, nil, nil, nil, nil, nil))
		assert.NoError(t, bindings.LogDetAcc[T](0, 2, nil, nil))
		assert.NoError(t, bindings.AffineForward[T](0, 0, nil, nil, nil, 0, nil, nil))
		assert.NoError(t, bindings.AffineInverse[T](0, 0, nil, nil, nil, nil))
		assert.NoError(t, bindings.Adam[T](nil, nil, nil, nil, 0, 0, 0, 0, 0, 0))
		assert.NoError(t, bindings.Axpy[T](1, nil, nil))
		assert.NoError(t, bindings.Mul[T](nil, nil, nil))
		assert.NoError(t, bindings.Fill[T](1, nil))
		assert.NoError(t, bindings.GatherRows[T](0, 2, nil, nil, nil))
		assert.NoError(t, bindings.BiasReLU[T](0, 2, a6, nil))
		assert.NoError(t, bindings.BiasReLUBackward[T](2, 0, nil, nil, nil, nil))
		assert.NoError(t, bindings.CopyCols[T](0, 3, 1, 2, nil, nil))
		assert.NoError(t, bindings.AddCols[T](0, 3, 3, 0, nil, nil))
		assert.NoError(t, bindings.CouplingForward[T](0, 3, 1, 2, bindings.ScaleExp, 1, nil, nil, nil, nil))
		assert.NoError(t, bindings.CouplingInverse[T](2, 0, 0, 0, bindings.ScaleSigmoid, 0, nil, nil, nil))
		assert.NoError(t, bindings.CouplingBackward[T](0, 3, 1, 2, bindings.ScaleSigmoid, 0, nil, nil, nil, nil, nil, nil))
	})
}

func TestValidation(t *testing.T) { both(t, testValidation[float32], testValidation[float64]) }

// ---- allocations ------------------------------------------------------------

func testAllocs[T bindings.Float](t *testing.T) {
	sanitize.SkipAllocationCounts(t)
	a, b, c := make([]T, 64*64), make([]T, 64*64), make([]T, 64*64)
	x, mu, l := make([]T, 16*4), make([]T, 4), make([]T, 16)
	u, logp := make([]T, 16*4), make([]T, 16)
	var err error
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		err = bindings.Gemm(false, true, 64, 64, 64, 1, a, 64, b, 64, 0, c, 64)
	}), "Gemm")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		err = bindings.GaussLogProb(16, 4, x, mu, l, 0, u, logp)
	}), "GaussLogProb")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		_, err = bindings.Dot(a, b)
	}), "Dot")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		err = bindings.BiasReLUBackward(16, 4, x, u, u, mu)
	}), "BiasReLUBackward")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		err = bindings.CouplingForward(16, 4, 1, 2, bindings.ScaleExp, 2, x, u, c[:64], logp)
	}), "CouplingForward")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		err = bindings.CouplingBackward(16, 4, 1, 2, bindings.ScaleSigmoid, 0, x, u, x, logp, c[:64], a[:64])
	}), "CouplingBackward")
	require.NoError(t, err)
}

func TestAllocs(t *testing.T) { both(t, testAllocs[float32], testAllocs[float64]) }

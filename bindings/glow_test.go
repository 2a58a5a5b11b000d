//go:build cgo

package bindings_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/bindings"
)

// actNormOf returns s(r), ln s(r) and ∂ln s/∂r from the definitions.
func actNormOf(kind bindings.ActNormKind, r float64) (s, lns, dlns float64) {
	if kind == bindings.ActNormExp {
		return math.Exp(r), r, 1
	}
	s = math.Log1p(math.Exp(r + 2))
	return s, math.Log(s), 1 / (1 + math.Exp(-(r + 2))) / s
}

func testActNorm[T bindings.Float](t *testing.T) {
	// n = 2, d = 3.
	x := []float64{1, 2, 3, -1, 0.5, 4}
	r := []float64{0.5, -1, 0.25}
	b := []float64{-0.5, 1, 2}
	dy := []float64{0.5, -1, 2, 1.5, 3, -2}
	wl := []float64{0.75, -1.25}
	for name, kind := range map[string]bindings.ActNormKind{"exp": bindings.ActNormExp, "softplus": bindings.ActNormSoftplus} {
		t.Run(name, func(t *testing.T) {
			wantY, wantDX := make([]float64, 6), make([]float64, 6)
			wantLD := []float64{0.125, -0.5}
			wantDR, wantDB := make([]float64, 3), make([]float64, 3)
			for j := 0; j < 3; j++ {
				s, lns, dlns := actNormOf(kind, r[j])
				for i := 0; i < 2; i++ {
					wantY[3*i+j] = (x[3*i+j] + b[j]) * s
					wantLD[i] += lns
					wantDX[3*i+j] = dy[3*i+j] * s
					wantDB[j] += s * dy[3*i+j]
					wantDR[j] += dlns * (s*dy[3*i+j]*(x[3*i+j]+b[j]) + wl[i])
				}
			}
			y, ld := make([]T, 6), conv[T](0.125, -0.5)
			require.NoError(t, bindings.ActNormForward(2, 3, kind, conv[T](x...), conv[T](r...), conv[T](b...), y, ld))
			near(t, wantY, y)
			near(t, wantLD, ld)

			back := make([]T, 6)
			require.NoError(t, bindings.ActNormInverse(2, 3, kind, y, conv[T](r...), conv[T](b...), back))
			near(t, x, back)

			dx, dr, db := make([]T, 6), make([]T, 3), make([]T, 3)
			require.NoError(t, bindings.ActNormBackward(2, 3, kind, conv[T](x...), conv[T](r...), conv[T](b...),
				conv[T](dy...), conv[T](wl...), dx, dr, db))
			near(t, wantDX, dx)
			near(t, wantDR, dr)
			near(t, wantDB, db)

			// nil logdet, nil dx: skipped; nil dlogdet: zero.
			y2, dr2, db2 := make([]T, 6), make([]T, 3), make([]T, 3)
			require.NoError(t, bindings.ActNormForward(2, 3, kind, conv[T](x...), conv[T](r...), conv[T](b...), y2, nil))
			assert.Equal(t, y, y2)
			require.NoError(t, bindings.ActNormBackward(2, 3, kind, conv[T](x...), conv[T](r...), conv[T](b...),
				conv[T](dy...), nil, nil, dr2, db2))
			assert.Equal(t, db, db2)
			for j := 0; j < 3; j++ {
				_, _, dlns := actNormOf(kind, r[j])
				wantDR[j] -= dlns * (wl[0] + wl[1])
			}
			near(t, wantDR, dr2)
		})
	}

	// Softplus far below 0: s = softplus(r + 2) is tiny but ln s stays
	// finite and close to r + 2; where s underflows it is exactly r + 2.
	for _, rv := range []float64{-60, -2000} {
		ld, y := make([]T, 1), make([]T, 1)
		require.NoError(t, bindings.ActNormForward(1, 1, bindings.ActNormSoftplus, conv[T](1), conv[T](rv), conv[T](0), y, ld))
		assert.InDelta(t, rv+2, float64(ld[0]), 1e-9*math.Abs(rv), "r = %v", rv)
	}
}

func TestActNorm(t *testing.T) { both(t, testActNorm[float32], testActNorm[float64]) }

func testLUSolve[T bindings.Float](t *testing.T) {
	// W = P·L·U with P swapping rows 0 and 2 (perm = [2, 1, 0]),
	// L = [1 0 0; 0.5 1 0; -0.25 0.5 1], U = [2 1 -1; 0 -1.5 0.5; 0 0 0.8].
	lu := []float64{2, 1, -1, 0.5, -1.5, 0.5, -0.25, 0.5, 0.8}
	perm := []int32{2, 1, 0}
	x := []float64{1, -2, 0.5, 3, 0.25, -1}
	// y = W x, with (L·U)[k, :] the row perm[k] of W.
	lum := [3][3]float64{{2, 1, -1}, {1, -1, 0}, {-0.5, -1, 1.3}}
	y := make([]float64, 6)
	for i := 0; i < 2; i++ {
		for k := 0; k < 3; k++ {
			for j := 0; j < 3; j++ {
				y[3*i+int(perm[k])] += lum[k][j] * x[3*i+j]
			}
		}
	}
	got := make([]T, 6)
	require.NoError(t, bindings.LUSolve(2, 3, conv[T](lu...), perm, conv[T](y...), got))
	near(t, x, got)
}

func TestLUSolve(t *testing.T) { both(t, testLUSolve[float32], testLUSolve[float64]) }

func testGlowValidation[T bindings.Float](t *testing.T) {
	a6, b6 := make([]T, 6), make([]T, 6)
	for _, tc := range []struct {
		name, op, msg string
		call          func(o []T) error
	}{
		{"actnorm kind", "ActNormForward", "unknown ActNorm kind 3", func(o []T) error {
			return bindings.ActNormForward(2, 2, 3, a6, b6, b6, o, nil)
		}},
		{"actnorm negative d", "ActNormInverse", "negative size d = -1", func(o []T) error {
			return bindings.ActNormInverse(2, -1, bindings.ActNormExp, a6, b6, b6, o)
		}},
		{"actnorm short r", "ActNormForward", "len(r) = 1 < 2 required", func(o []T) error {
			return bindings.ActNormForward(2, 2, bindings.ActNormExp, a6, b6[:1], b6, o, nil)
		}},
		{"actnorm short logdet", "ActNormForward", "len(logdet) = 1 < 2 required", func(o []T) error {
			return bindings.ActNormForward(2, 2, bindings.ActNormSoftplus, a6, b6, b6, o, o[:1])
		}},
		{"actnorm bwd short dlogdet", "ActNormBackward", "len(dlogdet) = 1 < 2 required", func(o []T) error {
			return bindings.ActNormBackward(2, 2, bindings.ActNormExp, a6, b6, b6, a6, b6[:1], nil, o, o)
		}},
		{"actnorm bwd short db", "ActNormBackward", "len(db) = 1 < 2 required", func(o []T) error {
			return bindings.ActNormBackward(2, 2, bindings.ActNormExp, a6, b6, b6, a6, nil, nil, o, o[:1])
		}},
		{"lu solve perm range", "LUSolve", "perm[1] = 2 outside [0, 2)", func(o []T) error {
			return bindings.LUSolve(2, 2, a6, []int32{0, 2}, b6, o)
		}},
		{"lu solve short perm", "LUSolve", "len(perm) = 1 < 2 required", func(o []T) error {
			return bindings.LUSolve(2, 2, a6, []int32{0}, b6, o)
		}},
		{"lu solve short lu", "LUSolve", "len(lu) = 3 < 4 required", func(o []T) error {
			return bindings.LUSolve(2, 2, a6[:3], []int32{0, 1}, b6, o)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := make([]T, 4)
			err := tc.call(o)
			var be *bindings.Error
			require.ErrorAs(t, err, &be)
			assert.Equal(t, tc.op, be.Op)
			assert.Equal(t, tc.msg, be.Msg)
			assert.Equal(t, make([]T, 4), o, "an argument error writes nothing")
		})
	}
	// Empty shapes need no buffers.
	assert.NoError(t, bindings.ActNormForward[T](0, 3, bindings.ActNormExp, nil, b6[:3], b6[:3], nil, nil))
	assert.NoError(t, bindings.ActNormBackward[T](0, 0, bindings.ActNormExp, nil, nil, nil, nil, nil, nil, nil, nil))
	assert.NoError(t, bindings.LUSolve[T](0, 0, nil, nil, nil, nil))
}

func TestGlowValidation(t *testing.T) {
	both(t, testGlowValidation[float32], testGlowValidation[float64])
}

func testGlowAllocs[T bindings.Float](t *testing.T) {
	x, y, r, b := make([]T, 16*4), make([]T, 16*4), make([]T, 4), make([]T, 4)
	lu, ld, dr, db := make([]T, 16), make([]T, 16), make([]T, 4), make([]T, 4)
	for i := 0; i < 4; i++ {
		lu[5*i] = 1
	}
	perm := []int32{3, 2, 1, 0}
	var err error
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		err = bindings.ActNormForward(16, 4, bindings.ActNormSoftplus, x, r, b, y, ld)
	}), "ActNormForward")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		err = bindings.ActNormBackward(16, 4, bindings.ActNormExp, x, r, b, y, ld, x, dr, db)
	}), "ActNormBackward")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		err = bindings.LUSolve(16, 4, lu, perm, x, y)
	}), "LUSolve")
	require.NoError(t, err)
}

func TestGlowAllocs(t *testing.T) { both(t, testGlowAllocs[float32], testGlowAllocs[float64]) }

//go:build cgo

package bindings_test

import (
	"errors"
	"github.com/lrmf-go/lrmf/internal/sanitize"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/bindings"
)

// With no hidden layer (dims [2, 1]) the dynamics is linear,
// f(z, t) = a·z + c·t + b with θ = [a, c, b], so tr ∂f/∂z = a and the
// solves have closed forms: for c = 0, z(t) = (z0 + b/a)·e^{a t} − b/a
// and logdet = a·(t1 − t0).
func testODELinear[T bindings.Float](t *testing.T, isa bindings.ODEISA) {
	dims := []int64{2, 1}
	np, err := bindings.ODEFuncNumParams(dims)
	require.NoError(t, err)
	require.Equal(t, 3, np)
	wl, err := bindings.ODEFuncWorkLen(dims, 0)
	require.NoError(t, err)
	work := make([]float64, wl)
	a, c, b := 0.5, 2.0, -0.25
	theta := conv[T](a, c, b)
	z := conv[T](1, -2, 0.5)
	dz, tr := make([]T, 3), make([]T, 3)
	require.NoError(t, bindings.ODEFuncForward(3, dims, theta, 0.75, z, 0, nil, dz, tr, work, isa))
	near(t, []float64{a*1 + c*0.75 + b, a*-2 + c*0.75 + b, a*0.5 + c*0.75 + b}, dz)
	near(t, []float64{a, a, a}, tr)

	// Hutchinson with probe ε = ±1 in 1-D is exact: ε·a·ε = a.
	wl1, err := bindings.ODEFuncWorkLen(dims, 2)
	require.NoError(t, err)
	work1 := make([]float64, wl1)
	eps := conv[T](1, -1, -1, -1, 1, 1)
	require.NoError(t, bindings.ODEFuncForward(3, dims, theta, 0.75, z, 2, eps, dz, tr, work1, isa))
	near(t, []float64{a, a, a}, tr)

	// VJP: ∂Λ/∂z = az·a, ∂Λ/∂θ = [Σ az·z + Σ atr, Σ az·t, Σ az].
	az, atr := conv[T](1, 2, 3), conv[T](0.5, -1, 2)
	gz, gth := make([]T, 3), make([]T, 3)
	require.NoError(t, bindings.ODEFuncVJP(3, dims, theta, 0.75, z, 0, nil, az, atr, gz, gth, work, isa))
	near(t, []float64{a, 2 * a, 3 * a}, gz)
	near(t, []float64{1 - 4 + 1.5 + 1.5, 6 * 0.75, 6}, gth)

	theta = conv[T](a, 0, b)
	want := func(z0, t0, t1 float64) float64 { return (z0+b/a)*math.Exp(a*(t1-t0)) - b/a }
	z1, ld := make([]T, 3), make([]T, 3)
	nfe, err := bindings.ODESolveRK4(3, dims, theta, 0, 1, 200, z, 0, nil, z1, ld, work, isa)
	require.NoError(t, err)
	assert.Equal(t, 4*200*3, nfe)
	near(t, []float64{want(1, 0, 1), want(-2, 0, 1), want(0.5, 0, 1)}, z1)
	near(t, []float64{a, a, a}, ld)
	nfe, acc, err := bindings.ODESolveDopri5(3, dims, theta, 1, -1, bindings.Dopri5Options{Atol: 1e-13, Rtol: 1e-13, H0: 0.1, MaxSteps: 10000}, z, 0, nil, z1, ld, work, isa)
	require.NoError(t, err)
	assert.Positive(t, acc)
	assert.Zero(t, (nfe-3)%6, "nfe = Σ_rows (1 + 6·attempts)")
	near(t, []float64{want(1, 1, -1), want(-2, 1, -1), want(0.5, 1, -1)}, z1)
	near(t, []float64{-2 * a, -2 * a, -2 * a}, ld)
}

func TestODELinear(t *testing.T) { eachISA(t, testODELinear[float32], testODELinear[float64]) }

func testODEValidation[T bindings.Float](t *testing.T, isa bindings.ODEISA) {
	dims := []int64{3, 4, 2}
	np, err := bindings.ODEFuncNumParams(dims)
	require.NoError(t, err)
	wl, err := bindings.ODEFuncWorkLen(dims, 0)
	require.NoError(t, err)
	theta, z, dz, tr, work := make([]T, np), make([]T, 8), make([]T, 8), make([]T, 4), make([]float64, wl)
	for _, c := range []struct {
		want string
		err  error
	}{
		{"bindings: ODEFuncForward: len(dims) = 1, want ≥ 2 ([D+1, hidden..., D])",
			bindings.ODEFuncForward(4, dims[:1], theta, 0, z, 0, nil, dz, tr, work, isa)},
		{"bindings: ODEFuncForward: dims[0] = 3, want dims[last] + 1 = 5 (input is [z, t])",
			bindings.ODEFuncForward(4, []int64{3, 4}, theta, 0, z, 0, nil, dz, tr, work, isa)},
		{"bindings: ODEFuncForward: dims[1] = 0 outside [1, 2^20]",
			bindings.ODEFuncForward(4, []int64{3, 0, 2}, theta, 0, z, 0, nil, dz, tr, work, isa)},
		{"bindings: ODEFuncForward: len(theta) = 25 < 26 required",
			bindings.ODEFuncForward(4, dims, theta[:np-1], 0, z, 0, nil, dz, tr, work, isa)},
		{"bindings: ODEFuncForward: len(eps) = 0 < 8 required",
			bindings.ODEFuncForward(4, dims, theta, 0, z, 1, nil, dz, tr, work, isa)},
		{"bindings: ODEFuncForward: len(work) = 1 < " + itoa(wl) + " required",
			bindings.ODEFuncForward(4, dims, theta, 0, z, 0, nil, dz, tr, work[:1], isa)},
		{"bindings: ODEFuncVJP: len(gtheta) = 0 < 26 required",
			bindings.ODEFuncVJP(4, dims, theta, 0, z, 0, nil, z, tr, dz, nil, work, isa)},
		{"bindings: ODESolveRK4: steps = 0, want ≥ 1",
			func() error {
				_, err := bindings.ODESolveRK4(4, dims, theta, 0, 1, 0, z, 0, nil, dz, tr, work, isa)
				return err
			}()},
		{"bindings: ODESolveDopri5: h0 = 0, want finite and > 0",
			func() error {
				_, _, err := bindings.ODESolveDopri5(4, dims, theta, 0, 1, bindings.Dopri5Options{Atol: 1e-6, MaxSteps: 10}, z, 0, nil, dz, tr, work, isa)
				return err
			}()},
		{"bindings: ODESolveDopri5: tolerances atol = 0, rtol = 0: want finite, ≥ 0, not both 0",
			func() error {
				_, _, err := bindings.ODESolveDopri5(4, dims, theta, 0, 1, bindings.Dopri5Options{H0: 0.1, MaxSteps: 10}, z, 0, nil, dz, tr, work, isa)
				return err
			}()},
	} {
		if assert.Error(t, c.err) {
			assert.Equal(t, c.want, c.err.Error())
		}
	}
	// n == 0: VJP zeroes gtheta.
	g := make([]T, np)
	g[0] = 7
	require.NoError(t, bindings.ODEFuncVJP(0, dims, theta, 0, nil, 0, nil, nil, nil, nil, g, work, isa))
	assert.Equal(t, T(0), g[0])
	// Typed failure: max steps.
	_, _, err = bindings.ODESolveDopri5(4, dims, conv[T](seq(np)...), 0, 1, bindings.Dopri5Options{Atol: 1e-12, Rtol: 1e-12, H0: 1e-4, MaxSteps: 1}, z, 0, nil, dz, tr, work, isa)
	assert.True(t, errors.Is(err, bindings.ErrODEMaxSteps), "%v", err)
	var oe *bindings.ODEError
	assert.True(t, errors.As(err, &oe))
}

func TestODEValidation(t *testing.T) {
	eachISA(t, testODEValidation[float32], testODEValidation[float64])
}

func seq(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Sin(float64(i + 1))
	}
	return v
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	s := ""
	for ; v > 0; v /= 10 {
		s = string(rune('0'+v%10)) + s
	}
	return s
}

func testODEAllocs[T bindings.Float](t *testing.T, isa bindings.ODEISA) {
	sanitize.SkipAllocationCounts(t)
	dims := []int64{3, 16, 16, 16, 2}
	np, _ := bindings.ODEFuncNumParams(dims)
	wl, _ := bindings.ODEFuncWorkLen(dims, 2)
	theta, work := conv[T](seq(np)...), make([]float64, wl)
	z, eps, dz, tr := make([]T, 16), make([]T, 32), make([]T, 16), make([]T, 8)
	g := make([]T, np)
	var err error
	assert.Zero(t, testing.AllocsPerRun(50, func() {
		err = bindings.ODEFuncForward(8, dims, theta, 0, z, 2, eps, dz, tr, work, isa)
	}), "ODEFuncForward")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(50, func() {
		err = bindings.ODEFuncVJP(8, dims, theta, 0, z, 2, eps, z, tr, dz, g, work, isa)
	}), "ODEFuncVJP")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(20, func() {
		_, err = bindings.ODESolveRK4(8, dims, theta, 0, 1, 4, z, 0, nil, dz, tr, work, isa)
	}), "ODESolveRK4")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(20, func() {
		_, _, err = bindings.ODESolveDopri5(8, dims, theta, 0, 1, bindings.Dopri5Options{Atol: 1e-5, Rtol: 1e-5, H0: 0.1, MaxSteps: 1000}, z, 0, nil, dz, tr, work, isa)
	}), "ODESolveDopri5")
	require.NoError(t, err)
	states, gz := make([]float64, 8*4*2), make([]T, 16)
	assert.Zero(t, testing.AllocsPerRun(20, func() {
		_, err = bindings.ODESolveRK4Save(8, dims, theta, 0, 1, 4, z, 2, eps, dz, tr, states, work, isa)
		if err == nil {
			_, _, err = bindings.ODESolveRK4Backward(8, dims, theta, 0, 1, 4, 2, eps, states, dz, tr, gz, g, work, isa)
		}
	}), "ODESolveRK4Save+Backward")
	require.NoError(t, err)
	opt := bindings.Dopri5Options{Atol: 1e-5, Rtol: 1e-5, H0: 0.1, MaxSteps: 100}
	tape, nacc := make([]float64, 8*100*4), make([]int64, 8)
	assert.Zero(t, testing.AllocsPerRun(20, func() {
		_, _, err = bindings.ODESolveDopri5Save(8, dims, theta, 0, 1, opt, z, 0, nil, dz, tr, tape, nacc, work, isa)
		if err == nil {
			_, _, err = bindings.ODESolveDopri5Backward(8, dims, theta, 100, 0, nil, tape, nacc, dz, tr, gz, g, work, isa)
		}
	}), "ODESolveDopri5Save+Backward")
	require.NoError(t, err)
}

func TestODEAllocs(t *testing.T) { eachISA(t, testODEAllocs[float32], testODEAllocs[float64]) }

// Gradients through a solve of the linear dynamics f = a·z + b (dims [2, 1],
// θ = [a, 0, b]): one RK4 step multiplies z by R(a·h) = 1 + x + x²/2 + x³/6
// + x⁴/24 (x = a·h), so ∂z1/∂z0 = R^steps exactly; logdet = a·(t1 − t0), so
// with a1 = 0, ald = 1 the θ-gradient is [t1 − t0, 0, 0] and gz0 = 0. For
// Dormand–Prince at tight tolerance ∂z1/∂z0 ≈ e^{a(t1 − t0)}.
func testODEBackwardLinear[T bindings.Float](t *testing.T, isa bindings.ODEISA) {
	dims := []int64{2, 1}
	wl, err := bindings.ODEFuncWorkLen(dims, 0)
	require.NoError(t, err)
	work := make([]float64, wl)
	a, b := 0.5, -0.25
	theta := conv[T](a, 0, b)
	// Not the fixed point −b/a = 0.5: there z is constant, the error
	// estimate is 0 and the steps grow to the whole span, which is exact
	// for z but not for its derivative (the step control does not see it).
	z0 := conv[T](1, -2, 0.75)
	const n, steps, t0, t1 = 3, 6, 0.25, 1.75
	z1, ld := make([]T, n), make([]T, n)
	states := make([]float64, n*steps)
	_, err = bindings.ODESolveRK4Save(n, dims, theta, t0, t1, steps, z0, 0, nil, z1, ld, states, work, isa)
	require.NoError(t, err)
	assert.Equal(t, float64(z0[1]), states[steps], "row 1's first state is z0")
	x := a * (t1 - t0) / steps
	r := math.Pow(1+x+x*x/2+x*x*x/6+x*x*x*x/24, steps)
	gz, gth := make([]T, n), make([]T, 3)
	nfe, nvjp, err := bindings.ODESolveRK4Backward(n, dims, theta, t0, t1, steps, 0, nil, states, conv[T](1, 2, -1), conv[T](0, 0, 0), gz, gth, work, isa)
	require.NoError(t, err)
	assert.Equal(t, 7*steps*n, nfe)
	assert.Equal(t, 4*steps*n, nvjp)
	near(t, []float64{r, 2 * r, -r}, gz)
	_, _, err = bindings.ODESolveRK4Backward(n, dims, theta, t0, t1, steps, 0, nil, states, conv[T](0, 0, 0), conv[T](1, 1, 1), gz, gth, work, isa)
	require.NoError(t, err)
	near(t, []float64{0, 0, 0}, gz)
	near(t, []float64{n * (t1 - t0), 0, 0}, gth)

	opt := bindings.Dopri5Options{Atol: 1e-12, Rtol: 1e-12, H0: 0.1, MaxSteps: 500}
	tape, nacc := make([]float64, n*opt.MaxSteps*3), make([]int64, n)
	_, acc, err := bindings.ODESolveDopri5Save(n, dims, theta, t0, t1, opt, z0, 0, nil, z1, ld, tape, nacc, work, isa)
	require.NoError(t, err)
	assert.Equal(t, int64(acc), nacc[0]+nacc[1]+nacc[2])
	assert.Equal(t, t0, tape[0], "row 0's first step starts at t0")
	nfe, nvjp, err = bindings.ODESolveDopri5Backward(n, dims, theta, opt.MaxSteps, 0, nil, tape, nacc, conv[T](1, 2, -1), conv[T](1, 1, 1), gz, gth, work, isa)
	require.NoError(t, err)
	assert.Equal(t, 11*acc, nfe)
	assert.Equal(t, 6*acc, nvjp)
	e := math.Exp(a * (t1 - t0))
	// The solve is accurate to ~1e-11, not to the last bits.
	loose := func(want []float64, got []T) {
		t.Helper()
		for i := range want {
			assert.InDelta(t, want[i], float64(got[i]), math.Max(tol[T](), 1e-9)*math.Max(1, math.Abs(want[i])), "index %d", i)
		}
	}
	loose([]float64{e, 2 * e, -e}, gz)
	// ∂z1/∂a = (z0 + b/a)(t1 − t0)e^{aT} − (b/a²)(e^{aT} − 1) per row, weighted.
	dza := func(z float64) float64 {
		return (z+b/a)*(t1-t0)*e - b/(a*a)*(e-1)
	}
	// ∂z1/∂b = (e^{aT} − 1)/a per row (the t coefficient's is not checked).
	loose([]float64{dza(1) + 2*dza(-2) - dza(0.75) + n*(t1-t0), 2 * (e - 1) / a}, []T{gth[0], gth[2]})

	// Validation: a tape count outside [0, MaxSteps].
	nacc[1] = int64(opt.MaxSteps + 1)
	_, _, err = bindings.ODESolveDopri5Backward(n, dims, theta, opt.MaxSteps, 0, nil, tape, nacc, z0, ld, gz, gth, work, isa)
	if assert.Error(t, err) {
		assert.Equal(t, "bindings: ODESolveDopri5Backward: nacc[1] = 501 outside [0, 500]", err.Error())
	}
	_, _, err = bindings.ODESolveRK4Backward(n, dims, theta, t0, t1, steps, 0, nil, states[:1], z0, ld, gz, gth, work, isa)
	if assert.Error(t, err) {
		assert.Equal(t, "bindings: ODESolveRK4Backward: len(states) = 1 < 18 required", err.Error())
	}
}

func TestODEBackwardLinear(t *testing.T) {
	eachISA(t, testODEBackwardLinear[float32], testODEBackwardLinear[float64])
}

// eachISA runs the float32 and float64 instances of a test on every ODE
// code path this CPU runs.
func eachISA(t *testing.T, f32, f64 func(*testing.T, bindings.ODEISA)) {
	t.Helper()
	for _, isa := range bindings.ODEISAs() {
		t.Run(isa.String(), func(t *testing.T) {
			both(t, func(t *testing.T) { f32(t, isa) }, func(t *testing.T) { f64(t, isa) })
		})
	}
}

package model_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/model/modeltest"
	"github.com/lrmf-go/lrmf/native"
)

// Fixed-step RK4 is a smooth function of θ and x, so finite differences see
// exactly the discrete map whose gradient the replayed backward pass
// computes; the checks of the continuous flow (log-det = ln|det J|,
// inverse) need the solution itself to be accurate, so they use a tight
// Dormand–Prince.
var (
	ffjordRK4   = model.FFJORDOptions{Blocks: 2, Hidden: 6, Depth: 2, Solver: "rk4", Steps: 8}
	ffjordTight = model.FFJORDOptions{Blocks: 2, Hidden: 6, Depth: 2, Solver: "dopri5", Atol: 1e-12, Rtol: 1e-12, MaxSteps: 5000}
)

func TestFFJORDFlowGradients(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, d := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("rk4/D=%d", d), func(t *testing.T) {
			f, err := model.NewFFJORD(be, d, ffjordRK4, rng)
			require.NoError(t, err)
			modeltest.FlowGradients(t, be, f, modeltest.Rand(be, rng, 5, d, 1.5), rng, 1e-6)
		})
		// Through the adaptive solver the step sequence is a constant of
		// the backward pass; at tolerance 1e-12 moving θ by the FD step
		// changes the solution through the step control by far less than
		// the 1e-6 tolerance.
		t.Run(fmt.Sprintf("dopri5/D=%d", d), func(t *testing.T) {
			f, err := model.NewFFJORD(be, d, ffjordTight, rng)
			require.NoError(t, err)
			modeltest.FlowGradients(t, be, f, modeltest.Rand(be, rng, 4, d, 1.5), rng, 1e-6)
		})
	}
}

func TestFFJORDFlowInverseAndLogDet(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, d := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("D=%d", d), func(t *testing.T) {
			f, err := model.NewFFJORD(be, d, ffjordTight, rng)
			require.NoError(t, err)
			x := modeltest.Rand(be, rng, 6, d, 2)
			modeltest.FlowInverse(t, be, f, x, 1e-8)
			modeltest.FlowLogDet(t, be, f, x, 1e-7)
		})
	}
}

// RK4 inverts itself to O(h⁴): with 200 steps, to 1e-8 in float64.
func TestFFJORDRK4Inverse(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	o := ffjordRK4
	o.Steps = 200
	f, err := model.NewFFJORD(be, 2, o, rng)
	require.NoError(t, err)
	modeltest.FlowInverse(t, be, f, modeltest.Rand(be, rng, 20, 2, 2), 1e-8)
}

func TestFFJORDInverseFloat32(t *testing.T) {
	be, err := native.NewCPU(native.Float32, 2)
	if err != nil {
		t.Skip(err)
	}
	defer be.Close()
	rng := newRNG(t)
	for _, o := range []model.FFJORDOptions{
		{Solver: "dopri5", Atol: 1e-6, Rtol: 1e-6},
		{Solver: "rk4", Steps: 40},
	} {
		f, err := model.NewFFJORD(be, 2, o, rng)
		require.NoError(t, err)
		modeltest.FlowInverse(t, be, f, modeltest.Rand(be, rng, 500, 2, 2), 1e-4)
	}
}

// A tight Dormand–Prince and RK4 with many steps solve the same ODE.
func TestFFJORDSolversAgree(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	seed := rng.Uint64()
	mk := func(o model.FFJORDOptions) (y, ld []float64) {
		f, err := model.NewFFJORD(be, 3, o, newRNGFrom(seed))
		require.NoError(t, err)
		x := modeltest.Rand(be, newRNGFrom(seed+1), 30, 3, 2)
		yt, lt := be.New(30, 3), be.New(30, 1)
		require.NoError(t, f.Forward(yt, lt, x))
		return download(be, yt), download(be, lt)
	}
	o := ffjordTight
	o.Atol, o.Rtol = 1e-10, 1e-10
	y1, l1 := mk(o)
	o = ffjordRK4
	o.Steps = 400
	y2, l2 := mk(o)
	for i := range y1 {
		require.InDelta(t, y1[i], y2[i], 1e-8, "z(1)[%d]", i)
	}
	for i := range l1 {
		require.InDelta(t, l1[i], l2[i], 1e-8, "logdet[%d]", i)
	}
}

// The mean of the Hutchinson log-det over many probe draws is the exact
// log-det: each draw is unbiased, and with 4000 draws the standard error
// of the mean is below 0.03 times the per-draw spread.
func TestFFJORDHutchinsonMeanIsExact(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	seed := rng.Uint64()
	const n, draws = 4, 4000
	x := modeltest.Rand(be, newRNGFrom(seed+1), n, 3, 1.5)
	run := func(o model.FFJORDOptions, k int) (mean, sd []float64) {
		f, err := model.NewFFJORD(be, 3, o, newRNGFrom(seed))
		require.NoError(t, err)
		y, ld := be.New(n, 3), be.New(n, 1)
		sum, sq := make([]float64, n), make([]float64, n)
		for r := 0; r < k; r++ {
			be.Fill(ld, 0)
			require.NoError(t, f.Forward(y, ld, x))
			for i, v := range download(be, ld) {
				sum[i] += v
				sq[i] += v * v
			}
		}
		mean, sd = make([]float64, n), make([]float64, n)
		for i := range sum {
			mean[i] = sum[i] / float64(k)
			sd[i] = math.Sqrt(max(0, sq[i]/float64(k)-mean[i]*mean[i]))
		}
		return mean, sd
	}
	o := ffjordRK4
	exact, _ := run(o, 1)
	o.Trace = "hutchinson"
	mean, sd := run(o, draws)
	for i := range exact {
		require.Greater(t, sd[i], 0.0, "Hutchinson estimates must vary with the probes")
		se := sd[i] / math.Sqrt(draws)
		require.InDelta(t, exact[i], mean[i], 5*se, "row %d: mean %v ± %v vs exact %v", i, mean[i], se, exact[i])
	}
}

func TestFFJORDDensityGradients(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, d := range []int{1, 2} {
		p, err := model.FFJORDDensity(ffjordRK4)(be, d, rng)
		require.NoError(t, err)
		modeltest.DensityGradients(t, be, p, modeltest.Rand(be, rng, 5, d, 1.5), rng, 1e-6)
		st, ok := model.SolverStatsOf(p)
		require.True(t, ok)
		require.Greater(t, st.NFE, 0)
		require.Greater(t, st.VJP, 0)
	}
}

func TestFFJORDSolverErrors(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	f, err := model.NewFFJORD(be, 2, model.FFJORDOptions{MaxSteps: 1}, rng)
	require.NoError(t, err)
	x := modeltest.Rand(be, rng, 3, 2, 1)
	err = f.Forward(be.New(3, 2), be.New(3, 1), x)
	require.True(t, errors.Is(err, native.ErrODEMaxSteps), "%v", err)
	require.ErrorContains(t, err, "raise the step budget")
	require.ErrorContains(t, f.Backward(nil, be.New(3, 2), be.New(3, 1)), "needs a Forward")
}

func TestFFJORDRejectsBadOptions(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, c := range []struct {
		o    model.FFJORDOptions
		want string
	}{
		{model.FFJORDOptions{Solver: "euler"}, "solver"},
		{model.FFJORDOptions{Trace: "approx"}, "trace"},
		{model.FFJORDOptions{Blocks: -1}, "positive"},
		{model.FFJORDOptions{Atol: -1, Rtol: 1}, "tolerances"},
		{model.FFJORDOptions{Probes: 3}, "probes"},
		{model.FFJORDOptions{Steps: -2}, "steps"},
		{model.FFJORDOptions{Hidden: 1 << 21}, "too large"},
	} {
		_, err := model.NewFFJORD(be, 2, c.o, rng)
		require.ErrorContains(t, err, c.want, "%+v", c.o)
	}
}

// Steady-state FFJORD training steps allocate nothing on the cpu backend.
func TestFFJORDStepAllocatesNothing(t *testing.T) {
	be, err := native.NewCPU(native.Float32, 2)
	if err != nil {
		t.Skip(err)
	}
	defer be.Close()
	rng := newRNG(t)
	for _, o := range []model.FFJORDOptions{{Solver: "rk4"}, {Solver: "dopri5"}, {Solver: "rk4", Trace: "hutchinson"}} {
		f, err := model.NewFFJORD(be, 2, o, rng)
		require.NoError(t, err)
		x := modeltest.Rand(be, rng, 64, 2, 1)
		y, ld, dy, dld := be.New(64, 2), be.New(64, 1), be.New(64, 2), be.New(64, 1)
		be.Fill(dy, 0.1)
		be.Fill(dld, 0.1)
		step := func() {
			be.Fill(ld, 0)
			if err := f.Forward(y, ld, x); err != nil {
				t.Fatal(err)
			}
			if err := f.Backward(nil, dy, dld); err != nil {
				t.Fatal(err)
			}
		}
		step()
		require.Zero(t, testing.AllocsPerRun(20, step), "%+v", o)
	}
}

func newRNGFrom(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }

func download(be native.Backend, t *native.Tensor) []float64 {
	v := make([]float64, t.Len())
	be.Download(v, t)
	return v
}

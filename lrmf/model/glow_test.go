package model_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/internal/sanitize"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/model/modeltest"
	"github.com/lrmf-go/lrmf/native"
)

// Glow's backward, inverse and log-det against finite differences, from
// both starts (data-initialised with random rotations, and the identity),
// moved to a generic point, for both ActNorm scales.
func TestGlowFlowChecks(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, an := range []native.ActNormKind{native.ActNormExp, native.ActNormSoftplus} {
		for _, id := range []bool{false, true} {
			for _, d := range []int{2, 3, 5} {
				t.Run(fmt.Sprintf("%v/identity=%v/D=%d", an, id, d), func(t *testing.T) {
					f, err := model.NewGlow(be, d, model.GlowOptions{Blocks: 3, Hidden: 6, Depth: 1, ActNorm: an, Identity: id}, rng)
					require.NoError(t, err)
					x := modeltest.Rand(be, rng, 5, d, 1.5)
					y, ld := be.New(5, d), be.New(5, 1)
					require.NoError(t, f.Forward(y, ld, x)) // the ActNorm initialisation
					modeltest.Perturb(be, f.Params(), rng, 0.3)
					modeltest.FlowGradients(t, be, f, x, rng, 1e-6)
					modeltest.FlowInverse(t, be, f, x, 1e-10)
					modeltest.FlowLogDet(t, be, f, x, 1e-7)
				})
			}
		}
	}
}

func TestGlowDensityGradients(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	p, err := model.GlowDensity(model.GlowOptions{Blocks: 2, Hidden: 5, Depth: 2})(be, 4, rng)
	require.NoError(t, err)
	x := modeltest.Rand(be, rng, 6, 4, 1.5)
	require.NoError(t, p.LogProb(be.New(6, 1), x))
	modeltest.Perturb(be, p.Params(), rng, 0.3)
	modeltest.DensityGradients(t, be, p, x, rng, 1e-6)
}

// The flow maker starts at the identity, exactly.
func TestGlowFlowStartsAsIdentity(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, spec := range []model.ModelSpec{{Kind: "glow"}, {Kind: "realnvp"}} {
		mk, err := spec.FlowMaker()
		require.NoError(t, err)
		f, err := mk(be, 7, rng)
		require.NoError(t, err)
		x := modeltest.Rand(be, rng, 10, 7, 2)
		y, ld := be.New(10, 7), be.New(10, 1)
		require.NoError(t, f.Forward(y, ld, x))
		require.Equal(t, download(be, x), download(be, y), spec.Kind)
		require.Equal(t, make([]float64, 10), download(be, ld), spec.Kind)
	}
}

// Glow's initialisation: the ActNorm standardises the first batch, and with
// an identity coupling and a rotation W the output has mean 0 and total
// variance D (a rotation keeps the trace); the log-det at the start is
// Σ_j ln(1/std_j) (|det W| = 1). Parameters copied from an initialised flow
// are kept, not re-fitted to the new flow's first batch.
func TestGlowDataInitialisation(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	const n, d = 400, 5
	xs := make([]float64, n*d)
	for i := range xs {
		xs[i] = 3 + float64(i%d+1)*rng.NormFloat64()
	}
	x := be.New(n, d)
	be.Upload(x, xs)
	f, err := model.NewGlow(be, d, model.GlowOptions{Blocks: 1}, rng)
	require.NoError(t, err)
	y, ld := be.New(n, d), be.New(n, 1)
	require.NoError(t, f.Forward(y, ld, x))
	ys := download(be, y)
	tr := 0.0
	for a := 0; a < d; a++ {
		m := 0.0
		for i := 0; i < n; i++ {
			m += ys[i*d+a] / n
			tr += ys[i*d+a] * ys[i*d+a] / n
		}
		require.InDelta(t, 0, m, 1e-9, "mean of column %d", a)
	}
	require.InDelta(t, float64(d), tr, 1e-9, "total variance")
	wantLD := 0.0
	for j := 0; j < d; j++ {
		mu, v := 0.0, 0.0
		for i := 0; i < n; i++ {
			mu += xs[i*d+j] / n
		}
		for i := 0; i < n; i++ {
			v += (xs[i*d+j] - mu) * (xs[i*d+j] - mu) / n
		}
		wantLD -= 0.5 * math.Log(v)
	}
	require.InDelta(t, wantLD, download(be, ld)[0], 1e-9)

	g, err := model.NewGlow(be, d, model.GlowOptions{Blocks: 1}, rng)
	require.NoError(t, err)
	model.CopyParams(be, g.Params(), f.Params())
	other := modeltest.Rand(be, rng, 50, d, 1)
	y1, y2 := be.New(50, d), be.New(50, d)
	require.NoError(t, f.Forward(y1, be.New(50, 1), other))
	require.NoError(t, g.Forward(y2, be.New(50, 1), other))
	require.Equal(t, download(be, y1), download(be, y2))
}

func TestGlowInverseBeforeData(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	f, err := model.NewGlow(be, 3, model.GlowOptions{}, rng)
	require.NoError(t, err)
	require.ErrorContains(t, f.Inverse(be.New(2, 3), be.New(2, 3)), "before the ActNorm layers have seen data")
}

// In float32 on the CPU backend the inverse recovers x to 1e-5, and a
// training-sized step allocates nothing.
func TestGlowFloat32(t *testing.T) {
	be, err := native.NewCPU(native.Float32, 2)
	if err != nil {
		t.Skip(err)
	}
	defer be.Close()
	rng := newRNG(t)
	f, err := model.NewGlow(be, 6, model.GlowOptions{Blocks: 4, Hidden: 16}, rng)
	require.NoError(t, err)
	x := modeltest.Rand(be, rng, 500, 6, 2)
	y, ld, dx := be.New(500, 6), be.New(500, 1), be.New(500, 6)
	require.NoError(t, f.Forward(y, ld, x))
	modeltest.Perturb(be, f.Params(), rng, 0.2)
	modeltest.FlowInverse(t, be, f, x, 1e-5)
	step := func() {
		require.NoError(t, f.Forward(y, ld, x))
		require.NoError(t, f.Backward(dx, y, ld))
	}
	step()
	require.Zero(t, testing.AllocsPerRun(5, step))
}

// Real NVP on D > 2 mixes within the halves: with two blocks and fixed
// halves ∂y_j/∂x_k is exactly 0 for j ≠ k both in the second half (block
// 0 scales them by functions of the first half only, block 1 passes them
// through); the permuted block 1 makes some of them non-zero. D = 2 keeps
// the plain swap.
func TestRealNVPMixesHalves(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	const d = 6
	f, err := model.NewRealNVP(be, d, model.RealNVPOptions{Blocks: 2, Hidden: 8}, rng)
	require.NoError(t, err)
	modeltest.Perturb(be, f.Params(), rng, 0.5)
	x := modeltest.Rand(be, rng, 1, d, 1)
	xs := download(be, x)
	y, ld := be.New(1, d), be.New(1, 1)
	eval := func(v []float64) []float64 {
		be.Upload(x, v)
		require.NoError(t, f.Forward(y, ld, x))
		return download(be, y)
	}
	mixed := 0.0
	for k := d / 2; k < d; k++ {
		p := append([]float64(nil), xs...)
		p[k] += 1e-6
		yp := eval(p)
		p[k] -= 2e-6
		ym := eval(p)
		for j := d / 2; j < d; j++ {
			if j != k {
				mixed = math.Max(mixed, math.Abs(yp[j]-ym[j])/2e-6)
			}
		}
	}
	require.Greater(t, mixed, 1e-3)
}

// Parameters reset to the built state (as ShiftTest does before each refit)
// initialise again on the next batch instead of running with NaN.
func TestGlowResetReinitialises(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	const n, d = 100, 3
	f, err := model.NewGlow(be, d, model.GlowOptions{Blocks: 1}, rng)
	require.NoError(t, err)
	var built []*native.Tensor
	for _, p := range f.Params() {
		c := be.New(p.Value.Rows(), p.Value.Cols())
		be.Copy(c, p.Value)
		built = append(built, c)
	}
	y, ld := be.New(n, d), be.New(n, 1)
	require.NoError(t, f.Forward(y, ld, modeltest.Rand(be, rng, n, d, 1)))
	for i, p := range f.Params() {
		be.Copy(p.Value, built[i])
	}
	x2 := modeltest.Rand(be, rng, n, d, 5)
	be.Fill(ld, 0)
	require.NoError(t, f.Forward(y, ld, x2))
	ys := download(be, y)
	for j := 0; j < d; j++ {
		m := 0.0
		for i := 0; i < n; i++ {
			m += ys[i*d+j] / n
		}
		require.InDelta(t, 0, m, 1e-9, "column %d", j)
	}
}

// A Glow density training step (LogProb and Backward) allocates nothing
// once its buffers exist, in float32 and float64 on the cpu backend: the
// LU layer assembles W and its gradients on the backend, with its n×1 ones
// kept. (One batch size: Glow.resize reallocates its buffers when the
// batch size changes.)
func TestGlowDensityStepAllocatesNothing(t *testing.T) {
	sanitize.SkipAllocationCounts(t)
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		be, err := native.NewCPU(dt, 2)
		if err != nil {
			t.Skip(err)
		}
		rng := newRNG(t)
		p, err := model.GlowDensity(model.GlowOptions{Blocks: 2, Hidden: 8})(be, 5, rng)
		require.NoError(t, err)
		require.Zero(t, densityStepAllocs(t, be, p, modeltest.Rand(be, rng, 4, 5, 1)), "%v", dt)
		be.Close()
	}
}

// densityStepAllocs returns the allocations per density training step
// (LogProb, then Backward with dlogp = −0.25 on every row) of p on the rows
// of x, after one step that lets its buffers grow.
func densityStepAllocs(t *testing.T, be native.Backend, p model.Density, x *native.Tensor) float64 {
	t.Helper()
	logp, w := be.New(x.Rows(), 1), be.New(x.Rows(), 1)
	be.Fill(w, -0.25)
	step := func() {
		if err := p.LogProb(logp, x); err != nil {
			t.Fatal(err)
		}
		if err := p.Backward(nil, w); err != nil {
			t.Fatal(err)
		}
	}
	step()
	return testing.AllocsPerRun(20, step)
}

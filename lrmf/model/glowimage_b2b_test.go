package model_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/internal/sanitize"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/model/modeltest"
	"github.com/lrmf-go/lrmf/native"
)

var b2bCases = []struct {
	s model.ImageShape
	o model.GLOWOptions
}{
	{model.ImageShape{H: 4, W: 4, C: 1}, model.GLOWOptions{Levels: 2, Steps: 2, Hidden: 3}},
	{model.ImageShape{H: 4, W: 2, C: 2}, model.GLOWOptions{Levels: 1, Steps: 1, Hidden: 4}},
}

// T = G2⁻¹∘G1 with G1 ≠ G2: gradients of both GLOWs' parameters and of x
// against finite differences, T⁻¹∘T = id, and the log-det against
// ln|det J| of the finite-difference Jacobian.
func TestGLOWBackToBackChecks(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	for _, c := range b2bCases {
		f, err := model.GLOWBackToBackFlow(c.s, c.o)(be, c.s.Dim(), rng)
		require.NoError(t, err)
		b := f.(*model.GLOWBackToBack)
		require.NoError(t, b.InitFromData(modeltest.Rand(be, rng, 8, c.s.Dim(), 1)))
		require.Len(t, b.Params(), 2*len(b.G1().Params()))
		modeltest.Perturb(be, b.Params(), rng, 0.3)
		x := modeltest.Rand(be, rng, 3, c.s.Dim(), 1)
		modeltest.FlowGradients(t, be, b, x, rng, 1e-6)
		modeltest.FlowInverse(t, be, b, x, 1e-10)
		modeltest.FlowLogDet(t, be, b, x, 1e-7)
	}
}

// Back to back from two separately built (here: differently seeded and
// initialised) GLOWs, the paper's T(b) = G_A⁻¹(G_B(b)); with G2 frozen
// only G1's parameters are T's and their gradients still check.
func TestGLOWBackToBackFromFitted(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	c := b2bCases[0]
	var gs [2]*model.GLOW
	for i := range gs {
		g, err := model.NewGLOW(be, c.s, c.o, rng)
		require.NoError(t, err)
		require.NoError(t, g.InitFromData(modeltest.Rand(be, rng, 8, c.s.Dim(), float64(i+1))))
		modeltest.Perturb(be, g.Params(), rng, 0.3)
		gs[i] = g
	}
	b, err := model.NewGLOWBackToBack(gs[0], gs[1])
	require.NoError(t, err)
	require.Equal(t, "g1.l0.s0.actnorm.r", b.Params()[0].Name)
	b.Freeze(false, true)
	require.Len(t, b.Params(), len(gs[0].Params()))
	x := modeltest.Rand(be, rng, 2, c.s.Dim(), 1)
	modeltest.FlowGradients(t, be, b, x, rng, 1e-6)
	modeltest.FlowInverse(t, be, b, x, 1e-10)

	_, err = model.NewGLOWBackToBack(gs[0], gs[0])
	require.ErrorContains(t, err, "two distinct")
	other, err := model.NewGLOW(be, model.ImageShape{H: 8, W: 8, C: 1}, c.o, rng)
	require.NoError(t, err)
	_, err = model.NewGLOWBackToBack(gs[0], other)
	require.ErrorContains(t, err, "differ")
	_, err = model.GLOWBackToBackFlow(c.s, c.o)(be, 15, rng)
	require.ErrorContains(t, err, "dimension 16")
}

// A fresh back-to-back GLOW is the identity, with log-det 0, before and
// after its data-dependent initialisation, on the float64 reference and
// the float32 cpu backend (to rounding).
func TestGLOWBackToBackStartsAtIdentity(t *testing.T) {
	s := model.ImageShape{H: 8, W: 8, C: 1}
	cpu, err := native.NewCPU(native.Float32, 2)
	require.NoError(t, err)
	defer cpu.Close()
	for _, c := range []struct {
		be  native.Backend
		tol float64
	}{{native.NewRef(), 1e-12}, {cpu, 1e-5}} {
		rng := newRNG(t)
		f, err := model.GLOWBackToBackFlow(s, model.GLOWOptions{Levels: 2, Steps: 2, Hidden: 8})(c.be, s.Dim(), rng)
		require.NoError(t, err)
		b := f.(*model.GLOWBackToBack)
		for i, p := range b.G1().Params() { // G2 is G1's copy, hidden weights included
			v1, v2 := make([]float64, p.Value.Len()), make([]float64, p.Value.Len())
			c.be.Download(v1, p.Value)
			c.be.Download(v2, b.G2().Params()[i].Value)
			require.Equal(t, v1, v2, "%s", p.Name)
		}
		x := modeltest.Rand(c.be, rng, 5, s.Dim(), 2)
		for _, init := range []bool{false, true} {
			if init {
				require.NoError(t, b.InitFromData(x))
			}
			y, ld := c.be.New(5, s.Dim()), c.be.New(5, 1)
			require.NoError(t, b.Forward(y, ld, x))
			xs, ys, lds := make([]float64, x.Len()), make([]float64, y.Len()), make([]float64, 5)
			c.be.Download(xs, x)
			c.be.Download(ys, y)
			c.be.Download(lds, ld)
			worst := 0.0
			for i := range xs {
				worst = math.Max(worst, math.Abs(ys[i]-xs[i]))
			}
			require.Less(t, worst, c.tol*10, "%s init=%v: max |T(x) − x|", c.be.Name(), init)
			for i, v := range lds {
				require.InDelta(t, 0, v, c.tol*100, "%s init=%v: log-det[%d]", c.be.Name(), init, i)
			}
		}
	}
}

func TestGLOWBackToBackBackwardNeedsForward(t *testing.T) {
	be, rng := native.NewRef(), newRNG(t)
	c := b2bCases[1]
	b, err := model.NewFreshGLOWBackToBack(be, c.s, c.o, rng)
	require.NoError(t, err)
	x, y, ld := be.New(2, c.s.Dim()), be.New(2, c.s.Dim()), be.New(2, 1)
	require.ErrorContains(t, b.Backward(nil, y, ld), "before Forward")
	require.NoError(t, b.Forward(y, ld, x))
	require.NoError(t, b.Inverse(x, y))
	require.ErrorContains(t, b.Backward(nil, y, ld), "before Forward")
}

// One forward and backward of T allocates nothing once warm.
func TestGLOWBackToBackStepAllocatesNothing(t *testing.T) {
	sanitize.SkipAllocationCounts(t)
	s := model.ImageShape{H: 8, W: 8, C: 1}
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		be, err := native.NewCPU(dt, 2)
		if err != nil {
			t.Skip(err)
		}
		rng := newRNG(t)
		b, err := model.NewFreshGLOWBackToBack(be, s, model.GLOWOptions{Levels: 2, Steps: 2, Hidden: 8}, rng)
		require.NoError(t, err)
		x := modeltest.Rand(be, rng, 4, s.Dim(), 1)
		require.NoError(t, b.InitFromData(x))
		y, ld, dx, dy, dld := be.New(4, s.Dim()), be.New(4, 1), be.New(4, s.Dim()), be.New(4, s.Dim()), be.New(4, 1)
		be.Fill(dy, 0.1)
		be.Fill(dld, -0.25)
		step := func() {
			be.Fill(ld, 0)
			if err := b.Forward(y, ld, x); err != nil {
				t.Fatal(err)
			}
			if err := b.Backward(dx, dy, dld); err != nil {
				t.Fatal(err)
			}
		}
		step()
		require.Zero(t, testing.AllocsPerRun(20, step), "%v", dt)
		be.Close()
	}
}

package embed

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/native"
)

// unitData returns n×p values in (0, 1).
func unitData(r *rand.Rand, n, p int) *mat.Dense {
	x := mat.NewDense(n, p, nil)
	for i := range n {
		for j := range p {
			x.Set(i, j, 0.05+0.9*r.Float64())
		}
	}
	return x
}

// The gradient lossGrad sets, against central differences of the loss it
// returns, for every parameter entry of a small encoder and decoder, in
// float64 on the reference backend.
func TestAutoencoderGradientFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 21))
	const n, p = 5, 7
	x := unitData(r, n, p)
	be := native.NewRef()
	c := AutoencoderConfig{Dim: 3, Hidden: 6, Depth: 2, Batch: n, Seed: r.Uint64() | 1}.withDefaults(n)
	tr, err := newAETrainer(be, x, c)
	require.NoError(t, err)
	// Biases start at zero; perturb them so their gradients are tested off
	// the trivial point.
	for _, q := range tr.ps {
		v := make([]float64, q.Value.Len())
		be.Download(v, q.Value)
		for k := range v {
			v[k] += 0.1 * r.NormFloat64()
		}
		be.Upload(q.Value, v)
	}
	tr.lossGrad(tr.x, tr.t)
	grads := make([][]float64, len(tr.ps))
	for i, q := range tr.ps {
		grads[i] = make([]float64, q.Grad.Len())
		be.Download(grads[i], q.Grad)
	}
	const h = 1e-6
	checked := 0
	for i, q := range tr.ps {
		v := make([]float64, q.Value.Len())
		be.Download(v, q.Value)
		for k := range v {
			old := v[k]
			v[k] = old + h
			be.Upload(q.Value, v)
			lp := tr.lossGrad(tr.x, tr.t)
			v[k] = old - h
			be.Upload(q.Value, v)
			lm := tr.lossGrad(tr.x, tr.t)
			v[k] = old
			be.Upload(q.Value, v)
			fd := (lp - lm) / (2 * h)
			assert.InDelta(t, fd, grads[i][k], 1e-7+1e-5*math.Abs(fd), "%s[%d]", q.Name, k)
			checked++
		}
	}
	assert.Equal(t, (7*6+6)+(6*6+6)+(6*3+3)+(3*6+6)+(6*6+6)+(6*7+7), checked)
}

// A training step (batch draw, forward, backward, Adam) allocates nothing,
// on the CPU backend in float32 and on the reference backend.
func TestAutoencoderStepAllocatesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 22))
	x := unitData(r, 300, 64)
	for _, name := range []string{native.DefaultBackend(), "ref"} {
		dt := native.Float32
		if name == "ref" {
			dt = native.Float64
		}
		be, err := native.Open(name, dt, 2)
		require.NoError(t, err)
		c := AutoencoderConfig{Dim: 4, Hidden: 32, Batch: 64}.withDefaults(300)
		tr, err := newAETrainer(be, x, c)
		require.NoError(t, err)
		tr.step(1e-3) // sizes the buffers
		// 30 steps cross epoch boundaries (300 rows, 64 per batch).
		assert.Zero(t, testing.AllocsPerRun(30, func() { tr.step(1e-3) }), name)
		be.Close()
	}
}

// bumps returns n images of p pixels showing a Gaussian bump at position
// θ ∈ [0, 1] (drawn uniformly): x_j = 0.9·exp(−(θ − j/(p−1))²/(2·0.08²)).
// The images lie on a curved 1-D manifold that no single linear axis
// follows: PCA with D = 1 reconstructs them poorly, an autoencoder with
// D = 1 well.
func bumps(r *rand.Rand, n, p int) (*mat.Dense, []float64) {
	x := mat.NewDense(n, p, nil)
	th := make([]float64, n)
	for i := range n {
		th[i] = r.Float64()
		for j := range p {
			d := th[i] - float64(j)/float64(p-1)
			x.Set(i, j, 0.9*math.Exp(-d*d/(2*0.08*0.08)))
		}
	}
	return x, th
}

// On the bump manifold the autoencoder with D = 1 beats PCA with D = 1 by
// a wide margin, its coordinates are standardised on the fit data, its
// decoded images lie in [0, 1], and the run is reproducible bit for bit.
func TestAutoencoderBeatsPCAOnACurvedManifold(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 23))
	x, _ := bumps(r, 1000, 24)
	cfg := AutoencoderConfig{Dim: 1, Hidden: 64, Steps: 3000, Batch: 100, LR: 3e-3, Seed: 5}
	ae, err := TrainAutoencoder(context.Background(), x, cfg)
	require.NoError(t, err)
	defer ae.Close()

	pc, err := Fit(x, 1)
	require.NoError(t, err)
	zp, err := pc.Transform(x)
	require.NoError(t, err)
	rp, err := pc.Inverse(zp)
	require.NoError(t, err)
	pcaMSE := MSE(rp, x)

	z, err := ae.Transform(x)
	require.NoError(t, err)
	rec, err := ae.Inverse(z)
	require.NoError(t, err)
	aeMSE := MSE(rec, x)
	t.Logf("MSE per pixel: PCA %.4g, autoencoder %.4g (final %.4g, %d steps, %.1f s)", pcaMSE, aeMSE, ae.FinalMSE, ae.Config.Steps, ae.Seconds)
	assert.Less(t, aeMSE, pcaMSE/10)
	assert.InDelta(t, ae.FinalMSE, aeMSE, 1e-6*aeMSE+1e-9)
	assert.Less(t, ae.Loss[len(ae.Loss)-1], ae.Loss[0]/3, "loss history %v", ae.Loss)

	n, _ := z.Dims()
	m, v := 0.0, 0.0
	for i := range n {
		m += z.At(i, 0)
	}
	m /= float64(n)
	for i := range n {
		v += (z.At(i, 0) - m) * (z.At(i, 0) - m)
	}
	assert.InDelta(t, 0, m, 1e-9)
	assert.InDelta(t, 1, v/float64(n-1), 1e-9)
	assert.True(t, mat.Min(rec) >= 0 && mat.Max(rec) <= 1, "decoded range [%v, %v]", mat.Min(rec), mat.Max(rec))

	again, err := TrainAutoencoder(context.Background(), x, cfg)
	require.NoError(t, err)
	defer again.Close()
	z2, err := again.Transform(x)
	require.NoError(t, err)
	assert.True(t, mat.Equal(z, z2), "a second run with the same seed differs")
}

func TestAutoencoderErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 24))
	x := unitData(r, 20, 5)
	ctx := context.Background()
	bad := mat.DenseCopyOf(x)
	bad.Set(3, 2, 1.5)
	cases := []struct {
		x   *mat.Dense
		cfg AutoencoderConfig
		msg string
	}{
		{nil, AutoencoderConfig{Dim: 2}, "the data is empty"},
		{bad, AutoencoderConfig{Dim: 2}, "row 3, column 2 (0-based) is 1.5; the autoencoder's sigmoid output needs values in [0, 1]"},
		{x, AutoencoderConfig{}, "D = 0: want at least 1"},
		{x, AutoencoderConfig{Dim: 6}, "D = 6 exceeds the 5 input columns"},
		{x, AutoencoderConfig{Dim: 2, Batch: 21}, "Batch = 21: want 1 to the 20 rows"},
		{x, AutoencoderConfig{Dim: 2, Steps: -1}, "Steps = -1"},
		{x, AutoencoderConfig{Dim: 2, LR: math.Inf(1)}, "LR = +Inf"},
	}
	for _, tc := range cases {
		_, err := TrainAutoencoder(ctx, tc.x, tc.cfg)
		assert.ErrorContains(t, err, tc.msg)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := TrainAutoencoder(canceled, x, AutoencoderConfig{Dim: 2, Steps: 10})
	assert.ErrorIs(t, err, context.Canceled)

	ae, err := TrainAutoencoder(ctx, x, AutoencoderConfig{Dim: 2, Steps: 20, Hidden: 8})
	require.NoError(t, err)
	_, err = ae.Transform(mat.NewDense(2, 4, nil))
	assert.ErrorContains(t, err, "data have 4 columns, the autoencoder was trained on 5")
	_, err = ae.Inverse(mat.NewDense(2, 3, nil))
	assert.ErrorContains(t, err, "scores have 3 columns, the PCA has 2 components")
	ae.Close()
	ae.Close()
	_, err = ae.Transform(x)
	assert.ErrorContains(t, err, "closed")
}

// SharedAutoencoder trains on the union, A's rows over B's: its
// coordinates of the union are standardised, and A's and B's are the
// Transform of each.
func TestSharedAutoencoder(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 25))
	a, _ := bumps(r, 300, 16)
	b, _ := bumps(r, 200, 16)
	lb := make([]int, 200)
	pair, err := SharedAutoencoder(context.Background(), Set{a, nil}, Set{b, lb}, AutoencoderConfig{Dim: 2, Hidden: 32, Steps: 200, Batch: 50})
	require.NoError(t, err)
	defer pair.AE.Close()
	assert.Nil(t, pair.PCA)
	assert.Same(t, pair.AE, pair.Map())
	za, err := pair.AE.Transform(a)
	require.NoError(t, err)
	assert.True(t, mat.Equal(za, pair.A.X))
	assert.Equal(t, lb, pair.B.Labels)
	union := mat.NewDense(500, 2, nil)
	union.Slice(0, 300, 0, 2).(*mat.Dense).Copy(pair.A.X)
	union.Slice(300, 500, 0, 2).(*mat.Dense).Copy(pair.B.X)
	var cov mat.SymDense
	for j := range 2 {
		m := 0.0
		for i := range 500 {
			m += union.At(i, j)
		}
		assert.InDelta(t, 0, m/500, 1e-9)
	}
	statCov(&cov, union)
	assert.True(t, mat.EqualApprox(identity(2), &cov, 1e-9), "%v", mat.Formatted(&cov))

	_, err = SharedAutoencoder(context.Background(), Set{a, nil}, Set{mat.NewDense(3, 5, nil), nil}, AutoencoderConfig{Dim: 2})
	assert.ErrorContains(t, err, "A has 16 columns and B 5")
}

// statCov sets c to the sample covariance (divisor n−1) of the rows of x.
func statCov(c *mat.SymDense, x *mat.Dense) {
	n, d := x.Dims()
	xc := mat.DenseCopyOf(x)
	for j := range d {
		m := 0.0
		for i := range n {
			m += x.At(i, j)
		}
		m /= float64(n)
		for i := range n {
			xc.Set(i, j, xc.At(i, j)-m)
		}
	}
	var p mat.Dense
	p.Mul(xc.T(), xc)
	p.Scale(1/float64(n-1), &p)
	*c = *mat.NewSymDense(d, nil)
	for i := range d {
		for j := i; j < d; j++ {
			c.SetSym(i, j, p.At(i, j))
		}
	}
}

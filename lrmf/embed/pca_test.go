package embed

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/testseed"
)

// Points on a line: x = t·(0.6, 0.8) + (1, 2), t = −2…2. By hand: mean (1, 2),
// axis (0.6, 0.8), variance Σt²/(n−1) = 10/4, scores t/√2.5, rank 1.
func TestPCALineByHand(t *testing.T) {
	ts := []float64{-2, -1, 0, 1, 2}
	x := mat.NewDense(5, 2, nil)
	for i, s := range ts {
		x.Set(i, 0, 1+0.6*s)
		x.Set(i, 1, 2+0.8*s)
	}
	pc, err := Fit(x, 1)
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{1, 2}, pc.Mean, 1e-15)
	assert.InDelta(t, 0.6, pc.Axes.At(0, 0), 1e-15)
	assert.InDelta(t, 0.8, pc.Axes.At(1, 0), 1e-15)
	assert.InDelta(t, math.Sqrt(2.5), pc.SD[0], 1e-14)
	assert.InDelta(t, 2.5, pc.TotalVariance, 1e-14)
	assert.InDeltaSlice(t, []float64{1}, pc.ExplainedVarianceRatio(), 1e-14)
	z, err := pc.Transform(x)
	require.NoError(t, err)
	for i, s := range ts {
		assert.InDelta(t, s/math.Sqrt(2.5), z.At(i, 0), 1e-14)
	}
	back, err := pc.Inverse(z)
	require.NoError(t, err)
	assert.True(t, mat.EqualApprox(x, back, 1e-14))

	_, err = Fit(x, 2)
	assert.ErrorContains(t, err, "D = 2 exceeds the rank 1 of the centred data")
}

// The four points (±2, 0), (0, ±1): axes e1 and e2, variances 8/3 and 2/3.
// The sign convention makes the largest entry of each axis positive.
func TestPCAAxesByHand(t *testing.T) {
	x := mat.NewDense(4, 2, []float64{2, 0, -2, 0, 0, 1, 0, -1})
	pc, err := Fit(x, 2)
	require.NoError(t, err)
	assert.True(t, mat.EqualApprox(mat.NewDense(2, 2, []float64{1, 0, 0, 1}), pc.Axes, 1e-15), "axes %v", mat.Formatted(pc.Axes))
	assert.InDeltaSlice(t, []float64{math.Sqrt(8.0 / 3), math.Sqrt(2.0 / 3)}, pc.SD, 1e-14)
	assert.InDeltaSlice(t, []float64{0.8, 0.2}, pc.ExplainedVarianceRatio(), 1e-14)
}

// randomData returns n×p correlated data (a random mixing of independent
// coordinates with decaying scales) plus an offset.
func randomData(r *rand.Rand, n, p int) *mat.Dense {
	mix := mat.NewDense(p, p, nil)
	for i := range p {
		for j := range p {
			mix.Set(i, j, r.NormFloat64()/float64(1+j))
		}
	}
	g := mat.NewDense(n, p, nil)
	for i := range n {
		for j := range p {
			g.Set(i, j, r.NormFloat64()*float64(p-j))
		}
	}
	var x mat.Dense
	x.Mul(g, mix)
	for i := range n {
		for j := range p {
			x.Set(i, j, x.At(i, j)+float64(j)-3)
		}
	}
	return &x
}

// Against gonum's SVD of the centred data, computed here independently:
// the axes agree up to sign, the standard deviations are σ/√(n−1), the
// scores of the fit data have zero mean and identity covariance, and the
// sign convention holds.
func TestPCAAgainstSVD(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 7))
	const n, p, d = 300, 12, 5
	x := randomData(r, n, p)
	pc, err := Fit(x, d)
	require.NoError(t, err)

	var xc mat.Dense
	xc.CloneFrom(x)
	for j := range p {
		col := mat.Col(nil, j, x)
		m := 0.0
		for _, v := range col {
			m += v
		}
		m /= n
		assert.InDelta(t, m, pc.Mean[j], 1e-12)
		for i := range n {
			xc.Set(i, j, xc.At(i, j)-m)
		}
	}
	var svd mat.SVD
	require.True(t, svd.Factorize(&xc, mat.SVDFull))
	sigma := svd.Values(nil)
	var v mat.Dense
	svd.VTo(&v)
	for k := range d {
		assert.InDelta(t, sigma[k]/math.Sqrt(n-1), pc.SD[k], 1e-12*sigma[0])
		dot := 0.0
		big, at := 0.0, 0
		for j := range p {
			dot += v.At(j, k) * pc.Axes.At(j, k)
			if a := math.Abs(pc.Axes.At(j, k)); a > big {
				big, at = a, j
			}
		}
		assert.InDelta(t, 1, math.Abs(dot), 1e-10, "axis %d", k)
		assert.Positive(t, pc.Axes.At(at, k), "axis %d: largest entry", k)
	}
	total := 0.0
	for _, s := range sigma {
		total += s * s
	}
	assert.InDelta(t, total/(n-1), pc.TotalVariance, 1e-10*total)

	z, err := pc.Transform(x)
	require.NoError(t, err)
	var cov mat.Dense
	cov.Mul(z.T(), z)
	cov.Scale(1.0/(n-1), &cov)
	assert.True(t, mat.EqualApprox(identity(d), &cov, 1e-10), "score covariance %v", mat.Formatted(&cov))
	for k := range d {
		m := 0.0
		for i := range n {
			m += z.At(i, k)
		}
		assert.InDelta(t, 0, m/n, 1e-12)
	}

	// Negating the data flips no axis: the convention fixes the signs.
	var neg mat.Dense
	neg.Scale(-1, x)
	pn, err := Fit(&neg, d)
	require.NoError(t, err)
	assert.True(t, mat.EqualApprox(pc.Axes, pn.Axes, 1e-10))

	// With D = p, Inverse(Transform(x)) = x.
	full, err := Fit(x, p)
	require.NoError(t, err)
	zf, err := full.Transform(x)
	require.NoError(t, err)
	back, err := full.Inverse(zf)
	require.NoError(t, err)
	assert.True(t, mat.EqualApprox(x, back, 1e-9))
}

func identity(d int) *mat.Dense {
	m := mat.NewDense(d, d, nil)
	for i := range d {
		m.Set(i, i, 1)
	}
	return m
}

func TestPCAErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 8))
	x := randomData(r, 6, 4)
	cases := []struct {
		x   *mat.Dense
		d   int
		msg string
	}{
		{x, 0, "D = 0: want at least 1"},
		{x, 5, "D = 5 exceeds the 4 input columns"},
		{mat.DenseCopyOf(x.Slice(0, 3, 0, 4)), 3, "D = 3 exceeds n−1 = 2 (n = 3 rows"},
		{mat.NewDense(6, 4, nil), 1, "D = 1 exceeds the rank 0"},
		{nil, 1, "empty"},
		{&mat.Dense{}, 1, "empty"},
	}
	for _, tc := range cases {
		_, err := Fit(tc.x, tc.d)
		assert.ErrorContains(t, err, tc.msg)
	}
	bad := mat.DenseCopyOf(x)
	bad.Set(2, 3, math.NaN())
	_, err := Fit(bad, 1)
	assert.ErrorContains(t, err, "row 2, column 3 (0-based): not a finite value (NaN)")

	pc, err := Fit(x, 2)
	require.NoError(t, err)
	_, err = pc.Transform(mat.NewDense(2, 3, nil))
	assert.ErrorContains(t, err, "data have 3 columns, the PCA was fitted on 4")
	_, err = pc.Transform(bad)
	assert.ErrorContains(t, err, "not a finite value")
	_, err = pc.Inverse(mat.NewDense(2, 3, nil))
	assert.ErrorContains(t, err, "scores have 3 columns, the PCA has 2 components")
}

package paper

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/model"
)

// Reference points on a line, labelled by hand:
//
//	x:     0  1  2  3  10 11 12
//	label: 0  0  1  1  2  2  2
func TestKNNByHand(t *testing.T) {
	ref := mat.NewDense(7, 1, []float64{0, 1, 2, 3, 10, 11, 12})
	labels := []int{0, 0, 1, 1, 2, 2, 2}
	c, err := NewKNN(ref, labels, 3)
	require.NoError(t, err)
	// 0.4: neighbours 0 (0), 1 (0), 2 (1) → 0. 2.6: 3 (1), 2 (1), 1 (0) → 1.
	// 9: 10, 11, 12 → 2. 6.4: 3 (1), 10 (2), 2 (1) → 1.
	pred, err := c.Predict(mat.NewDense(4, 1, []float64{0.4, 2.6, 9, 6.4}))
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1, 2, 1}, pred)

	// A tie (k = 2: one neighbour of each label) goes to the nearer one.
	c2, err := NewKNN(ref, labels, 2)
	require.NoError(t, err)
	pred, err = c2.Predict(mat.NewDense(2, 1, []float64{1.4, 1.6}))
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1}, pred)

	acc, err := c.Accuracy(mat.NewDense(4, 1, []float64{0.4, 2.6, 9, 6.4}), []int{0, 1, 2, 2})
	require.NoError(t, err)
	assert.InDelta(t, 0.75, acc, 1e-15)

	// Leave-one-out with k = 3 (neighbour: its label): row 0 (x = 0) sees
	// 1:0, 2:1, 3:1 → 1, wrong; row 1 sees 0:0, 2:1, 3:1 → 1, wrong; row 2
	// sees 1:0, 3:1, 0:0 → 0, wrong; row 3 sees 2:1, 1:0, 0:0 → 0, wrong;
	// rows 4–6 see the other two 2s and one more 2 or x = 3 → 2, right: 3/7.
	loo, err := c.LeaveOneOut()
	require.NoError(t, err)
	assert.InDelta(t, 3.0/7, loo, 1e-15)
}

func TestKNNErrors(t *testing.T) {
	ref := mat.NewDense(3, 2, nil)
	_, err := NewKNN(ref, []int{0, 1}, 1)
	assert.ErrorContains(t, err, "2 labels for 3 reference rows")
	_, err = NewKNN(ref, []int{0, 1, 2}, 4)
	assert.ErrorContains(t, err, "k = 4: want 1 to the 3 reference rows")
	_, err = NewKNN(nil, nil, 1)
	assert.ErrorContains(t, err, "no reference rows")
	c, err := NewKNN(ref, []int{0, 1, 2}, 3)
	require.NoError(t, err)
	_, err = c.Predict(mat.NewDense(1, 3, nil))
	assert.ErrorContains(t, err, "query rows have 3 columns, the reference 2")
	_, err = c.Accuracy(mat.NewDense(2, 2, nil), []int{1})
	assert.ErrorContains(t, err, "1 labels for 2 query rows")
	_, err = c.LeaveOneOut()
	assert.ErrorContains(t, err, "leave-one-out with k = 3 needs at least 4 rows, have 3")
}

// gaussianSample returns n rows of N(mean, L Lᵀ) with a random L.
func gaussianSample(r *rand.Rand, n, d int, shift float64) *mat.Dense {
	l := mat.NewDense(d, d, nil)
	for i := range d {
		for j := 0; j <= i; j++ {
			l.Set(i, j, r.NormFloat64())
		}
		l.Set(i, i, 1+math.Abs(l.At(i, i)))
	}
	z := mat.NewDense(n, d, nil)
	for i := range n {
		for j := range d {
			z.Set(i, j, r.NormFloat64())
		}
	}
	var x mat.Dense
	x.Mul(z, l.T())
	for i := range n {
		for j := range d {
			x.Set(i, j, x.At(i, j)+shift*float64(j+1))
		}
	}
	return &x
}

// Both maps move A's sample moments onto B's exactly; the OT map is
// symmetric positive definite, CORAL's is C_B^{1/2} C_A^{−1/2}; in 1-D both
// are the same map, σ_B/σ_A (a − m_A) + m_B.
func TestGaussianOTAndCORALMatchMoments(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 31))
	a := gaussianSample(r, 400, 4, 0)
	b := gaussianSample(r, 300, 4, 2)
	mB, sB := moments(b)
	for name, f := range map[string]func(a, b *mat.Dense) (*mat.Dense, error){"ot": GaussianOT, "coral": CORAL} {
		ta, err := f(a, b)
		require.NoError(t, err)
		m, s := moments(ta)
		assert.InDeltaSlice(t, mB, m, 1e-10, name)
		assert.True(t, mat.EqualApprox(sB, s, 1e-9), "%s: %v", name, mat.Formatted(s))
	}
	// Both maps are affine, T(a) = M(a − m_A) + m_B: recover M from T(A)
	// by least squares and compare the two.
	mA, _ := moments(a)
	mapOf := func(f func(a, b *mat.Dense) (*mat.Dense, error)) *mat.Dense {
		ta, err := f(a, b)
		require.NoError(t, err)
		n, d := a.Dims()
		ac, tc := mat.NewDense(n, d, nil), mat.NewDense(n, d, nil)
		for i := range n {
			for j := range d {
				ac.Set(i, j, a.At(i, j)-mA[j])
				tc.Set(i, j, ta.At(i, j)-mB[j])
			}
		}
		var mt mat.Dense // tc = ac·Mᵀ
		require.NoError(t, mt.Solve(ac, tc))
		return mat.DenseCopyOf(mt.T())
	}
	mOT, mCO := mapOf(GaussianOT), mapOf(CORAL)
	assert.True(t, mat.EqualApprox(mOT, mOT.T(), 1e-9), "OT map not symmetric: %v", mat.Formatted(mOT))
	assert.False(t, mat.EqualApprox(mCO, mCO.T(), 1e-3), "CORAL's map is symmetric here: the test cannot tell them apart")

	a1 := gaussianSample(r, 200, 1, 0)
	b1 := gaussianSample(r, 100, 1, 3)
	m1, s1 := moments(a1)
	m2, s2 := moments(b1)
	scale := math.Sqrt(s2.At(0, 0) / s1.At(0, 0))
	for _, f := range []func(a, b *mat.Dense) (*mat.Dense, error){GaussianOT, CORAL} {
		ta, err := f(a1, b1)
		require.NoError(t, err)
		for i := range 200 {
			assert.InDelta(t, scale*(a1.At(i, 0)-m1[0])+m2[0], ta.At(i, 0), 1e-12)
		}
	}

	_, err := CORAL(a, mat.NewDense(3, 2, nil))
	assert.ErrorContains(t, err, "A has 4 columns, B 2")
	_, err = GaussianOT(a, mat.NewDense(5, 4, nil))
	assert.ErrorContains(t, err, "not positive definite")
}

func TestDigitsConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg DigitsConfig
		msg string
	}{
		{DigitsConfig{NA: 10001}, "NA = 10001: want 1 to 10000"},
		{DigitsConfig{NB: -1}, "NB = -1"},
		{DigitsConfig{Dim: 257}, "D = 257: want 1 to 256"},
		{DigitsConfig{NA: 3, NB: 3, Dim: 6}, "D = 6 exceeds NA + NB − 1 = 5"},
		{DigitsConfig{Embed: "vae"}, `Embed = "vae"`},
		{DigitsConfig{NA: 5, K: 5}, "K = 5: want 1 to min(NA, NB) − 1 = 4"},
	} {
		_, err := Digits(context.Background(), tc.cfg)
		assert.ErrorContains(t, err, tc.msg)
	}
	_, err := Digits(context.Background(), DigitsConfig{NA: 50, NB: 50, MNISTDir: t.TempDir()})
	assert.ErrorContains(t, err, "t10k-images-idx3-ubyte")
}

// A small run end to end: the embedding's numbers lie in range, the maps
// come in order with agreements in [0, 1], the moment-matching baselines
// match B's moments, and the projection and decoded grids have their
// shapes.
func TestDigitsSmall(t *testing.T) {
	res, err := Digits(context.Background(), DigitsConfig{
		NA: 200, NB: 200, Dim: 6, HeldOut: 50,
		Align: lrmf.Config{Flow: model.ModelSpec{Kind: "affine"}, Density: model.ModelSpec{Kind: "gaussian"}, Steps: 5000},
	})
	require.NoError(t, err)
	defer res.Close()
	e := res.Embedding
	assert.Equal(t, EmbedPCA, e.Kind)
	assert.True(t, e.MSE > 0.01 && e.MSE < 0.1, "MSE %v", e.MSE)
	assert.True(t, e.HeldOutMSE > e.MSE && e.HeldOutMSE < 0.1, "held-out MSE %v", e.HeldOutMSE)
	assert.True(t, e.WithinA > 0.5 && e.WithinA <= 1 && e.WithinB > 0.5 && e.WithinB <= 1, "%+v", e)
	var names []string
	for _, m := range res.Maps {
		names = append(names, m.Name)
		assert.True(t, m.Agreement >= 0 && m.Agreement <= 1, "%s: %v", m.Name, m.Agreement)
	}
	assert.Equal(t, []string{MapIdentity, MapGaussianOT, MapCORAL, MapLRMF}, names)
	assert.True(t, mat.Equal(res.Pair.A.X, res.Map(MapIdentity).TA))
	// The Gaussian family sees nothing left to align (the held-out bound is
	// below δ), but digit embeddings are not Gaussian and an affine map
	// leaves them distinguishable to the two-sample test.
	assert.Less(t, res.Align.UpperBound, res.Align.Config.Threshold, "affine + Gaussian LRMF, LRMF = %v", res.Align.LRMF)
	assert.Equal(t, lrmf.Distinguishable, res.Align.Status, "affine + Gaussian LRMF, LRMF = %v, two-sample %+v", res.Align.LRMF, res.Align.TwoSample)
	// Affine + Gaussian LRMF converges to the closed-form OT map.
	assert.InDelta(t, res.Map(MapGaussianOT).Agreement, res.Map(MapLRMF).Agreement, 0.03)
	id := res.Map(MapIdentity).Agreement
	assert.InDelta(t, (res.Map(MapCORAL).Agreement-id)/(e.WithinB-id), res.GapClosed(MapCORAL), 1e-12)
	assert.True(t, math.IsNaN(res.GapClosed("nope")))

	a, ta, b, err := res.Projection(MapLRMF)
	require.NoError(t, err)
	for _, x := range []*mat.Dense{a, ta, b} {
		r, c := x.Dims()
		assert.Equal(t, [2]int{200, 2}, [2]int{r, c})
	}
	ia, ita, ib, err := res.DecodedGrid(MapCORAL, 3)
	require.NoError(t, err)
	for _, x := range []*mat.Dense{ia, ita, ib} {
		r, c := x.Dims()
		assert.Equal(t, [2]int{30, 256}, [2]int{r, c})
		assert.True(t, mat.Min(x) >= 0 && mat.Max(x) <= 1)
	}
	_, _, _, err = res.Projection("nope")
	assert.ErrorContains(t, err, `no T(A) for map "nope"`)
}

func TestMapLRMFOf(t *testing.T) {
	none := func(string) bool { return false }
	assert.Equal(t, MapLRMF, MapLRMFOf(0, "glow", none))
	assert.Equal(t, "lrmf-glow", MapLRMFOf(1, "glow", none))
	taken := func(s string) bool { return s == "lrmf-glow" }
	assert.Equal(t, "lrmf-3", MapLRMFOf(2, "glow", taken))
}

// Further alignments (DigitsConfig.More) add one LRMF map each after the
// first, named by their flow, each with its own result, flow and T(A).
func TestDigitsMoreAlignments(t *testing.T) {
	short := lrmf.Config{Steps: 40, FitOptions: lrmf.FitOptions{FitSteps: 40}}
	glow := short
	glow.Flow, glow.Density = model.ModelSpec{Kind: "glow", Blocks: 2, Hidden: 8}, model.ModelSpec{Kind: "glow", Blocks: 2, Hidden: 8}
	first := short
	first.Flow, first.Density = model.ModelSpec{Kind: "affine"}, model.ModelSpec{Kind: "gaussian"}
	res, err := Digits(context.Background(), DigitsConfig{
		NA: 150, NB: 150, Dim: 4, HeldOut: -1, Align: first, More: []lrmf.Config{glow, glow},
	})
	require.NoError(t, err)
	defer res.Close()
	var names []string
	for _, m := range res.Maps {
		names = append(names, m.Name)
		assert.True(t, m.Agreement >= 0 && m.Agreement <= 1, "%s: %v", m.Name, m.Agreement)
	}
	assert.Equal(t, []string{MapIdentity, MapGaussianOT, MapCORAL, MapLRMF, "lrmf-glow", "lrmf-3"}, names)
	require.Len(t, res.Alignments, 3)
	assert.Same(t, res.Align, res.Alignments[0].Result)
	for i, kind := range []string{"affine", "glow", "glow"} {
		a := res.Alignments[i]
		require.NotNil(t, a.Result, kind)
		assert.Equal(t, kind, a.Result.Config.Flow.Kind)
		assert.Equal(t, names[3+i], a.Map)
		assert.Same(t, a.Result.Transformed, res.Map(a.Map).TA)
		assert.Equal(t, res.Config.Align.Seed, a.Result.Config.Seed)
		assert.NotEmpty(t, a.Result.Verdict())
	}
	assert.Equal(t, 40, res.Alignments[1].Result.Steps)
}

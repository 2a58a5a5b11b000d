package data

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

func TestLinspaceMatchesNumpy(t *testing.T) {
	assert.Empty(t, linspace(0, math.Pi, 0))
	assert.Equal(t, []float64{0}, linspace(0, math.Pi, 1))
	assert.Equal(t, []float64{0, math.Pi}, linspace(0, math.Pi, 2))
	got := linspace(0, 1, 5)
	assert.Equal(t, []float64{0, 0.25, 0.5, 0.75, 1}, got)
}

func TestMoonsLabelCountsAndShape(t *testing.T) {
	for _, n := range []int{1, 2, 7, 100, 101} {
		x, labels := Moons(n, 0.1, NewRand(1))
		r, c := x.Dims()
		require.Equal(t, n, r)
		require.Equal(t, 2, c)
		require.Len(t, labels, n)
		var zeros, ones int
		for _, l := range labels {
			switch l {
			case 0:
				zeros++
			case 1:
				ones++
			default:
				t.Fatalf("unexpected label %d", l)
			}
		}
		assert.Equal(t, n/2, zeros, "n=%d", n)
		assert.Equal(t, n-n/2, ones, "n=%d", n)
	}
}

func TestMoonsNoiseFreeOnArms(t *testing.T) {
	const n = 201
	x, labels := Moons(n, 0, NewRand(3))
	var outer, inner [][2]float64
	for i, l := range labels {
		px, py := x.At(i, 0), x.At(i, 1)
		if l == 0 {
			assert.InDelta(t, 1, math.Hypot(px, py), 1e-12, "outer point %d", i)
			assert.GreaterOrEqual(t, py, -1e-15, "outer arm is the upper half circle")
			outer = append(outer, [2]float64{px, py})
		} else {
			d := (px-1)*(px-1) + (py-0.5)*(py-0.5)
			assert.InDelta(t, 1, d, 1e-12, "inner point %d", i)
			assert.LessOrEqual(t, py, 0.5+1e-15, "inner arm is the lower half circle")
			inner = append(inner, [2]float64{px, py})
		}
	}
	// The arm end points t=0 and t=π are present exactly.
	assert.Contains(t, outer, [2]float64{1, 0})
	assert.Contains(t, outer, [2]float64{-1, math.Sin(math.Pi)})
	assert.Contains(t, inner, [2]float64{0, 0.5})
	assert.Contains(t, inner, [2]float64{2, 1 - math.Sin(math.Pi) - 0.5})
}

func TestMoonsShuffled(t *testing.T) {
	_, labels := Moons(200, 0, NewRand(5))
	// Unshuffled data would be 100 zeros followed by 100 ones.
	sorted := true
	for i := 1; i < len(labels); i++ {
		if labels[i] < labels[i-1] {
			sorted = false
		}
	}
	assert.False(t, sorted)
}

func TestMoonsDeterministic(t *testing.T) {
	x1, l1 := Moons(300, 0.1, NewRand(42))
	x2, l2 := Moons(300, 0.1, NewRand(42))
	assert.True(t, mat.Equal(x1, x2))
	assert.Equal(t, l1, l2)
	x3, _ := Moons(300, 0.1, NewRand(43))
	assert.False(t, mat.Equal(x1, x3))
}

func TestMoonsNoiseStd(t *testing.T) {
	// With the same seed, the shuffle consumes the same draws, so the
	// noisy and noise-free samples differ by exactly the added noise.
	const n, noise = 20000, 0.1
	clean, lc := Moons(n, 0, NewRand(9))
	noisy, ln := Moons(n, noise, NewRand(9))
	require.Equal(t, lc, ln)
	var diff mat.Dense
	diff.Sub(noisy, clean)
	vals := diff.RawMatrix().Data
	mean, std := stat.MeanStdDev(vals, nil)
	N := float64(len(vals))
	// Standard errors: mean σ/√N, standard deviation ≈ σ/√(2N); allow 5 SE.
	assert.InDelta(t, 0, mean, 5*noise/math.Sqrt(N))
	assert.InDelta(t, noise, std, 5*noise/math.Sqrt(2*N))
}

func TestMoonsPanics(t *testing.T) {
	assert.Panics(t, func() { Moons(0, 0.1, NewRand(1)) })
	assert.Panics(t, func() { Moons(10, -1, NewRand(1)) })
	assert.Panics(t, func() { Moons(10, math.NaN(), NewRand(1)) })
}

func centroid(x *mat.Dense) (float64, float64) {
	n, _ := x.Dims()
	var cx, cy float64
	for i := range n {
		cx += x.At(i, 0)
		cy += x.At(i, 1)
	}
	return cx / float64(n), cy / float64(n)
}

func TestRotatePreservesCentroidAndDistances(t *testing.T) {
	x, _ := Moons(50, 0.2, NewRand(11))
	orig := mat.DenseCopyOf(x)
	y := Rotate(x, 37.5)
	assert.True(t, mat.Equal(orig, x), "input must not be modified")
	cx, cy := centroid(x)
	rx, ry := centroid(y)
	assert.InDelta(t, cx, rx, 1e-12)
	assert.InDelta(t, cy, ry, 1e-12)
	n, _ := x.Dims()
	for i := range n {
		for j := range i {
			d0 := math.Hypot(x.At(i, 0)-x.At(j, 0), x.At(i, 1)-x.At(j, 1))
			d1 := math.Hypot(y.At(i, 0)-y.At(j, 0), y.At(i, 1)-y.At(j, 1))
			assert.InDelta(t, d0, d1, 1e-12)
		}
	}
}

func TestRotateKnownVector(t *testing.T) {
	// Points symmetric about (1, 2): (2, 2) is the vector (1, 0) from the
	// centroid; a counter-clockwise 90° turn maps it to (0, 1), i.e. (1, 3).
	x := mat.NewDense(2, 2, []float64{2, 2, 0, 2})
	y := Rotate(x, 90)
	assert.Equal(t, []float64{1, 3, 1, 1}, y.RawMatrix().Data)

	y = Rotate(x, 45)
	s := math.Sqrt2 / 2
	assert.InDeltaSlice(t, []float64{1 + s, 2 + s, 1 - s, 2 - s}, y.RawMatrix().Data, 1e-15)

	y = Rotate(x, -270) // same as +90
	assert.Equal(t, []float64{1, 3, 1, 1}, y.RawMatrix().Data)
	assert.Equal(t, x.RawMatrix().Data, Rotate(x, 360).RawMatrix().Data)
}

func TestRotatePanicsOnWrongShape(t *testing.T) {
	assert.Panics(t, func() { Rotate(mat.NewDense(2, 3, nil), 10) })
}

func TestMoonsPair(t *testing.T) {
	p := MoonsPair(100, 0.05, 50, 7)
	assert.Equal(t, "moons", p.Name)
	ra, ca := p.A.Dims()
	rb, cb := p.B.Dims()
	assert.Equal(t, [4]int{100, 2, 100, 2}, [4]int{ra, ca, rb, cb})
	assert.Len(t, p.LabelsA, 100)
	assert.Len(t, p.LabelsB, 100)

	// B is an independent draw: rotating it back by −50° must not give A.
	back := Rotate(p.B, -50)
	assert.False(t, mat.EqualApprox(back, p.A, 1e-6))

	// Rotating B back gives points on the arms again (noise-free).
	q := MoonsPair(64, 0, 50, 7)
	back = Rotate(q.B, -50)
	// The rotation is about B's centroid, which for noise-free data is
	// fixed, so rotating back recovers the original arms exactly.
	for i, l := range q.LabelsB {
		px, py := back.At(i, 0), back.At(i, 1)
		if l == 0 {
			assert.InDelta(t, 1, math.Hypot(px, py), 1e-12)
		} else {
			assert.InDelta(t, 1, math.Hypot(px-1, py-0.5), 1e-12)
		}
	}

	again := MoonsPair(100, 0.05, 50, 7)
	assert.True(t, mat.Equal(p.A, again.A))
	assert.True(t, mat.Equal(p.B, again.B))
	other := MoonsPair(100, 0.05, 50, 8)
	assert.False(t, mat.Equal(p.A, other.A))
}

// checkGaussian tests that the rows of x look like draws from g. With N
// samples the sample mean of coordinate i has standard error √(Σᵢᵢ/N) and
// the sample covariance Σᵢⱼ has standard error √((ΣᵢᵢΣⱼⱼ + Σᵢⱼ²)/N)
// (Gaussian data); each is allowed 5 standard errors, so a correct
// generator fails with probability well below 1e-5 per check.
func checkGaussian(t *testing.T, x *mat.Dense, g gaussian) {
	t.Helper()
	n, d := x.Dims()
	require.Equal(t, len(g.Mean), d)
	N := float64(n)
	cov := mat.NewSymDense(d, nil)
	stat.CovarianceMatrix(cov, x, nil)
	for i := range d {
		m := stat.Mean(mat.Col(nil, i, x), nil)
		sii := g.Cov[i*d+i]
		assert.InDelta(t, g.Mean[i], m, 5*math.Sqrt(sii/N), "mean[%d]", i)
		for j := range d {
			sij, sjj := g.Cov[i*d+j], g.Cov[j*d+j]
			se := math.Sqrt((sii*sjj + sij*sij) / N)
			assert.InDelta(t, sij, cov.At(i, j), 5*se, "cov[%d][%d]", i, j)
		}
	}
}

func TestGaussianDatasets(t *testing.T) {
	const n = 20000
	cases := []struct {
		name string
		gen  func(int, uint64) Pair
		a, b gaussian
		d    int
	}{
		{"blobs", Blobs, blobsA, blobsB, 2},
		{"gauss1d", Gauss1D, gauss1dA, gauss1dB, 1},
		{"gauss2d", Gauss2D, gauss2dA, gauss2dB, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.gen(n, 2024)
			assert.Equal(t, tc.name, p.Name)
			assert.Nil(t, p.LabelsA)
			assert.Nil(t, p.LabelsB)
			r, c := p.A.Dims()
			assert.Equal(t, [2]int{n, tc.d}, [2]int{r, c})
			r, c = p.B.Dims()
			assert.Equal(t, [2]int{n, tc.d}, [2]int{r, c})
			checkGaussian(t, p.A, tc.a)
			checkGaussian(t, p.B, tc.b)

			same := tc.gen(100, 5)
			assert.True(t, mat.Equal(same.A, tc.gen(100, 5).A))
			assert.False(t, mat.Equal(same.A, tc.gen(100, 6).A))
		})
	}
}

func TestDocumentedParameters(t *testing.T) {
	// The doc comments state these values; keep them in sync.
	assert.Equal(t, gaussian{[]float64{0, 0}, []float64{1, 0.6, 0.6, 0.8}}, blobsA)
	assert.Equal(t, gaussian{[]float64{3, -1}, []float64{0.5, -0.3, -0.3, 1.5}}, blobsB)
	assert.Equal(t, gaussian{[]float64{0}, []float64{1}}, gauss1dA)
	assert.Equal(t, gaussian{[]float64{2}, []float64{0.25}}, gauss1dB)
	assert.Equal(t, gaussian{[]float64{-1, 1}, []float64{2, -0.8, -0.8, 1}}, gauss2dA)
	assert.Equal(t, gaussian{[]float64{1.5, 2}, []float64{0.6, 0.4, 0.4, 0.9}}, gauss2dB)
}

func TestNamesAndBuiltin(t *testing.T) {
	assert.Equal(t, []string{"moons", "blobs", "gauss1d", "gauss2d"}, Names())
	Names()[0] = "changed"
	assert.Equal(t, "moons", Names()[0], "Names returns a copy")

	for _, name := range Names() {
		p, err := Builtin(name, 30, 1)
		require.NoError(t, err, name)
		assert.Equal(t, name, p.Name)
		r, _ := p.A.Dims()
		assert.Equal(t, 30, r)
		r, _ = p.B.Dims()
		assert.Equal(t, 30, r)
	}

	p, err := Builtin("moons", 40, 3)
	require.NoError(t, err)
	want := MoonsPair(40, 0.05, 50, 3)
	assert.True(t, mat.Equal(want.A, p.A))
	assert.True(t, mat.Equal(want.B, p.B))
	assert.Equal(t, want.LabelsB, p.LabelsB)

	p, err = Builtin(" Blobs ", 10, 3)
	require.NoError(t, err)
	assert.Equal(t, "blobs", p.Name)

	_, err = Builtin("swissroll", 10, 1)
	require.Error(t, err)
	for _, name := range Names() {
		assert.Contains(t, err.Error(), name)
	}
	assert.Contains(t, err.Error(), "swissroll")

	for _, n := range []int{0, -5} {
		_, err = Builtin("moons", n, 1)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "positive")
	}
}

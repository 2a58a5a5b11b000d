package twosample

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/lrmf-go/lrmf/internal/testseed"
)

func gauss(rng *rand.Rand, n int, mu []float64, sd float64) *mat.Dense {
	x := mat.NewDense(n, len(mu), nil)
	for i := 0; i < n; i++ {
		for j, m := range mu {
			x.Set(i, j, m+sd*rng.NormFloat64())
		}
	}
	return x
}

// The relabelling shortcut (one matrix-vector product) equals the
// definition evaluated term by term.
func TestStatisticMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 1))
	n, m := 7, 5
	rows := make([][]float64, n+m)
	for i := range rows {
		rows[i] = []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
	}
	sigma := 1.3
	k := gram(rows, sigma)
	N := n + m
	total := 0.0
	for i := 0; i < N; i++ {
		for j := 0; j < N; j++ {
			if i != j {
				total += float64(k[i*N+j])
			}
		}
	}
	label := make([]bool, N)
	for i := range n {
		label[i] = true
	}
	rng.Shuffle(N, func(i, j int) { label[i], label[j] = label[j], label[i] })
	got := statistic(k, label, nil, make([]float64, N), n, m, total)

	kern := func(a, b []float64) float64 { return math.Exp(-sqDist(a, b) / (2 * sigma * sigma)) }
	var xs, ys [][]float64
	for i, in := range label {
		if in {
			xs = append(xs, rows[i])
		} else {
			ys = append(ys, rows[i])
		}
	}
	xx, yy, xy := 0.0, 0.0, 0.0
	for i := range xs {
		for j := range xs {
			if i != j {
				xx += kern(xs[i], xs[j])
			}
		}
		for j := range ys {
			xy += kern(xs[i], ys[j])
		}
	}
	for i := range ys {
		for j := range ys {
			if i != j {
				yy += kern(ys[i], ys[j])
			}
		}
	}
	want := xx/float64(n*(n-1)) + yy/float64(m*(m-1)) - 2*xy/float64(n*m)
	if math.Abs(got-want) > 1e-6 {
		t.Fatalf("statistic = %.9g, definition %.9g", got, want)
	}
}

// For N(μ1, s²I) and N(μ2, s²I) in D dimensions and the Gaussian kernel of
// width σ, E k(u, v) over independent u ~ N(a, Σa), v ~ N(b, Σb) is
// det(I + (Σa+Σb)/σ²)^{-1/2} exp(−‖a−b‖²/(2(σ² + 2s²))) with Σ = s²I, so
// MMD² = 2c(1 − exp(−‖μ1−μ2‖²/(2(σ²+2s²)))), c = (1 + 2s²/σ²)^{−D/2}.
// The mean of 40 unbiased estimates must lie within 4 standard errors.
func TestMMD2IsUnbiased(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 2))
	const d, s, sigma, reps, n = 2, 1.0, 1.5, 40, 150
	mu1, mu2 := []float64{0, 0}, []float64{0.6, -0.3}
	dm := 0.6*0.6 + 0.3*0.3
	c := math.Pow(1+2*s*s/(sigma*sigma), -d/2.0)
	want := 2 * c * (1 - math.Exp(-dm/(2*(sigma*sigma+2*s*s))))
	var sum, sum2 float64
	for range reps {
		r, err := MMD(gauss(rng, n, mu1, s), gauss(rng, n, mu2, s), MMDOptions{Bandwidth: sigma, Permutations: 1, Seed: rng.Uint64()})
		if err != nil {
			t.Fatal(err)
		}
		sum += r.MMD2
		sum2 += r.MMD2 * r.MMD2
	}
	mean := sum / reps
	se := math.Sqrt((sum2/reps - mean*mean) / (reps - 1))
	if math.Abs(mean-want) > 4*se {
		t.Fatalf("mean MMD²_u over %d draws = %.5f ± %.5f, population value %.5f", reps, mean, se, want)
	}
}

// Under H0 the p-value is (super-)uniform: at α = 0.05, 200 same-
// distribution pairs reject about 10 times (binomial sd 3.1).
func TestMMDCalibratedUnderNull(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 3))
	rejections := 0
	for range 200 {
		r, err := MMD(gauss(rng, 40, []float64{0, 0, 0}, 1), gauss(rng, 40, []float64{0, 0, 0}, 1), MMDOptions{Permutations: 99, Seed: rng.Uint64()})
		if err != nil {
			t.Fatal(err)
		}
		if r.P <= 0.05 {
			rejections++
		}
	}
	if rejections < 2 || rejections > 20 {
		t.Fatalf("%d rejections out of 200 at α = 0.05, want about 10", rejections)
	}
}

// A shift of half a standard deviation is detected at n = m = 300: the
// plain test (one scale) puts it beyond every one of 199 relabellings; the
// aggregated test's p-value can then be at most S/(1 + R), one relabelling
// per scale being the most extreme at that scale.
func TestMMDDetectsShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 4))
	x, y := gauss(rng, 300, []float64{0, 0}, 1), gauss(rng, 300, []float64{0.5, 0}, 1)
	r, err := MMD(x, y, MMDOptions{Permutations: 199, Seed: 1, Scales: []float64{1}})
	if err != nil {
		t.Fatal(err)
	}
	if r.P != 1.0/200 || !(r.MMD2 > 0) {
		t.Fatalf("shifted samples: MMD² = %g, p = %g; want p = 1/200", r.MMD2, r.P)
	}
	if r.RowsX != 300 || r.RowsY != 300 || r.Dim != 2 || r.Permutations != 199 || !(r.Bandwidth > 0) {
		t.Fatalf("result fields %+v", r)
	}
	agg, err := MMD(x, y, MMDOptions{Permutations: 199, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if S := len(DefaultScales); agg.P > float64(S)/200 || agg.MMD2 != r.MMD2 || agg.Bandwidth != r.Bandwidth || len(agg.PerScale) != S {
		t.Fatalf("aggregated: p = %g (per scale %v), MMD² = %g, σ = %g; want p ≤ %d/200 and scale 1's MMD² %g, σ %g",
			agg.P, agg.PerScale, agg.MMD2, agg.Bandwidth, S, r.MMD2, r.Bandwidth)
	}
}

func TestMMDSubsamplesToMaxRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 5))
	r, err := MMD(gauss(rng, 500, []float64{0}, 1), gauss(rng, 30, []float64{0}, 1), MMDOptions{MaxRows: 100, Permutations: 9})
	if err != nil {
		t.Fatal(err)
	}
	if r.RowsX != 100 || r.RowsY != 30 {
		t.Fatalf("rows tested %d, %d; want 100, 30", r.RowsX, r.RowsY)
	}
}

func TestMMDRejectsBadInput(t *testing.T) {
	ok := mat.NewDense(3, 2, []float64{0, 1, 2, 3, 4, 5})
	nan := mat.NewDense(3, 2, []float64{0, 1, 2, math.NaN(), 4, 5})
	one := mat.NewDense(1, 2, []float64{0, 1})
	wide := mat.NewDense(3, 3, nil)
	same := mat.NewDense(3, 2, nil)
	for _, c := range []struct {
		x, y *mat.Dense
		opt  MMDOptions
		want string
	}{
		{ok, nan, MMDOptions{}, "sample y: row 1, column 1 is NaN"},
		{one, ok, MMDOptions{}, "sample x has 1 row"},
		{ok, wide, MMDOptions{}, "x has 2 columns and y has 3"},
		{nil, ok, MMDOptions{}, "sample x is empty"},
		{ok, ok, MMDOptions{Permutations: -1}, "Permutations = -1"},
		{ok, ok, MMDOptions{MaxRows: 1}, "MaxRows = 1"},
		{ok, ok, MMDOptions{Bandwidth: math.Inf(1)}, "Bandwidth = +Inf"},
		{ok, ok, MMDOptions{Scales: []float64{}}, "Scales is empty"},
		{ok, ok, MMDOptions{Scales: []float64{1, -0.5}}, "Scales[1] = -0.5"},
		{same, same, MMDOptions{}, "bandwidth is 0"},
	} {
		_, err := MMD(c.x, c.y, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("MMD error %v, want one containing %q", err, c.want)
		}
	}
}

// With one scale the aggregated p-value is the plain permutation p-value
// (1 + #{r ≥ 1: MMD²(r) ≥ MMD²(0)})/(1 + R), recomputed here from the same
// relabellings.
func TestMMDOneScaleIsThePlainTest(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 6))
	x, y := gauss(rng, 30, []float64{0, 0}, 1), gauss(rng, 25, []float64{0.3, 0}, 1)
	const R, seed = 199, 11
	got, err := MMD(x, y, MMDOptions{Permutations: R, Seed: seed, Scales: []float64{1}})
	if err != nil {
		t.Fatal(err)
	}
	// The relabellings MMD draws: the same generator, subsets (none here)
	// and bandwidth, then one shuffle per relabelling.
	r := rand.New(rand.NewPCG(seed, 0x6d6d64))
	xs, ys := subset(x, DefaultMaxRows, r), subset(y, DefaultMaxRows, r)
	pooled := append(append([][]float64{}, xs...), ys...)
	k := gram(pooled, medianDistance(pooled, r))
	N, total := len(pooled), 0.0
	for i := 0; i < N; i++ {
		for j := 0; j < N; j++ {
			if i != j {
				total += float64(k[i*N+j])
			}
		}
	}
	label := make([]bool, N)
	for i := range 30 {
		label[i] = true
	}
	obs := statistic(k, label, nil, make([]float64, N), 30, 25, total)
	exceed := 0
	for range R {
		r.Shuffle(N, func(i, j int) { label[i], label[j] = label[j], label[i] })
		if statistic(k, label, nil, make([]float64, N), 30, 25, total) >= obs {
			exceed++
		}
	}
	if want := float64(1+exceed) / (1 + R); got.P != want || got.MMD2 != obs || got.PerScale[0] != want {
		t.Fatalf("one scale: p = %g, MMD² = %g, per scale %v; the plain test gives p = %g, MMD² = %g", got.P, got.MMD2, got.PerScale, want, obs)
	}
}

// moons draws n points of two interleaved half-circles (radius 1, noise
// 0.05), the pair the median width cannot tell from a Gaussian.
func moons(rng *rand.Rand, n int) *mat.Dense {
	x := mat.NewDense(n, 2, nil)
	for i := 0; i < n; i++ {
		a := math.Pi * rng.Float64()
		u, v := math.Cos(a), math.Sin(a)
		if i%2 == 1 {
			u, v = 1-u, 0.5-v
		}
		x.Set(i, 0, u+0.05*rng.NormFloat64())
		x.Set(i, 1, v+0.05*rng.NormFloat64())
	}
	return x
}

// Two moons against a Gaussian with the same mean and covariance: the
// median width alone often misses the difference (the failure the narrow
// scales are there for: an affine map that only matches moments passed
// it); the aggregated test finds it at n = m = 150 every time (with 499
// relabellings its floor is at most 5/500).
func TestMMDNarrowScalesSeeStructure(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 7))
	var medianP []float64
	for rep := range 5 {
		x := moons(rng, 150)
		var mu [2]float64
		var cov mat.SymDense
		stat.CovarianceMatrix(&cov, x, nil)
		for j := range 2 {
			mu[j] = stat.Mean(mat.Col(nil, j, x), nil)
		}
		var chol mat.Cholesky
		if !chol.Factorize(&cov) {
			t.Fatal("moons covariance not positive definite")
		}
		var l mat.TriDense
		chol.LTo(&l)
		z := gauss(rng, 150, []float64{0, 0}, 1)
		var y mat.Dense
		y.Mul(z, l.T())
		for i := range 150 {
			y.Set(i, 0, y.At(i, 0)+mu[0])
			y.Set(i, 1, y.At(i, 1)+mu[1])
		}
		agg, err := MMD(x, &y, MMDOptions{Permutations: 499, Seed: uint64(rep)})
		if err != nil {
			t.Fatal(err)
		}
		if agg.P > 0.01 {
			t.Errorf("rep %d: aggregated p = %g (per scale %v), want ≤ 0.01", rep, agg.P, agg.PerScale)
		}
		medianP = append(medianP, agg.PerScale[len(agg.PerScale)-1])
	}
	t.Logf("median width alone: p = %.3g", medianP)
}

func BenchmarkMMD(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x, y := gauss(rng, 400, []float64{0, 0}, 1), gauss(rng, 400, []float64{0, 0}, 1)
	for b.Loop() {
		if _, err := MMD(x, y, MMDOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

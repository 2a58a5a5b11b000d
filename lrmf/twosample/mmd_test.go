package twosample

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

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

// A shift of half a standard deviation is detected at n = m = 300.
func TestMMDDetectsShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 4))
	r, err := MMD(gauss(rng, 300, []float64{0, 0}, 1), gauss(rng, 300, []float64{0.5, 0}, 1), MMDOptions{Permutations: 199, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.P != 1.0/200 || !(r.MMD2 > 0) {
		t.Fatalf("shifted samples: MMD² = %g, p = %g; want p = 1/200", r.MMD2, r.P)
	}
	if r.RowsX != 300 || r.RowsY != 300 || r.Dim != 2 || r.Permutations != 199 || !(r.Bandwidth > 0) {
		t.Fatalf("result fields %+v", r)
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
		{same, same, MMDOptions{}, "bandwidth is 0"},
	} {
		_, err := MMD(c.x, c.y, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("MMD error %v, want one containing %q", err, c.want)
		}
	}
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

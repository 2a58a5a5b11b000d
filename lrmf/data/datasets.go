package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// pcgStream is the second PCG seed word used by NewRand. It is fixed so that
// a dataset depends on the user's seed alone.
const pcgStream = 0xda3e39cb94b95bdb

// NewRand returns the random number generator used by every dataset in this
// package: rand.New(rand.NewPCG(seed, 0xda3e39cb94b95bdb)). Equal seeds give
// identical streams, so datasets are reproducible across runs and platforms.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, pcgStream))
}

// Pair is a pair of datasets to be aligned: A is nA×D and B is nB×D (same
// number of columns D). LabelsA and LabelsB hold one integer class label per
// row of A and B respectively, or are nil when the data have no labels.
type Pair struct {
	Name             string
	A, B             *mat.Dense
	LabelsA, LabelsB []int
}

// linspace mirrors numpy.linspace(start, stop, num) with endpoint=True:
// element i is start + i·(stop−start)/(num−1) and the last element is
// exactly stop.
func linspace(start, stop float64, num int) []float64 {
	out := make([]float64, num)
	if num <= 1 {
		if num == 1 {
			out[0] = start
		}
		return out
	}
	step := (stop - start) / float64(num-1)
	for i := range out {
		out[i] = float64(i)*step + start
	}
	out[num-1] = stop
	return out
}

// Moons draws n points of the "two moons" dataset with the semantics of
// sklearn.datasets.make_moons(n, shuffle=True, noise=noise).
//
// With nOut = n/2 (integer division) and nIn = n − nOut, the outer arm is
// (cos t, sin t) for t = linspace(0, π, nOut), label 0, and the inner arm is
// (1 − cos t, 1 − sin t − 0.5) for t = linspace(0, π, nIn), label 1. The
// points of an arm therefore lie on the circle of radius 1 centred at (0, 0)
// (outer, upper half) or at (1, 0.5) (inner, lower half). The rows are then
// shuffled together with their labels (a Fisher–Yates shuffle drawn from
// rng), and finally independent N(0, noise²) noise is added to every
// coordinate, row by row (no draws are made when noise is 0).
//
// It returns x (n×2) and labels (length n, values 0 and 1). It panics if
// n < 1 or noise is negative or not finite.
func Moons(n int, noise float64, rng *rand.Rand) (x *mat.Dense, labels []int) {
	if n < 1 {
		panic(fmt.Sprintf("data: Moons: n must be positive, got %d", n))
	}
	if !(noise >= 0) || math.IsInf(noise, 0) {
		panic(fmt.Sprintf("data: Moons: noise must be finite and non-negative, got %v", noise))
	}
	nOut := n / 2
	nIn := n - nOut
	raw := make([]float64, 0, 2*n)
	labels = make([]int, 0, n)
	for _, t := range linspace(0, math.Pi, nOut) {
		raw = append(raw, math.Cos(t), math.Sin(t))
		labels = append(labels, 0)
	}
	for _, t := range linspace(0, math.Pi, nIn) {
		raw = append(raw, 1-math.Cos(t), 1-math.Sin(t)-0.5)
		labels = append(labels, 1)
	}
	rng.Shuffle(n, func(i, j int) {
		raw[2*i], raw[2*j] = raw[2*j], raw[2*i]
		raw[2*i+1], raw[2*j+1] = raw[2*j+1], raw[2*i+1]
		labels[i], labels[j] = labels[j], labels[i]
	})
	if noise > 0 {
		for i := range raw {
			raw[i] += noise * rng.NormFloat64()
		}
	}
	return mat.NewDense(n, 2, raw), labels
}

// sinCosDeg returns sin and cos of an angle given in degrees, exactly for
// multiples of 90°.
func sinCosDeg(degrees float64) (sin, cos float64) {
	r := math.Mod(degrees, 360)
	if r < 0 {
		r += 360
	}
	switch r {
	case 0:
		return 0, 1
	case 90:
		return 1, 0
	case 180:
		return 0, -1
	case 270:
		return -1, 0
	}
	return math.Sincos(degrees * math.Pi / 180)
}

// Rotate returns a new n×2 matrix holding the rows of x rotated
// counter-clockwise by degrees about their centroid c = mean of the rows:
//
//	x'ᵢ = c + R(θ)(xᵢ − c),   R(θ) = [[cos θ, −sin θ], [sin θ, cos θ]],
//
// with θ = degrees·π/180 (multiples of 90° are applied exactly). x is not
// modified. Rotate panics if x does not have exactly 2 columns.
func Rotate(x *mat.Dense, degrees float64) *mat.Dense {
	n, d := x.Dims()
	if d != 2 {
		panic(fmt.Sprintf("data: Rotate: need 2 columns, got %d", d))
	}
	var cx, cy float64
	for i := range n {
		cx += x.At(i, 0)
		cy += x.At(i, 1)
	}
	cx /= float64(n)
	cy /= float64(n)
	s, c := sinCosDeg(degrees)
	out := mat.NewDense(n, 2, nil)
	for i := range n {
		dx, dy := x.At(i, 0)-cx, x.At(i, 1)-cy
		out.Set(i, 0, cx+c*dx-s*dy)
		out.Set(i, 1, cy+s*dx+c*dy)
	}
	return out
}

// MoonsPair returns the "moons" pair: A is Moons(n, noise) and B is an
// independent Moons(n, noise) draw rotated counter-clockwise by degrees
// about its own centroid (see Rotate). Both are n×2; LabelsA and LabelsB
// are the arm labels (0 outer, 1 inner) of the respective rows. A and B are
// drawn in that order from NewRand(seed). It panics if n < 1.
func MoonsPair(n int, noise, degrees float64, seed uint64) Pair {
	rng := NewRand(seed)
	a, la := Moons(n, noise, rng)
	b, lb := Moons(n, noise, rng)
	return Pair{Name: "moons", A: a, B: Rotate(b, degrees), LabelsA: la, LabelsB: lb}
}

// gaussian is a multivariate normal distribution N(Mean, Cov).
type gaussian struct {
	Mean []float64
	Cov  []float64 // row-major d×d, symmetric positive definite
}

// Parameters of the built-in Gaussian datasets (documented on the
// constructors; tests check samples against them).
var (
	blobsA   = gaussian{Mean: []float64{0, 0}, Cov: []float64{1, 0.6, 0.6, 0.8}}
	blobsB   = gaussian{Mean: []float64{3, -1}, Cov: []float64{0.5, -0.3, -0.3, 1.5}}
	gauss1dA = gaussian{Mean: []float64{0}, Cov: []float64{1}}
	gauss1dB = gaussian{Mean: []float64{2}, Cov: []float64{0.25}}
	gauss2dA = gaussian{Mean: []float64{-1, 1}, Cov: []float64{2, -0.8, -0.8, 1}}
	gauss2dB = gaussian{Mean: []float64{1.5, 2}, Cov: []float64{0.6, 0.4, 0.4, 0.9}}
)

// sample draws n rows xᵢ = μ + L zᵢ with zᵢ ~ N(0, I) and Σ = L Lᵀ the
// Cholesky factorisation, in row order, each zᵢ drawn coordinate by
// coordinate from rng.
func (g gaussian) sample(n int, rng *rand.Rand) *mat.Dense {
	d := len(g.Mean)
	var chol mat.Cholesky
	if !chol.Factorize(mat.NewSymDense(d, append([]float64(nil), g.Cov...))) {
		panic("data: covariance is not positive definite")
	}
	var l mat.TriDense
	chol.LTo(&l)
	out := mat.NewDense(n, d, nil)
	z := make([]float64, d)
	for i := range n {
		for k := range z {
			z[k] = rng.NormFloat64()
		}
		for r := range d {
			v := g.Mean[r]
			for k := 0; k <= r; k++ {
				v += l.At(r, k) * z[k]
			}
			out.Set(i, r, v)
		}
	}
	return out
}

// gaussPair draws A (n rows from a) then B (n rows from b) from NewRand(seed).
func gaussPair(name string, n int, seed uint64, a, b gaussian) Pair {
	if n < 1 {
		panic(fmt.Sprintf("data: %s: n must be positive, got %d", name, n))
	}
	rng := NewRand(seed)
	xa := a.sample(n, rng)
	xb := b.sample(n, rng)
	return Pair{Name: name, A: xa, B: xb}
}

// Blobs returns the "blobs" pair of two anisotropic, correlated 2-D
// Gaussians, each n×2, without labels:
//
//	A ~ N(μA, ΣA),  μA = (0, 0),   ΣA = [[1.0, 0.6], [0.6, 0.8]]
//	B ~ N(μB, ΣB),  μB = (3, −1),  ΣB = [[0.5, −0.3], [−0.3, 1.5]]
//
// Rows are drawn as μ + L z with Σ = L Lᵀ (Cholesky) and z ~ N(0, I), A
// first, from NewRand(seed). It panics if n < 1.
func Blobs(n int, seed uint64) Pair {
	return gaussPair("blobs", n, seed, blobsA, blobsB)
}

// Gauss1D returns the "gauss1d" pair of two 1-D Gaussians, each n×1,
// without labels:
//
//	A ~ N(0, 1),  B ~ N(2, 0.5²)
//
// A is drawn first, from NewRand(seed). It panics if n < 1.
func Gauss1D(n int, seed uint64) Pair {
	return gaussPair("gauss1d", n, seed, gauss1dA, gauss1dB)
}

// Gauss2D returns the "gauss2d" pair of two 2-D Gaussians, each n×2,
// without labels (different parameters from Blobs; here the correlations
// have opposite signs and B is the tighter cloud):
//
//	A ~ N(μA, ΣA),  μA = (−1, 1),   ΣA = [[2.0, −0.8], [−0.8, 1.0]]
//	B ~ N(μB, ΣB),  μB = (1.5, 2),  ΣB = [[0.6, 0.4], [0.4, 0.9]]
//
// Rows are drawn as μ + L z with Σ = L Lᵀ (Cholesky) and z ~ N(0, I), A
// first, from NewRand(seed). It panics if n < 1.
func Gauss2D(n int, seed uint64) Pair {
	return gaussPair("gauss2d", n, seed, gauss2dA, gauss2dB)
}

// Parameters Builtin uses for the "moons" dataset.
const (
	builtinMoonsNoise   = 0.05
	builtinMoonsDegrees = 50
)

var names = []string{"moons", "blobs", "gauss1d", "gauss2d"}

// Names returns the names accepted by Builtin, in a fixed order:
// "moons", "blobs", "gauss1d", "gauss2d". The slice is a fresh copy.
func Names() []string {
	return append([]string(nil), names...)
}

// Builtin returns the named built-in dataset pair with n rows in each of A
// and B, drawn deterministically from seed:
//
//	"moons"   MoonsPair(n, 0.05, 50, seed)  n×2 each, with arm labels
//	"blobs"   Blobs(n, seed)                n×2 each
//	"gauss1d" Gauss1D(n, seed)              n×1 each
//	"gauss2d" Gauss2D(n, seed)              n×2 each
//
// Names are matched case-insensitively, ignoring surrounding spaces. It
// returns an error if n ≤ 0 or if the name is unknown (the error lists the
// valid names).
func Builtin(name string, n int, seed uint64) (Pair, error) {
	key := strings.ToLower(strings.TrimSpace(name))
	var gen func() Pair
	switch key {
	case "moons":
		gen = func() Pair { return MoonsPair(n, builtinMoonsNoise, builtinMoonsDegrees, seed) }
	case "blobs":
		gen = func() Pair { return Blobs(n, seed) }
	case "gauss1d":
		gen = func() Pair { return Gauss1D(n, seed) }
	case "gauss2d":
		gen = func() Pair { return Gauss2D(n, seed) }
	default:
		return Pair{}, fmt.Errorf("data: unknown dataset %q (valid names: %s)", name, strings.Join(names, ", "))
	}
	if n <= 0 {
		return Pair{}, fmt.Errorf("data: dataset %q: number of samples must be positive, got %d", key, n)
	}
	return gen(), nil
}

// Package paper reruns experiments of the LRMF paper (Usman, Sud, Dufour,
// Saenko, NeurIPS 2020) outside the library core: Example 2.2, the
// vanishing gradient of a mixture likelihood, and the digit-embedding
// experiment (Digits: embeddings of a USPS-style domain aligned to MNIST
// with lrmf.Align, scored by k-NN class agreement beside the identity, the
// Gaussian OT map and CORAL). The figure reproductions fig8 and fig9, plain
// lrmf.Align runs, live in the lrmf command (lrmf reproduce).
//
// Example 2.2: A is an n-point sample of ½N(−1, 0.5²) + ½N(1, 0.5²); the
// model is the mixture ½N(0, 1.25) + ½N(μ, 1.25) (1.25 the variance;
// weights and variances fixed, only the second mean varies). For μ on
// linspace(4, 20, 100), g(μ) = ∂ℓ/∂μ with ℓ the mean log-likelihood of A;
// the paper regresses √(−ln|g|) on μ over the indices [20, 80) and reports
// a = 0.6, b = −1.168, r = 0.99996 (other draws: a ∈ [0.59, 0.61],
// b ∈ [−1.20, −1.13], r > 0.9999), showing |g| ∝ exp(−(aμ + b)²).
// In float32 g underflows past μ ≈ 17, so this runs in float64.
package paper

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// Values the paper reports for Example 2.2: the least-squares line
// √(−ln|g|) ≈ Example22A·μ + Example22B and Pearson's r, Example22R.
const (
	Example22A = 0.6
	Example22B = -1.168
	Example22R = 0.99996
)

// Example22Result is the outcome of Example22.
type Example22Result struct {
	N       int       // points in the sample of A
	Seed    uint64    // the sample's seed
	Backend string    // the backend that evaluated the gradients
	Mu      []float64 // the grid linspace(4, 20, 100)
	G       []float64 // g(μ) = ∂ℓ/∂μ
	Y       []float64 // √(−ln|g|)
	Lo, Hi  int       // the regression uses indices [Lo, Hi)
	A, B, R float64   // least squares Y ≈ A·μ + B and Pearson's r
}

// Example22 reproduces the paper's Example 2.2 with an n-point sample of A
// drawn with seed, evaluating ℓ and g with the GMM density (its mixture
// kernels) in float64 on the default backend (cpu with cgo, else ref).
func Example22(n int, seed uint64) (Example22Result, error) {
	if n < 1 {
		return Example22Result{}, fmt.Errorf("paper: Example22: n = %d, want ≥ 1", n)
	}
	be, err := native.Open(native.DefaultBackend(), native.Float64, 0)
	if err != nil {
		return Example22Result{}, fmt.Errorf("paper: Example22: %w", err)
	}
	defer be.Close()
	return Example22On(be, n, seed)
}

// Example22On is Example22 on be, which must be a float64
// native.GMMBackend (ref or cpu); be is not closed.
func Example22On(be native.Backend, n int, seed uint64) (Example22Result, error) {
	if n < 1 {
		return Example22Result{}, fmt.Errorf("paper: Example22: n = %d, want ≥ 1", n)
	}
	if be.DType() != native.Float64 {
		return Example22Result{}, fmt.Errorf("paper: Example22: the %s backend computes in %v; g underflows float32 past μ ≈ 17, use float64", be.Name(), be.DType())
	}
	res, err := example22On(be, example22Sample(n, seed))
	res.Seed = seed
	return res, err
}

// example22Sample draws n points of A = ½N(−1, 0.5²) + ½N(1, 0.5²).
func example22Sample(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0x22))
	xs := make([]float64, n)
	for i := range xs {
		m := -1.0
		if rng.IntN(2) == 1 {
			m = 1
		}
		xs[i] = m + 0.5*rng.NormFloat64()
	}
	return xs
}

// example22On evaluates the gradients for the sample xs on be.
func example22On(be native.Backend, xs []float64) (Example22Result, error) {
	const points, lo, hi = 100, 20, 80
	n := len(xs)
	res := Example22Result{N: n, Backend: be.Name(), Lo: lo, Hi: hi,
		Mu: make([]float64, points), G: make([]float64, points), Y: make([]float64, points)}
	x := be.New(n, 1)
	be.Upload(x, xs)

	gm, err := model.NewGMM(be, 1, 2, nil)
	if err != nil {
		return res, fmt.Errorf("paper: Example22: %w", err)
	}
	li := 1 / math.Sqrt(1.25) // L = Σ^{-1/2}
	logp, dlogp := be.New(n, 1), be.New(n, 1)
	be.Fill(dlogp, 1/float64(n)) // ℓ is the mean
	grad := make([]float64, 2)
	for i := range res.Mu {
		mu := 4 + 16*float64(i)/(points-1)
		res.Mu[i] = mu
		if err := gm.SetComponents([]float64{0, mu}, []float64{li, li}, []float64{0, 0}); err != nil {
			return res, err
		}
		if err := gm.LogProb(logp, x); err != nil {
			return res, fmt.Errorf("paper: Example22: %w", err)
		}
		if err := gm.Backward(nil, dlogp); err != nil {
			return res, fmt.Errorf("paper: Example22: %w", err)
		}
		be.Download(grad, gm.Params()[0].Grad)
		res.G[i] = grad[1]
		res.Y[i] = math.Sqrt(-math.Log(math.Abs(grad[1])))
	}
	for i := lo; i < hi; i++ {
		if y := res.Y[i]; math.IsNaN(y) || math.IsInf(y, 0) {
			return res, fmt.Errorf("paper: Example22: g(%g) = %g has no finite √(−ln|g|)", res.Mu[i], res.G[i])
		}
	}
	res.A, res.B, res.R = linearFit(res.Mu[lo:hi], res.Y[lo:hi])
	return res, nil
}

// linearFit returns the least-squares line y ≈ a·x + b and Pearson's r.
func linearFit(x, y []float64) (a, b, r float64) {
	n := float64(len(x))
	mx, my := 0.0, 0.0
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	sxx, syy, sxy := 0.0, 0.0, 0.0
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxx += dx * dx
		syy += dy * dy
		sxy += dx * dy
	}
	a = sxy / sxx
	b = my - a*mx
	r = sxy / math.Sqrt(sxx*syy)
	return a, b, r
}

package lrmf

import (
	"math"
	"math/rand/v2"
	"slices"
)

// The three-way split of each dataset: a training part (all fitting), a
// validation part (early stopping, the choice among restarts) and a
// held-out part (the reported figures only).

// SplitSizes returns the rows of the training, validation and held-out
// parts of a set of n rows under Config.Holdout and Config.Validation:
// held = round(holdout·n) (0 when holdout ≤ 0), val =
// round(validation·(n − held)) (0 when validation ≤ 0), train = the rest.
func SplitSizes(n int, holdout, validation float64) (train, val, held int) {
	if holdout > 0 {
		held = min(n, int(math.Round(holdout*float64(n))))
	}
	if validation > 0 {
		val = min(n-held, int(math.Round(validation*float64(n-held))))
	}
	return n - held - val, val, held
}

// MinHeldOutRows is the fewest held-out rows per set Align accepts for
// D-dimensional data: max(min(D + 1, 100), 10). Up to D = 99 the held-out
// means and their standard errors rest on more points than a Gaussian has
// free directions; beyond, 100 points are enough for the standard error
// of a mean of per-sample log-likelihoods (the central limit theorem does
// not need n > D), so 32×32 images need 100 held-out rows, not 1025.
func MinHeldOutRows(dim int) int { return max(min(dim+1, 100), 10) }

// split holds one set's row indices per part, each in increasing order.
type split struct {
	train, val, held []int32
}

// splitSet partitions rows 0..n−1: a permutation drawn from (seed, set)
// gives its first `held` entries to the held-out part, the next `val` to
// the validation part and the rest to training. It is a function of (seed,
// set, n, holdout, validation) only, so a resumed run recomputes it.
func splitSet(n int, holdout, validation float64, seed uint64, set int) split {
	_, nv, nh := SplitSizes(n, holdout, validation)
	rng := rand.New(rand.NewPCG(seed, 0x73706c6974+uint64(set))) // "split"
	perm := rng.Perm(n)
	part := func(p []int) []int32 {
		out := make([]int32, len(p))
		for i, v := range p {
			out[i] = int32(v)
		}
		slices.Sort(out)
		return out
	}
	return split{held: part(perm[:nh]), val: part(perm[nh : nh+nv]), train: part(perm[nh+nv:])}
}

// trimCount is the number of values dropped at each end of n under the
// trim fraction g (none for g ≤ 0).
func trimCount(n int, g float64) int {
	if g <= 0 {
		return 0
	}
	return int(g * float64(n))
}

// trimmedMean sorts x in place and returns the mean of its values with
// trimCount(len(x), g) dropped at each end. It allocates nothing.
func trimmedMean(x []float64, g float64) float64 {
	k := trimCount(len(x), g)
	if k == 0 {
		return mean(x)
	}
	slices.Sort(x)
	return mean(x[k : len(x)-k])
}

package embed

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Set is a data matrix, one point per row, with optional class labels: nil,
// or one per row.
type Set struct {
	X      *mat.Dense
	Labels []int
}

// Pair is two datasets embedded in one shared space.
type Pair struct {
	// A and B are the embedded n_A×D and n_B×D scores with the labels they
	// came with.
	A, B Set
	// PCA is the fitted map, for transforming more points or decoding.
	PCA *PCA
}

// Shared embeds a and b in one D-dimensional space: a PCA (see Fit) fitted
// on the union of their rows (A's stacked over B's), then applied to each.
//
// Fitting on the union treats the two domains alike, so neither loses the
// directions in which it differs from the other (fitting on B alone would
// hide from the alignment whatever of A lies outside B's principal
// subspace); the larger set weighs more. The scores are standardised over
// the union, not per set, so the shift between A and B is kept for the
// alignment to remove.
//
// It is an error, naming the set, if a or b is empty, their column counts
// differ (a shared embedding needs one input space: MNIST must be resized
// to the USPS-style domain's 16×16 with data.Images.Resized), a label slice
// is neither nil nor one per row, or D is not allowed by the union (see
// Fit).
func Shared(a, b Set, d int) (*Pair, error) {
	for _, s := range []struct {
		name string
		set  Set
	}{{"A", a}, {"B", b}} {
		if s.set.X == nil || s.set.X.IsEmpty() {
			return nil, fmt.Errorf("embed: %s is empty", s.name)
		}
		if n, _ := s.set.X.Dims(); s.set.Labels != nil && len(s.set.Labels) != n {
			return nil, fmt.Errorf("embed: %s has %d labels for %d rows", s.name, len(s.set.Labels), n)
		}
	}
	na, pa := a.X.Dims()
	nb, pb := b.X.Dims()
	if pa != pb {
		return nil, fmt.Errorf("embed: A has %d columns and B %d: a shared embedding needs one input space", pa, pb)
	}
	union := mat.NewDense(na+nb, pa, nil)
	union.Slice(0, na, 0, pa).(*mat.Dense).Copy(a.X)
	union.Slice(na, na+nb, 0, pa).(*mat.Dense).Copy(b.X)
	pc, err := Fit(union, d)
	if err != nil {
		return nil, fmt.Errorf("%w (fitted on the union of A and B)", err)
	}
	za, err := pc.Transform(a.X)
	if err != nil {
		return nil, err
	}
	zb, err := pc.Transform(b.X)
	if err != nil {
		return nil, err
	}
	return &Pair{A: Set{za, clone(a.Labels)}, B: Set{zb, clone(b.Labels)}, PCA: pc}, nil
}

func clone(l []int) []int {
	if l == nil {
		return nil
	}
	return append([]int(nil), l...)
}

package embed

import (
	"context"
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
	// PCA is the fitted map, for transforming more points or decoding
	// (nil for an autoencoder pair).
	PCA *PCA
	// AE is the trained autoencoder of SharedAutoencoder (nil for a PCA
	// pair).
	AE *Autoencoder
}

// Embedding is a fitted map between an input space R^p and a shared space
// R^D, and back: *PCA and *Autoencoder.
type Embedding interface {
	// Dims returns p and D.
	Dims() (p, d int)
	// Transform maps m×p inputs to m×D shared coordinates.
	Transform(x *mat.Dense) (*mat.Dense, error)
	// Inverse maps m×D shared coordinates back to m×p inputs (PCA: the
	// projection onto its axes; autoencoder: the decoded images).
	Inverse(z *mat.Dense) (*mat.Dense, error)
}

// Map returns the pair's embedding: AE when set, else PCA.
func (p *Pair) Map() Embedding {
	if p.AE != nil {
		return p.AE
	}
	return p.PCA
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
	union, err := stack(a, b)
	if err != nil {
		return nil, err
	}
	pc, err := Fit(union, d)
	if err != nil {
		return nil, fmt.Errorf("%w (fitted on the union of A and B)", err)
	}
	return embedBoth(a, b, pc, &Pair{PCA: pc})
}

// SharedAutoencoder is Shared with an autoencoder in place of the PCA:
// TrainAutoencoder on the union of a's and b's rows (A's stacked over B's;
// values in [0, 1]) with cfg, then Transform of each. The checks on a and b
// are Shared's; cfg.Dim is D. The caller closes the returned Pair's AE.
func SharedAutoencoder(ctx context.Context, a, b Set, cfg AutoencoderConfig) (*Pair, error) {
	union, err := stack(a, b)
	if err != nil {
		return nil, err
	}
	ae, err := TrainAutoencoder(ctx, union, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w (trained on the union of A and B)", err)
	}
	p, err := embedBoth(a, b, ae, &Pair{AE: ae})
	if err != nil {
		ae.Close()
	}
	return p, err
}

// embedBoth fills pair's A and B with m's coordinates of a and b.
func embedBoth(a, b Set, m Embedding, pair *Pair) (*Pair, error) {
	za, err := m.Transform(a.X)
	if err != nil {
		return nil, err
	}
	zb, err := m.Transform(b.X)
	if err != nil {
		return nil, err
	}
	pair.A, pair.B = Set{za, clone(a.Labels)}, Set{zb, clone(b.Labels)}
	return pair, nil
}

// stack checks a and b (see Shared) and returns their rows stacked, A's
// over B's.
func stack(a, b Set) (*mat.Dense, error) {
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
	return union, nil
}

func clone(l []int) []int {
	if l == nil {
		return nil
	}
	return append([]int(nil), l...)
}

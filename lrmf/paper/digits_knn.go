package paper

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// KNN is a k-nearest-neighbour classifier over labelled reference rows
// (Euclidean distance, uniform votes).
//
// A query x gets the label most frequent among the labels of its k
// nearest reference rows; a tie between labels goes to the tied label
// whose nearest member is closest to x, and equal distances are ordered by
// row index, so the prediction is deterministic.
type KNN struct {
	// X is the n×D reference data and Labels its n labels.
	X      *mat.Dense
	Labels []int
	// K is k, 1 ≤ k ≤ n (k ≤ n−1 for LeaveOneOut).
	K int
}

// NewKNN returns a k-NN classifier over the rows of x labelled by labels.
// It is an error if x is empty, len(labels) is not its row count, or k is
// outside [1, n].
func NewKNN(x *mat.Dense, labels []int, k int) (*KNN, error) {
	if x == nil || x.IsEmpty() {
		return nil, fmt.Errorf("paper: KNN: no reference rows")
	}
	n, _ := x.Dims()
	switch {
	case len(labels) != n:
		return nil, fmt.Errorf("paper: KNN: %d labels for %d reference rows", len(labels), n)
	case k < 1 || k > n:
		return nil, fmt.Errorf("paper: KNN: k = %d: want 1 to the %d reference rows", k, n)
	}
	return &KNN{X: x, Labels: labels, K: k}, nil
}

// neighbours holds the k nearest rows found so far, nearest first.
type neighbours struct {
	dist []float64
	idx  []int
}

// offer inserts row j at squared distance d if it is among the k nearest
// (a later row with an equal distance ranks after the earlier ones).
func (nb *neighbours) offer(d float64, j int) {
	k := len(nb.dist)
	if d >= nb.dist[k-1] {
		return
	}
	i := k - 1
	for i > 0 && nb.dist[i-1] > d {
		nb.dist[i], nb.idx[i] = nb.dist[i-1], nb.idx[i-1]
		i--
	}
	nb.dist[i], nb.idx[i] = d, j
}

// classify returns the label of query row q, leaving out reference row
// skip (−1: none).
func (c *KNN) classify(nb *neighbours, q []float64, skip int) int {
	for i := range nb.dist {
		nb.dist[i], nb.idx[i] = inf, -1
	}
	r := c.X.RawMatrix()
	for j := range r.Rows {
		if j == skip {
			continue
		}
		row := r.Data[j*r.Stride : j*r.Stride+r.Cols]
		s := 0.0
		for k, v := range q {
			t := v - row[k]
			s += t * t
		}
		nb.offer(s, j)
	}
	// Majority vote over all k labels. Scanning nearest first with a
	// strict >, a tie goes to the label whose nearest member comes first.
	best, bestN := -1, 0
	for _, j := range nb.idx {
		if j < 0 {
			break
		}
		l, cnt := c.Labels[j], 0
		for _, j2 := range nb.idx {
			if j2 >= 0 && c.Labels[j2] == l {
				cnt++
			}
		}
		if cnt > bestN {
			best, bestN = l, cnt
		}
	}
	return best
}

var inf = math.Inf(1)

// Predict returns the predicted label of every row of the m×D matrix x. It
// is an error if x's columns differ from the reference's.
func (c *KNN) Predict(x *mat.Dense) ([]int, error) {
	if err := c.checkQuery(x); err != nil {
		return nil, err
	}
	m, _ := x.Dims()
	nb := neighbours{dist: make([]float64, c.K), idx: make([]int, c.K)}
	out := make([]int, m)
	for i := range m {
		out[i] = c.classify(&nb, x.RawRowView(i), -1)
	}
	return out, nil
}

// Accuracy returns the share of rows of x whose predicted label equals
// labels[i]: (1/m) Σ_i [predict(x_i) = labels_i]. It is an error if x's
// columns differ from the reference's or len(labels) is not its row count.
func (c *KNN) Accuracy(x *mat.Dense, labels []int) (float64, error) {
	if err := c.checkQuery(x); err != nil {
		return 0, err
	}
	m, _ := x.Dims()
	if len(labels) != m {
		return 0, fmt.Errorf("paper: KNN: %d labels for %d query rows", len(labels), m)
	}
	pred, err := c.Predict(x)
	if err != nil {
		return 0, err
	}
	return agreement(pred, labels), nil
}

// LeaveOneOut returns the within-domain accuracy of the classifier: each
// reference row classified by the k nearest of the other n−1 rows,
// (1/n) Σ_i [predict_{−i}(x_i) = labels_i]. It needs k ≤ n−1 (an error
// otherwise). This is n-fold cross-validation: the classifier that labels
// a row sees n−1 references, as many as one fitted on a whole domain.
func (c *KNN) LeaveOneOut() (float64, error) {
	n, _ := c.X.Dims()
	if c.K > n-1 {
		return 0, fmt.Errorf("paper: KNN: leave-one-out with k = %d needs at least %d rows, have %d", c.K, c.K+1, n)
	}
	nb := neighbours{dist: make([]float64, c.K), idx: make([]int, c.K)}
	pred := make([]int, n)
	for i := range n {
		pred[i] = c.classify(&nb, c.X.RawRowView(i), i)
	}
	return agreement(pred, c.Labels), nil
}

func (c *KNN) checkQuery(x *mat.Dense) error {
	if x == nil || x.IsEmpty() {
		return fmt.Errorf("paper: KNN: no query rows")
	}
	_, d := c.X.Dims()
	if _, dq := x.Dims(); dq != d {
		return fmt.Errorf("paper: KNN: query rows have %d columns, the reference %d", dq, d)
	}
	return nil
}

// agreement returns the share of positions where a and b are equal.
func agreement(a, b []int) float64 {
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	return float64(same) / float64(len(a))
}

package lrmf

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// NeighbourAgreement returns the share of rows x_i of x whose nearest
// neighbour (Euclidean) among the rows of ref carries the same label:
// (1/n) Σ_i [labelsX[i] = labelsRef[argmin_j ‖x_i − ref_j‖]].
//
// With x = T(A) and ref = B it measures whether an alignment preserved
// structure, e.g. that points of A land on the moon arm of B that matches
// their own ("arm accuracy"). It costs O(n·m·D).
func NeighbourAgreement(x *mat.Dense, labelsX []int, ref *mat.Dense, labelsRef []int) (float64, error) {
	n, d := x.Dims()
	m, dr := ref.Dims()
	switch {
	case d != dr:
		return 0, fmt.Errorf("lrmf: NeighbourAgreement: x has %d columns, ref %d", d, dr)
	case len(labelsX) != n || len(labelsRef) != m:
		return 0, fmt.Errorf("lrmf: NeighbourAgreement: %d and %d labels for %d and %d rows", len(labelsX), len(labelsRef), n, m)
	case n == 0 || m == 0:
		return 0, fmt.Errorf("lrmf: NeighbourAgreement: no rows")
	}
	xs, rs := x.RawMatrix(), ref.RawMatrix()
	agree := 0
	for i := 0; i < n; i++ {
		xi := xs.Data[i*xs.Stride : i*xs.Stride+d]
		best, bestJ := -1.0, 0
		for j := 0; j < m; j++ {
			rj := rs.Data[j*rs.Stride : j*rs.Stride+d]
			s := 0.0
			for k, v := range xi {
				t := v - rj[k]
				s += t * t
			}
			if best < 0 || s < best {
				best, bestJ = s, j
			}
		}
		if labelsX[i] == labelsRef[bestJ] {
			agree++
		}
	}
	return float64(agree) / float64(n), nil
}

package lrmf

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// checkPair validates A and B (non-empty, finite, the same number of
// columns) and returns their rows and dimension.
func checkPair(a, b *mat.Dense) (na, nb, dim int, err error) {
	if err := checkData("A", a); err != nil {
		return 0, 0, 0, err
	}
	if err := checkData("B", b); err != nil {
		return 0, 0, 0, err
	}
	na, dim = a.Dims()
	nb, dimB := b.Dims()
	if dim != dimB {
		return 0, 0, 0, fmt.Errorf("lrmf: A has %d columns and B has %d: the datasets must have the same dimension", dim, dimB)
	}
	return na, nb, dim, nil
}

// checkData validates one dataset: non-empty and finite.
func checkData(name string, x *mat.Dense) error {
	if x == nil || x.IsEmpty() {
		return fmt.Errorf("lrmf: dataset %s is empty", name)
	}
	r, c := x.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			if v := x.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("lrmf: dataset %s: row %d, column %d is %v", name, i, j, v)
			}
		}
	}
	return nil
}

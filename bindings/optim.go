//go:build cgo

package bindings

// #include "lrmf.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// SumSquares sets out[s] = Σ x[j]² over the elements j of segment s that
// lie in [lo, hi), summed in float64 (in a fixed order: 32 running sums,
// added pairwise, then the remainder; an empty intersection gives 0).
// Segment s is [ends[s−1], ends[s]) with ends[−1] = 0; ends must be
// nondecreasing, len(out) = len(ends), 0 ≤ lo ≤ hi ≤ len(x). Callers
// split [0, len(x)) into ranges and add the partials per segment.
func SumSquares[T Float](lo, hi int, x []T, ends []int64, out []float64) error {
	const op = "SumSquares"
	if lo < 0 || hi < lo || hi > len(x) {
		return &Error{op, fmt.Sprintf("range [%d, %d) outside len(x) = %d", lo, hi, len(x))}
	}
	if err := checkSame(op, "out", len(out), "ends", len(ends)); err != nil {
		return err
	}
	if len(ends) == 0 {
		return nil
	}
	for s, e := range ends {
		if e < 0 || (s > 0 && e < ends[s-1]) {
			return &Error{op, fmt.Sprintf("ends[%d] = %d: ends must be nonnegative and nondecreasing", s, e)}
		}
	}
	pe := (*C.int64_t)(unsafe.Pointer(unsafe.SliceData(ends)))
	po := (*C.double)(unsafe.Pointer(unsafe.SliceData(out)))
	if is32[T]() {
		return status(op, C.lrmf_sum_squares_f32(i64(lo), i64(hi), pf(x), i64(len(ends)), pe, po))
	}
	return status(op, C.lrmf_sum_squares_f64(i64(lo), i64(hi), pd(x), i64(len(ends)), pe, po))
}

// Package sanitize reports whether the test binary was built with a
// sanitizer, so that tests whose assertion the instrumentation changes can
// say so and skip: under go test -asan the runtime allocates for cgo
// calls, and "allocates nothing per step" cannot be measured there (the
// plain go test run measures it).
package sanitize

import "testing"

// SkipAllocationCounts skips t under -asan, whose runtime allocates for cgo
// calls; allocation counts are asserted by the uninstrumented run.
func SkipAllocationCounts(t testing.TB) {
	t.Helper()
	if ASan {
		t.Skip("allocation counts are not meaningful under -asan (the instrumented runtime allocates for cgo calls); the plain go test run asserts them")
	}
}

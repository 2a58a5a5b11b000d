package native_test

import (
	"testing"

	"github.com/lrmf-go/lrmf/native"
	"github.com/lrmf-go/lrmf/native/nativetest"
)

// TestBatchedODEConformance runs the FFJORD conformance suite on the
// batched path over the reference backend's generic operations.
func TestBatchedODEConformance(t *testing.T) {
	nativetest.RunODE(t, native.NewBatchedODE(native.NewRef()))
}

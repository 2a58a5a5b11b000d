package bindings

import (
	"testing"

	"github.com/lrmf-go/lrmf/internal/csrchash"
)

// The compiled kernels must be the ones in csrc/: the go command does not
// notice edits there by itself (see internal/csrchash).
func TestCSourcesFingerprintUpToDate(t *testing.T) {
	sum, err := csrchash.Sum("..")
	if err != nil {
		t.Fatal(err)
	}
	if sum != csrcHash {
		t.Fatalf("csrc/ changed since bindings/csrc_hash.go was generated, so the cached cgo build may be stale: run go generate ./bindings")
	}
}

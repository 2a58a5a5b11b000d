//go:build !cgo

package native

import "errors"

const cgoAvailable = false

// NewCPU needs cgo; in this build it always fails. Use NewRef.
func NewCPU(dt DType, threads int) (Backend, error) {
	return nil, errors.New("native: the cpu backend needs cgo (this build has CGO_ENABLED=0); use the ref backend")
}

package native

import (
	"errors"
	"fmt"
)

// ErrOutOfMemory is wrapped by the DeviceError of a device allocation that
// failed for want of memory (cuMemAlloc's CUDA_ERROR_OUT_OF_MEMORY, after
// the backend gave its cached blocks back and tried again).
var ErrOutOfMemory = errors.New("device out of memory")

// DeviceError is the panic value of a backend whose device failed an
// operation that has no error result (Backend.New, Upload, a launch): out
// of memory, a lost device. It is not a programming error, so entry points
// that run models (lrmf.Align, lrmf.EvalFlow) recover it with
// RecoverDeviceError and return it as their error.
type DeviceError struct {
	Backend string // "cuda"
	Op      string // the operation and driver call, e.g. "New(4096, 2): cuMemAlloc"
	Err     error  // the driver's error; wraps ErrOutOfMemory for an allocation
}

// Error returns "native: BACKEND: OP: ERR".
func (e *DeviceError) Error() string {
	return fmt.Sprintf("native: %s: %s: %v", e.Backend, e.Op, e.Err)
}

// Unwrap returns e.Err.
func (e *DeviceError) Unwrap() error { return e.Err }

// RecoverDeviceError, deferred directly (defer native.RecoverDeviceError(&err)),
// stores a *DeviceError panic in *err and lets the function return; any
// other panic goes on.
func RecoverDeviceError(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if de, ok := r.(*DeviceError); ok {
		*err = de
		return
	}
	panic(r)
}

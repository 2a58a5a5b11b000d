package native

import (
	"fmt"
	"sort"
	"strings"
)

// Opener makes a backend of element type dt with up to threads host threads.
type Opener func(dt DType, threads int) (Backend, error)

var openers = map[string]Opener{
	"cpu": NewCPU,
	"ref": func(dt DType, _ int) (Backend, error) {
		if dt != Float64 {
			return nil, fmt.Errorf("native: the ref backend computes in float64 only (asked for %v)", dt)
		}
		return NewRef(), nil
	},
}

// Register makes a backend available to Open under name. Backends in
// optional packages (native/cuda, build tag cuda) call it from init. It
// panics if name is already registered.
func Register(name string, open Opener) {
	if _, dup := openers[name]; dup {
		panic("native: Register called twice for backend " + name)
	}
	openers[name] = open
}

// Backends lists the names Open accepts, sorted.
func Backends() []string {
	names := make([]string, 0, len(openers))
	for n := range openers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open returns the backend called name ("cpu", "ref", or a registered one).
func Open(name string, dt DType, threads int) (Backend, error) {
	open, ok := openers[name]
	if !ok {
		return nil, fmt.Errorf("native: unknown backend %q (available: %s)", name, strings.Join(Backends(), ", "))
	}
	return open(dt, threads)
}

// DefaultBackend is "cpu" when cgo is available, else "ref".
func DefaultBackend() string {
	if cgoAvailable {
		return "cpu"
	}
	return "ref"
}

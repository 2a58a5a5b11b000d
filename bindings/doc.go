// Package bindings exposes lrmf's C compute kernels (csrc/include/lrmf.h)
// to Go through cgo.
//
// Every kernel is one generic function over [Float] (float32 or float64)
// that dispatches on the element size to the _f32 or _f64 C symbol. The
// functions validate their arguments in Go before crossing into C, in a
// fixed order: negative sizes, leading dimensions smaller than the row
// length, slices too short for the sizes, then mismatched lengths of
// elementwise operands (and, for [GatherRows], row indices out of range).
// A failed check returns an [*Error] and writes nothing. On success the
// functions do not allocate.
//
// Conventions follow the C header: matrices are row-major; only [Gemm]
// takes leading dimensions, every other n×d matrix is a contiguous slice of
// at least n·d elements (longer slices are allowed; the tail is neither
// read nor written). Sums over a row or the batch accumulate in float64
// whatever T is. Outputs must not overlap inputs unless a function says
// otherwise. A call whose outputs are all empty returns nil without calling
// C; a call with a zero inner size still writes its non-empty outputs (an
// empty sum is 0, so Gemm with k = 0 gives C = beta·C and BiasGrad with
// n = 0 zeroes db).
//
// The C sources are compiled by cgo from bindings/lrmf_cpu.c, which
// includes csrc/cpu/lrmf_cpu.c. The go command does not notice edits to
// files outside this directory, so after changing csrc/ run
// `go generate ./bindings`: it rewrites csrc_hash.go, which makes the go
// command recompile the C, and TestCSourcesFingerprintUpToDate fails until
// it is done.
//
// Without cgo (CGO_ENABLED=0) the package is empty.
package bindings

//go:generate go run gen_kernels.go
//go:generate go run gen_csrchash.go

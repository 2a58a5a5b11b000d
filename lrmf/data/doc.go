// Package data supplies the built-in toy datasets used to exercise
// Log-Likelihood Ratio Minimizing Flows (pairs of n×D float64 matrices A and
// B to be aligned) and reads and writes user data files.
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
package data

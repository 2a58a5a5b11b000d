//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !dragonfly

package main

import "io"

// isTerminal is false where terminal detection is not implemented; progress
// is then printed as plain lines.
func isTerminal(io.Writer) bool { return false }

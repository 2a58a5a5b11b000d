//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !dragonfly

package main

import "io"

// isTerminal reports false on platforms without a termios probe, so
// progress is printed as plain periodic lines there.
func isTerminal(io.Writer) bool { return false }

//go:build asan

package sanitize

// ASan is true when the binary was built with -asan.
const ASan = true

// Package tests holds end-to-end checks across packages: the command as a
// user runs it, and the paper's claims on the built-in data.
package tests

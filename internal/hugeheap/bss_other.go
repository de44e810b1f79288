//go:build !linux || !cgo

package hugeheap

// BSSAdvised is false: without cgo on Linux nothing runs before the Go
// packages initialise, so their tables stay on ordinary pages.
func BSSAdvised() bool { return false }

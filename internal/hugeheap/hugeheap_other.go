//go:build !linux

package hugeheap

// Mode is "" where the kernel has no transparent huge pages.
func Mode() string { return "" }

// Reserve does nothing where the kernel has no transparent huge pages.
func Reserve(n int) (int, error) { return 0, ErrNotAdvised }

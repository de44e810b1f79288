//go:build !amd64

package capture

import "unsafe"

// prefetch is a no-op where no assembly provides it.
func prefetch(unsafe.Pointer, uintptr) {}

package capture

import "unsafe"

// prefetch asks the processor to bring the cache lines of [p, p+n) into
// its caches ahead of use.
//
//go:noescape
func prefetch(p unsafe.Pointer, n uintptr)

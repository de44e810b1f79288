package capture

import "unsafe"

// prefetch asks the CPU to load the three cache lines at p: the next
// packet's ring header and the first bytes of its frame, which the kernel
// wrote from another core, so they arrive while the current packet is
// processed instead of stalling the read of the next one.
//
//go:noescape
func prefetch(p unsafe.Pointer)

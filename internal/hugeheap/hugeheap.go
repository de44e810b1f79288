// Package hugeheap asks Linux to back the Go heap with transparent huge
// pages where the system leaves that to the program ("madvise" mode, the
// default of many distributions).
//
// Why: a sensor touches new memory at every new flow. With 4 KiB pages each
// first touch is a page fault, and in a virtual machine a fault costs
// microseconds; a many-flow capture spent a third of its CPU time in them
// and more in TLB misses. The Go runtime maps its heap without
// MADV_HUGEPAGE and offers no setting for it.
//
// How: Reserve maps n bytes of heap by allocating them (fresh memory from
// the OS is not touched by the allocation), marks that range
// MADV_HUGEPAGE, and lets it go. The runtime's page allocator hands out
// the lowest free addresses first, so the heap then grows into the marked
// range; returning pages to the OS (MADV_DONTNEED) keeps the mark.
package hugeheap

import "errors"

// ErrNotAdvised: the system's mode makes advice pointless ("always"
// already gives huge pages, "never" refuses them, elsewhere than Linux
// there is no such mode).
var ErrNotAdvised = errors.New("transparent huge pages are not in madvise mode")

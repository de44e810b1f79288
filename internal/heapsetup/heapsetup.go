// Package heapsetup prepares the Go heap at start-up, the same way for
// the sensor and for its benchmarks: a collector ballast (gcfloor) and, on
// Linux in madvise mode, a range marked for transparent huge pages
// (hugeheap).
package heapsetup

import (
	"runtime/debug"

	"github.com/sewatch/sewatch/internal/gcfloor"
	"github.com/sewatch/sewatch/internal/hugeheap"
)

// Ballast is the collector ballast the sensor runs with: its first cycle
// waits until the heap holds about this much.
const Ballast = 64 << 20

// Result says what Apply did.
type Result struct {
	Ballast   int   // bytes of ballast held
	HugePages int   // bytes of heap address range marked for huge pages
	HugeErr   error // why none were marked (hugeheap.ErrNotAdvised, ...)
}

// Apply allocates the ballast, then, if hugePages, marks hugeBytes of heap
// for huge pages. The collector is paused meanwhile (each allocation would
// start a cycle of its own) and the marked range is freed by one forced
// cycle. Call it once, first thing, before the heap grows.
func Apply(hugePages bool, hugeBytes int) Result {
	gcp := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(gcp)
	// The ballast first, on fresh (untouched) memory below the range.
	r := Result{Ballast: gcfloor.Set(Ballast)}
	if hugePages {
		r.HugePages, r.HugeErr = hugeheap.Reserve(hugeBytes)
	}
	return r
}

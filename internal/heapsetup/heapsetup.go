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

// Ballast is the collector ballast per worker: the first cycle waits until
// the heap holds about this much per worker.
const Ballast = 64 << 20

// maxBallastWorkers caps the workers the ballast grows with (1 GiB of
// address space, never resident).
const maxBallastWorkers = 16

// BallastFor is the ballast of a run with workers workers. Each worker
// keeps a flow table, handshake buffer pool and detector state of its own,
// so the heap a run reaches before its first cycle grows with them: with
// one worker's ballast, two workers on the many-flow benchmark capture
// crossed the goal (133 MB against 130) and ran one full cycle there, with
// write barriers on for both workers: wall 0.39 -> 0.33 s and CPU 0.72 ->
// 0.62 s (medians of 7 alternated runs) with a ballast per worker.
func BallastFor(workers int) int { return min(max(workers, 1), maxBallastWorkers) * Ballast }

// Result says what Apply did.
type Result struct {
	Ballast   int   // bytes of ballast held
	HugePages int   // bytes of heap address range marked for huge pages
	HugeErr   error // why none were marked (hugeheap.ErrNotAdvised, ...)
}

// Apply allocates a ballast of ballast bytes (BallastFor), then, if
// hugePages, marks hugeBytes of heap for huge pages. The collector is paused meanwhile (each allocation would
// start a cycle of its own) and the marked range is freed by one forced
// cycle. Call it once, first thing, before the heap grows.
func Apply(ballast int, hugePages bool, hugeBytes int) Result {
	gcp := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(gcp)
	// The ballast first, on fresh (untouched) memory below the range.
	r := Result{Ballast: gcfloor.Set(ballast)}
	if hugePages {
		r.HugePages, r.HugeErr = hugeheap.Reserve(hugeBytes)
	}
	return r
}

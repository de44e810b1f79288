// Package gcfloor keeps the garbage collector from running while the heap
// is small: a ballast, a large pointer-free allocation that is never
// touched, counts as live heap, so the collector's goal (twice the live
// heap at GOGC=100) starts at twice the ballast instead of 4 MiB.
//
// Why: a sensor's heap grows from nothing to its flow table's size in its
// first seconds, and each of the collections on the way (at 4, 8, 16, 32,
// 64 MiB) scans every global (gopacket's decoder tables alone hold
// megabytes of pointers) and re-marks the same young flows. On a
// many-flow capture those cycles were 10-15 % of the CPU time.
//
// The ballast is never read or written, so the kernel never backs it with
// memory: it costs address space, not RSS. The runtime does count it in
// its memory-limit accounting, so the limit is raised by the same amount.
package gcfloor

import "sync"

var (
	mu      sync.Mutex
	ballast []byte
)

// Set makes the heap hold an n-byte ballast (n <= 0 removes it) and
// returns n. Call it once, before the heap grows: fresh memory from the OS
// is not touched by the allocation, while memory the heap has used before
// would be cleared, and so made resident. A call for the size already held
// keeps the ballast as it is.
func Set(n int) int {
	mu.Lock()
	defer mu.Unlock()
	if n <= 0 {
		ballast = nil
		return 0
	}
	if len(ballast) != n {
		ballast = nil
		ballast = make([]byte, n)
	}
	return n
}

// Size is the ballast's size in bytes.
func Size() int {
	mu.Lock()
	defer mu.Unlock()
	return len(ballast)
}

//go:build unix

package capture

import (
	"os"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// mapFile maps size bytes of f read-only and shared (the page cache's own
// pages, nothing copied), or returns nil when it cannot or, unless always,
// when the file is small or the page cache maps it in small pieces
// (mapsLarge).
func mapFile(f *os.File, size int64, always bool) []byte {
	if size <= 0 || (size < minMapped && !always) || int64(int(size)) != size {
		return nil
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	if !always && !mapsLarge(m) {
		_ = unix.Munmap(m)
		return nil
	}
	return m
}

// dropPages gives the mapping's pages in p back (they stay in the page
// cache; the process no longer holds them, so its resident size does not
// grow with the file).
func dropPages(p []byte) { _ = unix.Madvise(p, unix.MADV_DONTNEED) }

// unmapFile undoes mapFile.
func unmapFile(m []byte) { _ = unix.Munmap(m) }

// mapsLarge reports whether the page cache maps m in large pieces: in
// most of probeWindows one-MiB windows spread over the file, touching the
// MiB page by page takes at most a few faults (a file cached in large
// folios maps up to 2 MiB a fault; one cached in 4 KiB pages takes 16
// faults a MiB at best, and so does the start of a file read in order,
// while the kernel's read-ahead ramps up: the benchmark capture's first
// 8 MiB). Mapping pays off only then: on a VM each fault can cost many
// microseconds, and in 4 KiB pieces the faults of a pass over a file cost
// more than read()'s copy of it. Several windows, because one can land on
// a stretch cached in small pieces in a file cached in large ones (pages
// evicted and read back: the benchmark capture's MiB 240-247 of 490, its
// middle, which a one-window probe took for the whole file).
func mapsLarge(m []byte) (large bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			large = false // the file shrank already
		}
	}()
	var faults [probeWindows]int64
	var x byte
	for w := range faults {
		var a, b unix.Rusage
		if unix.Getrusage(unix.RUSAGE_THREAD, &a) != nil {
			return false
		}
		// Windows at 1/6 .. 5/6 of the file, on a 2 MiB boundary (a
		// large folio's); a file of minMapped or more keeps them apart.
		start := len(m) / (probeWindows + 1) * (w + 1) &^ (2<<20 - 1)
		for i := start; i < min(len(m), start+1<<20); i += 4096 {
			x += m[i]
		}
		if unix.Getrusage(unix.RUSAGE_THREAD, &b) != nil {
			return false
		}
		faults[w] = b.Minflt - a.Minflt + b.Majflt - a.Majflt
	}
	runtime.KeepAlive(x) // the loads are the point
	return mostlyLarge(faults[:])
}

// mostlyLarge tells whether more than half of the probe windows took at
// most maxProbeFaults faults each.
func mostlyLarge(faults []int64) bool {
	n := 0
	for _, f := range faults {
		if f <= maxProbeFaults {
			n++
		}
	}
	return 2*n > len(faults)
}

// minMapped is the smallest file mapped: a smaller one is read in a few
// milliseconds either way.
const minMapped = 16 << 20

// probeWindows is how many one-MiB windows mapsLarge touches.
const probeWindows = 5

// maxProbeFaults is the most faults one of mapsLarge's windows may take
// and count as mapped in large pieces.
const maxProbeFaults = 4

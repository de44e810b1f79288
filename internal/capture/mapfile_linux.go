//go:build linux

package capture

import (
	"os"
	"runtime"
	"runtime/debug"
	"unsafe"

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
// more than read()'s copy of it.
//
// Only a window the page cache holds whole is touched, and one it does not
// counts as small: faults on pages not cached read them in at the fault's
// small size, so a probe that touched them would leave its own windows in
// small pieces for every later run. The development VM's page cache is
// dropped now and then (11 drops in six hours); after one the probe read its
// windows back in 4 KiB pages (8-14 MiB around each), the run fell back
// to pread (which reads the rest back in large folios) and every later run
// found the windows small and did the same. Now the first run after a drop
// reads with pread and the next one maps. Several windows, because one can
// land on a stretch cached in small pieces in a file cached in large ones.
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
	vec := make([]byte, (1<<20)/os.Getpagesize()+1)
	var x byte
	for w := range faults {
		start, end := probeWindow(len(m), w)
		win := m[start:end]
		if !cached(win, vec) {
			faults[w] = notCached
			continue
		}
		var a, b unix.Rusage
		if unix.Getrusage(unix.RUSAGE_THREAD, &a) != nil {
			return false
		}
		for i := 0; i < len(win); i += 4096 {
			x += win[i]
		}
		if unix.Getrusage(unix.RUSAGE_THREAD, &b) != nil {
			return false
		}
		faults[w] = b.Minflt - a.Minflt + b.Majflt - a.Majflt
	}
	runtime.KeepAlive(x) // the loads are the point
	return mostlyLarge(faults[:])
}

// probeWindow is the place of mapsLarge's window w in a file of size n: at
// (w+1)/6 of the file, on a 2 MiB boundary (a large folio's); a file of
// minMapped or more keeps the windows apart.
func probeWindow(n, w int) (start, end int) {
	start = n / (probeWindows + 1) * (w + 1) &^ (2<<20 - 1)
	return start, min(n, start+1<<20)
}

// cached reports whether every page of win (page-aligned, part of a file
// mapping) is in the page cache; vec has room for its pages.
func cached(win, vec []byte) bool {
	n, pages := residentPages(win, vec)
	return pages > 0 && n == pages
}

// residentPages counts the pages of win (page-aligned, part of a file
// mapping) that are in the page cache, out of pages (0 when vec has no
// room for them or mincore fails).
func residentPages(win, vec []byte) (n, pages int) {
	pages = (len(win) + os.Getpagesize() - 1) / os.Getpagesize()
	if pages == 0 || pages > len(vec) {
		return 0, 0
	}
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(win))), uintptr(len(win)),
		uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if errno != 0 {
		return 0, 0
	}
	for _, v := range vec[:pages] {
		n += int(v & 1)
	}
	return n, pages
}

// notCached marks a probe window the page cache does not hold whole.
const notCached = -1

// mostlyLarge tells whether more than half of the probe windows took at
// most maxProbeFaults faults each (a window not cached counts as small).
func mostlyLarge(faults []int64) bool {
	n := 0
	for _, f := range faults {
		if f != notCached && f <= maxProbeFaults {
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

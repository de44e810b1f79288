//go:build linux

package hugeheap

import (
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const hugePage = 2 << 20

// Mode reads the system's transparent huge page mode: "always",
// "madvise", "never", or "" when the kernel does not say.
func Mode() string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.IndexByte(s, '['); i >= 0 {
		if j := strings.IndexByte(s[i:], ']'); j > 0 {
			return s[i+1 : i+j]
		}
	}
	return ""
}

// maxShare caps a reservation at this fraction of the machine's memory:
// the allocation maps (without touching) n bytes at once, and a kernel that
// refuses the mapping would end the program.
const maxShare = 4

var reserved atomic.Bool

// Reserve marks about n bytes of the heap's address range for huge pages
// and returns how many bytes were marked. It allocates n bytes (at most a
// quarter of the machine's memory) once, so call it at start-up, before
// the heap holds anything large and before setting a memory limit smaller
// than n. Later calls do nothing.
func Reserve(n int) (int, error) {
	if mode := Mode(); mode != "madvise" {
		return 0, ErrNotAdvised
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, err
	}
	n = min(n, int(uint64(si.Totalram)*uint64(si.Unit)/maxShare))
	if !reserved.CompareAndSwap(false, true) {
		return 0, nil
	}
	if n < 2*hugePage {
		return 0, nil
	}
	b := make([]byte, n)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	beg := (p + hugePage - 1) &^ (hugePage - 1)
	end := (p + uintptr(n)) &^ (hugePage - 1)
	if end <= beg {
		return 0, nil
	}
	err := unix.Madvise(b[beg-p:end-p], unix.MADV_HUGEPAGE)
	runtime.KeepAlive(b)
	b = nil
	// Free the range now so the next allocations land in it.
	runtime.GC()
	if err != nil {
		return 0, err
	}
	return int(end - beg), nil
}

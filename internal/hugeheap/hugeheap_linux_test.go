package hugeheap

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// TestReserve: after Reserve, new heap objects land in a mapping the kernel
// has flagged for huge pages ("hg" in smaps); in any mode but madvise the
// call declines and says why.
func TestReserve(t *testing.T) {
	mode := Mode()
	if mode != "madvise" {
		if _, err := Reserve(64 << 20); !errors.Is(err, ErrNotAdvised) {
			t.Fatalf("mode %q: Reserve err = %v, want ErrNotAdvised", mode, err)
		}
		return
	}
	n, err := Reserve(64 << 20)
	if err != nil || n < 60<<20 {
		t.Fatalf("Reserve = %d, %v; want about 64 MiB marked", n, err)
	}
	if n2, err := Reserve(64 << 20); n2 != 0 || err != nil {
		t.Fatalf("second Reserve = %d, %v; want 0, nil (once per process)", n2, err)
	}
	vmas = nil // Reserve split the heap's mapping: read smaps afresh
	// Objects of a flow's size, as the engine allocates them.
	keep := make([][]byte, 0, 4096)
	flagged := 0
	for i := 0; i < cap(keep); i++ {
		b := make([]byte, 4096)
		b[0] = 1
		keep = append(keep, b)
		if hugeFlagged(t, uintptr(unsafe.Pointer(&b[0]))) {
			flagged++
		}
	}
	if flagged < len(keep)/2 {
		t.Fatalf("%d of %d new objects lie in a mapping flagged for huge pages, want most", flagged, len(keep))
	}
}

var vmas []vma

type vma struct {
	lo, hi uintptr
	hg     bool
}

// hugeFlagged reports whether addr lies in a mapping with the "hg"
// (MADV_HUGEPAGE) flag, reading /proc/self/smaps again when addr is in no
// mapping read so far.
func hugeFlagged(t *testing.T, addr uintptr) bool {
	for pass := 0; pass < 2; pass++ {
		for _, v := range vmas {
			if addr >= v.lo && addr < v.hi {
				return v.hg
			}
		}
		vmas = readSmaps(t)
	}
	t.Fatalf("address %#x is in no mapping of /proc/self/smaps", addr)
	return false
}

func readSmaps(t *testing.T) []vma {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vma
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rng, _, ok := strings.Cut(line, " "); ok && strings.Contains(rng, "-") && !strings.HasSuffix(rng, ":") {
			lo, hi, _ := strings.Cut(rng, "-")
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				out = append(out, vma{lo: uintptr(l), hi: uintptr(h)})
				continue
			}
		}
		if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok && len(out) > 0 {
			out[len(out)-1].hg = strings.Contains(" "+flags+" ", " hg ")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

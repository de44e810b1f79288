//go:build linux && cgo

package hugeheap

import (
	"testing"
	"unsafe"
)

// bssProbe is zero-initialised package data, so it lies in the
// executable's .noptrbss, like gopacket's layer tables.
var bssProbe [8 << 20]byte

// TestBSSAdvised: the C constructor marked the executable's zero data for
// huge pages before the runtime started (in any mode: the flag is set even
// where "never" makes it moot). With the constructor gone the probe's
// mapping has no "hg" flag and this fails.
func TestBSSAdvised(t *testing.T) {
	if Mode() == "" {
		// A kernel without transparent huge pages refuses the advice.
		if BSSAdvised() {
			t.Fatal("BSSAdvised() = true on a kernel without transparent huge pages")
		}
		return
	}
	if !BSSAdvised() {
		t.Fatal("BSSAdvised() = false: the start-up madvise did not run or failed")
	}
	for _, off := range []int{0, len(bssProbe) / 2, len(bssProbe) - 1} {
		if !hugeFlagged(t, uintptr(unsafe.Pointer(&bssProbe[off]))) {
			t.Errorf("bssProbe[%d] lies in a mapping without the hg flag", off)
		}
	}
}

package gcfloor

import (
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
)

// TestBallast: the ballast raises the collector's goal past itself (so a
// small heap is not collected) without becoming resident memory, and a
// second Set of the same size keeps it.
func TestBallast(t *testing.T) {
	const n = 256 << 20
	rss0 := rssBytes(t)
	if got := Set(n); got != n || Size() != n {
		t.Fatalf("Set(%d) = %d, Size %d", n, got, Size())
	}
	first := &ballast[0]
	runtime.GC()
	if rise := rssBytes(t) - rss0; rise > 32<<20 {
		t.Errorf("RSS rose %d MiB with a %d MiB ballast: it was touched", rise>>20, n>>20)
	}
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	if goal := s[0].Value.Uint64(); goal < 2*n {
		t.Errorf("heap goal %d MiB with a %d MiB ballast, want at least %d MiB", goal>>20, n>>20, 2*n>>20)
	}
	Set(n)
	if &ballast[0] != first {
		t.Error("a second Set of the same size replaced the ballast")
	}
	if Set(0) != 0 || Size() != 0 {
		t.Error("Set(0) kept a ballast")
	}
	runtime.GC()
	metrics.Read(s)
	if goal := s[0].Value.Uint64(); goal >= 2*n {
		t.Errorf("heap goal %d MiB after the ballast was removed", goal>>20)
	}
}

func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

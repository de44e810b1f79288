package heapsetup

import (
	"errors"
	"runtime/debug"
	"testing"

	"github.com/sewatch/sewatch/internal/hugeheap"
)

// TestApply: the ballast is held, the huge-page range is marked where the
// kernel takes advice (and the refusal said elsewhere), and the collector
// runs again afterwards at the percentage it had.
func TestApply(t *testing.T) {
	old := debug.SetGCPercent(150)
	defer debug.SetGCPercent(old)
	r := Apply(BallastFor(2), true, 64<<20)
	if r.Ballast != 2*Ballast {
		t.Errorf("ballast %d, want %d", r.Ballast, 2*Ballast)
	}
	if hugeheap.Mode() == "madvise" {
		if r.HugeErr != nil || r.HugePages < 60<<20 {
			t.Errorf("madvise mode: %d bytes marked, err %v; want about 64 MiB", r.HugePages, r.HugeErr)
		}
	} else if !errors.Is(r.HugeErr, hugeheap.ErrNotAdvised) {
		t.Errorf("mode %q: err %v, want ErrNotAdvised", hugeheap.Mode(), r.HugeErr)
	}
	if p := debug.SetGCPercent(150); p != 150 {
		t.Errorf("GC percent %d after Apply, want 150 restored", p)
	}
}

// TestBallastFor: one ballast per worker, at least one, capped.
func TestBallastFor(t *testing.T) {
	for _, c := range []struct{ workers, want int }{
		{0, Ballast}, {1, Ballast}, {2, 2 * Ballast}, {16, 16 * Ballast}, {64, 16 * Ballast},
	} {
		if got := BallastFor(c.workers); got != c.want {
			t.Errorf("BallastFor(%d) = %d, want %d", c.workers, got, c.want)
		}
	}
}

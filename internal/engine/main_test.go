package engine

import (
	"os"
	"testing"

	"github.com/sewatch/sewatch/internal/hugeheap"
)

// TestMain marks the heap for huge pages as the sewatch binary does with
// its default memory settings (half its 672 MiB soft limit), so the
// benchmarks measure the engine in the process it runs in.
func TestMain(m *testing.M) {
	_, _ = hugeheap.Reserve(336 << 20)
	os.Exit(m.Run())
}

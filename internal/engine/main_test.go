package engine

import (
	"os"
	"testing"

	"github.com/sewatch/sewatch/internal/heapsetup"
)

// TestMain prepares the heap as the sewatch binary does with its default
// memory settings (the collector ballast, and half its 672 MiB limit
// marked for huge pages), so the benchmarks measure the engine in the
// process it runs in.
func TestMain(m *testing.M) {
	heapsetup.Apply(heapsetup.BallastFor(1), true, 336<<20)
	os.Exit(m.Run())
}

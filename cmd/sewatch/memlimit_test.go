package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/sewatch/sewatch/internal/config"
	"github.com/sewatch/sewatch/internal/heapsetup"
)

// TestMemoryLimit: the runtime's soft limit follows the configured bounds
// (flow budget, flow table, less the executable's share) unless GOMEMLIMIT
// is set; either way it grows by the collector's ballast, which is never
// resident.
func TestMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default()
	cfg.Memory.FlowBuffers = 64 << 20
	cfg.Flow.MaxFlows = 100000
	t.Setenv("GOMEMLIMIT", "")
	setMemoryLimit(cfg, log)
	if got, want := debug.SetMemoryLimit(-1), int64(64<<20+100000<<10+192<<20-32<<20+heapsetup.Ballast); got != want {
		t.Errorf("limit %d, want %d", got, want)
	}
	debug.SetMemoryLimit(12345 << 20)
	t.Setenv("GOMEMLIMIT", "12345MiB")
	setMemoryLimit(cfg, log)
	if got := debug.SetMemoryLimit(-1); got != 12345<<20+heapsetup.Ballast {
		t.Errorf("limit %d with GOMEMLIMIT set, want it plus the ballast (never resident)", got)
	}
}

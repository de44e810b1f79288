package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
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
	cfg.Capture.Workers = 2 // a ballast per worker
	t.Setenv("GOMEMLIMIT", "")
	setMemoryLimit(cfg, log, true)
	if got, want := debug.SetMemoryLimit(-1), int64(64<<20+100000<<10+192<<20-32<<20+2*heapsetup.Ballast); got != want {
		t.Errorf("limit %d, want %d", got, want)
	}
	debug.SetMemoryLimit(12345 << 20)
	t.Setenv("GOMEMLIMIT", "12345MiB")
	setMemoryLimit(cfg, log, true)
	if got := debug.SetMemoryLimit(-1); got != 12345<<20+2*heapsetup.Ballast {
		t.Errorf("limit %d with GOMEMLIMIT set, want it plus the ballast (never resident)", got)
	}
}

// TestHeapWorthPreparing: the heap set-up is skipped only for captures
// known to be small (a file, a directory of them, compressed ones counted
// ten times), never for live capture, stdin or a FIFO.
func TestHeapWorthPreparing(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil { // sparse: no disk used
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	small := mk("small.pcap", 1<<20)
	big := mk("big.pcap", 64<<20)
	gz := mk("small.pcap.gz", 4<<20)
	sub := filepath.Join(dir, "many")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	smallDir := filepath.Join(dir, "few")
	if err := os.Mkdir(smallDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		for _, d := range []string{sub, smallDir} {
			f, _ := os.Create(filepath.Join(d, fmt.Sprintf("c%d.pcap", i)))
			size := int64(1 << 20)
			if d == sub {
				size = 8 << 20
			}
			f.Truncate(size)
			f.Close()
		}
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		live bool
		path string
		want bool
	}{
		{"live", true, "", true},
		{"stdin", false, "-", true},
		{"small file", false, small, false},
		{"large file", false, big, true},
		{"compressed, counted ten times", false, gz, true},
		{"directory of small files", false, smallDir, false},
		{"directory adding up", false, sub, true},
		{"fifo", false, fifo, true},
		{"missing", false, filepath.Join(dir, "nope"), true},
	} {
		if got := heapWorthPreparing(c.live, c.path); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

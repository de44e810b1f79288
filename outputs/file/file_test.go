package file

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sewatch/sewatch/outputs"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func recs(lines ...string) []outputs.Record {
	var r []outputs.Record
	for _, l := range lines {
		r = append(r, outputs.Record{JSON: []byte(l)})
	}
	return r
}

func TestAppendReopenRotate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "eve.json")
	o, err := Open(Options{Path: p, RotateBytes: 20, Keep: 2}, "file", quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := o.Write(ctx, recs(`{"a":1}`, `{"b":2}`)); err != nil {
		t.Fatal(err)
	}
	// logrotate moves the file away, then SIGHUP: a new file is started.
	os.Rename(p, p+".moved")
	if err := o.Reopen(); err != nil {
		t.Fatal(err)
	}
	o.Write(ctx, recs(`{"c":3}`))
	o.Write(ctx, recs(`{"d":4}`, `{"e":5}`)) // 8+16 > 20: rotates first
	o.Close(ctx)
	read := func(name string) string { b, _ := os.ReadFile(name); return string(b) }
	if got := read(p + ".moved"); got != "{\"a\":1}\n{\"b\":2}\n" {
		t.Errorf("moved file %q", got)
	}
	if got := read(p + ".1"); got != "{\"c\":3}\n" {
		t.Errorf("rotated file %q", got)
	}
	if got := read(p); got != "{\"d\":4}\n{\"e\":5}\n" {
		t.Errorf("current file %q", got)
	}
}

// TestDiskFull: a write that fails (ENOSPC from /dev/full) is reported to
// the router as an error, so the batch is retried or counted, never lost
// silently.
func TestDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	o, err := Open(Options{Path: "/dev/full"}, "file", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close(context.Background())
	err = o.Write(context.Background(), recs(`{"x":1}`))
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "file") {
		t.Errorf("err = %v, want ENOSPC naming the output", err)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		spec    outputs.Spec
		wantErr string
	}{
		{outputs.Spec{Type: "file", Arg: "/tmp/eve.json"}, ""},
		{outputs.Spec{Type: "file", Options: map[string]any{"path": "/tmp/eve.json", "keep": 3}}, ""},
		{outputs.Spec{Type: "file"}, "needs a path"},
		{outputs.Spec{Type: "file", Arg: "/tmp/x", Options: map[string]any{"rotate-bytes": -1}}, "must not be negative"},
		{outputs.Spec{Type: "file", Arg: "/tmp/x", Options: map[string]any{"gzip": true}}, "field gzip not found"},
	}
	for _, tc := range tests {
		err := outputs.Validate(tc.spec)
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%+v: err %v, want %q", tc.spec, err, tc.wantErr)
		}
	}
}

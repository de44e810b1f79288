package engine

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/decode"
)

// TestWorkersSharedShrinks: a mapped file that another program truncates
// while it is read ends the run with a read error naming the file, with
// one worker and with two, not with a crash; what was read before is
// processed and no packet is counted as a panic.
func TestWorkersSharedShrinks(t *testing.T) {
	fr := sharedFrames(t)
	for _, n := range []int{1, 2} {
		path := writePcap(t, fr, 0)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		e := workersEngine(t, &collector{})
		in, err := capture.OpenInput(path, capture.InputOptions{Map: capture.MapAlways})
		if err != nil {
			t.Fatal(err)
		}
		sf := in.(interface{ Shared() *capture.Shared }).Shared()
		if sf == nil || !sf.Mapped() {
			t.Fatal("the file is not read mapped")
		}
		// Mapped at its full size, then cut to half under the reader.
		if err := os.Truncate(path, st.Size()/2); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			err = e.runCursor(context.Background(), sf)
		} else {
			err = e.runShared(context.Background(), sf, n)
		}
		in.Close()
		if !errors.Is(err, capture.ErrTruncated) || !strings.Contains(err.Error(), "shrank") {
			t.Errorf("%d workers: error %v, want ErrTruncated saying the file shrank", n, err)
		}
		if got := e.C.Packets.Load(); got < uint64(len(fr))/4 || got >= uint64(len(fr)) {
			t.Errorf("%d workers: %d of %d packets processed, want those of about half the file", n, got, len(fr))
		}
		if p := e.C.Panics.Load(); p != 0 {
			t.Errorf("%d workers: %d packets counted as panics", n, p)
		}
	}
}

// TestFollowerShrinks: a page that goes after the walk listed its frames
// and before the worker takes them gives that worker the read error.
func TestFollowerShrinks(t *testing.T) {
	path := writePcap(t, sharedFrames(t), 0)
	e := workersEngine(t, &collector{})
	in, err := capture.OpenInput(path, capture.InputOptions{Map: capture.MapAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sf := in.(interface{ Shared() *capture.Shared }).Shared()
	if sf == nil || !sf.Mapped() {
		t.Fatal("the file is not read mapped")
	}
	const n = 2
	wk := newWalker(e, decode.LinkEthernet, sf.Cursor(), n)
	fs := make([]*follower, n)
	for i := range fs {
		w := e.newWorker(decode.LinkEthernet, 0)
		s := &evidenceSink{w: w}
		w.sink = s
		fs[i] = &follower{w: w, s: s, cur: sf.Cursor(), id: i}
	}
	seg := newSegment(n, 97)
	wk.walk(seg)
	if len(seg.recs[0]) == 0 || len(seg.recs[1]) == 0 {
		t.Fatalf("the walk listed %d and %d frames, want some for both", len(seg.recs[0]), len(seg.recs[1]))
	}
	if err := os.Truncate(path, 24); err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		err := readMapped(sf, func() error { f.follow(seg); return nil })
		if !errors.Is(err, capture.ErrTruncated) || !strings.Contains(err.Error(), "shrank") {
			t.Errorf("worker %d: error %v, want ErrTruncated saying the file shrank", f.id, err)
		}
	}
}

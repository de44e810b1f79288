package engine

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/testpkt"
	"github.com/sewatch/sewatch/internal/verdict"
)

// TestExpiryFollowsCaptureTime: a sparse capture (far fewer packets than
// ExpireEvery) still expires its flows as capture time passes. A UDP flow
// silent for longer than its timeout is a new flow when it speaks again,
// in every reader: one inline worker, the chunked multi-worker reader, one
// cursor and two workers on a shared file.
func TestExpiryFollowsCaptureTime(t *testing.T) {
	base := time.Unix(1700000000, 0)
	udp := func(d time.Duration, port uint16) frame {
		return frame{base.Add(d), testpkt.Ethernet(testpkt.Spec{Src: "10.0.0.1", Dst: "192.0.2.1", Proto: "udp",
			SrcPort: port, DstPort: 53, Payload: []byte("q")})}
	}
	// The default UDP timeout is 5 minutes; 4 packets never reach an
	// expiry point counted in packets.
	fr := []frame{udp(0, 1000), udp(time.Second, 1000), udp(10*time.Minute, 1000), udp(10*time.Minute+time.Second, 2000)}
	path := writePcap(t, fr, 0)
	runs := []struct {
		name string
		run  func(e *Engine) error
	}{
		{"inline", func(e *Engine) error {
			w := e.NewWorker(decode.LinkEthernet)
			for i, f := range fr {
				w.Process(f.data, f.ts, uint64(i+1))
			}
			w.Finish()
			return nil
		}},
		{"chunked, 2 workers", func(e *Engine) error {
			return e.RunParallel(context.Background(), &replaySource{fr: fr}, decode.LinkEthernet, 2)
		}},
		{"shared file, 1 cursor", func(e *Engine) error { return runPath(e, path, 1) }},
		{"shared file, 2 workers", func(e *Engine) error { return runPath(e, path, 2) }},
	}
	for _, interval := range []time.Duration{0, 1000 * time.Hour} {
		// 0: the default interval. 1000 hours: packets alone decide, and
		// the flow lives on (the behaviour this replaced).
		want := uint64(3)
		if interval > 0 {
			want = 2
		}
		for _, r := range runs {
			e := New(Config{Verdict: verdict.DefaultConfig(), ExpireInterval: interval}, &collector{},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err := r.run(e); err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			if got := e.C.FlowsTotal.Load(); got != want {
				t.Errorf("%s, interval %v: %d flows, want %d", r.name, interval, got, want)
			}
			if got, wantExp := e.C.FlowsExpired.Load(), want-2; got != wantExp {
				t.Errorf("%s, interval %v: %d flows expired before the end, want %d", r.name, interval, got, wantExp)
			}
		}
	}
}

func runPath(e *Engine, path string, n int) error {
	in, err := capture.OpenInput(path, capture.InputOptions{})
	if err != nil {
		return err
	}
	defer in.Close()
	return e.RunParallel(context.Background(), in, decode.LinkType(in.LinkType()), n)
}

// TestExpiryClockPoints: the points of a packet sequence, counted and
// timed, as every reader finds them.
func TestExpiryClockPoints(t *testing.T) {
	c := newExpiryClock(&Config{ExpireEvery: 4, ExpireInterval: time.Second})
	ms := func(n int64) int64 { return n * int64(time.Millisecond) }
	// packet times (ms) and whether each is a point
	seq := []struct {
		t     int64
		point bool
	}{
		{0, false},     // 1: starts the clock
		{500, false},   // 2
		{1000, true},   // 3: a second after the start
		{1200, true},   // 4: the fourth packet
		{1300, false},  // 5
		{100, false},   // 6: time going back is never due, and restarts the clock
		{1099, false},  // 7: 999 ms after the restart
		{1100, true},   // 8: the eighth packet and a second after the restart
		{9000, true},   // 9
		{9001, false},  // 10
		{9500, false},  // 11: back, but not before the last run (9000): no restart
		{9999, true},   // 12: the twelfth packet, a count point
		{10000, false}, // 13: only a millisecond after it
		{10999, true},  // 14: a second after the run at 9999
	}
	for i, s := range seq {
		if got := c.point(ms(s.t)); got != s.point {
			t.Errorf("packet %d at %d ms: point %v, want %v", i+1, s.t, got, s.point)
		}
	}
}

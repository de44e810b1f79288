package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/flow"
	"github.com/sewatch/sewatch/internal/verdict"
)

// writePcap writes frames as a nanosecond pcap file, cut by cut bytes.
func writePcap(t testing.TB, fr []frame, cut int) string {
	var b bytes.Buffer
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h, 0xa1b23c4d)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 262144)
	binary.LittleEndian.PutUint32(h[20:], uint32(decode.LinkEthernet))
	b.Write(h)
	for _, f := range fr {
		r := make([]byte, 16)
		binary.LittleEndian.PutUint32(r, uint32(f.ts.Unix()))
		binary.LittleEndian.PutUint32(r[4:], uint32(f.ts.Nanosecond()))
		binary.LittleEndian.PutUint32(r[8:], uint32(len(f.data)))
		binary.LittleEndian.PutUint32(r[12:], uint32(len(f.data)))
		b.Write(r)
		b.Write(f.data)
	}
	p := filepath.Join(t.TempDir(), "in.pcap")
	if err := os.WriteFile(p, b.Bytes()[:b.Len()-cut], 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// workersEngine is the engine of runWorkers: expiry every 97 packets with
// short timeouts, so flow and session expiry interleave with evidence.
func workersEngine(t testing.TB, c *collector) *Engine {
	dets, err := detector.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Detectors: dets, Verdict: verdict.DefaultConfig(), ExpireEvery: 97,
		Timeouts: flow.Timeouts{TCP: 20 * time.Second, TCPClosed: 2 * time.Second, UDP: 10 * time.Second, Other: 5 * time.Second}},
		c, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// fileRun is what a run over a capture file gave.
type fileRun struct {
	alerts []string
	err    error
	// counts: packets, invalid and not-IP frames, the decoder's layer
	// totals and its undecoded kinds, as the stats event has them.
	counts string
	// shared: the workers read the file themselves (the ordinary reader
	// was never read from).
	shared bool
}

// runFile reads path with n workers through capture.OpenInput, as sewatch -r does.
func runFile(t *testing.T, path string, n int) fileRun {
	return runInput(t, path, n, false, capture.MapAuto)
}

// runMapped is runFile with the file mapped (or, with MapNever, read with
// pread) whatever its size and the page cache.
func runMapped(t *testing.T, path string, n int, mode capture.MapMode) fileRun {
	return runInput(t, path, n, false, mode)
}

// runOrdinary is runFile with one worker and the ordinary reader (record
// by record through bufio), which compressed files, stdin and filtered
// input take: the reference the shared reader must match.
func runOrdinary(t *testing.T, path string) fileRun {
	return runInput(t, path, 1, true, capture.MapAuto)
}

func runInput(t *testing.T, path string, n int, ordinary bool, mode capture.MapMode) fileRun {
	c := &collector{}
	e := workersEngine(t, c)
	in, err := capture.OpenInput(path, capture.InputOptions{Map: mode})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var src Source = in
	if ordinary {
		src = struct{ capture.Input }{in} // without its Shared method
	}
	var r fileRun
	r.err = e.RunParallel(context.Background(), src, decode.LinkType(in.LinkType()), n)
	_, _, rerr := in.ReadPacket()
	r.shared = rerr == nil
	for _, x := range c.recs {
		r.alerts = append(r.alerts, string(x.JSON))
	}
	r.counts = fmt.Sprint(e.C.Packets.Load(), e.C.Invalid.Load(), e.C.NonIP.Load(), e.C.IPv4.Load(), e.C.TCP.Load(),
		e.C.FlowsTotal.Load(), e.dec.layers, e.Undecoded())
	return r
}

// sharedFrames is every bundled capture at once, with frames that do not
// decode (ARP, garbage) and frames of every size up to the largest a
// capture record may hold (padded: trailing bytes change nothing the
// detectors see), so records cross the workers' read blocks in every way
// and fill the ring.
func sharedFrames(t *testing.T) []frame {
	fr := allCaptures(t)
	for i := range fr {
		pad := 0
		switch {
		case i == len(fr)/2, i >= len(fr)/3 && i < len(fr)/3+40:
			// One frame, and a run of frames longer than the ring (the
			// walk must cut its segment short), of the largest size.
			pad = 256<<10 - len(fr[i].data)
		case i%211 == 0:
			pad = (i * 7919) % (200 << 10)
		}
		if pad > 0 {
			fr[i].data = append(append([]byte(nil), fr[i].data...), make([]byte, pad)...)
		}
		if i%389 == 0 {
			arp := append(append([]byte(nil), fr[i].data[:12]...), 0x08, 0x06)
			fr = append(fr[:i+1], fr[i:]...)
			fr[i] = frame{ts: fr[i+1].ts, data: append(arp, make([]byte, 28)...)}
		}
		if i%997 == 0 {
			junk := append(append([]byte(nil), fr[i].data[:12]...), 0x08, 0x00, 0x4f)
			fr = append(fr[:i+1], fr[i:]...)
			fr[i] = frame{ts: fr[i+1].ts, data: junk}
		}
	}
	return fr
}

// TestWorkersSharedFile: 1-4 workers reading a plain pcap file themselves
// (one worker with the shared reader's one cursor) give the alerts of one
// inline worker, in the same order, and the same packet, decoder and
// undecoded-frame counts as one worker with the ordinary reader.
func TestWorkersSharedFile(t *testing.T) {
	fr := sharedFrames(t)
	path := writePcap(t, fr, 0)
	want := runWorkers(t, fr, 0)
	one := runOrdinary(t, path)
	if one.err != nil || one.shared {
		t.Fatalf("ordinary reader: err %v, shared %v", one.err, one.shared)
	}
	if strings.Join(one.alerts, "\n") != strings.Join(want, "\n") || len(want) < 5 {
		t.Fatalf("ordinary reader on the file: %d alerts, inline %d (want equal, at least 5)", len(one.alerts), len(want))
	}
	for _, c := range []struct {
		n    int
		mode capture.MapMode
	}{{1, capture.MapNever}, {2, capture.MapNever}, {3, capture.MapNever}, {4, capture.MapNever},
		{1, capture.MapAlways}, {2, capture.MapAlways}, {3, capture.MapAlways}} {
		n, got := c.n, runMapped(t, path, c.n, c.mode)
		if got.err != nil || !got.shared {
			t.Fatalf("%d workers (map mode %d): err %v, shared %v", n, c.mode, got.err, got.shared)
		}
		if strings.Join(got.alerts, "\n") != strings.Join(want, "\n") {
			t.Errorf("%d workers: %d alerts differ from one worker's %d", n, len(got.alerts), len(want))
			for i := 0; i < len(got.alerts) && i < len(want); i++ {
				if got.alerts[i] != want[i] {
					t.Errorf("first difference at %d:\n got %s\nwant %s", i, got.alerts[i], want[i])
					break
				}
			}
		}
		if got.counts != one.counts {
			t.Errorf("%d workers: counts\n%s\nwant\n%s", n, got.counts, one.counts)
		}
	}
}

// TestWorkersSharedTruncated: a file whose last record is cut short gives,
// with two workers reading it themselves, the error and the alerts one
// worker gives: everything before the damage is processed.
func TestWorkersSharedTruncated(t *testing.T) {
	fr := allCaptures(t)
	path := writePcap(t, fr, len(fr[len(fr)-1].data)/2)
	one := runOrdinary(t, path)
	if !errors.Is(one.err, capture.ErrTruncated) || len(one.alerts) < 5 {
		t.Fatalf("ordinary reader: err %v, %d alerts (want ErrTruncated, at least 5)", one.err, len(one.alerts))
	}
	for _, c := range []struct {
		n    int
		mode capture.MapMode
	}{{1, capture.MapNever}, {2, capture.MapNever}, {1, capture.MapAlways}, {2, capture.MapAlways}} {
		n, got := c.n, runMapped(t, path, c.n, c.mode)
		if fmt.Sprint(got.err) != fmt.Sprint(one.err) {
			t.Errorf("%d workers: err %v, want the ordinary reader's %v", n, got.err, one.err)
		}
		if !got.shared || strings.Join(got.alerts, "\n") != strings.Join(one.alerts, "\n") {
			t.Errorf("%d workers: shared %v, %d alerts, ordinary reader %d (want equal)", n, got.shared, len(got.alerts), len(one.alerts))
		}
		if got.counts != one.counts {
			t.Errorf("%d workers: counts\n%s\nwant\n%s", n, got.counts, one.counts)
		}
	}
}

// TestWorkersSharedCancel: a run stopped while its workers (or the one
// worker's cursor) read the file returns promptly, without error.
func TestWorkersSharedCancel(t *testing.T) {
	path := writePcap(t, sharedFrames(t), 0)
	for _, n := range []int{1, 2} {
		e := workersEngine(t, &collector{})
		in, err := capture.OpenInput(path, capture.InputOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() { done <- e.RunParallel(ctx, in, decode.LinkEthernet, n) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%d workers: %v", n, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%d workers: the run did not stop", n)
		}
		in.Close()
		if got, all := e.C.Packets.Load(), uint64(len(sharedFrames(t))); got >= all {
			t.Errorf("%d workers: a cancelled run read all %d packets", n, got)
		}
	}
}

// TestSharedSegmentAllocs: the shared-file path's per-packet stages (the
// walk of every frame with its dispatch, each worker's cursor taking its
// frames, their processing with the expiry runs, and the ordered merge of
// a segment)
// allocate nothing once the read blocks and the inspector free lists are
// warm.
// Many short flows (every DNS query is one) on both workers, replayed an
// hour apart so the flows of a replay expire during the next.
func TestSharedSegmentAllocs(t *testing.T) {
	fr := manyShortFlows(t)
	// Warm-up (until every block of the cursors' ring was read once: about
	// a block a segment here), AllocsPerRun's runs, and one to spare.
	const warm = 20
	const segs = warm + 6 + 1
	var all []frame
	for r := 0; len(all) < segs*segPackets; r++ {
		for _, f := range fr {
			all = append(all, frame{ts: f.ts.Add(time.Duration(r) * time.Hour), data: f.data})
		}
	}
	e := churnEngine(t)
	in, err := capture.OpenInput(writePcap(t, all, 0), capture.InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sf := in.(interface{ Shared() *capture.Shared }).Shared()
	if sf == nil {
		t.Fatal("the file is not read shared")
	}
	const n = 2
	ws, fs := make([]*Worker, n), make([]*follower, n)
	wk := newWalker(e, decode.LinkEthernet, sf.Cursor(), n)
	for i := range ws {
		ws[i] = e.newWorker(decode.LinkEthernet, 0)
		s := &evidenceSink{w: ws[i]}
		ws[i].sink = s
		fs[i] = &follower{w: ws[i], s: s, cur: sf.Cursor(), id: i}
	}
	seg := newSegment(n, 97)
	pos := make([]int, n)
	mirror := map[*detector.TLSInfo]*detector.TLSInfo{}
	var ends []*idxEvidence
	step := func() {
		seg.exp = seg.exp[:0]
		wk.walk(seg)
		for _, f := range fs {
			f.follow(seg)
		}
		e.mergeSegment(seg, pos, mirror, &ends)
	}
	for i := 0; i < warm; i++ {
		step()
	}
	created := ws[0].table.Stats().Created + ws[1].table.Stats().Created
	if got := testing.AllocsPerRun(5, step); got != 0 {
		t.Errorf("%v allocations per segment (%d packets), want 0", got, seg.cnt[0])
	}
	flows := ws[0].table.Stats().Created + ws[1].table.Stats().Created - created
	if seg.end[0] || seg.end[1] || seg.cnt[0] < segPackets/4 {
		t.Fatalf("the file ended in a measured segment (%d packets)", seg.cnt[0])
	}
	if flows < 6*200 || ws[0].table.Stats().Expired == 0 || ws[1].table.Stats().Expired == 0 {
		t.Errorf("%d flows in 6 segments, worker 0 expired %d, worker 1 %d: want many flows, expiring on both",
			flows, ws[0].table.Stats().Expired, ws[1].table.Stats().Expired)
	}
}

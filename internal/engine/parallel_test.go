package engine

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/flow"
	"github.com/sewatch/sewatch/internal/verdict"
)

// replaySource replays frames as a capture file would.
type replaySource struct {
	fr []frame
	i  int
}

func (s *replaySource) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	if s.i >= len(s.fr) {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	f := s.fr[s.i]
	s.i++
	return f.data, gopacket.CaptureInfo{Timestamp: f.ts, CaptureLength: len(f.data), Length: len(f.data)}, nil
}

// allCaptures interleaves every bundled capture, each shifted to one start:
// many flows of many kinds open at once, SoftEther sessions among them.
func allCaptures(t testing.TB) []frame {
	names, err := filepath.Glob(filepath.Join(pcapDir, "*.pcap"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no captures in %s: %v", pcapDir, err)
	}
	var all []frame
	for _, n := range names {
		if strings.HasSuffix(n, "se-bulk.pcap") {
			continue // one bulk flow: adds time, not flows
		}
		fr := loadCapture(t, filepath.Base(n))
		if len(fr) == 0 {
			continue
		}
		if all == nil {
			all = fr
			continue
		}
		all = mix(all, fr)
	}
	return all
}

// runWorkers runs the frames through an engine with n workers (0: the
// inline Worker.Process path) and returns the EVE lines in output order.
// Expiry runs every 97 packets with short timeouts, so flow and session
// expiry interleave with evidence at many points.
func runWorkers(t *testing.T, fr []frame, n int) []string {
	dets, err := detector.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	e := New(Config{Detectors: dets, Verdict: verdict.DefaultConfig(), ExpireEvery: 97,
		Timeouts: flow.Timeouts{TCP: 20 * time.Second, TCPClosed: 2 * time.Second, UDP: 10 * time.Second, Other: 5 * time.Second}},
		c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n == 0 {
		w := e.NewWorker(decode.LinkEthernet)
		for i, f := range fr {
			w.Process(f.data, f.ts, uint64(i+1))
		}
		w.Finish()
	} else if err := e.RunParallel(context.Background(), &replaySource{fr: fr}, decode.LinkEthernet, n); err != nil {
		t.Fatal(err)
	}
	if got := e.C.Packets.Load(); got != uint64(len(fr)) {
		t.Errorf("%d workers counted %d packets, want %d", n, got, len(fr))
	}
	var out []string
	for _, r := range c.recs {
		out = append(out, string(r.JSON))
	}
	return out
}

// TestWorkersDeterministic: the same capture gives the same alerts in the
// same order with one inline worker and with 1-4 parallel workers.
func TestWorkersDeterministic(t *testing.T) {
	fr := allCaptures(t)
	want := runWorkers(t, fr, 0)
	if len(want) < 5 {
		t.Fatalf("only %d alerts on the mixed captures: the comparison would say little", len(want))
	}
	sids := map[string]bool{}
	for _, l := range want {
		if i := strings.Index(l, `"signature_id"`); i >= 0 {
			sids[l[i:][:22]] = true
		}
	}
	if len(sids) < 3 {
		t.Errorf("alerts of only %d signatures", len(sids))
	}
	for _, n := range []int{1, 2, 3, 4} {
		got := runWorkers(t, fr, n)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%d workers: %d alerts differ from one worker's %d", n, len(got), len(want))
			for i := 0; i < len(got) && i < len(want); i++ {
				if got[i] != want[i] {
					t.Errorf("first difference at %d:\n got %s\nwant %s", i, got[i], want[i])
					break
				}
			}
		}
	}
}

// TestDispatchSymmetric: both directions of every flow in the captures
// go to the same worker, and flows spread over workers.
func TestDispatchSymmetric(t *testing.T) {
	fr := allCaptures(t)
	dec, dec2 := decode.NewDecoder(decode.LinkEthernet), decode.NewDecoder(decode.LinkEthernet)
	var p decode.Packet
	seen := map[flow.Key]uint32{}
	buckets := map[uint32]int{}
	for _, f := range fr {
		if dec.Decode(f.data, &p) != nil || (p.Fragment && !p.FirstFragment) {
			continue
		}
		k, _ := flow.KeyOf(&p)
		var q decode.Packet
		h := dispatch(dec2, &q, f.data)
		if old, ok := seen[k]; ok && old != h {
			t.Fatalf("flow %v hashed to %x and %x", k, old, h)
		}
		if _, ok := seen[k]; !ok {
			buckets[h%4]++
		}
		seen[k] = h
	}
	if len(buckets) < 2 {
		t.Errorf("%d flows all hashed to one of 4 workers", len(seen))
	}
}

// churnEngine is the engine of the allocation tests over many short
// flows: every detector, expiry every 97 packets, timeouts short enough
// that the flows of one replay expire during the next.
func churnEngine(t testing.TB) *Engine {
	dets, err := detector.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Detectors: dets, Verdict: verdict.DefaultConfig(), ExpireEvery: 97,
		Timeouts: flow.Timeouts{TCP: 20 * time.Second, TCPClosed: 2 * time.Second, UDP: time.Second, Other: time.Second}},
		&collector{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// TestParallelChunkAllocs: the parallel path's per-packet stages (the
// reader's copy, decode and dispatch into a reused chunk, both workers'
// processing of their packets with expiry runs inside the chunk, and the
// ordered merge) allocate nothing once the chunk and the inspector free
// lists are warm. Many short flows (every DNS query is one) are replayed
// again and again, tables emptied between replays, so flows are created
// and expired all the time.
func TestParallelChunkAllocs(t *testing.T) {
	fr := manyShortFlows(t)
	e := churnEngine(t)
	const n = 2
	ws, sinks := make([]*Worker, n), make([]*evidenceSink, n)
	for i := range ws {
		ws[i] = e.newWorker(decode.LinkEthernet, 0)
		sinks[i] = &evidenceSink{w: ws[i]}
		ws[i].sink = sinks[i]
	}
	c := newChunk(n)
	dec := decode.NewDecoder(decode.LinkEthernet)
	pos := make([]int, n)
	mirror := map[*detector.TLSInfo]*detector.TLSInfo{}
	var ends []*idxEvidence
	var idx uint64
	var clock expiryClock
	var flushed []idxEvidence
	run := func(c *chunk) {
		for id, w := range ws {
			s := sinks[id]
			s.evs = c.ev[id][:0]
			w.runChunk(c, id, s)
			c.ev[id] = s.evs
		}
		e.mergeChunk(c, pos, mirror, &ends)
	}
	replay := func() {
		clock = newExpiryClock(&e.cfg) // every replay is a new input, its time starting afresh
		for i := 0; i < len(fr); {
			c.first, c.buf, c.meta, c.exps = idx+1, c.buf[:0], c.meta[:0], c.exps[:0]
			for j := range c.mine {
				c.mine[j] = c.mine[j][:0]
			}
			for ; i < len(fr) && len(c.meta) < chunkPackets; i++ {
				idx++
				e.readOne(c, dec, &clock, uint32(decode.LinkEthernet), fr[i].data, gopacket.CaptureInfo{Timestamp: fr[i].ts}, idx)
			}
			e.dec.collect(dec)
			run(c)
		}
		for id, w := range ws {
			sinks[id].evs = flushed[:0]
			w.table.Flush(w.flowEnded)
			flushed = sinks[id].evs
			clear(flushed)
		}
	}
	for i := 0; i < 3; i++ {
		replay()
	}
	created := ws[0].table.Stats().Created + ws[1].table.Stats().Created
	if got := testing.AllocsPerRun(5, replay); got != 0 {
		t.Errorf("%v allocations per replay of %d packets, want 0", got, len(fr))
	}
	flows := ws[0].table.Stats().Created + ws[1].table.Stats().Created - created
	if flows < 6*90 || ws[0].table.Stats().Created == 0 || ws[1].table.Stats().Created == 0 {
		t.Errorf("%d flows in 6 replays (worker 0: %d, worker 1: %d), want at least 90 per replay and some on each worker",
			flows, ws[0].table.Stats().Created, ws[1].table.Stats().Created)
	}
	if e.C.Packets.Load() == 0 || e.C.FlowsExpired.Load() == 0 {
		t.Errorf("counters: %d packets, %d flows expired", e.C.Packets.Load(), e.C.FlowsExpired.Load())
	}
}

// TestWorkersBigFrames: frames that do not fit in the rest of a chunk open
// the next one, and a frame bigger than a whole chunk gets a chunk of its
// own; alerts and packet counts stay those of one worker.
func TestWorkersBigFrames(t *testing.T) {
	fr := allCaptures(t)
	for i := range fr {
		// Trailing bytes after the IP packet (as Ethernet padding) change
		// nothing the detectors see.
		pad := 0
		switch {
		case i == len(fr)/2:
			pad = 2 * chunkBytes
		case i%97 == 0:
			pad = chunkBytes/2 - 100
		}
		if pad > 0 {
			fr[i].data = append(append([]byte(nil), fr[i].data...), make([]byte, pad)...)
		}
	}
	want := runWorkers(t, fr, 0)
	got := runWorkers(t, fr, 2)
	if len(want) < 5 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("2 workers gave %d alerts, one worker %d (want equal and at least 5)", len(got), len(want))
	}
}

// linkSource replays frames of several link types, saying which one each
// has (as pcapng interfaces or a directory of captures do).
type linkSource struct {
	replaySource
	links []uint32
}

func (s *linkSource) PacketLinkType() uint32 { return s.links[s.i-1] }

// TestWorkersMixedLinkTypes: the reader decodes each frame by its own link
// type, so Ethernet frames and raw IP frames in one input give the same
// alerts with two workers as with one.
func TestWorkersMixedLinkTypes(t *testing.T) {
	fr := allCaptures(t)
	links := make([]uint32, len(fr))
	raw := 0
	for i := range fr {
		links[i] = uint32(decode.LinkEthernet)
		d := fr[i].data
		// Every other IP frame loses its Ethernet header.
		if i%2 == 0 && len(d) > 14 && (d[12] == 0x08 && d[13] == 0x00 || d[12] == 0x86 && d[13] == 0xdd) {
			fr[i].data, links[i] = d[14:], uint32(decode.LinkRaw)
			raw++
		}
	}
	run := func(n int) []string {
		c := &collector{}
		e := newEngine(t, c)
		if err := e.RunParallel(context.Background(), &linkSource{replaySource{fr: fr}, links}, decode.LinkEthernet, n); err != nil {
			t.Fatal(err)
		}
		if inv := e.C.Invalid.Load(); inv != 0 {
			t.Errorf("%d workers: %d frames invalid", n, inv)
		}
		var out []string
		for _, r := range c.recs {
			out = append(out, string(r.JSON))
		}
		return out
	}
	want, got := run(1), run(2)
	if raw < 1000 || len(want) < 5 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%d raw frames; 2 workers gave %d alerts, one worker %d (want equal and at least 5)", raw, len(got), len(want))
	}
}

// manyShortFlows is the DNS and SSH captures with three copies of the DNS
// one between other host pairs (both addresses' last byte changed alike,
// so the directions still pair up): many short flows, spread over both
// workers.
func manyShortFlows(t *testing.T) []frame {
	fr := mix(loadCapture(t, "neg-dns-normal.pcap"), loadCapture(t, "neg-ssh-interactive.pcap"))
	for k := byte(1); k < 4; k++ {
		var cp []frame
		for _, f := range loadCapture(t, "neg-dns-normal.pcap") {
			d := append([]byte(nil), f.data...)
			if len(d) >= 34 && d[12] == 0x08 && d[13] == 0x00 {
				d[14+15] ^= k
				d[14+19] ^= k
			}
			cp = append(cp, frame{ts: f.ts, data: d})
		}
		fr = mix(fr, cp)
	}
	return fr
}

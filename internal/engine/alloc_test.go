package engine

import (
	"encoding/binary"
	"testing"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

type discard struct{ n int }

func (d *discard) Report(detector.Evidence) { d.n++ }

// TestManyFlowAllocs: captures of many short flows (every DNS query is a
// flow; interactive SSH) are replayed again and again through one worker
// whose table is emptied between replays, so every replay creates all its
// flows anew. Once the inspector free lists are warm, new flows, their
// inspectors and their packets allocate nothing.
func TestManyFlowAllocs(t *testing.T) {
	per, flows, evidence := manyFlowAllocs(t, []string{"neg-dns-normal.pcap", "neg-ssh-interactive.pcap"})
	if flows < 90 {
		t.Fatalf("only %d flows per replay", flows)
	}
	if per != 0 {
		t.Errorf("%v allocations per replay of %d new flows (%d evidence), want 0", per, flows, evidence)
	}
}

// TestTLSFlowAllocs: TLS connections, direct and through an HTTP proxy,
// allocate nothing once the worker's pools are warm: their inspectors come
// from free lists, their handshake buffers from the worker's buffer pool,
// hellos are only scanned and certificates only peeked at (a flow that
// reports evidence parses them and builds its alert: not steady state).
// Eight copies of each capture, renumbered and started together, keep
// many handshakes in progress at once.
func TestTLSFlowAllocs(t *testing.T) {
	names := []string{"neg-lab-curl-parallel.pcap", "neg-lab-python-tls-noalpn.pcap", "neg-lab-https-retry.pcap", "neg-lab-bump-error-page.pcap"}
	var fr []frame
	for _, n := range names {
		c := loadCapture(t, n)
		for k := byte(0); k < 8; k++ {
			if fr == nil {
				fr = c
			} else {
				fr = mix(fr, renumber(c, k<<4))
			}
		}
	}
	per, flows, evidence := frameAllocs(t, fr)
	t.Logf("%d packets, %d flows per replay: %v allocations", len(fr), flows, per)
	if evidence != 0 {
		t.Fatalf("%d evidence on negative captures", evidence)
	}
	if flows < 160 || per != 0 {
		t.Errorf("%v allocations per replay of %d TLS flows, want 0", per, flows)
	}
}

// renumber returns a copy of the frames with the second byte of both IPv4
// addresses XORed with x: the same connections between other hosts.
func renumber(fr []frame, x byte) []frame {
	out := make([]frame, len(fr))
	for i, f := range fr {
		d := append([]byte(nil), f.data...)
		if len(d) >= 34 && binary.BigEndian.Uint16(d[12:]) == 0x0800 {
			d[14+13] ^= x
			d[14+17] ^= x
		}
		out[i] = frame{f.ts, d}
	}
	return out
}

// manyFlowAllocs returns the allocations per replay of the interleaved
// captures, the flows per replay and the evidence per replay.
func manyFlowAllocs(t *testing.T, names []string) (float64, uint64, int) {
	var fr []frame
	for _, n := range names {
		c := loadCapture(t, n)
		if fr == nil {
			fr = c
		} else {
			fr = mix(fr, c)
		}
	}
	n, flows, evidence := frameAllocs(t, fr)
	t.Logf("%d packets, %d flows per replay: %v allocations", len(fr), flows, n)
	return n, flows, evidence
}

// frameAllocs replays the frames through one worker, again and again, its
// table emptied between replays so that every replay creates all its flows
// anew, and returns the allocations, flows and evidence per replay once
// warm. Evidence goes to a sink that only counts it.
func frameAllocs(t *testing.T, fr []frame) (float64, uint64, int) {
	e := newEngine(t, &collector{})
	w := e.NewWorker(decode.LinkEthernet)
	sink := &discard{}
	w.sink = sink
	replay := func() {
		for i := range fr {
			w.process(fr[i].data, fr[i].ts, uint64(i+1))
		}
		w.table.Flush(w.flowEnded)
	}
	for i := 0; i < 3; i++ {
		replay()
	}
	created, reported := w.table.Stats().Created, sink.n
	n := testing.AllocsPerRun(5, replay)
	flows := (w.table.Stats().Created - created) / 6 // AllocsPerRun adds a warm-up run
	return n, flows, (sink.n - reported) / 6
}

// BenchmarkWarmReplay replays the benchmark capture (SEWATCH_BENCH_PCAP,
// e.g. the many-flow mix; se-bulk.pcap without it) through one worker
// again and again, its table flushed between passes, after a first pass
// that warms its free lists and buffer pool. What allocs/op still counts
// (beside a few for opening the file) is flows that report evidence
// (their hellos and certificates parsed, their TLS info built) and bursts
// of handshakes larger than the pool.
func BenchmarkWarmReplay(b *testing.B) {
	open, _ := benchReader(b)
	e := newEngine(b, &collector{})
	var w *Worker
	sink := &discard{}
	n := uint64(0)
	pass := func() {
		r := open()
		if w == nil {
			w = e.NewWorker(decode.LinkType(r.LinkType()))
			w.sink = sink
		}
		for {
			d, ci, err := r.ZeroCopyReadPacketData()
			if err != nil {
				break
			}
			n++
			w.process(d, ci.Timestamp, n)
		}
		w.table.Flush(w.flowEnded)
	}
	pass()
	created, reported := w.table.Stats().Created, sink.n
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pass()
	}
	b.ReportMetric(float64(w.table.Stats().Created-created)/float64(b.N), "flows/op")
	b.ReportMetric(float64(sink.n-reported)/float64(b.N), "evidence/op")
}

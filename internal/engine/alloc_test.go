package engine

import (
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

// TestTLSFlowAllocs: a TLS flow still allocates its handshake buffers
// (grown as the hello arrives) and, for hellos that give evidence (the
// OpenSSL profile of the python captures), the parsed hello; the other
// hellos are only scanned, and inspectors and packets allocate nothing. A
// bounded number per flow (6.3 measured).
func TestTLSFlowAllocs(t *testing.T) {
	per, flows, evidence := manyFlowAllocs(t, []string{"neg-lab-curl-parallel.pcap", "neg-lab-python-tls-noalpn.pcap"})
	if evidence != 0 {
		t.Fatalf("%d evidence on negative captures", evidence)
	}
	if flows < 9 || per > 10*float64(flows) {
		t.Errorf("%v allocations per replay of %d TLS flows, want at most 10 per flow", per, flows)
	}
}

// manyFlowAllocs returns the allocations per replay of the interleaved
// captures, the flows per replay and the evidence per replay. Evidence goes
// to a sink that only counts it.
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
	t.Logf("%d packets, %d flows per replay: %v allocations", len(fr), flows, n)
	return n, flows, (sink.n - reported) / 6
}

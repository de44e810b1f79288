package engine

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/membudget"
	"github.com/sewatch/sewatch/internal/testpkt"
	"github.com/sewatch/sewatch/internal/verdict"
)

// halfHello returns the packets of one TCP connection that opens, then
// sends a TLS handshake record announcing a 16,000-byte ClientHello and only
// the first segs*1,400 bytes of it, and never finishes: what a flood meant
// to pin the sensor's handshake buffers looks like.
func halfHello(client string, port uint16, segs int) [][]byte {
	cli := testpkt.Spec{Src: client, Dst: "10.77.0.1", Proto: "tcp", SrcPort: port, DstPort: 443}
	srv := testpkt.Spec{Src: cli.Dst, Dst: cli.Src, Proto: "tcp", SrcPort: 443, DstPort: port}
	syn, synack, ack := cli, srv, cli
	syn.SYN, syn.Seq = true, 1000
	synack.SYN, synack.ACK, synack.Seq = true, true, 5000
	ack.ACK, ack.Seq = true, 1001
	out := [][]byte{testpkt.Ethernet(syn), testpkt.Ethernet(synack), testpkt.Ethernet(ack)}
	body := make([]byte, 16005)
	body[0], body[1], body[2] = 22, 3, 1
	binary.BigEndian.PutUint16(body[3:], 16000)
	body[5] = 1 // ClientHello
	binary.BigEndian.PutUint32(body[5:], 1<<24|15996)
	body[5] = 1
	for i := 0; i < segs; i++ {
		d := cli
		d.ACK, d.Seq = true, 1001+uint32(i*1400)
		d.Payload = body[i*1400 : (i+1)*1400]
		out = append(out, testpkt.Ethernet(d))
	}
	return out
}

// floodRig runs a flood of frames beside the direct-443 session through one
// worker of an engine with the given budget, tracking the budget's peak.
type floodRig struct {
	e    *Engine
	w    *Worker
	c    *collector
	peak int64
	n    uint64
}

func newFloodRig(t *testing.T, budget int64) *floodRig {
	dets, err := detector.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &floodRig{c: &collector{}}
	r.e = New(Config{Detectors: dets, Verdict: verdict.DefaultConfig(), FlowBuffers: budget}, r.c,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.w = r.e.NewWorker(decode.LinkEthernet)
	return r
}

func (r *floodRig) feed(data []byte, ts time.Time) {
	r.n++
	r.w.Process(data, ts, r.n)
	if u := r.e.Budget().Used(); u > r.peak {
		r.peak = u
	}
}

// run feeds the flood before the session (before) or spread over the
// session's first 200 packets, so it fills the budget while the session
// sets up.
func (r *floodRig) run(t *testing.T, flood [][]byte, before bool) {
	se := loadCapture(t, "se-direct-443.pcap")
	if before {
		for _, fr := range flood {
			r.feed(fr, se[0].ts)
		}
		flood = nil
	}
	per := len(flood)/200 + 1
	for i, fr := range se {
		r.feed(fr.data, fr.ts)
		for j := 0; j < per && len(flood) > 0 && i < 200; j++ {
			r.feed(flood[0], fr.ts)
			flood = flood[1:]
		}
	}
}

// sessionAlerted: the direct-443 session's alert was raised.
func (r *floodRig) sessionAlerted() bool {
	for _, rec := range r.c.recs {
		var a alertLine
		if rec.Type == "alert" && json.Unmarshal(rec.JSON, &a) == nil && isSessionSID(a.Alert.SignatureID) &&
			matches(a, "tcp", "198.18.1.2:39086", "198.18.2.2:443") {
			return true
		}
	}
	return false
}

// TestHalfHelloFlood floods half-finished ClientHellos through the engine
// beside a SoftEther session: the bytes the inspectors' buffers hold never
// pass the budget, refusals are counted (and reported in the stats event),
// every reserved byte is returned when the flows end, and the session is
// still detected.
func TestHalfHelloFlood(t *testing.T) {
	const budget = membudget.MinBytes
	tests := []struct {
		name     string
		flows    int
		before   bool // the whole flood arrives before the session
		wantShed bool
	}{
		{"under the budget", 20, false, false},
		{"flood past the budget during the session", 600, false, true},
		{"budget full before the session", 600, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newFloodRig(t, budget)
			var flood [][]byte
			for f := 0; f < tc.flows; f++ {
				flood = append(flood, halfHello(fmt.Sprintf("10.66.%d.%d", f/200, 1+f%200), uint16(20000+f), 8)...)
			}
			r.run(t, flood, tc.before)
			e, w, c, peak := r.e, r.w, r.c, r.peak
			if peak > budget || e.Budget().Peak() > budget {
				t.Errorf("buffers held %d bytes (budget's peak %d), budget %d", peak, e.Budget().Peak(), budget)
			}
			shed, _, others := e.Budget().Shed()
			if tc.before && others == 0 {
				t.Error("no stale buffer was shed to make room for the session's handshake")
			}
			if (shed > 0) != tc.wantShed {
				t.Errorf("%d buffers shed, want shedding %v", shed, tc.wantShed)
			}
			if tc.wantShed && peak < budget*7/8-16<<10 {
				t.Errorf("peak %d: the flood never filled the budget, the test measures nothing", peak)
			}
			w.Finish()
			// What stays reserved waits in the worker's buffer pool.
			if u := e.Budget().Used() - int64(w.mem.Idle()); u != 0 {
				t.Errorf("%d bytes still reserved after every flow ended (beside %d idle in the pool)", u, w.mem.Idle())
			}
			e.SendStats()
			var st struct {
				Stats struct {
					TCP struct {
						Drop uint64 `json:"segment_memcap_drop"`
					} `json:"tcp"`
				} `json:"stats"`
			}
			for _, rec := range c.recs {
				if rec.Type == "stats" {
					validate(t, compileSchema(t, "../../schemas/eve.schema.json"), rec.JSON, "schemas/eve.schema.json")
					json.Unmarshal(rec.JSON, &st)
				}
			}
			if !r.sessionAlerted() {
				t.Error("the SoftEther session was not detected")
			}
			if st.Stats.TCP.Drop != shed {
				t.Errorf("stats event tcp.segment_memcap_drop %d, want %d", st.Stats.TCP.Drop, shed)
			}
			t.Logf("%d flood flows: peak %d of %d bytes, %d buffers shed", tc.flows, peak, budget, shed)
		})
	}
}

// TestFullTableKeepsReportedFlows: when a flood of new connections fills
// the flow table, the flows that reported evidence stay while others are
// evicted, so the session keeps its flows.
func TestFullTableKeepsReportedFlows(t *testing.T) {
	e := newEngine(t, &collector{})
	w := e.newWorker(decode.LinkEthernet, 64)
	se := loadCapture(t, "se-direct-443.pcap")
	n := uint64(0)
	// The session's connect phase first: its TCP flow reports evidence.
	for _, fr := range se[:200] {
		n++
		w.Process(fr.data, fr.ts, n)
	}
	session := netip.MustParseAddrPort("198.18.1.2:39086")
	present := func() (found, reported bool) {
		w.table.Range(func(st *flowState) {
			if st.view.Client == session {
				found, reported = true, st.reported
			}
		})
		return
	}
	if found, reported := present(); !found || !reported {
		t.Fatalf("session flow in the table %v, reported %v: the test needs both", found, reported)
	}
	ts := se[199].ts
	for f := 0; f < 1000; f++ {
		for _, fr := range halfHello(fmt.Sprintf("10.66.%d.%d", f/200, 1+f%200), uint16(20000+f), 0) {
			ts = ts.Add(time.Microsecond)
			n++
			w.Process(fr, ts, n)
		}
	}
	w.publish()
	if ev := e.C.FlowsEvicted.Load(); ev < 900 {
		t.Fatalf("%d flows evicted: the flood did not fill the table", ev)
	}
	if found, _ := present(); !found {
		t.Error("the session's flow was evicted by a flood of flows without evidence")
	}
}

// TestInspectorStateFlood: connections that carry a little data and stop
// hold no buffer, only their inspectors' state, which the budget accounts
// too: a flood of them beside a SoftEther session never holds more than
// the budget (the stalest flows without evidence lose their inspectors
// first), every byte is returned at the end, and the session is detected.
func TestInspectorStateFlood(t *testing.T) {
	const budget = membudget.MinBytes
	r := newFloodRig(t, budget)
	var flood [][]byte
	for f := 0; f < 4000; f++ {
		client := fmt.Sprintf("10.67.%d.%d", f/200, 1+f%200)
		get := testpkt.Spec{Src: client, Dst: "10.77.0.1", Proto: "tcp", SrcPort: uint16(20000 + f), DstPort: 443,
			ACK: true, Seq: 1001, Payload: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}
		flood = append(flood, append(halfHello(client, uint16(20000+f), 0), testpkt.Ethernet(get))...)
	}
	r.run(t, flood, false)
	inspected := 0
	r.w.table.Range(func(st *flowState) {
		if st.alive != 0 {
			inspected++
		}
	})
	if r.peak > budget {
		t.Errorf("flows held %d bytes, budget %d", r.peak, budget)
	}
	shed, _, others := r.e.Budget().Shed()
	if others == 0 {
		t.Error("no flow's inspectors were shed for another flow")
	}
	if inspected >= 4000 {
		t.Errorf("%d flows still inspected: nothing was shed", inspected)
	}
	r.w.Finish()
	if u := r.e.Budget().Used() - int64(r.w.mem.Idle()); u != 0 {
		t.Errorf("%d bytes still reserved after every flow ended (beside %d idle in the pool)", u, r.w.mem.Idle())
	}
	if !r.sessionAlerted() {
		t.Error("the SoftEther session was not detected")
	}
	t.Logf("4000 flood flows: peak %d of %d bytes, %d shed (%d for other flows), %d flows still inspected at the end", r.peak, budget, shed, others, inspected)
}

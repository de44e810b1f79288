package engine

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/testpkt"
)

// idleFlowHeap opens flows TCP connections (SYN, SYN-ACK, ACK, nothing
// more) and returns the heap each one holds while idle in the flow table:
// its entry, its index slot, and whatever inspector state it carries.
func idleFlowHeap(tb testing.TB, flows int) float64 {
	spec := testpkt.Spec{Src: "10.1.0.1", Dst: "10.2.0.1", Proto: "tcp", SrcPort: 1, DstPort: 443}
	syn, synack, ack := spec, spec, spec
	syn.SYN = true
	synack.SYN, synack.ACK = true, true
	synack.Src, synack.Dst, synack.SrcPort, synack.DstPort = spec.Dst, spec.Src, spec.DstPort, spec.SrcPort
	ack.ACK = true
	frames := [][]byte{testpkt.Ethernet(syn), testpkt.Ethernet(synack), testpkt.Ethernet(ack)}
	// Offsets of the client address's last two bytes and the client port.
	const ipSrc, ipDst, tcpSrc, tcpDst = 14 + 12, 14 + 16, 14 + 20, 14 + 22
	e := newEngine(tb, &collector{})
	e.cfg.MaxFlows = flows + 1
	w := e.newWorker(decode.LinkEthernet, flows+1)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	ts := time.Unix(1800000000, 0)
	n := uint64(0)
	for f := 0; f < flows; f++ {
		port := uint16(1024 + f%50000)
		host := uint16(f / 50000)
		for j, fr := range frames {
			if j == 1 { // server to client
				binary.BigEndian.PutUint16(fr[ipDst+2:], host)
				binary.BigEndian.PutUint16(fr[tcpDst:], port)
			} else {
				binary.BigEndian.PutUint16(fr[ipSrc+2:], host)
				binary.BigEndian.PutUint16(fr[tcpSrc:], port)
			}
			n++
			w.process(fr, ts, n)
		}
		ts = ts.Add(time.Microsecond)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	if got := w.table.Stats().Active; got != flows {
		tb.Fatalf("%d flows in the table, want %d", got, flows)
	}
	runtime.KeepAlive(w)
	return float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc)) / float64(flows)
}

// BenchmarkIdleFlowMemory reports the heap per idle TCP flow with 200,000
// flows open.
func BenchmarkIdleFlowMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(idleFlowHeap(b, 200000), "heap-B/flow")
	}
}

// TestIdleFlowMemory: an idle TCP flow (a handshake, then nothing) holds
// under 1 KiB of heap, so a full default table (262,144 flows) of idle
// connections stays near 256 MiB.
func TestIdleFlowMemory(t *testing.T) {
	if per := idleFlowHeap(t, 50000); per > 1024 {
		t.Errorf("%.0f heap bytes per idle TCP flow, want at most 1024", per)
	} else {
		t.Logf("%.0f heap bytes per idle TCP flow", per)
	}
}

package engine

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/testpkt"
)

// BenchmarkIdleFlowMemory opens 200,000 TCP connections (SYN, SYN-ACK,
// ACK, nothing more) and reports the heap each one holds while idle in the
// flow table: the flow entry with its inspectors.
func BenchmarkIdleFlowMemory(b *testing.B) {
	const flows = 200000
	spec := testpkt.Spec{Src: "10.1.0.1", Dst: "10.2.0.1", Proto: "tcp", SrcPort: 1, DstPort: 443}
	syn, synack, ack := spec, spec, spec
	syn.SYN = true
	synack.SYN, synack.ACK = true, true
	synack.Src, synack.Dst, synack.SrcPort, synack.DstPort = spec.Dst, spec.Src, spec.DstPort, spec.SrcPort
	ack.ACK = true
	frames := [][]byte{testpkt.Ethernet(syn), testpkt.Ethernet(synack), testpkt.Ethernet(ack)}
	// Offsets of the client address's last two bytes and the client port.
	const ipSrc, ipDst, tcpSrc, tcpDst = 14 + 12, 14 + 16, 14 + 20, 14 + 22
	for i := 0; i < b.N; i++ {
		e := newEngine(b, &collector{})
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
			b.Fatalf("%d flows in the table, want %d", got, flows)
		}
		b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/flows, "heap-B/flow")
		runtime.KeepAlive(w)
	}
}

package decode

import (
	"testing"

	"github.com/sewatch/sewatch/internal/testpkt"
)

// BenchmarkDecode measures the per-packet decode of an Ethernet/IPv4/TCP
// frame, the common case on a tap.
func BenchmarkDecode(b *testing.B) {
	frame := testpkt.Ethernet(testpkt.Spec{Src: "198.18.1.2", Dst: "198.18.2.2", Proto: "tcp", SrcPort: 40000, DstPort: 443, ACK: true, Payload: make([]byte, 1200)})
	d := NewDecoder(LinkEthernet)
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for i := 0; i < b.N; i++ {
		if err := d.Decode(frame, &p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeLayered is the same frame through gopacket's layers only
// (no fast path): what the fast path saves.
func BenchmarkDecodeLayered(b *testing.B) {
	frame := testpkt.Ethernet(testpkt.Spec{Src: "198.18.1.2", Dst: "198.18.2.2", Proto: "tcp", SrcPort: 40000, DstPort: 443, ACK: true, Payload: make([]byte, 1200)})
	d := NewDecoder(LinkEthernet)
	d.slowOnly = true
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for i := 0; i < b.N; i++ {
		if err := d.Decode(frame, &p); err != nil {
			b.Fatal(err)
		}
	}
}

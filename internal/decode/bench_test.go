package decode

import (
	"testing"

	"github.com/sewatch/sewatch/internal/testpkt"
)

// BenchmarkDecode measures the per-packet decode of an Ethernet/IPv4/TCP
// frame, the common case on a tap: by the IPv4 fast path, and through
// gopacket's layers only (what the fast path saves).
func BenchmarkDecode(b *testing.B) {
	frame := testpkt.Ethernet(testpkt.Spec{Src: "198.18.1.2", Dst: "198.18.2.2", Proto: "tcp", SrcPort: 40000, DstPort: 443, ACK: true, Payload: make([]byte, 1200)})
	for _, layered := range []bool{false, true} {
		name := "fast"
		if layered {
			name = "layered"
		}
		b.Run(name, func(b *testing.B) {
			d := NewDecoder(LinkEthernet)
			d.slowOnly = layered
			var p Packet
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for i := 0; i < b.N; i++ {
				if err := d.Decode(frame, &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

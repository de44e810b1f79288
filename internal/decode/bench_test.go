package decode

import (
	"testing"

	"github.com/sewatch/sewatch/internal/testpkt"
)

// BenchmarkDecode measures the per-packet decode of an Ethernet/IPv4/TCP
// and an Ethernet/IPv6/TCP frame, the common cases on a tap: by the fast
// paths, and through gopacket's layers only (what the fast paths save).
func BenchmarkDecode(b *testing.B) {
	for _, ip := range []struct{ name, src, dst string }{
		{"ipv4", "198.18.1.2", "198.18.2.2"},
		{"ipv6", "2001:db8:1::2", "2001:db8:2::2"},
	} {
		frame := testpkt.Ethernet(testpkt.Spec{Src: ip.src, Dst: ip.dst, Proto: "tcp", SrcPort: 40000, DstPort: 443, ACK: true, Payload: make([]byte, 1200)})
		for _, layered := range []bool{false, true} {
			name := ip.name + "/fast"
			if layered {
				name = ip.name + "/layered"
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
}

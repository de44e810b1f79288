package decode

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/sewatch/sewatch/internal/testpkt"
)

func TestDecode(t *testing.T) {
	tcp4 := testpkt.Ethernet(testpkt.Spec{Src: "198.18.1.2", Dst: "198.18.2.2", Proto: "tcp", SrcPort: 40000, DstPort: 443, Seq: 1000, ACK: true, Payload: []byte("hello")})
	udp6 := testpkt.Ethernet(testpkt.Spec{Src: "2001:db8::1", Dst: "2001:db8::2", Proto: "udp", SrcPort: 5000, DstPort: 40000, Payload: []byte{1, 2, 3}})
	vlan := testpkt.Ethernet(testpkt.Spec{Src: "10.0.0.1", Dst: "10.0.0.2", Proto: "udp", SrcPort: 1, DstPort: 2, VLANs: []uint16{100, 200}, Payload: []byte{9}})
	icmp := testpkt.Ethernet(testpkt.Spec{Src: "10.0.0.1", Dst: "10.0.0.2", Proto: "icmp", ICMPType: 8, Payload: []byte("ping")})
	icmp6 := testpkt.Ethernet(testpkt.Spec{Src: "fd00::1", Dst: "fd00::2", Proto: "icmp", ICMPType: 128, Payload: []byte("ping")})
	raw := tcp4[14:]
	sll := append([]byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00}, raw...)
	sll2 := append([]byte{0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0}, raw...)
	loop := append([]byte{2, 0, 0, 0}, raw...)
	frag := fragment(udp6IPv4(t), 0x2000)  // first fragment, MF set
	frag2 := fragment(udp6IPv4(t), 0x0010) // later fragment
	espBody := []byte{0x23, 0x60, 0xb0, 0xe3, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd}
	esp4 := rawIP4(50, espBody)
	// Ethernet, a VLAN tag, PPPoE session, PPP (IPv4), then ESP.
	pppoe := append([]byte{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6, 0x81, 0, 0, 121, 0x88, 0x64, 0x11, 0, 0x12, 0x34, 0, 0, 0, 0x21}, esp4...)
	pppoeLCP := append(append([]byte{}, pppoe[:24]...), 0xc0, 0x21, 1, 1, 0, 4)
	// IPv6, a hop-by-hop header (PadN), then ESP.
	esp6 := rawIP6(0, append([]byte{50, 0, 1, 4, 0, 0, 0, 0}, espBody...))

	tests := []struct {
		name    string
		link    LinkType
		data    []byte
		wantErr error
		check   func(t *testing.T, p *Packet)
	}{
		{"ethernet ipv4 tcp", LinkEthernet, tcp4, nil, func(t *testing.T, p *Packet) {
			want(t, p.Src == netip.MustParseAddr("198.18.1.2") && p.Dst == netip.MustParseAddr("198.18.2.2"), "addresses %v %v", p.Src, p.Dst)
			want(t, p.Proto == ProtoTCP && p.SrcPort == 40000 && p.DstPort == 443 && p.Seq == 1000, "tcp fields %+v", p)
			want(t, p.TCPFlags == FlagACK && string(p.Payload) == "hello", "flags %x payload %q", p.TCPFlags, p.Payload)
		}},
		{"ethernet ipv6 udp", LinkEthernet, udp6, nil, func(t *testing.T, p *Packet) {
			want(t, p.IPVersion == 6 && p.Proto == ProtoUDP && p.DstPort == 40000 && len(p.Payload) == 3, "%+v", p)
		}},
		{"qinq", LinkEthernet, vlan, nil, func(t *testing.T, p *Packet) {
			want(t, p.NVLAN == 2 && p.VLAN[0] == 100 && p.VLAN[1] == 200 && p.Proto == ProtoUDP, "vlan %v", p.VLAN)
		}},
		{"icmp echo", LinkEthernet, icmp, nil, func(t *testing.T, p *Packet) {
			want(t, p.Proto == ProtoICMP && p.ICMPType == 8 && p.ICMPID == 7 && p.ICMPSeq == 9 && string(p.Payload) == "ping", "%+v", p)
		}},
		{"icmpv6 echo", LinkEthernet, icmp6, nil, func(t *testing.T, p *Packet) {
			want(t, p.Proto == ProtoICMPv6 && p.ICMPType == 128 && p.ICMPID == 7 && string(p.Payload) == "ping", "%+v", p)
		}},
		{"raw", LinkRaw, raw, nil, func(t *testing.T, p *Packet) { want(t, p.DstPort == 443, "%+v", p) }},
		{"sll", LinkLinuxSLL, sll, nil, func(t *testing.T, p *Packet) { want(t, p.DstPort == 443, "%+v", p) }},
		{"sll2", LinkLinuxSLL2, sll2, nil, func(t *testing.T, p *Packet) { want(t, p.DstPort == 443, "%+v", p) }},
		{"loopback", LinkNull, loop, nil, func(t *testing.T, p *Packet) { want(t, p.DstPort == 443, "%+v", p) }},
		{"first fragment", LinkRaw, frag, nil, func(t *testing.T, p *Packet) {
			want(t, p.Fragment && p.FirstFragment && p.SrcPort == 5000 && p.HasPorts(), "%+v", p)
		}},
		{"later fragment", LinkRaw, frag2, nil, func(t *testing.T, p *Packet) {
			want(t, p.Fragment && !p.FirstFragment && !p.HasPorts(), "%+v", p)
		}},
		{"ipv4 esp: the ESP header is the payload", LinkRaw, esp4, nil, func(t *testing.T, p *Packet) {
			want(t, p.Proto == 50 && string(p.Payload) == string(espBody) && !p.HasPorts(), "%+v", p)
		}},
		{"ipv6 hop-by-hop then esp", LinkRaw, esp6, nil, func(t *testing.T, p *Packet) {
			want(t, p.Proto == 50 && string(p.Payload) == string(espBody), "%+v", p)
		}},
		{"pppoe session carrying ipv4", LinkEthernet, pppoe, nil, func(t *testing.T, p *Packet) {
			want(t, p.Proto == 50 && p.NVLAN == 1 && p.VLAN[0] == 121 && p.Dst == netip.MustParseAddr("10.0.0.2"), "%+v", p)
		}},
		{"pppoe session carrying lcp", LinkEthernet, pppoeLCP, ErrNotIP, nil},
		{"ipv4 tcp without its header", LinkRaw, rawIP4(6, []byte{1, 2, 3}), ErrTruncated, nil},
		{"empty", LinkEthernet, nil, ErrTruncated, nil},
		{"short ipv4", LinkEthernet, tcp4[:20], ErrTruncated, nil},
		{"arp", LinkEthernet, append(append([]byte{}, tcp4[:12]...), 0x08, 0x06, 0, 1), ErrNotIP, nil},
		{"unknown link", LinkType(200), tcp4, ErrUnsupportedLink, nil},
		{"truncated tcp header", LinkEthernet, tcp4[:14+20+10], ErrTruncated, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			err := NewDecoder(tc.link).Decode(tc.data, &p)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			tc.check(t, &p)
		})
	}
}

func want(t *testing.T, ok bool, f string, args ...any) {
	t.Helper()
	if !ok {
		t.Errorf(f, args...)
	}
}

// udp6IPv4 returns a raw IPv4/UDP packet with a 64-byte payload.
func udp6IPv4(t *testing.T) []byte {
	return testpkt.Ethernet(testpkt.Spec{Src: "10.1.1.1", Dst: "10.1.1.2", Proto: "udp", SrcPort: 5000, DstPort: 40001, Payload: make([]byte, 64)})[14:]
}

// fragment rewrites the IPv4 flags/offset field (and fixes nothing else:
// the decoder must not care about checksums).
func fragment(ip []byte, flagsOff uint16) []byte {
	b := append([]byte(nil), ip...)
	binary.BigEndian.PutUint16(b[6:], flagsOff)
	return b
}

func TestDecodeAllocs(t *testing.T) {
	d := NewDecoder(LinkEthernet)
	frame := testpkt.Ethernet(testpkt.Spec{Src: "198.18.1.2", Dst: "198.18.2.2", Proto: "tcp", SrcPort: 40000, DstPort: 443, ACK: true, Payload: make([]byte, 1200)})
	var p Packet
	if n := testing.AllocsPerRun(1000, func() { _ = d.Decode(frame, &p) }); n != 0 {
		t.Errorf("Decode allocates %v times per packet, want 0", n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(uint8(1), testpkt.Ethernet(testpkt.Spec{Src: "198.18.1.2", Dst: "198.18.2.2", Proto: "tcp", SrcPort: 1, DstPort: 443, Payload: []byte("x")}))
	f.Add(uint8(1), testpkt.Ethernet(testpkt.Spec{Src: "fd00::1", Dst: "fd00::2", Proto: "udp", SrcPort: 1, DstPort: 2, VLANs: []uint16{5}}))
	f.Add(uint8(101), []byte{0x45, 0, 0, 20})
	f.Fuzz(func(t *testing.T, link uint8, data []byte) {
		lt := []LinkType{LinkEthernet, LinkRaw, LinkLinuxSLL, LinkLinuxSLL2, LinkNull}[int(link)%5]
		var p Packet
		if err := NewDecoder(lt).Decode(data, &p); err == nil && len(p.Payload) > len(data) {
			t.Fatalf("payload longer than the frame")
		}
	})
}

// rawIP4 builds an IPv4 packet of protocol proto around body.
func rawIP4(proto uint8, body []byte) []byte {
	h := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(body)))
	return append(h, body...)
}

// rawIP6 builds an IPv6 packet whose first next header is next.
func rawIP6(next uint8, body []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(body)))
	h[6], h[7] = next, 64
	h[8], h[23] = 0xfd, 1
	h[24], h[39] = 0xfd, 2
	return append(h, body...)
}

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

// TestDecodeAllocs: decoding allocates nothing, by the fast paths and
// through the layers, for IPv4 and IPv6.
func TestDecodeAllocs(t *testing.T) {
	for _, tc := range []struct{ name, src, dst, proto string }{
		{"ipv4 tcp", "198.18.1.2", "198.18.2.2", "tcp"},
		{"ipv4 udp", "198.18.1.2", "198.18.2.2", "udp"},
		{"ipv6 tcp", "2001:db8:1::2", "2001:db8:2::2", "tcp"},
		{"ipv6 udp", "2001:db8:1::2", "2001:db8:2::2", "udp"},
	} {
		frame := testpkt.Ethernet(testpkt.Spec{Src: tc.src, Dst: tc.dst, Proto: tc.proto, SrcPort: 40000, DstPort: 443, ACK: true, Payload: make([]byte, 1200)})
		for _, layered := range []bool{false, true} {
			d := NewDecoder(LinkEthernet)
			d.slowOnly = layered
			var p Packet
			if n := testing.AllocsPerRun(1000, func() { _ = d.Decode(frame, &p) }); n != 0 {
				t.Errorf("%s (layered %v): Decode allocates %v times per packet, want 0", tc.name, layered, n)
			}
			if p.SrcPort != 40000 || len(p.Payload) != 1200 || d.fast == layered {
				t.Errorf("%s (layered %v): decoded %+v, fast path %v", tc.name, layered, p, d.fast)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(uint8(1), testpkt.Ethernet(testpkt.Spec{Src: "198.18.1.2", Dst: "198.18.2.2", Proto: "tcp", SrcPort: 1, DstPort: 443, Payload: []byte("x")}))
	f.Add(uint8(1), testpkt.Ethernet(testpkt.Spec{Src: "fd00::1", Dst: "fd00::2", Proto: "udp", SrcPort: 1, DstPort: 2, VLANs: []uint16{5}}))
	f.Add(uint8(101), []byte{0x45, 0, 0, 20})
	// Seeds for each encapsulation: a tunnel in a tunnel, PPP, 802.11, NFLOG.
	f.Add(uint8(0), cat(eth(0x0800), outer4(17, udp(50000, 4789, cat(vxlan(), eth(0x0800), outer4(47, cat([]byte{0, 0, 0x08, 0}, inner4)))))))
	f.Add(uint8(5), cat([]byte{0xff, 0x03, 0x00, 0x21}, inner4))
	f.Add(uint8(13), cat([]byte{0x88, 0x02}, make([]byte, 24), []byte{0xAA, 0xAA, 0x03, 0, 0, 0, 0x86, 0xDD}, inner6))
	f.Add(uint8(15), cat([]byte{2, 0, 0, 0, 8, 0, 9, 0}, inner4))
	f.Fuzz(func(t *testing.T, link uint8, data []byte) {
		lt := fuzzLinks[int(link)%len(fuzzLinks)]
		var p Packet
		if err := NewDecoder(lt).Decode(data, &p); err == nil && len(p.Payload) > len(data) {
			t.Fatalf("payload longer than the frame")
		}
	})
}

// fuzzLinks are the link types the fuzzer picks from.
var fuzzLinks = []LinkType{LinkEthernet, LinkRaw, LinkLinuxSLL, LinkLinuxSLL2, LinkNull, LinkPPP, LinkPPPoE, LinkCHDLC,
	LinkFrameRelay, LinkMPLS, LinkFDDI, LinkIPoIB, LinkJuniperEth, Link80211, LinkRadiotap, LinkNFLOG, LinkPPI,
	LinkPFLog, LinkPrism, LinkAVS, LinkEnc, LinkATMRFC1483, LinkPPPWithDir}

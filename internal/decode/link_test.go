package decode

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/sewatch/sewatch/internal/testpkt"
)

// Builders for the encapsulation corpus: every frame carries the same inner
// flow, 198.18.1.2:40000 -> 198.18.2.2:443 (IPv6: 2001:db8::1 -> ::2).
var (
	inner4 = testpkt.Ethernet(testpkt.Spec{Src: "198.18.1.2", Dst: "198.18.2.2", Proto: "tcp", SrcPort: 40000, DstPort: 443, ACK: true, Payload: []byte("hello")})[14:]
	inner6 = testpkt.Ethernet(testpkt.Spec{Src: "2001:db8::1", Dst: "2001:db8::2", Proto: "tcp", SrcPort: 40000, DstPort: 443, ACK: true, Payload: []byte("hello")})[14:]
)

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// eth is an Ethernet header with the given ethertype.
func eth(et uint16) []byte { return cat([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}, u16(et)) }

// outer4 is an IPv4 header (10.9.9.1 -> 10.9.9.2) around payload.
func outer4(proto byte, payload []byte) []byte {
	h := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0, 10, 9, 9, 1, 10, 9, 9, 2}
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	return cat(h, payload)
}

// outer6 is an IPv6 header (fd00::1 -> fd00::2) around payload.
func outer6(next byte, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = next, 64
	h[8], h[23] = 0xfd, 1
	h[24], h[39] = 0xfd, 2
	return cat(h, payload)
}

func udp(sport, dport uint16, payload []byte) []byte {
	return cat(u16(sport), u16(dport), u16(uint16(8+len(payload))), u16(0), payload)
}

func TestEncapsulations(t *testing.T) {
	ethIn := cat(eth(0x0800), inner4)
	wifiData := cat([]byte{0x08, 0x01}, make([]byte, 22), []byte{0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00}, inner4)
	wifiQoS := cat([]byte{0x88, 0x02}, make([]byte, 24), []byte{0xAA, 0xAA, 0x03, 0, 0, 0, 0x86, 0xDD}, inner6)
	radiotap := []byte{0, 0, 8, 0, 0, 0, 0, 0}
	nflogTLV := func(pkt []byte) []byte {
		l := make([]byte, 4)
		binary.LittleEndian.PutUint16(l, uint16(4+len(pkt)))
		binary.LittleEndian.PutUint16(l[2:], 9)
		prefix := []byte{8, 0, 10, 0, 'x', 0, 0, 0} // a prefix TLV first
		return cat([]byte{2, 0, 0, 0}, prefix, l, pkt)
	}
	mplsLabel := func(label uint32, bottom bool) []byte {
		v := label<<12 | 64
		if bottom {
			v |= 0x100
		}
		return binary.BigEndian.AppendUint32(nil, v)
	}
	vxlan := []byte{0x08, 0, 0, 0, 0, 0, 1, 0}
	tests := []struct {
		name  string
		link  LinkType
		frame []byte
		layer Layer // counted once; NumLayers: none
		v6    bool
	}{
		{"ppp", LinkPPP, cat([]byte{0xff, 0x03, 0x00, 0x21}, inner4), LayerPPP, false},
		{"ppp compressed protocol", LinkPPP, cat([]byte{0x21}, inner4), LayerPPP, false},
		{"ppp ipv6", LinkPPPHDLC, cat([]byte{0xff, 0x03, 0x00, 0x57}, inner6), LayerPPP, true},
		{"ppp mpls", LinkPPP, cat([]byte{0x02, 0x81}, mplsLabel(100, true), inner4), LayerMPLS, false},
		{"cisco hdlc in a ppp capture", LinkPPP, cat([]byte{0x0f, 0, 0x08, 0}, inner4), LayerCHDLC, false},
		{"pppoe session", LinkEthernet, cat(eth(0x8864), []byte{0x11, 0, 0, 1}, u16(uint16(2+len(inner4))), []byte{0, 0x21}, inner4), LayerPPPoE, false},
		{"pppoe link type", LinkPPPoE, cat([]byte{0x11, 0, 0, 1, 0, 0}, []byte{0, 0x57}, inner6), LayerPPPoE, true},
		{"mpls two labels", LinkEthernet, cat(eth(0x8847), mplsLabel(16, false), mplsLabel(17, true), inner4), LayerMPLS, false},
		{"mpls pseudowire", LinkEthernet, cat(eth(0x8847), mplsLabel(16, true), []byte{0, 0, 0, 0}, ethIn), LayerMPLS, false},
		{"mpls link type", LinkMPLS, cat(mplsLabel(2, true), inner6), LayerMPLS, true},
		{"c-hdlc", LinkCHDLC, cat([]byte{0x0f, 0, 0x08, 0}, inner4), LayerCHDLC, false},
		{"frame relay", LinkFrameRelay, cat([]byte{0x18, 0x41, 0x03, 0xcc}, inner4), NumLayers, false},
		{"frame relay snap", LinkFrameRelay, cat([]byte{0x18, 0x41, 0x03, 0x00, 0x80, 0, 0, 0}, u16(0x86DD), inner6), NumLayers, true},
		{"nflog", LinkNFLOG, nflogTLV(inner4), NumLayers, false},
		{"ppi ethernet", LinkPPI, cat([]byte{0, 0, 8, 0, 1, 0, 0, 0}, ethIn), LayerEthernet, false},
		{"radiotap data", LinkRadiotap, cat(radiotap, wifiData), NumLayers, false},
		{"802.11 qos data four addresses", Link80211, cat([]byte{0x88, 0x03}, make([]byte, 30), []byte{0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00}, inner4), NumLayers, false},
		{"802.11 qos", Link80211, wifiQoS, NumLayers, true},
		{"macsec unencrypted", LinkEthernet, cat(eth(0x88E5), []byte{0x20, 0, 0, 0, 0, 1}, make([]byte, 8), u16(0x0800), inner4), NumLayers, false},
		{"nsh", LinkEthernet, cat(eth(0x894F), []byte{0x0f, 0x02, 0x02, 0x01, 0, 0, 1, 0xff}, inner4), LayerNSH, false},
		{"vn-tag", LinkEthernet, cat(eth(0x8926), []byte{0x80, 1, 0, 2}, u16(0x0800), inner4), LayerVNTag, false},
		{"e-tag", LinkEthernet, cat(eth(0x893F), make([]byte, 6), u16(0x86DD), inner6), LayerVNTag, true},
		{"802.1ah", LinkEthernet, cat(eth(0x88E7), []byte{0, 0, 0, 5}, ethIn), Layer8021ah, false},
		{"qinq", LinkEthernet, cat(eth(0x88A8), []byte{0, 10, 0x81, 0}, []byte{0, 20, 0x08, 0}, inner4), LayerQinQ, false},
		{"ipoib", LinkIPoIB, cat([]byte{0x08, 0, 0, 0}, inner4), NumLayers, false},
		{"juniper ethernet", LinkJuniperEth, cat([]byte{'M', 'G', 'C', 0x01}, ethIn), NumLayers, false},
		{"juniper ethernet with extensions", LinkJuniperEth, cat([]byte{'M', 'G', 'C', 0x81, 0, 4, 1, 2, 3, 4}, ethIn), NumLayers, false},
		{"fddi", LinkFDDI, cat(make([]byte, 13), []byte{0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0}, inner4), NumLayers, false},
		{"pflog", LinkPFLog, cat([]byte{64, 2}, make([]byte, 62), inner4), NumLayers, false},
		{"gre", LinkEthernet, cat(eth(0x0800), outer4(47, cat([]byte{0, 0, 0x08, 0}, inner4))), LayerGRE, false},
		{"gre key and sequence", LinkEthernet, cat(eth(0x0800), outer4(47, cat([]byte{0x30, 0, 0x86, 0xDD}, make([]byte, 8), inner6))), LayerGRE, true},
		{"gre ethernet", LinkRaw, outer6(47, cat([]byte{0, 0, 0x65, 0x58}, ethIn)), LayerGRE, false},
		{"erspan type I", LinkEthernet, cat(eth(0x0800), outer4(47, cat([]byte{0, 0, 0x88, 0xBE}, ethIn))), LayerERSPAN, false},
		{"erspan type II", LinkEthernet, cat(eth(0x0800), outer4(47, cat([]byte{0x10, 0, 0x88, 0xBE, 0, 0, 0, 1}, []byte{0x10, 1, 0, 0, 0, 0, 0, 0}, ethIn))), LayerERSPAN, false},
		{"erspan type III", LinkEthernet, cat(eth(0x0800), outer4(47, cat([]byte{0x10, 0, 0x22, 0xEB, 0, 0, 0, 1}, make([]byte, 12), ethIn))), LayerERSPAN, false},
		{"vxlan", LinkEthernet, cat(eth(0x0800), outer4(17, udp(50000, 4789, cat(vxlan, ethIn)))), LayerVXLAN, false},
		{"geneve", LinkEthernet, cat(eth(0x0800), outer4(17, udp(50000, 6081, cat([]byte{0x01, 0, 0x65, 0x58, 0, 0, 1, 0}, make([]byte, 4), ethIn)))), LayerGeneve, false},
		{"4in4", LinkRaw, outer4(4, inner4), LayerIPv4inIPv4, false},
		{"6in4", LinkRaw, outer4(41, inner6), LayerIPv6inIPv4, true},
		{"4in6", LinkRaw, outer6(4, inner4), LayerIPv4inIPv6, false},
		{"6in6", LinkRaw, outer6(41, inner6), LayerIPv6inIPv6, true},
		{"gtp-u", LinkEthernet, cat(eth(0x0800), outer4(17, udp(2152, 2152, cat([]byte{0x30, 0xff}, u16(uint16(len(inner4))), []byte{0, 0, 0, 1}, inner4)))), LayerGTPU, false},
		{"gtp-u with extension", LinkEthernet, cat(eth(0x0800), outer4(17, udp(2152, 2152, cat([]byte{0x34, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85}, []byte{1, 0, 9, 0}, inner4)))), LayerGTPU, false},
		{"teredo", LinkEthernet, cat(eth(0x0800), outer4(17, udp(3544, 50000, inner6))), LayerTeredo, true},
		{"tunnel in a tunnel", LinkEthernet, cat(eth(0x0800), outer4(17, udp(50000, 4789, cat(vxlan, eth(0x0800), outer4(47, cat([]byte{0, 0, 0x08, 0}, inner4)))))), LayerGRE, false},
	}
	src4, src6 := netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("2001:db8::1")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(tc.link)
			var p Packet
			if err := d.Decode(tc.frame, &p); err != nil {
				t.Fatalf("decode: %v", err)
			}
			src := src4
			if tc.v6 {
				src = src6
			}
			if p.Src != src || p.Proto != ProtoTCP || p.SrcPort != 40000 || p.DstPort != 443 || string(p.Payload) != "hello" {
				t.Errorf("inner flow %v:%d -> %v:%d proto %d payload %q", p.Src, p.SrcPort, p.Dst, p.DstPort, p.Proto, p.Payload)
			}
			if tc.layer != NumLayers && d.Counts[tc.layer] != 1 {
				t.Errorf("%s counted %d times, want 1", LayerNames[tc.layer], d.Counts[tc.layer])
			}
			if d.Skipped.Used != 0 {
				t.Errorf("skipped %v", d.Skipped.Kinds[:d.Skipped.Used])
			}
			if n := testing.AllocsPerRun(100, func() { _ = d.Decode(tc.frame, &p) }); n != 0 {
				t.Errorf("%v allocations per packet", n)
			}
		})
	}
}

// TestNotDecoded: frames that carry no IP flow are reported by kind, and
// tunnels whose inner frame is not IP keep the outer flow.
func TestNotDecoded(t *testing.T) {
	tests := []struct {
		name    string
		link    LinkType
		frame   []byte
		wantErr error
		why     Why
		val     uint32
		outer   uint8 // when the outer flow is kept: its protocol
	}{
		{"arp", LinkEthernet, cat(eth(0x0806), make([]byte, 28)), ErrNotIP, WhyEthertype, 0x0806, 0},
		{"lldp", LinkEthernet, cat(eth(0x88cc), make([]byte, 28)), ErrNotIP, WhyEthertype, 0x88cc, 0},
		{"stp", LinkEthernet, cat(eth(38), []byte{0x42, 0x42, 0x03}, make([]byte, 35)), ErrNotIP, WhyLLC, 0x42, 0},
		{"ppp lcp", LinkPPP, []byte{0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4}, ErrNotIP, WhyPPP, 0xc021, 0},
		{"macsec encrypted", LinkEthernet, cat(eth(0x88E5), []byte{0x2c, 0, 0, 0, 0, 1}, make([]byte, 40)), ErrNotIP, WhyMACsecSealed, 0, 0},
		{"802.11 beacon", Link80211, cat([]byte{0x80, 0}, make([]byte, 40)), ErrNotIP, Why80211, 8, 0},
		{"802.11 protected data", Link80211, cat([]byte{0x08, 0x41}, make([]byte, 40)), ErrNotIP, Why80211, 0x20, 0},
		{"loopback other family", LinkNull, []byte{7, 0, 0, 0, 1, 2}, ErrNotIP, WhyFamily, 7, 0},
		{"unknown link type", LinkType(147), inner4, ErrUnsupportedLink, WhyLinkType, 147, 0},
		{"pptp gre stays outer", LinkRaw, outer4(47, []byte{0x30, 0x81, 0x88, 0x0b, 0, 4, 0, 1, 0xff, 0x03, 0, 0x21}), nil, 0, 0, 47},
		{"vxlan carrying arp stays outer", LinkRaw, outer4(17, udp(50000, 4789, cat(vxlan(), eth(0x0806), make([]byte, 28)))), nil, 0, 0, ProtoUDP},
		{"udp 3544 that is not teredo", LinkRaw, outer4(17, udp(3544, 50000, []byte("not ipv6 at all"))), nil, 0, 0, ProtoUDP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(tc.link)
			var p Packet
			err := d.Decode(tc.frame, &p)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil {
				if p.Proto != tc.outer || p.Dst != netip.MustParseAddr("10.9.9.2") {
					t.Errorf("outer flow not kept: proto %d dst %v", p.Proto, p.Dst)
				}
				if d.Skipped.Used != 0 {
					t.Errorf("skipped %v", d.Skipped.Kinds[:d.Skipped.Used])
				}
				return
			}
			if d.Skipped.Used != 1 || d.Skipped.Kinds[0].Why != tc.why || d.Skipped.Kinds[0].Val != tc.val {
				t.Errorf("skipped %v, want why %d val %#x", d.Skipped.Kinds[:d.Skipped.Used], tc.why, tc.val)
			}
			if s := d.Skipped.Kinds[0].String(); s == "" || s == "other" {
				t.Errorf("no description: %q", s)
			}
		})
	}
}

func vxlan() []byte { return []byte{0x08, 0, 0, 0, 0, 0, 1, 0} }

func TestSkipTableBounded(t *testing.T) {
	d := NewDecoder(LinkEthernet)
	var p Packet
	for et := 0; et < 100; et++ {
		_ = d.Decode(cat(eth(uint16(0x9000+et)), make([]byte, 30)), &p)
	}
	if d.Skipped.Used != len(d.Skipped.Kinds) || d.Skipped.Other != 100-uint64(len(d.Skipped.Kinds)) {
		t.Errorf("used %d other %d", d.Skipped.Used, d.Skipped.Other)
	}
	f := cat(eth(0x9999), make([]byte, 30))
	if n := testing.AllocsPerRun(100, func() { _ = d.Decode(f, &p) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

package rudpprobe

import (
	"crypto/sha1"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

// dnsProbe builds SoftEther's R-UDP datagram disguised as a DNS query.
func dnsProbe(label string, rdata []byte) []byte {
	b := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, 8}
	b = append(b, label...)
	b = append(b, 0, 0, 48, 0, 1)    // QTYPE DNSKEY, IN
	b = append(b, 0, 0, 41, 0x10, 0) // OPT, udp size 4096
	b = append(b, 0, 0, 0x80, 0)     // ext rcode, version, DO
	b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
	return append(b, rdata...)
}

func icmpFrame(payload []byte) []byte {
	sum := sha1.Sum(payload)
	return append(sum[:], payload...)
}

func TestParsers(t *testing.T) {
	opaque := []byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07}
	edns := []byte{0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8} // a well-formed COOKIE option
	tests := []struct {
		name string
		b    []byte
		want bool
		fn   func([]byte) bool
	}{
		{"probe", dnsProbe("652527ba", opaque), true, IsDNSProbe},
		{"upper-case label", dnsProbe("652527BA", opaque), false, IsDNSProbe},
		{"word label", dnsProbe("mailhost", opaque), false, IsDNSProbe},
		{"real edns option", dnsProbe("652527ba", edns), false, IsDNSProbe},
		{"short", dnsProbe("652527ba", opaque)[:20], false, IsDNSProbe},
		{"icmp frame", icmpFrame([]byte("some random r-udp bytes here")), true, IsICMPFrame},
		{"icmp ping", []byte("abcdefghijklmnopqrstuvwxyz0123456789"), false, IsICMPFrame},
		{"icmp empty", nil, false, IsICMPFrame},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fn(tc.b); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

type sink struct{ ev []detector.Evidence }

func (s *sink) Report(e detector.Evidence) { s.ev = append(s.ev, e) }

func TestICMPSession(t *testing.T) {
	c, srv := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	f := &detector.Flow{Proto: decode.ProtoICMP, Client: netip.AddrPortFrom(c, 0), Server: netip.AddrPortFrom(srv, 0)}
	s := &sink{}
	p := &decode.Packet{Proto: decode.ProtoICMP, Time: time.Unix(1, 0)}
	in := Detector{}.NewInspector(p, true, f)
	// An echo request and the kernel's mirrored reply are not a session.
	req := icmpFrame([]byte("probe payload one"))
	for i := 0; i < 10; i++ {
		*p = decode.Packet{Proto: decode.ProtoICMP, ICMPType: 8, Src: c, Dst: srv, Payload: req}
		in.Inspect(p, true, f, s)
		*p = decode.Packet{Proto: decode.ProtoICMP, ICMPType: 0, Src: srv, Dst: c, Payload: req}
		in.Inspect(p, false, f, s)
	}
	for _, e := range s.ev {
		if e.Kind == KindOverICMP {
			t.Fatal("mirrored echo replies taken for a session")
		}
	}
	for i := 0; i < 10; i++ {
		*p = decode.Packet{Proto: decode.ProtoICMP, ICMPType: 0, Src: c, Dst: srv, Payload: icmpFrame([]byte{byte(i), 1, 2, 3})}
		in.Inspect(p, true, f, s)
		*p = decode.Packet{Proto: decode.ProtoICMP, ICMPType: 16, Src: srv, Dst: c, Payload: icmpFrame([]byte{byte(i), 9, 9})}
		in.Inspect(p, false, f, s)
	}
	got := false
	for _, e := range s.ev {
		if e.Kind == KindOverICMP {
			got = e.Mode == detector.ModeOverICMP && e.Client == c && e.Server == srv
		}
	}
	if !got {
		t.Errorf("no vpn-over-icmp session evidence: %+v", s.ev)
	}
}

func FuzzInspect(f *testing.F) {
	f.Add(uint8(17), uint16(53), dnsProbe("652527ba", []byte{1, 2, 3, 4, 5}))
	f.Add(uint8(1), uint16(0), icmpFrame([]byte("x")))
	f.Fuzz(func(t *testing.T, proto uint8, port uint16, payload []byte) {
		p := &decode.Packet{Proto: []uint8{decode.ProtoUDP, decode.ProtoICMP}[proto%2], DstPort: port, SrcPort: 53, ICMPType: proto % 17,
			Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Payload: payload}
		fl := &detector.Flow{Proto: p.Proto}
		if in := (Detector{}).NewInspector(p, true, fl); in != nil {
			for i := 0; i < 3; i++ {
				in.Inspect(p, i%2 == 0, fl, &sink{})
			}
		}
		IsDNSProbeAnswer(payload)
	})
}

// TestOneWaySession: an asymmetric tap that sees one side of a VPN-over-DNS
// or VPN-over-ICMP session still reports it, naming the right client; a
// probing client whose packets the peer's kernel mirrors does not count.
func TestOneWaySession(t *testing.T) {
	c, srv := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	t0 := time.Unix(1000, 0)
	run := func(proto uint8, pkt func(i int) (decode.Packet, bool)) []detector.Evidence {
		f := &detector.Flow{Proto: proto, Client: netip.AddrPortFrom(c, 5353), Server: netip.AddrPortFrom(srv, 53)}
		s := &sink{}
		first, _ := pkt(0)
		in := Detector{}.NewInspector(&first, true, f)
		for i := 0; i < 60; i++ {
			p, toServer := pkt(i)
			p.Time = t0.Add(time.Duration(i) * 200 * time.Millisecond)
			in.Inspect(&p, toServer, f, s)
		}
		var out []detector.Evidence
		for _, e := range s.ev {
			if e.Kind == KindOverDNS || e.Kind == KindOverICMP {
				out = append(out, e)
			}
		}
		return out
	}
	probe := dnsProbe("0a1b2c3d", []byte{1, 2, 3, 4, 5, 6, 7, 8})
	tests := []struct {
		name  string
		proto uint8
		pkt   func(i int) (decode.Packet, bool)
		want  bool
	}{
		{"DNS, client side only", decode.ProtoUDP, func(i int) (decode.Packet, bool) {
			return decode.Packet{Proto: decode.ProtoUDP, Src: c, Dst: srv, SrcPort: 5353, DstPort: 53, Payload: probe}, true
		}, true},
		{"ICMP, server side only", decode.ProtoICMP, func(i int) (decode.Packet, bool) {
			return decode.Packet{Proto: decode.ProtoICMP, ICMPType: 16, Src: srv, Dst: c, Payload: icmpFrame([]byte{byte(i), 7, 7})}, false
		}, true},
		{"ICMP probes mirrored by the peer's kernel", decode.ProtoICMP, func(i int) (decode.Packet, bool) {
			pl := icmpFrame([]byte{byte(i / 2), 1, 1})
			if i%2 == 1 {
				return decode.Packet{Proto: decode.ProtoICMP, ICMPType: 0, Src: srv, Dst: c, Payload: pl}, false
			}
			return decode.Packet{Proto: decode.ProtoICMP, ICMPType: 8, Src: c, Dst: srv, Payload: pl}, true
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := run(tc.proto, tc.pkt)
			if (len(ev) > 0) != tc.want {
				t.Fatalf("session evidence %v, want %v", ev, tc.want)
			}
			if tc.want && (ev[0].Client != c || ev[0].Server != srv || detector.SpecOf(ev[0].Kind).Class != detector.ClassSelfProving) {
				t.Errorf("evidence %+v", ev[0])
			}
		})
	}
}

package othervpn

import (
	"encoding/binary"
	"math/rand"
	"net/netip"
	"testing"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

type sink struct{ sids []int }

func (s *sink) Report(e detector.Evidence) { s.sids = append(s.sids, e.Signature) }

// pkt is one packet of a flow and its direction.
type pkt struct {
	toServer bool
	b        []byte
}

func c2s(b []byte) pkt { return pkt{true, b} }
func s2c(b []byte) pkt { return pkt{false, b} }

// feed runs one inspector over packets; TCP sequence numbers follow the
// payload lengths per direction.
func feed(proto uint8, port uint16, pkts ...pkt) []int {
	f := &detector.Flow{Proto: proto, Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), port)}
	p := &decode.Packet{Proto: proto}
	in := Detector{}.NewInspector(p, true, f)
	s := &sink{}
	seq := [2]uint32{1000, 90000}
	for _, k := range pkts {
		d := 1
		if k.toServer {
			d = 0
		}
		p.Payload, p.Seq = k.b, seq[d]
		seq[d] += uint32(len(k.b))
		if !in.Inspect(p, k.toServer, f, s) {
			break
		}
	}
	return s.sids
}

// alternate: packets alternate direction, client first.
func alternate(proto uint8, bs ...[]byte) []int {
	ps := make([]pkt, len(bs))
	for i, b := range bs {
		ps[i] = pkt{i%2 == 0, b}
	}
	return feed(proto, 1194, ps...)
}

// wgData builds a transport-data message of n body bytes.
func wgDataMsg(idx uint32, ctr uint64, n int) []byte {
	b := make([]byte, 16+n+16)
	b[0] = wgData
	binary.LittleEndian.PutUint32(b[4:], idx)
	binary.LittleEndian.PutUint64(b[8:], ctr)
	for i := 16; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	return b
}

func wgHandshake(typ uint8, size int, sender, receiver uint32) []byte {
	b := make([]byte, size)
	b[0] = typ
	binary.LittleEndian.PutUint32(b[4:], sender)
	if typ == wgResponse {
		binary.LittleEndian.PutUint32(b[8:], receiver)
	}
	return b
}

// ovCrypt builds a tls-crypt (hmac = 0) or tls-auth control packet: opcode,
// session id, [HMAC], packet id, timestamp, then the rest (tag and
// ciphertext, or the clear ack list and message).
func ovCrypt(op uint8, sid uint64, hmac int, pid, tm uint32, rest int) []byte {
	b := []byte{op << 3}
	b = binary.BigEndian.AppendUint64(b, sid)
	b = append(b, make([]byte, hmac)...)
	b = binary.BigEndian.AppendUint32(b, pid)
	b = binary.BigEndian.AppendUint32(b, tm)
	return append(b, make([]byte, rest)...)
}

// ovPlain builds a control packet without HMAC: acks (with the peer's
// session id) and, except in an ACK, a message packet id.
func ovPlain(op uint8, sid uint64, acks []uint32, peer uint64, msgPID uint32, payload int) []byte {
	b := []byte{op << 3}
	b = binary.BigEndian.AppendUint64(b, sid)
	b = append(b, byte(len(acks)))
	for _, a := range acks {
		b = binary.BigEndian.AppendUint32(b, a)
	}
	if len(acks) > 0 {
		b = binary.BigEndian.AppendUint64(b, peer)
	}
	if op != opAck {
		b = binary.BigEndian.AppendUint32(b, msgPID)
	}
	return append(b, make([]byte, payload)...)
}

func tcpFramed(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	return out
}

func esp(spi, seq uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, spi)
	b = binary.BigEndian.AppendUint32(b, seq)
	return append(b, make([]byte, 64)...)
}

func ah(next uint8, spi, seq uint32, body []byte) []byte {
	b := []byte{next, 4, 0, 0} // 24-byte header: 12 fixed + 96-bit ICV
	b = binary.BigEndian.AppendUint32(b, spi)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = append(b, make([]byte, 12)...)
	return append(b, body...)
}

const now = 1650106007 // a timestamp of 2022

func TestOtherVPN(t *testing.T) {
	sid := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	cli := append(append([]byte{opHardResetClientV2 << 3}, sid...), 0, 0, 0, 0, 0)
	srv := append(append(append([]byte{opHardResetServerV2 << 3}, 9, 9, 9, 9, 9, 9, 9, 9, 1, 0, 0, 0, 0), sid...), 0, 0, 0, 0)
	other := append([]byte{opHardResetServerV2 << 3}, make([]byte, 30)...)
	tcp := func(b []byte) []byte { return tcpFramed(b) }
	r := rand.New(rand.NewSource(3))
	noise := func() []byte { b := make([]byte, 60); r.Read(b); return b }
	const cs, ss = 0xaae06512392a3d71, 0x53c96dd083724fd2

	tests := []struct {
		name  string
		proto uint8
		port  uint16
		pkts  []pkt
		want  int
	}{
		{"openvpn udp", 17, 1194, []pkt{c2s(cli), s2c(srv)}, detector.SIDOpenVPNUDP},
		{"openvpn udp, reply without the session id", 17, 1194, []pkt{c2s(cli), s2c(other)}, 0},
		{"openvpn tcp", 6, 1194, []pkt{c2s(tcp(cli)), s2c(tcp(srv))}, detector.SIDOpenVPNTCP},
		{"wireguard handshake", 17, 51820, []pkt{c2s(wgHandshake(1, 148, 7, 0)), s2c(wgHandshake(2, 92, 9, 7))}, detector.SIDWireGuard},
		{"wireguard handshake, longer messages", 17, 51820, []pkt{c2s(wgHandshake(1, 204, 7, 0)), s2c(wgHandshake(2, 100, 9, 7))}, detector.SIDWireGuard},
		{"wireguard response naming another index", 17, 51820, []pkt{c2s(wgHandshake(1, 148, 7, 0)), s2c(wgHandshake(2, 92, 9, 8))}, 0},
		{"wireguard cookie reply", 17, 51820, []pkt{c2s(wgHandshake(1, 148, 7, 0)), s2c(wgHandshake(3, 64, 7, 0))}, detector.SIDWireGuard},
		{"wireguard data both ways", 17, 5060, []pkt{c2s(wgDataMsg(0x11, 19, 64)), s2c(wgDataMsg(0x22, 15, 64)), c2s(wgDataMsg(0x11, 20, 48)), c2s(wgDataMsg(0x11, 21, 128)), s2c(wgDataMsg(0x22, 16, 48))}, detector.SIDWireGuard},
		{"wireguard data one way, keepalive first", 17, 51820, []pkt{c2s(wgDataMsg(5, 0, 0)), c2s(wgDataMsg(5, 1, 48)), c2s(wgDataMsg(5, 2, 48)), c2s(wgDataMsg(5, 3, 96))}, detector.SIDWireGuard},
		{"wireguard data, counter jumping back", 17, 51820, []pkt{c2s(wgDataMsg(5, 9, 48)), c2s(wgDataMsg(5, 3, 48)), c2s(wgDataMsg(5, 7, 48)), c2s(wgDataMsg(5, 1, 48)), c2s(wgDataMsg(5, 6, 48))}, 0},
		{"wireguard data, counter jumping far", 17, 51820, []pkt{c2s(wgDataMsg(5, 0, 48)), c2s(wgDataMsg(5, 100, 48)), c2s(wgDataMsg(5, 200, 48)), c2s(wgDataMsg(5, 300, 48))}, 0},
		{"wireguard data, index changing", 17, 51820, []pkt{c2s(wgDataMsg(5, 0, 48)), c2s(wgDataMsg(6, 1, 48)), c2s(wgDataMsg(7, 2, 48)), c2s(wgDataMsg(8, 3, 48))}, 0},
		{"wireguard-like header, sizes not 32+16k", 17, 51820, []pkt{c2s(wgDataMsg(5, 0, 47)), c2s(wgDataMsg(5, 1, 49)), c2s(wgDataMsg(5, 2, 50)), c2s(wgDataMsg(5, 3, 51))}, 0},
		{"wireguard data, both sides the same index", 17, 51820, []pkt{c2s(wgDataMsg(5, 0, 48)), s2c(wgDataMsg(5, 0, 48)), c2s(wgDataMsg(5, 1, 48)), s2c(wgDataMsg(5, 1, 48)), c2s(wgDataMsg(5, 2, 48))}, 0},
		{"tls-crypt control, joined mid-session", 17, 1194, []pkt{c2s(ovCrypt(opControl, cs, 0, 3, now, 60)), c2s(ovCrypt(opAck, cs, 0, 4, now, 32+13)), c2s(ovCrypt(opControl, cs, 0, 5, now+1, 500))}, detector.SIDOpenVPNUDP},
		{"tls-crypt control, packet ids not consecutive", 17, 1194, []pkt{c2s(ovCrypt(opControl, cs, 0, 3, now, 60)), c2s(ovCrypt(opAck, cs, 0, 5, now, 32+13)), c2s(ovCrypt(opControl, cs, 0, 7, now, 500)), c2s(ovCrypt(opControl, cs, 0, 9, now, 500))}, 0},
		{"tls-crypt control, session id changing", 17, 1194, []pkt{c2s(ovCrypt(opControl, cs, 0, 3, now, 60)), c2s(ovCrypt(opControl, cs+1, 0, 4, now, 60)), c2s(ovCrypt(opControl, cs+2, 0, 5, now, 60))}, 0},
		{"tls-crypt control, no clock in the timestamp", 17, 1194, []pkt{c2s(ovCrypt(opControl, cs, 0, 3, 5, 60)), c2s(ovCrypt(opControl, cs, 0, 4, 5, 60)), c2s(ovCrypt(opControl, cs, 0, 5, 5, 60))}, 0},
		{"tls-crypt control, too short for the tag", 17, 1194, []pkt{c2s(ovCrypt(opControl, cs, 0, 3, now, 20)), c2s(ovCrypt(opControl, cs, 0, 4, now, 20)), c2s(ovCrypt(opControl, cs, 0, 5, now, 20))}, 0},
		{"tls-auth SHA1 control, server side only", 17, 1194, []pkt{s2c(ovCrypt(opControl, ss, 20, 8, now, 1+4+8+4+100)), s2c(ovCrypt(opControl, ss, 20, 9, now, 1+4+8+4+100)), s2c(ovCrypt(opControl, ss, 20, 10, now, 1+4+100))}, detector.SIDOpenVPNUDP},
		{"tls-auth SHA256 control", 17, 1194, []pkt{c2s(ovCrypt(opControl, cs, 32, 1, now, 1+4+300)), c2s(ovCrypt(opControl, cs, 32, 2, now, 1+4+300)), c2s(ovCrypt(opControl, cs, 32, 3, now, 1+4+300))}, detector.SIDOpenVPNUDP},
		{"tls-auth, ack count above 8", 17, 1194, []pkt{c2s(append(ovCrypt(opControl, cs, 20, 1, now, 0), 9, 0, 0, 0, 0)), c2s(append(ovCrypt(opControl, cs, 20, 2, now, 0), 9, 0, 0, 0, 0)), c2s(append(ovCrypt(opControl, cs, 20, 3, now, 0), 9, 0, 0, 0, 0))}, 0},
		{"no-HMAC control, one direction", 17, 443, []pkt{c2s(ovPlain(opHardResetClientV2, cs, nil, 0, 0, 0)), c2s(ovPlain(opAck, cs, []uint32{0}, ss, 0, 0)), c2s(ovPlain(opControl, cs, nil, 0, 1, 280)), c2s(ovPlain(opControl, cs, []uint32{1}, ss, 2, 280))}, detector.SIDOpenVPNUDP},
		{"no-HMAC control, peer session id changing", 17, 443, []pkt{c2s(ovPlain(opControl, cs, []uint32{0}, ss, 1, 50)), c2s(ovPlain(opControl, cs, []uint32{1}, ss+1, 2, 50)), c2s(ovPlain(opControl, cs, []uint32{2}, ss+2, 3, 50)), c2s(ovPlain(opControl, cs, []uint32{3}, ss+3, 4, 50))}, 0},
		{"tls-crypt over TCP, two packets in a segment, one split", 6, 443, []pkt{
			c2s(tcpFramed(ovCrypt(opAck, cs, 0, 1, now, 32+13), ovCrypt(opAck, cs, 0, 2, now, 32+13))),
			c2s(tcpFramed(ovCrypt(opControl, cs, 0, 3, now, 400))[:100]),
			c2s(tcpFramed(ovCrypt(opControl, cs, 0, 3, now, 400))[100:]),
		}, detector.SIDOpenVPNTCP},
		{"tls-crypt over TCP, split packet not misread", 6, 443, []pkt{
			c2s(tcpFramed(ovCrypt(opAck, cs, 0, 1, now, 32+13))),
			c2s(tcpFramed(ovCrypt(opControl, cs, 0, 2, now, 400))[:100]),
			// The rest of packet 2 happens to look like a framed packet 3:
			// it is inside packet 2 and must not be read as one.
			c2s(tcpFramed(ovCrypt(opControl, cs, 0, 3, now, 60))),
		}, 0},
		{"esp, first packet of an SA", 50, 0, []pkt{c2s(esp(0x2360b0e3, 1))}, detector.SIDESP},
		{"esp, mid-SA consecutive", 50, 0, []pkt{c2s(esp(0x2360b0e3, 1000)), c2s(esp(0x2360b0e3, 1001))}, detector.SIDESP},
		{"esp, mid-SA alone", 50, 0, []pkt{c2s(esp(0x2360b0e3, 1000))}, 0},
		{"esp, sequence numbers not consecutive", 50, 0, []pkt{c2s(esp(0x2360b0e3, 1000)), c2s(esp(0x2360b0e3, 1003)), c2s(esp(0x2360b0e3, 1000))}, 0},
		{"esp, reserved SPI", 50, 0, []pkt{c2s(esp(7, 1)), c2s(esp(7, 2))}, 0},
		{"ah carrying esp", 51, 0, []pkt{c2s(ah(50, 0x604816f6, 1, esp(0x1234, 1)))}, detector.SIDESP},
		{"ah carrying icmp", 51, 0, []pkt{c2s(ah(1, 0x604816f6, 1, make([]byte, 64)))}, detector.SIDESP},
		{"ah, reserved bits set", 51, 0, []pkt{c2s(append(ah(50, 0x604816f6, 1, nil)[:2], append([]byte{1, 0}, ah(50, 0x604816f6, 1, nil)[4:]...)...))}, 0},
		{"esp in udp 4500, one way", 17, 4500, []pkt{c2s(esp(0xc0ffee, 50)), c2s(esp(0xc0ffee, 51)), c2s(esp(0xc0ffee, 52))}, detector.SIDESP},
		{"esp-like udp elsewhere", 17, 4501, []pkt{c2s(esp(0xc0ffee, 50)), c2s(esp(0xc0ffee, 51)), c2s(esp(0xc0ffee, 52))}, 0},
		{"pptp data: enhanced gre carrying ppp", 47, 0, []pkt{c2s([]byte{0x30, 0x81, 0x88, 0x0b, 0, 10, 0x98, 0x50, 0, 0, 0, 1})}, detector.SIDPPTP},
		{"gre version 0 with the ppp type", 47, 0, []pkt{c2s([]byte{0x20, 0x00, 0x88, 0x0b, 0, 10, 0x98, 0x50, 0, 0, 0, 1})}, 0},
		{"random udp", 17, 1194, []pkt{c2s(noise()), s2c(noise()), c2s(noise()), s2c(noise())}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := feed(tc.proto, tc.port, tc.pkts...)
			if (tc.want == 0 && len(got) != 0) || (tc.want != 0 && (len(got) != 1 || got[0] != tc.want)) {
				t.Errorf("signatures %v, want %d", got, tc.want)
			}
		})
	}
	// Random UDP and TCP flows never look like any of these.
	for i := 0; i < 20000; i++ {
		if got := alternate(17, noise(), noise(), noise(), noise()); len(got) != 0 {
			t.Fatalf("random datagrams labelled %v", got)
		}
		if got := feed(17, 4500, c2s(noise()), c2s(noise()), c2s(noise())); len(got) != 0 {
			t.Fatalf("random datagrams on 4500 labelled %v", got)
		}
		if got := alternate(6, noise(), noise(), noise(), noise()); len(got) != 0 {
			t.Fatalf("random segments labelled %v", got)
		}
	}
}

func TestParsers(t *testing.T) {
	t.Run("wireguard", func(t *testing.T) {
		for _, tc := range []struct {
			b       []byte
			typ     uint8
			idx     uint32
			wantOK  bool
			comment string
		}{
			{wgDataMsg(0x1c1048b0, 15, 64), 4, 0x1c1048b0, true, "data, 96 B"},
			{wgDataMsg(1, 0, 0), 4, 1, true, "keepalive, 32 B"},
			{wgDataMsg(1, 0, 8), 4, 1, false, "40 B is no 32+16k"},
			{wgHandshake(1, 148, 0xac186631, 0), 1, 0xac186631, true, "initiation"},
			{wgHandshake(1, 147, 1, 0), 1, 1, false, "initiation too short"},
			{wgHandshake(2, 92, 3, 4), 2, 3, true, "response"},
			{wgHandshake(3, 64, 3, 0), 3, 3, true, "cookie reply"},
			{wgHandshake(3, 65, 3, 0), 3, 3, false, "cookie reply of another size"},
			{append([]byte{4, 1, 0, 0}, make([]byte, 60)...), 0, 0, false, "reserved byte set"},
			{append([]byte{5, 0, 0, 0}, make([]byte, 60)...), 5, 0, false, "unknown type"},
		} {
			typ, idx, ok := wgMsg(tc.b)
			if ok != tc.wantOK || (ok && (typ != tc.typ || idx != tc.idx)) {
				t.Errorf("%s: %d %x %v, want %d %x %v", tc.comment, typ, idx, ok, tc.typ, tc.idx, tc.wantOK)
			}
		}
	})
	t.Run("esp", func(t *testing.T) {
		for _, tc := range []struct {
			b        []byte
			spi, seq uint32
			ok       bool
		}{
			{esp(0x2360b0e3, 1), 0x2360b0e3, 1, true},
			{esp(256, 7), 256, 7, true},
			{esp(255, 7), 255, 7, false},
			{esp(0x2360b0e3, 0), 0x2360b0e3, 0, false},
			{esp(0x2360b0e3, 1)[:23], 0, 0, false},
		} {
			spi, seq, ok := espHeader(tc.b)
			if ok != tc.ok || (ok && (spi != tc.spi || seq != tc.seq)) {
				t.Errorf("%x: %x %d %v, want %x %d %v", tc.b[:8], spi, seq, ok, tc.spi, tc.seq, tc.ok)
			}
		}
	})
	t.Run("ah", func(t *testing.T) {
		long := ah(6, 300, 2, make([]byte, 20))
		long[1] = 6 // a 32-byte header (HMAC-SHA256-128 ICV)
		for _, tc := range []struct {
			b      []byte
			next   uint8
			rest   int
			ok     bool
			reason string
		}{
			{ah(50, 0x604816f6, 1, esp(9999, 1)), 50, 72, true, "ESP inside"},
			{long, 6, 12, true, "longer ICV"},
			{ah(99, 0x604816f6, 1, nil), 0, 0, false, "unknown next header"},
			{ah(50, 0x604816f6, 1, nil)[:20], 0, 0, false, "header longer than the packet"},
			{append([]byte{50, 3, 0, 0}, make([]byte, 30)...), 0, 0, false, "ICV shorter than 96 bits"},
		} {
			next, _, _, rest, ok := ahHeader(tc.b)
			if ok != tc.ok || (ok && (next != tc.next || len(rest) != tc.rest)) {
				t.Errorf("%s: next %d rest %d %v, want %d %d %v", tc.reason, next, len(rest), ok, tc.next, tc.rest, tc.ok)
			}
		}
	})
}

// TestInspectAllocs: once a flow is being followed, every packet is read
// without allocating (WireGuard data, OpenVPN over TCP, ESP).
func TestInspectAllocs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proto uint8
		pkt   func(i int) []byte
	}{
		{"wireguard data, counter never increasing", 17, func(i int) []byte { return wgDataMsg(5, 7, 48) }},
		{"openvpn tcp framing", 6, func(i int) []byte { return tcpFramed(ovCrypt(opAck, 1, 0, uint32(i*2), now, 32+13)) }},
		{"esp", 50, func(i int) []byte { return esp(999, uint32(1000+2*i)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &detector.Flow{Proto: tc.proto, Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:51820")}
			p := &decode.Packet{Proto: tc.proto}
			pkts := make([][]byte, 64)
			for i := range pkts {
				pkts[i] = tc.pkt(i)
			}
			s := &sink{}
			in := Detector{}.NewInspector(p, true, f).(*inspector)
			i := 0
			n := testing.AllocsPerRun(200, func() {
				in.n = 0 // stay within the packet budget
				p.Payload = pkts[i%len(pkts)]
				p.Seq += uint32(len(p.Payload))
				i++
				in.Inspect(p, true, f, s)
			})
			if n != 0 || len(s.sids) != 0 {
				t.Errorf("%v allocations per packet (reports %v)", n, s.sids)
			}
		})
	}
}

func FuzzInspect(f *testing.F) {
	f.Add([]byte{0x38, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0}, []byte{0x40, 0, 0})
	f.Add(wgDataMsg(5, 1, 16), wgDataMsg(5, 2, 16))
	f.Add(ovCrypt(opControl, 1, 0, 1, now, 60), ovCrypt(opAck, 1, 0, 2, now, 13))
	f.Add(esp(999, 1), ah(50, 999, 1, esp(1000, 1)))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		alternate(17, a, b, a)
		feed(17, 4500, c2s(a), c2s(b), c2s(a))
		alternate(6, a, b)
		feed(6, 443, c2s(a), c2s(b), c2s(a), c2s(b))
		alternate(50, a, b, a, b)
		alternate(51, a, b, a, b)
		alternate(47, a)
	})
}

// FuzzParsers: the header readers never panic and never accept what their
// rules exclude.
func FuzzParsers(f *testing.F) {
	f.Add(wgDataMsg(5, 1, 16))
	f.Add(esp(999, 1))
	f.Add(ah(50, 999, 1, esp(1000, 1)))
	f.Add(ovCrypt(opControl, 1, 20, 1, now, 30))
	f.Fuzz(func(t *testing.T, b []byte) {
		if typ, _, ok := wgMsg(b); ok && (typ < 1 || typ > 4 || len(b) < 32) {
			t.Fatalf("wireguard type %d accepted in %d bytes", typ, len(b))
		}
		if spi, seq, ok := espHeader(b); ok && (spi < 256 || seq == 0) {
			t.Fatalf("esp spi %d seq %d accepted", spi, seq)
		}
		if _, _, _, rest, ok := ahHeader(b); ok && len(rest) > len(b)-24 {
			t.Fatalf("ah header shorter than 24 bytes")
		}
		var d, peer ovDir
		for i := 0; i < 3; i++ {
			if l := d.control(b, len(b), &peer); l >= 0 && i < 2 {
				t.Fatalf("layout %d accepted after %d packets", l, i+1)
			}
		}
		var fr tcpFrame
		fr.packets(0, b, func(pkt []byte, plen int) bool {
			if len(pkt) > plen {
				t.Fatalf("packet of %d bytes longer than its length %d", len(pkt), plen)
			}
			return false
		})
	})
}

package cleartunnel

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// keepAlive is SoftEther's keep-alive message with n random bytes.
func keepAlive(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return cat(u32(0xffffffff), u32(uint32(n)), b)
}

// frames is a batch message carrying the given Ethernet frames.
func frames(fs ...[]byte) []byte {
	out := u32(uint32(len(fs)))
	for _, f := range fs {
		out = append(out, u32(uint32(len(f)))...)
		out = append(out, f...)
	}
	return out
}

var (
	bcast = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	macA  = []byte{0x5e, 0xd2, 0xbb, 0xd4, 0x9c, 0xca}
	macB  = []byte{0x5e, 0x57, 0xd6, 0x77, 0xc5, 0xca}
)

func ether(dst, src []byte, typ uint16, pl []byte) []byte {
	return cat(dst, src, binary.BigEndian.AppendUint16(nil, typ), pl)
}

// ipv4 is an IPv4 header (no options) and n bytes of payload.
func ipv4(n int) []byte {
	h := make([]byte, 20+n)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+n))
	h[8], h[9] = 64, 17
	return h
}

// arp is an ARP request for IPv4 over Ethernet.
func arp() []byte {
	return cat([]byte{0, 1, 8, 0, 6, 4, 0, 1}, macA, []byte{198, 18, 100, 10}, make([]byte, 6), []byte{198, 18, 100, 1})
}

func TestParse(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	dhcp := ether(bcast, macA, 0x0800, ipv4(300))
	ping := ether(macB, macA, 0x0800, ipv4(64))
	tls := cat([]byte{0x17, 3, 3, 0, 40}, make([]byte, 40))
	tests := []struct {
		name string
		b    []byte
		want int
	}{
		{"keep-alive", keepAlive(r, 229), KeepAlive},
		{"empty keep-alive", keepAlive(r, 0), KeepAlive},
		{"largest keep-alive", keepAlive(r, 511), KeepAlive},
		{"keep-alive with the NAT-T port signature", keepAlive(r, maxKeepAlive), KeepAlive},
		{"keep-alive too large", keepAlive(r, maxKeepAlive+1), None},
		{"keep-alive cut short", keepAlive(r, 100)[:50], None},
		{"keep-alive and a byte more", append(keepAlive(r, 100), 0), None},
		{"two keep-alives coalesced", cat(keepAlive(r, 8), keepAlive(r, 300)), KeepAlive},
		{"DHCP broadcast", frames(dhcp), Batch},
		{"ARP", frames(ether(bcast, macA, 0x0806, arp())), Batch},
		{"IPv6", frames(ether(macB, macA, 0x86dd, cat([]byte{0x60}, make([]byte, 60)))), Batch},
		{"VLAN tag", frames(ether(macB, macA, 0x8100, []byte{0, 5, 8, 0, 0x45})), Batch},
		{"three frames in a batch", frames(ping, ping, dhcp), Batch},
		{"keep-alive then a batch", cat(keepAlive(r, 40), frames(ping)), Batch},
		{"batch then a keep-alive", cat(frames(ping), keepAlive(r, 40)), Batch},
		{"batch cut inside a frame", frames(ping, dhcp)[:100], None},
		{"batch claiming a frame more", cat(u32(2), frames(ping)[4:]), None},
		{"batch and a stray byte", append(frames(ping), 1), None},
		{"zero blocks", cat(u32(0), u32(0)), None},
		{"unknown ethertype", frames(ether(macB, macA, 0x88cc, make([]byte, 40))), None},
		{"IPv4 with a bad version", frames(ether(macB, macA, 0x0800, append([]byte{0x65}, ipv4(10)[1:]...))), None},
		{"IPv4 header longer than the frame", frames(ether(macB, macA, 0x0800, append([]byte{0x4f}, make([]byte, 30)...))), None},
		{"zero source MAC", frames(ether(bcast, make([]byte, 6), 0x0800, ipv4(20))), None},
		{"block shorter than an Ethernet header", cat(u32(1), u32(10), make([]byte, 10)), None},
		{"TLS record", tls, None},
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None},
		{"a length-prefixed message of another kind", cat(u32(1), u32(20), []byte("twenty bytes of text")), None},
		{"empty", nil, None},
		{"seven bytes", make([]byte, 7), None},
	}
	for _, tc := range tests {
		if got := Parse(tc.b); got != tc.want {
			t.Errorf("%s: Parse = %d, want %d", tc.name, got, tc.want)
		}
	}
}

type sink struct{ ev []detector.Evidence }

func (s *sink) Report(e detector.Evidence) { s.ev = append(s.ev, e) }

// run feeds a connection: first the client's payload (which decides
// whether the detector follows it), then pairs of segments, client first.
func run(syn bool, first []byte, pairs [][2][]byte) (followed bool, ev []detector.Evidence) {
	c, s := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	f := &detector.Flow{Proto: decode.ProtoTCP, SYNSeen: syn, Client: netip.AddrPortFrom(c, 50000), Server: netip.AddrPortFrom(s, 443)}
	p := &decode.Packet{Proto: decode.ProtoTCP, Time: time.Unix(100, 0), Payload: first}
	in := Detector{}.NewInspector(p, true, f)
	if in == nil {
		return false, nil
	}
	defer in.(*Inspector).Release()
	sk := &sink{}
	if !in.Inspect(p, true, f, sk) {
		return true, sk.ev
	}
	for _, pr := range pairs {
		for d, b := range pr {
			p.Time, p.Payload = p.Time.Add(time.Second), b
			if b == nil {
				continue
			}
			if !in.Inspect(p, d == 0, f, sk) {
				return true, sk.ev
			}
		}
	}
	return true, sk.ev
}

func TestInspector(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	hello := cat([]byte{0x16, 3, 1, 1, 0x35, 1, 0, 1, 0x31, 3, 3}, make([]byte, 300))
	rec := func(n int) []byte { return cat([]byte{0x17, 3, 3, byte(n >> 8), byte(n)}, make([]byte, n)) }
	ping := ether(macB, macA, 0x0800, ipv4(64))
	connect := [][2][]byte{{nil, rec(1400)}, {rec(80), nil}, {rec(2000), rec(900)}, {rec(3400), rec(2900)}}
	var clear [][2][]byte
	for i := 0; i < 5; i++ {
		clear = append(clear, [2][]byte{keepAlive(r, r.Intn(512)), frames(ping)})
	}
	var tlsData [][2][]byte
	for i := 0; i < 60; i++ {
		tlsData = append(tlsData, [2][]byte{rec(100 + i), rec(200 + i)})
	}
	tests := []struct {
		name     string
		syn      bool
		first    []byte
		pairs    [][2][]byte
		follow   bool
		evidence bool
		mode     detector.Mode
	}{
		{"encryption off after the login", true, hello, append(connect, clear...), true, true, detector.ModeDirect},
		{"through an HTTP proxy", true, []byte("CONNECT 10.0.0.9:443 HTTP/1.0\r\n\r\n"), append(append([][2][]byte{{nil, []byte("HTTP/1.0 200 Connection established\r\n\r\n")}, {hello, nil}}, connect...), clear...), true, true, detector.ModeHTTPProxy},
		{"joined late", false, keepAlive(r, 40), clear, true, true, detector.ModeMidSession},
		{"three framed segments each way", true, hello, append(connect, clear[:3]...), true, false, ""},
		{"one side framed only", true, hello, append(connect, [][2][]byte{{keepAlive(r, 9), rec(50)}, {frames(ping), rec(60)}, {keepAlive(r, 9), rec(70)}, {frames(ping), rec(80)}, {keepAlive(r, 9), rec(90)}}...), true, false, ""},
		{"TLS all along", true, hello, tlsData, true, false, ""},
		// Framing after 40 segments of something else is not followed.
		{"framing after a long TLS exchange", true, hello, append(tlsData[:25], clear...), true, false, ""},
		{"SSH", true, []byte("SSH-2.0-OpenSSH_9.2p1\r\n"), clear, false, false, ""},
		{"HTTP", true, []byte("GET / HTTP/1.1\r\n\r\n"), clear, false, false, ""},
	}
	for _, tc := range tests {
		followed, ev := run(tc.syn, tc.first, tc.pairs)
		if followed != tc.follow {
			t.Errorf("%s: followed %v, want %v", tc.name, followed, tc.follow)
			continue
		}
		if (len(ev) > 0) != tc.evidence {
			t.Errorf("%s: evidence %v, want %v", tc.name, ev, tc.evidence)
			continue
		}
		if tc.evidence {
			if len(ev) != 1 || ev[0].Kind != Kind || ev[0].Mode != tc.mode || ev[0].Symmetric == tc.syn {
				t.Errorf("%s: evidence %+v, want one %s in mode %q", tc.name, ev, Kind, tc.mode)
			}
		}
	}
}

func TestInspectorAllocs(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	ka := keepAlive(r, 200)
	b := frames(ether(macB, macA, 0x0800, ipv4(64)))
	f := &detector.Flow{Proto: decode.ProtoTCP, SYNSeen: true}
	p := &decode.Packet{Proto: decode.ProtoTCP, Payload: ka}
	sk := &sink{}
	run := func() {
		in := Detector{}.NewInspector(p, true, f).(*Inspector)
		for i := 0; i < 3; i++ {
			p.Payload = ka
			in.Inspect(p, true, f, sk)
			p.Payload = b
			in.Inspect(p, false, f, sk)
		}
		in.Release()
	}
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("%v allocations per connection, want 0", n)
	}
}

// FuzzParse: Parse never panics, and what it accepts re-parses to the
// same answer from a copy (it reads nothing outside b).
func FuzzParse(f *testing.F) {
	r := rand.New(rand.NewSource(4))
	f.Add(keepAlive(r, 100))
	f.Add(frames(ether(bcast, macA, 0x0806, arp())))
	f.Add(cat(keepAlive(r, 8), frames(ether(macB, macA, 0x0800, ipv4(30)))))
	f.Add([]byte{0x17, 3, 3, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := Parse(b)
		if got != Parse(append([]byte(nil), b...)) {
			t.Fatal("Parse differs on a copy")
		}
		if got != None && len(b) < 8 {
			t.Fatalf("accepted %d bytes", len(b))
		}
	})
}

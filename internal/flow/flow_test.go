package flow

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/sewatch/sewatch/internal/decode"
)

func pkt(src string, sp uint16, dst string, dp uint16, flags uint8, t time.Time) *decode.Packet {
	return &decode.Packet{Time: t, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		SrcPort: sp, DstPort: dp, Proto: decode.ProtoTCP, TCPFlags: flags, WireLen: 100}
}

func TestDirection(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	tests := []struct {
		name       string
		first      *decode.Packet
		wantClient string
	}{
		{"syn from client", pkt("10.0.0.1", 40000, "10.0.0.2", 443, decode.FlagSYN, t0), "10.0.0.1:40000"},
		{"syn-ack seen first", pkt("10.0.0.2", 443, "10.0.0.1", 40000, decode.FlagSYN|decode.FlagACK, t0), "10.0.0.1:40000"},
		{"mid-stream from server port", pkt("10.0.0.2", 443, "10.0.0.1", 40000, decode.FlagACK, t0), "10.0.0.1:40000"},
		{"mid-stream from client", pkt("10.0.0.9", 51000, "10.0.0.2", 5555, decode.FlagACK, t0), "10.0.0.9:51000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable[int](16, DefaultTimeouts(), nil)
			k, a := KeyOf(tc.first)
			e, created, _ := tb.Lookup(tc.first, &k, a)
			if !created {
				t.Fatal("not created")
			}
			if got := netip.AddrPortFrom(e.Client().Addr, e.Client().Port).String(); got != tc.wantClient {
				t.Errorf("client %s, want %s", got, tc.wantClient)
			}
		})
	}
}

func TestSYNCorrectsDirection(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	tb := NewTable[int](16, DefaultTimeouts(), nil)
	// A stray packet from the high port first, then the real SYN the other way.
	p1 := pkt("10.0.0.2", 45000, "10.0.0.1", 40000, decode.FlagACK, t0)
	k, a := KeyOf(p1)
	e, _, _ := tb.Lookup(p1, &k, a)
	p2 := pkt("10.0.0.1", 40000, "10.0.0.2", 45000, decode.FlagSYN, t0.Add(time.Millisecond))
	k2, a2 := KeyOf(p2)
	if k2 != k {
		t.Fatal("key not canonical")
	}
	_, created, toServer := tb.Lookup(p2, &k2, a2)
	if created || !toServer || e.Client().Port != 40000 {
		t.Errorf("created=%v toServer=%v client=%v", created, toServer, e.Client())
	}
	if e.PktsToServer != 1 || e.PktsToClient != 1 {
		t.Errorf("counters %d/%d", e.PktsToServer, e.PktsToClient)
	}
}

func TestExpireAndEvict(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	var ended []EndReason
	tb := NewTable[int](3, Timeouts{TCP: time.Minute, TCPClosed: time.Second, UDP: time.Minute, Other: time.Minute},
		func(_ *Entry[int], r EndReason) { ended = append(ended, r) })
	for i := 0; i < 4; i++ {
		p := pkt("10.0.0.1", uint16(1000+i), "10.0.0.2", 443, decode.FlagSYN, t0.Add(time.Duration(i)*time.Second))
		k, a := KeyOf(p)
		tb.Lookup(p, &k, a)
	}
	if st := tb.Stats(); st.Active != 3 || st.Evicted != 1 || len(ended) != 1 || ended[0] != EndEvicted {
		t.Fatalf("stats %+v ended %v", st, ended)
	}
	var expired int
	tb.Expire(t0.Add(2*time.Minute), func(*Entry[int], EndReason) { expired++ })
	if expired != 3 || tb.Stats().Active != 0 {
		t.Errorf("expired %d, active %d", expired, tb.Stats().Active)
	}
}

func TestFlowID(t *testing.T) {
	p := pkt("10.0.0.1", 1, "10.0.0.2", 2, decode.FlagSYN, time.Unix(1700000000, 123456000))
	k, a := KeyOf(p)
	tb := NewTable[int](16, DefaultTimeouts(), nil)
	e, _, _ := tb.Lookup(p, &k, a)
	if e.ID <= 0 || e.ID >= 1<<51 {
		t.Errorf("flow_id %d out of range", e.ID)
	}
}

func TestLookupAllocs(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	tb := NewTable[[64]byte](1024, DefaultTimeouts(), nil)
	p := pkt("10.0.0.1", 40000, "10.0.0.2", 443, decode.FlagACK, t0)
	k, a := KeyOf(p)
	tb.Lookup(p, &k, a)
	if n := testing.AllocsPerRun(1000, func() {
		k, a := KeyOf(p)
		tb.Lookup(p, &k, a)
	}); n != 0 {
		t.Errorf("lookup of an existing flow allocates %v times, want 0", n)
	}
}

func BenchmarkLookup(b *testing.B) {
	tb := NewTable[[64]byte](1<<16, DefaultTimeouts(), nil)
	p := pkt("10.0.0.1", 40000, "10.0.0.2", 443, decode.FlagACK, time.Unix(1700000000, 0))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.SrcPort = uint16(i & 1023)
		k, a := KeyOf(p)
		tb.Lookup(p, &k, a)
	}
}

// TestEvictKeepsFlowsWithEvidence: a full table evicts the least recently
// used flow not marked Keep; a kept flow goes only when every flow the
// eviction looks at is kept.
func TestEvictKeepsFlowsWithEvidence(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	tests := []struct {
		name     string
		keep     []bool // flows 0..n-1, oldest first
		wantGone int
	}{
		{"oldest not kept", []bool{false, false, false}, 0},
		{"oldest kept", []bool{true, false, false}, 1},
		{"two oldest kept", []bool{true, true, false}, 2},
		{"all kept", []bool{true, true, true}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gone []uint16
			tb := NewTable[int](len(tc.keep), DefaultTimeouts(), func(e *Entry[int], _ EndReason) { gone = append(gone, e.Client().Port-1000) })
			for i, k := range tc.keep {
				p := pkt("10.0.0.1", uint16(1000+i), "10.0.0.2", 443, decode.FlagSYN, t0.Add(time.Duration(i)*time.Second))
				key, a := KeyOf(p)
				e, _, _ := tb.Lookup(p, &key, a)
				e.Keep = k
			}
			p := pkt("10.0.0.1", 2000, "10.0.0.2", 443, decode.FlagSYN, t0.Add(time.Minute))
			key, a := KeyOf(p)
			tb.Lookup(p, &key, a)
			if len(gone) != 1 || int(gone[0]) != tc.wantGone {
				t.Errorf("evicted %v, want [%d]", gone, tc.wantGone)
			}
		})
	}
}

// BenchmarkKeyOf measures making a flow key in place, as the engine does,
// for IPv4 and IPv6 packets alone and mixed.
func BenchmarkKeyOf(b *testing.B) {
	v4 := func(i int) (netip.Addr, netip.Addr) {
		return netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), netip.AddrFrom4([4]byte{192, 0, 2, 1})
	}
	v6 := func(i int) (netip.Addr, netip.Addr) {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), netip.MustParseAddr("2001:db8::2")
	}
	for _, bc := range []struct {
		name  string
		addrs func(int) (netip.Addr, netip.Addr)
	}{
		{"ipv4", v4},
		{"ipv6", v6},
		{"mixed", func(i int) (netip.Addr, netip.Addr) {
			if i%2 == 1 {
				return v6(i)
			}
			return v4(i)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ps := make([]decode.Packet, 4)
			for i := range ps {
				ps[i] = decode.Packet{Proto: decode.ProtoTCP, SrcPort: uint16(40000 + i), DstPort: 443}
				ps[i].Src, ps[i].Dst = bc.addrs(i)
			}
			var sink uint64
			var k Key
			for i := 0; i < b.N; i++ {
				a := k.Set(&ps[i&3]) // in place, as the engine makes it
				sink += uint64(k.APort) + uint64(k.A[15])
				if a {
					sink++
				}
			}
			_ = sink
		})
	}
}

// TestKeySetAllocs: making a key allocates nothing, for either family.
func TestKeySetAllocs(t *testing.T) {
	for _, src := range []string{"10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1"} {
		p := decode.Packet{Proto: decode.ProtoTCP, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(src).Next(), SrcPort: 40000, DstPort: 443}
		var k Key
		if n := testing.AllocsPerRun(1000, func() { k.Set(&p) }); n != 0 {
			t.Errorf("%s: Key.Set allocates %v times, want 0", src, n)
		}
		if want := p.Src.As16(); k.A != want {
			t.Errorf("%s: key A %x, want %x", src, k.A, want)
		}
	}
}

// TestKeyOfCanonical: a packet and its reply have one key; A is the
// endpoint that sorts first (address bytes, then port), whichever side
// sent; ports count only where the packet has them.
func TestKeyOfCanonical(t *testing.T) {
	addrs := []netip.Addr{
		netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::1:0:0:1"), netip.MustParseAddr("::ffff:10.0.0.3"),
		netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::1"), {}, // the zero Addr: all zeros
	}
	ports := []uint16{0, 1, 443, 50000, 65535}
	for _, proto := range []uint8{decode.ProtoTCP, decode.ProtoUDP, decode.ProtoICMP} {
		for _, sa := range addrs {
			for _, da := range addrs {
				for _, sp := range ports {
					for _, dp := range ports {
						p := decode.Packet{Proto: proto, Src: sa, Dst: da, SrcPort: sp, DstPort: dp}
						r := decode.Packet{Proto: proto, Src: da, Dst: sa, SrcPort: dp, DstPort: sp}
						k, srcA := KeyOf(&p)
						kr, rA := KeyOf(&r)
						if k != kr {
							t.Fatalf("%v:%d -> %v:%d proto %d: key %+v, reply's %+v", sa, sp, da, dp, proto, k, kr)
						}
						hp, hd := sp, dp
						if !p.HasPorts() {
							hp, hd = 0, 0
						}
						s16, d16 := sa.As16(), da.As16()
						c := bytes.Compare(s16[:], d16[:])
						wantA := c < 0 || c == 0 && hp <= hd
						if srcA != wantA {
							t.Fatalf("%v:%d -> %v:%d: srcIsA %v, want %v", sa, sp, da, dp, srcA, wantA)
						}
						if !(c == 0 && hp == hd) && rA == srcA {
							t.Fatalf("%v:%d -> %v:%d: the reply's srcIsA is also %v", sa, sp, da, dp, rA)
						}
						wa, wap, wb, wbp := s16, hp, d16, hd
						if !wantA {
							wa, wap, wb, wbp = d16, hd, s16, hp
						}
						if want := (Key{A: wa, B: wb, APort: wap, BPort: wbp, Proto: proto}); k != want {
							t.Fatalf("%v:%d -> %v:%d: key %+v, want %+v", sa, sp, da, dp, k, want)
						}
					}
				}
			}
		}
	}
}

// TestKeyEq: eq is == on keys: equal keys are equal, and a key that
// differs in any one byte of an address, a port or the protocol is not.
func TestKeyEq(t *testing.T) {
	base := Key{APort: 443, BPort: 50123, Proto: 6}
	for i := range base.A {
		base.A[i], base.B[i] = byte(i), byte(100+i)
	}
	k := base
	if !k.eq(&base) || !(k == base) {
		t.Fatal("a copy of a key is not equal to it")
	}
	var changed []Key
	for i := range base.A {
		k := base
		k.A[i] ^= 1
		changed = append(changed, k)
		k = base
		k.B[i] ^= 0x80
		changed = append(changed, k)
	}
	for _, f := range []func(*Key){
		func(k *Key) { k.APort++ }, func(k *Key) { k.BPort ^= 0x100 }, func(k *Key) { k.Proto = 17 },
	} {
		k := base
		f(&k)
		changed = append(changed, k)
	}
	for i := range changed {
		if changed[i].eq(&base) || base.eq(&changed[i]) || changed[i] == base {
			t.Errorf("key %d: %+v equals %+v", i, changed[i], base)
		}
	}
}

package capture

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// ipPacket builds an IP packet of protocol proto from src to dst whose
// first payload bytes are payload (ports, an SPI).
func ipPacket(src, dst netip.Addr, proto byte, payload []byte) []byte {
	if src.Is4() {
		h := make([]byte, 20, 20+len(payload))
		h[0], h[8], h[9] = 0x45, 64, proto
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
		s, d := src.As4(), dst.As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		return append(h, payload...)
	}
	h := make([]byte, 40, 40+len(payload))
	h[0], h[6], h[7] = 0x60, proto, 64
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, payload...)
}

// forVM is the fanout program as Go's BPF VM can run it on an IP packet
// whose ethertype is proto: the kernel's protocol (SKF_AD_PROTOCOL) made a
// constant, and loads relative to the network header (SKF_NET_OFF) made
// loads from the packet's start.
func forVM(t *testing.T, proto uint32) *bpf.VM {
	t.Helper()
	prog := fanoutHashProgram()
	for i, ins := range prog {
		switch x := ins.(type) {
		case bpf.LoadExtension:
			if x.Num != bpf.ExtProto {
				t.Fatalf("instruction %d: extension %v", i, x.Num)
			}
			prog[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: proto}
		case bpf.LoadAbsolute:
			if x.Off < netOff {
				t.Fatalf("instruction %d loads at %d, not from the network header", i, x.Off)
			}
			prog[i] = bpf.LoadAbsolute{Off: x.Off - netOff, Size: x.Size}
		case bpf.LoadIndirect, bpf.LoadMemShift:
			t.Fatalf("instruction %d: %v reads relative to the data, which starts at the link header on send only", i, x)
		}
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// TestFanoutHashSymmetric runs the fanout program in Go's BPF VM: both
// directions between two hosts get the same value whatever the protocol
// and whatever each direction's ports or SPI (the kernel's own hash gives
// an IPsec SA's two directions, each with an SPI of its own, two values,
// and so it does a UDP tunnel's, each endpoint with a source port of its
// own), over IPv4 and IPv6; host pairs spread over two and four workers;
// what is not IP gets 0.
func TestFanoutHashSymmetric(t *testing.T) {
	if _, err := bpf.Assemble(fanoutHashProgram()); err != nil {
		t.Fatal(err)
	}
	v4, v6 := forVM(t, 0x0800), forVM(t, 0x86dd)
	run := func(ip []byte) uint32 {
		t.Helper()
		vm := v4
		if ip[0]>>4 == 6 {
			vm = v6
		}
		v, err := vm.Run(ip)
		if err != nil {
			t.Fatal(err)
		}
		return uint32(v)
	}
	pairs := [][2]string{{"192.0.2.10", "198.51.100.7"}, {"10.0.0.1", "10.0.0.2"}, {"2001:db8::1", "2001:db8:1::53"}}
	payloads := map[string]struct {
		proto     byte
		fwd, back []byte
	}{
		"tcp":  {6, []byte{0x9c, 0x40, 0x01, 0xbb}, []byte{0x01, 0xbb, 0x9c, 0x40}},
		"udp":  {17, []byte{0xc3, 0x50, 0x00, 0x35}, []byte{0x00, 0x35, 0xc3, 0x50}},
		"esp":  {50, []byte{0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 1}, []byte{0x0b, 0xad, 0xf0, 0x0d, 0, 0, 0, 1}},
		"ah":   {51, []byte{50, 4, 0, 0, 0xc0, 0xff, 0xee, 0x01}, []byte{50, 4, 0, 0, 0x0b, 0xad, 0xf0, 0x0d}},
		"icmp": {1, []byte{8, 0, 0, 0}, []byte{0, 0, 0, 0}},
		"gre":  {47, []byte{0x30, 0x81, 0x88, 0x0b, 0, 0, 0, 1}, []byte{0x30, 0x81, 0x88, 0x0b, 0, 0, 0, 2}},
		// VXLAN: each endpoint's own source port, the same destination.
		"vxlan": {17, []byte{0xd4, 0x31, 0x12, 0xb5}, []byte{0xe0, 0x07, 0x12, 0xb5}},
	}
	for _, pr := range pairs {
		a, b := netip.MustParseAddr(pr[0]), netip.MustParseAddr(pr[1])
		for name, pl := range payloads {
			if f, r := run(ipPacket(a, b, pl.proto, pl.fwd)), run(ipPacket(b, a, pl.proto, pl.back)); f != r {
				t.Errorf("%s %s-%s: %d one way, %d the other", name, a, b, f, r)
			}
		}
	}
	for _, n := range []uint32{2, 4} {
		for _, server := range []string{"203.0.113.5", "2001:db8::5"} {
			per := make([]int, n)
			for i := range 1000 {
				c := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
				if strings.Contains(server, ":") {
					c = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
				}
				per[run(ipPacket(c, netip.MustParseAddr(server), 6, []byte{0, 80, 0x9c, 0x40}))%n]++
			}
			for w, k := range per {
				if k < 1000/int(n)*3/4 {
					t.Errorf("%d workers, clients of %s: %v of 1,000 host pairs per worker; worker %d gets too few", n, server, per, w)
				}
			}
		}
	}
	// Not IP: the first worker.
	if v, err := forVM(t, 0x0806).Run(make([]byte, 28)); err != nil || v != 0 {
		t.Errorf("ARP: %d, %v, want 0", v, err)
	}
}

package decode_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/decode"
)

// TestFastPathMatchesLayers decodes every frame of the bundled captures
// (and, with SEWATCH_SHARED, of the 542 third-party ones: every link type
// and encapsulation the decoder knows) with and without the IPv4 and IPv6
// fast paths and requires the same packet, error and counters. It also
// requires the fast paths to have taken most IPv4 frames and most IPv6
// TCP/UDP frames, or it tests nothing.
func TestFastPathMatchesLayers(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/pcap/*.pcap*")
	if root := os.Getenv("SEWATCH_SHARED"); root != "" {
		more, _ := filepath.Glob(filepath.Join(root, "thirdparty", "ndpi", "pcap", "*"))
		files = append(files, more...)
	}
	if len(files) < 50 {
		t.Fatalf("only %d captures found", len(files))
	}
	var frames, fast4, ipv4, fast6, ipv6, l4v6 int
	for _, f := range files {
		in, err := capture.OpenInput(f, capture.InputOptions{})
		if err != nil {
			continue // not a capture (the third-party set has a few)
		}
		var fastDec, slowDec *decode.Decoder
		var link uint32
		var pf, ps decode.Packet
		for {
			data, _, err := in.ReadPacket()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Logf("%s: %v", filepath.Base(f), err)
				}
				break
			}
			if l := in.PacketLinkType(); fastDec == nil || l != link {
				link = l
				fastDec, slowDec = decode.NewDecoder(decode.LinkType(l)), decode.NewLayeredDecoder(decode.LinkType(l))
			}
			ef := fastDec.Decode(data, &pf)
			es := slowDec.Decode(data, &ps)
			frames++
			if why := decode.Same(fastDec, slowDec, &pf, &ps, ef, es); why != "" {
				t.Fatalf("%s frame %d: %s\nfast %+v %v\nlayered %+v %v", filepath.Base(f), frames, why, pf, ef, ps, es)
			}
			if es != nil {
				continue
			}
			switch ps.IPVersion {
			case 4:
				ipv4++
				if fastDec.TookFastPath() {
					fast4++
				}
			case 6:
				ipv6++
				if ps.HasPorts() && !ps.Fragment {
					l4v6++
				}
				if fastDec.TookFastPath() {
					fast6++
				}
			}
		}
		in.Close()
	}
	t.Logf("%d frames from %d captures: %d IPv4, %d by the fast path; %d IPv6, %d of them TCP/UDP, %d by the fast path",
		frames, len(files), ipv4, fast4, ipv6, l4v6, fast6)
	if fast4*2 < ipv4 {
		t.Errorf("the fast path took %d of %d IPv4 frames", fast4, ipv4)
	}
	// Tunnelled frames count by their inner packet, so a fast IPv6 frame
	// can be an IPv4 packet's carrier; the TCP/UDP count is the yardstick.
	if fast6*2 < l4v6 || (ipv6 > 0 && fast6 == 0) {
		t.Errorf("the fast path took %d of %d IPv6 frames (%d TCP/UDP)", fast6, ipv6, l4v6)
	}
}

// ip6 builds an IPv6 header (payload length plen, next header nh, fixed
// addresses) followed by rest.
func ip6(nh byte, plen uint16, rest ...byte) []byte {
	b := []byte{0x60, 0, 0, 0, byte(plen >> 8), byte(plen), nh, 64,
		0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
		0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}
	return append(b, rest...)
}

// tcp6 is a TCP header with data offset off (in words) and flags ACK|PSH,
// then rest (options and payload).
func tcp6(off byte, rest ...byte) []byte {
	return append([]byte{0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 7, 0, 0, 0, 9, off << 4, 0x18, 0x10, 0, 0, 0, 0, 0}, rest...)
}

// ipv6Cases are IPv6 packets on the edges of what the fast path takes,
// with whether it must take them (fast) or leave them to the layers.
var ipv6Cases = []struct {
	name string
	ip   []byte
	fast bool
}{
	{"tcp", ip6(6, 23, tcp6(5, 'a', 'b', 'c')...), true},
	{"tcp no payload", ip6(6, 20, tcp6(5)...), true},
	{"tcp options", ip6(6, 48, tcp6(11, 2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 'x', 'y', 'z', 'w')...), true},
	{"tcp end of options then junk", ip6(6, 28, tcp6(7, 1, 0, 0xff, 0xff, 9, 9, 9, 9)...), true},
	{"tcp option length 1", ip6(6, 24, tcp6(6, 2, 1, 0, 0)...), false},
	{"tcp option past header", ip6(6, 24, tcp6(6, 1, 8, 10, 0)...), false},
	{"tcp data offset past segment", ip6(6, 24, tcp6(8, 0, 0, 0, 0)...), false},
	{"tcp data offset under 5", ip6(6, 20, tcp6(4)...), false},
	{"tcp header cut by length", ip6(6, 12, tcp6(5)...), false},
	{"tcp header cut by capture", ip6(6, 20, tcp6(5)[:15]...), false},
	{"length past capture", ip6(6, 1400, tcp6(5, 'a', 'b')...), true},
	{"link padding", ip6(6, 21, tcp6(5, 'a', 0, 0, 0, 0, 0)...), true},
	{"length 0", ip6(6, 0, tcp6(5, 'a')...), false},
	{"version nibble 4", append([]byte{0x40}, ip6(6, 20, tcp6(5)...)[1:]...), true},
	{"udp", ip6(17, 11, 0x9c, 0x40, 0, 53, 0, 11, 0, 0, 'a', 'b', 'c'), true},
	{"udp length 0", ip6(17, 10, 0x9c, 0x40, 0, 53, 0, 0, 0, 0, 'a', 'b'), true},
	{"udp length under 8", ip6(17, 10, 0x9c, 0x40, 0, 53, 0, 7, 0, 0, 'a', 'b'), false},
	{"udp length past ip", ip6(17, 10, 0x9c, 0x40, 0, 53, 0, 99, 0, 0, 'a', 'b'), true},
	{"udp length inside ip", ip6(17, 12, 0x9c, 0x40, 0, 53, 0, 9, 0, 0, 'a', 'b', 'c', 'd', 0, 0), true},
	{"udp header cut", ip6(17, 6, 0x9c, 0x40, 0, 53, 0, 8, 0, 0), false},
	{"hop-by-hop", ip6(0, 28, append([]byte{6, 0, 1, 4, 0, 0, 0, 0}, tcp6(5)...)...), false},
	{"jumbogram", ip6(0, 0, append([]byte{17, 0, 0xc2, 4, 0, 1, 0, 0}, 0x9c, 0x40, 0, 53, 0, 0, 0, 0)...), false},
	{"fragment", ip6(44, 28, append([]byte{6, 0, 0, 1, 0, 0, 0, 1}, tcp6(5)...)...), false},
	{"routing", ip6(43, 28, append([]byte{6, 0, 0, 0, 0, 0, 0, 0}, tcp6(5)...)...), false},
	{"icmpv6 echo", ip6(58, 8, 128, 0, 0, 0, 0, 1, 0, 2), false},
	// The outer IPv6 header is left to the layers; the inner one takes
	// the fast path.
	{"ipv6 in ipv6", ip6(41, 60, ip6(6, 20, tcp6(5)...)...), true},
}

// TestFastPathIPv6 decodes ipv6Cases with and without the fast paths,
// requires the same result, and that each case took the path it should.
func TestFastPathIPv6(t *testing.T) {
	for _, tc := range ipv6Cases {
		t.Run(tc.name, func(t *testing.T) {
			data := append([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd}, tc.ip...)
			fastDec, slowDec := decode.NewDecoder(decode.LinkEthernet), decode.NewLayeredDecoder(decode.LinkEthernet)
			var pf, ps decode.Packet
			ef := fastDec.Decode(data, &pf)
			es := slowDec.Decode(data, &ps)
			if why := decode.Same(fastDec, slowDec, &pf, &ps, ef, es); why != "" {
				t.Fatalf("%s\nfast %+v %v\nlayered %+v %v", why, pf, ef, ps, es)
			}
			if fastDec.TookFastPath() != tc.fast {
				t.Errorf("fast path taken %v, want %v (%+v %v)", fastDec.TookFastPath(), tc.fast, pf, ef)
			}
		})
	}
}

// FuzzFastPath: any bytes after an Ethernet header decode the same with
// and without the fast paths. The version nibble picks the ethertype, so
// the IPv4 and IPv6 seeds each reach their own decoder.
func FuzzFastPath(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0, 80, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0, 53, 0x9c, 0x40, 0, 0, 0, 0, 'x'})
	f.Add([]byte{0x45, 0, 0, 52, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0, 80, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0x10, 0xff, 0xff, 0, 0, 0, 0,
		1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	for _, tc := range ipv6Cases {
		f.Add(tc.ip)
	}
	eth := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}
	fastDec, slowDec := decode.NewDecoder(decode.LinkEthernet), decode.NewLayeredDecoder(decode.LinkEthernet)
	f.Fuzz(func(t *testing.T, ip []byte) {
		data := append(append([]byte(nil), eth...), ip...)
		if len(ip) > 0 && ip[0]>>4 == 6 {
			data[12], data[13] = 0x86, 0xdd
		}
		var pf, ps decode.Packet
		ef := fastDec.Decode(data, &pf)
		es := slowDec.Decode(data, &ps)
		if why := decode.Same(fastDec, slowDec, &pf, &ps, ef, es); why != "" {
			t.Fatalf("%s\nfast %+v %v\nlayered %+v %v", why, pf, ef, ps, es)
		}
	})
}

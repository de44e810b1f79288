package udpaccel

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/testpcap"
)

// TestNonceChainOnLabCaptures: on real sessions of each SoftEther build the
// lab ran (Debian's 5.01, the developer edition's 5.02 master, the Stable
// 4.44), every datagram of the acceleration flow continues the previous one
// its sender sent, in both directions; and the other UDP flows of the same
// captures (DNS, NetBIOS, R-UDP probes) never do.
func TestNonceChainOnLabCaptures(t *testing.T) {
	for _, name := range []string{
		"se-b-d501-d501-one-tcp.pcap", // no acceleration flow: nothing to check but the others
		"se-b-s444-s444-direct-443.pcap",
		"se-b-m502-m502-direct-443.pcap",
		"se-b-s444-m502-direct-443.pcap",
		"se-b-d501-s444-direct-443.pcap",
		"lab-midsession.pcap",
	} {
		t.Run(name, func(t *testing.T) {
			type dir struct {
				src, dst netip.AddrPort
			}
			ds := map[dir]*dirState{}
			n := map[dir]int{}
			r := testpcap.Open(t, filepath.Join("..", "..", "testdata", "pcap", name))
			dec := decode.NewDecoder(decode.LinkType(r.LinkType()))
			var p decode.Packet
			for {
				data, _, err := r.ReadPacketData()
				if err != nil {
					break
				}
				if dec.Decode(data, &p) != nil || p.Proto != decode.ProtoUDP || len(p.Payload) == 0 {
					continue
				}
				k := dir{netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)}
				if ds[k] == nil {
					ds[k] = &dirState{}
				}
				ds[k].chain(p.Payload)
				n[k]++
			}
			accel := 0
			for k, d := range ds {
				// The lab's servers each gave their one session port 40000
				// (the first free one); clients' ephemeral ports can fall
				// anywhere in 40000-44999.
				isAccel := k.src.Port() == 40000 || k.dst.Port() == 40000
				switch {
				case isAccel && n[k] >= 3:
					accel++
					if d.links != n[k]-1 {
						t.Errorf("%v -> %v: %d of %d datagrams continue the previous one's nonce, want all", k.src, k.dst, d.links, n[k]-1)
					}
				case !isAccel && d.links > 0 && !dupes(k.dst.Port(), k.src.Port()):
					t.Errorf("%v -> %v (not acceleration): %d chained datagrams", k.src, k.dst, d.links)
				}
			}
			if want := 2; name != "se-b-d501-d501-one-tcp.pcap" && accel != want {
				t.Errorf("%d acceleration directions with 3+ datagrams, want %d", accel, want)
			}
		})
	}
}

// dupes: NetBIOS name queries repeat the same datagram, which continues
// itself in every format; the detector never follows port 137.
func dupes(ports ...uint16) bool {
	for _, p := range ports {
		if p == 137 {
			return true
		}
	}
	return false
}

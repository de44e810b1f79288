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

func run(proto uint8, pkts ...[]byte) []int {
	f := &detector.Flow{Proto: proto, Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:1194")}
	p := &decode.Packet{Proto: proto}
	in := Detector{}.NewInspector(p, f)
	s := &sink{}
	for i, b := range pkts {
		p.Payload = b
		if !in.Inspect(p, i%2 == 0, f, s) {
			break
		}
	}
	return s.sids
}

func TestOtherVPN(t *testing.T) {
	sid := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	cli := append(append([]byte{opHardResetClientV2 << 3}, sid...), 0, 0, 0, 0, 0)
	srv := append(append(append([]byte{opHardResetServerV2 << 3}, 9, 9, 9, 9, 9, 9, 9, 9, 1, 0, 0, 0, 0), sid...), 0, 0, 0, 0)
	other := append([]byte{opHardResetServerV2 << 3}, make([]byte, 30)...)
	tcp := func(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }
	wgInit := append([]byte{1, 0, 0, 0}, make([]byte, 144)...)
	wgResp := append([]byte{2, 0, 0, 0}, make([]byte, 88)...)
	r := rand.New(rand.NewSource(3))
	noise := func() []byte { b := make([]byte, 60); r.Read(b); return b }
	tests := []struct {
		name  string
		proto uint8
		pkts  [][]byte
		want  int
	}{
		{"openvpn udp", 17, [][]byte{cli, srv}, detector.SIDOpenVPNUDP},
		{"openvpn udp, reply without the session id", 17, [][]byte{cli, other}, 0},
		{"openvpn tcp", 6, [][]byte{tcp(cli), tcp(srv)}, detector.SIDOpenVPNTCP},
		{"wireguard", 17, [][]byte{wgInit, wgResp}, detector.SIDWireGuard},
		{"random udp", 17, [][]byte{noise(), noise(), noise(), noise()}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := run(tc.proto, tc.pkts...)
			if (tc.want == 0 && len(got) != 0) || (tc.want != 0 && (len(got) != 1 || got[0] != tc.want)) {
				t.Errorf("signatures %v, want %d", got, tc.want)
			}
		})
	}
	// Random UDP flows never look like an OpenVPN handshake.
	for i := 0; i < 20000; i++ {
		if got := run(17, noise(), noise()); len(got) != 0 {
			t.Fatalf("random datagrams labelled %v", got)
		}
	}
}

func FuzzInspect(f *testing.F) {
	f.Add([]byte{0x38, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0}, []byte{0x40, 0, 0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		run(17, a, b, a)
		run(6, a, b)
		run(50, a, b, a, b)
		run(47, a)
	})
}

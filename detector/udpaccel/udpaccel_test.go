package udpaccel

import (
	"math/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

type sink struct{ ev []detector.Evidence }

func (s *sink) Report(e detector.Evidence) { s.ev = append(s.ev, e) }

// flow simulates n paced datagrams each way; mk builds each payload.
func flow(n int, gap time.Duration, serverPort uint16, mk func(r *rand.Rand, i int) []byte) []detector.Evidence {
	r := rand.New(rand.NewSource(1))
	c, s := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	f := &detector.Flow{Proto: decode.ProtoUDP, Client: netip.AddrPortFrom(c, 51000), Server: netip.AddrPortFrom(s, serverPort)}
	p := &decode.Packet{Proto: decode.ProtoUDP, SrcPort: 51000, DstPort: serverPort}
	in := Detector{}.NewInspector(p, true, f)
	sk := &sink{}
	t0 := time.Unix(100, 0)
	for i := 0; i < n && in != nil; i++ {
		p.Time, p.Payload = t0.Add(time.Duration(i)*gap), mk(r, i)
		if !in.Inspect(p, true, f, sk) {
			break
		}
		p.Time, p.Payload = p.Time.Add(gap/3), mk(r, i)
		if !in.Inspect(p, false, f, sk) {
			break
		}
	}
	return sk.ev
}

func TestUDPAccel(t *testing.T) {
	random := func(r *rand.Rand, i int) []byte {
		b := make([]byte, 51+r.Intn(32))
		r.Read(b)
		return b
	}
	tests := []struct {
		name string
		n    int
		gap  time.Duration
		port uint16
		mk   func(*rand.Rand, int) []byte
		want float32
	}{
		{"softether v2 keep-alives on 40000", 8, 800 * time.Millisecond, 40000, random, 0.6},
		{"same on another port", 8, 800 * time.Millisecond, 5000, random, 0.5},
		{"sustained pacing: paced unit and sustained unit", 40, 800 * time.Millisecond, 5000, random, 1.1},
		{"too fast (voice)", 40, 20 * time.Millisecond, 5000, random, 0},
		{"wireguard", 40, 800 * time.Millisecond, 51820, func(r *rand.Rand, i int) []byte {
			b := random(r, i)
			b[0], b[1], b[2], b[3] = 4, 0, 0, 0
			return b
		}, 0},
		{"dtls", 40, 800 * time.Millisecond, 443, func(r *rand.Rand, i int) []byte {
			b := random(r, i)
			b[0], b[1], b[2] = 23, 0xfe, 0xfd
			return b
		}, 0},
		{"openvpn p_data", 40, 800 * time.Millisecond, 1194, func(r *rand.Rand, i int) []byte {
			b := random(r, i)
			b[0] = 0x30 | byte(i&1)
			return b
		}, 0},
		{"fixed header", 40, 800 * time.Millisecond, 9999, func(r *rand.Rand, i int) []byte {
			b := random(r, i)
			b[0], b[1] = 0x80, 0x60
			return b
		}, 0},
		{"quic short header (connection id)", 40, 800 * time.Millisecond, 443, func(r *rand.Rand, i int) []byte {
			b := random(r, i)
			b[0] = 0x40 | b[0]&0x3f
			copy(b[1:9], "\x11\x22\x33\x44\x55\x66\x77\x88")
			return b
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := flow(tc.n, tc.gap, tc.port, tc.mk)
			for _, e := range ev {
				if !e.Symmetric || e.Mode != detector.ModeUDPAccel {
					t.Errorf("evidence %s: symmetric %v mode %q", e.Kind, e.Symmetric, e.Mode)
				}
			}
			// The session score the verdict stage would give this flow
			// alone; it alerts only with two units (sustained pacing).
			sc := detector.Score(ev)
			if d := sc.Total - tc.want; d > 0.001 || d < -0.001 {
				t.Errorf("score %.2f, want %.2f", sc.Total, tc.want)
			}
			if sc.Alerts() != (tc.want >= detector.Threshold) {
				t.Errorf("alerts %v with score %.2f", sc.Alerts(), sc.Total)
			}
		})
	}
}

func FuzzInspect(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, int64(700))
	f.Fuzz(func(t *testing.T, b []byte, gapMS int64) {
		ev := flow(12, time.Duration(gapMS)*time.Millisecond, 40000, func(r *rand.Rand, i int) []byte {
			if len(b) > 0 {
				b[0] ^= byte(i)
			}
			return b
		})
		_ = ev
	})
}

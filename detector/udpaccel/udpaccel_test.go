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

// flow simulates n paced datagrams each way; mk builds each payload from
// the previous one of the same side (nil for the first).
func flow(n int, gap time.Duration, serverPort uint16, mk func(r *rand.Rand, i int, prev []byte) []byte) []detector.Evidence {
	r := rand.New(rand.NewSource(1))
	c, s := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	f := &detector.Flow{Proto: decode.ProtoUDP, Client: netip.AddrPortFrom(c, 51000), Server: netip.AddrPortFrom(s, serverPort)}
	p := &decode.Packet{Proto: decode.ProtoUDP, SrcPort: 51000, DstPort: serverPort}
	in := Detector{}.NewInspector(p, true, f)
	sk := &sink{}
	t0 := time.Unix(100, 0)
	var prev [2][]byte
	for i := 0; i < n && in != nil; i++ {
		prev[0] = mk(r, i, prev[0])
		p.Time, p.Payload = t0.Add(time.Duration(i)*gap), prev[0]
		if !in.Inspect(p, true, f, sk) {
			break
		}
		prev[1] = mk(r, i, prev[1])
		p.Time, p.Payload = p.Time.Add(gap/3), prev[1]
		if !in.Inspect(p, false, f, sk) {
			break
		}
	}
	return sk.ev
}

func TestUDPAccel(t *testing.T) {
	// random: encrypted-looking datagrams of SoftEther's idle sizes whose
	// leading bytes do not continue the previous datagram's.
	random := func(r *rand.Rand, i int, prev []byte) []byte {
		b := make([]byte, 51+r.Intn(32))
		r.Read(b)
		return b
	}
	// v2: SoftEther's ChaCha20-Poly1305 format, the nonce being bytes 12-23
	// of the side's previous datagram.
	v2 := func(r *rand.Rand, i int, prev []byte) []byte {
		b := random(r, i, prev)
		if prev != nil {
			copy(b[:12], prev[12:24])
		}
		return b
	}
	// v2end: the Stable 4.44 build, the nonce being the 12 bytes before
	// the previous datagram's tag.
	v2end := func(r *rand.Rand, i int, prev []byte) []byte {
		b := random(r, i, prev)
		if prev != nil {
			copy(b[:12], prev[len(prev)-28:len(prev)-16])
		}
		return b
	}
	// v1: the RC4 format, the IV being the previous datagram's last 20 bytes.
	v1 := func(r *rand.Rand, i int, prev []byte) []byte {
		b := make([]byte, 63+r.Intn(32))
		r.Read(b)
		if prev != nil {
			copy(b[:20], prev[len(prev)-20:])
		}
		return b
	}
	// lossy: v2 as a tap that misses every third datagram sees it.
	lossy := func(r *rand.Rand, i int, prev []byte) []byte {
		b := v2(r, i, prev)
		if i%3 == 2 {
			r.Read(b[:12])
		}
		return b
	}
	// v2 with another header: the same chaining, then a protocol's fixed bytes.
	v2With := func(hdr ...byte) func(*rand.Rand, int, []byte) []byte {
		return func(r *rand.Rand, i int, prev []byte) []byte {
			b := v2(r, i, prev)
			copy(b, hdr)
			return b
		}
	}
	tests := []struct {
		name string
		n    int
		gap  time.Duration
		port uint16
		mk   func(*rand.Rand, int, []byte) []byte
		want float32
	}{
		{"softether v2 keep-alives on 40000", 8, 800 * time.Millisecond, 40000, v2, 0.6},
		{"same on another port", 8, 800 * time.Millisecond, 5000, v2, 0.5},
		{"v1 (RC4) keep-alives", 8, 800 * time.Millisecond, 5000, v1, 0.5},
		{"v2 keep-alives of the 4.44 build", 8, 800 * time.Millisecond, 5000, v2end, 0.5},
		{"v2 with a third of the datagrams missed", 8, 800 * time.Millisecond, 5000, lossy, 0.5},
		{"sustained pacing: paced unit and sustained unit", 40, 800 * time.Millisecond, 5000, v2, 1.1},
		{"random nonces, not chained (paced encrypted keep-alives of something else)", 40, 800 * time.Millisecond, 40000, random, 0},
		{"too fast (voice)", 40, 20 * time.Millisecond, 5000, v2, 0},
		{"wireguard", 40, 800 * time.Millisecond, 51820, v2With(4, 0, 0, 0), 0},
		{"dtls", 40, 800 * time.Millisecond, 443, v2With(23, 0xfe, 0xfd), 0},
		{"openvpn p_data", 40, 800 * time.Millisecond, 1194, func(r *rand.Rand, i int, prev []byte) []byte {
			b := v2(r, i, prev)
			b[0] = 0x30 | byte(i&1)
			return b
		}, 0},
		{"fixed header", 40, 800 * time.Millisecond, 9999, v2With(0x80, 0x60), 0},
		{"quic short header (connection id)", 40, 800 * time.Millisecond, 443, func(r *rand.Rand, i int, prev []byte) []byte {
			b := v2(r, i, prev)
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
		ev := flow(12, time.Duration(gapMS)*time.Millisecond, 40000, func(r *rand.Rand, i int, prev []byte) []byte {
			if len(b) > 0 {
				b[0] ^= byte(i)
			}
			return b
		})
		_ = ev
	})
}

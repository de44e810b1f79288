package verdict

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
)

// TestCascade: a session opened by a host already seen serving SoftEther is
// a cascade; the same session from an unknown host stays a client session,
// and a host seen only behind a proxy or SSH forward is not a server.
func TestCascade(t *testing.T) {
	edge, hub, user := "198.51.100.20", "203.0.113.5", "192.0.2.44"
	tests := []struct {
		name    string
		before  func(v *Verdict)
		wantSID int
	}{
		{"unknown initiator: client session", func(*Verdict) {}, detector.SIDDirect},
		{"initiator accepted a session: cascade", func(v *Verdict) { reportSession(v, user, edge, 443, 0) }, detector.SIDCascade},
		{"initiator registered a DDNS name: cascade", func(v *Verdict) {
			e := detector.Evidence{Kind: "vendor.ddns", Weight: 1, Signature: detector.SIDVendorDDNS, Client: netip.MustParseAddr(edge),
				Server: netip.MustParseAddr("198.18.3.1"), Time: t0}
			v.Report(e)
		}, detector.SIDCascade},
		{"initiator was only an SSH server: client session", func(v *Verdict) {
			c, s := netip.MustParseAddr(user), netip.MustParseAddr(edge)
			for _, k := range []detector.Kind{detector.KindSSHShape, detector.KindSSHDataPhase} {
				v.Report(detector.Evidence{Kind: k, Mode: detector.ModeSSH, Client: c, Server: s, Time: t0,
					Flow: detector.Flow{ID: 99, Proto: 6, Client: netip.AddrPortFrom(c, 40000), Server: netip.AddrPortFrom(s, 22), Start: t0}})
			}
		}, detector.SIDDirect},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Alert
			v := New(DefaultConfig(), func(a Alert) { got = append(got, a) })
			tc.before(v)
			n := len(got)
			reportSession(v, edge, hub, 443, 10*time.Second)
			if len(got) != n+1 {
				t.Fatalf("%d alerts after the link session, want %d", len(got), n+1)
			}
			a := got[n]
			if a.Signature.ID != tc.wantSID {
				t.Fatalf("sid %d, want %d", a.Signature.ID, tc.wantSID)
			}
			if tc.wantSID == detector.SIDCascade {
				if a.Mode != "cascade" || !strings.Contains(a.Evidence[0].Detail, edge) {
					t.Errorf("mode %q evidence %+v", a.Mode, a.Evidence[0])
				}
			}
		})
	}
}

// TestSoftEtherServerHint: an OpenVPN/SSTP alert notes the NBSTAT query a
// SoftEther server sends right after accepting the connection, and only
// when it came from the server at the connection's start.
func TestSoftEtherServerHint(t *testing.T) {
	c, s := netip.MustParseAddr("10.1.1.2"), netip.MustParseAddr("192.0.2.7")
	vpn := detector.Evidence{Kind: "vpn.protocol", Weight: 1, Signature: detector.SIDOpenVPNTCP, Client: c, Server: s, Time: t0.Add(100 * time.Millisecond),
		Flow: detector.Flow{ID: 1, Proto: 6, Client: netip.AddrPortFrom(c, 40000), Server: netip.AddrPortFrom(s, 443), Start: t0}}
	probe := func(from, to netip.Addr, at time.Duration) detector.Evidence {
		return detector.Evidence{Kind: detector.KindNBNSProbe, Weight: 0.15, Symmetric: true, Client: from, Server: to, Time: t0.Add(at),
			Flow: detector.Flow{ID: 2, Proto: 17, Client: netip.AddrPortFrom(from, 50000), Server: netip.AddrPortFrom(to, 137), Start: t0.Add(at)}}
	}
	tests := []struct {
		name  string
		probe *detector.Evidence
		want  bool
	}{
		{"no probe", nil, false},
		{"server probes the client at once", ptr(probe(s, c, time.Millisecond)), true},
		{"client probes the server", ptr(probe(c, s, time.Millisecond)), false},
		{"probe long before", ptr(probe(s, c, -time.Minute)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Alert
			v := New(DefaultConfig(), func(a Alert) { got = append(got, a) })
			if tc.probe != nil {
				v.Report(*tc.probe)
			}
			v.Report(vpn)
			if len(got) != 1 {
				t.Fatalf("%d alerts", len(got))
			}
			has := strings.Contains(got[0].Evidence[0].Detail, "node-status query")
			if has != tc.want || got[0].Signature.ID != detector.SIDOpenVPNTCP {
				t.Errorf("hint %v want %v, sid %d: %s", has, tc.want, got[0].Signature.ID, got[0].Evidence[0].Detail)
			}
		})
	}
}

func ptr(e detector.Evidence) *detector.Evidence { return &e }

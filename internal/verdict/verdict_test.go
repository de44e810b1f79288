package verdict

import (
	"encoding/json"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
)

var (
	cli = netip.MustParseAddr("10.1.1.2")
	srv = netip.MustParseAddr("192.0.2.7")
	t0  = time.Unix(1800000000, 0)
)

func ev(kind string, w float32, anchor bool, proto uint8, id int64, at time.Duration) detector.Evidence {
	return detector.Evidence{Kind: kind, Weight: w, Anchor: anchor, Mode: "direct", Client: cli, Server: srv,
		Flow: detector.Flow{ID: id, Proto: proto, Client: netip.AddrPortFrom(cli, 40000+uint16(id)), Server: netip.AddrPortFrom(srv, 443), Start: t0.Add(at)},
		Time: t0.Add(at)}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		name       string
		in         []detector.Evidence
		wantAlerts int
		wantFlow   int64
		wantSID    int
	}{
		{"strong shape plus probe", []detector.Evidence{ev("shape", 0.75, true, 6, 1, 0), ev("probe", 0.6, false, 17, 2, 100*time.Millisecond)}, 1, 1, detector.SIDDirect},
		{"probe alone never alerts", []detector.Evidence{ev("probe", 0.6, false, 17, 2, 0), ev("icmp", 0.9, false, 1, 3, 0)}, 0, 0, 0},
		{"same kind does not add up", []detector.Evidence{ev("shape", 0.6, true, 6, 1, 0), ev("shape", 0.6, true, 6, 2, time.Second)}, 0, 0, 0},
		{"one alert per session", []detector.Evidence{ev("shape", 0.75, true, 6, 1, 0), ev("twin", 0.6, true, 6, 2, time.Second), ev("udp", 0.5, true, 17, 3, 2*time.Second)}, 1, 1, detector.SIDDirect},
		{"tcp anchor preferred over udp", []detector.Evidence{ev("udp", 0.6, true, 17, 3, 0), ev("hello", 0.15, false, 6, 1, 0), ev("shape", 0.45, true, 6, 1, time.Second)}, 1, 1, detector.SIDDirect},
		{"new session after the gap", []detector.Evidence{ev("shape", 0.75, true, 6, 1, 0), ev("x", 0.3, false, 6, 1, 0), ev("shape", 0.75, true, 6, 5, 10*time.Minute), ev("x", 0.3, false, 6, 5, 10*time.Minute)}, 2, 1, detector.SIDDirect},
		{"old evidence forgotten", []detector.Evidence{ev("probe", 0.6, false, 17, 2, 0), ev("shape", 0.75, true, 6, 1, 6*time.Minute)}, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Alert
			v := New(Config{Threshold: 1, SessionGap: 2 * time.Minute, Window: 5 * time.Minute, MaxSessions: 16}, func(a Alert) { got = append(got, a) })
			for _, e := range tc.in {
				v.Report(e)
			}
			if len(got) != tc.wantAlerts {
				t.Fatalf("%d alerts, want %d", len(got), tc.wantAlerts)
			}
			if tc.wantAlerts > 0 {
				if got[0].Anchor.Flow.ID != tc.wantFlow || got[0].Signature.ID != tc.wantSID {
					t.Errorf("anchor flow %d sid %d, want %d %d", got[0].Anchor.Flow.ID, got[0].Signature.ID, tc.wantFlow, tc.wantSID)
				}
				if got[0].Confidence <= 0 || got[0].Confidence >= 1 {
					t.Errorf("confidence %v", got[0].Confidence)
				}
			}
		})
	}
}

func TestSingleSignatureDeduplicated(t *testing.T) {
	var n int
	v := New(DefaultConfig(), func(Alert) { n++ })
	e := ev("other", 1, false, 17, 1, 0)
	e.Signature = detector.SIDDirect
	v.Report(e)
	e.Time = e.Time.Add(time.Second)
	v.Report(e)
	if n != 1 {
		t.Errorf("%d alerts, want 1", n)
	}
}

// TestSignaturesFile keeps schemas/signatures.json equal to the table.
func TestSignaturesFile(t *testing.T) {
	b, err := os.ReadFile("../../schemas/signatures.json")
	if err != nil {
		t.Fatal(err)
	}
	var file []detector.Signature
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(detector.Signatures)
	got, _ := json.Marshal(file)
	if string(got) != string(want) {
		t.Errorf("schemas/signatures.json differs from verdict.Signatures:\n%s\nwant\n%s", got, want)
	}
	seen := map[int]bool{}
	for _, s := range detector.Signatures {
		if s.ID < 8700000 || s.ID > 8700999 || seen[s.ID] {
			t.Errorf("signature id %d out of range or duplicated", s.ID)
		}
		seen[s.ID] = true
	}
}

func reportSession(v *Verdict, client, server string, port uint16, at time.Duration) {
	c, s := netip.MustParseAddr(client), netip.MustParseAddr(server)
	e := detector.Evidence{Kind: "shape", Weight: 1.2, Anchor: true, Mode: "direct", Client: c, Server: s, Time: t0.Add(at),
		Flow: detector.Flow{ID: int64(at) + 1, Proto: 6, Client: netip.AddrPortFrom(c, 40000), Server: netip.AddrPortFrom(s, port), Start: t0.Add(at)}}
	e.TLS = &detector.TLSInfo{SNI: "gw.vpn.example.com", Fingerprint: "aa:bb"}
	v.Report(e)
}

func TestPolicy(t *testing.T) {
	tests := []struct {
		name      string
		cfg       func(*Config)
		wantSIDs  []int
		wantExtra string
	}{
		{"no policy", func(*Config) {}, []int{detector.SIDDirect}, ""},
		{"suppressed by address", func(c *Config) {
			c.Allow = []AllowRule{{Name: "corp", CIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Action: "suppress"}}
		}, nil, ""},
		{"downgraded by SNI", func(c *Config) {
			c.Allow = []AllowRule{{Name: "corp", SNIs: []string{"*.vpn.example.com"}, Action: "downgrade"}}
		}, []int{detector.SIDDirect}, "allowlisted"},
		{"downgraded by certificate", func(c *Config) {
			c.Allow = []AllowRule{{Name: "corp", CertSHA1: []string{"AA:BB"}, Action: "downgrade"}}
		}, []int{detector.SIDDirect}, "allowlisted"},
		{"vpn gate list corroborates", func(c *Config) {
			c.VPNGate = map[netip.Addr]string{netip.MustParseAddr("192.0.2.7"): "public-vpn-1"}
		}, []int{detector.SIDDirect}, "vpngate_listed"},
		{"server inside, one client", func(c *Config) {
			c.HomeNets = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		}, []int{detector.SIDDirect, detector.SIDServerInside}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.cfg(&cfg)
			var got []Alert
			v := New(cfg, func(a Alert) { got = append(got, a) })
			reportSession(v, "10.1.1.2", "192.0.2.7", 443, 0)
			var sids []int
			for _, a := range got {
				sids = append(sids, a.Signature.ID)
			}
			if len(sids) != len(tc.wantSIDs) {
				t.Fatalf("signatures %v, want %v", sids, tc.wantSIDs)
			}
			for i := range sids {
				if sids[i] != tc.wantSIDs[i] {
					t.Fatalf("signatures %v, want %v", sids, tc.wantSIDs)
				}
			}
			if tc.wantExtra != "" && got[0].Extra[tc.wantExtra] == nil {
				t.Errorf("metadata %q missing: %v", tc.wantExtra, got[0].Extra)
			}
			if tc.wantExtra == "allowlisted" && got[0].Signature.Severity != 3 {
				t.Errorf("severity %d after downgrade", got[0].Signature.Severity)
			}
		})
	}
}

func TestRelayInside(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HomeNets = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	count := map[int]int{}
	v := New(cfg, func(a Alert) { count[a.Signature.ID]++ })
	for i, c := range []string{"203.0.113.1", "203.0.113.2", "198.51.100.9", "203.0.113.1"} {
		reportSession(v, c, "192.0.2.7", 995, time.Duration(i)*time.Second)
	}
	if count[detector.SIDDirect] != 3 || count[detector.SIDServerInside] != 1 || count[detector.SIDRelayInside] != 1 {
		t.Errorf("alerts by signature %v", count)
	}
}

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

func ev(kind detector.Kind, proto uint8, id int64, at time.Duration) detector.Evidence {
	return evAt(kind, proto, id, at, at)
}

// evAt is evidence found at `at` on a flow that started at `start`.
func evAt(kind detector.Kind, proto uint8, id int64, start, at time.Duration) detector.Evidence {
	return detector.Evidence{Kind: kind, Mode: detector.ModeDirect, Client: cli, Server: srv,
		Flow: detector.Flow{ID: id, Proto: proto, Client: netip.AddrPortFrom(cli, 40000+uint16(id)), Server: netip.AddrPortFrom(srv, 443), Start: t0.Add(start)},
		Time: t0.Add(at)}
}

const (
	sec = time.Second
	ms  = time.Millisecond
)

// connection is the evidence tlsshape reports for one SoftEther TLS
// connection: ClientHello profile, SNI literal, then the reading (primary
// or additional).
func connection(kind detector.Kind, id int64, at time.Duration) []detector.Evidence {
	return []detector.Evidence{ev(detector.KindTLSHello, 6, id, at), ev(detector.KindTLSSNIAddr, 6, id, at),
		ev(kind, 6, id, at+100*ms)}
}

func cat(parts ...[]detector.Evidence) []detector.Evidence {
	var out []detector.Evidence
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		name       string
		in         []detector.Evidence
		wantAlerts int
		wantFlow   int64
		wantSID    int
	}{
		// The default session: a primary connection, its twin 1 s later.
		{"primary then additional connection", cat(connection(detector.KindTLSPrimary, 1, 0), connection(detector.KindTLSAdditional, 2, sec)), 1, 1, detector.SIDDirect},
		{"primary then additional connection 60 s later (last leg of 32, a reconnect's legs)", cat(connection(detector.KindTLSPrimary, 1, 0), connection(detector.KindTLSAdditional, 2, 60*sec)), 1, 1, detector.SIDDirect},
		// Two ordinary connections minutes apart, one with each shape.
		{"additional connection 61 s after the primary", cat(connection(detector.KindTLSPrimary, 1, 0), connection(detector.KindTLSAdditional, 2, 61*sec)), 0, 0, 0},
		{"additional connection 4 min after the primary", cat(connection(detector.KindTLSPrimary, 1, 0), connection(detector.KindTLSAdditional, 2, 4*time.Minute)), 0, 0, 0},
		{"primary plus R-UDP probe flow", cat(connection(detector.KindTLSPrimary, 1, 0), []detector.Evidence{ev(detector.KindRUDPDNSProbe, 17, 2, 100*ms)}), 1, 1, detector.SIDDirect},
		{"primary plus NetBIOS probe from the server", cat(connection(detector.KindTLSPrimary, 1, 0), []detector.Evidence{ev(detector.KindNBNSProbe, 17, 2, 5*ms)}), 1, 1, detector.SIDDirect},
		{"primary without corroborators plus NetBIOS probe: 0.75+0.15", []detector.Evidence{ev(detector.KindTLSPrimary, 6, 1, 0), ev(detector.KindNBNSProbe, 17, 2, 5*ms)}, 0, 0, 0},
		{"single-connection session: primary then its keep-alive rhythm", cat(connection(detector.KindTLSPrimary, 1, 0), []detector.Evidence{ev(detector.KindTLSKeepalive, 6, 1, 20*sec)}), 1, 1, detector.SIDDirect},
		{"udp acceleration flow beside the primary", cat(connection(detector.KindTLSPrimary, 1, 0), []detector.Evidence{ev(detector.KindUDPAccel, 17, 3, 3*sec)}), 1, 1, detector.SIDDirect},
		{"joined mid-session: two connections keeping alive", []detector.Evidence{ev(detector.KindTLSKeepalive, 6, 1, 30*sec), ev(detector.KindTLSKeepalive, 6, 2, 31*sec)}, 1, 1, detector.SIDDirect},
		{"joined mid-session: re-added leg plus keep-alive rhythm", cat(connection(detector.KindTLSAdditional, 2, 0), []detector.Evidence{ev(detector.KindTLSKeepalive, 6, 1, 30*sec)}), 1, 2, detector.SIDDirect},
		{"R-UDP session over ICMP stands alone", []detector.Evidence{ev(detector.KindRUDPOverICMP, 1, 1, 0)}, 1, 1, detector.SIDDirect},
		{"UDP acceleration sustained stands alone", []detector.Evidence{ev(detector.KindUDPAccel, 17, 1, 0), ev(detector.KindUDPAccelSustained, 17, 1, 30*sec)}, 1, 1, detector.SIDUDPAccel},
		{"SSH leg: connect phase, tunnel data and the second leg", []detector.Evidence{ev(detector.KindSSHShape, 6, 1, 0), ev(detector.KindSSHDataPhase, 6, 1, sec), ev(detector.KindSSHRepeat, 6, 1, 2*sec)}, 1, 1, detector.SIDDirect},
		// A web page through a forward: the data after the connect phase
		// adds to that connection's reading only.
		{"SSH leg: connect phase, then the idle rhythm", []detector.Evidence{ev(detector.KindSSHShape, 6, 1, 0), ev(detector.KindSSHIdle, 6, 1, 40*sec)}, 1, 1, detector.SIDDirect},
		// A chat through one SSH connection: the rhythm and its sustained
		// form, nothing else.
		{"SSH leg: the idle rhythm and the same a minute later, alone", []detector.Evidence{ev(detector.KindSSHIdle, 6, 1, 30*sec), ev(detector.KindSSHIdleLong, 6, 1, 90*sec)}, 0, 0, 0},
		{"SSH leg: connect phase and tunnel data alone", []detector.Evidence{ev(detector.KindSSHShape, 6, 1, 0), ev(detector.KindSSHDataPhase, 6, 1, sec)}, 0, 0, 0},

		// One connection alone never alerts, however its readings add up.
		{"one connection: full shape, hello, SNI literal, certificate", cat(connection(detector.KindTLSPrimary, 1, 0), []detector.Evidence{ev(detector.KindTLSCert, 6, 1, 0)}), 0, 0, 0},
		{"one connection: GET probe, full shape, hello", []detector.Evidence{ev(detector.KindTLSGETProbe, 6, 1, 0), ev(detector.KindTLSPrimary, 6, 1, 0), ev(detector.KindTLSHello, 6, 1, 0)}, 0, 0, 0},
		{"one connection: /tcp SNI hint and full shape", []detector.Evidence{ev(detector.KindTLSSNIHint, 6, 1, 0), ev(detector.KindTLSPrimary, 6, 1, 0)}, 0, 0, 0},
		{"one connection: admin and additional readings of the same records", []detector.Evidence{ev(detector.KindTLSAdmin, 6, 1, 0), ev(detector.KindTLSAdditional, 6, 1, 0), ev(detector.KindTLSHello, 6, 1, 0)}, 0, 0, 0},
		// whatsapp_login_call.pcap: two TLS connections to one server, each
		// read as an additional connection, no primary anywhere.
		{"two additional connections without a primary", cat(connection(detector.KindTLSAdditional, 1, 0), connection(detector.KindTLSAdditional, 2, 30*sec)), 0, 0, 0},
		{"two primaries (the same kind counts once)", cat(connection(detector.KindTLSPrimary, 1, 0), connection(detector.KindTLSPrimary, 2, sec)), 0, 0, 0},
		{"primary and an admin login to the same server", cat(connection(detector.KindTLSPrimary, 1, 0), connection(detector.KindTLSAdmin, 2, sec)), 1, 1, detector.SIDAdmin},
		{"corroborators on many flows, no reading", []detector.Evidence{ev(detector.KindTLSHello, 6, 1, 0), ev(detector.KindTLSSNIAddr, 6, 1, 0), ev(detector.KindTLSHello, 6, 2, 0), ev(detector.KindTLSCert, 6, 2, 0), ev(detector.KindHTTPConnectUA, 6, 3, 0)}, 0, 0, 0},
		{"probe flows alone never alert", []detector.Evidence{ev(detector.KindRUDPDNSProbe, 17, 2, 0), ev(detector.KindRUDPICMPProbe, 1, 3, 0)}, 0, 0, 0},
		{"UDP pacing alone is one unit", []detector.Evidence{ev(detector.KindUDPAccel, 17, 1, 0), ev(detector.KindUDPAccelPort, 17, 1, 0)}, 0, 0, 0},
		{"SSH connect phase alone", []detector.Evidence{ev(detector.KindSSHShapeProbe, 6, 1, 0)}, 0, 0, 0},

		// Windows: just inside and just outside.
		{"probe flow just inside the burst window", cat(connection(detector.KindTLSPrimary, 1, 0), []detector.Evidence{ev(detector.KindNBNSProbe, 17, 2, detector.BurstWindow)}), 1, 1, detector.SIDDirect},
		{"probe flow just outside the burst window", cat(connection(detector.KindTLSPrimary, 1, 0), []detector.Evidence{ev(detector.KindNBNSProbe, 17, 2, detector.BurstWindow+ms)}), 0, 0, 0},
		{"evidence just inside the evidence window", []detector.Evidence{ev(detector.KindRUDPDNSProbe, 17, 2, 0), evAt(detector.KindTLSHello, 6, 1, 0, 0),
			evAt(detector.KindTLSSNIAddr, 6, 1, 0, 0), evAt(detector.KindTLSPrimary, 6, 1, 0, detector.EvidenceWindow)}, 1, 1, detector.SIDDirect},
		{"evidence just outside the evidence window", []detector.Evidence{ev(detector.KindRUDPDNSProbe, 17, 2, 0), evAt(detector.KindTLSHello, 6, 1, 0, detector.EvidenceWindow),
			evAt(detector.KindTLSSNIAddr, 6, 1, 0, detector.EvidenceWindow), evAt(detector.KindTLSPrimary, 6, 1, 0, detector.EvidenceWindow+ms)}, 0, 0, 0},
		{"tcp anchor preferred over udp", cat([]detector.Evidence{ev(detector.KindUDPAccel, 17, 3, 0), ev(detector.KindUDPAccelSustained, 17, 3, 0)}, connection(detector.KindTLSPrimary, 1, sec)), 1, 3, detector.SIDUDPAccel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Alert
			v := New(DefaultConfig(), func(a Alert) { got = append(got, a) })
			for _, e := range tc.in {
				switch e.Kind {
				case detector.KindUDPAccel, detector.KindUDPAccelSustained:
					e.Mode = detector.ModeUDPAccel
				case detector.KindTLSAdmin:
					e.Mode = detector.ModeAdmin
				}
				v.Report(e)
			}
			if len(got) != tc.wantAlerts {
				t.Fatalf("%d alerts, want %d (%+v)", len(got), tc.wantAlerts, got)
			}
			if tc.wantAlerts > 0 {
				if got[0].Anchor.Flow.ID != tc.wantFlow || got[0].Signature.ID != tc.wantSID {
					t.Errorf("anchor flow %d sid %d, want %d %d", got[0].Anchor.Flow.ID, got[0].Signature.ID, tc.wantFlow, tc.wantSID)
				}
				if got[0].Confidence <= 0 || got[0].Confidence >= 1 || got[0].Units < detector.MinUnits {
					t.Errorf("confidence %v units %d", got[0].Confidence, got[0].Units)
				}
			}
		})
	}
}

// TestOneFlowNeverAlerts: whatever a single flow reports, in any order and
// however often, it never raises a session alert, except the self-proving
// R-UDP sessions and behaviour that lasts (a reading plus its own rhythm).
func TestOneFlowNeverAlerts(t *testing.T) {
	var kinds []detector.Kind
	for _, s := range detector.Kinds {
		switch s.Class {
		case detector.ClassReading, detector.ClassCorroborator, detector.ClassSideFlow, detector.ClassSecondReading:
			kinds = append(kinds, s.Kind)
		}
	}
	var got []Alert
	v := New(DefaultConfig(), func(a Alert) { got = append(got, a) })
	for i := 0; i < 3; i++ {
		for _, k := range kinds {
			if k == detector.KindSSHRepeat {
				continue // a second SoftEther connection inside one SSH flow: two units by construction
			}
			v.Report(ev(k, 6, 1, time.Duration(i)*sec))
		}
	}
	if len(got) != 0 {
		t.Errorf("one flow's connect-phase readings raised %d alerts: %+v", len(got), got[0].Evidence)
	}
}

// TestSessionLivesWithItsFlows: one alert for a session however long its
// flows live; a new session only after its last flow ended and the gap
// passed; the flow event sums the session up.
func TestSessionLivesWithItsFlows(t *testing.T) {
	gap := detector.SessionGap
	tests := []struct {
		name       string
		endAt      time.Duration // when the session's flows end (0: never)
		againAt    time.Duration // when a second connect phase comes
		wantAlerts int
		wantEnds   int
	}{
		{"long session, legs re-added an hour later", 0, time.Hour, 1, 0},
		{"flows ended, reconnect just inside the gap", 10 * sec, 10*sec + gap, 1, 0},
		{"flows ended, reconnect just outside the gap", 10 * sec, 10*sec + gap + ms, 2, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var alerts []Alert
			var ends []SessionEnd
			v := New(DefaultConfig(), func(a Alert) { alerts = append(alerts, a) })
			v.OnSessionEnd(func(e SessionEnd) { ends = append(ends, e) })
			for _, e := range cat(connection(detector.KindTLSPrimary, 1, 0), connection(detector.KindTLSAdditional, 2, sec)) {
				v.Report(e)
			}
			if tc.endAt > 0 {
				for id := int64(1); id <= 2; id++ {
					f := ev(detector.KindTLSPrimary, 6, id, 0).Flow
					f.PktsToServer, f.BytesToServer, f.PktsToClient, f.BytesToClient = 10, 1000, 20, 5000
					v.FlowEnded(f, t0.Add(tc.endAt), "timeout")
				}
				v.Expire(t0.Add(tc.againAt - ms))
			}
			for _, e := range cat(connection(detector.KindTLSPrimary, 3, tc.againAt), connection(detector.KindTLSAdditional, 4, tc.againAt+sec)) {
				v.Report(e)
			}
			if len(alerts) != tc.wantAlerts || len(ends) != tc.wantEnds {
				t.Fatalf("%d alerts %d ends, want %d %d", len(alerts), len(ends), tc.wantAlerts, tc.wantEnds)
			}
			if tc.wantEnds > 0 {
				e := ends[0]
				if e.PktsToServer != 20 || e.BytesToClient != 10000 || e.Anchor.ID != 1 || len(e.Flows) != 2 ||
					!e.Start.Equal(t0) || !e.End.Equal(t0.Add(tc.endAt)) || e.Signature.ID != detector.SIDDirect {
					t.Errorf("session end %+v", e)
				}
			}
		})
	}
}

// TestFlushEndsSessions: at the end of a capture every alerted session
// whose flows have ended is summed up once, in flow order.
func TestFlushEndsSessions(t *testing.T) {
	var ends []SessionEnd
	v := New(DefaultConfig(), func(Alert) {})
	v.OnSessionEnd(func(e SessionEnd) { ends = append(ends, e) })
	for _, e := range cat(connection(detector.KindTLSPrimary, 1, 0), connection(detector.KindTLSAdditional, 2, sec)) {
		v.Report(e)
	}
	v.FlowEnded(ev(detector.KindTLSPrimary, 6, 1, 0).Flow, t0.Add(30*sec), "shutdown")
	if len(ends) != 0 {
		t.Fatalf("session ended while flow 2 is live")
	}
	v.FlowEnded(ev(detector.KindTLSPrimary, 6, 2, 0).Flow, t0.Add(31*sec), "shutdown")
	v.Flush()
	if len(ends) != 1 || ends[0].Reason != "shutdown" || !ends[0].End.Equal(t0.Add(31*sec)) {
		t.Fatalf("ends %+v", ends)
	}
	if v.Sessions() != 0 {
		t.Errorf("%d sessions left", v.Sessions())
	}
}

// TestEvictionKeepsAlertedSessions: when the session table is full the
// sessions dropped are those not yet alerted.
func TestEvictionKeepsAlertedSessions(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessions = 4
	var alerts int
	v := New(cfg, func(Alert) { alerts++ })
	for _, e := range cat(connection(detector.KindTLSPrimary, 1, 0), connection(detector.KindTLSAdditional, 2, sec)) {
		v.Report(e)
	}
	for i := 0; i < 50; i++ {
		e := ev(detector.KindTLSHello, 6, int64(100+i), time.Duration(i)*sec)
		e.Client = netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})
		v.Report(e)
	}
	// The alerted session is still there: more of its evidence raises nothing.
	for _, e := range connection(detector.KindTLSAdditional, 5, time.Minute) {
		v.Report(e)
	}
	if alerts != 1 || v.Sessions() > 4 {
		t.Errorf("%d alerts, %d sessions", alerts, v.Sessions())
	}
}

func TestSingleSignatureDeduplicated(t *testing.T) {
	var n int
	v := New(DefaultConfig(), func(Alert) { n++ })
	e := ev("vpn.protocol", 17, 1, 0)
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
	for i, k := range []detector.Kind{detector.KindTLSPrimary, detector.KindTLSAdditional} {
		e := detector.Evidence{Kind: k, Mode: detector.ModeDirect, Client: c, Server: s, Time: t0.Add(at),
			Flow: detector.Flow{ID: int64(at)*2 + int64(i) + 1, Proto: 6, Client: netip.AddrPortFrom(c, 40000+uint16(i)), Server: netip.AddrPortFrom(s, port), Start: t0.Add(at)}}
		e.TLS = &detector.TLSInfo{SNI: "gw.vpn.example.com", Fingerprint: "aa:bb"}
		v.Report(e)
	}
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

// TestRUDPRaceBesideTCP: the R-UDP exchange a client runs over ICMP beside
// its TCP connect is one unit of the TCP session, not a session of its own
// that would take the session's one alert; alone it is the session.
func TestRUDPRaceBesideTCP(t *testing.T) {
	race := ev(detector.KindRUDPOverICMP, 1, 9, 50*ms)
	race.Mode = detector.ModeOverICMP
	tests := []struct {
		name    string
		in      []detector.Evidence
		wantSID int
	}{
		{"race beside a TCP connection still in its handshake", cat([]detector.Evidence{ev(detector.KindTLSHello, 6, 1, 0), race},
			connection(detector.KindTLSPrimary, 1, 100*ms)), detector.SIDDirect},
		{"R-UDP over ICMP alone", []detector.Evidence{race}, detector.SIDOverICMP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Alert
			v := New(DefaultConfig(), func(a Alert) { got = append(got, a) })
			for _, e := range tc.in {
				v.Report(e)
			}
			if len(got) != 1 || got[0].Signature.ID != tc.wantSID {
				t.Fatalf("alerts %+v, want one %d", got, tc.wantSID)
			}
		})
	}
}

// TestRepeatedOpeningDoesNotCount: connections where one side repeats its
// half of the first exchanges (the server's hello of the same size, or the
// client's two records a few bytes apart) are one exchange repeated by
// other software, not SoftEther's connections, which pad all of them at
// random each time; their readings make no session, whichever kinds they
// are read as and however many follow. Openings that differ do.
func TestRepeatedOpeningDoesNotCount(t *testing.T) {
	opened := func(kind detector.Kind, id int64, at time.Duration, o detector.Opening) []detector.Evidence {
		evs := connection(kind, id, at)
		evs[len(evs)-1].Opening = o
		return evs
	}
	a, b := detector.Opening{Watermark: 1912, Second: 551, Hello: 943}, detector.Opening{Watermark: 1911, Second: 551, Hello: 943}
	c := detector.Opening{Watermark: 2379, Second: 3100, Hello: 990}
	tests := []struct {
		name string
		in   []detector.Evidence
		want int
	}{
		{"primary and additional, openings differ", cat(opened(detector.KindTLSPrimary, 1, 0, a), opened(detector.KindTLSAdditional, 2, sec, c)), 1},
		{"primary and additional opening alike", cat(opened(detector.KindTLSPrimary, 1, 0, a), opened(detector.KindTLSAdditional, 2, sec, b)), 0},
		{"two additionals alike, then a primary", cat(opened(detector.KindTLSAdditional, 1, 0, a), opened(detector.KindTLSAdditional, 2, sec, b),
			opened(detector.KindTLSPrimary, 3, 2*sec, c)), 0},
		// A server answering requests of other sizes with the same
		// response (an API client's two requests per connection).
		{"the same hello, the client's records of other sizes", cat(opened(detector.KindTLSPrimary, 1, 0, c),
			opened(detector.KindTLSAdditional, 2, sec, detector.Opening{Watermark: 1912, Second: 700, Hello: 990})), 0},
		// A client repeating its requests, the server's answers changing.
		{"the same requests, hellos differ, then an additional", cat(opened(detector.KindTLSPrimary, 1, 0, c),
			opened(detector.KindTLSPrimary, 2, sec, detector.Opening{Watermark: 2379 + 16, Second: 3100 - 16, Hello: 1200}),
			opened(detector.KindTLSAdditional, 3, 2*sec, detector.Opening{Watermark: 1700, Second: 900, Hello: 700})), 0},
		{"watermarks 17 bytes apart, the same second record, hellos differ", cat(opened(detector.KindTLSPrimary, 1, 0, c),
			opened(detector.KindTLSAdditional, 2, sec, detector.Opening{Watermark: 2379 + 17, Second: 3100, Hello: 1200})), 1},
		{"the same watermark, second records and hellos differ", cat(opened(detector.KindTLSPrimary, 1, 0, c),
			opened(detector.KindTLSAdditional, 2, sec, detector.Opening{Watermark: 2379, Second: 900, Hello: 991})), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			v := New(DefaultConfig(), func(Alert) { n++ })
			for _, e := range tc.in {
				v.Report(e)
			}
			if n != tc.want {
				t.Errorf("%d alerts, want %d", n, tc.want)
			}
		})
	}
}

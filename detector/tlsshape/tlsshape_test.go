package tlsshape

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/membudget"
	"github.com/sewatch/sewatch/internal/tlsstream"
)

type sink struct{ ev []detector.Evidence }

func (s *sink) Report(e detector.Evidence) { s.ev = append(s.ev, e) }

// best is the strongest connect-phase reading reported, and whether the
// GET probe was seen beside it.
func (s *sink) best() (kind detector.Kind, mode detector.Mode, probe bool) {
	var w float32
	for _, e := range s.ev {
		spec := detector.SpecOf(e.Kind)
		if e.Kind == detector.KindTLSGETProbe {
			probe = true
		}
		if spec.Class == detector.ClassReading && spec.Weight >= w {
			kind, mode, w = e.Kind, e.Mode, spec.Weight
		}
	}
	return
}

// TestShape feeds application-data record sizes (client "c", server "s",
// in wire order) and checks what the connect-phase matcher concludes.
func TestShape(t *testing.T) {
	type rec struct {
		dir  byte
		size int
	}
	tests := []struct {
		name      string
		recs      []rec
		wantKind  detector.Kind
		wantMode  detector.Mode
		wantProbe bool
	}{
		{"5.01 primary with GET probe (se-direct-443)", []rec{{'c', 269}, {'s', 74}, {'s', 74}, {'s', 469}, {'c', 2161}, {'s', 1174}, {'c', 3403}, {'s', 3348}},
			detector.KindTLSPrimary, detector.ModeDirect, true},
		{"current build primary, no probe (via proxy)", []rec{{'s', 74}, {'s', 74}, {'c', 2374}, {'s', 586}, {'c', 2924}, {'s', 2112}},
			detector.KindTLSPrimary, detector.ModeDirect, false},
		{"additional connection", []rec{{'c', 2299}, {'s', 74}, {'s', 74}, {'s', 801}, {'c', 964}, {'s', 1129}},
			detector.KindTLSAdditional, detector.ModeDirect, false},
		{"vpncmd admin", []rec{{'c', 269}, {'s', 74}, {'s', 74}, {'s', 469}, {'c', 3463}, {'s', 1088}, {'c', 1513}, {'s', 850}},
			detector.KindTLSAdmin, detector.ModeAdmin, true},
		{"vpncmd admin answered by a short pencore-only PACK (lab)", []rec{{'c', 271}, {'s', 471}, {'c', 3344}, {'s', 587}, {'c', 1293}, {'s', 233}},
			detector.KindTLSAdmin, detector.ModeAdmin, true},
		{"vpncmd admin login with long padding (lab, 1616 B)", []rec{{'c', 271}, {'s', 471}, {'c', 1663}, {'s', 658}, {'c', 1616}, {'s', 667}},
			detector.KindTLSAdmin, detector.ModeAdmin, true},
		{"vpncmd admin without probe, answer below any additional_connect answer", []rec{{'c', 3344}, {'s', 587}, {'c', 1293}, {'s', 233}},
			detector.KindTLSAdmin, detector.ModeAdmin, false},
		{"watermark and hello only: no reading", []rec{{'c', 2161}, {'s', 1174}},
			"", "", false},
		{"browser GET then page", []rec{{'c', 517}, {'s', 1400}, {'c', 90}, {'s', 16401}},
			"", "", false},
		{"API upload 2 KB answered by 5 KB", []rec{{'c', 2100}, {'s', 5200}, {'c', 3000}, {'s', 300}},
			"", "", false},
		{"client side only (asymmetric tap)", []rec{{'c', 269}, {'c', 2161}, {'c', 3403}, {'c', 367}},
			detector.KindTLSClientOnly, detector.ModeDirect, false},
		{"client side only, additional connection", []rec{{'c', 2299}, {'c', 964}, {'c', 300}},
			detector.KindTLSClientOnlyAdd, detector.ModeDirect, false},
		{"look-alike upload: watermark and hello sizes, then neither login nor additional_connect", []rec{{'c', 2500}, {'s', 700}, {'c', 1200}, {'s', 200}},
			"", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &Inspector{cliFin: true, shDone: true, certDone: true, srvTLS: true}
			if strings.HasPrefix(tc.name, "client side only") {
				in.srvTLS = false
			}
			s := &sink{}
			f := &detector.Flow{Proto: decode.ProtoTCP}
			p := &decode.Packet{Time: time.Unix(1, 0)}
			for _, r := range tc.recs {
				if r.dir == 'c' {
					in.clientRecord(tlsstream.Record{Type: tlsstream.TypeApplicationData, Length: r.size}, p, f, s)
				} else {
					in.serverRecord(tlsstream.Record{Type: tlsstream.TypeApplicationData, Length: r.size}, p, f, s)
				}
			}
			kind, mode, probe := s.best()
			if kind != tc.wantKind || mode != tc.wantMode || probe != tc.wantProbe {
				t.Errorf("got %q %q probe=%v, want %q %q probe=%v", kind, mode, probe, tc.wantKind, tc.wantMode, tc.wantProbe)
			}
			// A reading with both sides seen carries its first exchange
			// (the verdict compares connections by it); one of the client
			// side only does not.
			for _, e := range s.ev {
				if detector.SpecOf(e.Kind).Class != detector.ClassReading {
					continue
				}
				if want := openings[tc.name]; e.Opening != want {
					t.Errorf("%s: opening %+v, want %+v", e.Kind, e.Opening, want)
				}
			}
		})
	}
}

// openings are TestShape's readings' first exchanges (watermark, second record, hello).
var openings = map[string]detector.Opening{
	"5.01 primary with GET probe (se-direct-443)":                            {Watermark: 2161, Second: 3403, Hello: 1174},
	"current build primary, no probe (via proxy)":                            {Watermark: 2374, Second: 2924, Hello: 586},
	"additional connection":                                                  {Watermark: 2299, Second: 964, Hello: 801},
	"vpncmd admin":                                                           {Watermark: 3463, Second: 1513, Hello: 1088},
	"vpncmd admin answered by a short pencore-only PACK (lab)":               {Watermark: 3344, Second: 1293, Hello: 587},
	"vpncmd admin login with long padding (lab, 1616 B)":                     {Watermark: 1663, Second: 1616, Hello: 658},
	"vpncmd admin without probe, answer below any additional_connect answer": {Watermark: 3344, Second: 1293, Hello: 587},
}

func TestConnectFingerprint(t *testing.T) {
	const ua = "User-Agent: Mozilla/5.0 (Windows NT 6.3; WOW64; rv:29.0) Gecko/20100101 Firefox/29.0\r\n"
	tests := []struct {
		name string
		req  string
		want detector.Kind
	}{
		{"softether", "CONNECT 198.18.2.2:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: 198.18.2.2\r\nPragma: no-cache\r\nProxy-Connection: Keep-Alive\r\n" + ua + "\r\n", detector.KindHTTPConnectUA},
		{"softether with auth", "CONNECT vpn.example:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: vpn.example\r\nPragma: no-cache\r\nProxy-Authorization: Basic dTpw\r\nProxy-Connection: Keep-Alive\r\n" + ua + "\r\n", detector.KindHTTPConnectUA},
		{"custom user agent", "CONNECT 198.18.2.2:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: 198.18.2.2\r\nPragma: no-cache\r\nProxy-Connection: Keep-Alive\r\nUser-Agent: corp\r\n\r\n", detector.KindHTTPConnect},
		{"curl", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: curl/7.88.1\r\nProxy-Connection: Keep-Alive\r\n\r\n", ""},
		{"host with port", "CONNECT 198.18.2.2:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: 198.18.2.2:443\r\nPragma: no-cache\r\nProxy-Connection: Keep-Alive\r\n" + ua + "\r\n", ""},
		{"unterminated", "CONNECT 198.18.2.2:443 HTTP/1.0\r\nContent-Length: 0\r\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := ConnectFingerprint([]byte(tc.req)); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// Keep-alive gaps of an idle SoftEther session, as the corpus's idle
// capture has them (se-idle-keepalive.pcap, seconds): spans of
// max(rand() % 10 s, 4 s) plus the session loop's latency.
var (
	seClientGaps = []float64{8.21, 4.10, 7.45, 4.10, 7.44, 4.11, 5.90, 4.10, 9.23}
	seServerGaps = []float64{5.13, 4.36, 6.16, 4.11, 7.95, 9.75, 5.13, 4.10, 4.10}
)

// rhythmEvent is one application-data record of a keep-alive test.
type rhythmEvent struct {
	at     float64 // seconds
	client bool
	length int
}

// timed lays out records at the given gaps from start, one direction.
func timed(start float64, gaps []float64, client bool) []rhythmEvent {
	evs := []rhythmEvent{{at: start, client: client, length: 60}}
	at := start
	for i, g := range gaps {
		at += g
		evs = append(evs, rhythmEvent{at: at, client: client, length: 40 + (i*97)%480})
	}
	return evs
}

// keepaliveRecognised feeds the records in time order to an inspector of a
// connection joined mid-session and reports whether it saw the rhythm.
func keepaliveRecognised(evs []rhythmEvent) bool {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	in := &Inspector{midstream: true}
	s := &sink{}
	f := &detector.Flow{Proto: decode.ProtoTCP, Client: netip.MustParseAddrPort("10.0.0.1:40000")}
	t0 := time.Unix(1000, 0)
	for _, e := range evs {
		p := &decode.Packet{Time: t0.Add(time.Duration(e.at * float64(time.Second)))}
		r := tlsstream.Record{Type: tlsstream.TypeApplicationData, Length: e.length}
		if e.client {
			in.clientRecord(r, p, f, s)
		} else {
			in.serverRecord(r, p, f, s)
		}
	}
	for _, e := range s.ev {
		if e.Kind == detector.KindTLSKeepalive && e.Mode == detector.ModeMidSession {
			return true
		}
	}
	return false
}

// TestKeepaliveRhythm: SoftEther's unanswered keep-alives both ways are
// recognised without a handshake, once five follow one another on each side
// with a floor span among them; records sent sooner in between, a missing
// floor span on a side, answered records (long polling) and records of one
// size (SoftEther's are rand() % 512 bytes long) are not.
func TestKeepaliveRhythm(t *testing.T) {
	join := func(parts ...[]rhythmEvent) []rhythmEvent {
		var all []rhythmEvent
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	se := func() []rhythmEvent { return join(timed(0, seClientGaps, true), timed(2.1, seServerGaps, false)) }
	// chatter adds a record of the same side 1.5 s after every third
	// keep-alive, as an application's own messages would.
	chatter := func(evs []rhythmEvent) []rhythmEvent {
		var more []rhythmEvent
		for i, e := range evs {
			if i%3 == 2 {
				more = append(more, rhythmEvent{at: e.at + 1.5, client: e.client, length: 120})
			}
		}
		return append(evs, more...)
	}
	// answered: each client record answered by the server 20 ms later.
	answered := func() []rhythmEvent {
		c := timed(0, seClientGaps, true)
		var evs []rhythmEvent
		for _, e := range c {
			evs = append(evs, e, rhythmEvent{at: e.at + 0.02, length: 50 + e.length/3})
		}
		return evs
	}
	// oneSize gives every record the same length, as protocols of
	// fixed-size cells do: Tor's channel padding, for one, sends a
	// 514-byte cell (a 531-byte TLS 1.3 record) from each side on timers
	// of its own, never answered.
	oneSize := func(evs []rhythmEvent, n int) []rhythmEvent {
		for i := range evs {
			evs[i].length = n
		}
		return evs
	}
	noFloor := []float64{5.0, 6.2, 7.1, 8.3, 5.5, 6.6, 9.0, 7.7, 6.1}
	for _, tc := range []struct {
		name string
		evs  []rhythmEvent
		want bool
	}{
		{"idle SoftEther session (corpus gaps)", se(), true},
		{"exactly five in a row each way", join(timed(0, seClientGaps[:5], true), timed(2.1, seServerGaps[:5], false)), true},
		{"four in a row each way", join(timed(0, seClientGaps[:4], true), timed(2.1, seServerGaps[:4], false)), false},
		{"a record 1.5 s after every third, both sides", chatter(se()), false},
		{"a record 1.5 s after every third, server side only", join(timed(0, seClientGaps, true), chatter(timed(2.1, seServerGaps, false))), false},
		{"no gap at the timer's 4-s floor", join(timed(0, noFloor, true), timed(2.1, noFloor, false)), false},
		{"floor spans on the client's side only", join(timed(0, seClientGaps, true), timed(2.1, noFloor, false)), false},
		{"request/answer pairs", answered(), false},
		{"one record size each way (fixed-size cells at SoftEther's gaps)", oneSize(se(), 531), false},
	} {
		if got := keepaliveRecognised(tc.evs); got != tc.want {
			t.Errorf("%s: recognised %v, want %v", tc.name, got, tc.want)
		}
	}
}

// tcpSeg builds a TCP packet for Inspect.
func tcpSeg(seq uint32, payload []byte, at time.Time) *decode.Packet {
	return &decode.Packet{Proto: decode.ProtoTCP, Seq: seq, Payload: payload, Time: at,
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), SrcPort: 40000, DstPort: 443}
}

// TestInspectAllocs: following records of an established connection
// allocates nothing.
func TestInspectAllocs(t *testing.T) {
	in := &Inspector{midstream: true}
	f := &detector.Flow{Proto: decode.ProtoTCP}
	s := &sink{}
	rec := make([]byte, 5+300)
	rec[0], rec[1], rec[2] = 23, 3, 3
	binary.BigEndian.PutUint16(rec[3:], 300)
	seq := uint32(1000)
	at := time.Unix(1, 0)
	in.Inspect(tcpSeg(seq, rec, at), true, f, s)
	p := tcpSeg(seq, rec, at)
	n := testing.AllocsPerRun(1000, func() {
		seq += uint32(len(rec))
		at = at.Add(time.Millisecond)
		p.Seq, p.Time = seq, at
		in.Inspect(p, true, f, s)
	})
	if n != 0 {
		t.Errorf("%v allocations per segment", n)
	}
}

var fuzzMem = &membudget.Account{B: membudget.New(membudget.MinBytes, nil), L: &membudget.Holders{}}

func FuzzInspect(f *testing.F) {
	ch := []byte{22, 3, 1, 0, 10, 1, 0, 0, 6, 3, 3, 0, 0, 0, 0}
	f.Add(ch, []byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, uint32(1))
	f.Add([]byte("CONNECT a:443 HTTP/1.0\r\n\r\n"), []byte("HTTP/1.0 200 OK\r\n\r\n"), uint32(7))
	f.Fuzz(func(t *testing.T, c, s []byte, seq uint32) {
		// A small budget shared by every input: buffers are pooled, shed
		// and reused across connections.
		fl := &detector.Flow{Proto: decode.ProtoTCP, Mem: fuzzMem}
		in := Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, fl).(*Inspector)
		defer in.Release()
		sk := &sink{}
		at := time.Unix(1, 0)
		for i := 0; i < 4; i++ {
			in.Inspect(tcpSeg(seq+uint32(i*len(c)), c, at), true, fl, sk)
			in.Inspect(tcpSeg(seq*3+uint32(i*len(s)), s, at), false, fl, sk)
			at = at.Add(5 * time.Second)
		}
	})
}

// TestOneConnectionNeverAlerts replays single TLS connections that once
// raised a session alert on their own (record sizes from public captures)
// and SoftEther's own primary connection: whatever one connection reads as,
// the verdict's rules (detector.Score) need a second unit.
func TestOneConnectionNeverAlerts(t *testing.T) {
	type rec struct {
		dir  byte
		size int
	}
	tests := []struct {
		name string
		recs []rec
	}{
		// nDPI's whatsapp_login_call.pcap, TLS to an Apple server.
		{"Apple server: watermark-, hello-, additional_connect-sized records", []rec{{'c', 1912}, {'s', 943}, {'c', 551}, {'s', 341}}},
		// A TLS 1.0 analytics connection from a public malware-traffic capture.
		{"analytics beacon: 1552 / 1168 / 1584 / 288", []rec{{'c', 1552}, {'s', 1168}, {'c', 1584}, {'s', 288}}},
		{"SoftEther primary connection with GET probe", []rec{{'c', 269}, {'s', 469}, {'c', 2161}, {'s', 1174}, {'c', 3403}, {'s', 3348}}},
		{"vpncmd admin login", []rec{{'c', 271}, {'s', 471}, {'c', 3344}, {'s', 587}, {'c', 1293}, {'s', 233}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &Inspector{cliFin: true, shDone: true, certDone: true, srvTLS: true}
			s := &sink{}
			f := &detector.Flow{ID: 7, Proto: decode.ProtoTCP}
			p := &decode.Packet{Time: time.Unix(1, 0)}
			// Everything the ClientHello and certificate could add as well.
			for _, k := range []detector.Kind{detector.KindTLSHello, detector.KindTLSSNIAddr, detector.KindTLSCert} {
				s.Report(in.evidence(p, f, k, "corroborator"))
			}
			for _, r := range tc.recs {
				if r.dir == 'c' {
					in.clientRecord(tlsstream.Record{Type: tlsstream.TypeApplicationData, Length: r.size}, p, f, s)
				} else {
					in.serverRecord(tlsstream.Record{Type: tlsstream.TypeApplicationData, Length: r.size}, p, f, s)
				}
			}
			if sc := detector.Score(s.ev); sc.Alerts() || sc.Count > 1 {
				t.Errorf("one connection scored %.2f in %d units: %+v", sc.Total, sc.Count, sc.Used)
			}
		})
	}
}

// TestLiveness: after a primary connect phase on a connection that showed
// SoftEther's own bytes (here its CONNECT request through a proxy), both
// sides sending at least every 10.5 s for 30 s is the keep-alive's promise
// (liveness); a longer silence, a shorter span, no primary connect phase,
// or the sizes without SoftEther's own bytes (an API client polling every
// 5 s whose first exchanges fall in the windows) is not.
func TestLiveness(t *testing.T) {
	type rec struct {
		dir  byte
		size int
	}
	primary := []rec{{'c', 2374}, {'s', 586}, {'c', 2924}, {'s', 2112}}
	tests := []struct {
		name     string
		connect  []rec
		gap      time.Duration // between one side's records
		span     time.Duration
		viaProxy bool // through a proxy, with SoftEther's CONNECT request
		want     bool
	}{
		{"primary, records every 10.5 s for 31.5 s", primary, 10500 * time.Millisecond, 31500 * time.Millisecond, true, true},
		{"primary, records every 5 s for 30 s", primary, 5 * time.Second, 30 * time.Second, true, true},
		{"primary, one side silent 10.6 s", primary, 10600 * time.Millisecond, 42400 * time.Millisecond, true, false},
		{"primary, records every 5 s for 25 s", primary, 5 * time.Second, 25 * time.Second, true, false},
		{"no connect phase, records every 5 s for 60 s", []rec{{'c', 517}, {'s', 1400}, {'c', 90}, {'s', 16401}}, 5 * time.Second, time.Minute, true, false},
		{"primary sizes without SoftEther's bytes (API poller), every 5 s for 60 s", primary, 5 * time.Second, time.Minute, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &Inspector{cliFin: true, shDone: true, certDone: true, srvTLS: true}
			s := &sink{}
			f := &detector.Flow{Proto: decode.ProtoTCP}
			t0 := time.Unix(1000, 0)
			p := &decode.Packet{Time: t0}
			if tc.viaProxy {
				p.Payload = []byte("CONNECT 198.18.2.2:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: 198.18.2.2\r\nPragma: no-cache\r\n" +
					"Proxy-Connection: Keep-Alive\r\nUser-Agent: Mozilla/5.0 (Windows NT 6.3; WOW64; rv:29.0) Gecko/20100101 Firefox/29.0\r\n\r\n")
				in.classifyFirst(p, f, s)
				p.Payload = nil
			}
			feed := func(r rec) {
				if r.dir == 'c' {
					in.clientRecord(tlsstream.Record{Type: tlsstream.TypeApplicationData, Length: r.size}, p, f, s)
				} else {
					in.serverRecord(tlsstream.Record{Type: tlsstream.TypeApplicationData, Length: r.size}, p, f, s)
				}
			}
			for _, r := range tc.connect {
				feed(r)
			}
			for at := tc.gap; at <= tc.span; at += tc.gap {
				p.Time = t0.Add(at)
				feed(rec{'s', 151})
				feed(rec{'c', 67}) // answered at once: liveness counts any record

			}
			got := false
			for _, e := range s.ev {
				got = got || e.Kind == detector.KindTLSLiveness
			}
			if got != tc.want {
				t.Errorf("liveness %v, want %v", got, tc.want)
			}
			if sc := detector.Score(s.ev); sc.Alerts() != tc.want {
				t.Errorf("one connection alerts %v (score %.2f, %d units), want %v", sc.Alerts(), sc.Total, sc.Count, tc.want)
			}
		})
	}
}

// connectFingerprintRef is ConnectFingerprint as first written (strings
// split and joined): the zero-allocation matcher must agree with it on
// every input (FuzzConnectFingerprint).
func connectFingerprintRef(b []byte) detector.Kind {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return ""
	}
	lines := strings.Split(string(b[:end]), "\r\n")
	if len(lines) < 2 || !strings.HasSuffix(lines[0], " HTTP/1.0") {
		return ""
	}
	var names []string
	ua := ""
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return ""
		}
		names = append(names, strings.ToLower(k))
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "user-agent":
			ua = v
		case "host":
			if strings.Contains(v, "]:") || (strings.Count(v, ":") == 1) {
				return ""
			}
		case "content-length":
			if v != "0" {
				return ""
			}
		case "pragma":
			if v != "no-cache" {
				return ""
			}
		case "proxy-connection":
			if !strings.EqualFold(v, "Keep-Alive") {
				return ""
			}
		}
	}
	got := strings.Join(names, ",")
	if got != "content-length,host,pragma,proxy-connection,user-agent" && got != "content-length,host,pragma,proxy-authorization,proxy-connection,user-agent" {
		return ""
	}
	if ua == "Mozilla/5.0 (Windows NT 6.3; WOW64; rv:29.0) Gecko/20100101 Firefox/29.0" {
		return detector.KindHTTPConnectUA
	}
	return detector.KindHTTPConnect
}

// FuzzConnectFingerprint: the matcher agrees with the reference on any
// request, and allocates nothing.
func FuzzConnectFingerprint(f *testing.F) {
	const ua = "User-Agent: Mozilla/5.0 (Windows NT 6.3; WOW64; rv:29.0) Gecko/20100101 Firefox/29.0\r\n"
	for _, s := range []string{
		"CONNECT 198.18.2.2:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: 198.18.2.2\r\nPragma: no-cache\r\nProxy-Connection: Keep-Alive\r\n" + ua + "\r\n",
		"CONNECT vpn.example:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: vpn.example\r\nPragma: no-cache\r\nProxy-Authorization: Basic dTpw\r\nProxy-Connection: Keep-Alive\r\n" + ua + "\r\n",
		"CONNECT x:443 HTTP/1.0\r\nContent-Length: 0\r\nHost,Pragma: x\r\nProxy-Connection: keep-alive\r\nUser-Agent: a\r\n\r\n",
		"CONNECT x:443 HTTP/1.0\r\nCONTENT-LENGTH:0\r\nhost: [::1]:4\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, why := ConnectFingerprint(b)
		if want := connectFingerprintRef(b); got != want {
			t.Fatalf("%q: got %q, reference %q", b, got, want)
		}
		if (got == "") != (why == "") {
			t.Fatalf("kind %q with reason %q", got, why)
		}
		if n := testing.AllocsPerRun(1, func() { ConnectFingerprint(b) }); n != 0 {
			t.Fatalf("%v allocations", n)
		}
	})
}

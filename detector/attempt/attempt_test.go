package attempt

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/membudget"
)

// helloRecord wraps a ClientHello from the tlshello test data (SoftEther's
// own, or curl's with ALPN) in a TLS record.
func helloRecord(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../internal/tlshello/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	body, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{22, 3, 1, byte(len(body) >> 8), byte(len(body))}, body...)
}

// appData is one application-data record of n bytes.
func appData(n int) []byte {
	r := make([]byte, 5+n)
	r[0], r[1], r[2] = 23, 3, 3
	binary.BigEndian.PutUint16(r[3:], uint16(n))
	return r
}

const softetherConnect = "CONNECT 198.18.202.2:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: 198.18.202.2\r\nPragma: no-cache\r\n" +
	"Proxy-Connection: Keep-Alive\r\nUser-Agent: Mozilla/5.0 (Windows NT 6.3; WOW64; rv:29.0) Gecko/20100101 Firefox/29.0\r\n\r\n"

const curlConnect = "CONNECT 198.18.202.2:443 HTTP/1.1\r\nHost: 198.18.202.2:443\r\nUser-Agent: curl/7.88.1\r\nProxy-Connection: Keep-Alive\r\n\r\n"

// step is one segment of a scripted connection: who sends what, when
// (offset from the connection's start), with which TCP flags.
type step struct {
	toServer bool
	at       time.Duration
	data     []byte
	flags    uint8
}

// conn plays one connection from port to the detector.
type conn struct {
	steps []step
}

func (c conn) play(d *Detector, s *sink, port uint16, start time.Time) {
	cli := netip.AddrPortFrom(netip.MustParseAddr("198.18.201.2"), port)
	srv := netip.MustParseAddrPort("198.18.201.1:3128")
	f := &detector.Flow{ID: int64(port), Proto: decode.ProtoTCP, Client: cli, Server: srv, Start: start, SYNSeen: true}
	syn := &decode.Packet{Proto: decode.ProtoTCP, Time: start, TCPFlags: decode.FlagSYN}
	in := d.NewInspector(syn, true, f)
	var seq [2]uint32
	seq[0], seq[1] = 1000, 5000
	for _, st := range c.steps {
		p := &decode.Packet{Proto: decode.ProtoTCP, Time: start.Add(st.at), TCPFlags: st.flags | decode.FlagACK, Payload: st.data}
		i := 1
		if st.toServer {
			i = 0
		}
		p.Seq = seq[i]
		seq[i] += uint32(len(st.data))
		if !in.Inspect(p, st.toServer, f, s) {
			return
		}
	}
}

// tlsAttempt scripts a SoftEther connect phase (optionally behind its own
// CONNECT) with the given flight sizes, client first, ending with end.
func tlsAttempt(hello []byte, connect string, sizes []int, end step) conn {
	var st []step
	at := time.Duration(0)
	if connect != "" {
		st = append(st, step{true, at, []byte(connect), 0}, step{false, at + time.Millisecond, []byte("HTTP/1.0 200 Connection established\r\n\r\n"), 0})
	}
	st = append(st, step{true, at + 2*time.Millisecond, hello, 0},
		step{false, at + 3*time.Millisecond, []byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, 0},
		step{true, at + 4*time.Millisecond, appData(53), 0}) // the client's Finished
	at += 5 * time.Millisecond
	for i, n := range sizes {
		at += 10 * time.Millisecond
		// A proxy re-encrypting the answers splits header and body.
		if i%2 == 1 && n > 600 {
			st = append(st, step{false, at, appData(262), 0}, step{false, at, appData(n - 262), 0})
			continue
		}
		st = append(st, step{i%2 == 0, at, appData(n), 0})
	}
	end.at += at
	return conn{append(st, end)}
}

func TestSeries(t *testing.T) {
	seHello := helloRecord(t, "se-direct-443.client-hello.hex")
	curlHello := helloRecord(t, "neg-https-browse.client-hello-h2.hex")
	squidHello := helloRecord(t, "lab-ssl-bump-server-leg.client-hello.hex")
	gnutlsHello := helloRecord(t, "neg-lab-gnutls-pairs.client-hello.hex")
	fin := func(toServer bool, after time.Duration) step {
		return step{toServer, after, nil, decode.FlagFIN}
	}
	rst := step{false, 260 * time.Millisecond, nil, decode.FlagRST}
	proxyError := func(code string) conn {
		return conn{[]step{{true, 0, []byte(softetherConnect), 0}, {false, 3 * time.Millisecond, []byte("HTTP/1.1 " + code + " Service Unavailable\r\n\r\n"), 0}}}
	}
	// vary gives each attempt its own random padding, as SoftEther does.
	vary := func(i int, sizes ...int) []int {
		out := make([]int, len(sizes))
		for j, n := range sizes {
			out[j] = n + 37*i*(j%2+1)
		}
		return out
	}
	tests := []struct {
		name     string
		attempt  func(i int) conn
		n        int
		every    time.Duration
		wantAt   int // attempt (1-based) that raises the alert, 0 for none
		wantWhy  string
		wantMode string
	}{
		{"proxy answers SoftEther's CONNECT with 503", func(int) conn { return proxyError("503") }, 4, 6 * time.Second, 3, "HTTP 503", "http-proxy"},
		{"two attempts are not a series", func(int) conn { return proxyError("503") }, 2, 6 * time.Second, 0, "", ""},
		{"attempts further apart than any RetryInterval", func(int) conn { return proxyError("502") }, 4, 400 * time.Second, 0, "", ""},
		{"curl's CONNECT refused again and again", func(int) conn {
			return conn{[]step{{true, 0, []byte(curlConnect), 0}, {false, time.Millisecond, []byte("HTTP/1.1 403 Forbidden\r\n\r\n"), 0}}}
		}, 6, time.Second, 0, "", ""},
		{"login refused (direct)", func(i int) conn {
			return tlsAttempt(seHello, "", vary(i, 2156, 899, 3573, 452), fin(true, 5*time.Millisecond))
		}, 3, 5 * time.Second, 3, "login refused (answer", "direct"},
		{"ssl-bump: cut 0.26 s after the welcome", func(i int) conn {
			return tlsAttempt(seHello, softetherConnect, vary(i, 2374, 1192, 2924, 2925, 300), rst)
		}, 3, time.Second, 3, "reset by the proxy 0.2", "http-proxy"},
		{"proxy's leg: its own ClientHello, four messages in SoftEther's order", func(i int) conn {
			return tlsAttempt(squidHello, "", vary(i, 2617, 1213, 1149, 1268), fin(true, 0))
		}, 3, time.Second, 3, "additional_connect", "direct"},
		// Under a ClientHello that is neither SoftEther's nor offers ALPN
		// (squid's, or a Java or Python API client's) they count only at
		// the pace of legs re-added every second, not a script's.
		{"no SoftEther ClientHello, no ALPN: four messages every 15 s", func(i int) conn {
			return tlsAttempt(squidHello, "", vary(i, 2617, 1213, 1149, 1268), fin(true, 0))
		}, 6, 15 * time.Second, 0, "", ""},
		{"no SoftEther ClientHello, no ALPN: login-sized request, welcome-sized answer, every minute", func(i int) conn {
			return tlsAttempt(squidHello, "", vary(i, 2374, 1192, 2924, 2925), fin(true, 10*time.Millisecond))
		}, 6, time.Minute, 0, "", ""},
		// The same four messages at the pace of legs re-added every
		// second, from a client whose TLS is not OpenSSL's (GnuTLS, no
		// ALPN, no ticket): neither SoftEther's client nor squid's leg.
		{"GnuTLS client: four messages in SoftEther's order every second", func(i int) conn {
			return tlsAttempt(gnutlsHello, "", vary(i, 2617, 1213, 1149, 1268), fin(true, 0))
		}, 6, time.Second, 0, "", ""},
		// The same four messages from a client offering ALPN: a script
		// making two requests per connection, once a minute.
		{"ALPN client: two requests per connection, four messages in SoftEther's order", func(i int) conn {
			return tlsAttempt(curlHello, "", vary(i, 2617, 1213, 1149, 1268), fin(true, 0))
		}, 6, time.Minute, 0, "", ""},
		{"ALPN client: login-sized second request, welcome-sized answer, closed at once", func(i int) conn {
			return tlsAttempt(curlHello, "", vary(i, 2374, 1192, 2924, 2925), fin(true, 10*time.Millisecond))
		}, 6, time.Minute, 0, "", ""},
		{"poller: same sizes every time", func(int) conn {
			return tlsAttempt(seHello, "", []int{2156, 899, 3573, 452}, fin(true, 5*time.Millisecond))
		}, 6, 15 * time.Second, 0, "", ""},
		{"poller with SoftEther's ClientHello and varying sizes: two messages only", func(i int) conn {
			return tlsAttempt(seHello, "", vary(i, 2156, 899), fin(true, 5*time.Millisecond))
		}, 6, 15 * time.Second, 0, "", ""},
		{"API client without SoftEther's ClientHello: three messages, unanswered", func(i int) conn {
			return tlsAttempt(curlHello, "", vary(i, 2156, 899, 3000), fin(true, 5*time.Millisecond))
		}, 6, 15 * time.Second, 0, "", ""},
		{"browser: ALPN and no more than a request and an answer", func(i int) conn {
			return tlsAttempt(curlHello, "", vary(i, 2156, 899), fin(false, 5*time.Millisecond))
		}, 6, time.Second, 0, "", ""},
		// SoftEther's ClientHello profile (an OpenSSL client without ALPN
		// and ticket), requests of new sizes every time, the server's
		// answers the same: SoftEther pads the server's hello at random too.
		{"requests of new sizes, the same answers", func(i int) conn {
			return tlsAttempt(seHello, "", []int{2156 + 37*i, 899, 3573 + 74*i, 452}, fin(true, 5*time.Millisecond))
		}, 6, 5 * time.Second, 0, "", ""},
		{"sessions that last are no attempts", func(i int) conn {
			return tlsAttempt(seHello, "", vary(i, 2156, 899, 3573, 2900, 300, 300, 300), fin(true, 30*time.Second))
		}, 4, 40 * time.Second, 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, s := New(), &sink{}
			t0 := time.Unix(1_800_000_000, 0)
			got := 0
			for i := 0; i < tc.n; i++ {
				tc.attempt(i).play(d, s, uint16(40000+i), t0.Add(time.Duration(i)*tc.every))
				if got == 0 && len(s.ev) > 0 {
					got = i + 1
				}
			}
			if got != tc.wantAt {
				t.Fatalf("alert at attempt %d, want %d (%d reports)", got, tc.wantAt, len(s.ev))
			}
			if got == 0 {
				return
			}
			e := s.ev[0]
			if e.Signature != detector.SIDAttempts || e.Kind != Kind || string(e.Mode) != tc.wantMode || !strings.Contains(e.Detail, tc.wantWhy) {
				t.Errorf("evidence %d %q mode %q: %s", e.Signature, e.Kind, e.Mode, e.Detail)
			}
			if e.Client != netip.MustParseAddr("198.18.201.2") || e.Server != netip.MustParseAddr("198.18.201.1") {
				t.Errorf("host pair %v -> %v", e.Client, e.Server)
			}
		})
	}
}

// TestLegsOfALiveSession: extra legs refused while the session's primary
// connection lives are not failed attempts; once it is gone they are.
func TestLegsOfALiveSession(t *testing.T) {
	seHello := helloRecord(t, "se-direct-443.client-hello.hex")
	d, s := New(), &sink{}
	t0 := time.Unix(1_800_000_000, 0)
	primary := tlsAttempt(seHello, "", []int{2156, 899, 3573, 2900, 300, 300}, step{true, 20 * time.Second, appData(300), 0})
	primary.play(d, s, 40000, t0) // no FIN: still up
	leg := func(i int) conn {
		return tlsAttempt(seHello, "", []int{2000 + 41*i, 700 + 13*i, 900 + 7*i, 600 + 11*i}, step{true, 0, nil, decode.FlagFIN})
	}
	for i := 0; i < 5; i++ {
		leg(i).play(d, s, uint16(40001+i), t0.Add(time.Duration(i+1)*time.Second))
	}
	if len(s.ev) != 0 {
		t.Fatalf("legs of a live session reported: %s", s.ev[0].Detail)
	}
	d.down(trackKey{netip.MustParseAddr("198.18.201.2"), netip.MustParseAddr("198.18.201.1"), 3128, ""}, 40000)
	for i := 5; i < 8; i++ {
		leg(i).play(d, s, uint16(40001+i), t0.Add(time.Duration(i+1)*time.Second))
	}
	if len(s.ev) == 0 {
		t.Fatal("refused legs after the session ended not reported")
	}
}

// TestCaptures replays lab captures through the detector alone.
func TestCaptures(t *testing.T) {
	tests := []struct {
		file   string
		alerts int // distinct host pairs alerted
		client string
	}{
		{"lab-attempt-ssl-bump.pcap", 1, "198.18.201.2"},
		{"lab-attempt-ssl-bump-server-leg.pcap", 1, "198.18.202.1"},
		{"lab-attempt-login-refused.pcap", 1, "198.18.201.2"},
		{"lab-attempt-proxy-unreachable.pcap", 1, "198.18.201.2"},
		{"neg-lab-poller-15s.pcap", 0, ""},
		{"neg-lab-bump-error-page.pcap", 0, ""},
		{"neg-lab-https-retry.pcap", 0, ""},
		{"se-direct-443.pcap", 0, ""},
		{"se-via-http-proxy.pcap", 0, ""},
		{"se-vpncmd-admin.pcap", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			s, _ := replay(t, "../../testdata/pcap/"+tc.file)
			pairs := map[[2]netip.Addr]bool{}
			for _, e := range s.ev {
				pairs[[2]netip.Addr{e.Client, e.Server}] = true
				if tc.client != "" && e.Client.String() != tc.client {
					t.Errorf("alert for client %v: %s", e.Client, e.Detail)
				}
			}
			if len(pairs) != tc.alerts {
				t.Errorf("%d host pairs alerted, want %d", len(pairs), tc.alerts)
				for _, e := range s.ev {
					t.Log(e.Detail)
				}
			}
		})
	}
}

// TestInspectAllocs: the per-packet path of an established connection
// allocates nothing.
func TestInspectAllocs(t *testing.T) {
	d := New()
	f := &detector.Flow{Proto: decode.ProtoTCP, Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:443")}
	in := d.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, f).(*Inspector)
	s := &sink{}
	seHello := helloRecord(t, "se-direct-443.client-hello.hex")
	at := time.Unix(1, 0)
	in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Seq: 1, Payload: seHello, Time: at}, true, f, s)
	in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Seq: 1, Payload: []byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, Time: at}, false, f, s)
	rec := appData(300)
	seq := uint32(1 + len(seHello))
	p := &decode.Packet{Proto: decode.ProtoTCP, Payload: rec}
	n := testing.AllocsPerRun(200, func() {
		p.Seq, p.Time = seq, at
		seq += uint32(len(rec))
		in.Inspect(p, true, f, s)
	})
	if n != 0 {
		t.Errorf("%v allocations per segment", n)
	}
}

func FuzzInspect(f *testing.F) {
	f.Add([]byte(softetherConnect), []byte("HTTP/1.1 503 x\r\n\r\n"), uint32(7), uint8(0))
	f.Add([]byte{22, 3, 1, 0, 10, 1, 0, 0, 6, 3, 3, 0, 0, 0, 0}, []byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, uint32(1), uint8(decode.FlagRST))
	f.Fuzz(func(t *testing.T, c, s []byte, seq uint32, flags uint8) {
		d := New()
		// A small budget shared by every input: buffers are pooled, shed
		// and reused across connections.
		fl := &detector.Flow{Proto: decode.ProtoTCP, Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:443"),
			Mem: fuzzMem}
		sk := &sink{}
		at := time.Unix(1, 0)
		for k := 0; k < 3; k++ {
			in := d.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, fl)
			for i := 0; i < 4; i++ {
				in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Seq: seq + uint32(i*len(c)), Payload: c, Time: at}, true, fl, sk)
				in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Seq: seq*3 + uint32(i*len(s)), Payload: s, Time: at, TCPFlags: flags * uint8(i/3)}, false, fl, sk)
				at = at.Add(time.Second)
			}
			in.(*Inspector).Release()
			fl.ID++
		}
	})
}

var fuzzMem = &membudget.Account{B: membudget.New(membudget.MinBytes, nil), L: &membudget.Holders{}}

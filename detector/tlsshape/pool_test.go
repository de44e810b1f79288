package tlsshape

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/membudget"
	"github.com/sewatch/sewatch/internal/tlshello"
)

// recorder keeps what one side of a connection writes, write by write.
type recorder struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.writes = append(r.writes, append([]byte(nil), b...))
	r.mu.Unlock()
	return r.Conn.Write(b)
}

// tlsFlights runs a real TLS 1.2 handshake (crypto/tls over a pipe) to a
// server whose self-signed certificate names cn and that picks suite, and
// returns the client's first flight (the ClientHello) and the server's
// (ServerHello, Certificate, ServerKeyExchange, ServerHelloDone).
func tlsFlights(t *testing.T, sni, cn string, suite uint16) (client, server []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Unix(1.6e9, 0), NotAfter: time.Unix(2e9, 0)}
	for i := 0; i < 24; i++ { // a certificate of about 1 KB, as most are
		tmpl.DNSNames = append(tmpl.DNSNames, fmt.Sprintf("host-%02d.%s.example", i, cn))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, s := net.Pipe()
	cr, sr := &recorder{Conn: c}, &recorder{Conn: s}
	srv := tls.Server(sr, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
	cli := tls.Client(cr, &tls.Config{ServerName: sni, InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	done := make(chan error, 1)
	go func() { done <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, s)
	go io.Copy(io.Discard, c)
	cli.Close()
	srv.Close()
	return opensslOrdered(t, cr.writes[0]), sr.writes[0]
}

// opensslOrdered returns the ClientHello record with its extensions moved
// into the order OpenSSL's client writes them (crypto/tls has its own
// order, and the detector lets go of hellos that are not OpenSSL's). The
// lengths do not change; nothing here checks the handshake's transcript.
func opensslOrdered(t *testing.T, rec []byte) []byte {
	t.Helper()
	order := []uint16{0xff01, 0, 11, 10, 35, 5, 16, 22, 18, 23, 50, 13, 43, 45, 51}
	place := func(e uint16) int {
		for i, o := range order {
			if o == e {
				return i
			}
		}
		t.Fatalf("crypto/tls sent extension %d, which OpenSSL's order here does not place", e)
		return 0
	}
	out := append([]byte(nil), rec...)
	b := out[5+4+2+32:] // record and handshake headers, version, random
	b = b[1+int(b[0]):]
	b = b[2+int(binary.BigEndian.Uint16(b)):]
	b = b[1+int(b[0]):]
	list := b[2 : 2+int(binary.BigEndian.Uint16(b))]
	var exts [][]byte
	for r := list; len(r) >= 4; {
		n := 4 + int(binary.BigEndian.Uint16(r[2:]))
		exts, r = append(exts, append([]byte(nil), r[:n]...)), r[n:]
	}
	slices.SortStableFunc(exts, func(x, y []byte) int {
		return place(binary.BigEndian.Uint16(x)) - place(binary.BigEndian.Uint16(y))
	})
	list = list[:0]
	for _, e := range exts {
		list = append(list, e...)
	}
	return out
}

// expected is the TLS info a flow's own handshake gives.
func expected(t *testing.T, client, server []byte) detector.TLSInfo {
	t.Helper()
	var info detector.TLSInfo
	ch, err := tlshello.ParseClientHello(tlshello.Message(client[5:], tlshello.TypeClientHello))
	if err != nil {
		t.Fatal(err)
	}
	info.SetClientHello(&ch)
	var hs []byte
	for b := server; len(b) >= 5; {
		n := int(binary.BigEndian.Uint16(b[3:]))
		hs, b = append(hs, b[5:5+n]...), b[5+n:]
	}
	sh, err := tlshello.ParseServerHello(tlshello.Message(hs, tlshello.TypeServerHello))
	if err != nil {
		t.Fatal(err)
	}
	info.JA3S, info.JA3SHash = tlshello.JA3S(&sh)
	cert, err := tlshello.ParseCertificate(tlshello.Message(hs, tlshello.TypeCertificate), false)
	if err != nil {
		t.Fatal(err)
	}
	info.Subject = cert.Subject
	return info
}

// appRecord is a TLS application-data record of n body bytes.
func appRecord(n int) []byte {
	r := make([]byte, 5+n)
	r[0], r[1], r[2] = 23, 3, 3
	binary.BigEndian.PutUint16(r[3:], uint16(n))
	return r
}

// pooledFlow is one connection through a tlsshape inspector whose buffers
// come from a shared worker account.
type pooledFlow struct {
	in   *Inspector
	f    detector.Flow
	s    sink
	cseq uint32
	sseq uint32
	at   time.Time
}

func newPooledFlow(acct *membudget.Account, id int64) *pooledFlow {
	fl := &pooledFlow{f: detector.Flow{ID: id, Proto: decode.ProtoTCP, SYNSeen: true, Mem: acct}, cseq: 1000, sseq: 9000,
		at: time.Unix(1.7e9, 0)}
	fl.in = Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, &fl.f).(*Inspector)
	return fl
}

func (fl *pooledFlow) send(toServer bool, b []byte) {
	seq := &fl.sseq
	if toServer {
		seq = &fl.cseq
	}
	fl.at = fl.at.Add(10 * time.Millisecond)
	fl.in.Inspect(tcpSeg(*seq, b, fl.at), toServer, &fl.f, &fl.s)
	*seq += uint32(len(b))
}

// TestPooledHandshakeNotAliased: a flow whose hellos and certificate are
// kept unparsed loses its handshake buffer (shed by the budget for another
// flow, or outgrown while the certificate arrives); another flow takes that
// buffer from the worker's pool and writes its own handshake into it; then
// the first flow reports. Its TLS info must never be the other flow's: it
// is the first flow's own (outgrown: the kept messages moved with the
// bytes) or lacks what was shed.
func TestPooledHandshakeNotAliased(t *testing.T) {
	aCli, aSrv := tlsFlights(t, "alpha.example", "alpha", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
	bCli, bSrv := tlsFlights(t, "beta.example", "beta", tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
	wantA, wantB := expected(t, aCli, aSrv), expected(t, bCli, bSrv)
	if wantA.SNI == wantB.SNI || wantA.JA3S == wantB.JA3S || wantA.Subject == wantB.Subject {
		t.Fatal("the two handshakes do not differ: the test shows nothing")
	}
	shFirst := 5 + int(binary.BigEndian.Uint16(aSrv[3:])) // A's ServerHello record
	for _, how := range []string{"shed", "outgrown"} {
		t.Run(how, func(t *testing.T) {
			budget := membudget.New(membudget.MinBytes, nil)
			var l membudget.Holders
			acct := &membudget.Account{B: budget, L: &l}
			a := newPooledFlow(acct, 1)
			a.send(true, aCli)
			var old []byte // the buffer A lets go, to check B gets it
			if how == "outgrown" {
				// The ServerHello alone, kept unparsed in a small buffer;
				// the certificate then makes the buffer grow.
				a.send(false, aSrv[:shFirst])
				old = a.in.s.HS[:1]
				a.send(false, aSrv[shFirst:])
			} else {
				a.send(false, aSrv)
				old = a.in.c.HS[:1]
			}
			if a.in.chBody.IsZero() || a.in.shBody.IsZero() || a.in.certBody.IsZero() {
				t.Fatal("A's hellos and certificate are not kept unparsed: the test shows nothing")
			}
			if how == "shed" {
				// The pool is empty and the budget full: B's buffers shed
				// A's.
				acct.Trim()
				if !budget.Reserve(int(budget.Limit()-budget.Limit()/8-budget.Used()), true) {
					t.Fatal("fill refused")
				}
			}
			b := newPooledFlow(acct, 2)
			b.send(true, bCli)
			if &b.in.c.HS[0] != &old[0] {
				t.Fatalf("B's ClientHello (%d bytes, buffer %d) did not land in A's former buffer (%d): the test shows nothing",
					len(bCli), cap(b.in.c.HS), cap(old))
			}
			b.send(false, bSrv)
			// A's connect phase (direct, no probe) reports evidence.
			for i, n := range []int{2374, 586, 2924, 2112} {
				a.send(i%2 == 0, appRecord(n))
			}
			var got *detector.TLSInfo
			for _, ev := range a.s.ev {
				if ev.Kind == detector.KindTLSPrimary {
					got = ev.TLS
				}
			}
			if len(a.s.ev) == 0 {
				t.Fatal("A reported nothing")
			}
			if how == "outgrown" {
				if got == nil || got.SNI != wantA.SNI || got.JA3S != wantA.JA3S || got.Subject != wantA.Subject || got.JA3 != wantA.JA3 {
					t.Fatalf("A's TLS info %+v, want A's own %+v", got, wantA)
				}
				return
			}
			if !a.in.c.Shed || !a.in.s.Shed {
				t.Fatal("A's buffers were not shed")
			}
			if got != nil && (got.SNI != "" || got.JA3S != "" || got.Subject != "") {
				t.Fatalf("A's TLS info %+v read from shed buffers (B's is %+v)", got, wantB)
			}
		})
	}
}

// clientHello is the first flight (the ClientHello record) of a real
// crypto/tls client offering alpn (none when nil) and, with tickets, the
// session_ticket extension (a session cache).
func clientHello(t *testing.T, alpn []string, tickets bool) []byte {
	t.Helper()
	c, s := net.Pipe()
	cr := &recorder{Conn: c}
	go func() {
		// Read the hello, then hang up: only the client's first write matters.
		buf := make([]byte, 1<<16)
		s.Read(buf)
		s.Close()
	}()
	cfg := &tls.Config{ServerName: "vpn.example", InsecureSkipVerify: true, NextProtos: alpn}
	if tickets {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	tls.Client(cr, cfg).Handshake()
	c.Close()
	if len(cr.writes) == 0 {
		t.Fatal("no ClientHello written")
	}
	return cr.writes[0]
}

// TestALPNClientNotFollowed: SoftEther's client never offers ALPN or a
// session ticket, and its extensions come in OpenSSL's order, so a
// connection whose ClientHello offers either, or orders its extensions
// some other way (crypto/tls's own order), is let go at once, whatever its
// records look like afterwards; without them the same connection is
// followed.
func TestALPNClientNotFollowed(t *testing.T) {
	for _, tc := range []struct {
		alpn    []string
		tickets bool
		openssl bool // extensions in OpenSSL's order
		follow  bool
	}{
		{nil, false, true, true},
		{nil, false, false, false},
		{[]string{"http/1.1"}, false, true, false},
		{[]string{"h2", "http/1.1"}, false, true, false},
		{nil, true, true, false},
	} {
		ch := clientHello(t, tc.alpn, tc.tickets)
		if tc.openssl {
			ch = opensslOrdered(t, ch)
		}
		f := detector.Flow{Proto: decode.ProtoTCP, SYNSeen: true}
		in := Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, &f).(*Inspector)
		s := &sink{}
		more := in.Inspect(tcpSeg(1000, ch, time.Unix(1.7e9, 0)), true, &f, s)
		if more != tc.follow {
			t.Errorf("ALPN %q, tickets %v, OpenSSL's order %v: inspector wants more packets %v, want %v",
				tc.alpn, tc.tickets, tc.openssl, more, tc.follow)
		}
		if !tc.follow && len(s.ev) != 0 {
			t.Errorf("ALPN %q: evidence %v", tc.alpn, s.ev)
		}
		in.Release()
	}
}

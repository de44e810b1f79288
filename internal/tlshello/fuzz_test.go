package tlshello

import (
	"errors"
	"regexp"
	"testing"
)

var seedFiles = []string{
	"se-direct-443.client-hello.hex",
	"se-direct-443.server-hello.hex",
	"se-tls12-probe.client-hello.hex",
	"se-tls12-probe.server-flight.hex",
	"neg-https-browse.client-hello-h2.hex",
	"neg-https-browse.client-hello-nosni.hex",
	"neg-https-browse.client-hello-tls12.hex",
	"neg-https-browse.server-flight-tls12.hex",
}

// seedBodies adds the body of every message of type typ in the test data.
func seedBodies(f *testing.F, typ uint8) {
	for _, name := range seedFiles {
		Messages(loadHex(f, name), func(ty uint8, body []byte) bool {
			if ty == typ {
				f.Add(body)
			}
			return true
		})
	}
}

var ja4Shape = regexp.MustCompile(`^t(13|12|11|10|s3|s2|d1|d2|d3|00)[di][0-9]{4}[0-9A-Za-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$`)

func checkErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
		t.Fatalf("error wraps no sentinel: %v", err)
	}
}

func FuzzParseClientHello(f *testing.F) {
	seedBodies(f, TypeClientHello)
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, err := ParseClientHello(b)
		checkErr(t, err)
		checkScan(t, b, &ch, err)
		// Whatever was read fingerprints without trouble, and the
		// fingerprints keep their shape.
		if _, h := JA3(&ch); len(h) != 32 {
			t.Fatalf("JA3 hash %q", h)
		}
		if j := JA4(&ch); !ja4Shape.MatchString(j) {
			t.Fatalf("JA4 %q", j)
		}
		JA4Raw(&ch)
		ch.MaxVersion()
		if err != nil {
			return
		}
		if len(ch.Ciphers) == 0 || 2*len(ch.Ciphers)+4*len(ch.Extensions) > len(b) || len(ch.SNI) > len(b) {
			t.Fatalf("impossible hello from %d bytes: %d ciphers, %d extensions", len(b), len(ch.Ciphers), len(ch.Extensions))
		}
		if ch.SNI != "" && !ch.HasExtension(ExtServerName) || ch.ALPN != nil && !ch.HasExtension(ExtALPN) {
			t.Fatal("value without its extension")
		}
	})
}

func FuzzParseServerHello(f *testing.F) {
	seedBodies(f, TypeServerHello)
	f.Fuzz(func(t *testing.T, b []byte) {
		sh, err := ParseServerHello(b)
		checkErr(t, err)
		if sc, serr := ScanServerHello(b); (serr == nil) != (err == nil) || sc.SelectedVersion != sh.SelectedVersion ||
			sc.LegacyVersion != sh.LegacyVersion || sc.Cipher != sh.Cipher || sc.HelloRetryRequest != sh.HelloRetryRequest {
			t.Fatalf("scan %+v %v, parse %+v %v", sc, serr, sh, err)
		}
		if _, h := JA3S(&sh); len(h) != 32 {
			t.Fatalf("JA3S hash %q", h)
		}
		VersionString(sh.Version())
		if err == nil && 4*len(sh.Extensions)+38 > len(b) {
			t.Fatalf("%d extensions from %d bytes", len(sh.Extensions), len(b))
		}
	})
}

func FuzzParseCertificate(f *testing.F) {
	seedBodies(f, TypeCertificate)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tls13 := range []bool{false, true} {
			c, err := ParseCertificate(b, tls13)
			checkErr(t, err)
			if c.DER != nil && len(c.FingerprintSHA1) != 59 {
				t.Fatalf("fingerprint %q", c.FingerprintSHA1)
			}
			if err == nil && (c.ChainLen == 0 || len(c.DER) == 0) {
				t.Fatal("success without a certificate")
			}
			// The peek decides whether a flow's certificate is parsed at
			// once: it must agree with the parse wherever the parse works.
			if zero, self, ok := PeekCertificate(b, tls13); err == nil && (!ok || zero != (c.Serial == "00") || self != c.SelfSigned) {
				t.Fatalf("peek serial zero %v self-signed %v ok %v; parse serial %s self-signed %v", zero, self, ok, c.Serial, c.SelfSigned)
			}
		}
	})
}

func FuzzMessages(f *testing.F) {
	for _, name := range seedFiles {
		f.Add(loadHex(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sum := 0
		n := Messages(b, func(typ uint8, body []byte) bool {
			sum += 4 + len(body)
			switch typ {
			case TypeClientHello:
				if ch, err := ParseClientHello(body); err == nil {
					JA3(&ch)
					JA4(&ch)
				}
			case TypeServerHello:
				if sh, err := ParseServerHello(body); err == nil {
					JA3S(&sh)
				}
			case TypeCertificate:
				ParseCertificate(body, false)
				ParseCertificate(body, true)
			}
			return true
		})
		if n != sum || n > len(b) {
			t.Fatalf("consumed %d, messages total %d, input %d", n, sum, len(b))
		}
		// What is left is one incomplete message at most.
		if rest := b[n:]; len(rest) >= 4 {
			if l := int(rest[1])<<16 | int(rest[2])<<8 | int(rest[3]); 4+l <= len(rest) {
				t.Fatalf("complete message of %d bytes left unconsumed", 4+l)
			}
		}
	})
}

// checkScan: the scan fails exactly when the parse does, and where the parse
// succeeds the scan's facts are the parse's.
func checkScan(t *testing.T, b []byte, ch *ClientHello, err error) {
	t.Helper()
	sc, serr := ScanClientHello(b)
	if (serr == nil) != (err == nil) {
		t.Fatalf("scan error %v, parse error %v", serr, err)
	}
	if err != nil {
		return
	}
	if sc.Ciphers != len(ch.Ciphers) || sc.ALPN != ch.HasExtension(ExtALPN) || sc.Ticket != ch.HasExtension(ExtSessionTicket) ||
		string(sc.SNI) != ch.SNI || sc.OpenSSLNoALPN() != ch.OpenSSLNoALPN() || sc.OpenSSLOrder != ch.OpenSSLOrder() {
		t.Fatalf("scan %+v, parse %d ciphers SNI %q extensions %v", sc, len(ch.Ciphers), ch.SNI, ch.Extensions)
	}
}

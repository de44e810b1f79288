package tlshello

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCertificate(t *testing.T) {
	// Expected values from `openssl x509 -inform der -noout -text -fingerprint
	// -sha1 -serial -dates` and `openssl asn1parse` (RDN order) on the DER.
	tests := []struct {
		name, file       string
		subject, issuer  string
		serial, sha1     string
		notBefore        string
		notAfter         string
		selfSigned, isCA bool
		eku              int
		san, ski, aki    bool
		derLen           int
	}{
		{
			name: "softether default certificate", file: "se-tls12-probe.server-flight.hex",
			subject:   "CN=se-vpn-server, O=se-vpn-server, OU=se-vpn-server, C=US",
			issuer:    "CN=se-vpn-server, O=se-vpn-server, OU=se-vpn-server, C=US",
			serial:    "00",
			sha1:      "d2:bb:7b:55:8d:52:d5:63:cc:fb:5b:7d:26:42:da:87:ca:35:75:4e",
			notBefore: "2026-11-22T11:32:11Z", notAfter: "2037-12-31T11:32:11Z",
			selfSigned: true, isCA: true, eku: 9, derLen: 944,
		},
		{
			name: "nginx self-signed certificate", file: "neg-https-browse.server-flight-tls12.hex",
			subject:   "C=DE, O=Neg Lab Web, CN=www.neg-lab.example",
			issuer:    "C=DE, O=Neg Lab Web, CN=www.neg-lab.example",
			serial:    "30:00:6F:CE:99:F7:A2:B8:67:F3:92:6D:6C:F4:3E:56:88:C9:44:C0",
			sha1:      "22:85:a0:f0:2c:45:75:cd:12:36:2c:ae:27:49:28:b0:04:7e:bf:20",
			notBefore: "2026-11-22T10:33:06Z", notAfter: "2029-02-24T10:33:06Z",
			selfSigned: true, isCA: true, eku: 1, san: true, ski: true, aki: true, derLen: 957,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := message(t, loadHex(t, tc.file), TypeCertificate)
			c, err := ParseCertificate(body, false)
			if err != nil {
				t.Fatal(err)
			}
			zero, self, ok := PeekCertificate(body, false)
			if !ok || zero != (tc.serial == "00") || self != tc.selfSigned {
				t.Errorf("peek: serial zero %v self-signed %v ok %v", zero, self, ok)
			}
			if n := testing.AllocsPerRun(10, func() { PeekCertificate(body, false) }); n != 0 {
				t.Errorf("peek allocates %v times", n)
			}
			check := func(c Cert) {
				t.Helper()
				if c.Subject != tc.subject || c.Issuer != tc.issuer {
					t.Errorf("subject %q issuer %q", c.Subject, c.Issuer)
				}
				if c.Serial != tc.serial || c.FingerprintSHA1 != tc.sha1 {
					t.Errorf("serial %q fingerprint %q", c.Serial, c.FingerprintSHA1)
				}
				if got := c.NotBefore.UTC().Format(time.RFC3339); got != tc.notBefore {
					t.Errorf("notBefore %s", got)
				}
				if got := c.NotAfter.UTC().Format(time.RFC3339); got != tc.notAfter {
					t.Errorf("notAfter %s", got)
				}
				if c.SelfSigned != tc.selfSigned || c.IsCA != tc.isCA || c.ExtKeyUsageCount != tc.eku {
					t.Errorf("self-signed %v CA %v EKUs %d", c.SelfSigned, c.IsCA, c.ExtKeyUsageCount)
				}
				if c.HasSAN != tc.san || c.HasSKI != tc.ski || c.HasAKI != tc.aki {
					t.Errorf("SAN %v SKI %v AKI %v", c.HasSAN, c.HasSKI, c.HasAKI)
				}
				if len(c.DER) != tc.derLen || c.ChainLen != 1 {
					t.Errorf("DER %d bytes, chain %d", len(c.DER), c.ChainLen)
				}
			}
			check(c)

			// The lenient reader alone agrees with crypto/x509.
			var lenient Cert
			if err := lenient.readTBS(c.DER); err != nil {
				t.Fatal(err)
			}
			lenient.DER, lenient.FingerprintSHA1, lenient.ChainLen = c.DER, c.FingerprintSHA1, 1
			check(lenient)

			// The same certificate in the TLS 1.3 layout: a request
			// context, and extensions after each entry.
			tls13 := []byte{2, 0xaa, 0xbb}
			entry := append(u24(len(c.DER)), c.DER...)
			entry = append(entry, 0, 4, 0, 5, 0, 0) // one empty status_request extension
			second := append(u24(3), 0x30, 1, 0)
			second = append(second, 0, 0)
			list := append(entry, second...)
			tls13 = append(append(tls13, u24(len(list))...), list...)
			c13, err := ParseCertificate(tls13, true)
			if err != nil {
				t.Fatal(err)
			}
			if c13.ChainLen != 2 || !bytes.Equal(c13.DER, c.DER) {
				t.Errorf("TLS 1.3 layout: chain %d, DER equal %v", c13.ChainLen, bytes.Equal(c13.DER, c.DER))
			}
			if _, err := ParseCertificate(tls13, false); err == nil {
				t.Error("TLS 1.3 body parsed as TLS 1.2")
			}
			if _, err := ParseCertificate(body, true); err == nil {
				t.Error("TLS 1.2 body parsed as TLS 1.3")
			}

			// Every prefix is incomplete, and says so.
			for i := range len(body) {
				if _, err := ParseCertificate(body[:i], false); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("prefix %d: %v", i, err)
				}
			}
		})
	}
}

func u24(n int) []byte { return []byte{byte(n >> 16), byte(n >> 8), byte(n)} }

func certMessage(der []byte) []byte {
	entry := append(u24(len(der)), der...)
	return append(u24(len(entry)), entry...)
}

// makeCert signs a certificate for tmpl with a fresh key, as issued by
// parent (self-signed when parent is nil).
func makeCert(t *testing.T, tmpl, parent *x509.Certificate) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		tmpl.NotAfter = time.Date(2049, 12, 30, 3, 4, 5, 0, time.UTC)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func rawName(t *testing.T, rdns ...[]pkix.AttributeTypeAndValue) []byte {
	t.Helper()
	var seq pkix.RDNSequence
	for _, r := range rdns {
		seq = append(seq, pkix.RelativeDistinguishedNameSET(r))
	}
	b, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCertificateNames(t *testing.T) {
	oid := func(arcs ...int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier(arcs) }
	atv := func(o asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: o, Value: v}
	}
	bmp := asn1.RawValue{Class: asn1.ClassUniversal, Tag: 30, Bytes: []byte{0, 'B', 0x00, 0xe9, 0x20, 0xac}}
	subject := rawName(t,
		[]pkix.AttributeTypeAndValue{atv(oid(2, 5, 4, 6), "US")},
		[]pkix.AttributeTypeAndValue{atv(oid(2, 5, 4, 10), "Org, Inc."), atv(oid(2, 5, 4, 11), "Unit")},
		[]pkix.AttributeTypeAndValue{atv(oid(1, 2, 840, 113549, 1, 9, 1), "a@b.example")},
		[]pkix.AttributeTypeAndValue{atv(oid(2, 5, 4, 5), "1234")},
		[]pkix.AttributeTypeAndValue{atv(oid(1, 3, 6, 1, 4, 1, 99999, 7), "x")},
		[]pkix.AttributeTypeAndValue{atv(oid(2, 5, 4, 3), bmp)},
	)
	issuer := rawName(t, []pkix.AttributeTypeAndValue{atv(oid(2, 5, 4, 3), "Issuer CA")})
	serial, _ := new(big.Int).SetString("8f0102030405", 16)
	der := makeCert(t, &x509.Certificate{
		SerialNumber: serial, RawSubject: subject, RawIssuer: issuer,
		BasicConstraintsValid: true, IsCA: false,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{oid(1, 2, 3, 4)},
		DNSNames:           []string{"a.example"},
	}, &x509.Certificate{RawSubject: issuer, SubjectKeyId: []byte{1, 2, 3}})
	c, err := ParseCertificate(certMessage(der), false)
	if err != nil {
		t.Fatal(err)
	}
	wantSubject := "C=US, OU=Unit + O=Org, Inc., Email=a@b.example, serialNumber=1234, OID(1.3.6.1.4.1.99999.7)=x, CN=B\u00e9\u20ac"
	if c.Subject != wantSubject {
		t.Errorf("subject\n got %q\nwant %q", c.Subject, wantSubject)
	}
	// A positive serial whose top bit is set keeps its leading zero byte:
	// Suricata prints the raw INTEGER content.
	if c.Issuer != "CN=Issuer CA" || c.Serial != "00:8F:01:02:03:04:05" || c.SelfSigned {
		t.Errorf("issuer %q serial %q self-signed %v", c.Issuer, c.Serial, c.SelfSigned)
	}
	if c.IsCA || c.ExtKeyUsageCount != 2 || !c.HasSAN || c.HasSKI || !c.HasAKI {
		t.Errorf("CA %v EKUs %d SAN %v SKI %v AKI %v", c.IsCA, c.ExtKeyUsageCount, c.HasSAN, c.HasSKI, c.HasAKI)
	}
	if got := c.NotAfter.Format(time.RFC3339); got != "2049-12-30T03:04:05Z" {
		t.Errorf("notAfter %s", got)
	}

	// Attributes of a multi-valued RDN print in wire order (DER sorts a
	// SET by encoding, hence OU before O above).
	// Values that are not strings print as upper-case hex of their content
	// (crypto/x509 refuses such names; the lenient reader does not).
	odd := rawName(t, []pkix.AttributeTypeAndValue{atv(oid(2, 5, 4, 13), 258), atv(oid(2, 5, 4, 3), "x")})
	if got := dnString(mustContent(t, odd)); got != "CN=x + description=0102" {
		t.Errorf("non-string value: %q", got)
	}

	// An undecodable string makes the whole name unprintable, as in Suricata.
	bad := rawName(t, []pkix.AttributeTypeAndValue{atv(oid(2, 5, 4, 3), asn1.RawValue{Tag: 12, Bytes: []byte{0xff, 0xfe}})})
	if got := dnString(mustContent(t, bad)); got != "<X509Error: Invalid X.509 name>" {
		t.Errorf("invalid UTF-8 name: %q", got)
	}
	if got := dnString(nil); got != "" {
		t.Errorf("empty name: %q", got)
	}
}

func mustContent(t *testing.T, der []byte) []byte {
	t.Helper()
	e, _, ok := derNext(der)
	if !ok {
		t.Fatal("bad DER")
	}
	return e.content
}

func TestCertificateRejectedByX509(t *testing.T) {
	// crypto/x509 refuses negative serial numbers; Suricata prints them.
	// The fields still come out, with an error.
	der := makeCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(0x7f),
		Subject:      pkix.Name{CommonName: "neg"},
	}, nil)
	i := bytes.Index(der, []byte{0x02, 0x01, 0x7f})
	if i < 0 {
		t.Fatal("serial not found")
	}
	der[i+2] = 0x80
	c, err := ParseCertificate(certMessage(der), false)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v, want malformed", err)
	}
	if c.Serial != "80" || c.Subject != "CN=neg" || !c.SelfSigned || len(c.FingerprintSHA1) != 59 || !bytes.Equal(c.DER, der) {
		t.Errorf("fields of a rejected certificate: %+v", c)
	}
	if c.NotBefore.Year() != 2020 || c.NotAfter.Year() != 2049 {
		t.Errorf("validity %v %v", c.NotBefore, c.NotAfter)
	}

	// Garbage DER: fingerprint only.
	c, err = ParseCertificate(certMessage([]byte{0x30, 0x03, 0x02, 0x01, 0x00}), false)
	if !errors.Is(err, ErrMalformed) || c.FingerprintSHA1 == "" || c.Subject != "" {
		t.Errorf("garbage DER: %+v %v", c, err)
	}
}

func TestCertificateHostile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  []byte
		tls13 bool
		want  error
	}{
		{"empty", nil, false, ErrTruncated},
		{"list longer than body", []byte{0, 0, 9, 0, 0, 1, 0}, false, ErrTruncated},
		{"empty list", []byte{0, 0, 0}, false, ErrMalformed},
		{"entry overruns list", []byte{0, 0, 4, 0, 0, 9, 0x30}, false, ErrMalformed},
		{"empty entry", []byte{0, 0, 3, 0, 0, 0}, false, ErrMalformed},
		{"data after list", []byte{0, 0, 4, 0, 0, 1, 0x30, 0}, false, ErrMalformed},
		{"tls13 context overruns", []byte{9, 0}, true, ErrTruncated},
		{"tls13 entry extensions overrun", []byte{0, 0, 0, 6, 0, 0, 1, 0x30, 0, 9}, true, ErrMalformed},
		{"der huge length", certMessage([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff}), false, ErrMalformed},
		{"der indefinite length", certMessage([]byte{0x30, 0x80, 0, 0}), false, ErrMalformed},
		{"der high tag", certMessage([]byte{0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f, 0}), false, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCertificate(tc.body, tc.tls13)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOIDString(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want string
		ok   bool
	}{
		{[]byte{0x55, 0x04, 0x03}, "2.5.4.3", true},
		{[]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01}, "1.2.840.113549.1.9.1", true},
		{[]byte{0x88, 0x37}, "2.999", true},
		{[]byte{0x80, 0x01}, "", false},
		{[]byte{0x55, 0x84}, "", false},
		{nil, "", false},
		{slices.Repeat([]byte{0xff}, 12), "", false},
	} {
		got, ok := oidString(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("oidString(% x) = %q %v, want %q %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if !strings.HasPrefix(attrName([]byte{0x2b, 0x06}), "OID(1.3.6)") {
		t.Error(attrName([]byte{0x2b, 0x06}))
	}
}

package tlshello

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"time"
)

// Cert is the first certificate of a Certificate message, with the fields
// EVE's tls object carries and those that recognise a generated default.
type Cert struct {
	DER                    []byte
	Subject, Issuer        string // Suricata's form: "C=US, O=x, OU=x, CN=x" in certificate order
	Serial                 string // upper-case hex bytes joined by ':'
	NotBefore, NotAfter    time.Time
	FingerprintSHA1        string // lower-case hex bytes joined by ':'
	SelfSigned             bool
	IsCA                   bool
	ExtKeyUsageCount       int
	HasSAN, HasSKI, HasAKI bool
}

// ParseCertificate reads the first certificate of a Certificate message
// body (tls13 selects the TLS 1.3 layout with a request context and
// per-entry extensions).
func ParseCertificate(body []byte, tls13 bool) (Cert, error) {
	var c Cert
	r := reader{b: body}
	if tls13 {
		r.bytes(int(r.u8()))
	}
	n := int(r.u8())<<16 | int(r.u16())
	list := reader{b: r.bytes(n)}
	if r.bad {
		return c, fmt.Errorf("certificate list: %w", ErrTruncated)
	}
	ln := int(list.u8())<<16 | int(list.u16())
	der := list.bytes(ln)
	if list.bad || ln == 0 {
		return c, fmt.Errorf("certificate: %w", ErrTruncated)
	}
	c.DER = der
	sum := sha1.Sum(der)
	c.FingerprintSHA1 = colonHex(sum[:], false)
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return c, fmt.Errorf("certificate: %w: %v", ErrMalformed, err)
	}
	c.Subject = dn(x.RawSubject)
	c.Issuer = dn(x.RawIssuer)
	c.Serial = colonHex(x.SerialNumber.Bytes(), true)
	if c.Serial == "" {
		c.Serial = "00"
	}
	c.NotBefore, c.NotAfter = x.NotBefore, x.NotAfter
	c.SelfSigned = bytes.Equal(x.RawSubject, x.RawIssuer)
	c.IsCA = x.BasicConstraintsValid && x.IsCA
	c.ExtKeyUsageCount = len(x.ExtKeyUsage) + len(x.UnknownExtKeyUsage)
	c.HasSAN = len(x.DNSNames)+len(x.IPAddresses)+len(x.EmailAddresses)+len(x.URIs) > 0
	c.HasSKI, c.HasAKI = len(x.SubjectKeyId) > 0, len(x.AuthorityKeyId) > 0
	return c, nil
}

var attrNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"2.5.4.5": "serialNumber", "1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC",
}

// dn prints a distinguished name in certificate order, "K=V, K=V".
func dn(raw []byte) string {
	var seq pkix.RDNSequence
	if _, err := asn1.Unmarshal(raw, &seq); err != nil {
		return ""
	}
	var parts []string
	for _, rdn := range seq {
		for _, atv := range rdn {
			k, ok := attrNames[atv.Type.String()]
			if !ok {
				k = atv.Type.String()
			}
			parts = append(parts, fmt.Sprintf("%s=%v", k, atv.Value))
		}
	}
	return strings.Join(parts, ", ")
}

func colonHex(b []byte, upper bool) string {
	const lo, up = "0123456789abcdef", "0123456789ABCDEF"
	digits := lo
	if upper {
		digits = up
	}
	out := make([]byte, 0, len(b)*3)
	for i, x := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}

package tlshello

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Cert is the first certificate of a Certificate message, with the fields
// Suricata's EVE tls object carries and those that recognise a generated
// default certificate.
type Cert struct {
	DER             []byte // aliases the message body
	Subject, Issuer string // Suricata's form: "CN=x, O=y, C=US", RDNs in certificate order
	Serial          string // raw serial bytes, upper-case hex joined by ':' ("00" for serial 0)
	NotBefore       time.Time
	NotAfter        time.Time
	FingerprintSHA1 string // sha1 of DER, lower-case hex joined by ':'
	SelfSigned      bool   // issuer and subject are the same DER
	IsCA            bool   // basicConstraints cA is TRUE
	// ExtKeyUsageCount is the number of OIDs in extendedKeyUsage, known
	// and unknown.
	ExtKeyUsageCount       int
	HasSAN, HasSKI, HasAKI bool // the extension is present
	ChainLen               int  // certificate entries in the message
}

// ParseCertificate reads the first certificate of a Certificate message
// body (the bytes after the 4-byte handshake header). tls13 selects the
// TLS 1.3 layout: a certificate_request_context before the list and an
// extensions block after each certificate.
//
// The certificate is checked with crypto/x509. When x509 rejects it but the
// message framing is sound, the returned Cert still carries DER and
// FingerprintSHA1, and whatever a lenient reading of the to-be-signed part
// gives (names, serial, validity, extensions), with an error wrapping
// ErrMalformed.
func ParseCertificate(body []byte, tls13 bool) (Cert, error) {
	var c Cert
	r := reader{b: body}
	if tls13 {
		r.vec8() // certificate_request_context
	}
	list := reader{b: r.vec24()}
	if r.bad {
		return c, truncated("certificate list")
	}
	if len(r.b) != 0 {
		return c, malformed("certificate: data after the certificate list")
	}
	if len(list.b) == 0 {
		return c, malformed("certificate: empty certificate list")
	}
	var der []byte
	for len(list.b) > 0 {
		d := list.vec24()
		if tls13 {
			list.vec16() // per-entry extensions
		}
		if list.bad || len(d) == 0 {
			return c, malformed("certificate: entry overruns the certificate list")
		}
		if c.ChainLen == 0 {
			der = d
		}
		c.ChainLen++
	}
	c.DER = der
	sum := sha1.Sum(der)
	c.FingerprintSHA1 = colonHex(sum[:], false)

	tbsErr := c.readTBS(der)
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return c, fmt.Errorf("tlshello: certificate: %w: %v", ErrMalformed, err)
	}
	if tbsErr != nil {
		// The lenient reader accepts a superset of what x509 accepts, so
		// this does not happen; report it rather than return empty names.
		return c, tbsErr
	}
	c.NotBefore, c.NotAfter = x.NotBefore, x.NotAfter
	c.IsCA = x.BasicConstraintsValid && x.IsCA
	c.ExtKeyUsageCount = len(x.ExtKeyUsage) + len(x.UnknownExtKeyUsage)
	return c, nil
}

// PeekCertificate reads, without allocating, what decides whether the
// first certificate of a Certificate message body needs a full parse: its
// serial is zero and its issuer and subject are the same DER (the shape of
// a generated default certificate). ok is false when the message framing or
// the certificate's outer structure does not read.
func PeekCertificate(body []byte, tls13 bool) (serialZero, selfSigned, ok bool) {
	r := reader{b: body}
	if tls13 {
		r.vec8()
	}
	list := reader{b: r.vec24()}
	der := list.vec24()
	if r.bad || list.bad || len(der) == 0 {
		return false, false, false
	}
	cert, _, ok := derNext(der)
	if !ok || cert.tag != tagSequence {
		return false, false, false
	}
	tbs, _, ok := derNext(cert.content)
	if !ok || tbs.tag != tagSequence {
		return false, false, false
	}
	e, rest, ok := derNext(tbs.content)
	if ok && e.class == classContext && e.tag == 0 {
		e, rest, ok = derNext(rest)
	}
	if !ok || e.tag != tagInteger || len(e.content) == 0 {
		return false, false, false
	}
	serialZero = len(e.content) == 1 && e.content[0] == 0
	var issuer, subject derElem
	if _, rest, ok = derNext(rest); !ok { // signature algorithm
		return serialZero, false, false
	}
	if issuer, rest, ok = derNext(rest); !ok {
		return serialZero, false, false
	}
	if _, rest, ok = derNext(rest); !ok { // validity
		return serialZero, false, false
	}
	if subject, _, ok = derNext(rest); !ok {
		return serialZero, false, false
	}
	return serialZero, bytes.Equal(issuer.full, subject.full), true
}

// readTBS fills the fields it can from the DER without crypto/x509: the
// raw serial bytes, the names as Suricata prints them, validity and the
// extensions' presence.
func (c *Cert) readTBS(der []byte) error {
	cert, _, ok := derNext(der)
	if !ok || cert.tag != tagSequence {
		return errBadDER
	}
	tbs, _, ok := derNext(cert.content)
	if !ok || tbs.tag != tagSequence {
		return errBadDER
	}
	rest := tbs.content
	e, rest, ok := derNext(rest)
	if ok && e.class == classContext && e.tag == 0 { // [0] version
		e, rest, ok = derNext(rest)
	}
	if !ok || e.class != classUniversal || e.tag != tagInteger || len(e.content) == 0 {
		return errBadDER
	}
	c.Serial = colonHex(e.content, true)
	var sig, issuer, validity, subject derElem
	if sig, rest, ok = derNext(rest); !ok || sig.tag != tagSequence {
		return errBadDER
	}
	if issuer, rest, ok = derNext(rest); !ok || issuer.tag != tagSequence {
		return errBadDER
	}
	if validity, rest, ok = derNext(rest); !ok || validity.tag != tagSequence {
		return errBadDER
	}
	if subject, rest, ok = derNext(rest); !ok || subject.tag != tagSequence {
		return errBadDER
	}
	c.Issuer = dnString(issuer.content)
	c.Subject = dnString(subject.content)
	c.SelfSigned = bytes.Equal(issuer.full, subject.full)
	nb, vrest, ok1 := derNext(validity.content)
	na, _, ok2 := derNext(vrest)
	if ok1 && ok2 {
		c.NotBefore, _ = derTime(nb)
		c.NotAfter, _ = derTime(na)
	}
	// subjectPublicKeyInfo, then optional [1] [2] unique ids and [3] extensions.
	for len(rest) > 0 {
		if e, rest, ok = derNext(rest); !ok {
			return errBadDER
		}
		if e.class == classContext && e.tag == 3 {
			c.readExtensions(e.content)
		}
	}
	return nil
}

var (
	oidSKI              = []byte{0x55, 0x1d, 0x0e} // 2.5.29.14
	oidSAN              = []byte{0x55, 0x1d, 0x11} // 2.5.29.17
	oidBasicConstraints = []byte{0x55, 0x1d, 0x13} // 2.5.29.19
	oidAKI              = []byte{0x55, 0x1d, 0x23} // 2.5.29.35
	oidEKU              = []byte{0x55, 0x1d, 0x25} // 2.5.29.37
)

func (c *Cert) readExtensions(b []byte) {
	seq, _, ok := derNext(b)
	if !ok || seq.tag != tagSequence {
		return
	}
	for rest := seq.content; len(rest) > 0; {
		var ext derElem
		if ext, rest, ok = derNext(rest); !ok {
			return
		}
		oid, er, ok := derNext(ext.content)
		if !ok || oid.tag != tagOID {
			continue
		}
		val, er, ok := derNext(er)
		if ok && val.tag == tagBoolean { // critical
			val, _, ok = derNext(er)
		}
		if !ok || val.tag != tagOctetString {
			continue
		}
		switch {
		case bytes.Equal(oid.content, oidSKI):
			c.HasSKI = true
		case bytes.Equal(oid.content, oidSAN):
			c.HasSAN = true
		case bytes.Equal(oid.content, oidAKI):
			c.HasAKI = true
		case bytes.Equal(oid.content, oidBasicConstraints):
			bc, _, ok := derNext(val.content)
			if ok && bc.tag == tagSequence {
				if ca, _, ok := derNext(bc.content); ok && ca.tag == tagBoolean && len(ca.content) == 1 {
					c.IsCA = ca.content[0] != 0
				}
			}
		case bytes.Equal(oid.content, oidEKU):
			eku, _, ok := derNext(val.content)
			if ok && eku.tag == tagSequence {
				for r := eku.content; len(r) > 0; {
					var o derElem
					if o, r, ok = derNext(r); !ok {
						break
					}
					if o.tag == tagOID {
						c.ExtKeyUsageCount++
					}
				}
			}
		}
	}
}

// dnString prints an X.501 Name (the content of its SEQUENCE) as Suricata
// does through x509-parser: attributes "K=V" in certificate order, RDNs
// joined by ", ", the attributes of a multi-valued RDN by " + ". K is the
// usual abbreviation (CN, C, L, ST, O, OU, DC, Email), else the attribute's
// short name, else "OID(1.2.3)". V is the string for string types and the
// upper-case hex of the content for other types. A string that does not
// decode makes the whole name "<X509Error: Invalid X.509 name>", as there.
func dnString(b []byte) string {
	var sb strings.Builder
	for rest := b; len(rest) > 0; {
		set, r, ok := derNext(rest)
		rest = r
		if !ok || set.tag != tagSet {
			return ""
		}
		if sb.Len() > 0 {
			sb.WriteString(", ")
		}
		for i, attrs := 0, set.content; len(attrs) > 0; i++ {
			var atv derElem
			if atv, attrs, ok = derNext(attrs); !ok || atv.tag != tagSequence {
				return ""
			}
			oid, vr, ok := derNext(atv.content)
			if !ok || oid.tag != tagOID {
				return ""
			}
			val, _, ok := derNext(vr)
			if !ok {
				return ""
			}
			if i > 0 {
				sb.WriteString(" + ")
			}
			sb.WriteString(attrName(oid.content))
			sb.WriteByte('=')
			if !appendAttrValue(&sb, val) {
				return "<X509Error: Invalid X.509 name>"
			}
		}
	}
	return sb.String()
}

func appendAttrValue(sb *strings.Builder, v derElem) bool {
	switch v.tag {
	case 18, 26, 19, 27, 7, 25, 20, 21, 12, 22:
		// Numeric, Visible, Printable, General, ObjectDescriptor, Graphic,
		// T61, Videotex, UTF8 and IA5 strings: taken as UTF-8.
		if !utf8.Valid(v.content) {
			return false
		}
		sb.Write(v.content)
	case 30: // BMPString: UTF-16BE
		if len(v.content)%2 != 0 {
			return false
		}
		u := make([]uint16, len(v.content)/2)
		for i := range u {
			u[i] = uint16(v.content[2*i])<<8 | uint16(v.content[2*i+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == utf8.RuneError {
				return false
			}
			sb.WriteRune(r)
		}
	default:
		const digits = "0123456789ABCDEF"
		for _, x := range v.content {
			sb.WriteByte(digits[x>>4])
			sb.WriteByte(digits[x&15])
		}
	}
	return true
}

// attrNames maps the DER content of attribute-type OIDs to their names.
var attrNames = map[string]string{}

func init() {
	for dotted, name := range map[string]string{
		"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
		"0.9.2342.19200300.100.1.25": "DC", "1.2.840.113549.1.9.1": "Email",
		"2.5.4.0": "objectClass", "2.5.4.1": "aliasedEntryName", "2.5.4.2": "knowledgeInformation",
		"2.5.4.4": "surname", "2.5.4.5": "serialNumber", "2.5.4.9": "streetAddress", "2.5.4.12": "title",
		"2.5.4.13": "description", "2.5.4.14": "searchGuide", "2.5.4.15": "businessCategory",
		"2.5.4.16": "postalAddress", "2.5.4.17": "postalCode", "2.5.4.41": "name", "2.5.4.42": "givenName",
		"2.5.4.43": "initials", "2.5.4.44": "generationQualifier", "2.5.4.45": "uniqueIdentifier",
		"2.5.4.46": "dnQualifier", "0.9.2342.19200300.100.1.1": "uid",
		"1.2.840.113549.1.9.2": "unstructuredName", "1.2.840.113549.1.9.7": "challengePassword",
		"1.3.6.1.4.1.311.60.2.1.1": "msJurisdictionLocality",
		"1.3.6.1.4.1.311.60.2.1.2": "msJurisdictionStateOrProvince",
		"1.3.6.1.4.1.311.60.2.1.3": "msJurisdictionCountry",
	} {
		attrNames[string(encodeOID(dotted))] = name
	}
}

func attrName(oid []byte) string {
	if n, ok := attrNames[string(oid)]; ok {
		return n
	}
	if s, ok := oidString(oid); ok {
		return "OID(" + s + ")"
	}
	return "OID(?)"
}

// oidString decodes OID content octets into dotted form.
func oidString(b []byte) (string, bool) {
	if len(b) == 0 || b[len(b)-1]&0x80 != 0 {
		return "", false
	}
	var out []byte
	var v uint64
	first := true
	for i, x := range b {
		if v == 0 && x == 0x80 && (i == 0 || b[i-1]&0x80 == 0) {
			return "", false // non-minimal encoding
		}
		if v > 1<<56 {
			return "", false
		}
		v = v<<7 | uint64(x&0x7f)
		if x&0x80 != 0 {
			continue
		}
		if first {
			a := min(v/40, 2)
			out = strconv.AppendUint(out, a, 10)
			out = append(out, '.')
			out = strconv.AppendUint(out, v-40*a, 10)
			first = false
		} else {
			out = append(out, '.')
			out = strconv.AppendUint(out, v, 10)
		}
		v = 0
	}
	return string(out), true
}

// encodeOID encodes a dotted OID (only used on the constant table above).
func encodeOID(dotted string) []byte {
	parts := strings.Split(dotted, ".")
	arcs := make([]uint64, len(parts))
	for i, p := range parts {
		arcs[i], _ = strconv.ParseUint(p, 10, 64)
	}
	var out []byte
	put := func(v uint64) {
		var tmp [10]byte
		n := len(tmp) - 1
		tmp[n] = byte(v & 0x7f)
		for v >>= 7; v > 0; v >>= 7 {
			n--
			tmp[n] = byte(v&0x7f) | 0x80
		}
		out = append(out, tmp[n:]...)
	}
	put(arcs[0]*40 + arcs[1])
	for _, a := range arcs[2:] {
		put(a)
	}
	return out
}

func colonHex(b []byte, upper bool) string {
	digits := "0123456789abcdef"
	if upper {
		digits = "0123456789ABCDEF"
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

// A minimal DER reader: definite lengths only, which is all DER allows.

const (
	classUniversal = 0
	classContext   = 2

	tagBoolean     = 1
	tagInteger     = 2
	tagOctetString = 4
	tagOID         = 6
	tagSequence    = 16
	tagSet         = 17
)

var errBadDER = fmt.Errorf("tlshello: certificate: bad DER structure: %w", ErrMalformed)

type derElem struct {
	class   int
	tag     int
	content []byte
	full    []byte // header and content
}

// derNext reads one element from b and returns it and the bytes after it.
func derNext(b []byte) (e derElem, rest []byte, ok bool) {
	if len(b) < 2 {
		return e, nil, false
	}
	e.class = int(b[0] >> 6)
	e.tag = int(b[0] & 0x1f)
	i := 1
	if e.tag == 0x1f { // high tag number form
		e.tag = 0
		for {
			if i >= len(b) || e.tag > 1<<20 {
				return e, nil, false
			}
			x := b[i]
			i++
			e.tag = e.tag<<7 | int(x&0x7f)
			if x&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return e, nil, false
	}
	n := int(b[i])
	i++
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(b)-i < k { // indefinite or absurd length
			return e, nil, false
		}
		n = 0
		for _, x := range b[i : i+k] {
			n = n<<8 | int(x)
		}
		i += k
	}
	if n < 0 || len(b)-i < n {
		return e, nil, false
	}
	e.content = b[i : i+n : i+n]
	e.full = b[: i+n : i+n]
	return e, b[i+n:], true
}

// derTime decodes a UTCTime or GeneralizedTime in the forms RFC 5280 allows.
func derTime(e derElem) (time.Time, bool) {
	s := string(e.content)
	var layout string
	switch {
	case e.tag == 23 && len(s) == 13: // UTCTime YYMMDDHHMMSSZ
		layout = "060102150405Z0700"
	case e.tag == 24 && len(s) == 15: // GeneralizedTime YYYYMMDDHHMMSSZ
		layout = "20060102150405Z0700"
	default:
		return time.Time{}, false
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, false
	}
	if e.tag == 23 && t.Year() >= 2050 {
		t = t.AddDate(-100, 0, 0)
	}
	return t.UTC(), true
}

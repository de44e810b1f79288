package tlshello

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
)

// JA3 returns the JA3 string of a ClientHello and its md5 in lower-case
// hex: "Version,Ciphers,Extensions,Groups,PointFormats", decimal values
// joined by '-', with GREASE values removed from the ciphers, extensions
// and groups. Version is the legacy (ClientHello) version.
func JA3(c *ClientHello) (str, hash string) {
	b := make([]byte, 0, 16+6*(len(c.Ciphers)+len(c.Extensions)+len(c.Groups))+4*len(c.PointFormats))
	b = strconv.AppendUint(b, uint64(c.LegacyVersion), 10)
	b = append(b, ',')
	b = appendDecList(b, c.Ciphers)
	b = append(b, ',')
	b = appendDecList(b, c.Extensions)
	b = append(b, ',')
	b = appendDecList(b, c.Groups)
	b = append(b, ',')
	for i, p := range c.PointFormats {
		if i > 0 {
			b = append(b, '-')
		}
		b = strconv.AppendUint(b, uint64(p), 10)
	}
	return string(b), md5Hex(b)
}

// JA3S returns the JA3S string of a ServerHello and its md5 in lower-case
// hex: "Version,Cipher,Extensions" with GREASE extensions removed. Version
// is the legacy (ServerHello) version, as in the reference implementation;
// a TLS 1.3 server therefore shows 771.
func JA3S(s *ServerHello) (str, hash string) {
	b := make([]byte, 0, 16+6*len(s.Extensions))
	b = strconv.AppendUint(b, uint64(s.LegacyVersion), 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, uint64(s.Cipher), 10)
	b = append(b, ',')
	b = appendDecList(b, s.Extensions)
	return string(b), md5Hex(b)
}

func appendDecList(b []byte, vs []uint16) []byte {
	first := true
	for _, v := range vs {
		if IsGREASE(v) {
			continue
		}
		if !first {
			b = append(b, '-')
		}
		first = false
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return b
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// JA4 returns the JA4 fingerprint of a ClientHello carried over TCP
// ("t..."), following the FoxIO specification (technical_details/JA4.md):
//
//	a: 't', version ("13", "12", "11", "10", "s3", "s2", "d1", "d2", "d3",
//	   else "00") from MaxVersion, 'd' if the server_name extension is
//	   present else 'i', two-digit counts (capped at 99) of non-GREASE
//	   ciphers and of non-GREASE extensions (SNI and ALPN included), and
//	   the first and last characters of the first ALPN value ("00" if none)
//	b: first 12 hex digits of sha256 of the sorted 4-digit hex ciphers,
//	   comma-joined; "000000000000" if there are none
//	c: same of the sorted extensions without SNI (0000) and ALPN (0010),
//	   followed, when present, by '_' and the signature algorithms in wire
//	   order; "000000000000" if the sorted extension list is empty
//
// GREASE values are ignored everywhere, including signature algorithms and
// GREASE ALPN identifiers (the first non-GREASE ALPN value is used).
func JA4(c *ClientHello) string {
	a, ciphers, exts := ja4Parts(c)
	out := make([]byte, 0, 36)
	out = append(out, a...)
	out = append(out, '_')
	out = appendHash12(out, ciphers)
	out = append(out, '_')
	if len(exts) == 0 {
		out = append(out, "000000000000"...)
	} else {
		out = appendHash12(out, appendSigAlgs(exts, c.SigAlgs))
	}
	return string(out)
}

// JA4Raw returns the raw (sorted, unhashed) form of JA4, called JA4_r in
// the specification: the three parts with b and c left as the lists they
// would hash.
func JA4Raw(c *ClientHello) string {
	a, ciphers, exts := ja4Parts(c)
	out := append([]byte(nil), a...)
	out = append(out, '_')
	out = append(out, ciphers...)
	out = append(out, '_')
	out = appendSigAlgs(append(out, exts...), c.SigAlgs)
	return string(out)
}

// ja4Parts returns part a and the comma-joined sorted hex lists of ciphers
// and of extensions (SNI and ALPN removed).
func ja4Parts(c *ClientHello) (a []byte, ciphers, exts []byte) {
	cs := make([]uint16, 0, len(c.Ciphers)+len(c.Extensions))
	for _, v := range c.Ciphers {
		if !IsGREASE(v) {
			cs = append(cs, v)
		}
	}
	nc := len(cs)
	es := cs[nc:]
	ne := 0
	for _, v := range c.Extensions {
		if IsGREASE(v) {
			continue
		}
		ne++
		if v != ExtServerName && v != ExtALPN {
			es = append(es, v)
		}
	}
	cs = cs[:nc:nc]

	a = make([]byte, 0, 10)
	a = append(a, 't')
	a = append(a, ja4Version(c.MaxVersion())...)
	if c.HasExtension(ExtServerName) {
		a = append(a, 'd')
	} else {
		a = append(a, 'i')
	}
	a = append2d(a, nc)
	a = append2d(a, ne)
	a = appendALPN(a, c.ALPN)

	slices.Sort(cs)
	slices.Sort(es)
	return a, appendHexList(nil, cs), appendHexList(nil, es)
}

func ja4Version(v uint16) string {
	switch v {
	case VersionTLS13:
		return "13"
	case VersionTLS12:
		return "12"
	case VersionTLS11:
		return "11"
	case VersionTLS10:
		return "10"
	case VersionSSL3:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

func append2d(b []byte, n int) []byte {
	n = min(n, 99)
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

// appendALPN appends the two ALPN characters of JA4_a.
func appendALPN(b []byte, alpn []string) []byte {
	var v string
	found := false
	for _, p := range alpn {
		if len(p) == 2 && IsGREASE(uint16(p[0])<<8|uint16(p[1])) {
			continue
		}
		v, found = p, true
		break
	}
	if !found || v == "" {
		return append(b, '0', '0')
	}
	first, last := v[0], v[len(v)-1]
	if isAlnum(first) && isAlnum(last) {
		return append(b, first, last)
	}
	const digits = "0123456789abcdef"
	return append(b, digits[first>>4], digits[last&0x0f])
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func appendHexList(b []byte, vs []uint16) []byte {
	const digits = "0123456789abcdef"
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf])
	}
	return b
}

// appendSigAlgs appends "_" and the non-GREASE signature algorithms in wire
// order, or nothing when there are none.
func appendSigAlgs(b []byte, sigs []uint16) []byte {
	first := true
	for _, v := range sigs {
		if IsGREASE(v) {
			continue
		}
		if first {
			b = append(b, '_')
		} else {
			b = append(b, ',')
		}
		first = false
		b = appendHexList(b, []uint16{v})
	}
	return b
}

func appendHash12(b, s []byte) []byte {
	if len(s) == 0 {
		return append(b, "000000000000"...)
	}
	sum := sha256.Sum256(s)
	var h [64]byte
	hex.Encode(h[:], sum[:])
	return append(b, h[:12]...)
}

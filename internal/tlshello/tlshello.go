// Package tlshello parses the cleartext TLS handshake messages a passive
// observer sees (ClientHello, ServerHello, and the Certificate message of
// TLS <= 1.2) and computes JA3, JA3S and JA4. Every length is checked: no
// input makes it panic.
package tlshello

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Handshake message types.
const (
	TypeClientHello       uint8 = 1
	TypeServerHello       uint8 = 2
	TypeCertificate       uint8 = 11
	TypeServerKeyExchange uint8 = 12
	TypeServerHelloDone   uint8 = 14
)

// Extension numbers used here.
const (
	ExtServerName          uint16 = 0
	ExtSupportedGroups     uint16 = 10
	ExtECPointFormats      uint16 = 11
	ExtSignatureAlgorithms uint16 = 13
	ExtALPN                uint16 = 16
	ExtSessionTicket       uint16 = 35
	ExtSupportedVersions   uint16 = 43
)

// Errors.
var (
	ErrTruncated = errors.New("tls handshake truncated")
	ErrMalformed = errors.New("tls handshake malformed")
)

// Messages walks complete handshake messages in b and calls fn for each;
// it returns the bytes consumed. fn returns false to stop.
func Messages(b []byte, fn func(typ uint8, body []byte) bool) int {
	off := 0
	for len(b)-off >= 4 {
		n := int(b[off+1])<<16 | int(b[off+2])<<8 | int(b[off+3])
		if len(b)-off-4 < n {
			break
		}
		body := b[off+4 : off+4+n]
		typ := b[off]
		off += 4 + n
		if !fn(typ, body) {
			break
		}
	}
	return off
}

// reader is a bounds-checked cursor.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u8() uint8 {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if len(r.b) < 2 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// IsGREASE reports whether v is a GREASE value (RFC 8701).
func IsGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// ClientHello is what a ClientHello says.
type ClientHello struct {
	LegacyVersion     uint16
	SessionIDLen      int
	Ciphers           []uint16
	Extensions        []uint16
	SNI               string
	ALPN              []string
	SupportedVersions []uint16
	Groups            []uint16
	PointFormats      []uint8
	SigAlgs           []uint16
}

// HasExtension reports whether the hello carried extension t.
func (c *ClientHello) HasExtension(t uint16) bool {
	for _, e := range c.Extensions {
		if e == t {
			return true
		}
	}
	return false
}

// MaxVersion is the highest non-GREASE supported_versions entry, or the
// legacy version when the extension is absent.
func (c *ClientHello) MaxVersion() uint16 {
	v := uint16(0)
	for _, s := range c.SupportedVersions {
		if !IsGREASE(s) && s > v {
			v = s
		}
	}
	if v == 0 {
		return c.LegacyVersion
	}
	return v
}

// ParseClientHello parses a ClientHello message body.
func ParseClientHello(body []byte) (ClientHello, error) {
	var c ClientHello
	r := reader{b: body}
	c.LegacyVersion = r.u16()
	r.bytes(32) // random
	sid := r.bytes(int(r.u8()))
	c.SessionIDLen = len(sid)
	cs := reader{b: r.bytes(int(r.u16()))}
	for len(cs.b) >= 2 {
		c.Ciphers = append(c.Ciphers, cs.u16())
	}
	r.bytes(int(r.u8())) // compression methods
	if r.bad {
		return c, fmt.Errorf("client hello: %w", ErrTruncated)
	}
	if len(r.b) == 0 {
		return c, nil // no extensions
	}
	ext := reader{b: r.bytes(int(r.u16()))}
	if r.bad {
		return c, fmt.Errorf("client hello extensions: %w", ErrTruncated)
	}
	for len(ext.b) >= 4 {
		t := ext.u16()
		data := ext.bytes(int(ext.u16()))
		if ext.bad {
			return c, fmt.Errorf("client hello extension %d: %w", t, ErrTruncated)
		}
		c.Extensions = append(c.Extensions, t)
		d := reader{b: data}
		switch t {
		case ExtServerName:
			list := reader{b: d.bytes(int(d.u16()))}
			for len(list.b) >= 3 {
				typ := list.u8()
				name := list.bytes(int(list.u16()))
				if typ == 0 && c.SNI == "" {
					c.SNI = string(name)
				}
			}
		case ExtALPN:
			list := reader{b: d.bytes(int(d.u16()))}
			for len(list.b) >= 1 {
				p := list.bytes(int(list.u8()))
				if list.bad {
					break
				}
				c.ALPN = append(c.ALPN, string(p))
			}
		case ExtSupportedGroups:
			list := reader{b: d.bytes(int(d.u16()))}
			for len(list.b) >= 2 {
				c.Groups = append(c.Groups, list.u16())
			}
		case ExtECPointFormats:
			c.PointFormats = append(c.PointFormats, d.bytes(int(d.u8()))...)
		case ExtSignatureAlgorithms:
			list := reader{b: d.bytes(int(d.u16()))}
			for len(list.b) >= 2 {
				c.SigAlgs = append(c.SigAlgs, list.u16())
			}
		case ExtSupportedVersions:
			list := reader{b: d.bytes(int(d.u8()))}
			for len(list.b) >= 2 {
				c.SupportedVersions = append(c.SupportedVersions, list.u16())
			}
		}
	}
	if len(ext.b) != 0 {
		return c, fmt.Errorf("client hello: %w: trailing extension bytes", ErrMalformed)
	}
	return c, nil
}

// ServerHello is what a ServerHello says.
type ServerHello struct {
	LegacyVersion   uint16
	SelectedVersion uint16 // supported_versions choice (TLS 1.3), else 0
	Cipher          uint16
	Extensions      []uint16
	ALPN            string
}

// ParseServerHello parses a ServerHello message body.
func ParseServerHello(body []byte) (ServerHello, error) {
	var s ServerHello
	r := reader{b: body}
	s.LegacyVersion = r.u16()
	r.bytes(32)
	r.bytes(int(r.u8()))
	s.Cipher = r.u16()
	r.u8() // compression
	if r.bad {
		return s, fmt.Errorf("server hello: %w", ErrTruncated)
	}
	if len(r.b) == 0 {
		return s, nil
	}
	ext := reader{b: r.bytes(int(r.u16()))}
	if r.bad {
		return s, fmt.Errorf("server hello extensions: %w", ErrTruncated)
	}
	for len(ext.b) >= 4 {
		t := ext.u16()
		data := ext.bytes(int(ext.u16()))
		if ext.bad {
			return s, fmt.Errorf("server hello extension %d: %w", t, ErrTruncated)
		}
		s.Extensions = append(s.Extensions, t)
		d := reader{b: data}
		switch t {
		case ExtSupportedVersions:
			s.SelectedVersion = d.u16()
		case ExtALPN:
			list := reader{b: d.bytes(int(d.u16()))}
			s.ALPN = string(list.bytes(int(list.u8())))
		}
	}
	return s, nil
}

// VersionString names a TLS version as Suricata's tls.version does.
func VersionString(v uint16) string {
	switch v {
	case 0x0304:
		return "TLS 1.3"
	case 0x0303:
		return "TLS 1.2"
	case 0x0302:
		return "TLS 1.1"
	case 0x0301:
		return "TLS 1.0"
	case 0x0300:
		return "SSLv3"
	}
	return "UNDETERMINED"
}

func join16(vs []uint16, skipGrease bool) string {
	var sb strings.Builder
	first := true
	for _, v := range vs {
		if skipGrease && IsGREASE(v) {
			continue
		}
		if !first {
			sb.WriteByte('-')
		}
		first = false
		sb.WriteString(strconv.Itoa(int(v)))
	}
	return sb.String()
}

// JA3 returns the JA3 string and its md5 (GREASE removed).
func JA3(c *ClientHello) (string, string) {
	pf := make([]string, len(c.PointFormats))
	for i, p := range c.PointFormats {
		pf[i] = strconv.Itoa(int(p))
	}
	s := fmt.Sprintf("%d,%s,%s,%s,%s", c.LegacyVersion, join16(c.Ciphers, true), join16(c.Extensions, true),
		join16(c.Groups, true), strings.Join(pf, "-"))
	sum := md5.Sum([]byte(s))
	return s, hex.EncodeToString(sum[:])
}

// JA3S returns the JA3S string and its md5.
func JA3S(s *ServerHello) (string, string) {
	str := fmt.Sprintf("%d,%d,%s", s.LegacyVersion, s.Cipher, join16(s.Extensions, true))
	sum := md5.Sum([]byte(str))
	return str, hex.EncodeToString(sum[:])
}

// JA4 returns the JA4 fingerprint of a ClientHello seen over TCP.
func JA4(c *ClientHello) string {
	ver := "00"
	switch c.MaxVersion() {
	case 0x0304:
		ver = "13"
	case 0x0303:
		ver = "12"
	case 0x0302:
		ver = "11"
	case 0x0301:
		ver = "10"
	case 0x0300:
		ver = "s3"
	}
	sni := "i"
	if c.HasExtension(ExtServerName) {
		sni = "d"
	}
	var ciphers, exts []string
	for _, v := range c.Ciphers {
		if !IsGREASE(v) {
			ciphers = append(ciphers, fmt.Sprintf("%04x", v))
		}
	}
	nExt := 0
	for _, v := range c.Extensions {
		if IsGREASE(v) {
			continue
		}
		nExt++
		if v != ExtServerName && v != ExtALPN {
			exts = append(exts, fmt.Sprintf("%04x", v))
		}
	}
	alpn := "00"
	if len(c.ALPN) > 0 && len(c.ALPN[0]) > 0 {
		a := c.ALPN[0]
		first, last := a[0], a[len(a)-1]
		if isAlnum(first) && isAlnum(last) {
			alpn = string([]byte{first, last})
		} else {
			h := hex.EncodeToString([]byte(a))
			alpn = string([]byte{h[0], h[len(h)-1]})
		}
	}
	a := fmt.Sprintf("t%s%s%02d%02d%s", ver, sni, min(len(ciphers), 99), min(nExt, 99), alpn)
	sort.Strings(ciphers)
	sort.Strings(exts)
	b := "000000000000"
	if len(ciphers) > 0 {
		b = hash12(strings.Join(ciphers, ","))
	}
	var sig []string
	for _, v := range c.SigAlgs {
		if !IsGREASE(v) {
			sig = append(sig, fmt.Sprintf("%04x", v))
		}
	}
	cs := strings.Join(exts, ",")
	if len(sig) > 0 {
		cs += "_" + strings.Join(sig, ",")
	}
	cpart := "000000000000"
	if len(exts) > 0 {
		cpart = hash12(cs)
	}
	return a + "_" + b + "_" + cpart
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func hash12(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:12]
}

// Package tlshello parses the cleartext TLS handshake messages a passive
// observer sees on the wire: ClientHello, ServerHello and the Certificate
// message (TLS <= 1.2 layout, and the TLS 1.3 layout for callers that have
// it in clear). It computes JA3, JA3S and JA4, and prints certificate fields
// the way Suricata's EVE tls object does.
//
// The caller strips TLS record headers and passes the concatenated
// handshake-protocol bytes of one direction to Messages, or one handshake
// message body to the Parse functions. Every length is checked against the
// input: no input makes the package panic, and hostile lengths produce
// errors wrapping ErrTruncated or ErrMalformed. The package uses only the
// standard library.
package tlshello

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Handshake message types (RFC 8446 section 4, RFC 5246 section 7.4).
const (
	TypeHelloRequest        uint8 = 0
	TypeClientHello         uint8 = 1
	TypeServerHello         uint8 = 2
	TypeNewSessionTicket    uint8 = 4
	TypeEncryptedExtensions uint8 = 8
	TypeCertificate         uint8 = 11
	TypeServerKeyExchange   uint8 = 12
	TypeCertificateRequest  uint8 = 13
	TypeServerHelloDone     uint8 = 14
	TypeCertificateVerify   uint8 = 15
	TypeClientKeyExchange   uint8 = 16
	TypeFinished            uint8 = 20
)

// Extension numbers this package reads or names.
const (
	ExtServerName          uint16 = 0
	ExtSupportedGroups     uint16 = 10
	ExtECPointFormats      uint16 = 11
	ExtSignatureAlgorithms uint16 = 13
	ExtALPN                uint16 = 16
	ExtEncryptThenMAC      uint16 = 22
	ExtExtendedMasterSec   uint16 = 23
	ExtSessionTicket       uint16 = 35
	ExtPreSharedKey        uint16 = 41
	ExtSupportedVersions   uint16 = 43
	ExtPSKKeyExchangeModes uint16 = 45
	ExtKeyShare            uint16 = 51
	ExtRenegotiationInfo   uint16 = 0xff01
)

// TLS protocol versions as they appear on the wire.
const (
	VersionSSL2  uint16 = 0x0200
	VersionSSL3  uint16 = 0x0300
	VersionTLS10 uint16 = 0x0301
	VersionTLS11 uint16 = 0x0302
	VersionTLS12 uint16 = 0x0303
	VersionTLS13 uint16 = 0x0304
)

// Sentinel errors. Every error returned by this package wraps one of them.
var (
	// ErrTruncated: the input ends before a length it declares.
	ErrTruncated = errors.New("tls handshake truncated")
	// ErrMalformed: the input is complete but violates the message syntax.
	ErrMalformed = errors.New("tls handshake malformed")
)

func truncated(what string) error { return fmt.Errorf("tlshello: %s: %w", what, ErrTruncated) }

func malformed(what string) error { return fmt.Errorf("tlshello: %s: %w", what, ErrMalformed) }

// Messages walks the handshake messages (1-byte type, 3-byte length, body)
// in b and calls fn for each complete one, in order, until fn returns false.
// It returns the number of bytes consumed: the messages passed to fn (the
// one fn stopped on included). An incomplete trailing message is not
// consumed, so the caller can keep it and append more bytes. The body
// passed to fn aliases b.
func Messages(b []byte, fn func(typ uint8, body []byte) bool) int {
	off := 0
	for len(b)-off >= 4 {
		n := int(b[off+1])<<16 | int(b[off+2])<<8 | int(b[off+3])
		if len(b)-off-4 < n {
			break
		}
		typ, body := b[off], b[off+4:off+4+n:off+4+n]
		off += 4 + n
		if !fn(typ, body) {
			break
		}
	}
	return off
}

// Message returns the body of the first complete handshake message of
// type typ in hs, or nil while there is none.
func Message(hs []byte, typ uint8) []byte {
	var body []byte
	Messages(hs, func(t uint8, b []byte) bool {
		if t == typ {
			body = b
			return false
		}
		return true
	})
	return body
}

// IsGREASE reports whether v is one of the 16 GREASE values of RFC 8701
// (0x0a0a, 0x1a1a, ... 0xfafa).
func IsGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// VersionString names a protocol version as Suricata prints tls.version:
// "TLS 1.3", "TLS 1.2", "TLS 1.1", "TLSv1", "SSLv3", "SSLv2", the TLS 1.3
// drafts as "TLS 1.3 draft-NN", and "UNDETERMINED" for anything else
// (Suricata records no version it does not know).
func VersionString(v uint16) string {
	switch v {
	case VersionTLS13:
		return "TLS 1.3"
	case VersionTLS12:
		return "TLS 1.2"
	case VersionTLS11:
		return "TLS 1.1"
	case VersionTLS10:
		return "TLSv1"
	case VersionSSL3:
		return "SSLv3"
	case VersionSSL2:
		return "SSLv2"
	case 0x7f01:
		return "TLS 1.3 draft-<16"
	case 0xfb14, 0xfb15, 0xfb16, 0xfb17, 0xfb1a:
		return draftNames[v&0xff-0x10] + "-fb"
	}
	if v >= 0x7f10 && v <= 0x7f1c {
		return draftNames[v&0xff-0x10]
	}
	return "UNDETERMINED"
}

var draftNames = [...]string{
	"TLS 1.3 draft-16", "TLS 1.3 draft-17", "TLS 1.3 draft-18", "TLS 1.3 draft-19",
	"TLS 1.3 draft-20", "TLS 1.3 draft-21", "TLS 1.3 draft-22", "TLS 1.3 draft-23",
	"TLS 1.3 draft-24", "TLS 1.3 draft-25", "TLS 1.3 draft-26", "TLS 1.3 draft-27",
	"TLS 1.3 draft-28",
}

// reader is a bounds-checked cursor. After the first short read every
// further read returns zero values and bad stays set.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u8() uint8 {
	if r.bad || len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if r.bad || len(r.b) < 2 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u24() int {
	if r.bad || len(r.b) < 3 {
		r.fail()
		return 0
	}
	v := int(r.b[0])<<16 | int(r.b[1])<<8 | int(r.b[2])
	r.b = r.b[3:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if r.bad || n < 0 || len(r.b) < n {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) vec8() []byte  { return r.bytes(int(r.u8())) }
func (r *reader) vec16() []byte { return r.bytes(int(r.u16())) }
func (r *reader) vec24() []byte { return r.bytes(r.u24()) }

func (r *reader) fail() {
	r.bad = true
	r.b = nil
}

// done reports whether the reader consumed its input exactly.
func (r *reader) done() bool { return !r.bad && len(r.b) == 0 }

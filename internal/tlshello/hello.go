package tlshello

import "fmt"

// ClientHello is what a ClientHello says. Lists are in wire order with
// GREASE values kept; the fingerprint functions drop them.
type ClientHello struct {
	LegacyVersion     uint16
	SessionIDLen      int
	Ciphers           []uint16
	Extensions        []uint16 // extension types in wire order
	SNI               string   // first host_name of server_name; "" when absent
	ALPN              []string // protocol names in wire order; nil when absent
	SupportedVersions []uint16
	Groups            []uint16
	PointFormats      []uint8
	SigAlgs           []uint16

	// Filled by a scan (ScanClientHello) instead of the lists above.
	scan         bool
	nCiphers     int
	alpn, ticket bool
	sniRaw       []byte
	order        opensslOrder
}

// HelloScan is what ScanClientHello reads of a ClientHello without
// allocating: enough to decide whether the full parse is worth it.
type HelloScan struct {
	Ciphers      int    // cipher suites offered (GREASE included)
	ALPN, Ticket bool   // application_layer_protocol_negotiation, session_ticket present
	SNI          []byte // the first host_name (aliases the body); nil when absent
	// OpenSSLOrder: the extensions are in the order OpenSSL's client
	// writes them (ClientHello.OpenSSLOrder).
	OpenSSLOrder bool
}

// OpenSSLNoALPN is ClientHello.OpenSSLNoALPN on the scanned facts.
func (h *HelloScan) OpenSSLNoALPN() bool {
	return !h.ALPN && !h.Ticket && h.Ciphers >= 20 && h.OpenSSLOrder
}

// ScanClientHello reads a ClientHello body exactly as ParseClientHello
// does (the same checks, the same error) but keeps no lists or strings,
// so it allocates nothing; whenever ParseClientHello succeeds, the scan's
// facts are the parse's.
func ScanClientHello(body []byte) (HelloScan, error) {
	c := ClientHello{scan: true}
	err := c.parse(body)
	return HelloScan{Ciphers: c.nCiphers, ALPN: c.alpn, Ticket: c.ticket, SNI: c.sniRaw, OpenSSLOrder: c.order.ok()}, err
}

// OpenSSLNoALPN: no ALPN, no session_ticket, at least 20 cipher suites
// and the extensions in OpenSSL's order, the ClientHello OpenSSL sends as
// SoftEther's client configures it (many OpenSSL-based tools send it too:
// corroboration only).
func (c *ClientHello) OpenSSLNoALPN() bool {
	return !c.HasExtension(ExtALPN) && !c.HasExtension(ExtSessionTicket) && len(c.Ciphers) >= 20 && c.OpenSSLOrder()
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
// legacy version when the extension is absent or lists only GREASE.
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

// ParseClientHello parses a ClientHello message body (the bytes after the
// 4-byte handshake header). On error the returned value holds what was read
// before the error; a malformed extension body does not stop the walk of the
// extension list, so Extensions is complete whenever the list itself is.
func ParseClientHello(body []byte) (ClientHello, error) {
	var c ClientHello
	err := c.parse(body)
	c.sniRaw = nil // the parse keeps a copy; the body is not pinned
	return c, err
}

func (c *ClientHello) parse(body []byte) error {
	r := reader{b: body}
	c.LegacyVersion = r.u16()
	r.bytes(32) // random
	sid := r.vec8()
	cs := r.vec16()
	comp := r.vec8()
	if r.bad {
		return truncated("client hello")
	}
	c.SessionIDLen = len(sid)
	if len(sid) > 32 {
		return malformed("client hello: session id longer than 32 bytes")
	}
	if len(cs) == 0 || len(cs)%2 != 0 {
		return malformed("client hello: cipher suites length")
	}
	if len(comp) == 0 {
		return malformed("client hello: no compression methods")
	}
	var ext []byte
	if len(r.b) > 0 {
		ext = r.vec16()
		if r.bad {
			return truncated("client hello extensions")
		}
	}
	c.nCiphers = len(cs) / 2
	var a alloc16
	if !c.scan {
		// One backing array for every uint16 list: the ciphers, the
		// extension types (at most len(ext)/4) and the lists inside
		// extensions (at most len(ext)/2 values in all).
		a.buf = make([]uint16, 0, len(cs)/2+len(ext)/4+len(ext)/2)
		c.Ciphers = a.take(len(cs) / 2)
		for i := range c.Ciphers {
			c.Ciphers[i] = uint16(cs[2*i])<<8 | uint16(cs[2*i+1])
		}
		c.Extensions = a.take(len(ext) / 4)[:0]
	}
	err := c.parseExtensions(ext, &a)
	if err == nil && len(r.b) != 0 {
		err = malformed("client hello: data after extensions")
	}
	return err
}

func (c *ClientHello) parseExtensions(b []byte, a *alloc16) error {
	var first error
	var seen [8]bool // the extensions read below, by index in readExt
	r := reader{b: b}
	for len(r.b) > 0 {
		t := r.u16()
		data := r.vec16()
		if r.bad {
			return malformed(fmt.Sprintf("client hello extension %d: overruns the extension list", t))
		}
		if c.scan {
			c.alpn = c.alpn || t == ExtALPN
			c.ticket = c.ticket || t == ExtSessionTicket
			c.order.add(t)
		} else {
			c.Extensions = append(c.Extensions, t)
		}
		i := extIndex(t)
		if i < 0 {
			continue
		}
		if seen[i] {
			if first == nil {
				first = malformed(fmt.Sprintf("client hello: duplicate extension %d", t))
			}
			continue
		}
		seen[i] = true
		if err := c.readExt(t, data, a); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func extIndex(t uint16) int {
	switch t {
	case ExtServerName:
		return 0
	case ExtALPN:
		return 1
	case ExtSupportedGroups:
		return 2
	case ExtECPointFormats:
		return 3
	case ExtSignatureAlgorithms:
		return 4
	case ExtSupportedVersions:
		return 5
	}
	return -1
}

func (c *ClientHello) readExt(t uint16, data []byte, a *alloc16) error {
	d := reader{b: data}
	ok := true
	switch t {
	case ExtServerName:
		list := reader{b: d.vec16()}
		ok = len(list.b) > 0
		for len(list.b) > 0 && ok {
			typ := list.u8()
			name := list.vec16()
			ok = !list.bad
			if ok && typ == 0 && c.sniRaw == nil && len(name) > 0 {
				c.sniRaw = name
				if !c.scan {
					c.SNI = string(name)
				}
			}
		}
	case ExtALPN:
		list := d.vec16()
		ok = len(list) > 0
		n := 0
		for l := (reader{b: list}); len(l.b) > 0 && !l.bad; n++ {
			l.vec8()
			ok = ok && !l.bad
		}
		if !ok || c.scan {
			break
		}
		// One string for the whole list; the names are substrings of it.
		s := string(list)
		c.ALPN = make([]string, 0, n)
		for off := 0; off < len(s); {
			l := int(s[off])
			c.ALPN = append(c.ALPN, s[off+1:off+1+l])
			off += 1 + l
		}
	case ExtSupportedGroups:
		c.Groups, ok = a.list(d.vec16(), c.scan)
	case ExtSignatureAlgorithms:
		c.SigAlgs, ok = a.list(d.vec16(), c.scan)
	case ExtSupportedVersions:
		c.SupportedVersions, ok = a.list(d.vec8(), c.scan)
	case ExtECPointFormats:
		pf := d.vec8()
		ok = len(pf) > 0
		if !c.scan {
			c.PointFormats = append([]uint8(nil), pf...)
		}
	}
	if !ok || !d.done() {
		return malformed(fmt.Sprintf("client hello extension %d", t))
	}
	return nil
}

// alloc16 hands out subslices of one preallocated array. Each subslice has
// its capacity capped, so appending to one never overwrites another.
type alloc16 struct{ buf []uint16 }

func (a *alloc16) take(n int) []uint16 {
	if n > cap(a.buf)-len(a.buf) { // cannot happen with the sizes used; stay safe
		return make([]uint16, n)
	}
	s := a.buf[len(a.buf) : len(a.buf)+n : len(a.buf)+n]
	a.buf = a.buf[:len(a.buf)+n]
	return s
}

// list decodes a non-empty, even-length list of uint16 (only checks it
// when checkOnly is set).
func (a *alloc16) list(b []byte, checkOnly bool) ([]uint16, bool) {
	if len(b) == 0 || len(b)%2 != 0 {
		return nil, false
	}
	if checkOnly {
		return nil, true
	}
	s := a.take(len(b) / 2)
	for i := range s {
		s[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return s, true
}

// ServerHello is what a ServerHello (or HelloRetryRequest) says.
type ServerHello struct {
	LegacyVersion     uint16
	SelectedVersion   uint16 // supported_versions choice (TLS 1.3), else 0
	Cipher            uint16
	Extensions        []uint16 // extension types in wire order
	ALPN              string   // the selected protocol; "" when absent
	SessionIDLen      int
	HelloRetryRequest bool // the random is the RFC 8446 HelloRetryRequest value
}

// Version is the negotiated version: SelectedVersion when set, else the
// legacy version.
func (s *ServerHello) Version() uint16 {
	if s.SelectedVersion != 0 {
		return s.SelectedVersion
	}
	return s.LegacyVersion
}

// helloRetryRandom is SHA-256("HelloRetryRequest") (RFC 8446 section 4.1.3).
var helloRetryRandom = [32]byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

// ParseServerHello parses a ServerHello message body (the bytes after the
// 4-byte handshake header).
func ParseServerHello(body []byte) (ServerHello, error) {
	return parseServerHello(body, false)
}

// ScanServerHello reads a ServerHello body exactly as ParseServerHello
// does (the same checks, the same error) and returns it without the
// extension list and ALPN name, allocating nothing.
func ScanServerHello(body []byte) (ServerHello, error) {
	return parseServerHello(body, true)
}

func parseServerHello(body []byte, scan bool) (ServerHello, error) {
	var s ServerHello
	r := reader{b: body}
	s.LegacyVersion = r.u16()
	random := r.bytes(32)
	sid := r.vec8()
	s.Cipher = r.u16()
	r.u8() // compression method
	if r.bad {
		return s, truncated("server hello")
	}
	s.HelloRetryRequest = [32]byte(random) == helloRetryRandom
	s.SessionIDLen = len(sid)
	if len(sid) > 32 {
		return s, malformed("server hello: session id longer than 32 bytes")
	}
	if len(r.b) == 0 {
		return s, nil
	}
	ext := reader{b: r.vec16()}
	if r.bad {
		return s, truncated("server hello extensions")
	}
	var first error
	if len(r.b) != 0 {
		first = malformed("server hello: data after extensions")
	}
	if !scan {
		s.Extensions = make([]uint16, 0, len(ext.b)/4)
	}
	for len(ext.b) > 0 {
		t := ext.u16()
		data := ext.vec16()
		if ext.bad {
			return s, malformed(fmt.Sprintf("server hello extension %d: overruns the extension list", t))
		}
		if !scan {
			s.Extensions = append(s.Extensions, t)
		}
		d := reader{b: data}
		ok := true
		switch t {
		case ExtSupportedVersions:
			s.SelectedVersion = d.u16()
		case ExtALPN:
			list := reader{b: d.vec16()}
			name := list.vec8()
			ok = len(name) > 0 && list.done()
			if !scan {
				s.ALPN = string(name)
			}
		default:
			continue
		}
		if (!ok || !d.done()) && first == nil {
			first = malformed(fmt.Sprintf("server hello extension %d", t))
		}
	}
	return s, first
}

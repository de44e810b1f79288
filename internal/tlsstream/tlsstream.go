// Package tlsstream follows the TLS record layer of one TCP direction
// without reassembling the stream: it only needs the 5-byte record headers,
// whose positions follow from the previous record's length, so segments lost
// or reordered inside a record body cost nothing. Handshake records of the
// first flight are collected (bounded) for hello parsing, within the
// engine's budget for per-flow buffers.
package tlsstream

import (
	"encoding/binary"

	"github.com/sewatch/sewatch/internal/membudget"
	"github.com/sewatch/sewatch/internal/tlshello"
)

// Content types.
const (
	TypeChangeCipherSpec uint8 = 20
	TypeAlert            uint8 = 21
	TypeHandshake        uint8 = 22
	TypeApplicationData  uint8 = 23
)

// MaxHandshake bounds the handshake bytes kept per direction.
const MaxHandshake = 16 << 10

// maxRecord is the largest plausible record length (2^14 + 2048 expansion).
const maxRecord = 16384 + 2048

// Record is one TLS record header seen on the wire.
type Record struct {
	Type   uint8
	Length int
}

// Dir tracks one direction. The zero value waits for Start. Fields are
// ordered and sized so that a Dir is 120 bytes: every TLS connection has
// six of them (two in each of three inspectors).
type Dir struct {
	// Handshake bytes (record bodies of type 22) while Collect is set. The
	// buffer comes from the worker's pool and goes back to it when freed
	// or grown: keep a message as a Msg, never as a slice of HS.
	HS []byte
	// h is what HS's capacity holds reserved in the flow's account of the
	// engine's buffer budget (see SetBudget).
	h membudget.Holder
	// Inside a record: bytes of body still to come.
	remain int
	next   uint32
	// Counters.
	Records int32
	Desyncs int32
	// Partial header bytes when a header straddles segments.
	hdr  [5]byte
	nhdr uint8
	cur  uint8
	// gen counts the buffers HS has let go (Free, shed): a Msg kept
	// before is stale.
	gen     uint8
	started bool
	synced  bool
	lost    bool // desynchronised: waiting for a segment that starts with a header
	Collect bool
	hsBroke bool
	// Shed: the budget refused HS room, so the handshake was dropped.
	Shed     bool
	Overflow bool
}

// Start begins record parsing at stream position seq (the first byte of a
// TLS record). synced=false means the position is a guess (mid-stream).
func (d *Dir) Start(seq uint32, synced bool) {
	*d = Dir{Collect: d.Collect, HS: d.HS[:0], h: d.h, gen: d.gen + 1, started: true, synced: synced, next: seq}
}

// SetBudget makes HS's growth reserve from the worker's account a (nil: no
// budget); *kept (may be nil) says the flow gave evidence, so its buffer is
// shed last. Call it once per flow, before Start.
func (d *Dir) SetBudget(a *membudget.Account, kept *bool) { d.h.Bind(a, kept, d) }

// Free gives the handshake buffer back to the worker's pool (its bytes to
// the budget when the pool is full). The owner calls it when it no longer
// needs HS and before the Dir is reused or forgotten (flow end). Every Msg
// kept from the buffer reads nil from now on: the buffer may hold another
// flow's handshake.
func (d *Dir) Free() {
	if d.HS != nil {
		d.h.Return(d.HS)
		d.HS = nil
		d.gen++
	}
	d.h.Free()
}

// ShedBuffer implements membudget.Shedder: the budget took this buffer's
// room for another flow, so the handshake being collected is given up.
func (d *Dir) ShedBuffer() {
	d.Free()
	d.Shed, d.hsBroke = true, true
}

// Started reports whether Start was called.
func (d *Dir) Started() bool { return d.started }

// Synced reports whether parsing began at a known record boundary and has
// not lost its place since.
func (d *Dir) Synced() bool { return d.started && d.synced && !d.lost }

// HandshakeBroken reports that handshake bytes were lost (gap), so HS is
// incomplete.
func (d *Dir) HandshakeBroken() bool { return d.hsBroke }

// Feed consumes one segment's payload at sequence number seq and calls fn
// for every record header completed. fn returns false to stop early.
func (d *Dir) Feed(seq uint32, b []byte, fn func(Record) bool) {
	if !d.started || len(b) == 0 {
		return
	}
	diff := int32(seq - d.next)
	switch {
	case diff < 0:
		// Retransmission or overlap: keep only the new tail.
		skip := int(-diff)
		if skip >= len(b) {
			return
		}
		b = b[skip:]
		seq += uint32(skip)
	case diff > 0:
		gap := int(diff)
		if d.lost {
			// Already lost: any segment start is a resync candidate.
			break
		}
		if d.nhdr == 0 && d.remain >= gap {
			// The gap lies inside a record body: skip it.
			d.remain -= gap
			if d.cur == TypeHandshake && d.Collect {
				d.hsBroke = true
			}
		} else {
			d.lost = true
			d.Desyncs++
		}
	}
	if d.lost {
		if !plausibleHeader(b) {
			d.next = seq + uint32(len(b))
			return
		}
		d.lost = false
		d.synced = false
		d.remain, d.nhdr = 0, 0
	}
	d.next = seq + uint32(len(b))
	for len(b) > 0 {
		if d.remain > 0 {
			n := min(d.remain, len(b))
			if d.cur == TypeHandshake && d.Collect {
				d.collect(b[:n])
			}
			d.remain -= n
			b = b[n:]
			continue
		}
		// Reading a header.
		n := copy(d.hdr[d.nhdr:], b)
		d.nhdr += uint8(n)
		b = b[n:]
		if d.nhdr < 5 {
			return
		}
		d.nhdr = 0
		typ := d.hdr[0]
		ln := int(binary.BigEndian.Uint16(d.hdr[3:]))
		if typ < TypeChangeCipherSpec || typ > 24 || d.hdr[1] != 3 || ln > maxRecord {
			// Not a TLS record boundary: we lost our place.
			d.lost = true
			d.Desyncs++
			return
		}
		d.cur = typ
		d.remain = ln
		d.Records++
		if !fn(Record{Type: typ, Length: ln}) {
			return
		}
	}
}

func (d *Dir) collect(b []byte) {
	if d.hsBroke {
		return
	}
	if len(d.HS)+len(b) > MaxHandshake {
		d.Overflow = true
		d.hsBroke = true
		return
	}
	// Grown as needed: most hellos fit one record, and a flood of flows
	// that never finish a handshake must not pin kilobytes each. Growth is
	// reserved from the budget first; refused, the partial handshake is
	// dropped (shed) rather than held.
	// Buffers are taken from the worker's pool in power-of-two sizes, and
	// the outgrown one goes back to it: a new connection allocates nothing
	// once the pool is warm.
	need := len(d.HS) + len(b)
	if need > cap(d.HS) {
		hs, ok := d.h.Take(membudget.BufSize(max(need, 2*cap(d.HS))))
		if !ok {
			d.ShedBuffer()
			return
		}
		hs = append(hs, d.HS...)
		if d.HS != nil {
			// Msgs are positions: they follow the bytes into the new buffer.
			d.h.Return(d.HS)
		}
		d.HS = hs
	}
	d.HS = append(d.HS, b...)
}

// Msg is a handshake message kept in a Dir's buffer, by position rather
// than as a slice: the buffer goes back to the worker's pool when the Dir
// frees it (or the budget sheds it) and may then be given to another flow,
// so a kept slice would read that flow's handshake. Bytes gives the
// message only while the buffer it was found in is still the Dir's. The
// zero Msg is none.
type Msg struct {
	off, n uint16 // MaxHandshake fits
	gen    uint8
}

// IsZero reports that m is none.
func (m Msg) IsZero() bool { return m.n == 0 }

// Messages walks the complete handshake messages collected so far, as
// tlshello.Messages does, and gives each body with its Msg.
func (d *Dir) Messages(fn func(typ uint8, m Msg, body []byte) bool) {
	off := 0
	tlshello.Messages(d.HS, func(typ uint8, body []byte) bool {
		m := Msg{off: uint16(off + 4), n: uint16(len(body)), gen: d.gen}
		off += 4 + len(body)
		return fn(typ, m, body)
	})
}

// Message returns the first complete handshake message of type typ
// collected so far (body nil while there is none).
func (d *Dir) Message(typ uint8) (m Msg, body []byte) {
	d.Messages(func(t uint8, mm Msg, b []byte) bool {
		if t == typ {
			m, body = mm, b
			return false
		}
		return true
	})
	return m, body
}

// Bytes returns a message kept as m, nil when m is none or its buffer was
// freed or shed since.
func (d *Dir) Bytes(m Msg) []byte {
	end := int(m.off) + int(m.n)
	if m.n == 0 || m.gen != d.gen || end > len(d.HS) {
		return nil
	}
	return d.HS[m.off:end:end]
}

// plausibleHeader reports whether b starts like a TLS record header.
func plausibleHeader(b []byte) bool {
	if len(b) < 5 {
		return false
	}
	if b[0] < TypeChangeCipherSpec || b[0] > TypeApplicationData || b[1] != 3 || b[2] > 4 {
		return false
	}
	ln := int(binary.BigEndian.Uint16(b[3:]))
	return ln > 0 && ln <= maxRecord
}

// LooksLikeTLS reports whether a first client payload starts a TLS
// handshake record (a ClientHello).
func LooksLikeTLS(b []byte) bool {
	return len(b) >= 6 && b[0] == TypeHandshake && b[1] == 3 && b[2] <= 4 && b[5] == 1
}

// LooksLikeRecord reports whether b starts with a plausible TLS record
// header of any type.
func LooksLikeRecord(b []byte) bool { return plausibleHeader(b) }

package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/google/gopacket"
)

// pcapng block types this reader acts on; every other block type (name
// resolution, interface statistics, decryption secrets, custom, systemd
// journal, ...) is skipped wherever it appears, as the format allows.
const (
	ngSHB = 0x0A0D0D0A
	ngIDB = 0x00000001
	ngPB  = 0x00000002 // obsolete packet block
	ngSPB = 0x00000003
	ngEPB = 0x00000006
)

// maxNgBlock bounds a non-packet block; larger claims are corrupt. Such
// blocks are skipped, never buffered, so the bound only guards against a
// wild length swallowing the rest of the file.
const maxNgBlock = 64 << 20

// ngIface is what the reader keeps of an interface description block.
type ngIface struct {
	link    uint32
	snaplen uint32
	// Timestamp units: pow10 true means 10^-res seconds, else 2^-res.
	pow10  bool
	res    uint8
	offset int64 // if_tsoffset, seconds
}

// ngReader reads pcapng block by block with one reusable buffer. Each
// packet keeps the link type of the interface it was captured on, so one
// file may mix Ethernet, Linux SLL, raw IP and others.
type ngReader struct {
	r      *bufio.Reader
	c      io.Closer
	order  binary.ByteOrder
	ifaces []ngIface
	buf    []byte
	hdr    [12]byte
	off    int64  // file offset of the next block
	n      uint64 // packets returned
	link   uint32 // link type of the last packet returned
	first  uint32 // link type of the first interface
	last   time.Time
}

func newNgReader(r *bufio.Reader, c io.Closer) (*ngReader, error) {
	n := &ngReader{r: r, c: c, buf: make([]byte, 0, 65536), first: 1}
	// Read up to the first interface description so LinkType is known
	// before the first packet; blocks before it (decryption secrets, name
	// resolution, custom) are skipped.
	for len(n.ifaces) == 0 {
		typ, body, err := n.block(true)
		if errors.Is(err, io.EOF) {
			if n.order == nil {
				return nil, fmt.Errorf("%w: pcapng section header", ErrTruncated)
			}
			break // a capture with no interfaces and no packets
		}
		if err != nil {
			return nil, err
		}
		if typ == ngEPB || typ == ngSPB || typ == ngPB {
			_ = body
			return nil, fmt.Errorf("%w: packet block at offset %d before any interface description", ErrNotPcap, n.off)
		}
	}
	if len(n.ifaces) > 0 {
		n.first = n.ifaces[0].link
	}
	n.link = n.first
	return n, nil
}

// corrupt builds an error naming where the damage is.
func (n *ngReader) corrupt(at int64, format string, a ...any) error {
	return fmt.Errorf("%w: pcapng block at offset %d (after packet %d): %s", ErrTruncated, at, n.n, fmt.Sprintf(format, a...))
}

// block reads the next block. Packet blocks' bodies are returned in n.buf;
// section headers and interface descriptions are applied; other blocks are
// skipped and returned with a nil body. wantEOF reports a clean io.EOF
// when the file ends exactly between blocks.
func (n *ngReader) block(wantEOF bool) (uint32, []byte, error) {
	at := n.off
	k, err := io.ReadFull(n.r, n.hdr[:8])
	if err != nil {
		if k == 0 && errors.Is(err, io.EOF) {
			return 0, nil, io.EOF
		}
		return 0, nil, n.corrupt(at, "block header cut short (%d of 8 bytes)", k)
	}
	rawType := binary.LittleEndian.Uint32(n.hdr[:4])
	if rawType == ngSHB {
		// The byte-order magic follows the length and decides how the
		// length itself is read.
		if k, err := io.ReadFull(n.r, n.hdr[8:12]); err != nil {
			return 0, nil, n.corrupt(at, "section header cut short (%d of 12 bytes)", 8+k)
		}
		switch binary.LittleEndian.Uint32(n.hdr[8:12]) {
		case 0x1a2b3c4d:
			n.order = binary.LittleEndian
		case 0x4d3c2b1a:
			n.order = binary.BigEndian
		default:
			return 0, nil, n.corrupt(at, "section header with an unknown byte-order magic")
		}
		n.ifaces = n.ifaces[:0] // interface ids are per section
		l := n.order.Uint32(n.hdr[4:8])
		if l < 28 || l%4 != 0 || l > maxNgBlock {
			return 0, nil, n.corrupt(at, "section header length %d", l)
		}
		body, err := n.readBody(at, l, 12)
		if err != nil {
			return 0, nil, err
		}
		if major := n.order.Uint16(body); major != 1 {
			return 0, nil, n.corrupt(at, "pcapng version %d", major)
		}
		return ngSHB, nil, nil
	}
	if n.order == nil {
		return 0, nil, ErrNotPcap
	}
	typ := n.order.Uint32(n.hdr[:4])
	l := n.order.Uint32(n.hdr[4:8])
	isPacket := typ == ngEPB || typ == ngSPB || typ == ngPB
	if isPacket && (l < 12 || l%4 != 0 || l > maxCaplen+4096) {
		return 0, nil, n.corrupt(at, "packet %d's block claims %d bytes", n.n+1, l)
	}
	if l < 12 || l%4 != 0 {
		return 0, nil, n.corrupt(at, "block type 0x%x has invalid length %d", typ, l)
	}
	switch typ {
	case ngEPB, ngSPB, ngPB:
		body, err := n.readBody(at, l, 8)
		return typ, body, err
	case ngIDB:
		if l > maxNgBlock {
			return 0, nil, n.corrupt(at, "interface description length %d", l)
		}
		body, err := n.readBody(at, l, 8)
		if err != nil {
			return 0, nil, err
		}
		if err := n.addIface(at, body); err != nil {
			return 0, nil, err
		}
		return ngIDB, nil, nil
	default:
		if l > maxNgBlock {
			return 0, nil, n.corrupt(at, "block type 0x%x claims %d bytes", typ, l)
		}
		// Skip the body, then check the trailing length.
		skip := int(l) - 12
		if k, err := n.r.Discard(skip); err != nil {
			return 0, nil, n.corrupt(at, "block type 0x%x cut short (%d of %d bytes)", typ, 8+k, l)
		}
		var tl [4]byte
		if k, err := io.ReadFull(n.r, tl[:]); err != nil {
			return 0, nil, n.corrupt(at, "block type 0x%x cut short (%d of %d bytes)", typ, 8+skip+k, l)
		}
		if n.order.Uint32(tl[:]) != l {
			return 0, nil, n.corrupt(at, "block type 0x%x: trailing length %d differs from %d", typ, n.order.Uint32(tl[:]), l)
		}
		n.off += int64(l)
		return typ, nil, nil
	}
}

// readBody reads the rest of a block of total length l of which read bytes
// are already consumed, checks the trailing length, and returns the body
// (without the trailing length) in n.buf.
func (n *ngReader) readBody(at int64, l uint32, read int) ([]byte, error) {
	rest := int(l) - read
	if cap(n.buf) < rest {
		n.buf = make([]byte, rest)
	}
	b := n.buf[:rest]
	if k, err := io.ReadFull(n.r, b); err != nil {
		return nil, n.corrupt(at, "block cut short (%d of %d bytes)", read+k, l)
	}
	if tl := n.order.Uint32(b[rest-4:]); tl != l {
		return nil, n.corrupt(at, "trailing length %d differs from %d", tl, l)
	}
	n.off += int64(l)
	return b[:rest-4], nil
}

// addIface records an interface description: link type, snap length and
// the timestamp resolution and offset options.
func (n *ngReader) addIface(at int64, b []byte) error {
	if len(b) < 8 {
		return n.corrupt(at, "interface description too short")
	}
	if len(n.ifaces) >= 1<<16 {
		return n.corrupt(at, "more than 65536 interfaces")
	}
	in := ngIface{link: uint32(n.order.Uint16(b)), snaplen: n.order.Uint32(b[4:]), pow10: true, res: 6}
	opts := b[8:]
	for len(opts) >= 4 {
		code, ol := n.order.Uint16(opts), int(n.order.Uint16(opts[2:]))
		opts = opts[4:]
		if code == 0 || ol > len(opts) {
			break
		}
		switch {
		case code == 9 && ol >= 1:
			in.pow10, in.res = opts[0]&0x80 == 0, opts[0]&0x7f
		case code == 14 && ol >= 8:
			in.offset = int64(n.order.Uint64(opts))
		}
		pad := (ol + 3) &^ 3
		if pad > len(opts) {
			break
		}
		opts = opts[pad:]
	}
	if (in.pow10 && in.res > 19) || (!in.pow10 && in.res > 63) {
		return n.corrupt(at, "interface timestamp resolution %d out of range", in.res)
	}
	n.ifaces = append(n.ifaces, in)
	return nil
}

// pow10s are 10^0..10^19.
var pow10s = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return
}()

// stamp converts a timestamp in the interface's units to a time.
func (in *ngIface) stamp(ts uint64) time.Time {
	var sec, ns uint64
	if in.pow10 {
		div := pow10s[in.res]
		sec = ts / div
		hi, lo := bits.Mul64(ts%div, 1e9)
		ns, _ = bits.Div64(hi, lo, div)
	} else {
		sec = ts >> in.res
		frac := ts & (1<<in.res - 1)
		hi, lo := bits.Mul64(frac, 1e9)
		// (hi:lo) >> res
		if in.res == 0 {
			ns = 0
		} else {
			ns = lo>>in.res | hi<<(64-in.res)
		}
	}
	return time.Unix(int64(sec)+in.offset, int64(ns)).UTC()
}

func (n *ngReader) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	var ci gopacket.CaptureInfo
	for {
		at := n.off
		typ, body, err := n.block(true)
		if err != nil {
			return nil, ci, err
		}
		var ifid uint32
		var ts uint64
		var caplen, wire uint32
		var data []byte
		switch typ {
		case ngEPB, ngPB:
			if len(body) < 20 {
				return nil, ci, n.corrupt(at, "packet %d's block too short", n.n+1)
			}
			if typ == ngEPB {
				ifid = n.order.Uint32(body)
			} else {
				ifid = uint32(n.order.Uint16(body))
			}
			ts = uint64(n.order.Uint32(body[4:]))<<32 | uint64(n.order.Uint32(body[8:]))
			caplen, wire = n.order.Uint32(body[12:]), n.order.Uint32(body[16:])
			if uint64(caplen) > uint64(len(body)-20) {
				return nil, ci, n.corrupt(at, "packet %d claims %d captured bytes in a %d-byte block", n.n+1, caplen, len(body)+12)
			}
			data = body[20 : 20+caplen]
		case ngSPB:
			if len(body) < 4 {
				return nil, ci, n.corrupt(at, "packet %d's block too short", n.n+1)
			}
			wire = n.order.Uint32(body)
			caplen = uint32(len(body) - 4)
			if wire < caplen {
				caplen = wire
			}
			if len(n.ifaces) > 0 && n.ifaces[0].snaplen != 0 && caplen > n.ifaces[0].snaplen {
				caplen = n.ifaces[0].snaplen
			}
			data = body[4 : 4+caplen]
		default:
			continue
		}
		if int(ifid) >= len(n.ifaces) {
			return nil, ci, n.corrupt(at, "packet %d names interface %d, %d described", n.n+1, ifid, len(n.ifaces))
		}
		in := &n.ifaces[ifid]
		n.n++
		n.link = in.link
		if typ != ngSPB {
			n.last = in.stamp(ts)
		}
		// A simple packet block has no timestamp: it keeps the previous one.
		ci.Timestamp = n.last
		ci.CaptureLength, ci.Length, ci.InterfaceIndex = int(caplen), int(wire), int(ifid)
		return data, ci, nil
	}
}

func (n *ngReader) LinkType() uint32       { return n.first }
func (n *ngReader) PacketLinkType() uint32 { return n.link }
func (n *ngReader) Stats() Stats           { return Stats{Packets: n.n} }
func (n *ngReader) Close() error           { return n.c.Close() }

// Package capture provides packet sources: pcap and pcapng files (pure Go)
// and live AF_PACKET sockets in a fanout group (Linux, no cgo), with an
// optional tcpdump-syntax BPF filter in both modes.
package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/net/bpf"
)

// Source yields raw link-layer frames. ReadPacket's data is borrowed: valid
// only until the next call.
type Source interface {
	ReadPacket() (data []byte, ci gopacket.CaptureInfo, err error)
	// LinkType is the pcap LINKTYPE_ value (uint32: gopacket's uint8 type
	// cannot hold LINKTYPE_LINUX_SLL2, 276).
	LinkType() uint32
	Stats() Stats
	Close() error
}

// Stats are a source's counters.
type Stats struct {
	Packets, KernelDrops, IfDrops, FilterRejected uint64
}

// Errors.
var (
	ErrNotPcap   = errors.New("not a pcap or pcapng file")
	ErrTruncated = errors.New("capture file truncated")
	ErrTimeout   = errors.New("no packet within the read timeout")
	ErrClosed    = errors.New("capture source closed")
)

// maxCaplen bounds one record; larger claims are hostile or corrupt.
const maxCaplen = 256 << 10

// OpenFile opens a pcap (µs or ns, either byte order) or pcapng file.
func OpenFile(path, filter string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		f.Close()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: %w (file shorter than a header)", path, ErrNotPcap)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var src fileSource
	switch binary.LittleEndian.Uint32(magic) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		src, err = newPcapReader(br, f)
	case 0x0a0d0d0a:
		src, err = newNgReader(br, f)
	default:
		err = ErrNotPcap
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if filter != "" {
		prog, err := CompileFilter(filter, src.LinkType())
		if err != nil {
			src.Close()
			return nil, err
		}
		vm, err := bpf.NewVM(prog)
		if err != nil {
			src.Close()
			return nil, fmt.Errorf("filter %q: %w", filter, err)
		}
		return &filtered{fileSource: src, vm: vm}, nil
	}
	return src, nil
}

type fileSource interface {
	Source
}

// pcapReader reads classic pcap with one reusable buffer.
type pcapReader struct {
	r     *bufio.Reader
	f     *os.File
	order binary.ByteOrder
	nano  bool
	link  uint32
	hdr   [16]byte
	buf   []byte
	n     uint64
}

func newPcapReader(r *bufio.Reader, f *os.File) (*pcapReader, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrTruncated, err)
	}
	p := &pcapReader{r: r, f: f, buf: make([]byte, 0, 65536)}
	switch binary.LittleEndian.Uint32(h[:4]) {
	case 0xa1b2c3d4:
		p.order = binary.LittleEndian
	case 0xa1b23c4d:
		p.order, p.nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		p.order = binary.BigEndian
	case 0x4d3cb2a1:
		p.order, p.nano = binary.BigEndian, true
	}
	if major := p.order.Uint16(h[4:]); major != 2 {
		return nil, fmt.Errorf("%w: pcap version %d", ErrNotPcap, major)
	}
	p.link = p.order.Uint32(h[20:]) & 0x0fffffff // upper bits are FCS flags
	return p, nil
}

func (p *pcapReader) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	var ci gopacket.CaptureInfo
	if _, err := io.ReadFull(p.r, p.hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ci, io.EOF
		}
		return nil, ci, fmt.Errorf("%w: record header of packet %d cut short", ErrTruncated, p.n+1)
	}
	sec := p.order.Uint32(p.hdr[0:])
	frac := p.order.Uint32(p.hdr[4:])
	caplen := p.order.Uint32(p.hdr[8:])
	wire := p.order.Uint32(p.hdr[12:])
	if caplen > maxCaplen {
		return nil, ci, fmt.Errorf("%w: packet %d claims %d captured bytes", ErrTruncated, p.n+1, caplen)
	}
	if cap(p.buf) < int(caplen) {
		p.buf = make([]byte, caplen)
	}
	p.buf = p.buf[:caplen]
	if _, err := io.ReadFull(p.r, p.buf); err != nil {
		return nil, ci, fmt.Errorf("%w: packet %d cut short (%d bytes announced)", ErrTruncated, p.n+1, caplen)
	}
	p.n++
	ns := int64(frac)
	if !p.nano {
		ns *= 1000
	}
	ci.Timestamp = time.Unix(int64(sec), ns).UTC()
	ci.CaptureLength, ci.Length = int(caplen), int(wire)
	return p.buf, ci, nil
}

func (p *pcapReader) LinkType() uint32 { return p.link }
func (p *pcapReader) Stats() Stats     { return Stats{Packets: p.n} }
func (p *pcapReader) Close() error     { return p.f.Close() }

// ngReader wraps gopacket's pcapng reader; the link type is read from the
// first interface description block ourselves (gopacket keeps only 8 bits).
type ngReader struct {
	r    *pcapgo.NgReader
	f    *os.File
	link uint32
	n    uint64
}

func newNgReader(br *bufio.Reader, f *os.File) (*ngReader, error) {
	link, err := ngLinkType(br)
	if err != nil {
		return nil, err
	}
	r, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotPcap, err)
	}
	return &ngReader{r: r, f: f, link: link}, nil
}

// ngLinkType peeks at the section header and the first interface
// description block to learn the link type.
func ngLinkType(br *bufio.Reader) (uint32, error) {
	head, err := br.Peek(28)
	if err != nil {
		return 0, fmt.Errorf("%w: pcapng section header", ErrTruncated)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if binary.BigEndian.Uint32(head[8:]) == 0x1a2b3c4d {
		order = binary.BigEndian
	}
	shbLen := int(order.Uint32(head[4:]))
	if shbLen < 28 || shbLen > 1<<20 {
		return 0, fmt.Errorf("%w: pcapng section header length %d", ErrNotPcap, shbLen)
	}
	b, err := br.Peek(shbLen + 16)
	if err != nil {
		return 0, fmt.Errorf("%w: no interface description", ErrTruncated)
	}
	idb := b[shbLen:]
	if order.Uint32(idb) != 1 {
		return 0, fmt.Errorf("%w: first block after the section header is not an interface description", ErrNotPcap)
	}
	return uint32(order.Uint16(idb[8:])), nil
}

func (n *ngReader) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	d, ci, err := n.r.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ci, io.EOF
		}
		return nil, ci, fmt.Errorf("%w: after packet %d: %v", ErrTruncated, n.n, err)
	}
	if len(d) > maxCaplen {
		return nil, ci, fmt.Errorf("%w: packet %d claims %d bytes", ErrTruncated, n.n+1, len(d))
	}
	n.n++
	return d, ci, nil
}

func (n *ngReader) LinkType() uint32 { return n.link }
func (n *ngReader) Stats() Stats     { return Stats{Packets: n.n} }
func (n *ngReader) Close() error     { return n.f.Close() }

// filtered applies a BPF program to a file source.
type filtered struct {
	fileSource
	vm       *bpf.VM
	rejected uint64
}

func (f *filtered) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	for {
		d, ci, err := f.fileSource.ReadPacket()
		if err != nil {
			return d, ci, err
		}
		if n, err := f.vm.Run(d); err == nil && n > 0 {
			return d, ci, nil
		}
		f.rejected++
	}
}

func (f *filtered) Stats() Stats {
	s := f.fileSource.Stats()
	s.FilterRejected = f.rejected
	return s
}

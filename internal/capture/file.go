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
	// KernelFreezes counts the times a live ring was full and the kernel
	// froze its queue (tp_freeze_q_cnt); Errors counts ring blocks cut
	// short by a malformed packet header.
	KernelFreezes, Errors uint64
	// LinkDowns counts the times a live socket's interface went down (or
	// away) under it.
	LinkDowns uint64
}

// Add adds o's counters to s (the sockets of a capture, summed).
func (s *Stats) Add(o Stats) {
	s.Packets += o.Packets
	s.KernelDrops += o.KernelDrops
	s.IfDrops += o.IfDrops
	s.FilterRejected += o.FilterRejected
	s.KernelFreezes += o.KernelFreezes
	s.Errors += o.Errors
	s.LinkDowns += o.LinkDowns
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

// OpenFile opens a pcap (µs or ns, either byte order) or pcapng file,
// plain or gzip- or zstd-compressed.
func OpenFile(path, filter string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	src, err := openReader(f, f, newFilterCache(filter))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return src, nil
}

// openReader reads a capture from r (closing c at the end), undoing gzip or
// zstd compression first when the stream starts with their magic.
func openReader(r io.Reader, c io.Closer, fc *filterCache) (fileSource, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, err := br.Peek(4)
	if err != nil {
		c.Close()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w (file shorter than a header)", ErrNotPcap)
		}
		return nil, err
	}
	if dr, dc, ok, err := decompressor(br, magic); ok {
		if err != nil {
			c.Close()
			return nil, err
		}
		br = bufio.NewReaderSize(dr, 256<<10)
		c = closers{dc, c}
		if magic, err = br.Peek(4); err != nil {
			c.Close()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w (compressed stream shorter than a header)", ErrNotPcap)
			}
			return nil, fmt.Errorf("decompressing: %w", err)
		}
	}
	var src fileSource
	switch binary.LittleEndian.Uint32(magic) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		src, err = newPcapReader(br, c)
	case 0x0a0d0d0a:
		src, err = newNgReader(br, c)
	default:
		err = ErrNotPcap
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	if fc != nil {
		fs := &filtered{fileSource: src, fc: fc}
		if _, err := fc.vmFor(src.LinkType()); err != nil {
			src.Close()
			return nil, err
		}
		return fs, nil
	}
	return src, nil
}

type fileSource interface {
	Source
	// PacketLinkType is the link type of the packet ReadPacket returned
	// last (pcapng interfaces may differ in link type).
	PacketLinkType() uint32
}

// pcapReader reads classic pcap with one reusable buffer.
type pcapReader struct {
	r     *bufio.Reader
	f     io.Closer
	order binary.ByteOrder
	nano  bool
	link  uint32
	hdr   [16]byte
	buf   []byte
	n     uint64
}

func newPcapReader(r *bufio.Reader, f io.Closer) (*pcapReader, error) {
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

func (p *pcapReader) LinkType() uint32       { return p.link }
func (p *pcapReader) PacketLinkType() uint32 { return p.link }
func (p *pcapReader) Stats() Stats           { return Stats{Packets: p.n} }
func (p *pcapReader) Close() error           { return p.f.Close() }

// filtered applies a BPF program to a file source.
type filtered struct {
	fileSource
	fc       *filterCache
	link     uint32
	vm       *bpf.VM
	rejected uint64
}

// filterCache holds a filter compiled once per link type, shared by the
// files of a directory.
type filterCache struct {
	expr string
	vms  map[uint32]*bpf.VM
}

// newFilterCache returns nil for no filter.
func newFilterCache(expr string) *filterCache {
	if expr == "" {
		return nil
	}
	return &filterCache{expr: expr, vms: map[uint32]*bpf.VM{}}
}

// vmFor compiles the filter for a link type once.
func (f *filterCache) vmFor(link uint32) (*bpf.VM, error) {
	if vm, ok := f.vms[link]; ok {
		return vm, nil
	}
	prog, err := CompileFilter(f.expr, link)
	if err != nil {
		return nil, fmt.Errorf("%w (link type %d)", err, link)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", f.expr, err)
	}
	f.vms[link] = vm
	return vm, nil
}

func (f *filtered) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	for {
		d, ci, err := f.fileSource.ReadPacket()
		if err != nil {
			return d, ci, err
		}
		if l := f.fileSource.PacketLinkType(); l != f.link || f.vm == nil {
			if f.vm, err = f.fc.vmFor(l); err != nil {
				return nil, ci, err
			}
			f.link = l
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

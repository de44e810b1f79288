package capture

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
)

// InputOptions configure OpenInput.
type InputOptions struct {
	Filter string // tcpdump syntax, applied per link type
	// Log receives progress lines (nil: none).
	Log *slog.Logger
	// ProgressEvery is the least time between progress lines (default 5 s).
	ProgressEvery time.Duration
	// Stdin replaces os.Stdin for "-" (tests).
	Stdin io.Reader
	// Map is how the workers read a plain pcap file (Shared): MapAuto,
	// the default, maps it when the page cache maps it in large pieces.
	Map MapMode
}

// MapMode is how the workers read a plain pcap file.
type MapMode uint8

const (
	// MapAuto maps a file of 16 MiB or more whose cached pages map in
	// large pieces (mapsLarge), and reads any other with pread.
	MapAuto MapMode = iota
	// MapAlways maps any file it can.
	MapAlways
	// MapNever reads with pread.
	MapNever
)

// Input is what OpenInput returns: a packet source over one file, a
// directory of files or stdin.
type Input interface {
	Source
	// PacketLinkType is the link type of the last packet read.
	PacketLinkType() uint32
	// Name is the file the last packet came from ("-" for stdin).
	Name() string
}

// OpenInput opens what -r names: a capture file (pcap or pcapng, plain,
// gzip or zstd), "-" for standard input, or a directory, whose capture
// files are read one after the other in the order of their first packet's
// time as one stream (one flow table across them). Errors name the file.
func OpenInput(path string, o InputOptions) (Input, error) {
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 5 * time.Second
	}
	if path == "-" {
		in := o.Stdin
		if in == nil {
			in = os.Stdin
		}
		cr := &countReader{r: in}
		// Closing the input when the run stops lets a read waiting on a
		// pipe return where the platform allows it.
		var c io.Closer = io.NopCloser(nil)
		if ic, ok := in.(io.Closer); ok {
			c = ic
		}
		src, err := openReader(cr, c, newFilterCache(o.Filter))
		if err != nil {
			return nil, fmt.Errorf("stdin: %w", err)
		}
		return newMulti([]part{{name: "-", src: src, cr: cr}}, 0, o), nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		p, err := openPart(path, newFilterCache(o.Filter))
		if err != nil {
			return nil, err
		}
		return newMulti([]part{p}, st.Size(), o), nil
	}
	return openDir(path, o)
}

// part is one file of an input; a directory's files are opened one at a
// time, so a directory of thousands of files holds one descriptor.
type part struct {
	name  string
	src   fileSource // nil until opened
	cr    *countReader
	first time.Time // first packet's time (directories)
	size  int64
}

func openPart(path string, fc *filterCache) (part, error) {
	f, err := os.Open(path)
	if err != nil {
		return part{}, err
	}
	cr := &countReader{r: f}
	src, err := openReader(cr, f, fc)
	if err != nil {
		return part{}, fmt.Errorf("%s: %w", path, err)
	}
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	return part{name: path, src: src, cr: cr, size: size}, nil
}

// openDir lists the capture files in dir (not recursing; names starting
// with a dot are skipped) and orders them by their first packet's time, so
// that a capture split by a rotating writer reads as one. A file that is not
// a capture is an error, as it would be given alone.
func openDir(dir string, o InputOptions) (Input, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var parts []part
	var total int64
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		// The filter is compiled when the file is read, not here.
		p, err := openPart(filepath.Join(dir, e.Name()), nil)
		if err != nil {
			return nil, err
		}
		if _, ci, err := p.src.ReadPacket(); err == nil {
			p.first = ci.Timestamp
		}
		p.src.Close()
		p.src, p.cr = nil, nil
		total += p.size
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%s: %w (no capture files in the directory)", dir, ErrNotPcap)
	}
	// Files without a first packet go first; ties keep name order.
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].first.Before(parts[j].first) })
	return newMulti(parts, total, o), nil
}

// multi reads its parts in order and reports progress.
type multi struct {
	parts    []part
	cur      int
	total    int64 // bytes of all files (0: unknown, e.g. stdin)
	done     int64 // bytes of finished parts
	o        InputOptions
	n        uint64
	bytes    uint64 // packet bytes
	start    time.Time
	next     time.Time
	lastLink uint32
	fc       *filterCache // one compiled filter for all the files
	// reported counts packets for Stats (read from other goroutines).
	reported atomic.Uint64
	// shared is the file when the workers read it themselves (Shared).
	shared *Shared
}

func newMulti(parts []part, total int64, o InputOptions) *multi {
	now := time.Now()
	m := &multi{parts: parts, total: total, o: o, start: now, next: now.Add(o.ProgressEvery), lastLink: 1, fc: newFilterCache(o.Filter)}
	if parts[0].src != nil {
		m.lastLink = parts[0].src.LinkType()
	}
	return m
}

func (m *multi) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	for m.cur < len(m.parts) {
		p := &m.parts[m.cur]
		if p.src == nil {
			np, err := openPart(p.name, m.fc)
			if err != nil {
				return nil, gopacket.CaptureInfo{}, err
			}
			p.src, p.cr = np.src, np.cr
		}
		data, ci, err := p.src.ReadPacket()
		if err == nil {
			m.n++
			m.bytes += uint64(len(data))
			if m.n&4095 == 0 {
				m.reported.Store(m.n)
				if m.o.Log != nil {
					m.progress()
				}
			}
			return data, ci, nil
		}
		if !errors.Is(err, io.EOF) {
			if len(m.parts) > 1 || p.name != "-" {
				err = fmt.Errorf("%s: %w", p.name, err)
			}
			return nil, ci, err
		}
		m.done += p.size
		p.src.Close()
		p.src = nil
		m.cur++
	}
	m.reported.Store(m.n)
	return nil, gopacket.CaptureInfo{}, io.EOF
}

// progress logs packets, bytes, rate and, when the size is known, the share
// of the input read, at most every ProgressEvery.
func (m *multi) progress() {
	read := int64(-1)
	if m.cur < len(m.parts) && m.parts[m.cur].cr != nil {
		read = m.done + m.parts[m.cur].cr.n.Load()
	}
	m.progressAt(read)
}

// progressAt logs progress with read bytes of the input read so far (-1:
// unknown). A shared file's workers count no frame bytes: the byte rate
// is then the file's, record headers included.
func (m *multi) progressAt(read int64) {
	now := time.Now()
	if now.Before(m.next) {
		return
	}
	m.next = now.Add(m.o.ProgressEvery)
	secs := now.Sub(m.start).Seconds()
	bytes := m.bytes
	if m.shared != nil {
		bytes = uint64(read)
	}
	args := []any{"packets", m.n, "bytes", bytes, "pkts_per_s", int64(float64(m.n) / secs),
		"mbit_per_s", int64(float64(bytes) * 8 / secs / 1e6)}
	if m.cur < len(m.parts) {
		p := &m.parts[m.cur]
		args = append(args, "file", p.name)
		if m.total > 0 && read >= 0 {
			args = append(args, "percent", fmt.Sprintf("%.1f", 100*float64(read)/float64(m.total)))
		}
	}
	m.o.Log.Info("reading", args...)
}

// LinkType is the link type of the current file's first interface (the
// first file's before reading).
func (m *multi) LinkType() uint32 {
	if m.cur < len(m.parts) && m.parts[m.cur].src != nil {
		return m.parts[m.cur].src.LinkType()
	}
	m.link()
	return m.lastLink
}

func (m *multi) PacketLinkType() uint32 {
	if m.cur < len(m.parts) && m.parts[m.cur].src != nil {
		m.lastLink = m.parts[m.cur].src.PacketLinkType()
	}
	return m.lastLink
}

// link opens the current part, if none is open, to learn its link type.
func (m *multi) link() {
	if m.cur < len(m.parts) && m.parts[m.cur].src == nil {
		if np, err := openPart(m.parts[m.cur].name, m.fc); err == nil {
			m.parts[m.cur].src, m.parts[m.cur].cr = np.src, np.cr
			m.lastLink = np.src.LinkType()
		}
	}
}

func (m *multi) Name() string {
	if m.cur < len(m.parts) {
		return m.parts[m.cur].name
	}
	return m.parts[len(m.parts)-1].name
}

func (m *multi) Stats() Stats {
	return Stats{Packets: m.reported.Load()}
}

func (m *multi) Close() error {
	if m.shared != nil {
		m.shared.close()
	}
	var first error
	for i := m.cur; i < len(m.parts); i++ {
		if m.parts[i].src == nil {
			continue
		}
		if err := m.parts[i].src.Close(); err != nil && first == nil {
			first = err
		}
	}
	m.cur = len(m.parts)
	return first
}

// countReader counts the bytes read from a file (compressed bytes for a
// compressed capture: what the file's size is measured in).
type countReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ngb builds pcapng files block by block (the tests' capture corpus is made
// here rather than stored).
type ngb struct {
	o   binary.ByteOrder
	buf bytes.Buffer
	// offsets[i] is where block i starts; packets[i] the block index of
	// packet i.
	offsets []int
	packets []int
}

func newNG(o binary.ByteOrder) *ngb {
	n := &ngb{o: o}
	n.shb()
	return n
}

func (n *ngb) block(typ uint32, body []byte) {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	l := uint32(12 + len(body))
	n.offsets = append(n.offsets, n.buf.Len())
	var h [8]byte
	n.o.PutUint32(h[:], typ)
	n.o.PutUint32(h[4:], l)
	n.buf.Write(h[:])
	n.buf.Write(body)
	n.o.PutUint32(h[:], l)
	n.buf.Write(h[:4])
}

func (n *ngb) shb() {
	b := make([]byte, 16)
	n.o.PutUint32(b, 0x1a2b3c4d)
	n.o.PutUint16(b[4:], 1)
	binary.LittleEndian.PutUint64(b[8:], ^uint64(0)) // section length unknown
	n.block(ngSHB, b)
}

// idb adds an interface; tsresol < 0 leaves the option out (µs).
func (n *ngb) idb(link uint16, tsresol int) {
	b := make([]byte, 8)
	n.o.PutUint16(b, link)
	n.o.PutUint32(b[4:], 262144)
	if tsresol >= 0 {
		opt := make([]byte, 8)
		n.o.PutUint16(opt, 9)
		n.o.PutUint16(opt[2:], 1)
		opt[4] = byte(tsresol)
		b = append(b, opt...)
		b = append(b, 0, 0, 0, 0) // opt_endofopt
	}
	n.block(ngIDB, b)
}

func (n *ngb) epb(ifid uint32, ts uint64, data []byte) {
	b := make([]byte, 20, 20+len(data))
	n.o.PutUint32(b, ifid)
	n.o.PutUint32(b[4:], uint32(ts>>32))
	n.o.PutUint32(b[8:], uint32(ts))
	n.o.PutUint32(b[12:], uint32(len(data)))
	n.o.PutUint32(b[16:], uint32(len(data)))
	b = append(b, data...)
	n.packets = append(n.packets, len(n.offsets))
	n.block(ngEPB, b)
}

func (n *ngb) spb(data []byte) {
	b := make([]byte, 4, 4+len(data))
	n.o.PutUint32(b, uint32(len(data)))
	n.packets = append(n.packets, len(n.offsets))
	n.block(ngSPB, append(b, data...))
}

// other adds a block the reader must skip: Name Resolution (4), Interface
// Statistics (5), Decryption Secrets (10), custom (0xBAD), systemd journal
// (9).
func (n *ngb) other(typ uint32, size int) {
	n.block(typ, bytes.Repeat([]byte{0x5a}, size))
}

func (n *ngb) bytes() []byte { return n.buf.Bytes() }

// readBytes reads a capture from memory through the same path as files.
func readBytes(b []byte) (links []uint32, times []time.Time, err error) {
	src, err := openReader(bytes.NewReader(b), io.NopCloser(nil), nil)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	for {
		_, ci, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			return links, times, nil
		}
		if err != nil {
			return links, times, err
		}
		links = append(links, src.PacketLinkType())
		times = append(times, ci.Timestamp)
	}
}

func frame(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 40+i) }

func TestPcapng(t *testing.T) {
	t0 := uint64(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixMicro())
	mixed := newNG(binary.LittleEndian)
	mixed.idb(1, -1)   // Ethernet
	mixed.idb(113, -1) // Linux SLL
	mixed.idb(101, 9)  // raw IP, ns timestamps
	mixed.epb(0, t0, frame(0))
	mixed.epb(1, t0+1, frame(1))
	mixed.epb(2, (t0+2)*1000, frame(2))
	mixed.epb(0, t0+3, frame(3))

	before := newNG(binary.BigEndian)
	before.other(10, 100) // Decryption Secrets
	before.other(4, 20)   // Name Resolution
	before.other(0xBAD, 8)
	before.other(0x40000BAD, 0)
	before.idb(1, -1)
	before.other(5, 16) // Interface Statistics between packets
	before.epb(0, t0, frame(0))
	before.other(9, 12)
	before.epb(0, t0+1, frame(1))
	before.spb(frame(2)) // no timestamp: keeps the previous one

	sections := newNG(binary.LittleEndian)
	sections.idb(1, -1)
	sections.epb(0, t0, frame(0))
	sections.shb() // a second section: interface ids start again
	sections.idb(276, 3)
	sections.epb(0, t0/1000+5, frame(1)) // milliseconds

	noIface := newNG(binary.LittleEndian)
	noIface.other(10, 4)

	badIf := newNG(binary.LittleEndian)
	badIf.idb(1, -1)
	badIf.epb(0, t0, frame(0))
	badIf.epb(3, t0, frame(1))

	// An enhanced packet block length of 0xffffffff at packet 3.
	wild := newNG(binary.LittleEndian)
	wild.idb(1, -1)
	for i := 0; i < 5; i++ {
		wild.epb(0, t0+uint64(i), frame(i))
	}
	wildB := append([]byte(nil), wild.bytes()...)
	binary.LittleEndian.PutUint32(wildB[wild.offsets[wild.packets[2]]+4:], 0xffffffff)
	// A trailing length that disagrees at packet 2.
	trail := append([]byte(nil), wild.bytes()...)
	end := wild.offsets[wild.packets[1]+1] - 4
	binary.LittleEndian.PutUint32(trail[end:], 12)
	// A caplen larger than its block at packet 4.
	capl := append([]byte(nil), wild.bytes()...)
	binary.LittleEndian.PutUint32(capl[wild.offsets[wild.packets[3]]+8+12:], 5000)
	// A huge non-packet block after packet 1.
	huge := newNG(binary.LittleEndian)
	huge.idb(1, -1)
	huge.epb(0, t0, frame(0))
	huge.block(0xBAD, nil)
	hugeB := append([]byte(nil), huge.bytes()...)
	binary.LittleEndian.PutUint32(hugeB[huge.offsets[len(huge.offsets)-1]+4:], 0x7ffffff0)

	us := func(v uint64) time.Time { return time.UnixMicro(int64(v)).UTC() }
	tests := []struct {
		name    string
		b       []byte
		links   []uint32
		times   []time.Time
		wantErr error
		errHas  string
	}{
		{"mixed link types", mixed.bytes(), []uint32{1, 113, 101, 1}, []time.Time{us(t0), us(t0 + 1), us(t0 + 2), us(t0 + 3)}, nil, ""},
		{"blocks before the first interface", before.bytes(), []uint32{1, 1, 1}, []time.Time{us(t0), us(t0 + 1), us(t0 + 1)}, nil, ""},
		{"two sections", sections.bytes(), []uint32{1, 276}, []time.Time{us(t0), us(t0 + 5000)}, nil, ""},
		{"no interface, no packets", noIface.bytes(), nil, nil, nil, ""},
		{"unknown interface", badIf.bytes(), []uint32{1}, nil, ErrTruncated, "names interface 3"},
		{"block length 0xffffffff", wildB, []uint32{1, 1}, nil, ErrTruncated, "packet 3's block claims 4294967295"},
		{"trailing length differs", trail, []uint32{1}, nil, ErrTruncated, "trailing length"},
		{"caplen beyond the block", capl, []uint32{1, 1, 1}, nil, ErrTruncated, "packet 4 claims 5000"},
		{"huge skipped block", hugeB, []uint32{1}, nil, ErrTruncated, "claims"},
		{"shb only", newNG(binary.LittleEndian).bytes(), nil, nil, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			links, times, err := readBytes(tc.b)
			if !errors.Is(err, tc.wantErr) || (err != nil && !strings.Contains(err.Error(), tc.errHas)) {
				t.Fatalf("err %v, want %v containing %q", err, tc.wantErr, tc.errHas)
			}
			if fmt.Sprint(links) != fmt.Sprint(tc.links) {
				t.Errorf("link types %v, want %v", links, tc.links)
			}
			if tc.times != nil && fmt.Sprint(times) != fmt.Sprint(tc.times) {
				t.Errorf("times %v, want %v", times, tc.times)
			}
		})
	}
}

// TestPcapngCutPoints cuts a pcapng file at every byte: a cut on a block
// boundary is a shorter valid file; any other cut is a truncation error
// naming the block's offset, and every packet before the cut is read.
func TestPcapngCutPoints(t *testing.T) {
	n := newNG(binary.LittleEndian)
	n.other(10, 24)
	n.idb(1, -1)
	for i := 0; i < 4; i++ {
		n.epb(0, uint64(i), frame(i))
		if i == 1 {
			n.other(4, 8)
		}
	}
	full := n.bytes()
	boundary := map[int]bool{len(full): true}
	for _, o := range n.offsets {
		boundary[o] = true
	}
	for cut := 1; cut <= len(full); cut++ {
		// Packets wholly before the cut.
		whole := 0
		for _, bi := range n.packets {
			end := len(full)
			if bi+1 < len(n.offsets) {
				end = n.offsets[bi+1]
			}
			if end <= cut {
				whole++
			}
		}
		links, _, err := readBytes(full[:cut])
		switch {
		case cut < 4:
			if !errors.Is(err, ErrNotPcap) {
				t.Errorf("cut %d: err %v, want not a capture", cut, err)
			}
		case boundary[cut]:
			if err != nil || len(links) != whole {
				t.Errorf("cut %d on a block boundary: %d packets, err %v; want %d, no error", cut, len(links), err, whole)
			}
		default:
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("cut %d: err %v, want a truncation", cut, err)
			} else if !strings.Contains(err.Error(), "offset") {
				t.Errorf("cut %d: error does not say where: %v", cut, err)
			}
			if len(links) != whole {
				t.Errorf("cut %d: %d packets before the damage, want %d", cut, len(links), whole)
			}
		}
	}
}

func TestInputForms(t *testing.T) {
	raw, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	wantN, _, _, _ := readAll(t, sample, "")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(raw)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(raw)
	zw.Close()
	gzPath := write("s.pcap.gz", gz.Bytes())
	zsPath := write("s.pcap.zst", zs.Bytes())
	gzCut := write("cut.pcap.gz", gz.Bytes()[:gz.Len()/2])
	zsCut := write("cut.pcap.zst", zs.Bytes()[:zs.Len()/2])

	// A directory of three pieces of one capture, named against time order.
	pieces := t.TempDir()
	r, _ := OpenFile(sample, "")
	var parts [3]bytes.Buffer
	for i := range parts {
		parts[i].Write(raw[:24])
	}
	for i := 0; ; i++ {
		d, ci, err := r.ReadPacket()
		if err != nil {
			break
		}
		var h [16]byte
		binary.LittleEndian.PutUint32(h[:], uint32(ci.Timestamp.Unix()))
		binary.LittleEndian.PutUint32(h[4:], uint32(ci.Timestamp.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(h[8:], uint32(len(d)))
		binary.LittleEndian.PutUint32(h[12:], uint32(ci.Length))
		k := min(i*3/wantN, 2)
		parts[k].Write(h[:])
		parts[k].Write(d)
	}
	r.Close()
	for i, name := range []string{"c.pcap", "b.pcap", "a.pcap"} {
		os.WriteFile(filepath.Join(pieces, name), parts[i].Bytes(), 0o644)
	}
	os.WriteFile(filepath.Join(pieces, ".hidden"), []byte("not a capture"), 0o644)
	empty := t.TempDir()

	tests := []struct {
		name    string
		path    string
		stdin   []byte
		n       int
		wantErr error
	}{
		{"gzip", gzPath, nil, wantN, nil},
		{"zstd", zsPath, nil, wantN, nil},
		{"gzip cut short", gzCut, nil, -1, ErrTruncated},
		{"zstd cut short", zsCut, nil, -1, ErrTruncated},
		{"stdin", "-", raw, wantN, nil},
		{"stdin gzip", "-", gz.Bytes(), wantN, nil},
		{"directory in time order", pieces, nil, wantN, nil},
		{"empty directory", empty, nil, 0, ErrNotPcap},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := OpenInput(tc.path, InputOptions{Stdin: bytes.NewReader(tc.stdin)})
			if err != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("open: %v, want %v", err, tc.wantErr)
				}
				return
			}
			defer in.Close()
			n := 0
			var last time.Time
			for {
				_, ci, err := in.ReadPacket()
				if errors.Is(err, io.EOF) {
					err = nil
					if tc.wantErr != nil {
						t.Fatalf("clean end after %d packets, want %v", n, tc.wantErr)
					}
					break
				}
				if err != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("after %d packets: %v, want %v", n, err, tc.wantErr)
					}
					if !strings.Contains(err.Error(), tc.path) {
						t.Errorf("error does not name the file: %v", err)
					}
					break
				}
				if ci.Timestamp.Before(last) {
					t.Errorf("packet %d goes back in time", n+1)
				}
				last = ci.Timestamp
				n++
			}
			if tc.n >= 0 && n != tc.n {
				t.Errorf("%d packets, want %d", n, tc.n)
			}
			if tc.n < 0 && n == 0 {
				t.Error("nothing read before the damage")
			}
		})
	}
}

// FuzzPcapng feeds arbitrary bytes after a valid section header and
// interface: the reader must end with a packet, EOF or an error, never
// panic, and never return more than a block holds.
func FuzzPcapng(f *testing.F) {
	n := newNG(binary.LittleEndian)
	n.idb(1, 9)
	n.epb(0, 1, frame(1))
	n.other(10, 8)
	n.spb(frame(2))
	f.Add(n.bytes())
	b := newNG(binary.BigEndian)
	b.idb(113, 0x85)
	b.epb(0, 7, frame(3))
	f.Add(b.bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := openReader(bytes.NewReader(data), io.NopCloser(nil), nil)
		if err != nil {
			return
		}
		defer src.Close()
		for i := 0; i < 1000; i++ {
			d, _, err := src.ReadPacket()
			if err != nil {
				return
			}
			if len(d) > len(data) {
				t.Fatalf("packet of %d bytes from %d bytes of input", len(d), len(data))
			}
		}
	})
}

// TestProgress: a long read logs packets, bytes, rate and the share of the
// input read.
func TestProgress(t *testing.T) {
	var logs bytes.Buffer
	in, err := OpenInput("../../testdata/pcap/se-bulk.pcap", InputOptions{Log: slog.New(slog.NewTextHandler(&logs, nil)), ProgressEvery: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	n := 0
	for {
		if _, _, err := in.ReadPacket(); err != nil {
			break
		}
		n++
	}
	line, _, _ := strings.Cut(logs.String(), "\n")
	for _, want := range []string{"msg=reading", "packets=4096", "bytes=", "pkts_per_s=", "percent=", "file="} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
	if got := strings.Count(logs.String(), "msg=reading"); got != n/4096 {
		t.Errorf("%d progress lines for %d packets", got, n)
	}
}

// TestDirectoryFilter: a directory's files share one compiled filter and
// keep what the filter keeps in the single file.
func TestDirectoryFilter(t *testing.T) {
	requireTool(t, "tcpdump")
	count := func(path string) int {
		in, err := OpenInput(path, InputOptions{Filter: "tcp port 443"})
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		n := 0
		for {
			if _, _, err := in.ReadPacket(); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				return n
			}
			n++
		}
	}
	raw, _ := os.ReadFile(sample)
	dir := t.TempDir()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(raw)
	w.Close()
	os.WriteFile(filepath.Join(dir, "a.pcap"), raw, 0o644)
	os.WriteFile(filepath.Join(dir, "b.pcap.gz"), gz.Bytes(), 0o644)
	one := count(sample)
	if got := count(dir); one == 0 || got != 2*one {
		t.Errorf("directory kept %d packets, want twice %d", got, one)
	}
}

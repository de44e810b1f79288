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
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// record is one packet as a reader returns it.
type record struct {
	ts   time.Time
	data string
}

// readOrdinary reads path with the ordinary reader (ReadPacket).
func readOrdinary(t *testing.T, path string) ([]record, error) {
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return readOrdinaryFile(path)
}

// readCursors reads path with n cursors at once, each in its own
// goroutine, and returns what each read and its error.
func readCursors(t *testing.T, path string, n int, mode MapMode) ([][]record, []error) {
	in, err := OpenInput(path, InputOptions{Map: mode})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sf := in.(*multi).Shared()
	if sf == nil {
		t.Fatalf("%s: not readable shared", path)
	}
	if sf.Mapped() != (mode == MapAlways) {
		t.Fatalf("%s: mapped %v with mode %d", path, sf.Mapped(), mode)
	}
	curs := make([]*Cursor, n)
	for i := range curs {
		curs[i] = sf.Cursor()
	}
	out, errs := make([][]record, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range curs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer curs[i].Close()
			for {
				d, ts, err := curs[i].Next()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						errs[i] = err
					}
					return
				}
				out[i] = append(out[i], record{ts, string(d)})
			}
		}(i)
	}
	wg.Wait()
	return out, errs
}

// pcapFile writes a little-endian microsecond pcap of the given frame
// sizes (frame i filled with a pattern of i), cut by cut bytes at the end.
func pcapFile(t *testing.T, sizes []int, cut int) string {
	var b bytes.Buffer
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h, 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 262144)
	binary.LittleEndian.PutUint32(h[20:], 1)
	b.Write(h)
	for i, n := range sizes {
		r := make([]byte, 16+n)
		binary.LittleEndian.PutUint32(r, uint32(1_700_000_000+i))
		binary.LittleEndian.PutUint32(r[4:], uint32(i%1_000_000))
		binary.LittleEndian.PutUint32(r[8:], uint32(n))
		binary.LittleEndian.PutUint32(r[12:], uint32(n))
		for j := range r[16:] {
			r[16+j] = byte(i + j*7)
		}
		b.Write(r)
	}
	p := filepath.Join(t.TempDir(), "f.pcap")
	if err := os.WriteFile(p, b.Bytes()[:b.Len()-cut], 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSharedCursors: cursors reading one file at once each return exactly
// what the ordinary reader returns, in every encoding, across blocks (many
// ring turns, records spanning two blocks, a record ending on a block's
// end, frames of the largest size) and with the same errors for files cut
// short.
func TestSharedCursors(t *testing.T) {
	v := variants(t)
	// Sizes that walk records over many block boundaries, one record
	// ending exactly at the end of the first block, and frames of the
	// largest accepted size.
	var many []int
	for i := 0; i < 40_000; i++ {
		many = append(many, 60+(i*37)%1400)
	}
	// upTo gives records that end at byte at of the file.
	upTo := func(at int) []int {
		var sz []int
		for left := at - 24; left > 0; {
			n := min(maxCaplen, left-16)
			if left-16-n > 0 && left-16-n < 16+60 {
				n -= 100 // leave room for a last record of some size
			}
			sz = append(sz, n)
			left -= 16 + n
		}
		return sz
	}
	exact := append(upTo(blockSize), 1000, 64, 64)
	exact2 := append(upTo(3*blockSize), 1000, 64, 64)
	headerAcross := append(upTo(blockSize-8), 1000, 64, 64)
	var big []int
	for i := 0; i < 30; i++ {
		big = append(big, maxCaplen, 100, maxCaplen-5)
	}
	tests := []struct {
		name  string
		path  string
		curs  int
		isErr bool
	}{
		{"sample", sample, 2, false},
		{"ns", v["ns.pcap"], 2, false},
		{"be", v["be.pcap"], 3, false},
		{"header-only", v["header-only.pcap"], 2, false},
		{"truncated-body", v["truncated-body.pcap"], 2, true},
		{"truncated-header", v["truncated-header.pcap"], 2, true},
		{"hostile-caplen", v["hostile-caplen.pcap"], 2, true},
		{"many blocks", pcapFile(t, many, 0), 2, false},
		{"many blocks, 4 cursors", pcapFile(t, many, 0), 4, false},
		{"record ends on a block end", pcapFile(t, exact, 0), 2, false},
		{"record ends on a later block end", pcapFile(t, exact2, 0), 2, false},
		{"header across blocks", pcapFile(t, headerAcross, 0), 2, false},
		{"largest frames", pcapFile(t, big, 0), 2, false},
		{"largest frames, cut in a frame", pcapFile(t, big, 7), 2, true},
		{"many blocks, cut in a header", pcapFile(t, many, 60+(39_999*37)%1400+5), 2, true},
	}
	for _, tc := range tests {
		for _, mode := range []MapMode{MapAlways, MapNever} {
			name := tc.name
			if mode == MapNever {
				name += ", pread"
			}
			t.Run(name, func(t *testing.T) { testCursors(t, tc.path, tc.curs, tc.isErr, mode) })
		}
	}
}

// testCursors checks that curs cursors reading path at once each return
// what the ordinary reader returns, and its error (isErr: there is one).
func testCursors(t *testing.T, path string, curs int, isErr bool, mode MapMode) {
	want, werr := readOrdinary(t, path)
	if (werr != nil) != isErr {
		t.Fatalf("ordinary reader: error %v, want error %v", werr, isErr)
	}
	got, errs := readCursors(t, path, curs, mode)
	for i := range got {
		if fmt.Sprint(errs[i]) != fmt.Sprint(werr) {
			t.Errorf("cursor %d: error %v, want %v", i, errs[i], werr)
		}
		if len(got[i]) != len(want) {
			t.Fatalf("cursor %d: %d packets, want %d", i, len(got[i]), len(want))
		}
		for j := range want {
			if !got[i][j].ts.Equal(want[j].ts) || got[i][j].data != want[j].data {
				t.Fatalf("cursor %d: packet %d differs (%d bytes at %v, want %d at %v)",
					i, j+1, len(got[i][j].data), got[i][j].ts, len(want[j].data), want[j].ts)
			}
		}
	}
}

// TestSharedOnlyPlainPcap: only a plain classic pcap file read from the
// start without a filter is shared; anything else keeps the ordinary path.
func TestSharedOnlyPlainPcap(t *testing.T) {
	v := variants(t)
	raw, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(raw)
	gw.Close()
	v["gz.pcap.gz"] = filepath.Join(t.TempDir(), "gz.pcap.gz")
	if err := os.WriteFile(v["gz.pcap.gz"], gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		path   string
		filter string
		read   bool // a packet was read before asking
		want   bool
	}{
		{"pcap", sample, "", false, true},
		{"pcap, big-endian", v["be.pcap"], "", false, true},
		{"pcapng", v["ng.pcapng"], "", false, false},
		{"gzip", v["gz.pcap.gz"], "", false, false},
		{"filtered", sample, "tcp", false, false},
		{"already read", sample, "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == "" {
				t.Fatal("no such variant")
			}
			in, err := OpenInput(tc.path, InputOptions{Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			if tc.read {
				if _, _, err := in.ReadPacket(); err != nil {
					t.Fatal(err)
				}
			}
			if got := in.(*multi).Shared() != nil; got != tc.want {
				t.Errorf("shared: %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSharedProgress: a shared read reports its progress like the ordinary
// one (packets, and the share of the file read), and Stats counts the
// packets read.
func TestSharedProgress(t *testing.T) {
	var sizes []int
	for i := 0; i < 5000; i++ {
		sizes = append(sizes, 200)
	}
	var log bytes.Buffer
	in, err := OpenInput(pcapFile(t, sizes, 0), InputOptions{Log: slog.New(slog.NewTextHandler(&log, nil)), ProgressEvery: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sf := in.(*multi).Shared()
	c := sf.Cursor()
	defer c.Close()
	for i := 0; i < 2500; i++ {
		if _, _, err := c.Next(); err != nil {
			t.Fatal(err)
		}
	}
	sf.Progress(c)
	if got := in.Stats().Packets; got != 2500 {
		t.Errorf("Stats: %d packets, want 2500", got)
	}
	if s := log.String(); !strings.Contains(s, "packets=2500") || !strings.Contains(s, "percent=50.0") {
		t.Errorf("progress line %q, want 2500 packets and 50.0 percent", s)
	}
}

// FuzzSharedCursors: whatever a plain pcap file holds, a cursor reads the
// records and the error the ordinary reader gives, mapped or read with
// pread, and a second cursor taking each frame at the offset the first
// one found (Frame, as a worker takes what the walk listed) gets the same
// bytes.
func FuzzSharedCursors(f *testing.F) {
	raw, _ := os.ReadFile(sample)
	f.Add(raw[:2000])
	f.Add(raw[:24])
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.pcap")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		want, werr := readOrdinaryFile(p)
		for _, mode := range []MapMode{MapAlways, MapNever} {
			in, err := OpenInput(p, InputOptions{Map: mode})
			if err != nil {
				return
			}
			sf := in.(*multi).Shared()
			if sf == nil {
				in.Close()
				return
			}
			walk, take := sf.Cursor(), sf.Cursor()
			var got []record
			var gerr error
			for len(got) <= len(want) {
				d, ts, err := walk.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						gerr = err
					}
					break
				}
				got = append(got, record{ts, string(d)})
				if fr := take.Frame(walk.End()-int64(len(d)), len(d)); string(fr) != string(d) {
					t.Fatalf("mode %d, record %d: Frame at the walk's offset gives other bytes", mode, len(got))
				}
			}
			walk.Close()
			take.Close()
			in.Close()
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || len(got) != len(want) {
				t.Fatalf("mode %d: %d records, error %v; the ordinary reader %d, %v", mode, len(got), gerr, len(want), werr)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("mode %d: record %d differs", mode, i+1)
				}
			}
		}
	})
}

// readOrdinaryFile is readOrdinary without a test to fail: a file that does
// not open gives that error.
func readOrdinaryFile(path string) ([]record, error) {
	in, err := OpenInput(path, InputOptions{})
	if err != nil {
		return nil, err
	}
	defer in.Close()
	var out []record
	for {
		d, ci, err := in.ReadPacket()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, record{ci.Timestamp, string(d)})
	}
}

package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

const sample = "../../testdata/pcap/se-tls12-probe.pcap"

// readAll returns the packet count, first and last timestamps and the error
// that ended the read (nil at a clean EOF).
func readAll(t testing.TB, path, filter string) (n int, first, last int64, err error) {
	src, err := OpenFile(path, filter)
	if err != nil {
		return 0, 0, 0, err
	}
	defer src.Close()
	for {
		_, ci, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			return n, first, last, nil
		}
		if err != nil {
			return n, first, last, err
		}
		if n == 0 {
			first = ci.Timestamp.UnixNano()
		}
		last = ci.Timestamp.UnixNano()
		n++
	}
}

// variants writes the sample capture in other encodings.
func variants(t *testing.T) map[string]string {
	dir := t.TempDir()
	raw, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	write := func(name string, b []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out[name] = p
	}
	// Nanosecond and big-endian pcap, re-encoded record by record.
	r, _ := pcapgo.NewReader(bytes.NewReader(raw))
	var ns, be bytes.Buffer
	hdr := func(buf *bytes.Buffer, o binary.ByteOrder, magic uint32) {
		h := make([]byte, 24)
		o.PutUint32(h, magic)
		o.PutUint16(h[4:], 2)
		o.PutUint16(h[6:], 4)
		o.PutUint32(h[16:], 262144)
		o.PutUint32(h[20:], 1)
		buf.Write(h)
	}
	hdr(&ns, binary.LittleEndian, 0xa1b23c4d)
	hdr(&be, binary.BigEndian, 0xa1b2c3d4)
	var ngb bytes.Buffer
	ng, err := pcapgo.NewNgWriter(&ngb, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for {
		d, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		rec := func(buf *bytes.Buffer, o binary.ByteOrder, frac uint32) {
			h := make([]byte, 16)
			o.PutUint32(h, uint32(ci.Timestamp.Unix()))
			o.PutUint32(h[4:], frac)
			o.PutUint32(h[8:], uint32(len(d)))
			o.PutUint32(h[12:], uint32(ci.Length))
			buf.Write(h)
			buf.Write(d)
		}
		rec(&ns, binary.LittleEndian, uint32(ci.Timestamp.Nanosecond()))
		rec(&be, binary.BigEndian, uint32(ci.Timestamp.Nanosecond()/1000))
		ng.WritePacket(gopacket.CaptureInfo{Timestamp: ci.Timestamp, CaptureLength: len(d), Length: ci.Length, InterfaceIndex: 0}, d)
	}
	ng.Flush()
	write("ns.pcap", ns.Bytes())
	write("be.pcap", be.Bytes())
	write("ng.pcapng", ngb.Bytes())
	write("truncated-body.pcap", raw[:len(raw)-10])
	write("truncated-header.pcap", raw[:24+16+100+8])
	write("empty.pcap", nil)
	write("header-only.pcap", raw[:24])
	write("random.pcap", bytes.Repeat([]byte{0x42, 0x13, 0x37}, 100))
	hostile := append([]byte(nil), raw[:24+16]...)
	binary.LittleEndian.PutUint32(hostile[24+8:], 0xfffffff0)
	write("hostile-caplen.pcap", hostile)
	return out
}

func TestOpenFile(t *testing.T) {
	wantN, wantFirst, wantLast, err := readAll(t, sample, "")
	if err != nil || wantN != 85 {
		t.Fatalf("sample: %d packets, err %v (want 85 packets, as tcpdump -r counts)", wantN, err)
	}
	v := variants(t)
	tests := []struct {
		file    string
		n       int
		wantErr error
	}{
		{"ns.pcap", wantN, nil},
		{"be.pcap", wantN, nil},
		{"ng.pcapng", wantN, nil},
		{"header-only.pcap", 0, nil},
		{"truncated-body.pcap", wantN - 1, ErrTruncated},
		{"truncated-header.pcap", 1, ErrTruncated},
		{"empty.pcap", 0, ErrNotPcap},
		{"random.pcap", 0, ErrNotPcap},
		{"hostile-caplen.pcap", 0, ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			n, first, last, err := readAll(t, v[tc.file], "")
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if n != tc.n {
				t.Errorf("%d packets, want %d", n, tc.n)
			}
			if tc.wantErr == nil && n == wantN && (first != wantFirst || last != wantLast) {
				t.Errorf("timestamps %d..%d, want %d..%d", first, last, wantFirst, wantLast)
			}
		})
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.pcap"), ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// requireTool skips when an external program is missing, unless CI asks
// for it (SEWATCH_REQUIRE_TOOLS=1), where missing tools fail the test.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("SEWATCH_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s is required: %v", name, err)
		}
		t.Skipf("%s not installed (CI installs it)", name)
	}
}

func TestFilter(t *testing.T) {
	requireTool(t, "tcpdump")
	// Count what the filter should keep by decoding every packet.
	src, _ := OpenFile(sample, "")
	want := 0
	for {
		d, _, err := src.ReadPacket()
		if err != nil {
			break
		}
		p := gopacket.NewPacket(d, layers.LayerTypeEthernet, gopacket.Default)
		if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && (tcp.SrcPort == 443 || tcp.DstPort == 443) {
			want++
		}
	}
	src.Close()
	src, err := OpenFile(sample, "tcp port 443")
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		if _, _, err := src.ReadPacket(); err != nil {
			break
		}
		got++
	}
	if got != want || want == 0 || src.Stats().FilterRejected == 0 {
		t.Errorf("filter kept %d packets, want %d (rejected %d)", got, want, src.Stats().FilterRejected)
	}
	if _, err := OpenFile(sample, "tcp port"); err == nil {
		t.Error("a broken filter was accepted")
	}
}

func FuzzOpenFile(f *testing.F) {
	raw, _ := os.ReadFile(sample)
	f.Add(raw[:2000])
	f.Add(raw[:24])
	// Compressed seeds: the fuzzer mutates the gzip and zstd framing too.
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(raw[:600])
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(raw[:600])
	zw.Close()
	f.Add(gz.Bytes())
	f.Add(zs.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.pcap")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := OpenFile(p, "")
		if err != nil {
			return
		}
		defer src.Close()
		for i := 0; i < 10000; i++ {
			d, _, err := src.ReadPacket()
			if err != nil {
				return
			}
			if len(d) > maxCaplen {
				t.Fatalf("packet of %d bytes", len(d))
			}
		}
	})
}

func BenchmarkReadPcap(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		src, err := OpenFile("../../testdata/pcap/se-bulk.pcap", "")
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, _, err := src.ReadPacket(); err != nil {
				break
			}
		}
		src.Close()
	}
}

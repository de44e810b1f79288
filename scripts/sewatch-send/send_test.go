package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// testFrames are frames of distinct lengths and contents, one truncated
// (captured 60 of 1514 bytes): the sender sends what was captured.
func testFrames() [][]byte {
	var out [][]byte
	for i, n := range []int{60, 1514, 14, 9000, 342} {
		f := make([]byte, n)
		for j := range f {
			f[j] = byte(i*31 + j)
		}
		out = append(out, f)
	}
	return out
}

func writePcap(t *testing.T, link layers.LinkType, fr [][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65535, link); err != nil {
		t.Fatal(err)
	}
	for i, f := range fr {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(f), Length: len(f)}
		if i == 0 {
			ci.Length = 1514
		}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func writePcapng(t *testing.T, fr [][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := pcapgo.NewNgWriter(&b, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range fr {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(f), Length: len(f), InterfaceIndex: 0}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestLoadFrames(t *testing.T) {
	want := testFrames()
	pcap := writePcap(t, layers.LinkTypeEthernet, want)
	for _, tc := range []struct {
		name string
		in   []byte
		hint int64
		err  string // empty: loads want
	}{
		{"pcap", pcap, 0, ""},
		{"pcap with size hint", pcap, int64(len(pcap)), ""},
		{"pcapng", writePcapng(t, want), 0, ""},
		{"truncated record", pcap[:len(pcap)-100], 0, "frame 5"},
		{"no frames", pcap[:24], 0, "no frame"},
		{"not Ethernet", writePcap(t, layers.LinkTypeRaw, want), 0, "only Ethernet"},
		{"not a capture", []byte("hello, world: this is not a capture file\n"), 0, "magic"},
		{"empty file", nil, 0, "capture header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr, err := loadFrames(bytes.NewReader(tc.in), tc.hint)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fr.len() != len(want) || fr.max != 9000 {
				t.Fatalf("%d frames, longest %d; want %d, 9000", fr.len(), fr.max, len(want))
			}
			for i, w := range want {
				if !bytes.Equal(fr.frame(i), w) {
					t.Errorf("frame %d differs (%d bytes, want %d)", i, len(fr.frame(i)), len(w))
				}
			}
		})
	}
}

// TestLoadBundledCapture loads a real capture and compares it frame by
// frame with gopacket's reader.
func TestLoadBundledCapture(t *testing.T) {
	const path = "../../testdata/pcap/se-bulk.pcap"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := loadFrames(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; ; n++ {
		d, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if n >= fr.len() || !bytes.Equal(fr.frame(n), d) {
			t.Fatalf("frame %d differs", n)
		}
	}
	if n != fr.len() || n < 1000 {
		t.Fatalf("loaded %d frames, the reader read %d", fr.len(), n)
	}
}

func TestUpTo(t *testing.T) {
	fr, err := loadFrames(bytes.NewReader(writePcap(t, layers.LinkTypeEthernet, testFrames())), 0)
	if err != nil {
		t.Fatal(err)
	}
	if g, n := fr.upTo(9000); g != fr || n != 0 {
		t.Fatalf("upTo(longest) = %d frames, %d dropped; want the same frames", g.len(), n)
	}
	g, n := fr.upTo(1514)
	if n != 1 || g.len() != 4 || g.max != 1514 {
		t.Fatalf("upTo(1514): %d frames (longest %d), %d too long; want 4, 1514, 1", g.len(), g.max, n)
	}
	for i, j := range []int{0, 1, 2, 4} {
		if !bytes.Equal(g.frame(i), fr.frame(j)) {
			t.Errorf("kept frame %d is not frame %d", i, j)
		}
	}
}

// TestPacer drives the pacer with a simulated clock and a sender that
// sends whatever is allowed at once, stalls as told, and sleeps exactly as
// long as it is told to. At every point no frame may go before its time,
// the sender may lag the schedule by at most one batch once it caught
// up, no call allows more than a batch, and the run ends on time.
func TestPacer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  float64
		batch int
		total int
		stall time.Duration // once, after a tenth of the frames
	}{
		{"300 kpps, batches of 64", 300000, 64, 100000, 0},
		{"1 kpps, batches of 1", 1000, 1, 500, 0},
		{"400 kpps, 20 ms stall", 400000, 64, 100000, 20 * time.Millisecond},
		{"7 pps", 7, 64, 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Unix(1000, 0)
			p := pacer{rate: tc.rate, batch: tc.batch, start: start}
			now := start
			sent, calls := 0, 0
			stalled := false
			for sent < tc.total {
				calls++
				if calls > 10*tc.total {
					t.Fatal("the pacer does not let the sender finish")
				}
				n, wait := p.allowed(now, sent)
				if n == 0 {
					if wait <= 0 {
						t.Fatalf("nothing allowed at %v with %d sent, and no wait", now.Sub(start), sent)
					}
					now = now.Add(wait)
					continue
				}
				if n > tc.batch {
					t.Fatalf("%d allowed in one call, batch %d", n, tc.batch)
				}
				n = min(n, tc.total-sent)
				// The last frame of the batch must be due.
				if due := p.due(sent + n - 1); due.After(now) {
					t.Fatalf("frame %d sent at %v, due at %v", sent+n-1, now.Sub(start), due.Sub(start))
				}
				sent += n
				// Caught up: what is due now lies within one batch.
				if behind := int(now.Sub(start).Seconds()*tc.rate) + 1 - sent; behind > tc.batch && !stalled {
					t.Fatalf("%d frames behind at %v", behind, now.Sub(start))
				}
				now = now.Add(time.Microsecond) // the send itself
				if tc.stall > 0 && !stalled && sent >= tc.total/10 {
					now = now.Add(tc.stall)
					stalled = true
				}
			}
			// The last frame is due at (total-1)/rate; it leaves within the
			// time of one send after that.
			end := now.Sub(start)
			want := time.Duration(float64(tc.total-1) / tc.rate * 1e9)
			if end < want || end > want+time.Millisecond {
				t.Fatalf("%d frames took %v, want %v", tc.total, end, want)
			}
		})
	}
	p := pacer{batch: 64, start: time.Unix(0, 0)}
	if n, wait := p.allowed(time.Unix(0, 0), 1e9); n != 64 || wait != 0 {
		t.Fatalf("top speed allows %d, wait %v; want a batch at once", n, wait)
	}
}

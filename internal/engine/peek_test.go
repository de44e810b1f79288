package engine

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/decode"
)

// tunnelled wraps an Ethernet frame's IP packet in the tunnels the decoder
// follows, so the peek must leave them to it: VXLAN, Geneve, GTP-U and
// Teredo over UDP, IP in IP and GRE.
func tunnelled(f []byte) [][]byte {
	if len(f) < 14+20 || f[12] != 0x08 || f[13] != 0x00 {
		return nil
	}
	inner := f[14:]
	ipv4 := func(proto byte, payload []byte) []byte {
		ip := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0, 10, 9, 9, 1, 10, 9, 9, 2}
		ip[2], ip[3] = byte((20+len(payload))>>8), byte(20+len(payload))
		return append(append(append([]byte{}, f[:12]...), 0x08, 0x00), append(ip, payload...)...)
	}
	udp := func(sp, dp uint16, hdr, payload []byte) []byte {
		u := append([]byte{byte(sp >> 8), byte(sp), byte(dp >> 8), byte(dp), 0, 0, 0, 0}, hdr...)
		u = append(u, payload...)
		u[4], u[5] = byte(len(u)>>8), byte(len(u))
		return ipv4(17, u)
	}
	return [][]byte{
		udp(50000, 4789, []byte{0x08, 0, 0, 0, 0, 0, 1, 0}, f),
		udp(50000, 6081, []byte{0, 0, 0x65, 0x58, 0, 0, 1, 0}, f),
		udp(2152, 2152, []byte{0x30, 0xff, byte(len(inner) >> 8), byte(len(inner)), 0, 0, 0, 1}, inner),
		ipv4(4, inner),
		ipv4(47, append([]byte{0, 0, 0x08, 0x00}, inner...)),
	}
}

// peekFrames is every frame of the bundled captures, tunnelled copies of
// some, and, when SEWATCH_SHARED is set, every frame of the third-party
// captures (all link types), each with its link type.
func peekFrames(t testing.TB) (frames [][]byte, links []decode.LinkType) {
	paths, _ := filepath.Glob(filepath.Join(pcapDir, "*.pcap"))
	if root := os.Getenv("SEWATCH_SHARED"); root != "" {
		more, _ := filepath.Glob(filepath.Join(root, "thirdparty", "ndpi", "pcap", "*"))
		paths = append(paths, more...)
	}
	for _, p := range paths {
		in, err := capture.OpenInput(p, capture.InputOptions{})
		if err != nil {
			continue // not a capture the reader takes: not this test's matter
		}
		for i := 0; ; i++ {
			d, _, err := in.ReadPacket()
			if errors.Is(err, io.EOF) || err != nil {
				break
			}
			l := decode.LinkType(in.PacketLinkType())
			frames, links = append(frames, append([]byte(nil), d...)), append(links, l)
			if l == decode.LinkEthernet && i%50 == 0 {
				for _, x := range tunnelled(d) {
					frames, links = append(frames, x), append(links, l)
				}
			}
		}
		in.Close()
	}
	return frames, links
}

// TestPeekOwner: for every frame the decoder turns into a flow, the worker
// its headers name (when they do) is the one its decoded flow key names,
// for any worker count; and most frames of the captures are peeked.
func TestPeekOwner(t *testing.T) {
	frames, links := peekFrames(t)
	peeked, flows := 0, 0
	var p decode.Packet
	decs := map[decode.LinkType]*decode.Decoder{}
	for i, f := range frames {
		d := decs[links[i]]
		if d == nil {
			d = decode.NewDecoder(links[i])
			decs[links[i]] = d
		}
		if d.Decode(f, &p) != nil {
			continue
		}
		flows++
		for _, n := range []uint32{2, 3, 4, 7} {
			w, ok := peekOwner(links[i], f, n)
			if !ok {
				break
			}
			if want := dispatchKey(&p) % n; w != want {
				t.Fatalf("frame %d (%d bytes, link %d, %v -> %v): peeked worker %d of %d, decoded %d", i, len(f), links[i], p.Src, p.Dst, w, n, want)
			}
			if n == 2 {
				peeked++
			}
		}
	}
	if flows < 10_000 || peeked < flows*3/4 {
		t.Errorf("%d of %d frames peeked (want most of at least 10,000)", peeked, flows)
	}
}

// FuzzPeekOwner: whatever the bytes, a peeked worker is the decoded one.
func FuzzPeekOwner(f *testing.F) {
	frames, _ := peekFrames(f)
	for i := 0; i < len(frames); i += max(1, len(frames)/200) {
		f.Add(frames[i])
	}
	dec := decode.NewDecoder(decode.LinkEthernet)
	var p decode.Packet
	f.Fuzz(func(t *testing.T, b []byte) {
		w, ok := peekOwner(decode.LinkEthernet, b, 3)
		if !ok || dec.Decode(b, &p) != nil {
			return
		}
		if want := dispatchKey(&p) % 3; w != want {
			t.Fatalf("peeked worker %d, decoded %d (%v -> %v)", w, want, p.Src, p.Dst)
		}
	})
}

// TestWorkerStateOnOwnLines: the per-worker structures the workers write at
// every packet and allocate one after another (sinks, cursors) fill whole
// cache lines, so two workers' copies never share one (the allocator
// keeps objects of a size that is a multiple of 64 on line boundaries).
func TestWorkerStateOnOwnLines(t *testing.T) {
	for name, size := range map[string]uintptr{
		"evidenceSink":   unsafe.Sizeof(evidenceSink{}),
		"capture.Cursor": unsafe.Sizeof(capture.Cursor{}),
	} {
		if size%64 != 0 {
			t.Errorf("%s is %d bytes, not a whole number of cache lines: pad it", name, size)
		}
	}
}

package decode_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/decode"
)

// TestFastPathMatchesLayers decodes every frame of the bundled captures
// (and, with SEWATCH_SHARED, of the 542 third-party ones: every link type
// and encapsulation the decoder knows) with and without the IPv4 fast path
// and requires the same packet, error and counters. It also requires the
// fast path to have taken most bundled IPv4 frames, or it tests nothing.
func TestFastPathMatchesLayers(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/pcap/*.pcap*")
	if root := os.Getenv("SEWATCH_SHARED"); root != "" {
		more, _ := filepath.Glob(filepath.Join(root, "thirdparty", "ndpi", "pcap", "*"))
		files = append(files, more...)
	}
	if len(files) < 50 {
		t.Fatalf("only %d captures found", len(files))
	}
	var frames, fast, ipv4 int
	for _, f := range files {
		in, err := capture.OpenInput(f, capture.InputOptions{})
		if err != nil {
			continue // not a capture (the third-party set has a few)
		}
		var fastDec, slowDec *decode.Decoder
		var link uint32
		var pf, ps decode.Packet
		for {
			data, _, err := in.ReadPacket()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Logf("%s: %v", filepath.Base(f), err)
				}
				break
			}
			if l := in.PacketLinkType(); fastDec == nil || l != link {
				link = l
				fastDec, slowDec = decode.NewDecoder(decode.LinkType(l)), decode.NewLayeredDecoder(decode.LinkType(l))
			}
			ef := fastDec.Decode(data, &pf)
			es := slowDec.Decode(data, &ps)
			frames++
			if why := decode.Same(fastDec, slowDec, &pf, &ps, ef, es); why != "" {
				t.Fatalf("%s frame %d: %s\nfast %+v %v\nlayered %+v %v", filepath.Base(f), frames, why, pf, ef, ps, es)
			}
			if es == nil && ps.IPVersion == 4 {
				ipv4++
				if fastDec.TookFastPath() {
					fast++
				}
			}
		}
		in.Close()
	}
	t.Logf("%d frames from %d captures, %d IPv4, %d by the fast path", frames, len(files), ipv4, fast)
	if fast*2 < ipv4 {
		t.Errorf("the fast path took %d of %d IPv4 frames", fast, ipv4)
	}
}

// FuzzFastPath: any bytes after an Ethernet header decode the same with
// and without the fast path.
func FuzzFastPath(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0, 80, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0, 53, 0x9c, 0x40, 0, 0, 0, 0, 'x'})
	f.Add([]byte{0x45, 0, 0, 52, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0, 80, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0x10, 0xff, 0xff, 0, 0, 0, 0,
		1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	eth := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}
	fastDec, slowDec := decode.NewDecoder(decode.LinkEthernet), decode.NewLayeredDecoder(decode.LinkEthernet)
	f.Fuzz(func(t *testing.T, ip []byte) {
		data := append(append([]byte(nil), eth...), ip...)
		var pf, ps decode.Packet
		ef := fastDec.Decode(data, &pf)
		es := slowDec.Decode(data, &ps)
		if why := decode.Same(fastDec, slowDec, &pf, &ps, ef, es); why != "" {
			t.Fatalf("%s\nfast %+v %v\nlayered %+v %v", why, pf, ef, ps, es)
		}
	})
}

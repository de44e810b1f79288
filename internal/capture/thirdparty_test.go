package capture

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sewatch/sewatch/internal/decode"
)

// TestThirdPartyCaptures reads every capture of the shared third-party set
// (SEWATCH_SHARED=dir holding thirdparty/ndpi/pcap; .ci/run sets it): no
// file may end in an error, every file must yield exactly the packets
// capinfos counts, and what the decoder cannot turn into an IP flow is
// listed by kind.
func TestThirdPartyCaptures(t *testing.T) {
	root := os.Getenv("SEWATCH_SHARED")
	if root == "" {
		t.Skip("SEWATCH_SHARED not set (.ci/run sets it)")
	}
	dir := filepath.Join(root, "thirdparty", "ndpi", "pcap")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	requireTool(t, "capinfos")
	var files []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	// One capinfos run for all files: "name<TAB>packets" per line.
	out, err := exec.Command("capinfos", append([]string{"-T", "-r", "-c", "-M"}, files...)...).Output()
	if err != nil {
		t.Fatalf("capinfos: %v", err)
	}
	want := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "\t")
		if n, err := strconv.Atoi(strings.TrimSpace(f[len(f)-1])); err == nil && len(f) >= 2 {
			want[filepath.Base(f[0])] = n
		}
	}
	kinds := map[string]uint64{}
	var total, invalid int
	for _, path := range files {
		name := filepath.Base(path)
		in, err := OpenInput(path, InputOptions{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		d := decode.NewDecoder(decode.LinkType(in.LinkType()))
		var p decode.Packet
		n := 0
		for {
			data, _, err := in.ReadPacket()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: run error after %d packets: %v", name, n, err)
				break
			}
			n++
			d.SetLink(decode.LinkType(in.PacketLinkType()))
			if err := d.Decode(data, &p); err != nil && !errors.Is(err, decode.ErrNotIP) && !errors.Is(err, decode.ErrUnsupportedLink) {
				invalid++
			}
		}
		in.Close()
		if w, ok := want[name]; !ok || n != w {
			t.Errorf("%s: %d packets read, capinfos counts %d (known %v)", name, n, w, ok)
		}
		total += n
		for _, k := range d.Skipped.Kinds[:d.Skipped.Used] {
			kinds[k.String()] += k.N
		}
	}
	var lines []string
	for k, n := range kinds {
		lines = append(lines, strconv.FormatUint(n, 10)+" "+k)
	}
	sort.Strings(lines)
	t.Logf("%d files, %d packets, %d invalid (damaged or fuzzed); not decoded to an IP flow, by kind:\n%s",
		len(files), total, invalid, strings.Join(lines, "\n"))
}

package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/sewatch/sewatch/internal/capture"
)

// mixedPcapng rewrites a classic Ethernet capture as pcapng with two
// interfaces of different link types (raw IP and Ethernet) and a
// decryption-secrets block before them: odd packets lose their Ethernet
// header and go out on the raw-IP interface.
func mixedPcapng(t *testing.T, path string) []byte {
	src, err := capture.OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out bytes.Buffer
	le := binary.LittleEndian
	block := func(typ uint32, body []byte) {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		out.Write(le.AppendUint32(le.AppendUint32(nil, typ), uint32(12+len(body))))
		out.Write(body)
		out.Write(le.AppendUint32(nil, uint32(12+len(body))))
	}
	block(0x0A0D0D0A, []byte{0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	block(10, append(le.AppendUint32(le.AppendUint32(nil, 0x544c534b), 8), "CLIENT_R"...)) // TLS key log
	block(1, []byte{101, 0, 0, 0, 0, 0, 4, 0})
	block(1, []byte{1, 0, 0, 0, 0, 0, 4, 0})
	for i := 0; ; i++ {
		d, ci, err := src.ReadPacket()
		if err != nil {
			break
		}
		ifid := uint32(1)
		if i%2 == 1 {
			ifid, d = 0, d[14:]
		}
		ts := uint64(ci.Timestamp.UnixMicro())
		b := le.AppendUint32(nil, ifid)
		b = le.AppendUint32(b, uint32(ts>>32))
		b = le.AppendUint32(b, uint32(ts))
		b = le.AppendUint32(b, uint32(len(d)))
		b = le.AppendUint32(b, uint32(len(d)))
		block(6, append(b, d...))
	}
	return out.Bytes()
}

// TestInputForms: the bundled SoftEther capture gives the same alert read
// as mixed-link-type pcapng, gzip-compressed, from stdin and as a
// directory of pieces.
func TestInputForms(t *testing.T) {
	golden, err := os.ReadFile("../../testdata/golden/se-direct-443.eve.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(direct)
	dir := t.TempDir()
	mixed := filepath.Join(dir, "mixed.pcapng")
	os.WriteFile(mixed, mixedPcapng(t, direct), 0o644)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(raw)
	w.Close()
	gzPath := filepath.Join(dir, "d.pcap.gz")
	os.WriteFile(gzPath, gz.Bytes(), 0o644)
	only := t.TempDir()
	os.WriteFile(filepath.Join(only, "one.pcap.gz"), gz.Bytes(), 0o644)

	tests := []struct {
		name  string
		args  []string
		stdin []byte
	}{
		{"pcapng with mixed link types", []string{"-r", mixed}, nil},
		{"gzip", []string{"-r", gzPath}, nil},
		{"stdin", []string{"-r", "-"}, raw},
		{"directory", []string{"-r", only}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], tc.args...)
			cmd.Env = append(os.Environ(), "SEWATCH_TEST_MAIN=1")
			cmd.Stdin = bytes.NewReader(tc.stdin)
			var o, e bytes.Buffer
			cmd.Stdout, cmd.Stderr = &o, &e
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\n%s", err, e.String())
			}
			alerts, nstats := splitStats(o.String())
			// Flow byte counts include link headers, which the mixed
			// capture strips from every other packet.
			bytesRe := regexp.MustCompile(`"bytes_to(server|client)":\d+`)
			want := string(golden)
			if tc.name == "pcapng with mixed link types" {
				alerts, want = bytesRe.ReplaceAllString(alerts, ""), bytesRe.ReplaceAllString(want, "")
			}
			if alerts != want || nstats != 1 {
				t.Errorf("stdout (%d stats):\n%s\nwant:\n%s\nstderr: %s", nstats, alerts, want, e.String())
			}
		})
	}
}

// TestUnknownLinkType: a capture of a link type sewatch does not decode is
// read whole and said so on stderr, not passed over in silence.
func TestUnknownLinkType(t *testing.T) {
	raw, _ := os.ReadFile(direct)
	b := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint32(b[20:], 147) // LINKTYPE_USER0
	p := filepath.Join(t.TempDir(), "user0.pcap")
	os.WriteFile(p, b, 0o644)
	out, errOut, code := sewatch(t, "-r", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, `count=955 kind="link type 147 (not supported)"`) {
		t.Errorf("stderr does not report the link type:\n%s", errOut)
	}
	if alerts, n := splitStats(out); alerts != "" || n != 1 {
		t.Errorf("stdout %q", out)
	}
}

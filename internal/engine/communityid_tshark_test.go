package engine

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// tsharkPacket is what tshark says of one frame.
type tsharkPacket struct {
	src                string
	icmpType, icmpCode string
	communityID        string
}

// tsharkPackets asks tshark's Community ID dissector (seed 0, base64) about
// the given frames of each capture. The frames are cut out with editcap and
// concatenated with mergecap so that tshark starts once (its start-up, not
// the dissection, is what costs); Community ID is per packet, so a packet
// out of its capture hashes the same. The result is in the order asked.
func tsharkPackets(t *testing.T, tshark string, want []capFrames) []tsharkPacket {
	t.Helper()
	dir := t.TempDir()
	var parts []string
	total := 0
	for i, w := range want {
		part := filepath.Join(dir, strconv.Itoa(i)+".pcapng")
		args := []string{"-F", "pcapng", "-r", w.path, part}
		for _, n := range w.frames {
			args = append(args, strconv.FormatUint(n, 10))
		}
		if out, err := exec.Command("editcap", args...).CombinedOutput(); err != nil {
			t.Fatalf("editcap %s: %v: %s", w.path, err, out)
		}
		parts = append(parts, part)
		total += len(w.frames)
	}
	all := filepath.Join(dir, "all.pcapng")
	if out, err := exec.Command("mergecap", append([]string{"-a", "-F", "pcapng", "-w", all}, parts...)...).CombinedOutput(); err != nil {
		t.Fatalf("mergecap: %v: %s", err, out)
	}
	out, err := exec.Command(tshark, "-r", all, "-n", "--enable-protocol", "communityid",
		"-o", "communityid.seed:0", "-o", "communityid.do_base64:TRUE",
		"-T", "fields", "-E", "separator=/t", "-e", "frame.number", "-e", "ip.src", "-e", "ipv6.src",
		"-e", "icmp.type", "-e", "icmp.code", "-e", "icmpv6.type", "-e", "icmpv6.code", "-e", "communityid").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	first := func(s string) string { v, _, _ := strings.Cut(s, ","); return v }
	var res []tsharkPacket
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 8 {
			continue
		}
		p := tsharkPacket{src: first(f[1]), icmpType: first(f[3]), icmpCode: first(f[4]), communityID: f[7]}
		if p.src == "" {
			p.src = first(f[2])
		}
		if p.icmpType == "" {
			p.icmpType, p.icmpCode = first(f[5]), first(f[6])
		}
		res = append(res, p)
	}
	if len(res) != total {
		t.Fatalf("tshark returned %d frames, asked for %d", len(res), total)
	}
	return res
}

// capFrames: the frames of one capture to ask tshark about, ascending.
type capFrames struct {
	path   string
	frames []uint64
}

// corpusPcaps: the bundled captures, plus the shared corpus when present
// (CI sets SEWATCH_SHARED; a checkout beside it finds ../shared).
func corpusPcaps(t *testing.T) []string {
	files, _ := filepath.Glob("../../testdata/pcap/*.pcap")
	shared := os.Getenv("SEWATCH_SHARED")
	if shared == "" {
		shared = "../../../shared"
	}
	more, _ := filepath.Glob(filepath.Join(shared, "corpus", "*.pcap"))
	if os.Getenv("SEWATCH_SHARED") != "" && len(more) == 0 {
		t.Fatalf("SEWATCH_SHARED=%s has no corpus/*.pcap", shared)
	}
	return append(files, more...)
}

// Every alert's community_id equals tshark's Community ID of the packet its
// pcap_cnt names (ICMP included: type and code in place of ports), its
// icmp_type/icmp_code are that packet's, and its direction matches who
// sent that packet.
func TestCommunityIDMatchesTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("SEWATCH_REQUIRE_TOOLS") != "" {
			t.Fatal("tshark not installed")
		}
		t.Skip("tshark not installed (CI installs it)")
	}
	type alertFields struct {
		PcapCnt     uint64 `json:"pcap_cnt"`
		SrcIP       string `json:"src_ip"`
		DestIP      string `json:"dest_ip"`
		Proto       string `json:"proto"`
		CommunityID string `json:"community_id"`
		Direction   string `json:"direction"`
		ICMPType    *int   `json:"icmp_type"`
		ICMPCode    *int   `json:"icmp_code"`
		file        string
	}
	var evs []alertFields
	var want []capFrames
	for _, path := range corpusPcaps(t) {
		set := map[uint64]bool{}
		for _, r := range runPcap(t, path) {
			if r.Type != "alert" {
				continue // session flow events name no packet
			}
			var ev alertFields
			if err := json.Unmarshal(r.JSON, &ev); err != nil {
				t.Fatal(err)
			}
			ev.file = filepath.Base(path)
			evs = append(evs, ev)
			set[ev.PcapCnt] = true
		}
		if len(set) == 0 {
			continue
		}
		cf := capFrames{path: path}
		for n := range set {
			cf.frames = append(cf.frames, n)
		}
		sort.Slice(cf.frames, func(i, j int) bool { return cf.frames[i] < cf.frames[j] })
		want = append(want, cf)
	}
	if len(evs) == 0 {
		t.Fatal("no alert to compare")
	}
	got := tsharkPackets(t, tshark, want)
	byFrame := map[string]tsharkPacket{}
	i := 0
	for _, cf := range want {
		for _, n := range cf.frames {
			byFrame[filepath.Base(cf.path)+"#"+strconv.FormatUint(n, 10)] = got[i]
			i++
		}
	}
	alerts, icmp := 0, 0
	for _, ev := range evs {
		name := ev.file + " pcap_cnt " + strconv.FormatUint(ev.PcapCnt, 10)
		p := byFrame[ev.file+"#"+strconv.FormatUint(ev.PcapCnt, 10)]
		alerts++
		if ev.CommunityID != p.communityID {
			t.Errorf("%s (%s %s -> %s): community_id %s, tshark %s", name, ev.Proto, ev.SrcIP, ev.DestIP, ev.CommunityID, p.communityID)
		}
		wantSrc := ev.SrcIP
		if ev.Direction == "to_client" {
			wantSrc = ev.DestIP
		}
		if !sameIP(wantSrc, p.src) {
			t.Errorf("%s: direction %s says the packet came from %s, tshark says %s", name, ev.Direction, wantSrc, p.src)
		}
		if ev.Proto == "ICMP" || ev.Proto == "IPv6-ICMP" {
			icmp++
			if ev.ICMPType == nil || ev.ICMPCode == nil || strconv.Itoa(*ev.ICMPType) != p.icmpType || strconv.Itoa(*ev.ICMPCode) != p.icmpCode {
				t.Errorf("%s: icmp_type/code %v/%v, tshark %s/%s", name, ev.ICMPType, ev.ICMPCode, p.icmpType, p.icmpCode)
			}
		}
	}
	t.Logf("%d alerts compared with tshark, %d of them ICMP", alerts, icmp)
}

// sameIP compares Suricata's full IPv6 form with tshark's compressed one.
func sameIP(a, b string) bool {
	pa, e1 := parseAddr(a)
	pb, e2 := parseAddr(b)
	return e1 == nil && e2 == nil && pa == pb
}

func parseAddr(s string) (netip.Addr, error) { return netip.ParseAddr(s) }

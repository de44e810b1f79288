package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sewatch/sewatch/detector"
	_ "github.com/sewatch/sewatch/detector/all"
	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/testpcap"
	"github.com/sewatch/sewatch/internal/verdict"
	"github.com/sewatch/sewatch/outputs"
)

var update = flag.Bool("update", false, "rewrite the golden EVE files")

const pcapDir = "../../testdata/pcap"

// collector is an output router stand-in that keeps the records.
type collector struct {
	mu   sync.Mutex
	recs []outputs.Record
}

func (c *collector) Send(r outputs.Record) { c.mu.Lock(); c.recs = append(c.recs, r); c.mu.Unlock() }

// fileSource reads a pcap with pcapgo, as the capture package does.
type fileSource struct{ r *pcapgo.Reader }

func (s fileSource) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	return s.r.ZeroCopyReadPacketData()
}

func newEngine(t testing.TB, out Sender) *Engine {
	dets, err := detector.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Detectors: dets, Verdict: verdict.DefaultConfig()}, out, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func runPcap(t testing.TB, path string) []outputs.Record {
	r := testpcap.Open(t, path)
	c := &collector{}
	e := newEngine(t, c)
	w := e.NewWorker(decode.LinkType(r.LinkType()))
	if err := w.Run(context.Background(), fileSource{r}, nil); err != nil {
		t.Fatal(err)
	}
	w.Finish()
	return c.recs
}

type manifest struct {
	File string `json:"file"`
	// Undetected: a real SoftEther capture that raises no alert by design,
	// and why (the test fails when it alerts, so the trade-off is seen).
	Undetected string `json:"undetected"`
	Flows      []struct {
		Proto, Client, Server, Label string
	} `json:"flows"`
}

var sessionLabels = map[string]bool{"softether-direct": true, "softether-attempt": true, "softether-http-proxy-leg": true, "softether-socks-leg": true,
	"softether-ssh-leg": true, "softether-udp-accel": true, "softether-admin": true, "softether-vpn-over-dns": true, "softether-vpn-over-icmp": true}

func readManifest(t *testing.T) []manifest {
	b, err := os.ReadFile(filepath.Join(pcapDir, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var ms []manifest
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m manifest
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

type alertLine struct {
	SrcIP    string `json:"src_ip"`
	SrcPort  int    `json:"src_port"`
	DestIP   string `json:"dest_ip"`
	DestPort int    `json:"dest_port"`
	Proto    string `json:"proto"`
	Alert    struct {
		Signature   string `json:"signature"`
		SignatureID int    `json:"signature_id"`
	} `json:"alert"`
}

// isSessionSID: the SoftEther session signatures (one alert per session).
func isSessionSID(id int) bool { return id >= detector.SIDDirect && id <= detector.SIDCascade }

func matches(a alertLine, proto, client, server string) bool {
	c, err1 := netip.ParseAddrPort(client)
	s, err2 := netip.ParseAddrPort(server)
	if err1 != nil || err2 != nil || !strings.EqualFold(a.Proto, proto) && !(proto == "icmp" && a.Proto == "ICMP") {
		return false
	}
	ac, _ := netip.ParseAddr(a.SrcIP)
	as, _ := netip.ParseAddr(a.DestIP)
	if proto == "icmp" {
		return (ac == c.Addr() && as == s.Addr()) || (ac == s.Addr() && as == c.Addr())
	}
	x := netip.AddrPortFrom(ac, uint16(a.SrcPort))
	y := netip.AddrPortFrom(as, uint16(a.DestPort))
	return (x == c && y == s) || (x == s && y == c)
}

// TestCorpus runs every bundled capture and checks the verdicts against the
// per-flow labels: each capture with a SoftEther session flow gets a
// SoftEther alert naming one, no SoftEther alert names a flow that is not
// SoftEther's or no labelled flow at all, and no session (host pair) is
// alerted twice.
func TestCorpus(t *testing.T) {
	for _, m := range readManifest(t) {
		t.Run(m.File, func(t *testing.T) {
			recs := runPcap(t, filepath.Join(pcapDir, m.File))
			want := false
			for _, f := range m.Flows {
				want = want || sessionLabels[f.Label]
			}
			detected := false
			perPair := map[[2]string]int{}
			for _, r := range recs {
				var a alertLine
				if err := json.Unmarshal(r.JSON, &a); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(a.Alert.Signature, "SoftEther") {
					continue
				}
				if isSessionSID(a.Alert.SignatureID) {
					pair := [2]string{a.SrcIP, a.DestIP}
					if perPair[pair]++; perPair[pair] == 2 {
						t.Errorf("second session alert for %s -> %s: %s", a.SrcIP, a.DestIP, r.JSON)
					}
				}
				named := false
				for _, f := range m.Flows {
					if !matches(a, f.Proto, f.Client, f.Server) {
						continue
					}
					named = true
					if sessionLabels[f.Label] {
						detected = true
					}
					if !strings.HasPrefix(f.Label, "softether") && !strings.HasPrefix(f.Label, "vendor") {
						t.Errorf("false alert on %s flow %s -> %s: %s", f.Label, f.Client, f.Server, r.JSON)
					}
				}
				if !named {
					t.Errorf("SoftEther alert names no labelled flow: %s", r.JSON)
				}
			}
			switch {
			case m.Undetected != "" && detected:
				t.Errorf("a SoftEther alert names a session flow of a capture undetected by design (%s)", m.Undetected)
			case want && m.Undetected == "" && !detected:
				t.Errorf("no SoftEther alert names a session flow (%d records)", len(recs))
			}
		})
	}
}

// TestGolden pins the exact EVE output of every bundled capture and
// validates each line against schemas/eve.schema.json and, when
// SEWATCH_SURICATA_SCHEMA names it, Suricata's own EVE schema.
func TestGolden(t *testing.T) {
	own := compileSchema(t, "../../schemas/eve.schema.json")
	var suri *jsonschema.Schema
	if p := os.Getenv("SEWATCH_SURICATA_SCHEMA"); p != "" {
		suri = compileSchema(t, p)
	}
	files, _ := filepath.Glob(filepath.Join(pcapDir, "*.pcap"))
	for _, pf := range files {
		name := strings.TrimSuffix(filepath.Base(pf), ".pcap")
		t.Run(name, func(t *testing.T) {
			var got bytes.Buffer
			for _, r := range runPcap(t, pf) {
				got.Write(r.JSON)
				got.WriteByte('\n')
				validate(t, own, r.JSON, "schemas/eve.schema.json")
				if suri != nil {
					validate(t, suri, r.JSON, "Suricata EVE schema")
				}
			}
			golden := filepath.Join("../../testdata/golden", name+".eve.jsonl")
			if *update {
				old, _ := os.ReadFile(golden)
				if before, after := countAlerts(old), countAlerts(got.Bytes()); before != after {
					// A change in the number of alerts needs a test of its own.
					fmt.Printf("golden %s: %d alerts before, %d after (%+d)\n", name, before, after, after-before)
				}
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("EVE output differs from %s:\n got: %s\nwant: %s", golden, got.Bytes(), want)
			}
		})
	}
}

func compileSchema(t *testing.T, path string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	s, err := c.Compile(path)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, line []byte, what string) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		t.Fatalf("not JSON: %v: %s", err, line)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("line invalid against %s: %v\n%s", what, err, line)
	}
}

// TestTimeToAlert: a direct session is reported within 3 s of capture time
// from its first packet.
func TestTimeToAlert(t *testing.T) {
	recs := runPcap(t, filepath.Join(pcapDir, "se-direct-443.pcap"))
	if len(recs) == 0 {
		t.Fatal("no alert")
	}
	var ev struct {
		Flow struct{ Start string } `json:"flow"`
	}
	if err := json.Unmarshal(recs[0].JSON, &ev); err != nil {
		t.Fatal(err)
	}
	start, err := time.Parse("2006-01-02T15:04:05.000000-0700", ev.Flow.Start)
	if err != nil {
		t.Fatal(err)
	}
	if d := recs[0].Time.Sub(start); d < 0 || d > 3*time.Second {
		t.Errorf("alert %v after the session's first packet, want under 3s", d)
	}
}

// established runs the first half of the bulk SoftEther capture through a
// worker, so its flows are established with their inspectors still
// following them, and returns a function that feeds the next packet.
func established(t testing.TB) (func(), *Worker) {
	fr := loadCapture(t, "se-bulk.pcap")
	e := newEngine(t, &collector{})
	w := e.NewWorker(decode.LinkEthernet)
	i := 0
	feed := func() {
		w.Process(fr[i].data, fr[i].ts, uint64(i+1))
		i++
	}
	for i < len(fr)/2 {
		feed()
	}
	return feed, w
}

// liveInspectors counts the inspectors still following the worker's flows.
func liveInspectors(w *Worker) int {
	n := 0
	w.table.Range(func(st *flowState) {
		for i := range st.ins {
			if st.alive&(1<<i) != 0 {
				n++
			}
		}
	})
	return n
}

// TestEstablishedFlowAllocs: decode, flow lookup and every inspector on an
// established flow allocate nothing per packet.
func TestEstablishedFlowAllocs(t *testing.T) {
	feed, w := established(t)
	for i := 0; i < 50; i++ {
		feed()
	}
	// The TCP inspectors (TLS shape, SSH tunnel, SSTP, other VPNs) must
	// still be following the flow, or the test would measure nothing.
	before := liveInspectors(w)
	if n := testing.AllocsPerRun(2000, feed); n != 0 {
		t.Errorf("%v allocations per packet on an established flow, want 0", n)
	}
	if after := liveInspectors(w); before < 3 || after < 3 {
		t.Errorf("live inspectors %d before and %d after measuring, want at least 3 throughout", before, after)
	}
}

// benchReader opens the benchmark capture for one iteration: the bundled
// bulk capture held in memory, or the file named by SEWATCH_BENCH_PCAP read
// from disk (scripts/bench-ratio.sh passes the many-flow mix this way).
func benchReader(b *testing.B) (open func() *pcapgo.Reader, size int64) {
	if path := os.Getenv("SEWATCH_BENCH_PCAP"); path != "" {
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		var f *os.File
		b.Cleanup(func() {
			if f != nil {
				f.Close()
			}
		})
		return func() *pcapgo.Reader {
			if f != nil {
				f.Close()
			}
			var err error
			if f, err = os.Open(path); err != nil {
				b.Fatal(err)
			}
			r, err := pcapgo.NewReader(bufio.NewReaderSize(f, 1<<20))
			if err != nil {
				b.Fatal(err)
			}
			return r
		}, st.Size()
	}
	data, err := os.ReadFile(filepath.Join(pcapDir, "se-bulk.pcap"))
	if err != nil {
		b.Fatal(err)
	}
	return func() *pcapgo.Reader {
		r, err := pcapgo.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		return r
	}, int64(len(data))
}

// BenchmarkPipeline runs the whole pipeline (pcap read, decode, flow
// table, all detectors, verdict, EVE encoding) over the benchmark capture.
func BenchmarkPipeline(b *testing.B) { benchPipeline(b, 1) }

// BenchmarkPipelineWorkers2 is the same with two workers (flows hashed to
// two cores, evidence merged in packet order).
func BenchmarkPipelineWorkers2(b *testing.B) { benchPipeline(b, 2) }

func benchPipeline(b *testing.B, workers int) {
	open, size := benchReader(b)
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	cpu0 := cpuTime()
	var pkts uint64
	for i := 0; i < b.N; i++ {
		r := open()
		e := newEngine(b, &collector{})
		if err := e.RunParallel(context.Background(), fileSource{r}, decode.LinkType(r.LinkType()), workers); err != nil {
			b.Fatal(err)
		}
		pkts += e.C.Packets.Load()
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(pkts)/(cpuTime()-cpu0).Seconds(), "pkts/cpu-s")
	b.ReportMetric(float64(pkts)/float64(b.N), "pkts/op")
}

// BenchmarkPipelineFile is BenchmarkPipeline reading the file as
// `sewatch -r` does (capture.OpenInput: a plain pcap file through the
// shared block reader, frames used where they lie) instead of through
// pcapgo and bufio, which copy each record twice.
func BenchmarkPipelineFile(b *testing.B) {
	path := os.Getenv("SEWATCH_BENCH_PCAP")
	if path == "" {
		path = filepath.Join(pcapDir, "se-bulk.pcap")
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(st.Size())
	b.ResetTimer()
	cpu0 := cpuTime()
	var pkts uint64
	for i := 0; i < b.N; i++ {
		in, err := capture.OpenInput(path, capture.InputOptions{})
		if err != nil {
			b.Fatal(err)
		}
		e := newEngine(b, &collector{})
		if err := e.RunParallel(context.Background(), in, decode.LinkType(in.LinkType()), 1); err != nil {
			b.Fatal(err)
		}
		in.Close()
		pkts += e.C.Packets.Load()
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(pkts)/(cpuTime()-cpu0).Seconds(), "pkts/cpu-s")
	b.ReportMetric(float64(pkts)/float64(b.N), "pkts/op")
}

// BenchmarkDecodeFloor is the floor the pipeline is compared with: pcapgo
// read and gopacket's DecodingLayerParser, nothing else.
func BenchmarkDecodeFloor(b *testing.B) {
	open, size := benchReader(b)
	var (
		eth layers.Ethernet
		ip4 layers.IPv4
		ip6 layers.IPv6
		tcp layers.TCP
		udp layers.UDP
		ic  layers.ICMPv4
	)
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &tcp, &udp, &ic)
	p.IgnoreUnsupported = true
	dl := make([]gopacket.LayerType, 0, 8)
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	cpu0 := cpuTime()
	pkts := 0
	for i := 0; i < b.N; i++ {
		r := open()
		for {
			d, _, err := r.ZeroCopyReadPacketData()
			if err != nil {
				break
			}
			pkts++
			_ = p.DecodeLayers(d, &dl)
		}
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(pkts)/(cpuTime()-cpu0).Seconds(), "pkts/cpu-s")
}

// cpuTime is the process's CPU time (user + system). On a shared machine
// packets per CPU-second compare one-core runs where wall time cannot.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type fakeKernel struct{}

func (fakeKernel) KernelStats() CaptureCounters {
	return CaptureCounters{Packets: 100, Drops: 3, IfDrops: 1, LinkDowns: 2}
}

// TestStatsEvent: the periodic stats event maps sewatch's counters onto
// Suricata's stats names and validates against both schemas.
func TestStatsEvent(t *testing.T) {
	c := &collector{}
	e := newEngine(t, c)
	e.SetCaptureStats(fakeKernel{})
	e.SetOutputDrops(func() uint64 { return 7 })
	w := e.NewWorker(decode.LinkEthernet)
	for _, f := range loadCapture(t, "se-direct-443.pcap") {
		w.Process(f.data, f.ts, w.n+1)
		w.n++
	}
	w.Finish()
	e.SendStats()
	last := c.recs[len(c.recs)-1]
	if last.Type != "stats" {
		t.Fatalf("last record %s", last.JSON)
	}
	validate(t, compileSchema(t, "../../schemas/eve.schema.json"), last.JSON, "schemas/eve.schema.json")
	if p := os.Getenv("SEWATCH_SURICATA_SCHEMA"); p != "" {
		validate(t, compileSchema(t, p), last.JSON, "Suricata EVE schema")
	}
	var ev struct {
		Stats struct {
			Decoder struct{ Pkts uint64 }
			Capture struct {
				KernelDrops uint64 `json:"kernel_drops"`
				AFPacket    struct {
					PollErrors uint64 `json:"poll_errors"`
				}
			}
			Detect struct {
				Alert    uint64
				Overflow uint64 `json:"alert_queue_overflow"`
			}
		}
	}
	json.Unmarshal(last.JSON, &ev)
	if ev.Stats.Decoder.Pkts != 955 || ev.Stats.Capture.KernelDrops != 3 || ev.Stats.Capture.AFPacket.PollErrors != 2 || ev.Stats.Detect.Alert != 1 || ev.Stats.Detect.Overflow != 7 {
		t.Errorf("stats %s", last.JSON)
	}
}

// countAlerts counts the alert lines of an EVE file.
func countAlerts(b []byte) int {
	return bytes.Count(b, []byte(`"event_type":"alert"`))
}

// TestProcessExpiryPoints: Process expires (and publishes the counters)
// before every ExpireEvery-th packet it is given, whatever their numbers,
// and before the first packet a second of capture time after the last run.
func TestProcessExpiryPoints(t *testing.T) {
	e := New(Config{Verdict: verdict.DefaultConfig(), ExpireEvery: 64}, &collector{},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	w := e.NewWorker(decode.LinkEthernet)
	frame := make([]byte, 60) // an Ethernet frame of no protocol: counted, never a flow
	ts := time.Unix(1700000000, 0)
	var got []int
	last := e.C.Packets.Load()
	n := 0
	run := func(from, to uint64, step time.Duration) {
		for idx := from; idx <= to; idx++ {
			n++
			ts = ts.Add(step)
			w.Process(frame, ts, idx)
			if c := e.C.Packets.Load(); c != last {
				last = c
				got = append(got, n)
			}
		}
	}
	run(1, 1000, 0)                  // packets 64, 128, ... 960
	run(1, 200, 0)                   // numbering starts again: still every 64th packet (1024, 1088, 1152)
	run(5000, 5100, 0)               // numbers jump: 1216, 1280
	run(1, 10, 300*time.Millisecond) // capture time moves on: a second after the last run (1305, 1309)
	var want []int
	for i := 64; i <= 1280; i += 64 {
		want = append(want, i)
	}
	want = append(want, 1305, 1309)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("expiry before packets %v\nwant %v", got, want)
	}
}

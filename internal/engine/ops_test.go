package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/testpkt"
	"github.com/sewatch/sewatch/internal/verdict"
)

// idle is what a live source returns when no packet came in time.
type idle struct{}

func (idle) Error() string { return "idle" }
func (idle) Timeout() bool { return true }

// frameSource replays frames; every idleEvery frames it reports an idle
// link once, as a live socket's read timeout does.
type frameSource struct {
	fr        []frame
	i, since  int
	idleEvery int
}

func (s *frameSource) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	if s.i == len(s.fr) {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	if s.idleEvery > 0 && s.since == s.idleEvery {
		s.since = 0
		return nil, gopacket.CaptureInfo{}, idle{}
	}
	f := s.fr[s.i]
	s.i++
	s.since++
	return f.data, gopacket.CaptureInfo{Timestamp: f.ts, CaptureLength: len(f.data), Length: len(f.data)}, nil
}

// udpFlows makes n one-packet UDP flows from distinct client ports.
func udpFlows(n int, base time.Time, net byte) []frame {
	out := make([]frame, n)
	for i := range out {
		out[i] = frame{base.Add(time.Duration(i) * time.Millisecond), testpkt.Ethernet(testpkt.Spec{
			Src: fmt.Sprintf("10.%d.0.1", net), Dst: "192.0.2.1", Proto: "udp", SrcPort: uint16(1024 + i), DstPort: 53,
			Payload: []byte("q")})}
	}
	return out
}

// TestStatsWhileWorkersRun: the stats event and the flow counters are read
// while workers write them (run under -race in CI), and evictions from a
// full flow table are counted and reported as flow.get_used.
func TestStatsWhileWorkersRun(t *testing.T) {
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	const maxFlows, perWorker = 64, 300
	tests := []struct {
		name      string
		sources   [][]frame
		idleEvery int // live sockets time out on an idle link
		evicted   uint64
	}{
		{"pcap: one reader", [][]frame{udpFlows(perWorker, base, 1)}, 0, perWorker - maxFlows},
		{"live: two fanout workers", [][]frame{udpFlows(perWorker, base, 1), udpFlows(perWorker, base, 2)}, 25, 2 * (perWorker - maxFlows)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &collector{}
			e := New(Config{Verdict: verdict.DefaultConfig(), MaxFlows: maxFlows, ExpireEvery: 16,
				Clock: func() time.Time { return base }}, c, slog.New(slog.DiscardHandler))
			ctx, cancel := context.WithCancel(context.Background())
			var readers sync.WaitGroup
			readers.Add(2)
			go func() { defer readers.Done(); e.StatsLoop(ctx, time.Millisecond) }()
			go func() { // a metrics scrape reads the same counters
				defer readers.Done()
				for ctx.Err() == nil {
					_ = e.FlowStats()
					_, _ = e.KernelStats()
					time.Sleep(100 * time.Microsecond)
				}
			}()
			var workers sync.WaitGroup
			for _, fr := range tc.sources {
				workers.Add(1)
				go func() {
					defer workers.Done()
					w := e.NewWorker(decode.LinkEthernet)
					if err := w.Run(ctx, &frameSource{fr: fr, idleEvery: tc.idleEvery}, nil); err != nil {
						t.Error(err)
					}
					w.Finish()
				}()
			}
			workers.Wait()
			cancel()
			readers.Wait()
			e.SendStats()
			if got := e.C.FlowsEvicted.Load(); got != tc.evicted {
				t.Errorf("FlowsEvicted = %d, want %d", got, tc.evicted)
			}
			if got := e.C.ActiveFlows.Load(); got != 0 {
				t.Errorf("ActiveFlows after Finish = %d, want 0", got)
			}
			var ev struct {
				Stats struct {
					Decoder struct{ Pkts uint64 }
					Flow    struct {
						Total   uint64
						GetUsed uint64 `json:"get_used"`
					}
				}
			}
			last := c.recs[len(c.recs)-1]
			if err := json.Unmarshal(last.JSON, &ev); err != nil {
				t.Fatal(err)
			}
			n := uint64(perWorker * len(tc.sources))
			if ev.Stats.Decoder.Pkts != n || ev.Stats.Flow.Total != n || ev.Stats.Flow.GetUsed != tc.evicted {
				t.Errorf("final stats %s: want %d packets and flows, %d evicted", last.JSON, n, tc.evicted)
			}
		})
	}
}

// panicky is a detector, registered only here, whose inspector panics on
// the third packet of every flow it follows.
type panicky struct{}

func (panicky) Name() string { return "panicky" }
func (panicky) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	return &panickyInspector{}
}

type panickyInspector struct{ n int }

func (i *panickyInspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	if i.n++; i.n == 3 {
		panic("inspector bug")
	}
	return true
}

// TestDetectorPanicRecovered: a panicking inspector costs its own flow's
// inspection and one packet, counted and logged once with the packet
// number; the other detectors still find the session.
func TestDetectorPanicRecovered(t *testing.T) {
	frames := loadCapture(t, "se-direct-443.pcap")
	dets, err := detector.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	run := func(dets []detector.Detector, log *slog.Logger) (*Engine, int) {
		c := &collector{}
		e := New(Config{Detectors: dets, Verdict: verdict.DefaultConfig()}, c, log)
		w := e.NewWorker(decode.LinkEthernet)
		if err := w.Run(context.Background(), &frameSource{fr: frames}, nil); err != nil {
			t.Fatal(err)
		}
		w.Finish()
		alerts := 0
		for _, r := range c.recs {
			if r.Type == "alert" {
				alerts++
			}
		}
		return e, alerts
	}
	_, want := run(dets, slog.New(slog.DiscardHandler))
	var logBuf bytes.Buffer
	e, got := run(append([]detector.Detector{panicky{}}, dets...), slog.New(slog.NewTextHandler(&logBuf, nil)))
	if want == 0 || got != want {
		t.Errorf("alerts with a panicking detector = %d, without = %d", got, want)
	}
	flows := e.C.FlowsTotal.Load()
	if p := e.C.Panics.Load(); p == 0 || p > flows {
		t.Errorf("panics = %d for %d flows", p, flows)
	}
	if n := strings.Count(logBuf.String(), "recovered a panic"); n != 1 {
		t.Errorf("%d panic log lines, want 1:\n%s", n, logBuf.String())
	}
	// Inspectors start at a flow's first packet with payload: the first
	// connection's handshake (packets 1-3) reaches no inspector, and the
	// flow to give its inspector a third packet is the server's NetBIOS
	// probe (packets 4, 6 and 8).
	if !strings.Contains(logBuf.String(), "pcap_cnt=8 ") || !strings.Contains(logBuf.String(), "panickyInspector") {
		t.Errorf("log lacks the packet number or the detector:\n%.400s", logBuf.String())
	}
	if got := e.C.Packets.Load(); got != uint64(len(frames)) {
		t.Errorf("packets = %d, want %d (the sensor went on)", got, len(frames))
	}
}

// TestDetectorPanicRecoveredFile: the same through the file readers (one
// worker's cursor and two workers reading the file themselves): the
// panicking inspector costs its flows' inspection and a packet each, the
// alerts (signature and flow) are those of a run without it, and the panic
// is logged once.
func TestDetectorPanicRecoveredFile(t *testing.T) {
	path := writePcap(t, loadCapture(t, "se-direct-443.pcap"), 0)
	dets, err := detector.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	run := func(dets []detector.Detector, n int, log *slog.Logger) (*Engine, []string) {
		c := &collector{}
		e := New(Config{Detectors: dets, Verdict: verdict.DefaultConfig()}, c, log)
		in, err := capture.OpenInput(path, capture.InputOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		if err := e.RunParallel(context.Background(), in, decode.LinkType(in.LinkType()), n); err != nil {
			t.Fatal(err)
		}
		// The signature and the flow of each alert: the panicking packet
		// is lost to every detector of its flow (a TLS session's alert
		// then lacks the server hello's fields).
		var alerts []string
		for _, r := range c.recs {
			if r.Type == "alert" {
				var ev struct {
					FlowID int64 `json:"flow_id"`
					Alert  struct {
						SignatureID int `json:"signature_id"`
					} `json:"alert"`
				}
				if err := json.Unmarshal(r.JSON, &ev); err != nil {
					t.Fatal(err)
				}
				alerts = append(alerts, fmt.Sprint(ev.Alert.SignatureID, " ", ev.FlowID))
			}
		}
		return e, alerts
	}
	for _, n := range []int{1, 2} {
		_, want := run(dets, n, slog.New(slog.DiscardHandler))
		var logBuf bytes.Buffer
		e, got := run(append([]detector.Detector{panicky{}}, dets...), n, slog.New(slog.NewTextHandler(&logBuf, nil)))
		if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%d workers: alerts with a panicking detector %q, without %q (want the same)", n, got, want)
		}
		if p := e.C.Panics.Load(); p == 0 || p > e.C.FlowsTotal.Load() {
			t.Errorf("%d workers: panics = %d for %d flows", n, p, e.C.FlowsTotal.Load())
		}
		if c := strings.Count(logBuf.String(), "recovered a panic"); c != 1 || !strings.Contains(logBuf.String(), "panickyInspector") {
			t.Errorf("%d workers: %d panic log lines, want 1 naming the detector:\n%.400s", n, c, logBuf.String())
		}
	}
}

package main

import (
	"github.com/sewatch/sewatch/internal/heapsetup"
	"github.com/sewatch/sewatch/internal/hugeheap"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/config"
	"github.com/sewatch/sewatch/internal/engine"
	"github.com/sewatch/sewatch/internal/flow"
	"github.com/sewatch/sewatch/internal/membudget"
	"github.com/sewatch/sewatch/internal/verdict"
	"github.com/sewatch/sewatch/internal/vpngate"
	"github.com/sewatch/sewatch/outputs"
)

// newEngine builds the engine and its verdict stage from the configuration.
func newEngine(cfg config.Config, ifaces []string, prepareHeap bool, dets []detector.Detector, out engine.Sender, log *slog.Logger) (*engine.Engine, error) {
	vcfg := verdict.DefaultConfig()
	vcfg.Threshold, vcfg.SessionGap = cfg.Verdict.Threshold, cfg.Verdict.SessionGap
	vcfg.Allow, vcfg.HomeNets = cfg.Allowlist, cfg.HomeNets
	gate, err := loadVPNGate(cfg.VPNGateList, log)
	if err != nil {
		return nil, err
	}
	vcfg.VPNGate = gate
	f := cfg.Flow
	setMemoryLimit(cfg, log, prepareHeap)
	return engine.New(engine.Config{
		Detectors:   dets,
		Verdict:     vcfg,
		MaxFlows:    f.MaxFlows,
		FlowBuffers: int64(cfg.Memory.FlowBuffers),
		Timeouts:    flow.Timeouts{TCP: f.TCP, TCPClosed: f.TCPClosed, UDP: f.UDP, Other: f.Other},
		Ifaces:      ifaces, Sensor: cfg.SensorName, Location: cfg.Location(), CommunityIDSeed: cfg.CommunityIDSeed,
	}, out, log), nil
}

// loadVPNGate reads the VPN Gate list (corroboration only); none is nil.
func loadVPNGate(path string, log *slog.Logger) (map[netip.Addr]string, error) {
	if path == "" {
		return nil, nil
	}
	l, err := vpngate.Load(path)
	if err != nil {
		return nil, err
	}
	log.Info("VPN Gate list loaded (corroboration only)", "servers", len(l))
	return l, nil
}

// outputDrops sums the outputs' drops for the stats event.
func outputDrops(r *outputs.Router) func() uint64 {
	return func() uint64 {
		var n uint64
		for _, st := range r.Stats() {
			n += st.Dropped
		}
		return n
	}
}

// Memory the configuration does not bound by itself: the program, its
// outputs' queues and the verdict's sessions (a generous allowance), and
// each flow-table entry with its inspector slots (about 0.5 KiB measured,
// counted double). The sensor's whole footprint stays under
// flow buffers + max-flows × memoryPerFlow + memoryBase; the Go runtime's
// limit is that less memoryImage, which the runtime does not manage: the
// executable's code and tables (about 19 MiB resident) and thread stacks.
const (
	memoryBase    = 192 << 20
	memoryPerFlow = 1 << 10
	memoryImage   = 32 << 20
)

// setMemoryLimit gives the Go runtime a soft memory limit from what the
// configuration bounds: the per-flow budget (buffers and detector state),
// the flow table and the allowances above. Without it the collector lets
// the heap grow to twice what is live before it runs, so a flood that
// fills the budget and the table would double the sensor's footprint.
// GOMEMLIMIT, when set, wins.
//
// With prepareHeap it also prepares the heap once (heapsetup): the
// collector's ballast, and the range marked for huge pages
// (memory.huge-pages), sized from the same limit.
func setMemoryLimit(cfg config.Config, log *slog.Logger, prepareHeap bool) {
	budget := int64(cfg.Memory.FlowBuffers)
	if budget <= 0 {
		budget = membudget.DefaultBytes
	}
	limit := budget + int64(cfg.Flow.MaxFlows)*memoryPerFlow + memoryBase - memoryImage
	env := os.Getenv("GOMEMLIMIT")
	if env != "" {
		limit = debug.SetMemoryLimit(-1)
	}
	// Half the limit: what a busy sensor's heap reaches; beyond it the
	// heap grows on ordinary pages.
	var ballast int64
	if prepareHeap {
		hs := heapsetup.Apply(heapsetup.BallastFor(cfg.Capture.Workers), cfg.Memory.HugePages == nil || *cfg.Memory.HugePages,
			int(min(limit/2, 1<<30)))
		log.Debug("heap", "ballast", hs.Ballast, "huge_pages_mode", hugeheap.Mode(), "huge_pages_bytes", hs.HugePages, "huge_pages_err", hs.HugeErr)
		ballast = int64(hs.Ballast)
	}
	// The ballast is never resident, so the runtime's limit grows by it.
	limit += ballast
	if env != "" {
		debug.SetMemoryLimit(limit)
		log.Info("memory limit from GOMEMLIMIT (plus the collector's ballast, never resident)", "value", env, "ballast", ballast)
		return
	}
	debug.SetMemoryLimit(limit)
	log.Debug("memory limit", "bytes", limit, "flow_buffers", budget, "max_flows", cfg.Flow.MaxFlows)
}

// smallCapture is the capture size below which the heap is not prepared:
// the set-up (a forced collection, hundreds of MiB mapped) costs about
// 15 ms, which a run over a few MiB of packets never earns back, and
// thousands of such runs (a directory of test captures, one process
// each) would pay it every time.
const smallCapture = 32 << 20

// heapWorthPreparing says whether a run is long or large enough for the
// heap set-up: live capture and stdin always; a file or directory when its
// captures add up to smallCapture or more, compressed ones counted ten
// times their size (what they may hold unpacked).
func heapWorthPreparing(live bool, path string) bool {
	if live || path == "-" {
		return true
	}
	var total int64
	add := func(name string, size int64) {
		if strings.HasSuffix(name, ".gz") || strings.HasSuffix(name, ".zst") || strings.HasSuffix(name, ".zstd") {
			size *= 10
		}
		total += size
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return true // the input's own error comes later; nothing to save here
	case st.Mode().IsRegular():
		add(path, st.Size())
	case st.IsDir():
		ents, err := os.ReadDir(path)
		if err != nil {
			return true
		}
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
				add(e.Name(), fi.Size())
			}
		}
	default:
		return true // a FIFO or device: its size says nothing
	}
	return total >= smallCapture
}

package main

import (
	"log/slog"
	"net/netip"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/config"
	"github.com/sewatch/sewatch/internal/engine"
	"github.com/sewatch/sewatch/internal/flow"
	"github.com/sewatch/sewatch/internal/verdict"
	"github.com/sewatch/sewatch/internal/vpngate"
	"github.com/sewatch/sewatch/outputs"
)

// newEngine builds the engine and its verdict stage from the configuration.
func newEngine(cfg config.Config, iface string, dets []detector.Detector, out engine.Sender, log *slog.Logger) (*engine.Engine, error) {
	vcfg := verdict.DefaultConfig()
	vcfg.Threshold, vcfg.SessionGap = cfg.Verdict.Threshold, cfg.Verdict.SessionGap
	vcfg.Allow, vcfg.HomeNets = cfg.Allowlist, cfg.HomeNets
	gate, err := loadVPNGate(cfg.VPNGateList, log)
	if err != nil {
		return nil, err
	}
	vcfg.VPNGate = gate
	f := cfg.Flow
	return engine.New(engine.Config{
		Detectors:   dets,
		Verdict:     vcfg,
		MaxFlows:    f.MaxFlows,
		FlowBuffers: int64(cfg.Memory.FlowBuffers),
		Timeouts:    flow.Timeouts{TCP: f.TCP, TCPClosed: f.TCPClosed, UDP: f.UDP, Other: f.Other},
		Iface:       iface, Sensor: cfg.SensorName, Location: cfg.Location(), CommunityIDSeed: cfg.CommunityIDSeed,
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

package main

import (
	"context"
	"log/slog"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/config"
)

// execute runs one capture from outputs to final flush.
func execute(o options, cfg config.Config, dets []detector.Detector, log *slog.Logger) error {
	sig := newSignals(log)
	defer sig.stop()
	router, opened, err := openOutputs(sig.ctx, cfg, o.live(), log)
	if err != nil {
		return err
	}
	g := &gate{r: router}
	eng, err := newEngine(cfg, o.ifaces, heapWorthPreparing(o.live(), o.readFile), dets, g, log)
	if err == nil {
		eng.SetOutputDrops(outputDrops(router))
		var stopMetrics func()
		stopMetrics, err = serveMetrics(cfg.MetricsListen, eng, router, log)
		if err == nil {
			defer stopMetrics()
			sig.onHUP(func() {
				reopenFiles(opened, log)
				reloadLists(o.cfgPath, cfg, eng, log)
			})
			if o.live() {
				err = runLive(sig.ctx, eng, o.ifaces, cfg, log)
			} else {
				err = runFile(sig.ctx, eng, o.readFile, cfg, log)
			}
		}
	}
	g.close()
	fctx, cancel := context.WithTimeout(context.Background(), cfg.Delivery.FlushDeadline)
	defer cancel()
	if cerr := closeOutputs(router, fctx, log); cerr != nil && err == nil {
		err = cerr
	}
	// pcap mode never ends quietly with an event undelivered: one line per
	// output that missed some (see delivery.go).
	if !o.live() {
		if lines := undeliveredLines(router.Stats(), router.Orphans()); len(lines) > 0 {
			err = undeliveredError{lines: lines, cause: err}
		}
	}
	if eng == nil {
		return err
	}
	eng.LogUndecoded()
	c := &eng.C
	shed, _, _ := eng.Budget().Shed()
	log.Info("done", "packets", c.Packets.Load(), "invalid", c.Invalid.Load(), "not_ip", c.NonIP.Load(), "flows_evicted", c.FlowsEvicted.Load(),
		"panics", c.Panics.Load(), "alerts", eng.Verdict().Alerts(), "buffers_shed", shed, "buffer_peak_bytes", eng.Budget().Peak())
	if s := sig.caught(); s != 0 && !o.live() && err == nil {
		log.Warn("stopped early by a signal: the capture was not read to its end; events found so far were delivered",
			"signal", s.String(), "packets", c.Packets.Load())
		return interrupted{s}
	}
	return err
}

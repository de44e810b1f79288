package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/config"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/engine"
)

// liveReadTimeout bounds how long a live read waits before the flow table
// expires on the wall clock (an idle link) and a stop is noticed.
const liveReadTimeout = 500 * time.Millisecond

// stallGrace is how long a stopped run waits for a read that cannot be
// interrupted (a pipe opened without the poller) before giving up on it.
const stallGrace = 2 * time.Second

// runFile reads a capture file. The read runs in its own goroutine so a
// signal stops the run even while the read waits on a stalled pipe or FIFO:
// closing the source makes that read return.
func runFile(ctx context.Context, eng *engine.Engine, path string, cfg config.Config, log *slog.Logger) error {
	var src atomic.Pointer[capture.Source]
	done := make(chan error, 1)
	go func() {
		in, err := capture.OpenInput(path, capture.InputOptions{Filter: cfg.Capture.Filter, Log: log})
		if err != nil {
			done <- err
			return
		}
		s := capture.Source(in)
		src.Store(&s)
		if ctx.Err() != nil { // stopped while opening (a FIFO waits for its writer)
			done <- nil
			return
		}
		// Several workers: flows hashed to cores, alerts in the same order as one.
		done <- eng.RunParallel(ctx, s, decode.LinkType(s.LinkType()), cfg.Capture.Workers)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		if s := src.Load(); s != nil {
			(*s).Close()
		}
		select {
		case err = <-done:
		case <-time.After(stallGrace):
			log.Warn("the input did not return after the stop; exiting without waiting for it", "file", path)
			return nil
		}
	}
	if s := src.Load(); s != nil {
		(*s).Close()
		if cfg.Stats.Interval > 0 {
			eng.SendStats() // the counters of the whole read, as in live mode
		}
	}
	if ctx.Err() != nil {
		return nil // a read cut short by the stop is not damage
	}
	if err != nil {
		if src.Load() == nil {
			return err // not opened: the error names the file
		}
		// The input's errors name the file (a directory's member included).
		return fmt.Errorf("%w (alerts before the damage were written)", err)
	}
	return nil
}

// runLive captures on the interfaces (one capture, see
// capture.OpenLiveInterfaces) until ctx is done or a capture worker
// fails (that error ends the run). Once the sockets are open the process
// gives up root (cfg.User). The final stats event is written only when the
// capture started.
func runLive(ctx context.Context, eng *engine.Engine, ifaces []string, cfg config.Config, log *slog.Logger) error {
	promisc := cfg.Capture.Promisc == nil || *cfg.Capture.Promisc
	iface := strings.Join(ifaces, ",")
	srcs, err := capture.OpenLiveInterfaces(ifaces, capture.LiveOptions{Workers: cfg.Capture.Workers, Promisc: promisc,
		Snaplen: cfg.Capture.Snaplen, Filter: cfg.Capture.Filter, ReadTimeout: liveReadTimeout, Ring: cfg.Capture.Ring(),
		OnLink: linkLogger(log)})
	if err != nil {
		return err
	}
	if err := dropPrivileges(cfg.User, log); err != nil {
		for _, s := range srcs {
			s.Close()
		}
		return err
	}
	log.Info("capturing", "iface", iface, "workers", len(srcs), "ring_mib_per_worker", cfg.Capture.RingBlocks*cfg.Capture.RingBlockSize>>20)
	eng.SetCaptureStats(kernelStats(srcs))
	liveSources.Store(&srcs)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.Stats.Interval > 0 {
		go eng.StatsLoop(ctx, cfg.Stats.Interval)
	}
	var wg sync.WaitGroup
	for _, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := eng.NewWorker(decode.LinkType(s.LinkType()))
			err := w.Run(ctx, s, func(err error) bool { return errors.Is(err, capture.ErrTimeout) })
			w.Finish()
			if err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("capture on %s: %w", iface, err)) // one failed socket ends the run
			}
		}()
	}
	<-ctx.Done()
	for _, s := range srcs {
		s.Close()
	}
	wg.Wait()
	if cfg.Stats.Interval > 0 {
		eng.SendStats() // final counters at shutdown
	}
	logCaptureEnd(log, srcs)
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// linkLogger logs an interface going down and coming back once for the
// whole fanout group on it (every socket reports it).
func linkLogger(log *slog.Logger) func(string, capture.LinkState, error) {
	var mu sync.Mutex
	down := map[string]int{} // sockets whose interface is down, by interface
	count := func(iface string, d int) int {
		mu.Lock()
		defer mu.Unlock()
		down[iface] += d
		return down[iface]
	}
	return func(iface string, s capture.LinkState, err error) {
		switch s {
		case capture.LinkDown:
			if count(iface, 1) == 1 {
				log.Warn("interface went down or away: waiting for it, flows are kept", "iface", iface, "err", err)
			}
		case capture.LinkUp:
			if count(iface, -1) == 0 {
				log.Info("interface is back: capturing again", "iface", iface)
			}
		case capture.LinkReopenFailed:
			log.Warn("interface is back but a capture socket could not be opened on it; retrying", "iface", iface, "err", err)
		}
	}
}

// logCaptureEnd logs the sockets' final counters, the ring's freezes
// (the kernel found it full) among them, which EVE's stats have no name for.
func logCaptureEnd(log *slog.Logger, srcs []capture.Source) {
	var st capture.Stats
	for _, s := range srcs {
		st.Add(s.Stats())
	}
	log.Info("capture ended", "packets", st.Packets, "kernel_drops", st.KernelDrops, "ring_freezes", st.KernelFreezes, "ring_errors", st.Errors,
		"link_downs", st.LinkDowns)
}

// kernelStats sums the kernel counters of every socket of the fanout group.
type kernelStats []capture.Source

func (k kernelStats) KernelStats() engine.CaptureCounters {
	var st capture.Stats
	for _, s := range k {
		st.Add(s.Stats())
	}
	return engine.CaptureCounters{Packets: st.Packets, Drops: st.KernelDrops, IfDrops: st.IfDrops, LinkDowns: st.LinkDowns}
}

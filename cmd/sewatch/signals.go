package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// signals turns SIGINT and SIGTERM into the cancellation of ctx (the run
// stops, flushes its outputs and exits) and SIGHUP into a call of the
// registered reload function. A second SIGINT or SIGTERM while stopping
// exits at once.
type signals struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan os.Signal
	got    atomic.Int32 // the stopping signal, 0 until one arrives
	hup    atomic.Pointer[func()]
	log    *slog.Logger
	done   chan struct{}
}

func newSignals(log *slog.Logger) *signals {
	s := &signals{ch: make(chan os.Signal, 4), log: log, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	signal.Notify(s.ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go s.loop()
	return s
}

func (s *signals) loop() {
	for {
		select {
		case <-s.done:
			return
		case sig := <-s.ch:
			n := sig.(syscall.Signal)
			if n == syscall.SIGHUP {
				if f := s.hup.Load(); f != nil {
					s.log.Info("SIGHUP: reopening outputs and reloading lists")
					(*f)()
				}
				continue
			}
			if !s.got.CompareAndSwap(0, int32(n)) {
				s.log.Warn("second signal while stopping: exiting now", "signal", n.String())
				os.Exit(exitSignalBase + int(n))
			}
			s.log.Info("signal: stopping", "signal", n.String())
			s.cancel()
		}
	}
}

// onHUP sets what SIGHUP does.
func (s *signals) onHUP(f func()) { s.hup.Store(&f) }

// caught returns the stopping signal, or 0.
func (s *signals) caught() syscall.Signal { return syscall.Signal(s.got.Load()) }

// stop restores the default signal handling.
func (s *signals) stop() {
	signal.Stop(s.ch)
	close(s.done)
	s.cancel()
}

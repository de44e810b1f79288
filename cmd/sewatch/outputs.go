package main

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"

	"github.com/sewatch/sewatch/internal/config"
	"github.com/sewatch/sewatch/outputs"
)

// openOutputs opens every output and the router in front of them: pcap
// mode applies back-pressure, live mode drops and counts.
func openOutputs(ctx context.Context, cfg config.Config, live bool, log *slog.Logger) (*outputs.Router, []outputs.Output, error) {
	var opened []outputs.Output
	for _, s := range cfg.Outputs {
		o, err := outputs.Open(ctx, s, log)
		if err != nil {
			closeAll(opened)
			return nil, nil, named(s.Name, err)
		}
		opened = append(opened, o)
	}
	pol := outputs.DefaultPolicy()
	pol.Lossy = live
	d := cfg.Delivery
	pol.QueueSize, pol.BatchSize, pol.BatchTimeout = d.QueueSize, d.BatchSize, d.BatchTimeout
	pol.SpoolDir, pol.SpoolMaxBytes = d.SpoolDir, d.SpoolMaxBytes
	pol.StallTimeout = stallTimeout(cfg, live)
	for _, s := range cfg.Outputs {
		pol.Types = append(pol.Types, s.Types)
	}
	router, err := outputs.OpenRouter(pol, opened, log)
	if err != nil {
		closeAll(opened)
		return nil, nil, err
	}
	return router, opened, nil
}

// closeOutputs delivers what is queued within the flush deadline and
// closes every output; it logs the drops.
func closeOutputs(router *outputs.Router, deadline context.Context, log *slog.Logger) error {
	err := router.Close(deadline)
	if err != nil {
		log.Error("closing outputs", "err", err)
	}
	for _, st := range router.Stats() {
		if st.Dropped > 0 {
			log.Warn("output dropped events", "output", st.Name, "dropped", st.Dropped)
		}
	}
	return err
}

func closeAll(os []outputs.Output) {
	for _, o := range os {
		o.Close(context.Background())
	}
}

// reopenFiles reopens file outputs (SIGHUP after logrotate moved them).
func reopenFiles(outs []outputs.Output, log *slog.Logger) {
	type reopener interface{ Reopen() error }
	for _, o := range outs {
		if r, ok := o.(reopener); ok {
			if err := r.Reopen(); err != nil {
				log.Error("reopen after SIGHUP", "output", o.Name(), "err", err)
			} else {
				log.Info("output reopened", "output", o.Name())
			}
		}
	}
}

// named prefixes err with an output's name unless the output already did.
func named(name string, err error) error {
	if strings.HasPrefix(err.Error(), name+":") {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}

// userinfo matches the user:password@ part of a URL-like argument, even in
// one url.Parse rejects, so an error message never echoes a password.
var userinfo = regexp.MustCompile(`(://|^|[:,])[^/@\s]*:[^/@\s]*@`)

// redactURL hides credentials in an -o argument.
func redactURL(s string) string {
	return userinfo.ReplaceAllString(s, "${1}REDACTED@")
}

// gate sits between the engine and the router: once closed, late sends (a
// reader that returned after the run gave up waiting for it) are dropped
// instead of reaching a closed router.
type gate struct {
	mu     sync.RWMutex
	r      *outputs.Router
	closed bool
}

func (g *gate) Send(rec outputs.Record) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !g.closed {
		g.r.Send(rec)
	}
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/engine"
	"github.com/sewatch/sewatch/outputs"
)

// statsCollector exports the engine's and the outputs' counters at scrape
// time; it reads the same atomics as the EVE stats event, so both agree.
// liveSources are the capture sockets of a live run, for the counter EVE's
// stats have no name for (ring freezes).
var liveSources atomic.Pointer[[]capture.Source]

type statsCollector struct {
	eng    *engine.Engine
	router *outputs.Router
}

type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*engine.Engine) float64
}

func counter(name, help string, f func(*engine.Engine) float64) metric {
	return metric{prometheus.NewDesc("sewatch_"+name, help, nil, nil), prometheus.CounterValue, f}
}

var engineMetrics = []metric{
	counter("packets_total", "Packets read from the capture.", func(e *engine.Engine) float64 { return float64(e.C.Packets.Load()) }),
	counter("bytes_total", "Bytes of the packets read.", func(e *engine.Engine) float64 { return float64(e.C.Bytes.Load()) }),
	counter("packets_invalid_total", "Packets the decoder could not decode.", func(e *engine.Engine) float64 { return float64(e.C.Invalid.Load()) }),
	counter("flows_total", "Flows created.", func(e *engine.Engine) float64 { return float64(e.C.FlowsTotal.Load()) }),
	counter("flows_evicted_total", "Flows pushed out of a full flow table before their timeout.", func(e *engine.Engine) float64 { return float64(e.C.FlowsEvicted.Load()) }),
	counter("flows_expired_total", "Flows ended by their idle timeout.", func(e *engine.Engine) float64 { return float64(e.C.FlowsExpired.Load()) }),
	counter("panics_total", "Packets dropped because decoding or a detector panicked.", func(e *engine.Engine) float64 { return float64(e.C.Panics.Load()) }),
	counter("alerts_total", "EVE alerts emitted.", func(e *engine.Engine) float64 { return float64(e.Verdict().Alerts()) }),
	counter("alerts_suppressed_total", "Session alerts suppressed by the allowlist.", func(e *engine.Engine) float64 { return float64(e.Verdict().Suppressed()) }),
	counter("flow_buffers_shed_total", "Per-flow buffers dropped because the flow buffer budget (memory.flow-buffers) refused them room.",
		func(e *engine.Engine) float64 { n, _, _ := e.Budget().Shed(); return float64(n) }),
	{prometheus.NewDesc("sewatch_flow_buffer_bytes", "Bytes reserved by per-flow buffers within the flow buffer budget (idle pooled buffers included).", nil, nil), prometheus.GaugeValue,
		func(e *engine.Engine) float64 { return float64(max(e.Budget().Used(), 0)) }},
	{prometheus.NewDesc("sewatch_flows_active", "Flows held in the flow tables.", nil, nil), prometheus.GaugeValue,
		func(e *engine.Engine) float64 { return float64(max(e.C.ActiveFlows.Load(), 0)) }},
}

var (
	kernelPackets = prometheus.NewDesc("sewatch_kernel_packets_total", "Packets the kernel passed to the capture sockets (live).", nil, nil)
	kernelDrops   = prometheus.NewDesc("sewatch_kernel_drops_total", "Packets the kernel dropped for lack of buffer (live).", nil, nil)
	linkDowns     = prometheus.NewDesc("sewatch_capture_link_downs_total", "Times a capture socket's interface went down or away under it (capture resumes when it is back).", nil, nil)
	ringFreezes   = prometheus.NewDesc("sewatch_kernel_ring_freezes_total", "Times a live capture ring was full and the kernel froze its queue.", nil, nil)
	outDelivered  = prometheus.NewDesc("sewatch_output_delivered_total", "Events an output accepted.", []string{"output"}, nil)
	outDropped    = prometheus.NewDesc("sewatch_output_dropped_total", "Events an output lost.", []string{"output"}, nil)
	outRetried    = prometheus.NewDesc("sewatch_output_retried_total", "Failed writes that were retried.", []string{"output"}, nil)
	outQueued     = prometheus.NewDesc("sewatch_output_queued", "Events waiting for delivery (queue, memory, spool).", []string{"output"}, nil)
)

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range engineMetrics {
		ch <- m.desc
	}
	for _, d := range []*prometheus.Desc{kernelPackets, kernelDrops, linkDowns, ringFreezes, outDelivered, outDropped, outRetried, outQueued} {
		ch <- d
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range engineMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(c.eng))
	}
	if k, ok := c.eng.KernelStats(); ok {
		ch <- prometheus.MustNewConstMetric(kernelPackets, prometheus.CounterValue, float64(k.Packets))
		ch <- prometheus.MustNewConstMetric(kernelDrops, prometheus.CounterValue, float64(k.Drops))
		ch <- prometheus.MustNewConstMetric(linkDowns, prometheus.CounterValue, float64(k.LinkDowns))
	}
	if p := liveSources.Load(); p != nil {
		var n uint64
		for _, s := range *p {
			n += s.Stats().KernelFreezes
		}
		ch <- prometheus.MustNewConstMetric(ringFreezes, prometheus.CounterValue, float64(n))
	}
	for _, st := range c.router.Stats() {
		ch <- prometheus.MustNewConstMetric(outDelivered, prometheus.CounterValue, float64(st.Delivered), st.Name)
		ch <- prometheus.MustNewConstMetric(outDropped, prometheus.CounterValue, float64(st.Dropped), st.Name)
		ch <- prometheus.MustNewConstMetric(outRetried, prometheus.CounterValue, float64(st.Retried), st.Name)
		ch <- prometheus.MustNewConstMetric(outQueued, prometheus.GaugeValue, float64(st.Queued), st.Name)
	}
}

// serveMetrics serves /metrics on addr (none when addr is empty) until the
// returned stop is called. The listener is opened before the capture, so a
// taken port fails the start rather than going unnoticed.
func serveMetrics(addr string, eng *engine.Engine, router *outputs.Router, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(statsCollector{eng, router}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	log.Info("serving Prometheus metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

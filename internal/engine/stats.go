package engine

import (
	"context"
	"time"

	"github.com/sewatch/sewatch/internal/eve"
	"github.com/sewatch/sewatch/outputs"
)

// StatsSource reports capture counters (kernel drops) for the stats event.
type StatsSource interface {
	KernelStats() CaptureCounters
}

// CaptureCounters are a live capture's counters, summed over its sockets:
// the kernel's (packets, drops, interface drops) and the times a socket's
// interface went down under it.
type CaptureCounters struct {
	Packets, Drops, IfDrops, LinkDowns uint64
}

// SetCaptureStats registers where kernel counters come from (live mode).
// Safe while stats are being read (the capture starts after the metrics
// endpoint does).
func (e *Engine) SetCaptureStats(s StatsSource) { e.capStats.Store(&s) }

// KernelStats returns the capture's kernel counters; ok is false before a
// live capture started.
func (e *Engine) KernelStats() (c CaptureCounters, ok bool) {
	s := e.capStats.Load()
	if s == nil {
		return c, false
	}
	return (*s).KernelStats(), true
}

// SendStats emits one EVE stats event. sewatch's counters are mapped onto
// Suricata's stats names (the schema is closed): output drops are counted
// as detect.alert_queue_overflow.
func (e *Engine) SendStats() {
	now := e.cfg.Clock()
	c := &e.C
	st := &eve.Stats{Uptime: int64(now.Sub(e.started) / time.Second)}
	st.Decoder = eve.DecoderStats{Pkts: c.Packets.Load(), Bytes: c.Bytes.Load(), Invalid: c.Invalid.Load(),
		IPv4: c.IPv4.Load(), IPv6: c.IPv6.Load(), TCP: c.TCP.Load(), UDP: c.UDP.Load(),
		ICMPv4: c.ICMPv4.Load(), ICMPv6: c.ICMPv6.Load(), VLAN: c.VLAN.Load(), MaxPkt: c.MaxPkt.Load()}
	e.fillDecoderLayers(&st.Decoder)
	if n := st.Decoder.Pkts; n > 0 {
		st.Decoder.AvgPkt = st.Decoder.Bytes / n
	}
	st.Flow = eve.FlowStats{Total: c.FlowsTotal.Load(), Active: uint64(max(c.ActiveFlows.Load(), 0)), TCP: c.FlowsTCP.Load(),
		UDP: c.FlowsUDP.Load(), ICMPv4: c.FlowsICMP.Load(), ICMPv6: c.FlowsICMPv6.Load(), GetUsed: c.FlowsEvicted.Load()}
	shed, _, _ := e.mem.Shed()
	st.TCP = eve.TCPStats{SegmentMemcapDrop: shed, ReassemblyMemuse: uint64(max(e.mem.Used(), 0))}
	st.Detect.Alert = e.verdict.Alerts()
	st.Detect.AlertsSuppressed = e.verdict.Suppressed()
	if f := e.drops.Load(); f != nil {
		st.Detect.AlertQueueOverflow = (*f)()
	}
	if k, ok := e.KernelStats(); ok {
		// A socket whose interface went down saw POLLERR, which Suricata's
		// AF_PACKET source counts as a poll error.
		st.Capture = &eve.CaptureStats{KernelPackets: k.Packets, KernelDrops: k.Drops, KernelIfDrops: k.IfDrops,
			AFPacket: &eve.AFPacketStats{PollErrors: k.LinkDowns}}
	}
	ev := &eve.Event{Timestamp: eve.Timestamp(now, e.cfg.Location), EventType: "stats", Stats: st, Host: e.cfg.Sensor}
	js, err := ev.Marshal()
	if err != nil {
		e.log.Error("encoding stats", "err", err)
		return
	}
	e.out.Send(outputs.Record{Type: "stats", Time: now, JSON: js})
	e.log.Info("stats", "packets", st.Decoder.Pkts, "invalid", st.Decoder.Invalid, "flows", st.Flow.Total,
		"active_flows", st.Flow.Active, "flows_evicted", st.Flow.GetUsed, "panics", c.Panics.Load(), "buffers_shed", shed, "alerts", st.Detect.Alert, "output_drops", st.Detect.AlertQueueOverflow)
}

// SetOutputDrops registers a function returning the outputs' total drops.
func (e *Engine) SetOutputDrops(f func() uint64) { e.drops.Store(&f) }

// StatsLoop sends a stats event every interval until ctx is done. It only
// reads the engine's atomics, so it runs beside the workers.
func (e *Engine) StatsLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.SendStats()
		}
	}
}

package engine

import (
	"time"

	"github.com/sewatch/sewatch/internal/eve"
	"github.com/sewatch/sewatch/outputs"
)

// StatsSource reports capture counters (kernel drops) for the stats event.
type StatsSource interface {
	KernelStats() (packets, drops, ifdrops uint64)
}

// SetCaptureStats registers where kernel counters come from (live mode).
func (e *Engine) SetCaptureStats(s StatsSource) { e.capStats = s }

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
	fs := e.FlowStats()
	st.Flow = eve.FlowStats{Total: c.FlowsTotal.Load(), Active: uint64(fs.Active), TCP: c.FlowsTCP.Load(),
		UDP: c.FlowsUDP.Load(), ICMPv4: c.FlowsICMP.Load(), ICMPv6: c.FlowsICMPv6.Load()}
	st.Detect.Alert = e.verdict.Alerts()
	st.Detect.AlertsSuppressed = e.verdict.Suppressed()
	if e.drops != nil {
		st.Detect.AlertQueueOverflow = e.drops()
	}
	if e.capStats != nil {
		p, d, i := e.capStats.KernelStats()
		st.Capture = &eve.CaptureStats{KernelPackets: p, KernelDrops: d, KernelIfDrops: i}
	}
	ev := &eve.Event{Timestamp: eve.Timestamp(now, e.cfg.Location), EventType: "stats", Stats: st, Host: e.cfg.Sensor}
	js, err := ev.Marshal()
	if err != nil {
		e.log.Error("encoding stats", "err", err)
		return
	}
	e.out.Send(outputs.Record{Type: "stats", Time: now, JSON: js})
	e.log.Info("stats", "packets", st.Decoder.Pkts, "invalid", st.Decoder.Invalid, "flows", st.Flow.Total,
		"active_flows", st.Flow.Active, "alerts", st.Detect.Alert, "output_drops", st.Detect.AlertQueueOverflow)
}

// SetOutputDrops registers a function returning the outputs' total drops.
func (e *Engine) SetOutputDrops(f func() uint64) { e.drops = f }

// Package engine wires the data path: capture → decode → flow table →
// detectors → verdict → EVE event → outputs. One goroutine per capture
// source does everything up to the event with no channel per packet; the
// verdict stage is shared so flows of one host pair seen by different
// workers still form one session.
package engine

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/flow"
	"github.com/sewatch/sewatch/internal/membudget"
	"github.com/sewatch/sewatch/internal/verdict"
	"github.com/sewatch/sewatch/outputs"
)

// Source is a packet source; ReadPacket's data is borrowed until the next call.
type Source interface {
	ReadPacket() (data []byte, ci gopacket.CaptureInfo, err error)
}

// Sender receives finished EVE records (the output router).
type Sender interface {
	Send(outputs.Record)
}

// Config configures an engine.
type Config struct {
	Detectors []detector.Detector
	Verdict   verdict.Config
	MaxFlows  int
	Timeouts  flow.Timeouts
	// Ifaces are the live capture's interfaces, in the order a source's
	// Iface method numbers them: a flow's in_iface is the one its first
	// packet came in on. None when reading files.
	Ifaces          []string
	Sensor          string         // EVE host
	Location        *time.Location // timestamp zone (UTC by default)
	CommunityIDSeed uint16
	// ExpireEvery is how many packets pass between flow-table expiry runs.
	ExpireEvery int
	// ExpireInterval is the capture time after which the next packet runs
	// an expiry however few packets came since the last run
	// (DefaultExpireInterval if 0; see expiryClock).
	ExpireInterval time.Duration
	// Clock is the wall clock used only when a live link is idle.
	Clock func() time.Time
	// FlowBuffers bounds the bytes all flows' handshake buffers and inspector state hold
	// (membudget.DefaultBytes if 0).
	FlowBuffers int64
}

// Counters are the engine's packet counters, summed over workers. Workers
// publish into them; readers (stats, metrics) only load them, so reading
// never touches a worker's own state.
type Counters struct {
	Packets, Bytes, Invalid, Fragments, NonIP  atomic.Uint64
	IPv4, IPv6, TCP, UDP, ICMPv4, ICMPv6, VLAN atomic.Uint64
	FlowsTotal, FlowsTCP, FlowsUDP, FlowsICMP  atomic.Uint64
	FlowsICMPv6, MaxPkt                        atomic.Uint64
	// FlowsEvicted counts flows pushed out of a full table (flow.max-flows)
	// before their timeout; FlowsExpired those that timed out.
	FlowsEvicted, FlowsExpired atomic.Uint64
	// ActiveFlows is the flows held by all workers' tables at their last
	// publication.
	ActiveFlows atomic.Int64
	// Panics counts packets whose decoding or inspection panicked; the
	// packet is dropped and the sensor goes on.
	Panics atomic.Uint64
}

// Engine runs workers and owns the shared verdict stage.
type Engine struct {
	cfg     Config
	out     Sender
	log     *slog.Logger
	verdict *verdict.Verdict
	C       Counters
	started time.Time
	// panicLogged keeps one log line per panicking stage (the decoder or
	// a detector's name).
	panicLogged sync.Map
	// capStats and drops feed the stats event (may be nil).
	capStats atomic.Pointer[StatsSource]
	drops    atomic.Pointer[func() uint64]
	dec      decodeTotals
	// mem is the budget every worker's flows reserve buffer bytes from.
	mem *membudget.Budget
}

// New makes an engine that sends EVE records to out.
func New(cfg Config, out Sender, log *slog.Logger) *Engine {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.ExpireEvery <= 0 {
		cfg.ExpireEvery = 4096
	}
	if cfg.ExpireInterval <= 0 {
		cfg.ExpireInterval = DefaultExpireInterval
	}
	if cfg.Timeouts == (flow.Timeouts{}) {
		cfg.Timeouts = flow.DefaultTimeouts()
	}
	e := &Engine{cfg: cfg, out: out, log: log, started: time.Now(), mem: membudget.New(cfg.FlowBuffers, log)}
	e.verdict = verdict.New(cfg.Verdict, e.emitAlert)
	e.verdict.OnSessionEnd(e.emitSessionEnd)
	return e
}

// Budget is the engine's budget for per-flow buffers (stats, tests).
func (e *Engine) Budget() *membudget.Budget { return e.mem }

// Verdict exposes the shared verdict stage (tests, stats).
func (e *Engine) Verdict() *verdict.Verdict { return e.verdict }

// flowState is what the engine keeps per flow.
type flowState struct {
	view     detector.Flow
	ins      []detector.Inspector
	alive    uint32 // bit i: inspector i still wants packets
	reported bool   // an inspector reported evidence on this flow
	// started: the detectors were offered the flow (at its first packet
	// with payload).
	started bool
	lastIdx uint64 // number of the flow's latest packet
	// tls follows the TLS info this flow's evidence points at (parallel
	// file reading only, see parallel.go).
	tls *tlsTrack
	// hold accounts the inspectors' own state in the engine's per-flow
	// budget, beside their buffers: under a flood of connections that
	// never finish, the detector state of the stalest flows without
	// evidence is shed (ShedBuffer) so memory stays bounded.
	hold membudget.Holder
	// busy: the flow's packet is being inspected; a shed waits for its end.
	busy, shed bool
}

// ShedBuffer implements membudget.Shedder: the budget took this flow's
// inspector state for another flow, so the flow is no longer inspected.
// While its own packet is being inspected the inspectors are released
// right after it.
func (st *flowState) ShedBuffer() {
	st.shed = true
	if !st.busy {
		st.dropInspectors()
	}
}

// dropInspectors releases every inspector the flow still has.
func (st *flowState) dropInspectors() {
	for i, in := range st.ins {
		if st.alive&(1<<i) != 0 {
			release(in)
		}
		st.ins[i] = nil
	}
	st.ins, st.alive = st.ins[:0], 0
	st.hold.Free()
}

// footprint is the bytes an inspector's own state takes (what its
// pointer points to; its buffers are accounted by their owners).
func footprint(in detector.Inspector) int {
	t := reflect.TypeOf(in)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return int(t.Size())
}

// Releaser is implemented by inspectors that keep pooled state: Release is
// called once when the flow ends (or the inspector asked for no more
// packets) and the inspector is not used again.
type Releaser interface{ Release() }

func release(in detector.Inspector) {
	if r, ok := in.(Releaser); ok {
		r.Release()
	}
}

// Worker processes packets from one source. Not safe for concurrent use;
// make one per source.
type Worker struct {
	e     *Engine
	link  decode.LinkType
	dec   *decode.Decoder
	table *flow.Table[flowState]
	pkt   decode.Packet
	// clock finds the packets Process expires the table before.
	clock expiryClock
	// key is the packet's flow key, made in place (see flow.Key.Set).
	key      flow.Key
	n        uint64
	lastTime time.Time
	// iface: the interface the packet came in on (several live
	// interfaces: Run reads it from the source).
	iface uint8
	// sink receives the inspectors' evidence: the engine itself, or the
	// ordered merge of the parallel file reader.
	sink detector.Sink
	cur  *flowState // the flow of the packet being inspected
	// expiring is set while the table expires or flushes flows (not while
	// it evicts one to make room).
	expiring bool
	// Per-packet counters are plain fields, published to the engine's
	// atomics at every expiry point and at the end.
	c localCounters
	// published is the table's counters as last added to the engine's.
	published flow.Stats
	// inspecting is the index of the inspector running (-1: none), so a
	// panic can be pinned on it.
	inspecting int
	ent        *flow.Entry[flowState]
	// toServer: direction of the packet being inspected (for Report).
	toServer bool
	view     *detector.Flow
	// mem is the worker's account in the engine's buffer budget; holders
	// its flows' buffers holding bytes, the least recently grown first
	// (shed first when the budget is full).
	mem     membudget.Account
	holders membudget.Holders
}

type localCounters struct {
	packets, bytes, invalid, fragments, nonIP uint64
	ipv4, ipv6, tcp, udp, icmp4, icmp6, vl    uint64
	maxPkt                                    uint64
}

// publish moves the worker's counters into the engine's totals.
func (w *Worker) publish() {
	c, l := &w.e.C, &w.c
	c.Packets.Add(l.packets)
	c.Bytes.Add(l.bytes)
	c.Invalid.Add(l.invalid)
	c.Fragments.Add(l.fragments)
	c.NonIP.Add(l.nonIP)
	w.e.dec.collect(w.dec)
	c.IPv4.Add(l.ipv4)
	c.IPv6.Add(l.ipv6)
	c.TCP.Add(l.tcp)
	c.UDP.Add(l.udp)
	c.ICMPv4.Add(l.icmp4)
	c.ICMPv6.Add(l.icmp6)
	c.VLAN.Add(l.vl)
	for {
		cur := c.MaxPkt.Load()
		if l.maxPkt <= cur || c.MaxPkt.CompareAndSwap(cur, l.maxPkt) {
			break
		}
	}
	max := l.maxPkt
	*l = localCounters{maxPkt: max}
	ts := w.table.Stats()
	c.FlowsEvicted.Add(ts.Evicted - w.published.Evicted)
	c.FlowsExpired.Add(ts.Expired - w.published.Expired)
	c.ActiveFlows.Add(int64(ts.Active - w.published.Active))
	w.published = ts
}

// NewWorker makes a worker for frames of the given link type.
func (e *Engine) NewWorker(link decode.LinkType) *Worker {
	return e.newWorker(link, e.cfg.MaxFlows)
}

func (e *Engine) newWorker(link decode.LinkType, maxFlows int) *Worker {
	w := &Worker{e: e, link: link, dec: decode.NewDecoder(link), inspecting: -1, sink: e,
		clock: newExpiryClock(&e.cfg)}
	w.mem = membudget.Account{B: e.mem, L: &w.holders}
	w.table = flow.NewTable[flowState](maxFlows, e.cfg.Timeouts, w.flowEnded)
	return w
}

// ErrTimeout-like errors from live sources are recognised by this predicate.
type timeoutErr interface{ Timeout() bool }

// Run reads src until EOF, ctx cancellation or a read error. A read error
// after some packets (a truncated capture) is returned after everything
// read before it was processed. isTimeout, if set, marks errors that only
// mean "no packet for a while" (live mode): the flow table then expires on
// the wall clock.
func (w *Worker) Run(ctx context.Context, src Source, isTimeout func(error) bool) error {
	// A source whose packets differ in link type (pcapng interfaces, a
	// directory of captures) says which one each packet has.
	lt, _ := src.(interface{ PacketLinkType() uint32 })
	// A live capture on several interfaces says which one each packet
	// came in on (the flow's in_iface).
	ifs, _ := src.(interface{ Iface() int })
	for i := 0; ; i++ {
		if i&255 == 0 && ctx.Err() != nil {
			return nil
		}
		data, ci, err := src.ReadPacket()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			var te timeoutErr
			if (isTimeout != nil && isTimeout(err)) || (errors.As(err, &te) && te.Timeout()) {
				// An idle link: packet time stands still, so expire on the
				// injected clock instead.
				w.publish()
				w.expire(w.e.cfg.Clock())
				continue
			}
			return err
		}
		if lt != nil {
			if l := decode.LinkType(lt.PacketLinkType()); l != w.link {
				w.link = l
				w.dec.SetLink(l)
			}
		}
		if ifs != nil {
			w.iface = uint8(ifs.Iface())
		}
		w.n++
		w.Process(data, ci.Timestamp, w.n)
	}
}

// Process runs one frame through the pipeline. idx is its 1-based number.
// A panic in the decoder or a detector drops this packet only (see recovered).
func (w *Worker) Process(data []byte, ts time.Time, idx uint64) {
	// The packet is counted before a publication falls on it.
	w.c.packets++
	w.c.bytes += uint64(len(data))
	// Expiry at every ExpireEvery-th packet, and when the capture time has
	// moved on by ExpireInterval since the last run (expiryClock), as the
	// multi-worker readers find them.
	if w.clock.point(ts.UnixNano()) {
		w.publish()
		w.expire(ts)
	}
	w.inspect(data, ts, idx)
}

// process is Process without the periodic expiry.
func (w *Worker) process(data []byte, ts time.Time, idx uint64) {
	w.c.packets++
	w.c.bytes += uint64(len(data))
	w.inspect(data, ts, idx)
}

// inspect decodes the packet and runs it through the flow table and the
// flow's inspectors.
func (w *Worker) inspect(data []byte, ts time.Time, idx uint64) {
	defer w.recovered(idx)
	p := &w.pkt
	p.Time, p.Index = ts, idx
	w.inspectDecoded(p, w.dec.Decode(data, p))
}

// inspectDecoded runs a decoded packet (err: the decoder's verdict) through
// the flow table and the flow's inspectors. p is w.pkt, or a packet the
// parallel file reader decoded (its number and ICMP type and code are then
// copied to w.pkt, which Report reads).
func (w *Worker) inspectDecoded(p *decode.Packet, err error) {
	idx := p.Index
	if err != nil {
		// ARP, LLDP and the like are not damage: counted apart, and
		// reported by kind at the end.
		if err == decode.ErrNotIP {
			w.c.nonIP++
		} else {
			w.c.invalid++
		}
		return
	}
	w.count(p)
	if p.Time.After(w.lastTime) {
		w.lastTime = p.Time
	}
	if p.Fragment && !p.FirstFragment {
		w.c.fragments++
		return
	}
	k := &w.key
	srcIsA := k.Set(p)
	ent, created, toServer := w.table.Lookup(p, k, srcIsA)
	w.ent = ent
	st := &ent.V
	w.cur = st
	st.lastIdx = idx
	if created {
		w.newFlow(ent, p)
	} else if !st.view.SYNSeen && ent.SYNSeen {
		st.view.Client = addrPort(ent.Client())
		st.view.Server = addrPort(ent.Server())
		st.view.SYNSeen = true
	}
	st.view.PktsToServer, st.view.PktsToClient = ent.PktsToServer, ent.PktsToClient
	st.view.BytesToServer, st.view.BytesToClient = ent.BytesToServer, ent.BytesToClient
	w.toServer, w.view = toServer, &st.view
	st.busy = true
	if !st.started && (len(p.Payload) > 0 || (p.Proto != decode.ProtoTCP && p.Proto != decode.ProtoUDP)) {
		w.startInspectors(st, p, toServer)
	}
	for i, in := range st.ins {
		if st.alive&(1<<i) == 0 {
			continue
		}
		w.inspecting = i
		if !in.Inspect(p, toServer, &st.view, w) {
			st.alive &^= 1 << i
			st.ins[i] = nil
			st.hold.Shrink(footprint(in))
			release(in)
		}
	}
	st.busy = false
	if st.shed && st.alive != 0 {
		st.dropInspectors() // shed while this packet was inspected
	}
	if st.tls != nil {
		w.trackTLS(st)
	}
	w.inspecting, w.ent = -1, nil
}

// recovered turns a panic while processing packet idx into a counted,
// dropped packet: the inspector that panicked is retired for its flow, the
// first panic of each stage is logged with its packet number, and the
// worker goes on with the next packet.
func (w *Worker) recovered(idx uint64) {
	r := recover()
	if r == nil {
		return
	}
	stage := "decoder"
	if w.ent != nil && w.inspecting >= 0 {
		st := &w.ent.V
		if w.inspecting < len(st.ins) {
			stage = fmt.Sprintf("detector %T", st.ins[w.inspecting])
			st.alive &^= 1 << w.inspecting
			st.ins[w.inspecting] = nil
		}
		st.busy = false
	} else if w.ent != nil {
		stage = "flow setup"
	}
	w.inspecting, w.ent = -1, nil
	if _, fault := r.(interface{ Addr() uintptr }); fault {
		// A memory fault, which only a reader of a mapped file asks to
		// get as a panic (readMapped): that reader decides.
		panic(r)
	}
	w.e.C.Panics.Add(1)
	if _, seen := w.e.panicLogged.LoadOrStore(stage, true); !seen {
		w.e.log.Error("recovered a panic; the packet is dropped and the sensor goes on (logged once per stage)",
			"stage", stage, "pcap_cnt", idx, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	}
}

func (w *Worker) count(p *decode.Packet) {
	c := &w.c
	if p.IPVersion == 4 {
		c.ipv4++
	} else {
		c.ipv6++
	}
	switch p.Proto {
	case decode.ProtoTCP:
		c.tcp++
	case decode.ProtoUDP:
		c.udp++
	case decode.ProtoICMP:
		c.icmp4++
	case decode.ProtoICMPv6:
		c.icmp6++
	}
	if p.NVLAN > 0 {
		c.vl++
	}
	if n := uint64(p.WireLen); n > c.maxPkt {
		c.maxPkt = n
	}
}

func addrPort(ep flow.Endpoint) netip.AddrPort { return netip.AddrPortFrom(ep.Addr, ep.Port) }

func (w *Worker) newFlow(ent *flow.Entry[flowState], p *decode.Packet) {
	c := &w.e.C
	c.FlowsTotal.Add(1)
	switch p.Proto {
	case decode.ProtoTCP:
		c.FlowsTCP.Add(1)
	case decode.ProtoUDP:
		c.FlowsUDP.Add(1)
	case decode.ProtoICMP:
		c.FlowsICMP.Add(1)
	case decode.ProtoICMPv6:
		c.FlowsICMPv6.Add(1)
	}
	st := &ent.V
	st.view = detector.Flow{ID: ent.ID, Proto: p.Proto, Client: addrPort(ent.Client()), Server: addrPort(ent.Server()),
		Start: ent.Start(), SYNSeen: ent.SYNSeen, VLAN: p.VLAN, NVLAN: p.NVLAN, Iface: w.iface, Mem: &w.mem}
	st.ins = st.ins[:0]
	st.alive = 0
	st.reported = false
	st.started = false
}

// startInspectors offers the flow to every detector, at its first packet
// that carries payload: before that there is nothing to inspect, and most
// detectors decide from that payload whether the flow can matter to them.
func (w *Worker) startInspectors(st *flowState, p *decode.Packet, toServer bool) {
	st.started = true
	if n := len(w.e.cfg.Detectors); cap(st.ins) < n {
		// Room for every detector at once, kept with the entry when it is
		// reused for later flows: the array is allocated once per entry
		// that ever carries inspectors, and an idle flow carries none.
		st.ins = make([]detector.Inspector, 0, n)
	}
	n := 0
	for _, d := range w.e.cfg.Detectors {
		if in := d.NewInspector(p, toServer, &st.view); in != nil && len(st.ins) < 32 {
			st.alive |= 1 << len(st.ins)
			st.ins = append(st.ins, in)
			n += footprint(in)
		}
	}
	if n == 0 {
		return
	}
	st.hold.Bind(&w.mem, &st.view.Reported, st)
	if !st.hold.Grow(n) {
		// No room even after shedding staler flows: this flow goes
		// uninspected (counted by the budget as a shed buffer).
		st.dropInspectors()
	}
}

func (w *Worker) expire(now time.Time) {
	w.expireTable(now)
	w.e.verdict.Expire(now)
}

func (w *Worker) expireTable(now time.Time) {
	w.expiring = true
	w.table.Expire(now, w.flowEnded)
	w.expiring = false
}

// flowEnded runs when a flow leaves the table: its inspectors are released
// (the entry and its inspector slice are reused for a later flow) and, if
// it gave evidence, the verdict stage hears that it ended, with its final
// counters, so sessions live exactly as long as their flows.
func (w *Worker) flowEnded(ent *flow.Entry[flowState], r flow.EndReason) {
	st := &ent.V
	st.dropInspectors()
	st.shed, st.busy = false, false
	if st.tls != nil {
		w.dropTLS(st)
	}
	if w.cur == st {
		w.cur = nil
	}
	if !st.reported {
		return
	}
	st.reported = false
	v := st.view
	v.PktsToServer, v.PktsToClient = ent.PktsToServer, ent.PktsToClient
	v.BytesToServer, v.BytesToClient = ent.BytesToServer, ent.BytesToClient
	if s, ok := w.sink.(*evidenceSink); ok {
		s.evs = append(s.evs, idxEvidence{idx: s.idx, op: opFlowEnd, batch: w.expiring, cls: flowClass(ent), last: st.lastIdx,
			ev: detector.Evidence{Flow: v, Time: ent.Last(), Detail: r.String()}})
		return
	}
	w.e.verdict.FlowEnded(v, ent.Last(), r.String())
}

// flowClass is the flow table's timeout class of a flow: expiry and flush
// walk the classes in this order, least recently used first.
func flowClass(ent *flow.Entry[flowState]) uint8 {
	switch ent.Key.Proto {
	case decode.ProtoTCP:
		if ent.Closed {
			return 1
		}
		return 0
	case decode.ProtoUDP:
		return 2
	}
	return 3
}

// Finish publishes the worker's counters and flushes its flow table (end
// of capture); sessions none of whose flows is left end with it.
func (w *Worker) Finish() {
	w.expiring = true
	w.table.Flush(w.flowEnded)
	w.expiring = false
	w.publish()
	w.e.verdict.Flush()
}

// FlowStats sums the flow tables of all workers as last published (safe
// while workers run).
func (e *Engine) FlowStats() flow.Stats {
	c := &e.C
	return flow.Stats{Created: c.FlowsTotal.Load(), Evicted: c.FlowsEvicted.Load(),
		Expired: c.FlowsExpired.Load(), Active: int(c.ActiveFlows.Load())}
}

// Report implements detector.Sink for the worker's inspectors: it marks
// the flow as one the verdict stage must hear the end of, and stamps
// evidence about the packet being processed (its PcapCnt) with the
// packet's source and ICMP type/code, so the alert can name the packet's
// direction and compute its Community ID.
func (w *Worker) Report(ev detector.Evidence) {
	if w.ent != nil {
		w.ent.V.reported = true
		w.ent.V.view.Reported = true
		w.ent.Keep = true
	}
	if ev.PcapCnt == w.pkt.Index && w.view != nil && ev.Flow.ID == w.view.ID {
		src := w.view.Server.Addr()
		if w.toServer {
			src = w.view.Client.Addr()
		}
		ev.Pkt = detector.PacketInfo{Known: true, Src: src, ICMPType: w.pkt.ICMPType, ICMPCode: w.pkt.ICMPCode}
	}
	// To the engine, or to the ordered merge of parallel reading.
	w.sink.Report(ev)
}

// Report implements detector.Sink: evidence goes to the shared verdict
// stage, and to the debug log.
func (e *Engine) Report(ev detector.Evidence) {
	if e.log.Enabled(context.Background(), slog.LevelDebug) {
		e.log.Debug("evidence", "kind", ev.Kind, "class", detector.SpecOf(ev.Kind).Class.String(), "mode", ev.Mode,
			"client", ev.Client, "server", ev.Server, "flow", ev.Flow.Client.String()+"->"+ev.Flow.Server.String(),
			"pcap_cnt", ev.PcapCnt, "detail", ev.Detail)
	}
	e.verdict.Report(ev)
}

// emitAlert turns a verdict into an EVE alert line.
func (e *Engine) emitAlert(a verdict.Alert) {
	ev := e.alertEvent(a)
	js, err := ev.Marshal()
	if err != nil {
		e.log.Error("encoding alert", "err", err)
		return
	}
	id := sha1.Sum([]byte(fmt.Sprintf("%d|%d|%s|%d", a.Signature.ID, a.Anchor.Flow.ID, ev.Timestamp, a.Trigger.PcapCnt)))
	key := ev.CommunityID
	if key == "" {
		key = strconv.FormatInt(ev.FlowID, 10)
	}
	e.out.Send(outputs.Record{Type: "alert", Time: a.Trigger.Time, FlowID: ev.FlowID, Key: key,
		ID: hex.EncodeToString(id[:16]), SignatureID: a.Signature.ID, JSON: js})
}

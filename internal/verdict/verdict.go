// Package verdict is the one place evidence becomes alerts. It groups
// SoftEther evidence by host pair (client address, server address) into
// sessions and scores a session by units, each one independent observation
// of SoftEther: a flow's connect phase (its strongest reading plus that
// flow's corroborators, capped), a second connection multiplexed in one
// flow, a flow's behaviour over time, a separate flow of the connect burst.
// The weights and rules are detector.Kinds; one connection's connect phase
// alone can never alert (detector.MinUnits). A session lives as long as its
// flows and raises one alert in its whole life; when an alerted session
// ends, a flow event sums up its flows. Evidence that asks for a signature
// of its own (other VPNs, vendor services) is alerted once per host pair
// and signature.
package verdict

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sewatch/sewatch/detector"
)

// Alert is one verdict ready to become an EVE event.
type Alert struct {
	Signature  detector.Signature
	Anchor     detector.Evidence   // the evidence whose flow the alert names
	Trigger    detector.Evidence   // the evidence that completed the verdict
	Evidence   []detector.Evidence // what the alert rests on, strongest unit first
	Mode       detector.Mode
	Score      float32
	Units      int
	Confidence float32
	Flows      []string // member flows, "TCP 10.0.0.1:4711 -> 10.0.0.2:443"
	TLS        *detector.TLSInfo
	// Extra metadata added by policy (allowlisted, vpngate_listed, server_host).
	Extra map[string][]string
}

// SessionEnd sums up an alerted session when its last flow has ended.
type SessionEnd struct {
	Signature      detector.Signature
	Anchor         detector.Flow // the flow the alert named
	Start, End     time.Time     // first flow's start, last packet of any flow
	PktsToServer   uint64        // summed over the session's flows, client -> server
	PktsToClient   uint64
	BytesToServer  uint64
	BytesToClient  uint64
	Flows          []string // "<flow_id> TCP a:p -> b:q"
	Reason         string   // "timeout", "forced", "shutdown"
	AlertTimestamp time.Time
}

// Config tunes the verdict stage.
type Config struct {
	// Threshold is the session score that raises an alert.
	Threshold float32
	// SessionGap: a session with no live flow and no evidence for this
	// long is over.
	SessionGap time.Duration
	// Window: evidence older than this relative to the newest is forgotten
	// before an alert.
	Window time.Duration
	// MaxSessions bounds memory; stale sessions are dropped first,
	// alerted ones last.
	MaxSessions int
	// Allow lists sanctioned SoftEther servers.
	Allow []AllowRule
	// HomeNets are the networks whose hosts serving SoftEther sessions to
	// outside clients are reported as servers or relays.
	HomeNets []netip.Prefix
	// VPNGate maps addresses of VPN Gate's public list to host names
	// (corroboration in metadata only).
	VPNGate map[netip.Addr]string
}

// DefaultConfig is the shipped tuning (detector's weights table).
func DefaultConfig() Config {
	return Config{Threshold: detector.Threshold, SessionGap: detector.SessionGap, Window: detector.EvidenceWindow, MaxSessions: 65536}
}

type pairKey struct{ client, server netip.Addr }

// member is one flow of a session.
type member struct {
	flow  detector.Flow // counters as last known (final once ended)
	last  time.Time
	ended bool
}

type session struct {
	first, last time.Time // evidence times
	alerted     bool
	alert       Alert // what was alerted (for the session's flow event)
	ev          []detector.Evidence
	flows       map[int64]*member
	live        int // member flows not yet ended
	ended       time.Time
	reason      string
	// openings are the first exchanges of the session's TLS readings so
	// far (detector.Opening), at most maxMembers.
	openings []flowOpening
}

// flowOpening is one flow's first exchange; repeated: another flow of the
// session opened alike, so neither flow's reading counts.
type flowOpening struct {
	flow     int64
	o        detector.Opening
	repeated bool
}

// maxMembers bounds the flows a session remembers.
const maxMembers = 64

// Verdict is safe for concurrent use: workers share one. Alerts and
// session-end events are handed to the callbacks after the lock is
// released, so a slow output never blocks other workers' evidence.
type Verdict struct {
	cfg        Config
	emit       func(Alert)
	emitEnd    func(SessionEnd)
	mu         sync.Mutex
	sessions   map[pairKey]*session
	byFlow     map[int64]pairKey // member flow -> its session
	single     map[singleKey]time.Time
	alerts     uint64
	suppressed uint64
	clients    map[netip.Addr]map[netip.Addr]bool
	roles      map[roleKey]bool
	servers    map[netip.Addr]serverSeen // hosts seen acting as SoftEther servers
	nbstat     map[pairKey]time.Time     // last NBSTAT query, sender -> receiver
	// next, when nextSet, is a capture time up to which Expire can end
	// nothing: no session without live flows, and no single or NBSTAT
	// entry, was last heard of more than SessionGap before it (without
	// nextSet, nothing can end until something is noted). Expire runs
	// every 4096 packets and every second of capture time; scanning the
	// three maps each time was 2.5 % of a run's samples on many-flow
	// traffic (4,850 runs on the benchmark mix, nearly all of which ended
	// nothing; 0.7 % with next).
	next    time.Time
	nextSet bool
}

// note records that something last heard of at t can end once SessionGap
// has passed (see next).
func (v *Verdict) note(t time.Time) {
	if t = t.Add(v.cfg.SessionGap); !v.nextSet || t.Before(v.next) {
		v.next, v.nextSet = t, true
	}
}

type singleKey struct {
	sig  int
	pair pairKey
}

// New returns a verdict stage that calls emit for each alert.
func New(cfg Config, emit func(Alert)) *Verdict {
	if cfg.Threshold <= 0 {
		d := DefaultConfig()
		d.Allow, d.HomeNets, d.VPNGate = cfg.Allow, cfg.HomeNets, cfg.VPNGate
		cfg = d
	}
	if cfg.SessionGap <= 0 {
		cfg.SessionGap = detector.SessionGap
	}
	if cfg.Window <= 0 {
		cfg.Window = detector.EvidenceWindow
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 65536
	}
	return &Verdict{cfg: cfg, emit: emit, sessions: map[pairKey]*session{}, byFlow: map[int64]pairKey{},
		single: map[singleKey]time.Time{}, clients: map[netip.Addr]map[netip.Addr]bool{}, roles: map[roleKey]bool{},
		servers: map[netip.Addr]serverSeen{}, nbstat: map[pairKey]time.Time{}}
}

// OnSessionEnd sets the callback for alerted sessions that ended.
func (v *Verdict) OnSessionEnd(f func(SessionEnd)) {
	v.mu.Lock()
	v.emitEnd = f
	v.mu.Unlock()
}

// Suppressed returns how many session alerts the allowlist suppressed.
func (v *Verdict) Suppressed() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.suppressed
}

// Alerts returns how many alerts were emitted.
func (v *Verdict) Alerts() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.alerts
}

// Sessions returns how many sessions are tracked.
func (v *Verdict) Sessions() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.sessions)
}

// outbox collects what to emit once the lock is released.
type outbox struct {
	alerts []Alert
	ends   []SessionEnd
}

func (v *Verdict) flush(o *outbox) {
	for _, a := range o.alerts {
		v.emit(a)
	}
	if v.emitEnd != nil {
		for _, e := range o.ends {
			v.emitEnd(e)
		}
	}
}

// Report implements detector.Sink.
func (v *Verdict) Report(e detector.Evidence) {
	var o outbox
	v.mu.Lock()
	v.report(e, &o)
	v.mu.Unlock()
	v.flush(&o)
}

func (v *Verdict) report(e detector.Evidence, o *outbox) {
	if e.Signature != 0 {
		v.reportSingle(e, o)
		return
	}
	spec := detector.SpecOf(e.Kind)
	if spec.Class == detector.ClassOwnSignature {
		return // a session kind the table does not know: never scored
	}
	k := pairKey{e.Client.Unmap(), e.Server.Unmap()}
	rk := pairKey{k.server, k.client}
	if e.Kind == detector.KindNBNSProbe && len(v.nbstat) < maxServers {
		v.nbstat[k] = e.Time // Client is the sender here, before any flip
		v.note(e.Time)
	}
	if e.Symmetric && v.sessions[k] == nil && v.sessions[rk] != nil {
		e = flip(e)
		k, rk = rk, k
	}
	s := v.sessions[k]
	if s != nil && s.live == 0 && e.Time.Sub(s.quiet()) > v.cfg.SessionGap {
		v.endSession(k, s, o)
		s = nil
	}
	if s == nil {
		if len(v.sessions) >= v.cfg.MaxSessions {
			v.evict(o)
		}
		s = &session{first: e.Time, flows: map[int64]*member{}}
		v.sessions[k] = s
		// Symmetric evidence filed under the reverse orientation before
		// this session's first oriented evidence belongs here.
		if r := v.sessions[rk]; r != nil && !e.Symmetric && !r.alerted && allSymmetric(r) {
			for _, old := range r.ev {
				s.ev = append(s.ev, flip(old))
			}
			for id, m := range r.flows {
				s.flows[id] = m
				v.byFlow[id] = k
				if !m.ended {
					s.live++
				}
			}
			delete(v.sessions, rk)
		}
	}
	if e.Time.After(s.last) {
		s.last = e.Time
	}
	v.addMember(k, s, e)
	if s.live == 0 {
		v.note(s.quiet()) // its flows all ended (taken over from the reverse orientation)
	}
	if s.alerted {
		return
	}
	if e.Opening.Hello != 0 && repeatedOpening(s, e) {
		return
	}
	// Forget evidence too old to belong with the newest.
	kept := s.ev[:0]
	for _, old := range s.ev {
		if e.Time.Sub(old.Time) <= v.cfg.Window {
			kept = append(kept, old)
		}
	}
	s.ev = append(kept, e)
	if len(s.ev) > 64 {
		s.ev = s.ev[len(s.ev)-64:]
	}
	if !detector.CanAlert(s.ev) {
		return
	}
	sc := detector.Score(s.ev)
	if !sc.OK || sc.Total < v.cfg.Threshold {
		return
	}
	s.alerted = true
	a := v.buildAlert(s, sc, e)
	v.markCascade(&a)
	s.alert = a
	if !v.applyPolicy(&a) {
		return
	}
	v.alerts++
	o.alerts = append(o.alerts, a)
	v.noteServer(a)
	v.serverRole(a, o)
}

func (v *Verdict) addMember(k pairKey, s *session, e detector.Evidence) {
	id := e.Flow.ID
	if m, ok := s.flows[id]; ok {
		if !m.ended {
			m.flow = e.Flow
		}
		return
	}
	if len(s.flows) >= maxMembers {
		return
	}
	s.flows[id] = &member{flow: e.Flow, last: e.Time}
	s.live++
	v.byFlow[id] = k
}

// repeatedOpening records e's first exchange and tells whether another flow
// of the session opened alike (detector.Opening.Repeats). SoftEther pads
// its watermark and hello at random on every connection; software that
// repeats one exchange on each connection does not (two connections of
// WhatsApp's login call to one Apple server in the third-party captures:
// watermark 1912 and 1911, hello 943 and 943, each read as an additional
// connection until tlsshape let go of ClientHellos not in OpenSSL's
// order). Then neither flow's reading counts, now or later: the earlier
// one leaves the session's evidence too.
func repeatedOpening(s *session, e detector.Evidence) bool {
	rep := false
	for i := range s.openings {
		x := &s.openings[i]
		if x.flow != e.Flow.ID && e.Opening.Repeats(x.o) {
			x.repeated, rep = true, true
		}
	}
	if len(s.openings) < maxMembers {
		s.openings = append(s.openings, flowOpening{e.Flow.ID, e.Opening, rep})
	}
	if !rep {
		return false
	}
	kept := s.ev[:0]
	for _, old := range s.ev {
		if old.Opening.Hello == 0 || !openingRepeated(s, old.Flow.ID) {
			kept = append(kept, old)
		}
	}
	s.ev = kept
	return true
}

// openingRepeated tells whether flow id's opening was repeated by another
// flow of the session.
func openingRepeated(s *session, id int64) bool {
	for _, x := range s.openings {
		if x.flow == id && x.repeated {
			return true
		}
	}
	return false
}

// quiet is when the session was last heard of: its newest evidence or the
// end of its last flow.
func (s *session) quiet() time.Time {
	if s.ended.After(s.last) {
		return s.ended
	}
	return s.last
}

// FlowEnded tells the verdict stage that a flow expired, was evicted or
// the capture ended. f carries the flow's final counters; last is its last
// packet's time; reason is "timeout", "forced" or "shutdown". Flows that
// never gave evidence need not be reported.
func (v *Verdict) FlowEnded(f detector.Flow, last time.Time, reason string) {
	var o outbox
	v.mu.Lock()
	v.flowEnded(f, last, reason, &o)
	v.mu.Unlock()
	v.flush(&o)
}

func (v *Verdict) flowEnded(f detector.Flow, last time.Time, reason string, o *outbox) {
	k, ok := v.byFlow[f.ID]
	if !ok {
		return
	}
	delete(v.byFlow, f.ID)
	s := v.sessions[k]
	if s == nil {
		return
	}
	m := s.flows[f.ID]
	if m == nil || m.ended {
		return
	}
	if m.flow.Client.Addr() != f.Client.Addr() && m.flow.Client.Addr() == f.Server.Addr() {
		f = flipFlow(f) // the evidence oriented this flow the other way
	}
	m.flow, m.last, m.ended = f, last, true
	s.live--
	if last.After(s.ended) {
		s.ended = last
	}
	s.reason = reason
	if s.live == 0 {
		v.note(s.quiet())
	}
	if s.live == 0 && reason == "shutdown" {
		// End of capture: nothing more can join it.
		v.endSession(k, s, o)
	}
}

// endSession forgets a session, writing its summary if it alerted.
func (v *Verdict) endSession(k pairKey, s *session, o *outbox) {
	delete(v.sessions, k)
	for id := range s.flows {
		if v.byFlow[id] == k {
			delete(v.byFlow, id)
		}
	}
	if !s.alerted {
		return
	}
	a := s.alert
	end := SessionEnd{Signature: a.Signature, Anchor: a.Anchor.Flow, End: s.quiet(), Reason: s.reason,
		AlertTimestamp: a.Trigger.Time}
	if end.Reason == "" {
		end.Reason = "timeout"
	}
	ids := make([]int64, 0, len(s.flows))
	for id := range s.flows {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		m := s.flows[id]
		f := &m.flow
		if end.Start.IsZero() || (!f.Start.IsZero() && f.Start.Before(end.Start)) {
			end.Start = f.Start
		}
		if m.last.After(end.End) {
			end.End = m.last
		}
		end.PktsToServer += f.PktsToServer
		end.PktsToClient += f.PktsToClient
		end.BytesToServer += f.BytesToServer
		end.BytesToClient += f.BytesToClient
		end.Flows = append(end.Flows, strconv.FormatInt(id, 10)+" "+flowString(f))
	}
	o.ends = append(o.ends, end)
}

func (v *Verdict) buildAlert(s *session, sc detector.Scored, trigger detector.Evidence) Alert {
	anchor := sc.Anchor
	mode := anchor.Mode
	for _, e := range sc.Used {
		if e.Mode == detector.ModeAdmin {
			mode = detector.ModeAdmin
		}
	}
	if mode == detector.ModeNone {
		mode = detector.ModeDirect
	}
	conf := float32(1)
	var tls *detector.TLSInfo
	for _, u := range sc.Units {
		conf *= 1 - min(u.Score, 0.99)
	}
	for _, e := range sc.Used {
		if tls == nil && e.TLS != nil && e.Flow.ID == anchor.Flow.ID {
			tls = e.TLS
		}
	}
	ids := make([]int64, 0, len(s.flows))
	for id := range s.flows {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var flows []string
	for _, id := range ids {
		flows = append(flows, flowString(&s.flows[id].flow))
	}
	return Alert{Signature: detector.SessionSignature(mode), Anchor: anchor, Trigger: trigger,
		Evidence: sc.Used, Mode: mode, Score: sc.Total, Units: sc.Count, Confidence: 1 - conf, Flows: flows, TLS: tls}
}

func (v *Verdict) reportSingle(e detector.Evidence, o *outbox) {
	k := singleKey{e.Signature, pairKey{e.Client.Unmap(), e.Server.Unmap()}}
	if last, ok := v.single[k]; ok && e.Time.Sub(last) < v.cfg.SessionGap {
		v.single[k] = e.Time
		v.note(e.Time) // it can be earlier than last (packets out of order)
		return
	}
	if len(v.single) >= v.cfg.MaxSessions {
		for x := range v.single { // any one: it only suppresses repeats
			delete(v.single, x)
			break
		}
	}
	v.single[k] = e.Time
	v.note(e.Time)
	sig, ok := detector.ByID(e.Signature)
	if !ok {
		return
	}
	switch e.Signature {
	case detector.SIDSSTP, detector.SIDOpenVPNTCP:
		e.Detail += v.softetherServerHint(e)
	case detector.SIDVendorDDNS:
		// Only SoftEther's server registers a DDNS name.
		v.rememberServer(e.Client.Unmap(), "sent a SoftEther DDNS registration", e.Time)
	}
	v.alerts++
	o.alerts = append(o.alerts, Alert{Signature: sig, Anchor: e, Trigger: e, Evidence: []detector.Evidence{e}, Mode: e.Mode,
		Score: e.Weight, Units: 1, Confidence: e.Weight, Flows: []string{flowString(&e.Flow)}, TLS: e.TLS})
}

// Expire ends sessions with no live flow that have been quiet for longer
// than the session gap at now, and forgets old repeat-suppression state.
func (v *Verdict) Expire(now time.Time) {
	var o outbox
	v.mu.Lock()
	if !v.nextSet || !now.After(v.next) {
		v.mu.Unlock()
		return // nothing was last heard of more than SessionGap ago
	}
	// The scan finds what is left's earliest end exactly.
	v.nextSet = false
	for k, s := range v.sessions {
		if s.live != 0 {
			continue
		}
		if now.Sub(s.quiet()) > v.cfg.SessionGap {
			v.endSession(k, s, &o)
		} else {
			v.note(s.quiet())
		}
	}
	for k, t := range v.single {
		if now.Sub(t) > v.cfg.SessionGap {
			delete(v.single, k)
		} else {
			v.note(t)
		}
	}
	for k, t := range v.nbstat {
		if now.Sub(t) > v.cfg.SessionGap {
			delete(v.nbstat, k)
		} else {
			v.note(t)
		}
	}
	v.mu.Unlock()
	// Map order is random: sessions ending together are reported in a
	// fixed order, so a capture always gives the same events in the same order.
	if len(o.ends) > 1 {
		sort.Slice(o.ends, func(i, j int) bool { return o.ends[i].Anchor.ID < o.ends[j].Anchor.ID })
	}
	v.flush(&o)
}

// Flush ends every session none of whose flows is still live (end of
// capture), writing the summaries of alerted ones.
func (v *Verdict) Flush() {
	var o outbox
	v.mu.Lock()
	for k, s := range v.sessions {
		if s.live == 0 {
			if s.reason == "" {
				s.reason = "shutdown"
			}
			v.endSession(k, s, &o)
		}
	}
	v.mu.Unlock()
	sort.Slice(o.ends, func(i, j int) bool { return o.ends[i].Anchor.ID < o.ends[j].Anchor.ID })
	v.flush(&o)
}

// evict makes room by dropping one session: among a few sampled (map
// order is random), the one to lose least: not alerted before alerted,
// then the stalest. Constant time, unlike a scan of every session.
func (v *Verdict) evict(o *outbox) {
	var victim pairKey
	var vs *session
	n := 0
	for k, s := range v.sessions {
		if vs == nil || evictBefore(s, vs) {
			victim, vs = k, s
		}
		if n++; n >= 16 {
			break
		}
	}
	if vs != nil {
		v.endSession(victim, vs, o)
	}
}

func evictBefore(a, b *session) bool {
	if a.alerted != b.alerted {
		return !a.alerted
	}
	return a.quiet().Before(b.quiet())
}

func flowString(f *detector.Flow) string {
	proto := strconv.Itoa(int(f.Proto))
	switch f.Proto {
	case 6:
		proto = "TCP"
	case 17:
		proto = "UDP"
	case 1:
		proto = "ICMP"
	case 58:
		proto = "IPv6-ICMP"
	}
	if f.Proto == 1 || f.Proto == 58 {
		return fmt.Sprintf("%s %s -> %s", proto, f.Client.Addr(), f.Server.Addr())
	}
	return fmt.Sprintf("%s %s -> %s", proto, f.Client, f.Server)
}

func allSymmetric(s *session) bool {
	for _, e := range s.ev {
		if !e.Symmetric {
			return false
		}
	}
	return true
}

// flip swaps the roles of the two hosts in symmetric evidence, including
// the orientation of its flow, so the alert names client and server right.
func flip(e detector.Evidence) detector.Evidence {
	e.Client, e.Server = e.Server, e.Client
	if e.Flow.Client.Addr() == e.Server {
		e.Flow = flipFlow(e.Flow)
	}
	return e
}

func flipFlow(f detector.Flow) detector.Flow {
	f.Client, f.Server = f.Server, f.Client
	f.PktsToServer, f.PktsToClient = f.PktsToClient, f.PktsToServer
	f.BytesToServer, f.BytesToClient = f.BytesToClient, f.BytesToServer
	return f
}

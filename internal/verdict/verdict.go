// Package verdict is the one place evidence becomes alerts. It groups
// SoftEther evidence by host pair (client address, server address) into
// sessions, scores a session as the sum over evidence kinds of each kind's
// strongest weight, and emits exactly one alert per session when the score
// crosses the threshold and some evidence sits on a flow that carries the
// session (an anchor), naming that flow. Evidence that asks for a
// signature of its own (other VPNs, vendor services) is alerted once per
// host pair and signature.
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
	Evidence   []detector.Evidence // everything that contributed, strongest first
	Mode       string
	Score      float32
	Confidence float32
	Flows      []string // member flows, "TCP 10.0.0.1:4711 -> 10.0.0.2:443"
	TLS        *detector.TLSInfo
	// Extra metadata added by policy (allowlisted, vpngate_listed, server_host).
	Extra map[string][]string
}

// Config tunes the verdict stage.
type Config struct {
	// Threshold is the session score that raises an alert.
	Threshold float32
	// SessionGap: evidence arriving this long after a session's last
	// evidence starts a new session (SoftEther's own session timeout is 20 s).
	SessionGap time.Duration
	// Window: evidence older than this relative to the newest is forgotten
	// before an alert.
	Window time.Duration
	// MaxSessions bounds memory; the stalest session is dropped.
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

// DefaultConfig is the shipped tuning.
func DefaultConfig() Config {
	return Config{Threshold: 1.0, SessionGap: 2 * time.Minute, Window: 5 * time.Minute, MaxSessions: 65536}
}

type pairKey struct{ client, server netip.Addr }

type session struct {
	first, last time.Time
	alerted     bool
	ev          []detector.Evidence
	flows       map[int64]string
}

// Verdict is safe for concurrent use: workers share one.
type Verdict struct {
	cfg        Config
	emit       func(Alert)
	mu         sync.Mutex
	sessions   map[pairKey]*session
	single     map[singleKey]time.Time
	alerts     uint64
	suppressed uint64
	clients    map[netip.Addr]map[netip.Addr]bool
	roles      map[roleKey]bool
	servers    map[netip.Addr]serverSeen // hosts seen acting as SoftEther servers
	nbstat     map[pairKey]time.Time     // last NBSTAT query, sender -> receiver
}

type singleKey struct {
	sig  int
	pair pairKey
}

// New returns a verdict stage that calls emit for each alert (under its lock).
func New(cfg Config, emit func(Alert)) *Verdict {
	if cfg.Threshold <= 0 {
		d := DefaultConfig()
		d.Allow, d.HomeNets, d.VPNGate = cfg.Allow, cfg.HomeNets, cfg.VPNGate
		cfg = d
	}
	return &Verdict{cfg: cfg, emit: emit, sessions: map[pairKey]*session{}, single: map[singleKey]time.Time{},
		clients: map[netip.Addr]map[netip.Addr]bool{}, roles: map[roleKey]bool{},
		servers: map[netip.Addr]serverSeen{}, nbstat: map[pairKey]time.Time{}}
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

// Report implements detector.Sink.
func (v *Verdict) Report(e detector.Evidence) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Signature != 0 {
		v.reportSingle(e)
		return
	}
	k := pairKey{e.Client.Unmap(), e.Server.Unmap()}
	rk := pairKey{k.server, k.client}
	if e.Kind == nbstatKind && len(v.nbstat) < maxServers {
		v.nbstat[k] = e.Time // Client is the sender here, before any flip
	}
	if e.Symmetric && v.sessions[k] == nil && v.sessions[rk] != nil {
		e = flip(e)
		k, rk = rk, k
	}
	s := v.sessions[k]
	if s != nil && e.Time.Sub(s.last) > v.cfg.SessionGap {
		delete(v.sessions, k)
		s = nil
	}
	if s == nil {
		if len(v.sessions) >= v.cfg.MaxSessions {
			v.dropStalest()
		}
		s = &session{first: e.Time, flows: map[int64]string{}}
		v.sessions[k] = s
		// Symmetric evidence filed under the reverse orientation before
		// this session's first oriented evidence belongs here.
		if r := v.sessions[rk]; r != nil && !e.Symmetric && !r.alerted && allSymmetric(r) {
			for _, old := range r.ev {
				s.ev = append(s.ev, flip(old))
				s.flows[old.Flow.ID] = flowString(&old.Flow)
			}
			delete(v.sessions, rk)
		}
	}
	if e.Time.After(s.last) {
		s.last = e.Time
	}
	if _, ok := s.flows[e.Flow.ID]; !ok && len(s.flows) < 64 {
		s.flows[e.Flow.ID] = flowString(&e.Flow)
	}
	if s.alerted {
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
	score, anchor, ok := v.score(s)
	if !ok || score < v.cfg.Threshold {
		return
	}
	s.alerted = true
	a := v.buildAlert(s, anchor, e, score)
	v.markCascade(&a)
	if !v.applyPolicy(&a) {
		return
	}
	v.alerts++
	v.emit(a)
	v.noteServer(a)
	v.serverRole(a)
}

// score sums each kind's strongest weight and picks the anchor.
func (v *Verdict) score(s *session) (float32, detector.Evidence, bool) {
	best := map[string]float32{}
	perFlow := map[string]map[int64]bool{}
	var anchor detector.Evidence
	have := false
	for _, e := range s.ev {
		if e.PerFlow {
			// Up to two distinct flows of a per-flow kind add up.
			if perFlow[e.Kind] == nil {
				perFlow[e.Kind] = map[int64]bool{}
			}
			if fl := perFlow[e.Kind]; !fl[e.Flow.ID] && len(fl) < 2 {
				fl[e.Flow.ID] = true
				best[e.Kind+"#"+fmt.Sprint(len(fl))] = e.Weight
			}
		} else if e.Weight > best[e.Kind] {
			best[e.Kind] = e.Weight
		}
		if e.Anchor && (!have || anchorRank(e) > anchorRank(anchor)) {
			anchor, have = e, true
		}
	}
	var sum float32
	for _, w := range best {
		sum += w
	}
	return sum, anchor, have
}

// anchorRank prefers TCP session flows over UDP, the primary connection
// over additional ones, stronger evidence over weaker, then the earliest.
func anchorRank(e detector.Evidence) float64 {
	r := float64(e.Weight)
	if e.Flow.Proto == 6 {
		r += 10
	}
	if e.Kind == "softether.tls.session-shape" {
		r += 5
	}
	// Earlier flows rank higher at equal strength.
	r -= float64(e.Flow.Start.UnixNano()%1e12) / 1e15
	return r
}

func (v *Verdict) buildAlert(s *session, anchor, trigger detector.Evidence, score float32) Alert {
	all := append([]detector.Evidence(nil), s.ev...)
	sort.SliceStable(all, func(i, j int) bool { return all[i].Weight > all[j].Weight })
	// Keep the strongest evidence of each kind (two flows for per-flow kinds).
	var ev []detector.Evidence
	kept := map[string]int{}
	for _, e := range all {
		limit := 1
		if e.PerFlow {
			limit = 2
		}
		if kept[e.Kind] < limit {
			kept[e.Kind]++
			ev = append(ev, e)
		}
	}
	mode := anchor.Mode
	for _, e := range ev {
		if e.Mode == "admin" {
			mode = "admin"
		}
	}
	if mode == "" {
		mode = "direct"
	}
	conf := float32(1)
	seen := map[string]bool{}
	var tls *detector.TLSInfo
	for _, e := range ev {
		if !seen[e.Kind] {
			seen[e.Kind] = true
			conf *= 1 - min(e.Weight, 0.99)
		}
		if tls == nil && e.TLS != nil && e.Flow.ID == anchor.Flow.ID {
			tls = e.TLS
		}
	}
	var flows []string
	ids := make([]int64, 0, len(s.flows))
	for id := range s.flows {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		flows = append(flows, s.flows[id])
	}
	return Alert{Signature: detector.SessionSignature(mode, anchor.Flow.Proto), Anchor: anchor, Trigger: trigger,
		Evidence: ev, Mode: mode, Score: score, Confidence: 1 - conf, Flows: flows, TLS: tls}
}

func (v *Verdict) reportSingle(e detector.Evidence) {
	k := singleKey{e.Signature, pairKey{e.Client.Unmap(), e.Server.Unmap()}}
	if last, ok := v.single[k]; ok && e.Time.Sub(last) < v.cfg.SessionGap {
		v.single[k] = e.Time
		return
	}
	v.single[k] = e.Time
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
	v.emit(Alert{Signature: sig, Anchor: e, Trigger: e, Evidence: []detector.Evidence{e}, Mode: e.Mode,
		Score: e.Weight, Confidence: e.Weight, Flows: []string{flowString(&e.Flow)}, TLS: e.TLS})
}

// Expire forgets sessions idle for longer than the session gap at now.
func (v *Verdict) Expire(now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, s := range v.sessions {
		if now.Sub(s.last) > v.cfg.SessionGap {
			delete(v.sessions, k)
		}
	}
	for k, t := range v.single {
		if now.Sub(t) > v.cfg.SessionGap {
			delete(v.single, k)
		}
	}
	for k, t := range v.nbstat {
		if now.Sub(t) > v.cfg.SessionGap {
			delete(v.nbstat, k)
		}
	}
}

func (v *Verdict) dropStalest() {
	var victim pairKey
	var t time.Time
	first := true
	for k, s := range v.sessions {
		if first || s.last.Before(t) {
			victim, t, first = k, s.last, false
		}
	}
	delete(v.sessions, victim)
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
	f := &e.Flow
	if f.Client.Addr() == e.Server {
		f.Client, f.Server = f.Server, f.Client
		f.PktsToServer, f.PktsToClient = f.PktsToClient, f.PktsToServer
		f.BytesToServer, f.BytesToClient = f.BytesToClient, f.BytesToServer
	}
	return e
}

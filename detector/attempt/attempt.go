// Package attempt reports a SoftEther client that keeps trying to connect
// and never holds a session: the server refuses the login, cannot be
// reached through a proxy, or an intercepting proxy (squid ssl-bump and the
// gateways that work the same way) breaks the tunnel right after the
// welcome. SoftEther's client then repeats its connect phase every
// RetryInterval (5-300 s, 15 s by default), forever, and re-adds a broken
// leg about once a second.
//
// Every connection is judged on its own first: it is an attempt only with
// evidence that it is SoftEther's (the client's own HTTP CONNECT request, or
// the watermark upload answered by the hello together with SoftEther's
// ClientHello profile or the rest of the connect phase) and an ending that
// shows no session came of it (reset, closed, a proxy error status, cut
// within seconds of the welcome). Record sizes are read as flights (the
// records of one direction between turns), so a proxy that re-encrypts and
// splits each message into smaller records changes nothing.
//
// Attempts are then counted across flows per client, destination and proxy
// target; the third within the retry window raises the attempt signature.
// Repetition alone is never evidence: a browser retrying a failing site or
// a poller reconnecting every 15 s sends no SoftEther CONNECT, and a
// poller's sizes repeat where SoftEther pads each attempt at random, so
// attempts backed by sizes count only when their watermark sizes differ.
package attempt

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/detector/connectphase"
	"github.com/sewatch/sewatch/detector/tlsshape"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/tlshello"
	"github.com/sewatch/sewatch/internal/tlsstream"
)

// Name is the detector's registered name.
const Name = "attempt"

// Kind is the evidence kind of the attempt alert.
const Kind detector.Kind = "softether.connect-attempts"

const (
	// MinAttempts is how many failed attempts raise the alert.
	MinAttempts = 3
	// MaxGap is the longest pause between two attempts of one series:
	// RetryInterval's ceiling (300 s) plus a connect timeout.
	MaxGap = 330 * time.Second
	// cutAfter: a connection closed this soon after its welcome carried no
	// session (squid's 400 came 0.26 s after it in the lab).
	cutAfter = 5 * time.Second
	// maxConnect: a connection without a welcome that lasts longer than
	// this is not a connect attempt (SoftEther gives up on a silent proxy
	// or server well before).
	maxConnect = 90 * time.Second
	// minSpacing: closings closer than this are one event (a session's
	// legs torn down together), not separate attempts.
	minSpacing = 200 * time.Millisecond
	// legSeries: attempts without SoftEther's CONNECT request or
	// ClientHello count only this close to the one before (SoftEther
	// re-adds a leg every AdditionalConnectionInterval, 1 s).
	legSeries = 3 * time.Second
	// maxTracks bounds the cross-flow state.
	maxTracks = 16384
)

// Flight-size spans. A proxy that re-encrypts adds its own headers (Via,
// X-Forwarded-For) and 17-29 bytes per extra record, hence the wider tops.
var (
	watermarkFlight = connectphase.Watermark.Widen(0, 300)
	helloFlight     = connectphase.Hello.Widen(0, 400)
	loginFlight     = connectphase.Login.Widen(0, 300)
	welcomeFlight   = connectphase.Welcome.Widen(0, 400)
	addFlight       = connectphase.AddConnect.Widen(0, 300)
	addAnswerFlight = connectphase.AdminAnswer.Widen(0, 500)
	probeFlight     = connectphase.GetProbe.Widen(0, 300)
)

func init() { detector.Register(Name, func() detector.Detector { return New() }) }

// Detector counts SoftEther connect attempts across flows. Safe for
// concurrent use: the per-flow inspectors share its table.
type Detector struct {
	mu     sync.Mutex
	tracks map[trackKey]*track
	// targets interns the CONNECT requests' targets: every connection
	// through an HTTP proxy names one and the same hosts come back, so a
	// new connection's target is no new string. Emptied when full.
	targets map[string]string
}

// maxTargets bounds the interned CONNECT targets.
const maxTargets = 4096

// target returns b as a string, the same string for the same bytes while
// it is interned.
func (d *Detector) target(b []byte) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.targets[string(b)]; ok {
		return s
	}
	if d.targets == nil {
		d.targets = map[string]string{}
	}
	if len(d.targets) >= maxTargets {
		clear(d.targets)
	}
	s := string(b)
	d.targets[s] = s
	return s
}

// New returns a detector with empty state.
func New() *Detector { return &Detector{tracks: map[trackKey]*track{}} }

// Name implements detector.Detector.
func (*Detector) Name() string { return Name }

// NewInspector follows TCP flows whose client opens them as SoftEther's
// client does: TLS, or an HTTP CONNECT or SOCKS handshake before it.
func (d *Detector) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	if p.Proto != decode.ProtoTCP {
		return nil
	}
	if pl := p.Payload; len(pl) > 0 && (!toServer || detector.ProxyOpening(pl) == detector.ModeNone && !tlsstream.LooksLikeTLS(pl)) {
		return nil
	}
	in := pool.Get()
	in.d = d
	in.c.Collect = true
	in.c.SetBudget(f.Mem, &f.Reported)
	return in
}

// Inspectors come from a free list and go back when the flow ends, so a
// new flow allocates nothing for them once the list is warm.
var pool detector.FreeList[Inspector]

// Release returns the inspector to the free list; the engine calls it
// once, when the flow ends or Inspect returned false.
func (in *Inspector) Release() {
	in.c.Free()
	pool.Put(in)
}

// Connect-phase progress on one connection.
const (
	stageNone     = iota
	stageHello    // watermark upload answered by the hello
	stageLogin    // login sent, answer pending or short
	stageWelcome  // login answered by the welcome
	stageAddition // additional_connect answered
)

// Inspector follows one TCP connection.
type Inspector struct {
	d         *Detector
	first     bool
	prefix    detector.Mode // the proxy handshake the client opened with (detector.ProxyOpening)
	target    string        // the CONNECT request's host:port
	connectFP float32
	status    int // the proxy's answer to CONNECT
	c, s      tlsstream.Dir
	cliTLS    bool
	srvTLS    bool
	cliApp    bool
	chDone    bool
	profile   bool
	// The parsed hello (nil until parsed): its fingerprints are built
	// only for an attempt that is reported.
	ch *tlshello.ClientHello
	// chBody is the ClientHello kept unparsed in c's buffer (a position,
	// which reads nil once the buffer is freed or shed): a scan gives the
	// profile, the parse waits for an attempt that is reported.
	chBody  tlsstream.Msg
	fl      tlsstream.Flights
	stage   int
	at      int // index of the watermark flight
	wm, hl  int // watermark and hello flight bytes
	answer  int // size of the answer to the login / additional_connect
	stageAt time.Time
	segs    int
	up      bool // reported a welcome to the detector
	live    bool // a session's primary connection, past cutAfter
	done    bool
}

// Inspect implements detector.Inspector.
func (in *Inspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	if in.done {
		return false
	}
	if len(p.Payload) > 0 {
		in.segs++
		in.payload(p, toServer, f, s)
		if in.done {
			return false
		}
	}
	if p.TCPFlags&(decode.FlagRST|decode.FlagFIN) != 0 {
		if in.live {
			in.done = true
			in.d.down(in.key(f), f.ID)
			return false
		}
		in.end(p, toServer, f, s)
		return false
	}
	if in.live {
		return true // a session's connection: only its end matters
	}
	in.evaluate(false)
	if in.stage == stageWelcome && !in.up {
		// A login answered by the welcome: the session may live, and
		// while it does, its refused extra legs are not failed attempts.
		in.up = true
		in.d.upAt(in.key(f), f.ID, p.Time)
	}
	switch {
	case (in.stage == stageWelcome || in.stage == stageAddition) && p.Time.Sub(in.stageAt) > cutAfter:
		// The session got through (the verdict's business); a primary
		// connection is followed to its end so its legs are judged right.
		in.live = in.stage == stageWelcome
		in.done = !in.live
	case in.stage < stageWelcome && !f.Start.IsZero() && p.Time.Sub(f.Start) > maxConnect:
		in.done = true
	case in.stage == stageNone && in.connectFP == 0 && in.ordinary():
		in.done = true
	}
	return !in.done
}

// ordinary reports a connection whose first messages are no SoftEther
// connect phase: neither the GET probe nor the watermark comes first, or
// the probe is not followed by the watermark.
func (in *Inspector) ordinary() bool {
	n := in.fl.Closed()
	if in.segs > 24 || n >= 5 {
		return true
	}
	if n < 1 {
		return false
	}
	first := in.fl.At(0).Bytes
	if probeFlight.Has(first) {
		return n >= 3 && !watermarkFlight.Has(in.fl.At(2).Bytes)
	}
	return !watermarkFlight.Has(first)
}

func (in *Inspector) key(f *detector.Flow) trackKey {
	return trackKey{f.Client.Addr().Unmap(), f.Server.Addr().Unmap(), f.Server.Port(), in.target}
}

func (in *Inspector) payload(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) {
	pl := p.Payload
	if !in.first {
		if !toServer {
			in.done = true // a server that speaks first is not SoftEther's
			return
		}
		in.first = true
		in.prefix = detector.ProxyOpening(pl)
		switch {
		case tlsstream.LooksLikeTLS(pl):
		case in.prefix == detector.ModeHTTPProxy:
			switch kind, _ := tlsshape.ConnectFingerprint(pl); kind {
			case detector.KindHTTPConnectUA:
				in.connectFP = 0.6
			case detector.KindHTTPConnect:
				in.connectFP = 0.4
			}
			if sp := bytes.IndexByte(pl[8:], ' '); sp > 0 && sp < 260 {
				in.target = in.d.target(pl[8 : 8+sp])
			}
		case in.prefix != detector.ModeNone:
		default:
			in.done = true
			return
		}
	}
	if toServer {
		if !in.cliTLS {
			if !tlsstream.LooksLikeTLS(pl) {
				return
			}
			in.cliTLS = true
			in.c.Start(p.Seq, true)
		}
		in.c.Feed(p.Seq, pl, func(r tlsstream.Record) bool { return in.record(r, true, p.Time) })
		if !in.chDone {
			in.clientHello()
		}
		return
	}
	if !in.srvTLS {
		if !in.cliTLS {
			if in.prefix == detector.ModeHTTPProxy && in.status == 0 {
				in.status = proxyStatus(pl)
				if in.status >= 300 {
					in.count(p, f, s, fmt.Sprintf("proxy answered CONNECT %s with HTTP %d", in.target, in.status))
				}
			}
			return
		}
		if !tlsstream.LooksLikeRecord(pl) {
			return
		}
		in.srvTLS = true
		in.s.Start(p.Seq, true)
	}
	in.s.Feed(p.Seq, pl, func(r tlsstream.Record) bool { return in.record(r, false, p.Time) })
}

// proxyStatus reads the status code of an HTTP answer, 0 if there is none.
func proxyStatus(b []byte) int {
	if !bytes.HasPrefix(b, []byte("HTTP/1.")) || len(b) < 12 || b[8] != ' ' {
		return 0
	}
	n, err := strconv.Atoi(string(b[9:12]))
	if err != nil {
		return 0
	}
	return n
}

// record adds one application-data record to the flights. The TLS 1.3
// server's encrypted handshake flight (before the client's first
// application data), the client's Finished (a short first record) and
// the short session tickets that open a server flight are not messages.
// A proxy rewriting the answers' HTTP headers (Via) adds up to ~150 bytes.
func (in *Inspector) record(r tlsstream.Record, toServer bool, t time.Time) bool {
	// Records under 32 bytes are no message: TLS 1.3 sends its alerts
	// (close_notify, 19 bytes) as application data.
	if r.Type != tlsstream.TypeApplicationData || r.Length < 32 {
		return true
	}
	if toServer {
		if !in.cliApp && r.Length < 100 {
			in.cliApp = true
			return true
		}
		in.cliApp = true
	} else {
		if !in.cliApp || in.fl.Len() == 0 {
			return true // the server never speaks first in the connect phase
		}
		if r.Length < 200 && (in.fl.Len() == 0 || in.fl.At(in.fl.Len()-1).ToServer) {
			return true
		}
	}
	in.fl.Add(toServer, r.Length, t)
	return true
}

func (in *Inspector) clientHello() {
	if in.c.HandshakeBroken() {
		in.chDone, in.c.Collect = true, false
		in.c.Free()
		return
	}
	m, body := in.c.Message(tlshello.TypeClientHello)
	if body == nil {
		return
	}
	in.chDone = true
	if sc, err := tlshello.ScanClientHello(body); err == nil {
		if sc.ALPN || !sc.OpenSSLOrder {
			// SoftEther's client never offers ALPN (neither source tree
			// sets it), nor did squid's own leg to the server when it
			// bumped one. A client that does is a web or API client, and
			// its request/answer pairs fall in the connect phase's size
			// windows often enough (two requests per connection, repeated
			// by a script) to make a series. SoftEther's client and
			// squid are both OpenSSL's: a hello whose extensions are not
			// in OpenSSL's order (GnuTLS, Java, SChannel) is neither.
			in.done = true
		} else {
			in.profile = sc.OpenSSLNoALPN()
			in.chBody = m
		}
	}
	in.c.Collect = false
	if in.chBody.IsZero() {
		in.c.Free()
	}
}

// tlsInfo turns the kept hello into the alert's TLS info (nil without one).
func (in *Inspector) tlsInfo() *detector.TLSInfo {
	if !in.chBody.IsZero() {
		// Unless the budget shed the buffer (it may hold another flow's
		// handshake now).
		if body := in.c.Bytes(in.chBody); body != nil && !in.c.Shed {
			ch, _ := tlshello.ParseClientHello(body) // succeeds as the scan did
			in.ch = &ch
		}
		in.chBody = tlsstream.Msg{}
		in.c.Free()
	}
	if in.ch == nil {
		return nil
	}
	info := &detector.TLSInfo{}
	info.SetClientHello(in.ch)
	return info
}

// evaluate walks the flights through SoftEther's connect phase. With
// final set the connection has ended and its last flight is complete too.
func (in *Inspector) evaluate(final bool) {
	n := in.fl.Closed()
	if final {
		n = in.fl.Len()
	}
	at := func(i int, toServer bool, sp connectphase.Span) bool {
		return i < n && in.fl.At(i).ToServer == toServer && sp.Has(in.fl.At(i).Bytes)
	}
	if in.stage == stageNone {
		i := 0
		// The 4.x/5.01 GET probe and its 403 (or 202) page come first.
		if at(0, true, probeFlight) && n >= 2 && !in.fl.At(1).ToServer && in.fl.At(1).Bytes < 2400 {
			i = 2
		}
		if !at(i, true, watermarkFlight) || !at(i+1, false, helloFlight) {
			return
		}
		in.stage, in.at, in.wm, in.hl = stageHello, i, in.fl.At(i).Bytes, in.fl.At(i+1).Bytes
	}
	i := in.at + 2
	if in.stage == stageHello {
		switch {
		case at(i, true, loginFlight):
			in.stage = stageLogin
		case at(i, true, addFlight) && at(i+1, false, addAnswerFlight):
			in.stage, in.answer, in.stageAt = stageAddition, in.fl.At(i+1).Bytes, in.fl.At(i+1).Last
			return
		default:
			return
		}
	}
	if in.stage == stageLogin && i+1 < n && !in.fl.At(i+1).ToServer {
		in.answer = in.fl.At(i + 1).Bytes
		if welcomeFlight.Has(in.answer) {
			in.stage, in.stageAt = stageWelcome, in.fl.At(i+1).Last
		}
	}
}

// isSoftEther says whether anything makes this connection SoftEther's.
func (in *Inspector) isSoftEther() bool {
	if in.stage < stageHello {
		return in.connectFP >= 0.6
	}
	switch {
	case in.stage == stageWelcome || in.stage == stageAddition:
		// Four messages in SoftEther's order: enough without SoftEther's
		// ClientHello, which the proxy's own leg to the server lacks.
	case in.stage == stageLogin && in.profile:
		// Three messages (the login refused or unanswered) and
		// SoftEther's ClientHello.
	case in.connectFP > 0:
		// The watermark and hello behind SoftEther's CONNECT. Alone, two
		// messages of these sizes are what an API poller sends.
	default:
		return false
	}
	return true
}

// softether says what makes this connection SoftEther's, "" if nothing
// does. Built only for a connection that is (most end without).
func (in *Inspector) softether() string {
	if !in.isSoftEther() {
		return ""
	}
	var why []string
	if in.connectFP >= 0.6 {
		why = append(why, "SoftEther's CONNECT request (HTTP/1.0, sorted headers, Firefox/29 WOW64 User-Agent)")
	}
	if in.stage < stageHello {
		return strings.Join(why, "; ")
	}
	sizes := fmt.Sprintf("watermark flight %d B answered by hello %d B", in.wm, in.fl.At(in.at+1).Bytes)
	if in.stage >= stageLogin {
		sizes += ", then " + in.phase()
	}
	why = append(why, sizes)
	if in.profile {
		why = append(why, "ClientHello without ALPN or session ticket")
	}
	return strings.Join(why, "; ")
}

func (in *Inspector) phase() string {
	lg := in.fl.At(in.at + 2).Bytes
	switch in.stage {
	case stageWelcome:
		return fmt.Sprintf("login %d B answered by welcome %d B", lg, in.answer)
	case stageAddition:
		return fmt.Sprintf("additional_connect %d B answered by %d B", lg, in.answer)
	case stageLogin:
		if in.answer > 0 {
			return fmt.Sprintf("login %d B answered by %d B only (refused)", lg, in.answer)
		}
		return fmt.Sprintf("login %d B unanswered", lg)
	}
	return ""
}

// end judges the connection when either side resets or closes it.
func (in *Inspector) end(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) {
	if in.done {
		return
	}
	in.done = true
	in.evaluate(true)
	if in.stage == stageWelcome {
		in.up = true
	}
	defer in.d.down(in.key(f), f.ID)
	if !in.isSoftEther() {
		return // the reasons below are worded only for SoftEther's connections
	}
	who := "server"
	if in.prefix != "" {
		who = "proxy"
	}
	if toServer {
		who = "client"
	}
	how := "closed"
	if p.TCPFlags&decode.FlagRST != 0 {
		how = "reset"
	}
	var why string
	switch in.stage {
	case stageWelcome, stageAddition:
		cut := p.Time.Sub(in.stageAt)
		if cut > cutAfter {
			return
		}
		// After a broken welcome there is at most the client's first tunnel
		// data and the proxy's error; a refused additional_connect is
		// closed at once. An admin session (vpncmd: the GET probe, then
		// an additional_connect-sized login) goes on with its commands.
		after := in.fl.Len() - (in.at + 4)
		if after > 2 || (in.stage == stageAddition && in.at > 0) {
			return
		}
		msg := "the welcome"
		if in.stage == stageAddition {
			msg = "the additional_connect answer"
		}
		why = fmt.Sprintf("%s by the %s %.2f s after %s", how, who, cut.Seconds(), msg)
	case stageLogin:
		why = fmt.Sprintf("%s by the %s after the login", how, who)
		if in.answer > 0 {
			why = fmt.Sprintf("login refused (answer %d B), then %s by the %s", in.answer, how, who)
		}
	case stageHello:
		why = fmt.Sprintf("%s by the %s after the hello", how, who)
	default:
		if in.cliTLS {
			why = fmt.Sprintf("%s by the %s during TLS setup", how, who)
		} else if in.status == 0 {
			why = fmt.Sprintf("CONNECT unanswered, %s by the %s", how, who)
		} else {
			why = fmt.Sprintf("%s by the %s", how, who)
		}
	}
	if !f.Start.IsZero() && p.Time.Sub(f.Start) > maxConnect && in.stage < stageWelcome {
		return
	}
	in.count(p, f, s, why)
}

// count files one failed attempt when the connection shows it was
// SoftEther's, and reports the series once it is long enough.
func (in *Inspector) count(p *decode.Packet, f *detector.Flow, s detector.Sink, why string) {
	in.done = true
	se := in.softether()
	if se == "" {
		return
	}
	a := attemptInfo{t: p.Time, why: why, evidence: se, wm: in.wm, hl: in.hl, fp: in.connectFP >= 0.6, profile: in.profile, stage: in.stage, flow: f.ID}
	detail, ok := in.d.add(in.key(f), a)
	if !ok {
		return
	}
	mode := in.prefix
	if mode == detector.ModeNone {
		mode = detector.ModeDirect
	}
	s.Report(detector.Evidence{
		Kind: Kind, Detail: detail, Weight: 0.8, Mode: mode,
		Signature: detector.SIDAttempts, Client: f.Client.Addr(), Server: f.Server.Addr(),
		Flow: *f, TLS: in.tlsInfo(), Time: p.Time, PcapCnt: p.Index,
	})
}

type trackKey struct {
	client, server netip.Addr
	port           uint16
	target         string
}

type attemptInfo struct {
	t        time.Time
	why      string
	evidence string
	wm, hl   int // watermark and hello flight bytes
	fp       bool
	profile  bool // SoftEther's ClientHello (no ALPN, no ticket, OpenSSL's suites)
	stage    int
	flow     int64
}

// track is one client's series of attempts toward one destination.
type track struct {
	first, last time.Time
	n           int        // attempts that count
	sizes       [16][2]int // watermark and hello flights of the size-backed attempts
	nsizes      int
	lastWhy     string
	lastEv      string
	// live: connections of this pair whose login was answered by the
	// welcome and that have not ended, with the welcome's time.
	live map[int64]time.Time
}

// maxLive bounds a track's live connections; liveFor is how long a
// connection whose end the tap never saw counts as live.
const (
	maxLive = 64
	liveFor = time.Hour
)

// liveOther reports a live session connection other than flow at t.
func (tr *track) liveOther(flow int64, t time.Time) bool {
	for id, since := range tr.live {
		if id != flow && t.Sub(since) < liveFor {
			return true
		}
	}
	return false
}

// get returns the track for k at t, creating it (nil when the table is full).
func (d *Detector) get(k trackKey, t time.Time) *track {
	tr := d.tracks[k]
	if tr != nil && t.Sub(tr.last) > MaxGap && tr.n > 0 {
		// A new series: the old one's attempts no longer count.
		tr.n, tr.nsizes, tr.first = 0, 0, t
	}
	if tr == nil {
		if len(d.tracks) >= maxTracks {
			d.expire(t)
			if len(d.tracks) >= maxTracks {
				return nil
			}
		}
		tr = &track{first: t, last: t}
		d.tracks[k] = tr
	}
	return tr
}

// upAt notes a connection whose login was answered by the welcome.
func (d *Detector) upAt(k trackKey, flow int64, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tr := d.get(k, t)
	if tr == nil {
		return
	}
	if tr.live == nil {
		tr.live = map[int64]time.Time{}
	}
	if len(tr.live) < maxLive {
		tr.live[flow] = t
	}
}

// down forgets a connection that ended.
func (d *Detector) down(k trackKey, flow int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if tr := d.tracks[k]; tr != nil {
		delete(tr.live, flow)
	}
}

// add files an attempt and returns the alert detail when the series is
// long enough.
func (d *Detector) add(k trackKey, a attemptInfo) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tr := d.get(k, a.t)
	if tr == nil {
		return "", false
	}
	// A refused extra leg while the session's primary connection lives
	// is not a failed attempt: the session is up.
	if a.stage == stageAddition && tr.liveOther(a.flow, a.t) {
		return "", false
	}
	if a.t.Sub(tr.last) < minSpacing && tr.n > 0 {
		return "", false
	}
	if !a.fp && !a.profile && tr.n > 0 && a.t.Sub(tr.last) > legSeries {
		// Four messages in SoftEther's order under another ClientHello (a
		// bumping proxy's own leg to the server) count only in a fast
		// series: the client re-adds a leg every second while the proxy
		// cuts each one. At a retry interval's pace, a non-ALPN API client
		// making two requests per connection looks the same.
		return "", false
	}
	// Sizes alone count only when both sides' differ: SoftEther pads
	// every watermark and every hello at random, a poller repeats its
	// request, and a server answers requests of other sizes (an API
	// client's) with the same response.
	if !a.fp {
		for _, w := range tr.sizes[:tr.nsizes] {
			if w[0] == a.wm || w[1] == a.hl {
				return "", false
			}
		}
		if tr.nsizes < len(tr.sizes) {
			tr.sizes[tr.nsizes] = [2]int{a.wm, a.hl}
			tr.nsizes++
		}
	}
	if tr.n == 0 {
		tr.first = a.t
	}
	tr.n++
	tr.last = a.t
	tr.lastWhy, tr.lastEv = a.why, a.evidence
	if tr.n < MinAttempts {
		return "", false
	}
	dest := k.server.String() + ":" + strconv.Itoa(int(k.port))
	if k.target != "" {
		dest += " (CONNECT " + k.target + ")"
	}
	return fmt.Sprintf("%d SoftEther connect attempts from %s to %s in %.1f s without a session; last: %s; evidence: %s",
		tr.n, k.client, dest, a.t.Sub(tr.first).Seconds(), a.why, a.evidence), true
}

// expire drops series that ended more than MaxGap before now.
func (d *Detector) expire(now time.Time) {
	for k, tr := range d.tracks {
		if now.Sub(tr.last) > MaxGap && !tr.liveOther(0, now) {
			delete(d.tracks, k)
		}
	}
}

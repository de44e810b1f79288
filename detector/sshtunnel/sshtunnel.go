// Package sshtunnel recognises a SoftEther session carried through an SSH
// port forward (ssh -L, ssh -D) when only the SSH connection crosses the
// tap. SSH encrypts everything after key exchange, and with
// chacha20-poly1305 even its packet lengths, so what is left is the size of
// each write: a forwarded TLS record arrives as one SSH channel-data packet
// whose size is the record's plus 39-105 bytes of SSH framing (5 B TLS
// header, 9 B channel-data header, 4-19 B padding, 16-64 B MAC, 4 B length).
//
// A SoftEther client opening a connection through the forward shows, inside
// one SSH connection and within seconds: a ClientHello-sized write, a
// server-flight-sized answer, then SoftEther's connect phase, a 1.5-3.8 KB
// upload (the watermark POST) answered by a hello PACK, a 2.4-6.8 KB
// upload (the login PACK) answered by a 1.8-4.8 KB welcome (sizes from
// SoftEther's message builders, package connectphase). Ordinary use of
// SSH (shells, scp, forwarded web browsing) does not upload kilobytes twice
// right after a forwarded TLS handshake, each answered by that much, and
// then keep both directions busy the way a new tunnel does (its virtual
// NIC's DHCP, ARP and IPv6 chatter). An HTTP/1.1 client sending two
// kilobyte-sized requests (large cookies) can match the connect phase by
// itself, so one connect phase alone never alerts: it needs the data phase
// after it or a second connect phase (the session's additional connection,
// a reconnect) in the same SSH connection. The evidence is weaker than the
// direct TLS shape, and the alert's confidence says so.
//
// A capture that joins an established SSH connection sees no
// identification strings; such a flow is taken as SSH when its write sizes
// fit SSH framing. An idle tunnel shows its rhythm (idle.go), which counts
// beside a connect phase only: alone it is what a chat looks like.
package sshtunnel

import (
	"bytes"
	"fmt"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/detector/connectphase"
	"github.com/sewatch/sewatch/internal/decode"
)

// Name is the detector's registered name.
const Name = "sshtunnel"

// Evidence kinds.
const (
	// KindDataPhase: right after the welcome, both sides kept sending
	// (the virtual NIC's first frames: DHCP, ARP, IPv6 neighbour
	// discovery), as a tunnel does and a finished HTTP exchange does not.
	// A web page's subresources fetched through the forward do the same,
	// so it only adds to its own connection's reading (a corroborator):
	// one SSH connection's connect phase and the data after it are never
	// an alert without a second leg or the idle rhythm.
	KindDataPhase = detector.KindSSHDataPhase
	// KindShape: SoftEther's connect phase (watermark, hello, login,
	// welcome or additional_connect/admin) inside the SSH connection.
	KindShape = detector.KindSSHShape
	// KindRepeat: a second SoftEther connect phase in the same SSH
	// connection (the session's additional connection or a reconnect).
	KindRepeat = detector.KindSSHRepeat
)

// repeatWindow: the second connect phase must follow the one before within
// this. SoftEther adds its next leg about 1 s after the first
// (AdditionalConnectionInterval) and retries a lost session after
// RetryInterval (15 s by default); a forward that carries web browsing for
// hours would otherwise collect two chance matches of the connect-phase
// sizes sooner or later.
const repeatWindow = time.Minute

// Mode is the transport the evidence names.
const Mode = detector.ModeSSH

func init() { detector.Register(Name, func() detector.Detector { return Detector{} }) }

// Detector is the SSH-leg detector.
type Detector struct{}

// Name implements detector.Detector.
func (Detector) Name() string { return Name }

// NewInspector follows TCP flows; the inspector gives up on a flow that
// neither opens with SSH identification strings nor, joined mid-session,
// has SSH-sized writes.
func (Detector) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	if p.Proto != decode.ProtoTCP {
		return nil
	}
	if pl := p.Payload; len(pl) > 0 && !sshIdent(pl) && (f.SYNSeen || tlsOrText(pl)) {
		return nil // the first payload is what Inspect would give up on
	}
	return newInspector()
}

const (
	ovLo = 39  // 5 TLS + 9 channel data + 4 length + 1 pad length + 4 padding + 16 MAC
	ovHi = 105 // up to 19 B padding and a 64 B MAC (hmac-sha2-512), one more TLS header

	// small writes are SSH's own chatter (window adjusts, keep-alives),
	// TLS tickets and SoftEther's data-phase keep-alives: not steps.
	small = 200
	// stepGap bounds the time between two steps of one connect phase.
	stepGap = 3 * time.Second
	// The data phase after a welcome: it starts within dataStart (the
	// virtual NIC comes up at once; an HTTP client closes its channel or
	// waits for its next request) and holds at least dataWrites writes of
	// dataMin bytes or more each way within dataWindow.
	dataStart  = 500 * time.Millisecond
	dataWindow = 2 * time.Second
	dataWrites = 3
	dataMin    = 100
	// writeGap ends a write whose last segment never came.
	writeGap = 300 * time.Millisecond
	pshFlag  = 0x08
)

// SoftEther's connect-phase record sizes (package connectphase), widened
// by SSH framing. The ClientHello and server flight are what any TLS stack
// sends; SoftEther's (OpenSSL, no ALPN, a self-signed certificate) fall well
// inside.
var (
	clientHello = connectphase.Span{Lo: 200, Hi: 700}.Widen(ovLo, ovHi)
	serverFlght = connectphase.Span{Lo: 700, Hi: 8000}
	getProbe    = connectphase.GetProbe.Widen(ovLo, ovHi)
	page403     = connectphase.Page403.Widen(ovLo, ovHi)
	page202     = connectphase.Page202.Widen(ovLo, ovHi)
	// The client's Finished may share the watermark's write (+6-80 B).
	watermark   = connectphase.Watermark.Widen(ovLo, ovHi+80)
	hello       = connectphase.Hello.Widen(ovLo, ovHi)
	login       = connectphase.Login.Widen(ovLo, ovHi)
	welcome     = connectphase.Welcome.Widen(ovLo, ovHi)
	addConnect  = connectphase.AddConnect.Widen(ovLo, ovHi)
	addResponse = connectphase.AddResponse.Widen(ovLo, ovHi)
	adminAnswer = connectphase.AdminAnswer.Widen(ovLo, ovHi)
)

// Connect-phase steps.
const (
	stIdle      = iota
	stHello     // ClientHello seen, waiting for the server flight
	stHandshake // handshake done, waiting for the GET probe or the watermark
	stProbe     // GET probe sent, waiting for the 403/202 page
	stWatermark // watermark sent, waiting for the hello PACK
	stHelloPack // hello received, waiting for login or additional_connect
	stLogin     // login sent, waiting for the welcome
	stAddConn   // additional_connect/admin login sent, waiting for the answer
)

// Inspector follows one TCP flow.
type Inspector struct {
	checked [2]bool
	next    [2]uint32
	cur     [2]int32
	curLast [2]time.Time
	maxSeg  [2]int32

	st      int
	stepAt  time.Time
	sizes   [8]int32
	nsizes  int
	probe   bool
	chains  int
	firstAt time.Time
	// This connect phase's watermark, login (or additional_connect) and
	// hello write sizes, and the first's.
	wm, lg, hl int32
	first      [3]int32

	finished bool

	// Joined mid-session: no identification strings, SSH proven by sizes.
	mid, sshProven    bool
	midWrites, midFit int

	idle idle

	dataUntil time.Time // following the data phase after a welcome until then
	dataFrom  time.Time // the welcome
	dataN     [2]int
	dataDone  bool
}

// sshIdent: an SSH-2 identification string.
func sshIdent(pl []byte) bool {
	return bytes.HasPrefix(pl, []byte("SSH-2.0-")) || bytes.HasPrefix(pl, []byte("SSH-1.99-"))
}

// Inspect implements detector.Inspector.
func (in *Inspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	if in.finished {
		return false
	}
	pl := p.Payload
	if len(pl) == 0 {
		return true
	}
	d := 0
	if !toServer {
		d = 1
	}
	if !in.checked[d] {
		in.checked[d] = true
		switch {
		case sshIdent(pl):
			in.next[d] = p.Seq + uint32(len(pl))
			return true
		case !f.SYNSeen && (in.mid || !in.checked[1-d]) && !tlsOrText(pl):
			// Joined an established connection: SSH until its packet
			// sizes say otherwise.
			in.mid = true
			in.next[d] = p.Seq
		default:
			in.finished = true
			return false
		}
	}
	if !in.mid && !in.checked[1-d] {
		return true // the peer's identification must come first
	}
	// Skip retransmitted and overlapping segments.
	if int32(p.Seq-in.next[d]) < 0 {
		return true
	}
	in.next[d] = p.Seq + uint32(len(pl))
	if in.cur[d] > 0 && p.Time.Sub(in.curLast[d]) > writeGap {
		in.write(d, in.cur[d], in.curLast[d], p, f, s)
		in.cur[d] = 0
	}
	n := int32(len(pl))
	in.cur[d] += n
	in.curLast[d] = p.Time
	if n > in.maxSeg[d] {
		in.maxSeg[d] = n
	}
	// A write ends with PSH (Linux sets it on a send's last segment) or
	// with a segment shorter than the largest seen.
	if p.TCPFlags&pshFlag == 0 && n >= in.maxSeg[d] {
		return true
	}
	w := in.cur[d]
	in.cur[d] = 0
	if in.mid && !in.sshSized(w) {
		in.finished = true
		return false
	}
	in.write(d, w, p.Time, p, f, s)
	return !in.finished
}

// sshSized follows a mid-session flow's write sizes. With the ciphers
// OpenSSH offers first (chacha20-poly1305, AES-GCM, the -etm MACs,
// hmac-sha1) a packet is 4 bytes of length, a multiple of 8 or 16, and a
// 16/20/32-byte tag: 4 modulo 8. Writes of two packets break it, so 80 %
// of the first writes must fit, and the flow is SSH from the sixth on.
func (in *Inspector) sshSized(w int32) bool {
	if in.sshProven {
		return true
	}
	in.midWrites++
	if w%8 == 4 {
		in.midFit++
	}
	if in.midFit >= 6 && in.midFit*10 >= in.midWrites*8 {
		in.sshProven = true
	}
	misfit := in.midWrites - in.midFit
	return in.sshProven || in.midWrites < 16 && misfit*5 <= in.midWrites+2
}

// tlsOrText: a segment that starts a TLS record or reads as text is not
// the middle of an SSH connection.
func tlsOrText(b []byte) bool {
	if len(b) >= 3 && b[0] >= 20 && b[0] <= 23 && b[1] == 3 {
		return true
	}
	text := 0
	for _, c := range b[:min(len(b), 32)] {
		if c >= 0x20 && c < 0x7f || c == '\r' || c == '\n' {
			text++
		}
	}
	return len(b) >= 8 && text*10 >= min(len(b), 32)*9
}

// write advances the connect-phase matcher by one complete write.
func (in *Inspector) write(d int, n int32, at time.Time, p *decode.Packet, f *detector.Flow, s detector.Sink) {
	if !in.dataUntil.IsZero() {
		in.dataPhase(d, n, at, p, f, s)
	}
	if !in.mid || in.sshProven {
		in.idleWrite(d, n, at, p, f, s)
	}
	if in.st != stIdle && at.Sub(in.stepAt) > stepGap {
		in.reset()
	}
	client := d == 0
	switch in.st {
	case stIdle:
		in.start(client, n, at)
	case stHello:
		switch {
		case !client && serverFlght.Has(int(n)):
			in.step(stHandshake, n, at)
		case client && n >= small:
			in.restart(client, n, at)
		case !client && n >= small:
			in.reset()
		}
	case stHandshake:
		switch {
		case client && getProbe.Has(int(n)):
			in.probe = true
			in.step(stProbe, n, at)
		case client && watermark.Has(int(n)):
			in.wm = n
			in.step(stWatermark, n, at)
		case client && n >= small:
			in.restart(client, n, at)
		}
		// Server writes here are TLS 1.3 tickets; they do not move the phase.
	case stProbe:
		switch {
		case !client && (page403.Has(int(n)) || page202.Has(int(n))):
			in.step(stHandshake, n, at)
		case n >= small:
			in.restart(client, n, at)
		}
	case stWatermark:
		switch {
		case !client && hello.Has(int(n)):
			in.hl = n
			in.step(stHelloPack, n, at)
		case !client && int(n) < hello.Lo:
			// tickets that crossed the watermark
		case n >= small:
			in.restart(client, n, at)
		}
	case stHelloPack:
		switch {
		case client && login.Has(int(n)):
			in.lg = n
			in.step(stLogin, n, at)
		case client && addConnect.Has(int(n)):
			in.lg = n
			in.step(stAddConn, n, at)
		case n >= small:
			in.restart(client, n, at)
		}
	case stLogin:
		switch {
		case !client && welcome.Has(int(n)):
			in.step(stIdle, n, at)
			in.found("login", p, f, s)
			if !in.dataDone {
				in.dataFrom, in.dataUntil, in.dataN = at, at.Add(dataWindow), [2]int{}
			}
		case n >= small:
			in.restart(client, n, at)
		}
	case stAddConn:
		switch {
		case !client && adminAnswer.Has(int(n)):
			in.step(stIdle, n, at)
			kind := "additional_connect"
			if in.probe || !addResponse.Has(int(n)) {
				kind = "admin login"
			}
			in.found(kind, p, f, s)
		case n >= small:
			in.restart(client, n, at)
		}
	}
}

// restart abandons the phase; the write may begin a new one.
func (in *Inspector) restart(client bool, n int32, at time.Time) {
	in.reset()
	in.start(client, n, at)
}

func (in *Inspector) start(client bool, n int32, at time.Time) {
	if client && clientHello.Has(int(n)) {
		in.step(stHello, n, at)
	}
}

func (in *Inspector) step(st int, n int32, at time.Time) {
	in.st, in.stepAt = st, at
	if in.nsizes < len(in.sizes) {
		in.sizes[in.nsizes] = n
		in.nsizes++
	}
}

func (in *Inspector) reset() {
	in.st, in.nsizes, in.probe = stIdle, 0, false
}

// near: sizes within 32 B (SSH padding and MAC choice aside, the same).
func near(a, b int32) bool { return a-b <= 32 && b-a <= 32 }

// dataPhase counts the writes that follow a welcome.
func (in *Inspector) dataPhase(d int, n int32, at time.Time, p *decode.Packet, f *detector.Flow, s detector.Sink) {
	if at.After(in.dataUntil) {
		in.dataUntil = time.Time{}
		return
	}
	if n < dataMin {
		return
	}
	if in.dataN == [2]int{} && at.Sub(in.dataFrom) > dataStart {
		in.dataUntil = time.Time{}
		return
	}
	in.dataN[d]++
	if in.dataN[0] >= dataWrites && in.dataN[1] >= dataWrites {
		in.dataUntil, in.dataDone = time.Time{}, true
		s.Report(in.evidence(p, f, KindDataPhase,
			fmt.Sprintf("both sides kept sending right after the welcome (%d and %d writes of %d+ B within %v)",
				in.dataN[0], in.dataN[1], dataMin, dataWindow), Mode))
		in.finished = in.chains >= 2
	}
}

// found reports a complete tunnelled connect phase.
func (in *Inspector) found(what string, p *decode.Packet, f *detector.Flow, s detector.Sink) {
	if in.mid && !in.sshProven {
		in.reset()
		return
	}
	if in.chains == 1 && (near(in.wm, in.first[0]) && near(in.lg, in.first[1]) || in.hl == in.first[2]) {
		// One side's half of the exchange again: a client repeating its
		// requests, or a server giving the same answer to requests of other
		// sizes (an API client posting batches through the forward).
		// SoftEther pads the client's watermark (0-1999 B) and the server's
		// hello (0-999 B) at random on every connection, so its connect
		// phases repeat neither (SSH rounds a write to 8 bytes: the same
		// hello write in about 1 in 125 pairs, after which the next leg or
		// reconnect is compared with the first again).
		in.reset()
		return
	}
	if in.chains == 1 && p.Time.Sub(in.firstAt) > repeatWindow {
		// Too late to be the same session's next leg: this one is the
		// connect phase a later one must follow.
		in.firstAt, in.first = p.Time, [3]int32{in.wm, in.lg, in.hl}
		in.reset()
		return
	}
	in.chains++
	sizes := fmt.Sprint(in.sizes[:in.nsizes])
	if in.mid {
		sizes += " (joined an established SSH connection, recognised by its packet sizes)"
	}
	mode := Mode
	if what == "admin login" {
		mode = detector.ModeAdmin
	}
	switch in.chains {
	case 1:
		in.firstAt, in.first = p.Time, [3]int32{in.wm, in.lg, in.hl}
		kind := KindShape
		if in.probe {
			kind = detector.KindSSHShapeProbe
		}
		if what == "additional_connect" {
			kind = detector.KindSSHAdditional // without its primary connection: less sure
		}
		s.Report(in.evidence(p, f, kind,
			fmt.Sprintf("SSH writes %s: TLS handshake, then SoftEther's watermark, hello and %s inside the SSH connection", sizes, what), mode))
	case 2:
		s.Report(in.evidence(p, f, KindRepeat,
			fmt.Sprintf("second tunnelled connect phase (%s) %.1f s after the first, SSH writes %s", what, p.Time.Sub(in.firstAt).Seconds(), sizes), mode))
	}
	in.finished = in.chains >= 2 && in.dataDone
	in.reset()
}

func (in *Inspector) evidence(p *decode.Packet, f *detector.Flow, kind detector.Kind, detail string, mode detector.Mode) detector.Evidence {
	return detector.Evidence{
		Kind: kind, Detail: detail, Mode: mode,
		Client: f.Client.Addr(), Server: f.Server.Addr(), Flow: *f,
		Time: p.Time, PcapCnt: p.Index,
	}
}

// Inspectors come from a pool and go back when the flow ends (Release), so
// a new flow allocates nothing once the pool is warm.
var pool detector.FreeList[Inspector]

func newInspector() *Inspector {
	in := pool.Get()
	return in
}

// Release returns the inspector to the pool; the engine calls it once, when
// the flow ends or Inspect returned false.
func (in *Inspector) Release() { pool.Put(in) }

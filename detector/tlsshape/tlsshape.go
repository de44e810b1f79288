// Package tlsshape recognises a SoftEther VPN connection inside TLS by the
// sizes of the first application-data records, which SoftEther's own
// protocol fixes: an optional "GET / + X-VPN" probe answered by a 403 page
// (5.01/4.x builds), the upload of a 1411-byte GIF watermark plus 0-1999
// random bytes, the server's hello PACK, then either the login (2.4-6.5 KB)
// answered by the welcome PACK (primary connection) or the short
// additional_connect exchange (the parallel connections a session adds
// about one second later). It also reads the ClientHello (no ALPN, no
// session ticket, SNI that is an IP literal or carries the "/tcp" hint),
// the certificate when TLS <= 1.2 shows it, and whatever cleartext came
// before TLS (an HTTP CONNECT or a SOCKS handshake) to name the mode.
//
// Sizes are checked as ranges wide enough for TLS 1.3 and TLS 1.2 with
// AEAD or CBC record overhead and IPv6 or hostname Host headers; ports are
// never used.
package tlsshape

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/detector/connectphase"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/tlshello"
	"github.com/sewatch/sewatch/internal/tlsstream"
)

// Name is the detector's registered name.
const Name = "tlsshape"

func init() { detector.Register(Name, func() detector.Detector { return Detector{} }) }

// Detector is the SoftEther TLS session-shape detector.
type Detector struct{}

// Name implements detector.Detector.
func (Detector) Name() string { return Name }

// NewInspector follows TCP flows. A first payload from the server does
// not rule TLS out: junk in a SYN-ACK (padding a broken tap counts into
// the IP length) comes before the client's ClientHello.
func (Detector) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	if p.Proto != decode.ProtoTCP {
		return nil
	}
	in := pool.Get()
	in.c.Collect, in.s.Collect = true, true
	in.c.SetBudget(f.Mem, &f.Reported)
	in.s.SetBudget(f.Mem, &f.Reported)
	return in
}

// Inspectors come from a pool and go back when the flow ends (Release), so
// a new flow allocates nothing for them once the pool is warm.
var pool detector.FreeList[Inspector]

// Release returns the inspector to the pool; the engine calls it once, when
// the flow ends or Inspect returned false.
func (in *Inspector) Release() {
	in.c.Free()
	in.s.Free()
	pool.Put(in)
}

// Connect-phase record sizes, shared with the other detectors that look for
// SoftEther's connect phase.
var (
	getProbe    = connectphase.GetProbe
	page403     = connectphase.Page403
	page202     = connectphase.Page202
	watermark   = connectphase.Watermark
	hello       = connectphase.Hello
	login       = connectphase.Login
	welcome     = connectphase.Welcome
	addConnect  = connectphase.AddConnect
	addResponse = connectphase.AddResponse
	adminAnswer = connectphase.AdminAnswer
)

// Inspector follows one TCP flow.
type Inspector struct {
	c, s      tlsstream.Dir
	prefix    detector.Mode // ModeHTTPProxy, ModeSOCKS5, ModeSOCKS4, "other" or none
	firstSeen bool
	segs      int
	cliTLS    bool
	srvTLS    bool
	tls13     bool
	cliCCS    bool
	cliFin    bool
	chDone    bool
	shDone    bool
	certDone  bool
	midstream bool
	cApp      [6]int32
	sApp      [8]int32
	nc, ns    int
	level     int // 0 none, 1 partial, 2 full, 3 additional
	info      *detector.TLSInfo
	// The parsed hellos (nil until parsed), turned into fingerprints
	// (strings) only when evidence first needs them: most TLS flows never
	// report. Pointers: the inspector of every TLS flow stays small.
	ch *tlshello.ClientHello
	sh *tlshello.ServerHello
	// certBody is the server's Certificate message, kept in the handshake
	// buffer (a position in s, which reads nil once the buffer is freed or
	// shed: it may hold another flow's handshake then) until the TLS info
	// is built or the connect phase is over: a certificate is parsed only
	// for a flow that reports evidence, or when it has the shape of
	// SoftEther's default certificate.
	certBody tlsstream.Msg
	// chBody and shBody are the hellos, kept unparsed the same way: a
	// zero-allocation scan decides whether the ClientHello gives evidence
	// now; the full parse (lists, strings, fingerprints) waits for a flow
	// that reports.
	chBody, shBody tlsstream.Msg
	probeSeen      bool
	// own: the connection showed bytes only SoftEther sends (its CONNECT
	// request, the /tcp SNI hint, its default certificate), not just
	// sizes and timing that ordinary traffic can share.
	own       bool
	shapeDone bool
	done      bool
	rhythm    rhythm
}

// Inspect implements detector.Inspector.
func (in *Inspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	if in.done {
		return false
	}
	if in.s.Shed {
		in.certBody, in.shBody = tlsstream.Msg{}, tlsstream.Msg{} // their buffer went to another flow (budget)
	}
	if in.c.Shed {
		in.chBody = tlsstream.Msg{}
	}
	pl := p.Payload
	if len(pl) == 0 {
		return true
	}
	in.segs++
	if !in.firstSeen && toServer {
		in.firstSeen = true
		in.classifyFirst(p, f, s)
	}
	if toServer {
		if !in.cliTLS {
			if tlsstream.LooksLikeTLS(pl) {
				in.cliTLS = true
				in.c.Start(p.Seq, true)
			} else if in.midstream && tlsstream.LooksLikeRecord(pl) {
				in.cliTLS = true
				in.c.Start(p.Seq, false)
			} else if in.segs > 16 {
				return false
			} else {
				return true
			}
		}
		in.c.Feed(p.Seq, pl, func(r tlsstream.Record) bool { return in.clientRecord(r, p, f, s) })
		if !in.chDone && in.c.Collect {
			in.tryClientHello(p, f, s)
		}
	} else {
		if !in.srvTLS {
			if !in.cliTLS || !tlsstream.LooksLikeRecord(pl) {
				if in.segs > 16 {
					return false
				}
				return true
			}
			in.srvTLS = true
			in.s.Start(p.Seq, !in.midstream)
		}
		in.s.Feed(p.Seq, pl, func(r tlsstream.Record) bool { return in.serverRecord(r, p, f, s) })
		if !in.shDone || !in.certDone {
			if in.s.Collect {
				in.tryServerHello(p, f, s)
			}
		}
	}
	if in.nc >= len(in.cApp) && in.ns >= len(in.sApp) {
		in.release()
	}
	// After the connect phase the keep-alive rhythm is followed for a
	// while: it is what a session on one TCP connection adds over time.
	if in.shapeDone && in.rhythm.finished(p.Time) {
		in.done = true
	}
	return !in.done
}

// release ends the connect-phase analysis and drops the handshake buffers;
// the keep-alive rhythm is still followed.
func (in *Inspector) release() {
	in.shapeDone = true
	in.c.Free()
	in.s.Free()
	in.certBody, in.chBody, in.shBody = tlsstream.Msg{}, tlsstream.Msg{}, tlsstream.Msg{}
	in.c.Collect, in.s.Collect = false, false
}

// classifyFirst looks at the first client payload: TLS, a proxy handshake,
// or the middle of a stream the capture joined late.
func (in *Inspector) classifyFirst(p *decode.Packet, f *detector.Flow, s detector.Sink) {
	pl := p.Payload
	if tlsstream.LooksLikeTLS(pl) {
		return
	}
	switch m := detector.ProxyOpening(pl); {
	case m == detector.ModeHTTPProxy:
		in.prefix = m
		if kind, why := ConnectFingerprint(pl); kind != "" {
			in.own = true
			s.Report(in.evidence(p, f, kind, why))
		}
	case m != detector.ModeNone:
		in.prefix = m
	case !f.SYNSeen && tlsstream.LooksLikeRecord(pl):
		in.midstream = true
	default:
		in.prefix = "other"
	}
}

// ConnectFingerprint matches an HTTP CONNECT request against the one
// SoftEther's client builds: HTTP/1.0, headers in sorted order exactly
// Content-Length: 0, Host (no port), Pragma: no-cache, optional
// Proxy-Authorization, Proxy-Connection: Keep-Alive, User-Agent. It
// returns the evidence kind ("" when it does not match) and why. Every
// connection through an HTTP proxy passes here, so it allocates nothing:
// the header names are matched as they come against the two lists they may
// form (lower-cased, joined by commas).
func ConnectFingerprint(b []byte) (detector.Kind, string) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return "", ""
	}
	head := b[:end]
	first, rest, ok := bytes.Cut(head, []byte("\r\n"))
	if !ok || !bytes.HasSuffix(first, []byte(" HTTP/1.0")) {
		return "", ""
	}
	lists := [2]string{
		"content-length,host,pragma,proxy-connection,user-agent",
		"content-length,host,pragma,proxy-authorization,proxy-connection,user-agent",
	}
	var at [2]int // how much of each list the names so far spell; -1: not this list
	var ua []byte
	for more := true; more; {
		var l []byte
		l, rest, more = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			return "", ""
		}
		for i, list := range lists {
			if at[i] < 0 {
				continue
			}
			n := at[i]
			if n > 0 {
				if n >= len(list) || list[n] != ',' {
					at[i] = -1
					continue
				}
				n++
			}
			if len(list)-n < len(k) || !lowerIs(k, list[n:n+len(k)]) {
				at[i] = -1
				continue
			}
			at[i] = n + len(k)
		}
		v = bytes.TrimSpace(v)
		switch {
		case lowerIs(k, "user-agent"):
			ua = v
		case lowerIs(k, "host"):
			if bytes.Contains(v, []byte("]:")) || bytes.Count(v, []byte(":")) == 1 {
				return "", "" // SoftEther writes Host without the port
			}
		case lowerIs(k, "content-length"):
			if string(v) != "0" {
				return "", ""
			}
		case lowerIs(k, "pragma"):
			if string(v) != "no-cache" {
				return "", ""
			}
		case lowerIs(k, "proxy-connection"):
			if !bytes.EqualFold(v, []byte("Keep-Alive")) {
				return "", ""
			}
		}
	}
	if at[0] != len(lists[0]) && at[1] != len(lists[1]) {
		return "", ""
	}
	if string(ua) == "Mozilla/5.0 (Windows NT 6.3; WOW64; rv:29.0) Gecko/20100101 Firefox/29.0" {
		return detector.KindHTTPConnectUA, "CONNECT HTTP/1.0 with SoftEther's sorted header set and Firefox/29 WOW64 User-Agent"
	}
	return detector.KindHTTPConnect, "CONNECT HTTP/1.0 with SoftEther's sorted header set"
}

// lowerIs reports whether strings.ToLower(string(k)) == s for s in lower
// case ASCII without a 'k' (the one letter a non-ASCII rune, the Kelvin
// sign, lower-cases to), without making the string: a byte beyond ASCII
// then never matches.
func lowerIs(k []byte, s string) bool {
	if len(k) != len(s) {
		return false
	}
	for i := range k {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func (in *Inspector) clientRecord(r tlsstream.Record, p *decode.Packet, f *detector.Flow, s detector.Sink) bool {
	if r.Type != tlsstream.TypeHandshake && !in.chDone && in.c.Collect {
		in.tryClientHello(p, f, s)
	}
	switch r.Type {
	case tlsstream.TypeChangeCipherSpec:
		in.cliCCS = true
		return true
	case tlsstream.TypeApplicationData:
	default:
		return true
	}
	in.rhythm.record(0, r.Length, p.Time, p, f, s, in)
	if in.midstream || in.shapeDone {
		// No handshake seen: the records are data, not the connect phase.
		return true
	}
	if !in.cliFin && (in.tls13 || (!in.shDone && in.cliCCS && r.Length < 100)) {
		// TLS 1.3: the client's Finished travels as application data.
		in.cliFin = true
		return true
	}
	in.cliFin = true
	if in.nc < len(in.cApp) {
		in.cApp[in.nc] = int32(r.Length)
		in.nc++
		in.evaluate(p, f, s)
	}
	return true
}

func (in *Inspector) serverRecord(r tlsstream.Record, p *decode.Packet, f *detector.Flow, s detector.Sink) bool {
	if r.Type != tlsstream.TypeHandshake && !in.shDone && in.s.Collect {
		// The cleartext handshake flight is complete: read it before
		// classifying what follows (TLS 1.3 encrypts the rest of it).
		in.tryServerHello(p, f, s)
	}
	if r.Type != tlsstream.TypeApplicationData {
		return true
	}
	in.rhythm.record(1, r.Length, p.Time, p, f, s, in)
	if in.midstream || in.shapeDone {
		return true
	}
	if in.tls13 && !in.cliFin {
		return true // encrypted server handshake flight
	}
	if in.ns == 0 && r.Length < 256 {
		return true // NewSessionTicket records before the first answer
	}
	if in.ns < len(in.sApp) {
		in.sApp[in.ns] = int32(r.Length)
		in.ns++
		in.evaluate(p, f, s)
	}
	return true
}

// evaluate matches the record sizes seen so far and reports each new level.
func (in *Inspector) evaluate(p *decode.Packet, f *detector.Flow, s detector.Sink) {
	if !in.srvTLS {
		in.evaluateClientOnly(p, f, s)
		return
	}
	c, sv := in.cApp[:in.nc], in.sApp[:in.ns]
	// With the D20/4.x GET probe in front, the protocol starts one record later.
	off, probe := 0, false
	if len(c) >= 1 && getProbe.Has(int(c[0])) && (len(sv) == 0 || page403.Has(int(sv[0])) || page202.Has(int(sv[0]))) {
		if len(sv) >= 1 {
			off, probe = 1, true
		} else {
			return // wait for the answer
		}
	}
	c, sv = c[min(off, len(c)):], sv[min(off, len(sv)):]
	if len(c) < 1 || len(sv) < 1 || !watermark.Has(int(c[0])) || !hello.Has(int(sv[0])) {
		return
	}
	why := ""
	if probe {
		why = fmt.Sprintf("GET probe %d answered by %d; ", in.cApp[0], in.sApp[0])
		if !in.probeSeen {
			in.probeSeen = true
			s.Report(in.evidence(p, f, detector.KindTLSGETProbe,
				fmt.Sprintf("GET probe %d answered by %d (SoftEther's X-VPN probe and its 403/202 page)", in.cApp[0], in.sApp[0])))
		}
	}
	// Watermark and hello alone are no reading: web uploads hit those
	// windows. The next two records say whether this is a VPN session, an
	// additional connection or an admin login.
	in.level = max(in.level, 1)
	if len(c) < 2 || len(sv) < 2 {
		return
	}
	// Every reading carries the connection's first exchange: the verdict
	// compares connections by it (detector.Opening).
	reading := func(kind detector.Kind, detail string) detector.Evidence {
		ev := in.evidence(p, f, kind, detail)
		ev.Opening = detector.Opening{Watermark: c[0], Second: c[1], Hello: sv[0]}
		return ev
	}
	switch {
	case login.Has(int(c[1])) && welcome.Has(int(sv[1])) && in.level < 2:
		in.level = 2
		s.Report(reading(detector.KindTLSPrimary,
			fmt.Sprintf("%swatermark %d, hello %d, login %d, welcome %d", why, c[0], sv[0], c[1], sv[1])))
		in.release()
	case addConnect.Has(int(c[1])) && adminAnswer.Has(int(sv[1])) && in.level < 2:
		in.level = 3
		if probe || !addResponse.Has(int(sv[1])) {
			// A probe-prefixed connection with a short login is vpncmd's admin session.
			ev := reading(detector.KindTLSAdmin,
				fmt.Sprintf("%swatermark %d, hello %d, admin login %d, answer %d", why, c[0], sv[0], c[1], sv[1]))
			ev.Mode = detector.ModeAdmin
			s.Report(ev)
		} else {
			s.Report(reading(detector.KindTLSAdditional,
				fmt.Sprintf("watermark %d, hello %d, additional_connect %d, answer %d", c[0], sv[0], c[1], sv[1])))
		}
		in.release()
	default:
		if len(c) >= 2 && len(sv) >= 2 {
			in.release()
		}
	}
}

// evaluateClientOnly handles a tap that sees only the client's side (an
// asymmetric route): the client's records alone must follow the connect
// phase, GET probe (optional), watermark upload, then login.
func (in *Inspector) evaluateClientOnly(p *decode.Packet, f *detector.Flow, s detector.Sink) {
	c := in.cApp[:in.nc]
	if in.level > 0 || len(c) < 2 {
		return
	}
	why := ""
	if getProbe.Has(int(c[0])) {
		if len(c) < 3 {
			return
		}
		why = fmt.Sprintf("GET probe %d, ", c[0])
		c = c[1:]
	}
	in.level = 4
	if !watermark.Has(int(c[0])) {
		return
	}
	switch {
	case login.Has(int(c[1])):
		s.Report(in.evidence(p, f, detector.KindTLSClientOnly, fmt.Sprintf("server side not visible; client sent %swatermark %d, login %d", why, c[0], c[1])))
	case addConnect.Has(int(c[1])):
		s.Report(in.evidence(p, f, detector.KindTLSClientOnlyAdd, fmt.Sprintf("server side not visible; client sent %swatermark %d, additional_connect %d", why, c[0], c[1])))
	}
}

func (in *Inspector) mode() detector.Mode {
	if in.midstream {
		return detector.ModeMidSession
	}
	switch in.prefix {
	case detector.ModeHTTPProxy, detector.ModeSOCKS5, detector.ModeSOCKS4:
		return in.prefix
	}
	return detector.ModeDirect
}

func (in *Inspector) evidence(p *decode.Packet, f *detector.Flow, kind detector.Kind, detail string) detector.Evidence {
	return detector.Evidence{
		Kind: kind, Detail: detail, Mode: in.mode(),
		Client: f.Client.Addr(), Server: f.Server.Addr(), Flow: *f, TLS: in.tlsInfo(),
		Time: p.Time, PcapCnt: p.Index,
	}
}

func (in *Inspector) tryClientHello(p *decode.Packet, f *detector.Flow, s detector.Sink) {
	if in.c.HandshakeBroken() {
		in.chDone = true
		in.c.Collect = false
		in.c.Free()
		return
	}
	m, body := in.c.Message(tlshello.TypeClientHello)
	if body == nil {
		return
	}
	in.chDone = true
	if sc, err := tlshello.ScanClientHello(body); err == nil {
		switch {
		case sc.ALPN || sc.Ticket || !sc.OpenSSLOrder:
			// SoftEther's client never offers ALPN (neither the 4.x nor
			// the 5.x source sets it on its TLS context) nor a session
			// ticket (both set SSL_OP_NO_TICKET); browsers and nearly
			// every HTTP client library offer one or both (Python, Node
			// and Go clients without ALPN still offer tickets). Its TLS
			// is OpenSSL's, so its extensions come in OpenSSL's order:
			// TLS stacks that offer neither ALPN nor a ticket but order
			// them otherwise (Java 8 to 12, SChannel, embedded stacks;
			// half of such hellos in the third-party captures) are not
			// its either. Nothing this flow's records could show is
			// SoftEther's connect phase or keep-alive, so the flow is not
			// followed further.
			in.done = true
		case !sc.OpenSSLNoALPN() && !sniMayReport(sc.SNI):
			in.chBody = m // parsed if the flow reports evidence
		default:
			if ch, err := tlshello.ParseClientHello(body); err == nil { // as the scan
				in.onClientHello(&ch, p, f, s)
			}
		}
	}
	in.c.Collect = false
	if in.chBody.IsZero() {
		in.c.Free()
	}
}

// tlsInfo returns the flow's TLS info, building it from the hellos seen so
// far on first use (nil before any hello). Once built it is shared with the
// evidence and kept up to date as later handshake messages arrive.
func (in *Inspector) tlsInfo() *detector.TLSInfo {
	if in.info != nil {
		return in.info
	}
	in.parseKept()
	if in.ch == nil && in.sh == nil {
		return nil
	}
	info := &detector.TLSInfo{}
	if in.ch != nil {
		info.SetClientHello(in.ch)
	}
	if in.sh != nil {
		in.setServerHello(info)
	}
	in.info = info
	if !in.certBody.IsZero() {
		// A buffer the budget shed went back to the pool: its certificate
		// is given up rather than read from memory another flow may hold.
		if body := in.s.Bytes(in.certBody); body != nil && !in.s.Shed {
			if cert, err := tlshello.ParseCertificate(body, false); err == nil {
				setCert(info, &cert)
			}
		}
		in.certBody = tlsstream.Msg{}
		in.s.Free()
	}
	return info
}

// parseKept parses the hellos kept unparsed, unless the budget shed their
// buffers, and lets the buffers go.
func (in *Inspector) parseKept() {
	if !in.chBody.IsZero() {
		if body := in.c.Bytes(in.chBody); body != nil && !in.c.Shed {
			if ch, err := tlshello.ParseClientHello(body); err == nil {
				in.ch = &ch
			}
		}
		in.chBody = tlsstream.Msg{}
		in.c.Free()
	}
	if !in.shBody.IsZero() {
		if body := in.s.Bytes(in.shBody); body != nil && !in.s.Shed {
			if sh, err := tlshello.ParseServerHello(body); err == nil {
				in.sh = &sh
			}
		}
		in.shBody = tlsstream.Msg{}
		if in.certBody.IsZero() {
			in.s.Free()
		}
	}
}

// sniMayReport: a server name onClientHello may report (the "/tcp" hint or
// an address literal), judged on the raw bytes; the parse decides.
func sniMayReport(sni []byte) bool {
	n := len(sni)
	hint := n >= 4 && sni[n-4] == '/' && sni[n-3]|0x20 == 't' && sni[n-2]|0x20 == 'c' && sni[n-1]|0x20 == 'p'
	return hint || addrChars(sni)
}

func setCert(info *detector.TLSInfo, cert *tlshello.Cert) {
	info.Subject, info.Issuer = cert.Subject, cert.Issuer
	info.Serial, info.Fingerprint = cert.Serial, cert.FingerprintSHA1
	info.NotBefore = cert.NotBefore.UTC().Format("2006-01-02T15:04:05")
	info.NotAfter = cert.NotAfter.UTC().Format("2006-01-02T15:04:05")
}

func (in *Inspector) setServerHello(info *detector.TLSInfo) {
	info.Version = tlshello.VersionString(max(in.sh.SelectedVersion, in.sh.LegacyVersion))
	info.JA3S, info.JA3SHash = tlshello.JA3S(in.sh)
}

func (in *Inspector) onClientHello(ch *tlshello.ClientHello, p *decode.Packet, f *detector.Flow, s detector.Sink) {
	if in.info != nil {
		// A ServerHello came first and its info was already reported:
		// a new info, as when the hello used to be turned into one at once.
		in.info = nil
	}
	in.ch, in.sh = ch, nil
	if ch.OpenSSLNoALPN() {
		s.Report(in.evidence(p, f, detector.KindTLSHello,
			fmt.Sprintf("ClientHello without ALPN and session_ticket, %d suites (OpenSSL as SoftEther configures it)", len(ch.Ciphers))))
	}
	if strings.HasSuffix(strings.ToLower(ch.SNI), "/tcp") {
		in.own = true
		s.Report(in.evidence(p, f, detector.KindTLSSNIHint, fmt.Sprintf("SNI %q carries SoftEther's /tcp hint", ch.SNI)))
	} else if addrChars(ch.SNI) && validAddr(ch.SNI) {
		s.Report(in.evidence(p, f, detector.KindTLSSNIAddr, fmt.Sprintf("SNI is the IP literal %s", ch.SNI)))
	}
}

func (in *Inspector) tryServerHello(p *decode.Packet, f *detector.Flow, sink detector.Sink) {
	if in.s.HandshakeBroken() {
		in.shDone, in.certDone = true, true
		in.s.Collect = false
		in.s.Free()
		return
	}
	in.s.Messages(func(typ uint8, m tlsstream.Msg, body []byte) bool {
		switch typ {
		case tlshello.TypeServerHello:
			if in.shDone {
				return true
			}
			in.shDone = true
			sh, err := tlshello.ScanServerHello(body)
			if err != nil {
				in.certDone = true
				return false
			}
			in.tls13 = sh.SelectedVersion == 0x0304
			if in.info != nil {
				sh, _ := tlshello.ParseServerHello(body) // succeeds as the scan did
				in.sh = &sh
				in.setServerHello(in.info)
			} else {
				in.shBody = m // parsed if the flow reports evidence
			}
			if in.tls13 {
				in.certDone = true // the certificate is encrypted
				return false
			}
		case tlshello.TypeCertificate:
			if in.certDone {
				return false
			}
			in.certDone = true
			zero, self, ok := tlshello.PeekCertificate(body, false)
			if !ok {
				return false
			}
			if in.info == nil && !(zero && self) {
				in.certBody = m // parsed if the flow reports evidence
				return false
			}
			cert, err := tlshello.ParseCertificate(body, false)
			if err == nil && in.tlsInfo() != nil {
				setCert(in.info, &cert)
				// The certificate names a SoftEther server, not a session: any
				// client (a scanner, a browser) sees it. Corroboration only.
				if why := softetherDefaultCert(&cert); why != "" {
					in.own = true
					sink.Report(in.evidence(p, f, detector.KindTLSCert, why))
				}
			}
			return false
		}
		return true
	})
	if in.shDone && in.certDone {
		in.s.Collect = false
		if in.certBody.IsZero() && in.shBody.IsZero() {
			in.s.Free()
		}
	}
}

// softetherDefaultCert recognises the certificate SoftEther generates for a
// new server: self-signed, serial 0, CA:TRUE, nine extended key usages
// (server, client, code signing, e-mail, three IPsec, time stamping, OCSP),
// no SAN/SKI/AKI, valid until 2037-12-31/2038-01-01 (or 2049-12-30).
func softetherDefaultCert(c *tlshello.Cert) string {
	if !c.SelfSigned || !c.IsCA || c.ExtKeyUsageCount != 9 || c.HasSAN || c.HasSKI || c.HasAKI {
		return ""
	}
	if c.Serial != "00" {
		return ""
	}
	end := c.NotAfter.UTC()
	y, m, d := end.Date()
	if !((y == 2037 && m == 12 && d == 31) || (y == 2038 && m == 1 && d == 1) || (y == 2049 && m == 12 && d == 30)) {
		return ""
	}
	return fmt.Sprintf("SoftEther default server certificate (self-signed, serial 0, 9 EKUs, notAfter %s, subject %q)",
		end.Format("2006-01-02"), c.Subject)
}

// addrChars: only characters an address literal has (ParseAddr allocates
// its error, and almost every SNI is a name).
func addrChars[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == '.' || c == ':') {
			return false
		}
	}
	return len(s) > 0
}

func validAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

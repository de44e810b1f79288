package detector

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Kind names one sort of evidence. Every kind a detector may report is a
// constant below with one row in Kinds; the verdict stage reads weights
// and rules from that row and never matches kinds by their text.
type Kind string

// Mode is the SoftEther transport an alert names (metadata softether_mode)
// or, for other-VPN signatures, the protocol.
type Mode string

// SoftEther transports.
const (
	ModeNone       Mode = ""
	ModeDirect     Mode = "direct"
	ModeHTTPProxy  Mode = "http-proxy"
	ModeSOCKS5     Mode = "socks5"
	ModeSOCKS4     Mode = "socks4"
	ModeSSH        Mode = "ssh-forward"
	ModeUDPAccel   Mode = "udp-accel"
	ModeOverICMP   Mode = "vpn-over-icmp"
	ModeOverDNS    Mode = "vpn-over-dns"
	ModeAdmin      Mode = "admin"
	ModeMidSession Mode = "mid-session"
	ModeCascade    Mode = "cascade"
	ModeServer     Mode = "server"
	ModeVendor     Mode = "vendor"
)

// Class says how a kind counts towards a session. A session is built from
// units: each unit is one independent observation of SoftEther, either a
// flow (one SoftEther connection's connect phase), a separate flow of the
// connect burst, or a flow's behaviour over time. An alert needs two units
// (MinUnits), so one connection's connect phase can never raise one alone.
type Class uint8

const (
	// ClassReading: a reading of one connection's connect phase. A flow's
	// reading unit takes its strongest qualified reading plus its
	// corroborators, capped at UnitCap.
	ClassReading Class = iota + 1
	// ClassCorroborator: adds to its flow's reading unit; never a unit
	// alone (ordinary HTTPS produces these by chance).
	ClassCorroborator
	// ClassSecondReading: a second SoftEther connection multiplexed into
	// the same flow (an SSH forward carries every leg of a session).
	ClassSecondReading
	// ClassSustained: a flow's behaviour after its connect phase or over
	// time (keep-alive rhythm, tunnel data, paced datagrams).
	ClassSustained
	// ClassSustainedLong: the same behaviour still there a minute later.
	ClassSustainedLong
	// ClassSideFlow: a separate flow of the connect burst (R-UDP probes,
	// the server's NetBIOS probe). Counts only beside a reading or
	// sustained unit, and only within BurstWindow of that flow's start.
	ClassSideFlow
	// ClassSelfProving: many packets each way, each carrying SoftEther's
	// own framing (R-UDP over ICMP/DNS): a unit that counts as two, unless
	// the session also has a TCP connection (then it is the connect race
	// beside it, one unit).
	ClassSelfProving
	// ClassOwnSignature: evidence that asks for a signature of its own
	// (other VPNs, vendor services); not part of session scoring.
	ClassOwnSignature
)

func (c Class) String() string {
	switch c {
	case ClassReading:
		return "reading"
	case ClassCorroborator:
		return "corroborator"
	case ClassSecondReading:
		return "second reading"
	case ClassSustained:
		return "sustained"
	case ClassSustainedLong:
		return "sustained (1 min)"
	case ClassSideFlow:
		return "side flow"
	case ClassSelfProving:
		return "self-proving"
	case ClassOwnSignature:
		return "own signature"
	}
	return "?"
}

// Session rules, shared by every session signature.
const (
	// Threshold is the session score (sum of unit scores) that alerts.
	Threshold = 1.0
	// UnitCap bounds what one unit adds, below Threshold.
	UnitCap = 0.9
	// MinUnits is how many independent units an alert needs.
	MinUnits = 2
	// BurstWindow: a side flow belongs to a reading whose flow started
	// this close to it (SoftEther sends its burst within ~200 ms of
	// connecting; NetBIOS right after accept; margin for loss).
	BurstWindow = 10 * time.Second
	// AdditionalWindow: an additional connection counts beside a primary
	// reading only if its flow started this soon after the primary's.
	// SoftEther adds a leg every AdditionalConnectionInterval (1 s) up to
	// MaxConnection (32: about 35 s) and, after a reconnect, its legs
	// about 15 s later (the corpus's reconnect capture); two ordinary
	// connections minutes apart, one with each shape, are not a session.
	AdditionalWindow = time.Minute
	// SessionGap: a session with no live flow and no evidence for this
	// long is over (SoftEther's own session timeout is 20 s; reconnects
	// come every 5-300 s).
	SessionGap = 2 * time.Minute
	// EvidenceWindow: readings older than this relative to the newest are
	// forgotten while a session has not alerted.
	EvidenceWindow = 5 * time.Minute
)

// Spec is one row of the weights table.
type Spec struct {
	Kind   Kind
	Class  Class
	Weight float32
	// Strong: a unit of this kind may be the one an alert rests on. Every
	// alert needs one strong unit; weak readings (record sizes inside wide
	// windows) only add to it.
	Strong bool
	// NeedsPrimary: counts only when the session also has a sustained
	// unit, or a strong reading on a flow that started up to
	// AdditionalWindow before this one (an additional connection is only
	// opened after a primary one, about a second later).
	NeedsPrimary bool
	// PerFlow: the kind counts on up to two flows (two parallel
	// connections keeping alive); other kinds count once per session.
	PerFlow bool
	// Detector is the package that reports it; Source says where the
	// number and the behaviour come from.
	Detector string
	Source   string
}

// Evidence kinds of SoftEther sessions.
const (
	KindTLSPrimary        Kind = "softether.tls.session-shape"
	KindTLSAdditional     Kind = "softether.tls.additional-connection"
	KindTLSAdmin          Kind = "softether.tls.admin-login"
	KindTLSClientOnly     Kind = "softether.tls.client-side-shape"
	KindTLSClientOnlyAdd  Kind = "softether.tls.client-side-additional"
	KindTLSGETProbe       Kind = "softether.tls.get-probe"
	KindTLSHello          Kind = "softether.tls.clienthello-profile"
	KindTLSSNIAddr        Kind = "softether.tls.sni-ip-literal"
	KindTLSSNIHint        Kind = "softether.tls.sni-tcp-hint"
	KindTLSCert           Kind = "softether.tls.default-certificate"
	KindHTTPConnect       Kind = "softether.http-connect-fingerprint"
	KindHTTPConnectUA     Kind = "softether.http-connect-fingerprint-ua"
	KindTLSKeepalive      Kind = "softether.tls.keepalive-rhythm"
	KindTLSLiveness       Kind = "softether.tls.keepalive-liveness"
	KindNBNSProbe         Kind = "softether.nbns-nbstat-probe"
	KindRUDPDNSProbe      Kind = "softether.rudp.dns-probe"
	KindRUDPICMPProbe     Kind = "softether.rudp.icmp-probe"
	KindRUDPOverDNS       Kind = "softether.rudp.over-dns-session"
	KindRUDPOverICMP      Kind = "softether.rudp.over-icmp-session"
	KindUDPAccel          Kind = "softether.udp-acceleration"
	KindUDPAccelSustained Kind = "softether.udp-acceleration-sustained"
	KindUDPAccelPort      Kind = "softether.udp-acceleration-port"
	KindSSHShape          Kind = "softether.ssh.tunnelled-session-shape"
	KindSSHShapeProbe     Kind = "softether.ssh.tunnelled-session-shape-probe"
	KindSSHAdditional     Kind = "softether.ssh.tunnelled-additional-connection"
	KindSSHRepeat         Kind = "softether.ssh.second-tunnelled-connection"
	KindSSHDataPhase      Kind = "softether.ssh.tunnel-data-phase"
	KindSSHIdle           Kind = "softether.ssh.idle-tunnel-rhythm"
	KindSSHIdleLong       Kind = "softether.ssh.idle-tunnel-rhythm-sustained"
	KindClearTunnel       Kind = "softether.tcp.cleartext-tunnel"
	// Added by the verdict stage itself.
	KindCascadeInitiator Kind = "softether.cascade-initiator"
	KindServerRole       Kind = "softether.server-role"
)

const (
	srcCP = "detector/connectphase sizes (SoftEther Protocol.c ClientConnect/ServerAccept; corpus and lab captures)"
)

// Kinds is the weights table: the one source of every weight, window and
// rule. README.md's evidence table is generated from it (a test keeps
// them equal).
var Kinds = []Spec{
	{KindTLSPrimary, ClassReading, 0.75, true, false, false, "tlsshape",
		"watermark upload, hello, login, welcome record sizes: " + srcCP},
	{KindTLSAdmin, ClassReading, 0.75, true, false, false, "tlsshape",
		"GET probe or short answer, then watermark, hello, admin login (440-1850 B), answer: Admin.c AdminAccept; lab admin captures"},
	{KindTLSClientOnly, ClassReading, 0.5, true, false, false, "tlsshape",
		"client records only (asymmetric tap): watermark then login sizes: " + srcCP},
	{KindTLSAdditional, ClassReading, 0.6, false, true, false, "tlsshape",
		"watermark, hello, additional_connect, answer: Protocol.c ClientUploadAuth2; opened ~1 s after the primary (Session.c AdditionalConnectionInterval)"},
	{KindTLSClientOnlyAdd, ClassReading, 0.4, false, true, false, "tlsshape",
		"client records only: watermark then additional_connect size: " + srcCP},
	{KindTLSGETProbe, ClassCorroborator, 0.2, false, false, false, "tlsshape",
		"GET / + X-VPN probe answered by the 403/202 page (4.x and 5.01 builds) (SoftEther Network.c DetectIsServerSoftEtherVPN, 4.x and 5.01)"},
	{KindHTTPConnectUA, ClassCorroborator, 0.6, false, false, false, "tlsshape",
		"CONNECT HTTP/1.0, sorted header set, Firefox/29 WOW64 User-Agent (SoftEther's proxy client code)"},
	{KindHTTPConnect, ClassCorroborator, 0.4, false, false, false, "tlsshape",
		"CONNECT HTTP/1.0 with SoftEther's sorted header set (SoftEther's proxy client code)"},
	{KindTLSSNIHint, ClassCorroborator, 0.8, false, false, false, "tlsshape",
		"SNI ending in /tcp (NAT-T off hint) (SoftEther's TLS client set-up)"},
	{KindTLSCert, ClassCorroborator, 0.3, false, false, false, "tlsshape",
		"default server certificate (serial 0, 9 EKUs, notAfter 2037/2038) (SoftEther's certificate generator); names a server, not a session"},
	{KindTLSHello, ClassCorroborator, 0.15, false, false, false, "tlsshape",
		"ClientHello without ALPN and session_ticket, extensions in OpenSSL's order (OpenSSL as SoftEther sets it); many OpenSSL tools share it (SoftEther's TLS client set-up)"},
	{KindTLSSNIAddr, ClassCorroborator, 0.15, false, false, false, "tlsshape",
		"SNI that is an IP literal (SoftEther's TLS client set-up)"},
	{KindTLSKeepalive, ClassSustained, 0.5, true, false, true, "tlsshape",
		"unanswered 25-536-B records every 3.9-10.5 s from both sides, 5 in a row each way with none of that side sooner than 3.9 s, each side with a gap at the timer's 4-s floor: Connection.c keep-alive (rand()%512 bytes, span max(rand()%(Timeout/2), Timeout/5)); lab neg-lab-wss-feeds"},
	{KindTLSLiveness, ClassSustained, 0.3, false, false, false, "tlsshape",
		"after a primary connect phase that carried SoftEther's own bytes (its CONNECT request, the /tcp SNI hint or its default certificate), both sides send at least every 10.5 s for 30 s: the keep-alive timer's longest span (Timeout/2) bounds every silence, data or not; an API client polling every few seconds does the same, so sizes alone never qualify"},
	{KindClearTunnel, ClassSustained, 0.9, true, false, true, "cleartunnel",
		"TCP segments each exactly SoftEther's tunnel messages in clear, >=4 each way: keep-alives (0xffffffff, a size below 512, random bytes) and batches (block count, then per block its size and an Ethernet frame): Connection.c SendKeepAlive and the send path of a session with encryption off (AccountEncryptDisable: the data leaves TLS after the login); lab encrypt-off. One connection's behaviour: it counts beside its own connect phase, another connection or UDP acceleration, or on two connections of a session joined late"},
	{KindSSHShape, ClassReading, 0.7, true, false, false, "sshtunnel",
		"connect phase inside SSH framing (+39-105 B per record): " + srcCP + "; lab ssh-forward"},
	{KindSSHShapeProbe, ClassReading, 0.8, true, false, false, "sshtunnel",
		"the same, after the GET probe"},
	{KindSSHAdditional, ClassReading, 0.55, false, true, false, "sshtunnel",
		"additional_connect inside SSH without the primary seen"},
	{KindSSHRepeat, ClassSecondReading, 0.45, false, false, false, "sshtunnel",
		"a second connect phase with different sizes in the same SSH connection within 60 s of the one before (the session's next leg ~1 s later, or its reconnect after RetryInterval, 15 s by default; SoftEther pads every message at random)"},
	{KindSSHDataPhase, ClassCorroborator, 0.32, false, false, false, "sshtunnel",
		">=3 writes of >=100 B each way within 0.5 s of the welcome (the new virtual NIC's DHCP/ARP): lab ssh-forward; a web page's subresources through a forward do the same, so it adds to its connection's reading only"},
	{KindSSHIdle, ClassSustained, 0.6, false, false, false, "sshtunnel",
		"both sides send unanswered 64-700-B writes of random sizes on their own timers, neither silent for more than 10.5 s (the keep-alive timer's longest span, Timeout/2): keep-alives inside SSH; two people chatting through one SSH connection show it too, so it never carries an alert: it is the second unit beside a tunnelled connect phase"},
	{KindSSHIdleLong, ClassSustainedLong, 0.45, false, false, false, "sshtunnel",
		"the same rhythm a minute later (>=16 each way)"},
	{KindUDPAccel, ClassReading, 0.5, false, false, false, "udpaccel",
		"40-100-B datagrams paced 0.35-3.5 s both ways, each nonce taken from the side's previous datagram (>=2 links each way): UdpAccel.c UdpAccelSend"},
	{KindUDPAccelPort, ClassCorroborator, 0.1, false, false, false, "udpaccel",
		"server port in 40000-44999: UdpAccel.c port choice"},
	{KindUDPAccelSustained, ClassSustained, 0.6, true, false, false, "udpaccel",
		"the same pacing sustained (12+ each way)"},
	{KindRUDPICMPProbe, ClassSideFlow, 0.9, false, false, false, "rudpprobe",
		"ICMP payload starting with the SHA-1 of the rest: R-UDP over ICMP (SoftEther R-UDP)"},
	{KindRUDPDNSProbe, ClassSideFlow, 0.6, false, false, false, "rudpprobe",
		"DNSKEY query for an 8-hex-digit name with opaque OPT data sent to the VPN server itself (SoftEther R-UDP over DNS)"},
	{KindNBNSProbe, ClassSideFlow, 0.15, false, false, false, "nbnsprobe",
		"NetBIOS node-status query the server sends to every TCP peer it accepts: corpus captures; Windows does this too"},
	{KindRUDPOverICMP, ClassSelfProving, 1.0, true, false, false, "rudpprobe",
		"many SHA-1-framed ICMP packets each way: R-UDP session over ICMP"},
	{KindRUDPOverDNS, ClassSelfProving, 1.0, true, false, false, "rudpprobe",
		"many R-UDP DNS queries and opaque DNSKEY answers each way: R-UDP session over DNS"},
	{KindCascadeInitiator, ClassOwnSignature, 0, false, false, false, "verdict",
		"the initiator was itself seen serving SoftEther (accepted a session or admin login, sent a DDNS registration)"},
	{KindServerRole, ClassOwnSignature, 0, false, false, false, "verdict",
		"a home-network host accepting SoftEther sessions from outside"},
}

var kindIndex = func() map[Kind]*Spec {
	m := make(map[Kind]*Spec, len(Kinds))
	for i := range Kinds {
		if _, dup := m[Kinds[i].Kind]; dup {
			panic("detector: duplicate kind " + string(Kinds[i].Kind))
		}
		m[Kinds[i].Kind] = &Kinds[i]
	}
	return m
}()

// SpecOf returns a kind's row; unknown kinds (other VPNs, vendor services)
// are ClassOwnSignature.
func SpecOf(k Kind) Spec {
	if s, ok := kindIndex[k]; ok {
		return *s
	}
	return Spec{Kind: k, Class: ClassOwnSignature}
}

// EvidenceTable renders the weights table as the Markdown README.md carries.
func EvidenceTable() string {
	rows := append([]Spec(nil), Kinds...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Detector < rows[j].Detector })
	var b strings.Builder
	b.WriteString("| detector | evidence kind | counts as | weight | rule | from |\n|---|---|---|---|---|---|\n")
	for _, s := range rows {
		if s.Class == ClassOwnSignature {
			continue
		}
		var rule []string
		if s.Strong {
			rule = append(rule, "can carry an alert")
		}
		if s.NeedsPrimary {
			rule = append(rule, fmt.Sprintf("only beside a sustained unit or a primary connection that started up to %v before it", AdditionalWindow))
		}
		if s.PerFlow {
			rule = append(rule, "counts on two flows")
		}
		if s.Class == ClassSideFlow {
			rule = append(rule, fmt.Sprintf("within %v of a reading flow's start", BurstWindow))
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %.2f | %s | %s |\n", s.Detector, s.Kind, s.Class, s.Weight,
			strings.Join(rule, "; "), s.Source)
	}
	return b.String()
}

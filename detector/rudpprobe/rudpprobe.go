// Package rudpprobe recognises SoftEther's R-UDP connect attempts that race
// every direct (non-proxy) connect, and the sessions that run over them:
//
//   - "DNS" datagrams to the VPN server's own address: one 8-hex-digit
//     label, QTYPE DNSKEY, an OPT record with the DO bit whose RDATA is
//     opaque R-UDP bytes rather than EDNS options;
//   - ICMP echo/echo-reply/information packets whose payload starts with the
//     SHA-1 of the rest of the payload (SoftEther's ICMP framing).
//
// A single probe ties a client to a server; a sustained two-way exchange of
// such packets is a VPN-over-DNS or VPN-over-ICMP session by itself.
package rudpprobe

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

// Name is the detector's registered name.
const Name = "rudpprobe"

// Evidence kinds.
const (
	KindDNSProbe   = detector.KindRUDPDNSProbe
	KindICMPProbe  = detector.KindRUDPICMPProbe
	KindOverDNS    = detector.KindRUDPOverDNS
	KindOverICMP   = detector.KindRUDPOverICMP
	sessionPackets = 8 // valid packets each way that make a session
	// An asymmetric tap sees one direction only: that many framed packets
	// one way over oneWaySpan make a session too (the R-UDP race that
	// precedes every direct connect sends a handful and gives up).
	oneWayPackets   = 40
	oneWaySpan      = 5 * time.Second
	maxProbeInspect = 256
)

func init() { detector.Register(Name, func() detector.Detector { return Detector{} }) }

// Detector is the R-UDP probe detector.
type Detector struct{}

// Name implements detector.Detector.
func (Detector) Name() string { return Name }

// NewInspector follows UDP flows to or from port 53 and ICMP flows.
func (Detector) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	switch p.Proto {
	case decode.ProtoUDP:
		if p.SrcPort == 53 || p.DstPort == 53 {
			in := dnsPool.Get()
			return in
		}
	case decode.ProtoICMP:
		in := icmpPool.Get()
		return in
	}
	return nil
}

type dnsInspector struct {
	toSrv, toCli int
	reported     bool
	session      bool
	n            int
	first        time.Time
	seen         [2]int // packets of any kind to and from port 53
}

func (in *dnsInspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	in.n++
	if in.n > maxProbeInspect {
		return false
	}
	// The resolver side is the one on port 53, whatever the flow table thinks.
	fromClient := p.DstPort == 53
	if fromClient {
		in.seen[0]++
	} else {
		in.seen[1]++
	}
	if fromClient && IsDNSProbe(p.Payload) {
		in.toSrv++
		if !in.reported {
			in.reported = true
			s.Report(evidence(p, f, KindDNSProbe, fmt.Sprintf("DNSKEY query for an 8-hex-digit name with opaque OPT data sent to %s itself", p.Dst), detector.ModeNone, p.Src, p.Dst))
		}
	} else if !fromClient && IsDNSProbeAnswer(p.Payload) {
		in.toCli++
	} else {
		return true
	}
	if in.first.IsZero() {
		in.first = p.Time
	}
	if oneWay(in.toSrv, in.seen[1], p.Time.Sub(in.first)) || oneWay(in.toCli, in.seen[0], p.Time.Sub(in.first)) {
		in.session = true
		client, server := p.Src, p.Dst
		if !fromClient {
			client, server = p.Dst, p.Src
		}
		s.Report(evidence(p, f, KindOverDNS, fmt.Sprintf("one side visible (asymmetric tap): %d R-UDP queries and %d DNSKEY answers with opaque data over %.0f s",
			in.toSrv, in.toCli, p.Time.Sub(in.first).Seconds()), detector.ModeOverDNS, client, server))
		return false
	}
	if !in.session && in.toSrv >= sessionPackets && in.toCli >= sessionPackets {
		in.session = true
		client, server := p.Src, p.Dst
		if !fromClient {
			client, server = p.Dst, p.Src
		}
		s.Report(evidence(p, f, KindOverDNS, fmt.Sprintf("%d R-UDP queries and %d DNSKEY answers carrying opaque data", in.toSrv, in.toCli), detector.ModeOverDNS, client, server))
		return false
	}
	return true
}

type icmpInspector struct {
	first     time.Time
	seen      [2]int // packets of any kind each way
	valid     [2]int
	reported  bool
	n         int
	firstFrom [16]byte // the SoftEther client's address
	// Hash prefixes of recent echo requests: the peer kernel's echo replies
	// carry the same (valid) framing and are not SoftEther speaking.
	requests [8]uint32
	nreq     int
}

func (in *icmpInspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	in.n++
	if in.n > maxProbeInspect {
		return false
	}
	if toServer {
		in.seen[0]++
	} else {
		in.seen[1]++
	}
	switch p.ICMPType {
	case 0, 8, 15, 16:
	default:
		return true
	}
	if !IsICMPFrame(p.Payload) {
		return true
	}
	tag := binary.BigEndian.Uint32(p.Payload)
	if p.ICMPType == 8 {
		in.requests[in.nreq%len(in.requests)] = tag
		in.nreq++
	} else if p.ICMPType == 0 {
		for _, r := range in.requests[:min(in.nreq, len(in.requests))] {
			if r == tag {
				return true // an echo reply mirroring a request
			}
		}
	}
	dir := 0
	if !toServer {
		dir = 1
	}
	in.valid[dir]++
	if in.first.IsZero() {
		in.first = p.Time
	}
	if oneWay(in.valid[dir], in.seen[1-dir], p.Time.Sub(in.first)) {
		// SoftEther's client sends information requests (and echo
		// requests), its server the replies.
		client, server := p.Src, p.Dst
		if p.ICMPType == 0 || p.ICMPType == 16 {
			client, server = p.Dst, p.Src
		}
		s.Report(evidence(p, f, KindOverICMP, fmt.Sprintf("one side visible (asymmetric tap): %d SHA-1-framed ICMP type %d packets over %.0f s",
			in.valid[dir], p.ICMPType, p.Time.Sub(in.first).Seconds()), detector.ModeOverICMP, client, server))
		return false
	}
	if !in.reported {
		in.reported = true
		// SoftEther's client sends echo replies, echo and information
		// requests (0, 8, 15); only its server sends information replies
		// (16). The sender of the first framed packet is the client unless
		// that packet is an information reply (the capture began after the
		// client's first request).
		client, server := p.Src, p.Dst
		if p.ICMPType == 16 {
			client, server = p.Dst, p.Src
		}
		in.firstFrom = client.As16()
		s.Report(evidence(p, f, KindICMPProbe, fmt.Sprintf("ICMP type %d whose payload starts with the SHA-1 of the rest (SoftEther R-UDP over ICMP)", p.ICMPType), detector.ModeNone, client, server))
	}
	if in.valid[0] >= sessionPackets && in.valid[1] >= sessionPackets {
		client, server := p.Src, p.Dst
		if p.Src.As16() != in.firstFrom {
			client, server = p.Dst, p.Src
		}
		s.Report(evidence(p, f, KindOverICMP, fmt.Sprintf("%d and %d SHA-1-framed ICMP packets each way", in.valid[0], in.valid[1]), detector.ModeOverICMP, client, server))
		return false
	}
	return true
}

// oneWay: a session seen from one side only; a single packet the other
// way (an answer, a mirrored echo reply) means the tap sees both sides and
// the two-way rule applies.
func oneWay(this, otherAny int, span time.Duration) bool {
	return otherAny == 0 && this >= oneWayPackets && span >= oneWaySpan
}

func evidence(p *decode.Packet, f *detector.Flow, kind detector.Kind, detail string, mode detector.Mode, client, server netip.Addr) detector.Evidence {
	// Which end is the client is a guess from the ICMP types; the verdict
	// attaches the evidence to a session of either orientation.
	icmp := kind == KindICMPProbe || kind == KindOverICMP
	return detector.Evidence{Kind: kind, Detail: detail, Mode: mode, Symmetric: icmp,
		Client: client.Unmap(), Server: server.Unmap(), Flow: *f, Time: p.Time, PcapCnt: p.Index}
}

// IsICMPFrame reports whether an ICMP payload (after the 8-byte header)
// starts with SHA-1 of the remaining bytes.
func IsICMPFrame(b []byte) bool {
	if len(b) < 21 {
		return false
	}
	sum := sha1.Sum(b[20:])
	return [20]byte(b[:20]) == sum
}

// IsDNSProbe reports whether a UDP payload is SoftEther's R-UDP datagram
// disguised as a DNS query: flags 0x0100, one question, one additional
// record, a single 8-lowercase-hex label, type DNSKEY, class IN, and an OPT
// record with DO set whose RDATA is not a well-formed EDNS option list.
func IsDNSProbe(b []byte) bool {
	if len(b) < 12+10+4+11 {
		return false
	}
	if b[2] != 0x01 || b[3] != 0x00 || be16(b[4:]) != 1 || be16(b[6:]) != 0 || be16(b[8:]) != 0 || be16(b[10:]) != 1 {
		return false
	}
	q := b[12:]
	if q[0] != 8 || !hexLabel(q[1:9]) || q[9] != 0 {
		return false
	}
	if be16(q[10:]) != 48 || be16(q[12:]) != 1 {
		return false
	}
	return opaqueOPT(q[14:])
}

// IsDNSProbeAnswer reports whether a UDP payload is the R-UDP server's
// DNS-shaped answer: flags 0x8180, one question, one DNSKEY answer whose
// RDATA starts 01 00 03 08 (flags 256, protocol 3, algorithm 8).
func IsDNSProbeAnswer(b []byte) bool {
	if len(b) < 12+14+16 || b[2] != 0x81 || b[3] != 0x80 || be16(b[4:]) != 1 || be16(b[6:]) != 1 {
		return false
	}
	q := b[12:]
	if q[0] != 8 || !hexLabel(q[1:9]) || q[9] != 0 || be16(q[10:]) != 48 {
		return false
	}
	a := q[14:]
	if len(a) < 16 || a[0] != 0xc0 || be16(a[2:]) != 48 {
		return false
	}
	return a[12] == 1 && a[13] == 0 && a[14] == 3 && a[15] == 8
}

func opaqueOPT(b []byte) bool {
	if len(b) < 11 || b[0] != 0 || be16(b[1:]) != 41 {
		return false
	}
	if b[7]&0x80 == 0 { // DO bit
		return false
	}
	rdlen := int(be16(b[9:]))
	rd := b[11:]
	if rdlen == 0 || rdlen != len(rd) {
		return false
	}
	// Real EDNS RDATA is a list of (code, length, data) options that ends
	// exactly at rdlen; R-UDP bytes almost never do.
	for len(rd) >= 4 {
		ol := int(be16(rd[2:]))
		if 4+ol > len(rd) {
			return true
		}
		rd = rd[4+ol:]
	}
	return len(rd) != 0
}

func hexLabel(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// Inspectors come from pools and go back when the flow ends (Release), so
// a new flow allocates nothing once the pools are warm.
var (
	dnsPool  detector.FreeList[dnsInspector]
	icmpPool detector.FreeList[icmpInspector]
)

// Release returns the inspector to its pool (called once by the engine).
func (in *dnsInspector) Release() { dnsPool.Put(in) }

// Release returns the inspector to its pool (called once by the engine).
func (in *icmpInspector) Release() { icmpPool.Put(in) }

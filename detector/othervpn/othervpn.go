// Package othervpn labels the other VPN protocols a network sees, so that
// an analyst can tell them from SoftEther: OpenVPN over UDP and TCP (also
// when a SoftEther server speaks it), WireGuard, IPsec (IKE, ESP, AH),
// L2TP and PPTP/GRE. Each is recognised from its own headers and how they
// change from packet to packet (session ids and indexes constant per
// direction, counters growing by one), so a capture that joined a tunnel
// after its handshake, or sees one direction only, is labelled too. These
// are informational signatures; none of them ever says SoftEther.
package othervpn

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

// Name is the detector's registered name.
const Name = "othervpn"

// Kind is the evidence kind.
const Kind = "vpn.protocol"

func init() { detector.Register(Name, func() detector.Detector { return Detector{} }) }

// Detector labels other VPN protocols.
type Detector struct{}

// Name implements detector.Detector.
func (Detector) Name() string { return Name }

// NewInspector follows UDP, TCP, ESP, AH and GRE flows. A TCP connection
// seen from its start is OpenVPN or PPTP only if the client opens it with
// a small length-prefixed message (OpenVPN's hard reset, PPTP's 156-byte
// start request): a client's first payload whose first two bytes read as
// a length above maxFirstFrame is TLS (0x1603...), text (an HTTP method,
// an SSH banner) or anything else. A first payload from the server decides
// nothing (junk in a SYN-ACK comes before the client's hard reset).
func (Detector) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	switch p.Proto {
	case decode.ProtoTCP:
		if pl := p.Payload; f.SYNSeen && toServer && len(pl) >= 2 && int(binary.BigEndian.Uint16(pl)) > maxFirstFrame {
			return nil
		}
		return newInspector()
	case decode.ProtoUDP, protoESP, protoAH, protoGRE:
		return newInspector()
	}
	return nil
}

// maxFirstFrame bounds the first length-prefixed message of an OpenVPN or
// PPTP connection (a hard reset is tens of bytes; PPTP's request 156).
const maxFirstFrame = 2048

// IP protocol numbers.
const (
	protoGRE = 47
	protoESP = 50
	protoAH  = 51
)

// budget is how many packets of a flow are read before giving up: enough
// for a handshake, or for a few control or data packets each way when the
// capture joined mid-session.
const budget = 32

type inspector struct {
	n       int
	cliOp   uint8   // OpenVPN opcode the client opened with
	cliSID  [8]byte // its session id, which the server's reset acknowledges
	ikeInit bool
	wg      wgState
	sa      [2]saDir    // ESP or AH, per direction (0 = to server)
	ov      [2]ovDir    // OpenVPN control packets, per direction
	tcp     [2]tcpFrame // OpenVPN over TCP framing, per direction
}

// ESP-in-UDP (RFC 3948) without IKE on the same flow is recognised on
// port 4500 only: elsewhere a 4-byte id followed by a counter is also how
// other protocols (OpenVPN's data channel) begin.
const natTPort = 4500

func (in *inspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	in.n++
	if in.n > budget {
		return false
	}
	b := p.Payload
	dir := 1
	if toServer {
		dir = 0
	}
	report := func(sid int, proto, why string) bool {
		s.Report(detector.Evidence{Kind: Kind, Detail: why, Weight: 1, Signature: sid, Mode: detector.Mode(proto),
			Client: f.Client.Addr(), Server: f.Server.Addr(), Flow: *f, Time: p.Time, PcapCnt: p.Index})
		return false
	}
	switch p.Proto {
	case protoESP:
		spi, seq, ok := espHeader(b)
		if !ok {
			return true
		}
		if run := in.sa[dir].next(spi, seq); run >= 1 || (seq == 1 && in.sa[dir].n == 1) {
			return report(detector.SIDESP, "ipsec", "IPsec ESP: SPI constant per direction, sequence numbers incrementing by 1 (or an SA's first packet, sequence number 1)")
		}
		return true
	case protoAH:
		next, spi, seq, rest, ok := ahHeader(b)
		if !ok {
			return true
		}
		if run := in.sa[dir].next(spi, seq); run >= 1 || (seq == 1 && in.sa[dir].n == 1) {
			if _, _, esp := espHeader(rest); next == protoESP && esp {
				return report(detector.SIDESP, "ipsec", "IPsec AH carrying ESP (next header 50): SPI constant per direction, sequence numbers incrementing by 1 (or an SA's first packet)")
			}
			return report(detector.SIDESP, "ipsec", "IPsec AH: SPI constant per direction, sequence numbers incrementing by 1 (or an SA's first packet)")
		}
		return true
	case protoGRE:
		// PPTP's data channel is enhanced GRE (RFC 2637): version 1, key
		// bit set (payload length and call id), protocol PPP.
		if len(b) >= 8 && b[0]&0x20 != 0 && b[1]&7 == 1 && binary.BigEndian.Uint16(b[2:]) == 0x880b {
			return report(detector.SIDPPTP, "pptp", "enhanced GRE (version 1) carrying PPP: PPTP data")
		}
		return true
	case decode.ProtoTCP:
		if len(b) == 0 {
			return true
		}
		// OpenVPN over TCP: 2-byte length, then a hard-reset opcode.
		if toServer && in.cliOp == 0 && in.n < 8 && len(b) >= 2+14 && int(binary.BigEndian.Uint16(b)) == len(b)-2 {
			in.clientReset(b[2:])
		}
		if !toServer && in.cliOp != 0 && len(b) >= 2+14 && in.serverReset(b[2:]) {
			return report(detector.SIDOpenVPNTCP, "openvpn", "OpenVPN over TCP: hard-reset handshake, server acknowledging the client's session id")
		}
		if len(b) >= 8 && binary.BigEndian.Uint32(b[4:]) == 0x1a2b3c4d && binary.BigEndian.Uint16(b[2:]) == 1 {
			return report(detector.SIDPPTP, "pptp", "PPTP control connection (magic cookie)")
		}
		layout := -1
		in.tcp[dir].packets(p.Seq, b, func(pkt []byte, plen int) bool {
			layout = in.ov[dir].control(pkt, plen, &in.ov[1-dir])
			return layout >= 0
		})
		if layout >= 0 {
			return report(detector.SIDOpenVPNTCP, "openvpn", layoutName[layout]+" (over TCP)")
		}
		return true
	}
	// UDP.
	if len(b) == 0 {
		return true
	}
	if why := in.wg.inspect(b, dir); why != "" {
		return report(detector.SIDWireGuard, "wireguard", why)
	}
	if ike := ikeHeader(b); ike != "" {
		if toServer {
			in.ikeInit = true
		} else if in.ikeInit {
			return report(detector.SIDIKE, "ipsec", "IPsec "+ike+" negotiation")
		}
	}
	if toServer && in.cliOp == 0 && len(b) >= 14 {
		in.clientReset(b)
	} else if !toServer && in.cliOp != 0 && len(b) >= 14 && in.serverReset(b) {
		return report(detector.SIDOpenVPNUDP, "openvpn", "OpenVPN over UDP: hard-reset handshake, server acknowledging the client's session id")
	}
	if l := in.ov[dir].control(b, len(b), &in.ov[1-dir]); l >= 0 {
		return report(detector.SIDOpenVPNUDP, "openvpn", layoutName[l])
	}
	if f.Client.Port() == natTPort || f.Server.Port() == natTPort {
		if spi, seq, ok := espHeader(b); ok && in.sa[dir].next(spi, seq) >= 2 {
			return report(detector.SIDESP, "ipsec", "IPsec ESP in UDP (port 4500): SPI constant per direction, sequence numbers incrementing by 1")
		}
	}
	if len(b) >= 12 && b[0] == 0xc8 && b[1] == 0x02 && int(binary.BigEndian.Uint16(b[2:])) == len(b) && in.n <= 2 {
		// L2TPv2 control message: T, L and S bits, version 2, and a length
		// field equal to the datagram's.
		return report(detector.SIDL2TP, "l2tp", fmt.Sprintf("L2TPv2 control message (%d bytes)", len(b)))
	}
	return true
}

// clientReset notes an OpenVPN P_CONTROL_HARD_RESET_CLIENT (key id 0)
// and its session id.
func (in *inspector) clientReset(b []byte) {
	if op := b[0] >> 3; (op == opHardResetClientV2 || op == opHardResetClientV3) && b[0]&7 == 0 {
		in.cliOp = op
		copy(in.cliSID[:], b[1:9])
	}
}

// serverReset: a P_CONTROL_HARD_RESET_SERVER_V2 whose acknowledgement
// carries the client's session id back (as the remote session id).
func (in *inspector) serverReset(b []byte) bool {
	return b[0]>>3 == opHardResetServerV2 && bytes.Contains(b[9:], in.cliSID[:])
}

// ikeHeader recognises an IKE header (optionally after the 4-byte non-ESP
// marker used on port 4500): version 1.0 or 2.0 and a known exchange type.
func ikeHeader(b []byte) string {
	if len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		b = b[4:]
	}
	if len(b) < 28 || int(binary.BigEndian.Uint32(b[24:])) != len(b) {
		return ""
	}
	switch {
	case b[17] == 0x20 && b[18] >= 34 && b[18] <= 37:
		return "IKEv2"
	case b[17] == 0x10 && (b[18] == 2 || b[18] == 4 || b[18] == 5 || b[18] == 32):
		return "IKEv1"
	}
	return ""
}

// Inspectors come from a pool and go back when the flow ends (Release), so
// a new flow allocates nothing once the pool is warm.
var pool detector.FreeList[inspector]

func newInspector() *inspector {
	in := pool.Get()
	return in
}

// Release returns the inspector to the pool; the engine calls it once, when
// the flow ends or Inspect returned false.
func (in *inspector) Release() { pool.Put(in) }

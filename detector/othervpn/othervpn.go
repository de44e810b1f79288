// Package othervpn labels the other VPN protocols a network sees, so that
// an analyst can tell them from SoftEther: OpenVPN over UDP and TCP (also
// when a SoftEther server speaks it), WireGuard, IPsec (IKE and ESP),
// L2TP and PPTP/GRE. These are informational signatures; none of them
// ever says SoftEther.
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

// NewInspector follows UDP, TCP, ESP and GRE flows.
func (Detector) NewInspector(p *decode.Packet, f *detector.Flow) detector.Inspector {
	switch p.Proto {
	case decode.ProtoUDP, decode.ProtoTCP, 50, 47:
		return newInspector()
	}
	return nil
}

type inspector struct {
	n        int
	cliOp    uint8   // OpenVPN opcode the client opened with
	cliSID   [8]byte // its session id, which the server's reset acknowledges
	wgInit   bool
	ikeInit  bool
	espCount int
}

// OpenVPN opcodes (high five bits of the first byte).
const (
	opHardResetClientV2 = 7
	opHardResetServerV2 = 8
	opHardResetClientV3 = 10
)

func (in *inspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	in.n++
	if in.n > 16 {
		return false
	}
	b := p.Payload
	report := func(sid int, proto, why string) bool {
		s.Report(detector.Evidence{Kind: Kind, Detail: why, Weight: 1, Signature: sid, Mode: detector.Mode(proto),
			Client: f.Client.Addr(), Server: f.Server.Addr(), Flow: *f, Time: p.Time, PcapCnt: p.Index})
		return false
	}
	switch p.Proto {
	case 50:
		if in.espCount++; in.espCount == 4 {
			return report(detector.SIDESP, "ipsec", "ESP packets (IPsec tunnel)")
		}
		return true
	case 47:
		if len(b) >= 4 && binary.BigEndian.Uint16(b[2:]) == 0x880b {
			return report(detector.SIDPPTP, "pptp", "GRE carrying PPP (PPTP data)")
		}
		return true
	case decode.ProtoTCP:
		if len(b) == 0 {
			return true
		}
		// OpenVPN over TCP: 2-byte length, then a hard-reset opcode.
		if toServer && in.cliOp == 0 && len(b) >= 2+14 && int(binary.BigEndian.Uint16(b)) == len(b)-2 {
			in.clientReset(b[2:])
			return in.cliOp != 0 || in.n < 4
		}
		if !toServer && in.cliOp != 0 && len(b) >= 2+14 && in.serverReset(b[2:]) {
			return report(detector.SIDOpenVPNTCP, "openvpn", "OpenVPN over TCP: hard-reset handshake, server acknowledging the client's session id")
		}
		if len(b) >= 8 && binary.BigEndian.Uint32(b[4:]) == 0x1a2b3c4d && binary.BigEndian.Uint16(b[2:]) == 1 {
			return report(detector.SIDPPTP, "pptp", "PPTP control connection (magic cookie)")
		}
		return in.cliOp != 0
	}
	// UDP.
	if len(b) == 0 {
		return true
	}
	switch {
	case toServer && len(b) == 148 && b[0] == 1 && b[1] == 0 && b[2] == 0 && b[3] == 0:
		in.wgInit = true
	case !toServer && in.wgInit && len(b) == 92 && b[0] == 2 && b[1] == 0 && b[2] == 0 && b[3] == 0:
		return report(detector.SIDWireGuard, "wireguard", "WireGuard handshake initiation (148 B) and response (92 B)")
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

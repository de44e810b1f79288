package detector

// Signature is one alert sewatch can raise. This file is the one list:
// ids live in one documented range, 8700000-8700999 (gid 1), so they never
// collide with Suricata's local (1000000-1999999) or ET (2000000-2999999)
// ranges; README.md and schemas/signatures.json repeat it, and a test keeps
// the schema file equal.
type Signature struct {
	ID       int    `json:"signature_id"`
	Rev      int    `json:"rev"`
	Msg      string `json:"signature"`
	Category string `json:"category"`
	Severity int    `json:"severity"`
}

// GID is the generator id of every sewatch alert.
const GID = 1

const (
	catPolicy = "Potential Corporate Privacy Violation"
	catInfo   = "Generic Protocol Command Decode"
)

// Signature ids.
const (
	SIDDirect     = 8700001
	SIDHTTPProxy  = 8700002
	SIDSOCKS      = 8700003
	SIDSSH        = 8700004
	SIDUDPAccel   = 8700005
	SIDOverICMP   = 8700006
	SIDOverDNS    = 8700007
	SIDAdmin      = 8700008
	SIDMidSession = 8700009
	SIDCascade    = 8700010

	// SoftEther software present (vendor services), not a tunnel.
	SIDVendorDNS       = 8700020
	SIDVendorNATT      = 8700021
	SIDVendorKeepAlive = 8700022
	SIDVendorDDNS      = 8700023
	SIDVendorAzure     = 8700024
	SIDVendorDDNSTLS   = 8700025

	// A host of the home networks serving SoftEther sessions.
	SIDServerInside = 8700030
	SIDRelayInside  = 8700031

	// Other VPN protocols, informational; never SoftEther.
	SIDOpenVPNUDP = 8700101
	SIDOpenVPNTCP = 8700102
	SIDWireGuard  = 8700103
	SIDIKE        = 8700104
	SIDESP        = 8700105
	SIDL2TP       = 8700106
	SIDPPTP       = 8700107
	SIDSSTP       = 8700108
)

// Signatures is the whole list, in id order.
var Signatures = []Signature{
	{SIDDirect, 1, "SEWATCH SoftEther VPN session (direct TLS)", catPolicy, 1},
	{SIDHTTPProxy, 1, "SEWATCH SoftEther VPN session via HTTP proxy", catPolicy, 1},
	{SIDSOCKS, 1, "SEWATCH SoftEther VPN session via SOCKS proxy", catPolicy, 1},
	{SIDSSH, 1, "SEWATCH SoftEther VPN session via SSH port forwarding (heuristic)", catPolicy, 2},
	{SIDUDPAccel, 1, "SEWATCH SoftEther VPN UDP acceleration flow", catPolicy, 1},
	{SIDOverICMP, 1, "SEWATCH SoftEther VPN over ICMP", catPolicy, 1},
	{SIDOverDNS, 1, "SEWATCH SoftEther VPN over DNS", catPolicy, 1},
	{SIDAdmin, 1, "SEWATCH SoftEther VPN remote administration session (vpncmd/Server Manager)", catPolicy, 2},
	{SIDMidSession, 1, "SEWATCH SoftEther VPN session in progress (joined mid-session)", catPolicy, 1},
	{SIDCascade, 1, "SEWATCH SoftEther VPN cascade (server-to-server) session", catPolicy, 1},
	{SIDVendorDNS, 1, "SEWATCH SoftEther software present: vendor service name lookup", catPolicy, 3},
	{SIDVendorNATT, 1, "SEWATCH SoftEther software present: NAT traversal service exchange", catPolicy, 2},
	{SIDVendorKeepAlive, 1, "SEWATCH SoftEther server keep-alive packet", catPolicy, 2},
	{SIDVendorDDNS, 1, "SEWATCH SoftEther software present: DDNS HTTP request", catPolicy, 2},
	{SIDVendorAzure, 1, "SEWATCH SoftEther VPN Azure relay control channel", catPolicy, 1},
	{SIDVendorDDNSTLS, 1, "SEWATCH SoftEther software present: TLS to vendor DDNS/update service", catPolicy, 3},
	{SIDServerInside, 1, "SEWATCH SoftEther VPN server inside the network accepting outside sessions", catPolicy, 1},
	{SIDRelayInside, 1, "SEWATCH SoftEther VPN relay inside the network (several outside clients, VPN Gate-like)", catPolicy, 1},
	{SIDOpenVPNUDP, 1, "SEWATCH OpenVPN session (UDP)", catInfo, 3},
	{SIDOpenVPNTCP, 1, "SEWATCH OpenVPN session (TCP)", catInfo, 3},
	{SIDWireGuard, 1, "SEWATCH WireGuard handshake", catInfo, 3},
	{SIDIKE, 1, "SEWATCH IPsec IKE negotiation", catInfo, 3},
	{SIDESP, 1, "SEWATCH IPsec ESP tunnel", catInfo, 3},
	{SIDL2TP, 1, "SEWATCH L2TP control session", catInfo, 3},
	{SIDPPTP, 1, "SEWATCH PPTP session", catInfo, 3},
	{SIDSSTP, 1, "SEWATCH SSTP VPN session", catInfo, 3},
}

// ByID looks a signature up.
func ByID(id int) (Signature, bool) {
	for _, s := range Signatures {
		if s.ID == id {
			return s, true
		}
	}
	return Signature{}, false
}

// SessionSignature picks the session signature for a mode.
func SessionSignature(mode Mode) Signature {
	id := SIDDirect
	switch mode {
	case ModeHTTPProxy:
		id = SIDHTTPProxy
	case ModeSOCKS5, ModeSOCKS4:
		id = SIDSOCKS
	case ModeSSH:
		id = SIDSSH
	case ModeUDPAccel:
		id = SIDUDPAccel
	case ModeOverICMP:
		id = SIDOverICMP
	case ModeOverDNS:
		id = SIDOverDNS
	case ModeAdmin:
		id = SIDAdmin
	case ModeMidSession:
		id = SIDMidSession
	case ModeCascade:
		id = SIDCascade
	}
	s, _ := ByID(id)
	return s
}

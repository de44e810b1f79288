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
	// Meta is the rule metadata Emerging Threats rules carry (MITRE ATT&CK,
	// signature_severity, ...), so SIEM rules written for ET alerts match
	// sewatch's alerts unchanged.
	Meta RuleMeta `json:"metadata"`
}

// Technique is one MITRE ATT&CK (Enterprise) technique with the tactic it
// serves here. Names are ATT&CK's own; EVE writes them the ET way
// (underscores), ECS documents as they are.
type Technique struct {
	TacticID   string `json:"tactic_id"`
	TacticName string `json:"tactic_name"`
	ID         string `json:"technique_id"`
	Name       string `json:"technique_name"`
}

// RuleMeta is a signature's ET-style metadata.
type RuleMeta struct {
	Techniques []Technique `json:"mitre"`
	// SignatureSeverity is ET's scale: Informational, Minor, Major, Critical.
	SignatureSeverity string `json:"signature_severity"`
	// AttackTarget is ET's attack_target: Client_Endpoint or Server.
	AttackTarget string `json:"attack_target"`
	// Deployment is ET's deployment: where a sensor sees it.
	Deployment []string `json:"deployment"`
	// CreatedAt and UpdatedAt are ET's dates, YYYY_MM_DD.
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

// ATT&CK tactics and techniques the signatures map to. Why these:
// a SoftEther session carries Ethernet frames inside another protocol
// (T1572); over ICMP it also uses a non-application protocol (T1095); the
// remote administration protocol is remote-access tooling (T1219); DDNS
// names make a server reachable under changing addresses (T1568); VPN Azure
// and VPN Gate-like relays forward others' traffic (T1090); a SoftEther
// server inside the network is an external remote service (T1133, both
// initial access and persistence in ATT&CK).
var (
	tunnel       = Technique{"TA0011", "Command and Control", "T1572", "Protocol Tunneling"}
	nonApp       = Technique{"TA0011", "Command and Control", "T1095", "Non-Application Layer Protocol"}
	remoteAccess = Technique{"TA0011", "Command and Control", "T1219", "Remote Access Software"}
	dynRes       = Technique{"TA0011", "Command and Control", "T1568", "Dynamic Resolution"}
	proxy        = Technique{"TA0011", "Command and Control", "T1090", "Proxy"}
	extRemoteI   = Technique{"TA0001", "Initial Access", "T1133", "External Remote Services"}
	extRemoteP   = Technique{"TA0003", "Persistence", "T1133", "External Remote Services"}
)

const (
	info  = "Informational"
	minor = "Minor"
	major = "Major"

	client = "Client_Endpoint"
	server = "Server"

	// created is when the signatures first shipped (rev 1 each).
	created = "2026_11_22"
)

func meta(sev, target, date string, t ...Technique) RuleMeta {
	return RuleMeta{Techniques: t, SignatureSeverity: sev, AttackTarget: target,
		Deployment: []string{"Perimeter", "Internal"}, CreatedAt: date, UpdatedAt: date}
}

// revised is m for a rule changed on date (ET's updated_at).
func revised(m RuleMeta, date string) RuleMeta {
	m.UpdatedAt = date
	return m
}

func tunnelMeta(sev, target string) RuleMeta { return meta(sev, target, created, tunnel) }

// EVEMetadata returns the ET metadata keys as EVE's alert.metadata writes
// them: lists of strings, ATT&CK names with underscores
// ("Command_And_Control"), the technique lists aligned with the tactic lists.
func (m RuleMeta) EVEMetadata() map[string][]string {
	out := map[string][]string{
		"signature_severity": {m.SignatureSeverity},
		"attack_target":      {m.AttackTarget},
		"deployment":         append([]string(nil), m.Deployment...),
		"created_at":         {m.CreatedAt},
		"updated_at":         {m.UpdatedAt},
	}
	for _, t := range m.Techniques {
		out["mitre_tactic_id"] = append(out["mitre_tactic_id"], t.TacticID)
		out["mitre_tactic_name"] = append(out["mitre_tactic_name"], etName(t.TacticName))
		out["mitre_technique_id"] = append(out["mitre_technique_id"], t.ID)
		out["mitre_technique_name"] = append(out["mitre_technique_name"], etName(t.Name))
	}
	return out
}

// ETKeys are the metadata keys every alert carries (EVEMetadata's keys).
var ETKeys = []string{"mitre_tactic_id", "mitre_tactic_name", "mitre_technique_id", "mitre_technique_name",
	"signature_severity", "attack_target", "deployment", "created_at", "updated_at"}

// etName writes an ATT&CK name as ET rules do: words capitalised, joined
// by underscores ("Command and Control" -> "Command_And_Control").
func etName(s string) string {
	b := []byte(s)
	up := true
	for i, c := range b {
		switch {
		case c == ' ':
			b[i], up = '_', true
		case up && c >= 'a' && c <= 'z':
			b[i], up = c-'a'+'A', false
		default:
			up = false
		}
	}
	return string(b)
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
	// Repeated connect attempts that never became a session.
	SIDAttempts = 8700011

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
	{SIDDirect, 1, "SEWATCH SoftEther VPN session (direct TLS)", catPolicy, 1, tunnelMeta(major, client)},
	{SIDHTTPProxy, 1, "SEWATCH SoftEther VPN session via HTTP proxy", catPolicy, 1, tunnelMeta(major, client)},
	{SIDSOCKS, 1, "SEWATCH SoftEther VPN session via SOCKS proxy", catPolicy, 1, tunnelMeta(major, client)},
	{SIDSSH, 1, "SEWATCH SoftEther VPN session via SSH port forwarding (heuristic)", catPolicy, 2, tunnelMeta(minor, client)},
	{SIDUDPAccel, 1, "SEWATCH SoftEther VPN UDP acceleration flow", catPolicy, 1, tunnelMeta(major, client)},
	{SIDOverICMP, 1, "SEWATCH SoftEther VPN over ICMP", catPolicy, 1, meta(major, client, created, tunnel, nonApp)},
	{SIDOverDNS, 1, "SEWATCH SoftEther VPN over DNS", catPolicy, 1, tunnelMeta(major, client)},
	{SIDAdmin, 1, "SEWATCH SoftEther VPN remote administration session (vpncmd/Server Manager)", catPolicy, 2, meta(minor, server, created, remoteAccess)},
	{SIDMidSession, 1, "SEWATCH SoftEther VPN session in progress (joined mid-session)", catPolicy, 1, tunnelMeta(major, client)},
	{SIDCascade, 1, "SEWATCH SoftEther VPN cascade (server-to-server) session", catPolicy, 1, meta(major, server, "2026_12_01", tunnel)},
	{SIDAttempts, 1, "SEWATCH SoftEther VPN connection attempts (no session established)", catPolicy, 2, meta(minor, client, "2026_12_05", tunnel)},
	{SIDVendorDNS, 1, "SEWATCH SoftEther software present: vendor service name lookup", catPolicy, 3, meta(info, client, created, dynRes)},
	{SIDVendorNATT, 1, "SEWATCH SoftEther software present: NAT traversal service exchange", catPolicy, 2, meta(minor, server, created, tunnel)},
	{SIDVendorKeepAlive, 1, "SEWATCH SoftEther server keep-alive packet", catPolicy, 2, meta(minor, server, created, extRemoteP)},
	{SIDVendorDDNS, 1, "SEWATCH SoftEther software present: DDNS HTTP request", catPolicy, 2, meta(minor, server, created, dynRes)},
	{SIDVendorAzure, 1, "SEWATCH SoftEther VPN Azure relay control channel", catPolicy, 1, meta(major, server, created, proxy)},
	{SIDVendorDDNSTLS, 1, "SEWATCH SoftEther software present: TLS to vendor DDNS/update service", catPolicy, 3, meta(info, server, created, dynRes)},
	{SIDServerInside, 1, "SEWATCH SoftEther VPN server inside the network accepting outside sessions", catPolicy, 1, meta(major, server, created, extRemoteI, extRemoteP)},
	{SIDRelayInside, 1, "SEWATCH SoftEther VPN relay inside the network (several outside clients, VPN Gate-like)", catPolicy, 1, meta(major, server, created, proxy, extRemoteI, extRemoteP)},
	{SIDOpenVPNUDP, 1, "SEWATCH OpenVPN session (UDP)", catInfo, 3, meta(info, client, created, tunnel)},
	{SIDOpenVPNTCP, 1, "SEWATCH OpenVPN session (TCP)", catInfo, 3, meta(info, client, created, tunnel)},
	{SIDWireGuard, 1, "SEWATCH WireGuard handshake", catInfo, 3, meta(info, client, created, tunnel)},
	{SIDIKE, 1, "SEWATCH IPsec IKE negotiation", catInfo, 3, meta(info, client, created, tunnel)},
	// rev 2: AH is named too (AH-only SAs raise this signature as well).
	{SIDESP, 2, "SEWATCH IPsec ESP or AH tunnel", catInfo, 3, revised(meta(info, client, created, tunnel), "2026_12_06")},
	{SIDL2TP, 1, "SEWATCH L2TP control session", catInfo, 3, meta(info, client, created, tunnel)},
	{SIDPPTP, 1, "SEWATCH PPTP session", catInfo, 3, meta(info, client, created, tunnel)},
	{SIDSSTP, 1, "SEWATCH SSTP VPN session", catInfo, 3, meta(info, client, "2026_12_01", tunnel)},
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

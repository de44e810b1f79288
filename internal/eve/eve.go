// Package eve encodes Suricata-EVE events: the exact timestamp and address
// forms Suricata writes, the 51-bit flow_id, Community ID v1, and the alert,
// tls, flow and stats objects, keeping to what Suricata's own EVE schema
// accepts (no custom keys outside alert.metadata).
package eve

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"strconv"
	"time"
)

// TimestampLayout is Suricata's timestamp: six fraction digits, offset
// without a colon (never "Z").
const TimestampLayout = "2006-01-02T15:04:05.000000-0700"

// Timestamp formats t in Suricata's form in the given zone (UTC if nil).
func Timestamp(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format(TimestampLayout)
}

// IP formats an address as Suricata does: dotted IPv4, and IPv6 as eight
// four-digit lower-case groups without "::" compression.
func IP(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	buf := make([]byte, 0, 39)
	const hexd = "0123456789abcdef"
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			buf = append(buf, ':')
		}
		buf = append(buf, hexd[b[i]>>4], hexd[b[i]&15], hexd[b[i+1]>>4], hexd[b[i+1]&15])
	}
	return string(buf)
}

// ProtoName is Suricata's proto string.
func ProtoName(p uint8) string {
	switch p {
	case 1:
		return "ICMP"
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 58:
		return "IPv6-ICMP"
	case 47:
		return "GRE"
	case 50:
		return "ESP"
	case 132:
		return "SCTP"
	}
	return strconv.Itoa(int(p))
}

// CommunityID computes Community ID v1 (seed 0 by default) for a flow.
// For ICMP, sport/dport are the type and code; one-way ICMP types are not
// reordered, as the specification requires.
func CommunityID(seed uint16, src, dst netip.Addr, proto uint8, sport, dport uint16) string {
	src, dst = src.Unmap(), dst.Unmap()
	oneWay := false
	if proto == 1 || proto == 58 {
		sport, dport, oneWay = icmpPorts(proto, uint8(sport), uint8(dport))
	}
	if !oneWay {
		c := src.Compare(dst)
		if c > 0 || (c == 0 && sport > dport) {
			src, dst, sport, dport = dst, src, dport, sport
		}
	}
	buf := make([]byte, 0, 2+16+16+4+4)
	buf = binary.BigEndian.AppendUint16(buf, seed)
	buf = append(buf, src.AsSlice()...)
	buf = append(buf, dst.AsSlice()...)
	buf = append(buf, proto, 0)
	switch proto {
	case 1, 6, 17, 58, 132:
		buf = binary.BigEndian.AppendUint16(buf, sport)
		buf = binary.BigEndian.AppendUint16(buf, dport)
	}
	sum := sha1.Sum(buf)
	return "1:" + base64.StdEncoding.EncodeToString(sum[:])
}

// icmpPorts maps ICMP type/code to Community ID's port pair.
func icmpPorts(proto, typ, code uint8) (uint16, uint16, bool) {
	var peer map[uint8]uint8
	if proto == 1 {
		peer = icmp4Peers
	} else {
		peer = icmp6Peers
	}
	if p, ok := peer[typ]; ok {
		return uint16(typ), uint16(p), false
	}
	return uint16(typ), uint16(code), true
}

var icmp4Peers = map[uint8]uint8{8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
var icmp6Peers = map[uint8]uint8{128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130, 144: 145, 145: 144}

// Alert is EVE's alert object.
type Alert struct {
	Action      string              `json:"action"`
	GID         int                 `json:"gid"`
	SignatureID int                 `json:"signature_id"`
	Rev         int                 `json:"rev"`
	Signature   string              `json:"signature"`
	Category    string              `json:"category"`
	Severity    int                 `json:"severity"`
	Metadata    map[string][]string `json:"metadata,omitempty"`
}

// JA3 is EVE's ja3/ja3s object.
type JA3 struct {
	Hash   string `json:"hash,omitempty"`
	String string `json:"string,omitempty"`
}

// TLS is the subset of EVE's tls object sewatch fills.
type TLS struct {
	Subject     string   `json:"subject,omitempty"`
	IssuerDN    string   `json:"issuerdn,omitempty"`
	Serial      string   `json:"serial,omitempty"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	SNI         string   `json:"sni,omitempty"`
	Version     string   `json:"version,omitempty"`
	NotBefore   string   `json:"notbefore,omitempty"`
	NotAfter    string   `json:"notafter,omitempty"`
	JA3         *JA3     `json:"ja3,omitempty"`
	JA3S        *JA3     `json:"ja3s,omitempty"`
	JA4         string   `json:"ja4,omitempty"`
	ClientALPNs []string `json:"client_alpns,omitempty"`
}

// Flow is EVE's flow object as carried inside an alert (client → server)
// or a flow event (End, Age, State, Reason, Alerted).
type Flow struct {
	PktsToServer  uint64 `json:"pkts_toserver"`
	PktsToClient  uint64 `json:"pkts_toclient"`
	BytesToServer uint64 `json:"bytes_toserver"`
	BytesToClient uint64 `json:"bytes_toclient"`
	Start         string `json:"start"`
	End           string `json:"end,omitempty"`
	Age           *int64 `json:"age,omitempty"`
	State         string `json:"state,omitempty"`
	Reason        string `json:"reason,omitempty"`
	Alerted       *bool  `json:"alerted,omitempty"`
	SrcIP         string `json:"src_ip,omitempty"`
	DestIP        string `json:"dest_ip,omitempty"`
	SrcPort       *int   `json:"src_port,omitempty"`
	DestPort      *int   `json:"dest_port,omitempty"`
}

// Event is one EVE record. Field order follows Suricata's writer.
type Event struct {
	Timestamp    string    `json:"timestamp"`
	FlowID       int64     `json:"flow_id,omitempty"`
	InIface      string    `json:"in_iface,omitempty"`
	PcapCnt      uint64    `json:"pcap_cnt,omitempty"`
	EventType    string    `json:"event_type"`
	VLAN         []int     `json:"vlan,omitempty"`
	SrcIP        string    `json:"src_ip,omitempty"`
	SrcPort      *int      `json:"src_port,omitempty"`
	DestIP       string    `json:"dest_ip,omitempty"`
	DestPort     *int      `json:"dest_port,omitempty"`
	Proto        string    `json:"proto,omitempty"`
	ICMPType     *int      `json:"icmp_type,omitempty"`
	ICMPCode     *int      `json:"icmp_code,omitempty"`
	PktSrc       string    `json:"pkt_src,omitempty"`
	CommunityID  string    `json:"community_id,omitempty"`
	Alert        *Alert    `json:"alert,omitempty"`
	TLS          *TLS      `json:"tls,omitempty"`
	AppProto     string    `json:"app_proto,omitempty"`
	Direction    string    `json:"direction,omitempty"`
	Flow         *Flow     `json:"flow,omitempty"`
	Metadata     *Metadata `json:"metadata,omitempty"`
	Stats        *Stats    `json:"stats,omitempty"`
	Host         string    `json:"host,omitempty"`
	PcapFilename string    `json:"pcap_filename,omitempty"`
}

// Metadata is EVE's top-level metadata object; sewatch uses flowvars to
// list the flows of a session in its flow event.
type Metadata struct {
	Flowvars []Flowvar `json:"flowvars,omitempty"`
}

// Flowvar is one flow variable.
type Flowvar struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Stats is the subset of EVE's stats object sewatch maps its counters onto
// (the schema is closed: no custom keys).
type Stats struct {
	Uptime  int64         `json:"uptime"`
	Capture *CaptureStats `json:"capture,omitempty"`
	Decoder DecoderStats  `json:"decoder"`
	Flow    FlowStats     `json:"flow"`
	TCP     TCPStats      `json:"tcp"`
	Detect  DetectStats   `json:"detect"`
}

// TCPStats maps the budget for per-flow buffers onto Suricata's stream
// memcap counters: a handshake buffer refused room and dropped counts as
// segment_memcap_drop, the bytes reserved now as reassembly_memuse.
type TCPStats struct {
	SegmentMemcapDrop uint64 `json:"segment_memcap_drop"`
	ReassemblyMemuse  uint64 `json:"reassembly_memuse"`
}

// CaptureStats maps kernel counters.
type CaptureStats struct {
	KernelPackets uint64 `json:"kernel_packets"`
	KernelDrops   uint64 `json:"kernel_drops"`
	KernelIfDrops uint64 `json:"kernel_ifdrops"`
	Errors        uint64 `json:"errors"`
	// AFPacket is Suricata's capture.afpacket group.
	AFPacket *AFPacketStats `json:"afpacket,omitempty"`
}

// AFPacketStats: poll_errors counts the polls that reported an error on a
// capture socket (sewatch: its interface went down or away).
type AFPacketStats struct {
	PollErrors uint64 `json:"poll_errors"`
}

// DecoderStats maps decode counters.
type DecoderStats struct {
	Pkts     uint64 `json:"pkts"`
	Bytes    uint64 `json:"bytes"`
	Invalid  uint64 `json:"invalid"`
	IPv4     uint64 `json:"ipv4"`
	IPv6     uint64 `json:"ipv6"`
	TCP      uint64 `json:"tcp"`
	UDP      uint64 `json:"udp"`
	ICMPv4   uint64 `json:"icmpv4"`
	ICMPv6   uint64 `json:"icmpv6"`
	VLAN     uint64 `json:"vlan"`
	MaxPkt   uint64 `json:"max_pkt_size"`
	AvgPkt   uint64 `json:"avg_pkt_size"`
	Fragment uint64 `json:"-"`
	// Link layers and encapsulations, under Suricata's names.
	Ethernet         uint64 `json:"ethernet"`
	SLL              uint64 `json:"sll"`
	SLL2             uint64 `json:"sll2"`
	Null             uint64 `json:"null"`
	Raw              uint64 `json:"raw"`
	PPP              uint64 `json:"ppp"`
	PPPoE            uint64 `json:"pppoe"`
	MPLS             uint64 `json:"mpls"`
	CHDLC            uint64 `json:"chdlc"`
	GRE              uint64 `json:"gre"`
	ERSPAN           uint64 `json:"erspan"`
	VXLAN            uint64 `json:"vxlan"`
	Geneve           uint64 `json:"geneve"`
	Teredo           uint64 `json:"teredo"`
	NSH              uint64 `json:"nsh"`
	VNTag            uint64 `json:"vntag"`
	IEEE8021ah       uint64 `json:"ieee8021ah"`
	VLANQinQ         uint64 `json:"vlan_qinq"`
	IPv4InIPv4       uint64 `json:"ipv4_in_ipv4"`
	IPv6InIPv4       uint64 `json:"ipv6_in_ipv4"`
	IPv4InIPv6       uint64 `json:"ipv4_in_ipv6"`
	IPv6InIPv6       uint64 `json:"ipv6_in_ipv6"`
	ARP              uint64 `json:"arp"`
	UnknownEthertype uint64 `json:"unknown_ethertype"`
	TooManyLayers    uint64 `json:"too_many_layers"`
}

// FlowStats maps flow table counters.
type FlowStats struct {
	Total  uint64 `json:"total"`
	Active uint64 `json:"active"`
	TCP    uint64 `json:"tcp"`
	UDP    uint64 `json:"udp"`
	ICMPv4 uint64 `json:"icmpv4"`
	ICMPv6 uint64 `json:"icmpv6"`
	// GetUsed is Suricata's name for flows taken over when the table is
	// full: sewatch's evictions at flow.max-flows.
	GetUsed uint64 `json:"get_used"`
}

// DetectStats maps alert counters; output drops are reported as
// alert_queue_overflow.
type DetectStats struct {
	Alert              uint64 `json:"alert"`
	AlertQueueOverflow uint64 `json:"alert_queue_overflow"`
	AlertsSuppressed   uint64 `json:"alerts_suppressed"`
}

// Marshal encodes the event as one JSON line without the trailing newline.
func (e *Event) Marshal() ([]byte, error) { return json.Marshal(e) }

// Int returns a pointer for optional integer fields.
func Int(v int) *int { return &v }

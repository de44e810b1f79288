// Package decode turns a captured frame into a reusable Packet: addresses,
// ports, TCP flags and sequence numbers, ICMP type/code, VLAN ids and the L4
// payload. The link layer (Ethernet, 802.1Q/QinQ, Linux SLL/SLL2, BSD
// loopback, raw IP) is walked by hand; so are IPv4 and IPv6 headers
// followed directly by TCP or UDP (the fast paths). Other IP and L4
// headers are decoded with gopacket's DecodingLayerParser into
// preallocated layers, so decoding a packet allocates nothing.
package decode

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// IP protocol numbers the engine tracks flows for.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// TCP flag bits as in the TCP header.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagPSH uint8 = 0x08
	FlagACK uint8 = 0x10
)

// LinkType is a pcap LINKTYPE_ value. gopacket v1.1.19's layers.LinkType is
// a uint8 and cannot hold LINKTYPE_LINUX_SLL2 (276).
type LinkType uint32

// Link types the decoder understands.
const (
	LinkNull      LinkType = 0
	LinkEthernet  LinkType = 1
	LinkRaw12     LinkType = 12
	LinkRaw14     LinkType = 14
	LinkRaw       LinkType = 101
	LinkLoop      LinkType = 108
	LinkLinuxSLL  LinkType = 113
	LinkIPv4      LinkType = 228
	LinkIPv6      LinkType = 229
	LinkLinuxSLL2 LinkType = 276
)

// Packet is one decoded packet. It is reused for every packet a worker reads:
// Payload is borrowed from the capture buffer and valid only until the next
// Decode; copy it before keeping it.
type Packet struct {
	Time    time.Time
	Index   uint64 // 1-based packet number in the capture (pcap_cnt)
	WireLen int

	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
	IPVersion        uint8

	TCPFlags uint8
	Seq, Ack uint32
	Window   uint16

	ICMPType, ICMPCode uint8
	ICMPID, ICMPSeq    uint16

	VLAN  [3]uint16
	NVLAN uint8

	// Fragment is set for IP fragments. A first fragment carries ports and a
	// partial payload; later fragments have no ports (Proto still set).
	Fragment      bool
	FirstFragment bool

	Payload []byte
}

// HasPorts reports whether the packet carries transport ports.
func (p *Packet) HasPorts() bool {
	return (p.Proto == ProtoTCP || p.Proto == ProtoUDP) && !(p.Fragment && !p.FirstFragment)
}

// Errors Decode reports; the engine counts them, it never stops on them.
var (
	ErrUnsupportedLink = errors.New("unsupported link type")
	ErrNotIP           = errors.New("not an ip packet")
	ErrTruncated       = errors.New("truncated packet")
	ErrMalformed       = errors.New("malformed packet")
)

// Decoder holds preallocated layers. Not safe for concurrent use: one per worker.
type Decoder struct {
	link LinkType

	ip4    ip4Layer
	ip6    ip6Layer
	ext    extLayer
	frag6  ipv6Fragment
	tcp    layers.TCP
	udp    layers.UDP
	icmp4  layers.ICMPv4
	icmp6  layers.ICMPv6
	p4, p6 *gopacket.DecodingLayerParser
	dl     []gopacket.LayerType

	// ipPayload is what follows the last IP header (tunnels); depth counts
	// encapsulations of the packet being decoded; noTunnel re-decodes an
	// outer packet whose inner one failed.
	ipPayload []byte
	depth     int
	noTunnel  bool
	// slowOnly turns the IPv4 and IPv6 fast paths off (tests compare both
	// paths); fast says the last packet took one.
	slowOnly, fast bool

	// Counts are per-layer packet counters and Skipped the frames not
	// decoded, by reason; the engine collects and zeroes both.
	Counts  [NumLayers]uint64
	Skipped SkipTable
}

// NewDecoder returns a decoder for frames of the given link type.
func NewDecoder(link LinkType) *Decoder {
	d := &Decoder{link: link, dl: make([]gopacket.LayerType, 0, 8)}
	d.p4 = newParser(layers.LayerTypeIPv4, &d.ip4, &d.tcp, &d.udp, &d.icmp4)
	d.p6 = newParser(layers.LayerTypeIPv6, &d.ip6, &d.ext, &d.frag6, &d.tcp, &d.udp, &d.icmp6)
	for _, p := range []*gopacket.DecodingLayerParser{d.p4, d.p6} {
		p.IgnoreUnsupported = true
		p.IgnorePanic = true
	}
	return d
}

// newParser keeps the layers in a slice indexed by layer type instead of
// gopacket's default map: one map lookup per layer was a fifth of the
// decode time.
func newParser(first gopacket.LayerType, ls ...gopacket.DecodingLayer) *gopacket.DecodingLayerParser {
	p := gopacket.NewDecodingLayerParser(first)
	var c gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
	for _, l := range ls {
		c = c.Put(l)
	}
	p.SetDecodingLayerContainer(c)
	return p
}

// LinkType is the link type this decoder expects.
func (d *Decoder) LinkType() LinkType { return d.link }

// Ethernet types.
const (
	etIPv4 = 0x0800
	etIPv6 = 0x86DD
	etVLAN = 0x8100
	etQinQ = 0x88A8
	et9100 = 0x9100
)

// Decode fills p from one frame. p.Time and p.Index are left to the caller.
// A frame that is not IP (ARP, LLDP, a PPP control packet, an encrypted
// 802.11 or MACsec frame) returns ErrNotIP and is recorded in d.Skipped by
// reason; an unknown link type returns ErrUnsupportedLink, recorded too.
func (d *Decoder) Decode(data []byte, p *Packet) error {
	p.reset()
	p.WireLen = len(data)
	d.depth, d.noTunnel, d.fast = 0, false, false
	return d.decodeLink(d.link, data, p)
}

// SetLink changes the link type of the frames that follow (pcapng files
// mix interfaces of different link types).
func (d *Decoder) SetLink(l LinkType) { d.link = l }

// reset clears what the previous packet left, field by field: copying a
// whole zero Packet costs a memmove per packet on the hot path.
func (p *Packet) reset() {
	p.WireLen = 0
	p.Src, p.Dst = netip.Addr{}, netip.Addr{}
	p.SrcPort, p.DstPort, p.Proto, p.IPVersion = 0, 0, 0, 0
	p.TCPFlags, p.Seq, p.Ack, p.Window = 0, 0, 0, 0
	p.ICMPType, p.ICMPCode, p.ICMPID, p.ICMPSeq = 0, 0, 0, 0
	p.NVLAN = 0
	p.Fragment, p.FirstFragment = false, false
	p.Payload = nil
}

func (d *Decoder) decodeIPv4(b []byte, p *Packet) error {
	if len(b) < 20 {
		return ErrTruncated
	}
	if !d.slowOnly && d.fastIP(b, p, false) {
		d.fast = true
		return nil
	}
	if err := d.p4.DecodeLayers(b, &d.dl); err != nil && len(d.dl) == 0 {
		return ErrMalformed
	}
	if len(d.dl) == 0 || d.dl[0] != layers.LayerTypeIPv4 {
		return ErrMalformed
	}
	p.IPVersion = 4
	d.ipPayload = d.ip4.Payload
	p.Src, _ = netip.AddrFromSlice(d.ip4.SrcIP)
	p.Dst, _ = netip.AddrFromSlice(d.ip4.DstIP)
	p.Proto = uint8(d.ip4.Protocol)
	if d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0 {
		p.Fragment = true
		if d.ip4.FragOffset != 0 {
			return nil
		}
		p.FirstFragment = true
		return d.decodeL4Fragment(d.ip4.Payload, p)
	}
	return d.fillL4(p)
}

func (d *Decoder) decodeIPv6(b []byte, p *Packet) error {
	if len(b) < 40 {
		return ErrTruncated
	}
	if !d.slowOnly && d.fastIP(b, p, true) {
		d.fast = true
		return nil
	}
	d.frag6.reset()
	if err := d.p6.DecodeLayers(b, &d.dl); err != nil && len(d.dl) == 0 {
		return ErrMalformed
	}
	if len(d.dl) == 0 || d.dl[0] != layers.LayerTypeIPv6 {
		return ErrMalformed
	}
	p.IPVersion = 6
	d.ipPayload = d.ip6.Payload
	p.Proto = uint8(d.ip6.NextHeader)
	if last := d.dl[len(d.dl)-1]; layers.LayerClassIPv6Extension.Contains(last) {
		d.ipPayload = d.ext.Payload
		p.Proto = uint8(d.ext.NextHeader)
	}
	p.Src, _ = netip.AddrFromSlice(d.ip6.SrcIP)
	p.Dst, _ = netip.AddrFromSlice(d.ip6.DstIP)
	if d.frag6.seen {
		p.Fragment = true
		p.Proto = d.frag6.next
		if d.frag6.offset != 0 {
			return nil
		}
		p.FirstFragment = true
		return d.decodeL4Fragment(d.frag6.payload, p)
	}
	// Walk past extension headers: the last decoded layer says where we are.
	for _, t := range d.dl {
		switch t {
		case layers.LayerTypeTCP:
			p.Proto = ProtoTCP
		case layers.LayerTypeUDP:
			p.Proto = ProtoUDP
		case layers.LayerTypeICMPv6:
			p.Proto = ProtoICMPv6
		}
	}
	return d.fillL4(p)
}

// fillL4 copies the L4 fields of whatever the parser decoded last.
func (d *Decoder) fillL4(p *Packet) error {
	last := d.dl[len(d.dl)-1]
	switch last {
	case layers.LayerTypeTCP:
		d.fillTCP(p)
	case layers.LayerTypeUDP:
		d.fillUDP(p)
	case layers.LayerTypeICMPv4:
		p.ICMPType, p.ICMPCode = d.icmp4.TypeCode.Type(), d.icmp4.TypeCode.Code()
		p.ICMPID, p.ICMPSeq = d.icmp4.Id, d.icmp4.Seq
		p.Payload = d.icmp4.Payload
	case layers.LayerTypeICMPv6:
		p.ICMPType, p.ICMPCode = d.icmp6.TypeCode.Type(), d.icmp6.TypeCode.Code()
		pl := d.icmp6.Payload
		// Echo request/reply: id and seq lead the ICMPv6 body.
		if (p.ICMPType == 128 || p.ICMPType == 129) && len(pl) >= 4 {
			p.ICMPID, p.ICMPSeq = binary.BigEndian.Uint16(pl), binary.BigEndian.Uint16(pl[2:])
			pl = pl[4:]
		}
		p.Payload = pl
	default:
		// IP header decoded but the L4 header was missing or broken.
		switch p.Proto {
		case ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6:
			return ErrTruncated
		}
		// Other protocols (GRE, ESP, tunnels): the IP payload.
		p.Payload = d.ipPayload
	}
	return nil
}

func (d *Decoder) fillTCP(p *Packet) {
	t := &d.tcp
	p.SrcPort, p.DstPort = uint16(t.SrcPort), uint16(t.DstPort)
	p.Seq, p.Ack, p.Window = t.Seq, t.Ack, t.Window
	var f uint8
	if t.FIN {
		f |= FlagFIN
	}
	if t.SYN {
		f |= FlagSYN
	}
	if t.RST {
		f |= FlagRST
	}
	if t.PSH {
		f |= FlagPSH
	}
	if t.ACK {
		f |= FlagACK
	}
	p.TCPFlags = f
	p.Payload = t.Payload
}

func (d *Decoder) fillUDP(p *Packet) {
	p.SrcPort, p.DstPort = uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
	p.Payload = d.udp.Payload
}

// decodeL4Fragment reads the transport header of a first fragment; the
// payload it leaves is the part this fragment carries.
func (d *Decoder) decodeL4Fragment(b []byte, p *Packet) error {
	switch p.Proto {
	case ProtoUDP:
		if len(b) < 8 {
			return ErrTruncated
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		p.Payload = b[8:]
	case ProtoTCP:
		if len(b) < 20 {
			return ErrTruncated
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		p.Seq, p.Ack = binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])
		p.TCPFlags = b[13] & 0x1f
		hl := int(b[12]>>4) * 4
		if hl < 20 || hl > len(b) {
			return ErrMalformed
		}
		p.Payload = b[hl:]
	default:
		p.Payload = b
	}
	return nil
}

// ipv6Fragment is a DecodingLayer for the IPv6 fragment header that records
// the offset and stops the parser on non-first fragments.
type ipv6Fragment struct {
	seen    bool
	next    uint8
	offset  uint16
	more    bool
	payload []byte
}

func (f *ipv6Fragment) reset() { *f = ipv6Fragment{} }

func (f *ipv6Fragment) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv6Fragment }

func (f *ipv6Fragment) LayerType() gopacket.LayerType { return layers.LayerTypeIPv6Fragment }

func (f *ipv6Fragment) LayerPayload() []byte { return f.payload }

func (f *ipv6Fragment) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		df.SetTruncated()
		return ErrTruncated
	}
	f.seen = true
	f.next = data[0]
	fo := binary.BigEndian.Uint16(data[2:])
	f.offset = fo >> 3
	f.more = fo&1 != 0
	f.payload = data[8:]
	return nil
}

func (f *ipv6Fragment) NextLayerType() gopacket.LayerType {
	// The engine never reassembles: stop here and let Decode read the first
	// fragment's transport header itself.
	return gopacket.LayerTypeFragment
}

// fastIP decodes the common packet by hand: IPv4 without options or IPv6
// with no extension header, not a fragment, carrying a TCP or UDP header
// that reads whole. It accepts exactly what gopacket's IPv4 or IPv6, TCP
// and UDP layers accept and fills p as the layered path does
// (TestFastPathMatchesLayers, TestFastPathIPv6 and FuzzFastPath compare the
// two on every bundled and third-party capture, on IPv6's edge cases and
// on fuzzed input); anything else (options, extension headers, a
// jumbogram's hop-by-hop option, fragments, ICMP) returns false and takes
// the layered path. Found by profile: the layered decode was an eighth of
// the packet path on many-flow traffic, most of it for headers read here
// in a few loads. Both versions are one function: the TCP and UDP part
// shared through a call (too big to inline) cost about 3 ns a frame.
func (d *Decoder) fastIP(b []byte, p *Packet, v6 bool) bool {
	var proto uint8
	var pl []byte
	if !v6 {
		if b[0]&0x0f != 5 || binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 {
			return false // options, or more fragments / a fragment offset
		}
		proto = b[9]
		if proto != ProtoTCP && proto != ProtoUDP {
			return false
		}
		n := binary.BigEndian.Uint16(b[2:4])
		if n == 0 {
			n = uint16(len(b)) // segmentation offload: the capture's length
		}
		if n < 20 {
			return false
		}
		if len(b) > int(n) {
			b = b[:n] // link-layer padding
		}
		pl = b[20:]
	} else {
		// Like gopacket's IPv6 layer it does not look at the version
		// nibble: the link layer chose IPv6.
		proto = b[6]
		if proto != ProtoTCP && proto != ProtoUDP {
			return false
		}
		// Link-layer padding goes; a length past the capture keeps what
		// was captured. A length of 0 (an error for the layers) leaves no
		// room for a TCP or UDP header, so the checks below refuse it.
		pl = b[40:]
		if n := int(binary.BigEndian.Uint16(b[4:6])); n < len(pl) {
			pl = pl[:n]
		}
	}
	if proto == ProtoTCP {
		if len(pl) < 20 {
			return false
		}
		off := int(pl[12]>>4) * 4
		if off < 20 || off > len(pl) || !tcpOptionsOK(pl[20:off]) {
			return false
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(pl), binary.BigEndian.Uint16(pl[2:])
		p.Seq, p.Ack = binary.BigEndian.Uint32(pl[4:]), binary.BigEndian.Uint32(pl[8:])
		p.TCPFlags = pl[13] & 0x1f
		p.Window = binary.BigEndian.Uint16(pl[14:])
		p.Payload = pl[off:]
	} else {
		if len(pl) < 8 {
			return false
		}
		switch ul := int(binary.BigEndian.Uint16(pl[4:6])); {
		case ul >= 8:
			p.Payload = pl[8:min(ul, len(pl))]
		case ul == 0: // jumbogram: the rest
			p.Payload = pl[8:]
		default:
			return false
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(pl), binary.BigEndian.Uint16(pl[2:])
	}
	p.Proto = proto
	if !v6 {
		p.IPVersion = 4
		p.Src = netip.AddrFrom4([4]byte(b[12:16]))
		p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	} else {
		p.IPVersion = 6
		p.Src = netip.AddrFrom16([16]byte(b[8:24]))
		p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	}
	d.ipPayload = pl
	return true
}

// tcpOptionsOK walks TCP options as gopacket's TCP layer does and reports
// whether it would accept them (it stops at End of List).
func tcpOptionsOK(o []byte) bool {
	for len(o) > 0 {
		switch o[0] {
		case 0:
			return true
		case 1:
			o = o[1:]
		default:
			if len(o) < 2 {
				return false
			}
			n := int(o[1])
			if n < 2 || n > len(o) {
				return false
			}
			o = o[n:]
		}
	}
	return true
}

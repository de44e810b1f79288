package decode

import (
	"encoding/binary"
	"fmt"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// More link types (pcap LINKTYPE_ values) the decoder walks.
const (
	LinkFDDI       LinkType = 10
	LinkPPP        LinkType = 9
	LinkPPPHDLC    LinkType = 50
	LinkPPPoE      LinkType = 51 // LINKTYPE_PPP_ETHER: a PPPoE header first
	LinkATMRFC1483 LinkType = 100
	LinkCHDLC      LinkType = 104
	Link80211      LinkType = 105
	LinkFrameRelay LinkType = 107
	LinkEnc        LinkType = 109
	LinkPFLog      LinkType = 117
	LinkPrism      LinkType = 119
	LinkRadiotap   LinkType = 127
	LinkAVS        LinkType = 163
	LinkJuniperEth LinkType = 178
	LinkPPI        LinkType = 192
	LinkPPPWithDir LinkType = 204
	LinkMPLS       LinkType = 219
	LinkNFLOG      LinkType = 239
	LinkIPoIB      LinkType = 242
)

// Layer indexes Decoder.Counts; the names are Suricata's decoder.* stats.
type Layer uint8

// Layers counted.
const (
	LayerEthernet Layer = iota
	LayerSLL
	LayerSLL2
	LayerNull
	LayerRaw
	LayerPPP
	LayerPPPoE
	LayerMPLS
	LayerCHDLC
	LayerGRE
	LayerERSPAN
	LayerVXLAN
	LayerGeneve
	LayerTeredo
	LayerGTPU
	LayerNSH
	LayerVNTag
	Layer8021ah
	LayerQinQ
	LayerIPv4inIPv4
	LayerIPv6inIPv4
	LayerIPv4inIPv6
	LayerIPv6inIPv6
	LayerARP
	LayerUnknownEthertype
	LayerTooMany
	NumLayers
)

// LayerNames are the stats names, indexed by Layer.
var LayerNames = [NumLayers]string{"ethernet", "sll", "sll2", "null", "raw", "ppp", "pppoe", "mpls", "chdlc",
	"gre", "erspan", "vxlan", "geneve", "teredo", "gtpu", "nsh", "vntag", "ieee8021ah", "vlan_qinq",
	"ipv4_in_ipv4", "ipv6_in_ipv4", "ipv4_in_ipv6", "ipv6_in_ipv6", "arp", "unknown_ethertype", "too_many_layers"}

// Why a frame was not decoded to an IP flow.
type Why uint8

// Reasons.
const (
	WhyLinkType     Why = iota + 1 // Val: the link type
	WhyEthertype                   // Val: the ethertype (ARP, LLDP, ...)
	WhyLLC                         // Val: the 802.2 DSAP (STP, ...)
	WhyPPP                         // Val: the PPP protocol (LCP, IPCP, ...)
	WhyMACsecSealed                // encrypted or modified MACsec
	Why80211                       // Val: frame type/subtype; control, management, protected
	WhyFamily                      // Val: address family (loopback, NFLOG, PFLOG, ...)
	WhyFrameRelay                  // Val: the NLPID
	WhyNSH                         // Val: next protocol
	WhyMPLS                        // a payload that is neither IP nor Ethernet
)

// Skipped is one kind of undecoded frame and how many were seen.
type Skipped struct {
	Why Why
	Val uint32
	N   uint64
}

// String says what was not decoded, for the log.
func (s Skipped) String() string {
	switch s.Why {
	case WhyLinkType:
		return fmt.Sprintf("link type %d (not supported)", s.Val)
	case WhyEthertype:
		switch s.Val {
		case 0x0806:
			return "ARP (ethertype 0x0806)"
		case 0x88cc:
			return "LLDP (ethertype 0x88cc)"
		case 0x8863:
			return "PPPoE discovery (ethertype 0x8863)"
		}
		return fmt.Sprintf("ethertype 0x%04x", s.Val)
	case WhyLLC:
		return fmt.Sprintf("802.2 LLC DSAP 0x%02x", s.Val)
	case WhyPPP:
		return fmt.Sprintf("PPP protocol 0x%04x", s.Val)
	case WhyMACsecSealed:
		return "MACsec encrypted or modified"
	case Why80211:
		return fmt.Sprintf("802.11 frame type %d subtype %d (not an unprotected data frame)", s.Val>>4, s.Val&15)
	case WhyFamily:
		return fmt.Sprintf("address family %d", s.Val)
	case WhyFrameRelay:
		return fmt.Sprintf("Frame Relay NLPID 0x%02x", s.Val)
	case WhyNSH:
		return fmt.Sprintf("NSH next protocol %d", s.Val)
	case WhyMPLS:
		return "MPLS payload neither IP nor Ethernet"
	}
	return "other"
}

// SkipTable counts undecoded frames by (reason, value) in fixed space: the
// per-packet path allocates nothing. Kinds beyond its size are summed in
// Other.
type SkipTable struct {
	Kinds [32]Skipped
	Used  int
	Other uint64
}

func (t *SkipTable) add(why Why, val uint32) {
	for i := 0; i < t.Used; i++ {
		if k := &t.Kinds[i]; k.Why == why && k.Val == val {
			k.N++
			return
		}
	}
	if t.Used < len(t.Kinds) {
		t.Kinds[t.Used] = Skipped{Why: why, Val: val, N: 1}
		t.Used++
		return
	}
	t.Other++
}

// Reset empties the table.
func (t *SkipTable) Reset() { t.Used, t.Other = 0, 0 }

// skip records a frame that is not decoded and returns ErrNotIP.
func (d *Decoder) skip(why Why, val uint32) error {
	// Inside a tunnel the outer packet is kept instead: nothing skipped.
	if d.depth == 0 {
		d.Skipped.add(why, val)
	}
	return ErrNotIP
}

// Ethertypes, and pseudo types above 0xffff for headers that carry no
// ethertype of their own.
const (
	etARP      = 0x0806
	etRARP     = 0x8035
	etTEB      = 0x6558 // transparent Ethernet bridging
	etMPLS     = 0x8847
	etMPLSmc   = 0x8848
	etPPPoED   = 0x8863
	etPPPoES   = 0x8864
	etPPP      = 0x880B
	etMACsec   = 0x88E5
	etNSH      = 0x894F
	etVNTag    = 0x8926
	etETag     = 0x893F
	et8021ah   = 0x88E7
	etERSPAN2  = 0x88BE
	etERSPAN3  = 0x22EB
	nxEthernet = 0x10000 + iota
	nxLLC
	nxPPP
	nxIP
	nx80211
)

// maxLayers bounds the headers walked per frame (hostile nesting).
const maxLayers = 24

// decodeLink walks a frame of the given link type down to IP.
func (d *Decoder) decodeLink(link LinkType, data []byte, p *Packet) error {
	var nx uint32
	off := 0
	switch link {
	case LinkEthernet:
		d.Counts[LayerEthernet]++
		// Fast path: untagged IP, most of a tap's traffic.
		if len(data) >= 14 {
			switch binary.BigEndian.Uint16(data[12:]) {
			case etIPv4:
				return d.ip(data[14:], p, 4)
			case etIPv6:
				return d.ip(data[14:], p, 6)
			}
		}
		nx = nxEthernet
	case LinkLinuxSLL:
		if len(data) < 16 {
			return ErrTruncated
		}
		d.Counts[LayerSLL]++
		nx, off = d.sllProto(binary.BigEndian.Uint16(data[2:]), binary.BigEndian.Uint16(data[14:])), 16
	case LinkLinuxSLL2:
		if len(data) < 20 {
			return ErrTruncated
		}
		d.Counts[LayerSLL2]++
		nx, off = d.sllProto(binary.BigEndian.Uint16(data[8:]), binary.BigEndian.Uint16(data[0:])), 20
	case LinkNull, LinkLoop, LinkEnc:
		hl := 4
		if link == LinkEnc {
			hl = 12
		}
		if len(data) < hl {
			return ErrTruncated
		}
		d.Counts[LayerNull]++
		// The family is in host order of the capturing machine: accept both.
		fam := binary.LittleEndian.Uint32(data)
		if fam > 0xffff {
			fam = binary.BigEndian.Uint32(data)
		}
		et, ok := familyEther(fam)
		if !ok {
			return d.skip(WhyFamily, fam)
		}
		nx, off = et, hl
	case LinkRaw, LinkRaw12, LinkRaw14, LinkIPv4, LinkIPv6:
		d.Counts[LayerRaw]++
		nx = nxIP
	case LinkPPP, LinkPPPHDLC, LinkPPPWithDir:
		if link == LinkPPPWithDir {
			off = 1 // direction byte
		}
		nx = nxPPP
	case LinkPPPoE:
		nx = etPPPoES
	case LinkCHDLC:
		if len(data) < 4 {
			return ErrTruncated
		}
		d.Counts[LayerCHDLC]++
		nx, off = uint32(binary.BigEndian.Uint16(data[2:])), 4
	case LinkFrameRelay:
		return d.frameRelay(data, p)
	case LinkMPLS:
		nx = etMPLS
	case LinkATMRFC1483:
		nx = nxLLC
	case LinkFDDI:
		if len(data) < 13 {
			return ErrTruncated
		}
		nx, off = nxLLC, 13
	case LinkIPoIB:
		if len(data) < 4 {
			return ErrTruncated
		}
		nx, off = uint32(binary.BigEndian.Uint16(data)), 4
	case LinkJuniperEth:
		// "MGC" magic, flags; an extension block whose length follows when
		// flag 0x80 is set; then the Ethernet frame (unless flag 0x01, "no
		// L2 header", is clear: then the frame is not Ethernet).
		if len(data) < 4 {
			return ErrTruncated
		}
		if data[0] != 'M' || data[1] != 'G' || data[2] != 'C' {
			return ErrMalformed
		}
		off = 4
		if data[3]&0x80 != 0 {
			if len(data) < 6 {
				return ErrTruncated
			}
			off = 6 + int(binary.BigEndian.Uint16(data[4:]))
		}
		nx = nxEthernet
	case LinkPFLog:
		if len(data) < 4 {
			return ErrTruncated
		}
		hl := (int(data[0]) + 3) &^ 3
		et, ok := familyEther(uint32(data[1]))
		if !ok {
			return d.skip(WhyFamily, uint32(data[1]))
		}
		nx, off = et, hl
	case LinkNFLOG:
		return d.nflog(data, p)
	case LinkPPI:
		// Version, flags, header length (LE), the inner link type (LE).
		if len(data) < 8 {
			return ErrTruncated
		}
		hl := int(binary.LittleEndian.Uint16(data[2:]))
		inner := LinkType(binary.LittleEndian.Uint32(data[4:]))
		if hl < 8 || hl > len(data) || inner == LinkPPI {
			return ErrMalformed
		}
		return d.decodeLink(inner, data[hl:], p)
	case LinkRadiotap:
		if len(data) < 4 {
			return ErrTruncated
		}
		nx, off = nx80211, int(binary.LittleEndian.Uint16(data[2:]))
	case LinkPrism:
		if len(data) < 8 {
			return ErrTruncated
		}
		nx, off = nx80211, int(binary.LittleEndian.Uint32(data[4:])&0xffff)
	case LinkAVS:
		if len(data) < 8 {
			return ErrTruncated
		}
		nx, off = nx80211, int(binary.BigEndian.Uint32(data[4:])&0xffff)
	case Link80211:
		nx = nx80211
	default:
		d.Skipped.add(WhyLinkType, uint32(link))
		return ErrUnsupportedLink
	}
	if off > len(data) {
		return ErrTruncated
	}
	return d.walk(data, off, nx, p)
}

// familyEther maps a BSD/Linux address family to an ethertype.
func familyEther(fam uint32) (uint32, bool) {
	switch fam {
	case 2:
		return 0x0800, true
	case 10, 24, 28, 30:
		return 0x86DD, true
	}
	return 0, false
}

// sllProto maps a Linux cooked header's ARPHRD type and protocol field to
// what follows: an ethertype, or for the 802.2 and PPP cases the header.
func (d *Decoder) sllProto(hatype, proto uint16) uint32 {
	switch {
	case hatype == 512 || hatype == 0xfffe: // ARPHRD_PPP, ARPHRD_NONE: protocol is an ethertype
		return uint32(proto)
	case proto == 0x0004: // 802.2 LLC frame
		return nxLLC
	}
	return uint32(proto)
}

// walk decodes headers from off on, starting with nx (an ethertype or a
// pseudo type), until it reaches IP or something it does not decode.
func (d *Decoder) walk(data []byte, off int, nx uint32, p *Packet) error {
	for n := 0; n < maxLayers; n++ {
		b := data[off:]
		switch nx {
		case etIPv4:
			return d.ip(b, p, 4)
		case etIPv6:
			return d.ip(b, p, 6)
		case nxIP:
			if len(b) < 1 {
				return ErrTruncated
			}
			switch b[0] >> 4 {
			case 4:
				return d.ip(b, p, 4)
			case 6:
				return d.ip(b, p, 6)
			}
			return ErrMalformed
		case nxEthernet:
			if len(b) < 14 {
				return ErrTruncated
			}
			et := binary.BigEndian.Uint16(b[12:])
			off += 14
			nx = uint32(et)
			if et < 0x0600 { // an 802.3 length: 802.2 LLC follows
				nx = nxLLC
			}
		case etVLAN, etQinQ, et9100:
			if len(b) < 4 {
				return ErrTruncated
			}
			if p.NVLAN < uint8(len(p.VLAN)) {
				p.VLAN[p.NVLAN] = binary.BigEndian.Uint16(b) & 0x0fff
				p.NVLAN++
				if p.NVLAN == 2 {
					d.Counts[LayerQinQ]++
				}
			}
			nx = uint32(binary.BigEndian.Uint16(b[2:]))
			off += 4
		case nxLLC:
			if len(b) < 3 {
				return ErrTruncated
			}
			if b[0] != 0xAA || b[1] != 0xAA || b[2] != 0x03 {
				return d.skip(WhyLLC, uint32(b[0]))
			}
			if len(b) < 8 {
				return ErrTruncated
			}
			nx = uint32(binary.BigEndian.Uint16(b[6:]))
			off += 8
		case etTEB:
			nx = nxEthernet
		case etMPLS, etMPLSmc:
			d.Counts[LayerMPLS]++
			var label uint32
			for {
				if len(data) < off+4 {
					return ErrTruncated
				}
				e := binary.BigEndian.Uint32(data[off:])
				label = e >> 12
				off += 4
				if e&0x100 != 0 { // bottom of stack
					break
				}
				if n++; n >= maxLayers {
					d.Counts[LayerTooMany]++
					return ErrMalformed
				}
			}
			if len(data) < off+1 {
				return ErrTruncated
			}
			switch {
			case label == 0:
				nx = etIPv4
			case label == 2:
				nx = etIPv6
			case data[off]>>4 == 4:
				nx = etIPv4
			case data[off]>>4 == 6:
				nx = etIPv6
			case data[off]>>4 == 0: // pseudowire control word, then Ethernet
				off += 4
				nx = nxEthernet
			default:
				return d.skip(WhyMPLS, 0)
			}
		case etPPPoES:
			if len(b) < 6 {
				return ErrTruncated
			}
			if b[0] != 0x11 || b[1] != 0 {
				return ErrMalformed
			}
			d.Counts[LayerPPPoE]++
			off += 6
			nx = nxPPP
		case etPPP, nxPPP:
			if len(b) >= 4 && (b[0] == 0x0F || b[0] == 0x8F) && b[1] == 0 {
				// Cisco HDLC framing in a PPP capture (libpcap allows it).
				d.Counts[LayerCHDLC]++
				nx = uint32(binary.BigEndian.Uint16(b[2:]))
				off += 4
				continue
			}
			d.Counts[LayerPPP]++
			if len(b) >= 2 && b[0] == 0xFF && b[1] == 0x03 { // HDLC address and control
				off += 2
				b = b[2:]
			}
			if len(b) < 1 {
				return ErrTruncated
			}
			// Protocol field compression: an odd first byte is the whole field.
			proto := uint32(b[0])
			if b[0]&1 == 0 {
				if len(b) < 2 {
					return ErrTruncated
				}
				proto = uint32(binary.BigEndian.Uint16(b))
				off++
			}
			off++
			switch proto {
			case 0x0021:
				nx = etIPv4
			case 0x0057:
				nx = etIPv6
			case 0x0281, 0x0283:
				nx = etMPLS
			default:
				return d.skip(WhyPPP, proto)
			}
		case etMACsec:
			// SecTAG: TCI/AN, short length, packet number, optional SCI.
			if len(b) < 6 {
				return ErrTruncated
			}
			if b[0]&0x0C != 0 { // E or C: the payload is encrypted or modified
				return d.skip(WhyMACsecSealed, 0)
			}
			tl := 6
			if b[0]&0x20 != 0 {
				tl += 8
			}
			if len(b) < tl+2 {
				return ErrTruncated
			}
			nx = uint32(binary.BigEndian.Uint16(b[tl:]))
			off += tl + 2
		case etNSH:
			if len(b) < 8 {
				return ErrTruncated
			}
			if b[0]>>6 != 0 {
				return ErrMalformed
			}
			d.Counts[LayerNSH]++
			hl := int(b[1]&0x3f) * 4
			if hl < 8 || hl > len(b) {
				return ErrMalformed
			}
			off += hl
			switch b[3] {
			case 1:
				nx = etIPv4
			case 2:
				nx = etIPv6
			case 3:
				nx = nxEthernet
			case 4:
				nx = etNSH
			case 5:
				nx = etMPLS
			default:
				return d.skip(WhyNSH, uint32(b[3]))
			}
		case etVNTag:
			if len(b) < 6 {
				return ErrTruncated
			}
			d.Counts[LayerVNTag]++
			nx = uint32(binary.BigEndian.Uint16(b[4:]))
			off += 6
		case etETag:
			if len(b) < 8 {
				return ErrTruncated
			}
			d.Counts[LayerVNTag]++
			nx = uint32(binary.BigEndian.Uint16(b[6:]))
			off += 8
		case et8021ah:
			// I-TAG (flags and service id), then the customer's Ethernet frame.
			if len(b) < 4 {
				return ErrTruncated
			}
			d.Counts[Layer8021ah]++
			off += 4
			nx = nxEthernet
		case etERSPAN2:
			if len(b) < 8 {
				return ErrTruncated
			}
			d.Counts[LayerERSPAN]++
			off += 8
			nx = nxEthernet
		case etERSPAN3:
			if len(b) < 12 {
				return ErrTruncated
			}
			d.Counts[LayerERSPAN]++
			off += 12
			if b[11]&1 != 0 { // platform-specific subheader
				off += 8
			}
			nx = nxEthernet
		case nx80211:
			return d.wifi(data, off, p)
		case etARP, etRARP:
			d.Counts[LayerARP]++
			return d.skip(WhyEthertype, nx)
		default:
			d.Counts[LayerUnknownEthertype]++
			return d.skip(WhyEthertype, nx)
		}
		if off > len(data) {
			return ErrTruncated
		}
	}
	d.Counts[LayerTooMany]++
	return ErrMalformed
}

// wifi decodes an 802.11 data frame's header and its LLC/SNAP header.
// Control, management and protected (encrypted) frames are not decoded.
func (d *Decoder) wifi(data []byte, off int, p *Packet) error {
	if off > len(data) {
		return ErrTruncated
	}
	b := data[off:]
	if len(b) < 24 {
		return ErrTruncated
	}
	fc0, fc1 := b[0], b[1]
	typ, sub := (fc0>>2)&3, fc0>>4
	if typ != 2 || fc1&0x40 != 0 || sub&4 != 0 { // not data, protected, or no payload (null)
		return d.skip(Why80211, uint32(typ)<<4|uint32(sub))
	}
	hl := 24
	if fc1&3 == 3 { // to and from DS: a fourth address
		hl += 6
	}
	if sub&8 != 0 { // QoS data
		hl += 2
		if fc1&0x80 != 0 { // +HTC
			hl += 4
		}
	}
	if len(b) < hl {
		return ErrTruncated
	}
	return d.walk(data, off+hl, nxLLC, p)
}

// frameRelay decodes Q.922 address, UI control and the NLPID (RFC 2427).
func (d *Decoder) frameRelay(data []byte, p *Packet) error {
	if len(data) < 4 {
		return ErrTruncated
	}
	off := 2
	if data[1]&1 == 0 { // a longer address
		off = 3
		if data[2]&1 == 0 {
			off = 4
		}
	}
	if len(data) < off+2 {
		return ErrTruncated
	}
	if data[off] != 0x03 {
		return ErrMalformed
	}
	off++
	if data[off] == 0 { // padding
		off++
		if len(data) < off+1 {
			return ErrTruncated
		}
	}
	nlpid := data[off]
	off++
	switch nlpid {
	case 0xCC:
		return d.walk(data, off, etIPv4, p)
	case 0x8E:
		return d.walk(data, off, etIPv6, p)
	case 0x80: // SNAP: OUI, then an ethertype (or a bridged frame)
		if len(data) < off+5 {
			return ErrTruncated
		}
		pid := binary.BigEndian.Uint16(data[off+3:])
		if data[off] == 0 && data[off+1] == 0x80 && data[off+2] == 0xC2 {
			// Bridged Ethernet (PID 7 without FCS, 1 with).
			return d.walk(data, off+5+2, nxEthernet, p)
		}
		return d.walk(data, off+5, uint32(pid), p)
	}
	return d.skip(WhyFrameRelay, uint32(nlpid))
}

// nflog finds the packet inside a Linux NFLOG record: a 4-byte header with
// the address family, then TLVs (host-order lengths) of which type 9 is
// the packet's network layer.
func (d *Decoder) nflog(data []byte, p *Packet) error {
	if len(data) < 4 {
		return ErrTruncated
	}
	et, ok := familyEther(uint32(data[0]))
	if !ok {
		return d.skip(WhyFamily, uint32(data[0]))
	}
	b := data[4:]
	for len(b) >= 4 {
		l := int(binary.LittleEndian.Uint16(b))
		if l > 0xfff && binary.BigEndian.Uint16(b) < 0x1000 {
			l = int(binary.BigEndian.Uint16(b))
		}
		typ := binary.LittleEndian.Uint16(b[2:]) & 0x7fff
		if l < 4 || l > len(b) {
			return ErrMalformed
		}
		if typ == 9 || typ == 0x0900 {
			return d.walk(b[:l], 4, et, p)
		}
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return ErrTruncated
}

// ip decodes an IP packet and, unless this is already the inner packet of
// too many tunnels, the tunnel it carries: the inner flow replaces the
// outer one, as Suricata's tunnel decoding does. When the inner packet
// cannot be decoded the outer one is kept.
func (d *Decoder) ip(b []byte, p *Packet, ver int) error {
	var err error
	if ver == 4 {
		err = d.decodeIPv4(b, p)
	} else {
		err = d.decodeIPv6(b, p)
	}
	if err != nil || d.noTunnel || d.depth >= 4 || p.Fragment {
		return err
	}
	switch p.Proto {
	case 4, 41, 47, ProtoUDP:
	default:
		return nil
	}
	inner, nx, layer := d.tunnel(p)
	if inner == nil {
		return nil
	}
	// Save what the outer decode found, try the inner packet, and fall back.
	nvlan, wl := p.NVLAN, p.WireLen
	d.depth++
	d.Counts[layer]++
	if ierr := d.walk(inner, 0, nx, p); ierr == nil {
		return nil
	}
	d.depth--
	d.Counts[layer]--
	p.reset()
	p.NVLAN, p.WireLen = nvlan, wl
	d.noTunnel = true
	if ver == 4 {
		err = d.decodeIPv4(b, p)
	} else {
		err = d.decodeIPv6(b, p)
	}
	d.noTunnel = false
	return err
}

// Tunnel ports (the IANA ones Suricata also uses by default).
const (
	portVXLAN  = 4789
	portGeneve = 6081
	portGTPU   = 2152
	portTeredo = 3544
)

// tunnel recognises an encapsulation in a decoded IP packet and returns the
// inner bytes, what they start with and the layer to count. nil: none.
func (d *Decoder) tunnel(p *Packet) ([]byte, uint32, Layer) {
	b := p.Payload
	switch p.Proto {
	case 4:
		if p.IPVersion == 4 {
			return b, etIPv4, LayerIPv4inIPv4
		}
		return b, etIPv4, LayerIPv4inIPv6
	case 41:
		if p.IPVersion == 4 {
			return b, etIPv6, LayerIPv6inIPv4
		}
		return b, etIPv6, LayerIPv6inIPv6
	case 47:
		return d.gre(b)
	case ProtoUDP:
		switch {
		case p.DstPort == portVXLAN:
			// Flags with the I bit, then the VNI; Ethernet follows.
			if len(b) >= 8+14 && b[0]&0x08 != 0 {
				return b[8:], nxEthernet, LayerVXLAN
			}
		case p.DstPort == portGeneve:
			if len(b) >= 8 && b[0]>>6 == 0 {
				hl := 8 + int(b[0]&0x3f)*4
				if len(b) >= hl {
					return b[hl:], uint32(binary.BigEndian.Uint16(b[2:])), LayerGeneve
				}
			}
		case p.DstPort == portGTPU || p.SrcPort == portGTPU:
			return gtpu(b)
		case p.DstPort == portTeredo || p.SrcPort == portTeredo:
			return teredo(b)
		}
	}
	return nil, 0, 0
}

// gre decodes a GRE header (RFC 2784/2890). Version 1 (PPTP's enhanced
// GRE) carries encrypted PPP and stays an outer flow for the PPTP detector;
// source-routed GRE is not followed.
func (d *Decoder) gre(b []byte) ([]byte, uint32, Layer) {
	if len(b) < 4 {
		return nil, 0, 0
	}
	fl := binary.BigEndian.Uint16(b)
	if fl&7 != 0 || fl&0x4000 != 0 {
		return nil, 0, 0
	}
	proto := uint32(binary.BigEndian.Uint16(b[2:]))
	hl := 4
	for _, bit := range [...]uint16{0x8000, 0x2000, 0x1000} { // checksum, key, sequence
		if fl&bit != 0 {
			hl += 4
		}
	}
	if len(b) < hl {
		return nil, 0, 0
	}
	if proto == etERSPAN2 && fl&0x1000 == 0 {
		// ERSPAN type I: no sequence number and no ERSPAN header.
		d.Counts[LayerERSPAN]++
		return b[hl:], nxEthernet, LayerGRE
	}
	return b[hl:], proto, LayerGRE
}

// gtpu decodes a GTPv1-U G-PDU header with its optional fields and
// extension headers; the payload is an IP packet.
func gtpu(b []byte) ([]byte, uint32, Layer) {
	if len(b) < 8 || b[0]>>5 != 1 || b[0]&0x10 == 0 || b[1] != 0xFF {
		return nil, 0, 0
	}
	hl := 8
	if b[0]&0x07 != 0 {
		hl = 12
		if len(b) < hl {
			return nil, 0, 0
		}
		next := b[11]
		for b[0]&0x04 != 0 && next != 0 {
			if len(b) < hl+1 {
				return nil, 0, 0
			}
			el := int(b[hl]) * 4
			if el == 0 || len(b) < hl+el {
				return nil, 0, 0
			}
			next = b[hl+el-1]
			hl += el
		}
	}
	if len(b) <= hl {
		return nil, 0, 0
	}
	return b[hl:], nxIP, LayerGTPU
}

// teredo finds the IPv6 packet in a Teredo datagram (RFC 4380), after the
// optional authentication and origin indication headers, and accepts it
// only if its header is consistent: Teredo has no magic of its own.
func teredo(b []byte) ([]byte, uint32, Layer) {
	if len(b) >= 2 && b[0] == 0 && b[1] == 1 { // authentication
		if len(b) < 13 {
			return nil, 0, 0
		}
		al := 13 + int(b[2]) + int(b[3])
		if len(b) < al {
			return nil, 0, 0
		}
		b = b[al:]
	}
	if len(b) >= 8 && b[0] == 0 && b[1] == 0 { // origin indication
		b = b[8:]
	}
	if len(b) < 40 || b[0]>>4 != 6 || int(binary.BigEndian.Uint16(b[4:]))+40 != len(b) {
		return nil, 0, 0
	}
	return b, etIPv6, LayerTeredo
}

// ip4Layer, ip6Layer and extLayer stop gopacket's parser at IP-in-IP, so
// that tunnel decoding above sees and counts the outer packet first.
type ip4Layer struct{ layers.IPv4 }

func (l *ip4Layer) NextLayerType() gopacket.LayerType {
	if l.Protocol == layers.IPProtocolIPv4 || l.Protocol == layers.IPProtocolIPv6 {
		return gopacket.LayerTypeZero
	}
	return l.IPv4.NextLayerType()
}

type ip6Layer struct{ layers.IPv6 }

func (l *ip6Layer) NextLayerType() gopacket.LayerType {
	if l.NextHeader == layers.IPProtocolIPv4 || l.NextHeader == layers.IPProtocolIPv6 {
		return gopacket.LayerTypeZero
	}
	return l.IPv6.NextLayerType()
}

type extLayer struct{ layers.IPv6ExtensionSkipper }

func (l *extLayer) NextLayerType() gopacket.LayerType {
	if l.NextHeader == layers.IPProtocolIPv4 || l.NextHeader == layers.IPProtocolIPv6 {
		return gopacket.LayerTypeZero
	}
	return l.IPv6ExtensionSkipper.NextLayerType()
}

package engine

import (
	"encoding/binary"

	"github.com/sewatch/sewatch/internal/decode"
)

// peekOwner finds the worker of an untagged Ethernet IPv4 frame from its
// headers alone, without decoding it: the walk of a file read by several
// workers decodes none of the frames it hands out. It returns false when
// the frame needs the decoder to tell (another link layer, VLAN tags,
// IPv6, IP in IP, GRE, or UDP on a tunnel port, where the flow is the inner
// packet's).
//
// It must give dispatchKey's answer for every frame the decoder decodes to
// a flow (TestPeekOwner, FuzzPeekOwner). The frames the decoder refuses
// are only counted, so which worker peeks them does not matter: the
// owner's decoder counts them.
func peekOwner(link decode.LinkType, data []byte, n uint32) (uint32, bool) {
	if link != decode.LinkEthernet || len(data) < 14+20 || binary.BigEndian.Uint16(data[12:]) != 0x0800 {
		return 0, false
	}
	ip := data[14:]
	switch proto := ip[9]; proto {
	case 4, 41, 47, 94:
		// IP in IP, IPv6 in IP, GRE, and IPIP (94, which gopacket's IPv4
		// layer decodes as IP in IP): the inner packet's flow.
		return 0, false
	case decode.ProtoUDP:
		// Fragments are never followed into a tunnel.
		if binary.BigEndian.Uint16(ip[6:])&0x3fff == 0 {
			hl := int(ip[0]&0x0f) * 4
			if hl < 20 || len(ip) < hl+4 {
				return 0, false
			}
			sp, dp := binary.BigEndian.Uint16(ip[hl:]), binary.BigEndian.Uint16(ip[hl+2:])
			if dp == 4789 || dp == 6081 || sp == 2152 || dp == 2152 || sp == 3544 || dp == 3544 {
				return 0, false // VXLAN, Geneve, GTP-U, Teredo
			}
		}
	}
	x := (addrHash4(ip[12:16]) + addrHash4(ip[16:20])) * 0xbf58476d1ce4e5b9
	return uint32(x>>32) % n, true // pairKey's value, without building netip.Addrs
}

// addrHash4 is addrHash of an IPv4 address given as its 4 bytes: the
// same word as its IPv4-mapped form would give.
func addrHash4(b []byte) uint64 {
	return addrMix(uint64(binary.LittleEndian.Uint32(b)) | 0xffff<<48)
}

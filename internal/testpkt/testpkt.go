// Package testpkt builds packets for tests with gopacket's serializer.
package testpkt

import (
	"encoding/binary"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Spec describes a packet to build.
type Spec struct {
	Src, Dst         string // IP addresses (v4 or v6)
	Proto            string // "tcp", "udp", "icmp"
	SrcPort, DstPort uint16
	Seq              uint32
	SYN, ACK, FIN    bool
	ICMPType         uint8
	VLANs            []uint16
	Payload          []byte
}

// Ethernet returns an Ethernet frame for s.
func Ethernet(s Spec) []byte {
	var ls []gopacket.SerializableLayer
	v6 := net.ParseIP(s.Src).To4() == nil
	et := layers.EthernetTypeIPv4
	if v6 {
		et = layers.EthernetTypeIPv6
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: et}
	if len(s.VLANs) > 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
	}
	ls = append(ls, eth)
	for i, v := range s.VLANs {
		next := layers.EthernetTypeDot1Q
		if i == len(s.VLANs)-1 {
			next = et
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: v, Type: next})
	}
	ls = append(ls, IP(s)...)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		panic(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// IP returns the network and transport layers for s.
func IP(s Spec) []gopacket.SerializableLayer {
	src, dst := net.ParseIP(s.Src), net.ParseIP(s.Dst)
	var nl gopacket.NetworkLayer
	var ls []gopacket.SerializableLayer
	proto := layers.IPProtocolTCP
	switch s.Proto {
	case "udp":
		proto = layers.IPProtocolUDP
	case "icmp":
		proto = layers.IPProtocolICMPv4
		if src.To4() == nil {
			proto = layers.IPProtocolICMPv6
		}
	}
	if src.To4() != nil {
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.To4(), DstIP: dst.To4(), Protocol: proto}
		nl = ip
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src, DstIP: dst, NextHeader: proto}
		nl = ip
		ls = append(ls, ip)
	}
	switch s.Proto {
	case "udp":
		u := &layers.UDP{SrcPort: layers.UDPPort(s.SrcPort), DstPort: layers.UDPPort(s.DstPort)}
		u.SetNetworkLayerForChecksum(nl)
		ls = append(ls, u)
	case "icmp":
		if src.To4() != nil {
			ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(s.ICMPType, 0), Id: 7, Seq: 9})
		} else {
			ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(s.ICMPType, 0)}
			ic.SetNetworkLayerForChecksum(nl)
			ls = append(ls, ic)
			idseq := make([]byte, 4)
			binary.BigEndian.PutUint16(idseq, 7)
			binary.BigEndian.PutUint16(idseq[2:], 9)
			s.Payload = append(idseq, s.Payload...)
		}
	default:
		t := &layers.TCP{SrcPort: layers.TCPPort(s.SrcPort), DstPort: layers.TCPPort(s.DstPort), Seq: s.Seq,
			SYN: s.SYN, ACK: s.ACK, FIN: s.FIN, Window: 64240, DataOffset: 5}
		t.SetNetworkLayerForChecksum(nl)
		ls = append(ls, t)
	}
	ls = append(ls, gopacket.Payload(s.Payload))
	return ls
}

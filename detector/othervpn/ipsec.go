package othervpn

import "encoding/binary"

// espHeader reads an ESP header (RFC 4303): SPI and sequence number. SPIs
// 0-255 are reserved (0 is also the non-ESP marker of UDP port 4500) and
// sequence numbers start at 1. The body holds at least an IV or ICV.
func espHeader(b []byte) (spi, seq uint32, ok bool) {
	if len(b) < 24 {
		return 0, 0, false
	}
	spi, seq = binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	return spi, seq, spi >= 256 && seq >= 1
}

// ahHeader reads an Authentication Header (RFC 4302): next header, payload
// length in 32-bit words minus 2 (at least 96 bits of ICV), reserved zero,
// SPI, sequence number. It returns the payload after the header.
func ahHeader(b []byte) (next uint8, spi, seq uint32, rest []byte, ok bool) {
	if len(b) < 24 || b[2] != 0 || b[3] != 0 {
		return 0, 0, 0, nil, false
	}
	n := (int(b[1]) + 2) * 4
	if b[1] < 4 || n > len(b) {
		return 0, 0, 0, nil, false
	}
	next, spi, seq = b[0], binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])
	switch next {
	case 1, 4, 6, 17, 41, 47, 50, 58, 59: // ICMP, IPv4, TCP, UDP, IPv6, GRE, ESP, ICMPv6, none
	default:
		return 0, 0, 0, nil, false
	}
	return next, spi, seq, b[n:], spi >= 256 && seq >= 1
}

// saDir is one direction of a security association as a tap sees it.
type saDir struct {
	spi, seq uint32
	n        uint8
	run      uint8 // consecutive sequence numbers (+1 each) under one SPI
}

// next records one packet and returns how many +1 steps in a row the
// direction's SPI has shown.
func (d *saDir) next(spi, seq uint32) uint8 {
	switch {
	case d.n > 0 && spi == d.spi && seq == d.seq+1:
		d.run++
	case d.n > 0 && spi == d.spi && seq == d.seq:
		// a duplicate (the tap saw it twice): neither step nor break
	default:
		d.run = 0
	}
	d.spi, d.seq = spi, seq
	if d.n < 255 {
		d.n++
	}
	return d.run
}

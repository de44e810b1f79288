package othervpn

import (
	"bytes"
	"encoding/binary"
)

// OpenVPN opcodes (high five bits of the first byte; the low three are the
// key id).
const (
	opControlSoftReset  = 3
	opControl           = 4
	opAck               = 5
	opHardResetClientV2 = 7
	opHardResetServerV2 = 8
	opHardResetClientV3 = 10
	opControlWKC        = 11
)

func isControl(op uint8) bool {
	switch op {
	case opControlSoftReset, opControl, opAck, opHardResetClientV2, opHardResetServerV2, opHardResetClientV3, opControlWKC:
		return true
	}
	return false
}

// Control-channel layouts. Every control packet starts with the opcode
// byte and the sender's 8-byte session id. Without tls-auth/tls-crypt the
// ack list follows (count ≤ 8, ids, the peer's session id) and then the
// message packet id. tls-crypt puts a replay packet id and a timestamp
// (4+4 bytes) right after the session id, then a 32-byte tag and the
// encrypted rest; tls-auth puts an HMAC (16-64 bytes by digest) before the
// same packet id and timestamp, and the ack list follows in clear. The
// replay packet id grows by exactly 1 on every control packet a side sends,
// ACKs and retransmissions included.
const (
	layoutPlain = iota
	layoutCrypt
	layoutAuth16
	layoutAuth20
	layoutAuth32
	layoutAuth48
	layoutAuth64
	nLayouts
)

var layoutOff = [nLayouts]int{0, 9, 9 + 16, 9 + 20, 9 + 32, 9 + 48, 9 + 64}

var layoutName = [nLayouts]string{
	"OpenVPN control channel (no HMAC): session id constant per direction, message packet ids incrementing, acknowledgements naming the peer's session id",
	"OpenVPN control channel with tls-crypt: session id constant per direction, replay packet id incrementing by 1 with its timestamp",
	"OpenVPN control channel with tls-auth (HMAC-MD5): session id constant per direction, replay packet id incrementing by 1 with its timestamp",
	"OpenVPN control channel with tls-auth (HMAC-SHA1): session id constant per direction, replay packet id incrementing by 1 with its timestamp",
	"OpenVPN control channel with tls-auth (HMAC-SHA256): session id constant per direction, replay packet id incrementing by 1 with its timestamp",
	"OpenVPN control channel with tls-auth (HMAC-SHA384): session id constant per direction, replay packet id incrementing by 1 with its timestamp",
	"OpenVPN control channel with tls-auth (HMAC-SHA512): session id constant per direction, replay packet id incrementing by 1 with its timestamp",
}

// Bounds of a control packet: tls-crypt's smallest (an ACK of one id) is
// 62 B; control packets are kept under the TLS MTU (1250 B by default).
const (
	minCryptControl = 9 + 8 + 32 + 5
	maxControl      = 1600
	// minTime: a timestamp before 2001-09 is not a clock's.
	minTime = 1000000000
	// maxTimeStep: one side's timestamps over a handful of control packets.
	maxTimeStep = 300
)

// ovDir follows one direction's control packets under each layout.
type ovDir struct {
	sid    [8]byte
	rsid   [8]byte
	n      uint8
	rsidOK bool
	have   [nLayouts]bool
	pid    [nLayouts]uint32
	tm     [nLayouts]uint32
	run    [nLayouts]uint8
}

// control takes one OpenVPN packet (b, maybe cut short by the capture or
// the segment; plen is its full length), the other direction's state, and
// returns the layout whose packet ids have grown by 1 three times in a
// row, or -1.
func (d *ovDir) control(b []byte, plen int, peer *ovDir) int {
	if len(b) < 9+1+4 || plen > maxControl { // the smallest: a reset without acks
		return -1
	}
	op := b[0] >> 3
	if !isControl(op) {
		return -1
	}
	if d.n == 0 || !bytes.Equal(d.sid[:], b[1:9]) {
		*d = ovDir{n: 1}
		copy(d.sid[:], b[1:9])
	} else if d.n < 255 {
		d.n++
	}
	if peer.n > 0 && peer.sid == d.sid {
		return -1 // the two sides' session ids differ
	}
	best := -1
	for l := layoutCrypt; l < nLayouts; l++ {
		o := layoutOff[l]
		if len(b) < o+9 || (l == layoutCrypt && plen < minCryptControl) {
			d.run[l] = 0
			continue
		}
		if l != layoutCrypt && !d.ackListOK(b, o+8, plen, op) {
			d.run[l] = 0
			continue
		}
		pid, tm := binary.BigEndian.Uint32(b[o:]), binary.BigEndian.Uint32(b[o+4:])
		if d.have[l] && pid == d.pid[l]+1 && tm >= minTime && tm >= d.tm[l] && tm-d.tm[l] <= maxTimeStep {
			d.run[l]++
		} else {
			d.run[l] = 0
		}
		d.have[l], d.pid[l], d.tm[l] = true, pid, tm
		if d.run[l] >= 2 && best < 0 {
			best = l
		}
	}
	if d.plain(b, plen, op) && best < 0 {
		best = layoutPlain
	}
	return best
}

// ackListOK checks a clear ack list at off: at most 8 ids, and room for
// them, the peer's session id and (except in an ACK) a message packet id.
func (d *ovDir) ackListOK(b []byte, off, plen int, op uint8) bool {
	if off >= len(b) || b[off] > 8 {
		return false
	}
	need := off + 1 + 4*int(b[off])
	if b[off] > 0 {
		need += 8
	}
	if op != opAck {
		need += 4
	} else if b[off] == 0 {
		return false // an ACK acknowledges something
	}
	return plen >= need
}

// plain follows the layout without HMAC: the peer's session id in the
// ack list is constant and not ours, and message packet ids (every packet
// but an ACK carries one) grow by 1; a retransmission repeats one.
func (d *ovDir) plain(b []byte, plen int, op uint8) bool {
	const l = layoutPlain
	if !d.ackListOK(b, 9, plen, op) {
		d.run[l] = 0
		return false
	}
	n := int(b[9])
	p := 10 + 4*n
	if n > 0 {
		if len(b) < p+8 {
			return false
		}
		r := b[p : p+8]
		if bytes.Equal(r, d.sid[:]) || (d.rsidOK && !bytes.Equal(r, d.rsid[:])) {
			d.run[l] = 0
			return false
		}
		copy(d.rsid[:], r)
		d.rsidOK = true
		p += 8
	}
	if op == opAck {
		return false
	}
	if len(b) < p+4 {
		return false
	}
	pid := binary.BigEndian.Uint32(b[p:])
	switch {
	case d.have[l] && pid == d.pid[l]+1:
		d.run[l]++
	case d.have[l] && pid == d.pid[l]:
	default:
		d.run[l] = 0
	}
	d.have[l], d.pid[l] = true, pid
	return d.run[l] >= 2
}

// tcpFrame cuts one direction of an OpenVPN-over-TCP stream into packets
// (a 2-byte length before each). It follows sequence numbers so that a
// packet spanning segments is skipped, not misread.
type tcpFrame struct {
	next    uint32
	skip    int
	started bool
}

// maxPerSegment bounds the packets read from one segment.
const maxPerSegment = 8

// packets calls f on each packet that starts in this segment, with the
// bytes the segment holds of it and its full length.
func (t *tcpFrame) packets(seq uint32, b []byte, f func(pkt []byte, plen int) bool) bool {
	if t.started {
		if d := int32(seq - t.next); d < 0 {
			return false // a retransmission
		} else if d > 0 {
			t.skip = 0 // a gap: the boundary is lost; try the segment start
		}
	}
	t.started, t.next = true, seq+uint32(len(b))
	if t.skip >= len(b) {
		t.skip -= len(b)
		return false
	}
	b = b[t.skip:]
	t.skip = 0
	for i := 0; i < maxPerSegment && len(b) >= 2; i++ {
		plen := int(binary.BigEndian.Uint16(b))
		if plen == 0 {
			return false
		}
		b = b[2:]
		if plen > len(b) {
			t.skip = plen - len(b)
			return f(b, plen)
		}
		if f(b[:plen], plen) {
			return true
		}
		b = b[plen:]
	}
	return false
}

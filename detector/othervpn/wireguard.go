package othervpn

import "encoding/binary"

// WireGuard message types (first byte; the next three are reserved zeros).
const (
	wgInitiation = 1
	wgResponse   = 2
	wgCookie     = 3
	wgData       = 4
)

// wgMsg reads a WireGuard message header. Handshake messages are judged by
// their minimum sizes (initiation 148, response 92, cookie reply 64 B; some
// providers append bytes); a transport-data message is a 16-byte header
// (type, receiver index, 64-bit little-endian counter) and a sealed body
// whose plaintext WireGuard pads to 16 bytes: 16 + 16k + 16 (tag).
func wgMsg(b []byte) (typ uint8, idx uint32, ok bool) {
	if len(b) < 32 || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return 0, 0, false
	}
	switch b[0] {
	case wgInitiation:
		ok = len(b) >= 148
	case wgResponse:
		ok = len(b) >= 92
	case wgCookie:
		ok = len(b) == 64
	case wgData:
		ok = (len(b)-32)%16 == 0
	}
	return b[0], binary.LittleEndian.Uint32(b[4:]), ok
}

// wgDir is one direction's transport-data stream: the receiver index it
// names and the last counter.
type wgDir struct {
	idx   uint32
	ctr   uint64
	n     uint8
	steps uint8 // counter increments of 1-16 under the same index
}

type wgState struct {
	initSender uint32
	initSeen   bool
	dir        [2]wgDir
	other      uint8 // datagrams that are no WireGuard message
}

// wgMaxStep bounds the counter's jump between two data messages a tap sees
// in one direction (lost datagrams); a counter never goes back.
const wgMaxStep = 16

// inspect takes one datagram (dir 0 = to server) and says why the flow is
// WireGuard once it is.
func (w *wgState) inspect(b []byte, dir int) string {
	typ, idx, ok := wgMsg(b)
	if !ok {
		if w.other < 255 {
			w.other++
		}
		return ""
	}
	switch typ {
	case wgInitiation:
		w.initSender, w.initSeen = binary.LittleEndian.Uint32(b[4:]), true
	case wgResponse:
		// The answer names the initiator's sender index as its receiver
		// (after the responder's own sender index).
		if w.initSeen && binary.LittleEndian.Uint32(b[8:]) == w.initSender {
			return "WireGuard handshake initiation and response naming its sender index"
		}
	case wgCookie:
		// A cookie reply (responder under load) names it right after the type.
		if w.initSeen && idx == w.initSender {
			return "WireGuard handshake initiation answered by a cookie reply naming its sender index"
		}
	case wgData:
		d := &w.dir[dir]
		ctr := binary.LittleEndian.Uint64(b[8:])
		switch {
		case ctr >= 1<<60:
			d.n, d.steps = 0, 0 // no session sends 2^60 messages
			return ""
		case d.n == 0 || idx != d.idx:
			d.idx, d.ctr, d.n, d.steps = idx, ctr, 1, 0
		case ctr > d.ctr && ctr-d.ctr <= wgMaxStep:
			d.ctr, d.steps = ctr, d.steps+1
		default:
			d.ctr, d.steps = ctr, 0
		}
		o := &w.dir[1-dir]
		if o.n > 0 && o.idx == d.idx {
			return "" // each side names the other's index: they differ
		}
		if d.steps+o.steps >= 3 && w.other <= 2 {
			return "WireGuard transport data: 16-byte header, receiver index constant per direction, counter incrementing, sizes 32+16k"
		}
	}
	return ""
}

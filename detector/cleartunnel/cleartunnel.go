// Package cleartunnel recognises a SoftEther session whose tunnel runs in
// clear: an account with encryption off (AccountEncryptDisable, "Use
// encryption" unticked) still connects and logs in over TLS, but after the
// welcome each connection leaves TLS and carries SoftEther's own framing as
// plain TCP (Connection.c: UseSSLDataEncryption is false, sends bypass the
// TLS layer). Every message is then one of two shapes, both big-endian:
//
//   - a keep-alive: 0xffffffff, a size below 512 (rand() % MAX_KEEPALIVE_SIZE;
//     a little more when it carries the NAT-T port signature), and that many
//     random bytes (SendKeepAlive);
//   - a batch of tunnelled frames: the number of blocks, then per block its
//     size and the Ethernet frame itself (ConnectionSend).
//
// A segment that is exactly a sequence of such messages, every block a
// well-formed Ethernet frame, is SoftEther's own bytes; four in each
// direction is the evidence. Encrypted traffic of any kind never parses so,
// and a length-prefixed protocol of another kind does not carry Ethernet
// frames in its records. The tunnel is also readable when the capture joined
// late: the first payload is then such a message.
//
// It is one flow's behaviour, so it counts as a sustained unit: beside the
// connection's own connect phase, beside another connection of the session,
// or on two connections of one host pair (a session joined late). One
// connection alone never raises an alert.
package cleartunnel

import (
	"encoding/binary"
	"fmt"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/tlsstream"
)

// Name is the detector's registered name.
const Name = "cleartunnel"

// Kind is the evidence kind.
const Kind = detector.KindClearTunnel

func init() { detector.Register(Name, func() detector.Detector { return Detector{} }) }

// Detector is the cleartext-tunnel detector.
type Detector struct{}

// Name implements detector.Detector.
func (Detector) Name() string { return Name }

const (
	// need is the framed segments each way that make the evidence.
	need = 4
	// before is the payload segments a connection may carry before its
	// first framed one: the connect phase (ClientHello to welcome, with a
	// GET probe and a proxy's handshake, is some 16) fits with room for
	// segments split by the path; ordinary TLS then costs nothing more.
	before = 40
	// after bounds the segments followed once framing was seen (a bulk
	// transfer splits batches across segments, which do not parse).
	after = 4000
	// maxKeepAlive is the largest keep-alive body: rand() % 512, or the
	// NAT-T port signature ("NATT_MY_PORT" and a port) when larger.
	maxKeepAlive = 512 + 16
	// maxBlock is the largest block SoftEther sends (MAX_PACKET_SIZE * 2,
	// the receiver's own limit), minFrame an Ethernet header.
	maxBlock = 3200
	minFrame = 14
)

// NewInspector follows TCP connections that begin as SoftEther's can (TLS,
// an HTTP CONNECT, a SOCKS handshake) and those the capture joined inside
// such framing; every other first payload rules the flow out.
func (Detector) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	if p.Proto != decode.ProtoTCP {
		return nil
	}
	pl := p.Payload
	mode := detector.ModeDirect
	switch {
	case Parse(pl) != None:
		mode = detector.ModeMidSession
	case !toServer:
		return nil // SoftEther's client speaks first
	case tlsstream.LooksLikeTLS(pl):
	default:
		if mode = detector.ProxyOpening(pl); mode == detector.ModeNone {
			return nil
		}
	}
	in := pool.Get()
	in.mode = mode
	return in
}

// Inspector follows one TCP connection.
type Inspector struct {
	mode detector.Mode
	segs int // payload segments seen
	// keepAlives and batches count each direction's segments that parse as
	// SoftEther's messages (0: to the server), by Parse's answer.
	keepAlives [2]int
	batches    [2]int
	first      int // segment number of the first framed one (0: none yet)
}

// framed is direction d's segments that parse as SoftEther's messages.
func (in *Inspector) framed(d int) int { return in.keepAlives[d] + in.batches[d] }

// Inspect implements detector.Inspector.
func (in *Inspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	if len(p.Payload) == 0 {
		return true
	}
	in.segs++
	d := 1
	if toServer {
		d = 0
	}
	switch Parse(p.Payload) {
	case KeepAlive:
		in.keepAlives[d]++
	case Batch:
		in.batches[d]++
	default:
		if in.first == 0 {
			return in.segs < before
		}
		return in.segs-in.first < after
	}
	if in.first == 0 {
		in.first = in.segs
	}
	if in.framed(0) >= need && in.framed(1) >= need {
		s.Report(detector.Evidence{Kind: Kind, Mode: in.mode,
			Detail: fmt.Sprintf("%d/%d segments each way are exactly SoftEther's cleartext messages (%d/%d keep-alives, %d/%d batches of Ethernet frames)",
				in.framed(0), in.framed(1), in.keepAlives[0], in.keepAlives[1], in.batches[0], in.batches[1]),
			Client: f.Client.Addr(), Server: f.Server.Addr(), Symmetric: !f.SYNSeen,
			Flow: *f, Time: p.Time, PcapCnt: p.Index})
		return false
	}
	return in.segs-in.first < after
}

// What a segment is, by Parse.
const (
	None      = 0
	KeepAlive = 1 // keep-alives only
	Batch     = 2 // at least one batch of frames
)

// Parse tells whether b is exactly a sequence of SoftEther tunnel messages
// (keep-alives and batches of Ethernet frames), and which: None when any
// byte does not fit, or a message runs past b's end.
func Parse(b []byte) int {
	be := binary.BigEndian
	what := None
	for len(b) > 0 {
		if len(b) < 8 {
			return None
		}
		n, size := be.Uint32(b), be.Uint32(b[4:])
		if n == 0xffffffff {
			if size > maxKeepAlive || uint64(len(b)-8) < uint64(size) {
				return None
			}
			b = b[8+size:]
			what = max(what, KeepAlive)
			continue
		}
		// A batch: n blocks, each a size and a frame. The first block's
		// size is already in hand.
		if n == 0 || n > 4096 {
			return None
		}
		b = b[4:]
		for i := uint32(0); i < n; i++ {
			if len(b) < 4 {
				return None
			}
			size := be.Uint32(b)
			if size < minFrame || size > maxBlock || uint64(len(b)-4) < uint64(size) || !ethernetFrame(b[4:4+size]) {
				return None
			}
			b = b[4+size:]
		}
		what = Batch
	}
	return what
}

// ethernetFrame tells whether b is a plausible Ethernet frame of the kinds
// a virtual LAN carries: IPv4 (version 4, a header length of 5-15 words
// within the frame), IPv6 (version 6), ARP for IPv4 over Ethernet, or a
// VLAN tag. Broadcast or unicast, any source MAC except all zeros.
func ethernetFrame(b []byte) bool {
	if len(b) < minFrame || b[6]|b[7]|b[8]|b[9]|b[10]|b[11] == 0 {
		return false
	}
	pl := b[14:]
	switch binary.BigEndian.Uint16(b[12:]) {
	case 0x0800:
		return len(pl) >= 20 && pl[0]>>4 == 4 && int(pl[0]&0x0f)*4 >= 20 && int(pl[0]&0x0f)*4 <= len(pl)
	case 0x86dd:
		return len(pl) >= 40 && pl[0]>>4 == 6
	case 0x0806:
		return len(pl) >= 28 && pl[0] == 0 && pl[1] == 1 && pl[2] == 8 && pl[3] == 0 && pl[4] == 6 && pl[5] == 4
	case 0x8100:
		return len(pl) >= 4
	}
	return false
}

// Inspectors come from a pool and go back when the flow ends (Release), so
// a new flow allocates nothing once the pool is warm.
var pool detector.FreeList[Inspector]

// Release returns the inspector to the pool; the engine calls it once, when
// the flow ends or Inspect returned false.
func (in *Inspector) Release() { pool.Put(in) }

// Package udpaccel recognises SoftEther's UDP acceleration flow: both hosts
// send small encrypted datagrams to each other every 0.5-1 s (FastDetect;
// 1-3 s otherwise) while the session is up, 51-82 bytes when idle in the
// ChaCha20-Poly1305 format (63-94 in the older RC4 one), each starting with
// a fresh random nonce, so the leading bytes never repeat the way every
// other UDP protocol's headers do. The server port is the first free one
// from 40000 upward, which adds a little weight but is never required.
//
// The nonces are not independent: each side takes the next one from the
// datagram it just sent (UdpAccel.c, UdpAccelSend). In the ChaCha20-Poly1305
// format a datagram's 12-byte nonce is bytes 12-23 of the previous datagram
// of the same side (the start of its ciphertext) in the 5.x builds, and the
// 12 bytes before its 16-byte tag (the end of its ciphertext) in the Stable
// 4.44 build (measured on the lab's captures); in the RC4 format the 20-byte
// IV is the previous datagram's last 20 bytes (its encrypted zero trailer).
// Random or encrypted payloads of any other protocol continue the previous
// datagram that way with a probability of about 2^-95 per pair, so the
// pacing evidence requires such links both ways.
package udpaccel

import (
	"fmt"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

// Name is the detector's registered name.
const Name = "udpaccel"

// Kind is the evidence kind.
const Kind = detector.KindUDPAccel

func init() { detector.Register(Name, func() detector.Detector { return Detector{} }) }

// Detector is the UDP acceleration detector.
type Detector struct{}

// Name implements detector.Detector.
func (Detector) Name() string { return Name }

// NewInspector follows UDP flows that are not DNS, NetBIOS or DHCP.
func (Detector) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	if p.Proto != decode.ProtoUDP {
		return nil
	}
	switch {
	case p.SrcPort == 53 || p.DstPort == 53, p.SrcPort == 137 || p.DstPort == 137,
		p.SrcPort == 67 || p.DstPort == 67, p.SrcPort == 5353 || p.DstPort == 5353:
		return nil
	}
	return newInspector()
}

const (
	// A flow is followed until it proves itself or for this long: bulk
	// transfers over the accelerated path hide the keep-alive pacing until
	// the tunnel goes idle again.
	window     = 2 * time.Minute
	maxPackets = 5000 // per direction
	needIdle   = 4    // small paced packets needed each way
	sustained  = 12   // paced packets each way that stand on their own
	// needLinks is the datagrams each way whose nonce continues the
	// previous one's: two, so that one lost or reordered datagram on the
	// tap costs a link, not the flow.
	needLinks = 2
)

type dirState struct {
	first     time.Time
	n, small  int
	paced     int
	lastSmall time.Time
	lead      [8]uint8  // first byte of the first datagrams
	next4     [8]uint32 // bytes 1-4 of the first datagrams
	nfb       int
	// The nonce (v2: 5.x, 4.44) and IV (v1) the side's next datagram
	// starts with if it continues the last one, and how many did.
	nextV2, nextV2end [12]byte
	nextV1            [20]byte
	handed            bool // the last datagram handed them on
	links             int
}

// chain counts b as a link when it starts with the nonce or IV the
// previous datagram of its side handed on, and keeps b's for the next.
func (d *dirState) chain(b []byte) {
	if d.handed && len(b) >= 20 {
		if n := [12]byte(b[:12]); n == d.nextV2 || n == d.nextV2end || [20]byte(b[:20]) == d.nextV1 {
			d.links++
		}
	}
	// Both formats need 40 bytes and more (v2: nonce, 23 bytes of header,
	// 16-byte tag; v1: IV, header, 20-byte trailer).
	if d.handed = len(b) >= 40; d.handed {
		d.nextV2 = [12]byte(b[12:24])
		d.nextV2end = [12]byte(b[len(b)-28 : len(b)-16])
		d.nextV1 = [20]byte(b[len(b)-20:])
	}
}

// Inspector follows one UDP flow.
type Inspector struct {
	d     [2]dirState
	level int
	done  bool
}

// Inspect implements detector.Inspector.
func (in *Inspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	if in.done {
		return false
	}
	b := p.Payload
	i := 0
	if !toServer {
		i = 1
	}
	d := &in.d[i]
	if d.n == 0 {
		d.first = p.Time
	}
	d.n++
	if len(b) >= 5 && d.nfb < len(d.lead) {
		d.lead[d.nfb] = b[0]
		d.next4[d.nfb] = uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4])
		d.nfb++
	}
	if knownProtocol(b) {
		in.done = true
		return false
	}
	d.chain(b)
	if len(b) >= 40 && len(b) <= 100 {
		if !d.lastSmall.IsZero() {
			gap := p.Time.Sub(d.lastSmall)
			if gap >= 350*time.Millisecond && gap <= 3500*time.Millisecond {
				d.paced++
			}
		}
		d.small++
		d.lastSmall = p.Time
	}
	a, c := &in.d[0], &in.d[1]
	if in.level == 0 && a.paced >= needIdle && c.paced >= needIdle && random(a) && random(c) &&
		a.links >= needLinks && c.links >= needLinks {
		in.level = 1
		in.report(p, f, s, Kind, fmt.Sprintf("small datagrams paced %d/%d times at 0.35-3.5 s both ways, each nonce taken from the side's previous datagram (%d/%d links)",
			a.paced, c.paced, a.links, c.links))
		// Which end is the server is unknown here; either port may be it.
		for _, sp := range []uint16{f.Server.Port(), f.Client.Port()} {
			if inRange(sp) {
				in.report(p, f, s, detector.KindUDPAccelPort, fmt.Sprintf("port %d in SoftEther's server range 40000-44999", sp))
				break
			}
		}
	}
	if in.level == 1 && a.paced >= sustained && c.paced >= sustained {
		// Minutes-long keep-alive pacing with nonce-led datagrams: the
		// flow is a SoftEther session by itself (capture joined late,
		// or the TCP legs are not visible on this tap).
		in.level = 2
		in.done = true
		in.report(p, f, s, detector.KindUDPAccelSustained, fmt.Sprintf("keep-alive pacing sustained: %d/%d paced small datagrams both ways, nonces chained (%d/%d links)",
			a.paced, c.paced, a.links, c.links))
		return false
	}
	if (!a.first.IsZero() && p.Time.Sub(a.first) > window) || a.n > maxPackets || c.n > maxPackets {
		in.done = true
		return false
	}
	return true
}

func (in *Inspector) report(p *decode.Packet, f *detector.Flow, s detector.Sink, kind detector.Kind, why string) {
	fl := *f
	cp, sp := fl.Client.Port(), fl.Server.Port()
	if inRange(cp) && (!inRange(sp) || cp < sp) {
		// The flow table guessed from the first datagram; the server is
		// the end on SoftEther's acceleration port (the first free one
		// from 40000 up, so the lower one when both are in range).
		fl.Client, fl.Server = fl.Server, fl.Client
		fl.PktsToServer, fl.PktsToClient = fl.PktsToClient, fl.PktsToServer
		fl.BytesToServer, fl.BytesToClient = fl.BytesToClient, fl.BytesToServer
	}
	s.Report(detector.Evidence{Kind: kind, Detail: why, Mode: detector.ModeUDPAccel, Symmetric: true,
		Client: fl.Client.Addr(), Server: fl.Server.Addr(), Flow: fl, Time: p.Time, PcapCnt: p.Index})
}

func inRange(port uint16) bool { return port >= 40000 && port <= 44999 }

// random: the leading bytes of the first datagrams look like a nonce or
// IV. Bytes 1-4 never repeat between datagrams (QUIC's connection id,
// ESP's SPI and every protocol header do), and the first byte is not
// confined to a few opcode values.
func random(d *dirState) bool {
	if d.nfb < 4 {
		return false
	}
	var ops uint32 // which values of the top five bits were seen
	for i := 0; i < d.nfb; i++ {
		ops |= 1 << (d.lead[i] >> 3)
		for j := i + 1; j < d.nfb; j++ {
			if d.next4[i] == d.next4[j] {
				return false
			}
		}
	}
	// Opcode-led protocols (OpenVPN's P_DATA, QUIC short headers) keep the
	// top bits of the first byte to a few values; a nonce does not.
	distinct := 0
	for ; ops != 0; ops &= ops - 1 {
		distinct++
	}
	return distinct >= 3
}

// knownProtocol recognises datagrams of protocols that can also be small
// and periodic, so they are never taken for acceleration traffic.
func knownProtocol(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch {
	case len(b) >= 4 && b[0] >= 1 && b[0] <= 4 && b[1] == 0 && b[2] == 0 && b[3] == 0: // WireGuard
		return true
	case len(b) >= 3 && b[0] >= 20 && b[0] <= 25 && b[1] == 0xfe && b[2] >= 0xfc: // DTLS
		return true
	case len(b) >= 8 && b[4] == 0x21 && b[5] == 0x12 && b[6] == 0xa4 && b[7] == 0x42: // STUN
		return true
	case len(b) == 1 && b[0] == 0xff: // IPsec NAT-T keepalive
		return true
	case len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0: // IKE non-ESP marker
		return true
	}
	return false
}

// Inspectors come from a pool and go back when the flow ends (Release), so
// a new flow allocates nothing once the pool is warm.
var pool detector.FreeList[Inspector]

func newInspector() *Inspector {
	in := pool.Get()
	return in
}

// Release returns the inspector to the pool; the engine calls it once, when
// the flow ends or Inspect returned false.
func (in *Inspector) Release() { pool.Put(in) }

// Package udpaccel recognises SoftEther's UDP acceleration flow: both hosts
// send small encrypted datagrams to each other every 0.5-1 s (FastDetect;
// 1-3 s otherwise) while the session is up, 51-82 bytes when idle in the
// ChaCha20-Poly1305 format (63-94 in the older RC4 one), each starting with
// a fresh random nonce, so the leading bytes never repeat the way every
// other UDP protocol's headers do. The server port is the first free one
// from 40000 upward, which adds a little weight but is never required.
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
const Kind = "softether.udp-acceleration"

func init() { detector.Register(Name, func() detector.Detector { return Detector{} }) }

// Detector is the UDP acceleration detector.
type Detector struct{}

// Name implements detector.Detector.
func (Detector) Name() string { return Name }

// NewInspector follows UDP flows that are not DNS, NetBIOS or DHCP.
func (Detector) NewInspector(p *decode.Packet, f *detector.Flow) detector.Inspector {
	if p.Proto != decode.ProtoUDP {
		return nil
	}
	switch {
	case p.SrcPort == 53 || p.DstPort == 53, p.SrcPort == 137 || p.DstPort == 137,
		p.SrcPort == 67 || p.DstPort == 67, p.SrcPort == 5353 || p.DstPort == 5353:
		return nil
	}
	return &Inspector{}
}

const (
	window   = 40 // packets per direction examined
	needIdle = 4  // small paced packets needed each way
)

type dirState struct {
	n, small   int
	paced      int
	lastSmall  time.Time
	firstBytes [8]uint16
	nfb        int
}

// Inspector follows one UDP flow.
type Inspector struct {
	d    [2]dirState
	done bool
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
	d.n++
	if len(b) >= 2 && d.nfb < len(d.firstBytes) && !p.Fragment {
		d.firstBytes[d.nfb] = uint16(b[0])<<8 | uint16(b[1])
		d.nfb++
	}
	if knownProtocol(b) {
		in.done = true
		return false
	}
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
	if a.paced >= needIdle && c.paced >= needIdle && random(a) && random(c) {
		in.done = true
		w := float32(0.5)
		why := fmt.Sprintf("small datagrams paced %d/%d times at 0.35-3.5 s both ways, random leading bytes", a.paced, c.paced)
		// Which end is the server is unknown here; either port may be it.
		for _, sp := range []uint16{f.Server.Port(), f.Client.Port()} {
			if sp >= 40000 && sp <= 44999 {
				w += 0.1
				why += fmt.Sprintf(", port %d in SoftEther's server range 40000-44999", sp)
				break
			}
		}
		s.Report(detector.Evidence{Kind: Kind, Detail: why, Weight: w, Anchor: true, Mode: "udp-accel", Symmetric: true,
			Client: f.Client.Addr(), Server: f.Server.Addr(), Flow: *f, Time: p.Time, PcapCnt: p.Index})
		return false
	}
	if a.n > window && c.n > window {
		in.done = true
		return false
	}
	return true
}

// random: the leading two bytes of the first datagrams are all different
// (a nonce or IV), unlike any protocol with a header.
func random(d *dirState) bool {
	if d.nfb < 4 {
		return false
	}
	var ops uint32 // which values of the top five bits were seen
	for i := 0; i < d.nfb; i++ {
		ops |= 1 << (d.firstBytes[i] >> 11)
		for j := i + 1; j < d.nfb; j++ {
			if d.firstBytes[i] == d.firstBytes[j] {
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

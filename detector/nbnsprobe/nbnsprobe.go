// Package nbnsprobe notes the NetBIOS node-status (NBSTAT) queries a
// SoftEther server sends to a peer right after accepting its TCP
// connection, and that the client sends to the server just after
// connecting. Windows hosts send NBSTAT too, so this is weak corroboration
// only: it never raises an alert on its own.
package nbnsprobe

import (
	"bytes"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

// Name is the detector's registered name.
const Name = "nbnsprobe"

// Kind is the evidence kind.
const Kind = detector.KindNBNSProbe

func init() { detector.Register(Name, func() detector.Detector { return Detector{} }) }

// Detector is the NBSTAT probe detector.
type Detector struct{}

// Name implements detector.Detector.
func (Detector) Name() string { return Name }

// NewInspector follows UDP flows to the NetBIOS name service.
func (Detector) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	if p.Proto == decode.ProtoUDP && (p.DstPort == 137 || p.SrcPort == 137) {
		return newInspector()
	}
	return nil
}

type inspector struct{ n int }

// wildcard is the first-level encoding of the NetBIOS name "*".
var wildcard = append([]byte{0x20, 'C', 'K'}, bytes.Repeat([]byte{'A'}, 30)...)

func (in *inspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	in.n++
	if in.n > 8 {
		return false
	}
	if p.DstPort != 137 || !IsNBSTAT(p.Payload) {
		return true
	}
	// Either end of the VPN connection may have sent it.
	s.Report(detector.Evidence{Kind: Kind, Detail: "NBNS node-status query for \"*\" between the two hosts",
		Symmetric: true, Client: p.Src, Server: p.Dst, Flow: *f, Time: p.Time, PcapCnt: p.Index})
	return false
}

// IsNBSTAT reports whether a payload is an NBNS node-status query for "*".
func IsNBSTAT(b []byte) bool {
	if len(b) < 12+34+4 {
		return false
	}
	if b[2]&0x80 != 0 || b[4] != 0 || b[5] != 1 {
		return false
	}
	q := b[12:]
	if !bytes.Equal(q[:33], wildcard) || q[33] != 0 {
		return false
	}
	return q[34] == 0 && q[35] == 0x21 && q[36] == 0 && q[37] == 1
}

// Inspectors come from a pool and go back when the flow ends (Release), so
// a new flow allocates nothing once the pool is warm.
var pool detector.FreeList[inspector]

func newInspector() *inspector {
	in := pool.Get()
	return in
}

// Release returns the inspector to the pool; the engine calls it once, when
// the flow ends or Inspect returned false.
func (in *inspector) Release() { pool.Put(in) }

package attempt

import (
	"net/netip"
	"testing"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/testpcap"
)

type sink struct{ ev []detector.Evidence }

func (s *sink) Report(e detector.Evidence) { s.ev = append(s.ev, e) }

type tuple struct {
	a, b netip.AddrPort
}

type replayFlow struct {
	f    detector.Flow
	in   detector.Inspector
	done bool
}

// replay feeds a capture's TCP flows to one detector, the way the engine
// does (one inspector per flow, the client being the first packet's
// sender), and returns the attempt evidence and the inspectors.
func replay(t *testing.T, path string) (*sink, map[tuple]*replayFlow) {
	t.Helper()
	r := testpcap.Open(t, path)
	dec := decode.NewDecoder(decode.LinkType(r.LinkType()))
	d := New()
	s := &sink{}
	flows := map[tuple]*replayFlow{}
	var p decode.Packet
	for i := uint64(1); ; i++ {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if dec.Decode(data, &p) != nil || p.Proto != decode.ProtoTCP {
			continue
		}
		p.Time, p.Index = ci.Timestamp, i
		src, dst := netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)
		toServer := true
		fl := flows[tuple{src, dst}]
		if fl == nil {
			if fl = flows[tuple{dst, src}]; fl != nil {
				toServer = false
			}
		}
		if fl == nil {
			fl = &replayFlow{f: detector.Flow{ID: int64(len(flows) + 1), Proto: p.Proto, Client: src, Server: dst,
				Start: p.Time, SYNSeen: p.TCPFlags&decode.FlagSYN != 0}}
			fl.in = d.NewInspector(&p, true, &fl.f)
			flows[tuple{src, dst}] = fl
		}
		if fl.in == nil || fl.done {
			continue
		}
		if !fl.in.Inspect(&p, toServer, &fl.f, s) {
			fl.done = true
		}
	}
	return s, flows
}

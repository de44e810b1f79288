package verdict

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
)

// TestExpireSkipsNothing: Expire scans only once something can end (next);
// a verdict that scans everything at every Expire must give the same
// alerts, session ends and leftovers over random histories of evidence,
// flow ends and expiry, time running backwards now and then (captures
// concatenated out of order), and after each Expire the same sessions,
// single-signature and NBSTAT entries must be left. Without any one of
// note's calls some history here keeps one of them longer.
func TestExpireSkipsNothing(t *testing.T) {
	kinds := []detector.Kind{detector.KindTLSPrimary, detector.KindTLSAdditional, detector.KindTLSHello,
		detector.KindTLSSNIAddr, detector.KindNBNSProbe, "single"}
	clients := []netip.Addr{netip.MustParseAddr("10.1.1.2"), netip.MustParseAddr("10.1.1.3"), netip.MustParseAddr("2001:db8::5")}
	servers := []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("198.51.100.9")}
	for seed := uint64(1); seed <= 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		var logs [2][]string
		var vs [2]*Verdict
		for i := range vs {
			log := &logs[i]
			vs[i] = New(DefaultConfig(), func(a Alert) {
				*log = append(*log, fmt.Sprintf("alert %d flow %d", a.Signature.ID, a.Anchor.Flow.ID))
			})
			vs[i].OnSessionEnd(func(e SessionEnd) {
				*log = append(*log, fmt.Sprintf("end %d %v %s", e.Anchor.ID, e.End.Sub(t0), e.Reason))
			})
		}
		now := time.Duration(0)
		for op := 0; op < 400; op++ {
			// Mostly forward in steps of up to 20 s, now and then past
			// SessionGap (all is quiet) or back.
			switch r.IntN(40) {
			case 0:
				now -= time.Duration(r.IntN(300)) * sec
			case 1, 2, 3:
				now += time.Duration(100+r.IntN(200)) * sec
			default:
				now += time.Duration(r.IntN(20000)) * ms
			}
			id := int64(1 + r.IntN(24))
			c, s := clients[id%3], servers[(id/3)%2]
			switch x := r.IntN(10); {
			case x < 5:
				e := ev(kinds[r.IntN(len(kinds))], 6, id, now)
				if e.Kind == "single" {
					e.Kind, e.Signature = "vpn.protocol", detector.SIDDirect
				}
				e.Client, e.Server = c, s
				e.Flow.Client, e.Flow.Server = netip.AddrPortFrom(c, 40000+uint16(id)), netip.AddrPortFrom(s, 443)
				if r.IntN(3) == 0 {
					// Evidence that does not know which side is the
					// client, filed the other way round first.
					e.Symmetric = true
					e.Client, e.Server = e.Server, e.Client
					e.Flow.Client, e.Flow.Server = e.Flow.Server, e.Flow.Client
				}
				for _, v := range vs {
					v.Report(e)
				}
			case x < 8:
				f := ev(detector.KindTLSPrimary, 6, id, 0).Flow
				f.Client, f.Server = netip.AddrPortFrom(c, 40000+uint16(id)), netip.AddrPortFrom(s, 443)
				for _, v := range vs {
					v.FlowEnded(f, t0.Add(now), "timeout")
				}
			default:
				vs[1].mu.Lock()
				vs[1].next, vs[1].nextSet = time.Time{}, true // the full scan
				vs[1].mu.Unlock()
				for i, v := range vs {
					v.Expire(t0.Add(now))
					logs[i] = append(logs[i], fmt.Sprintf("expired at %v: %d sessions %d single %d nbstat", now, len(v.sessions), len(v.single), len(v.nbstat)))
				}
			}
		}
		if fmt.Sprint(logs[0]) != fmt.Sprint(logs[1]) {
			t.Fatalf("seed %d: skipping scans\n%v\nscanning every time\n%v", seed, logs[0], logs[1])
		}
	}
}

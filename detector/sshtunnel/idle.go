package sshtunnel

import (
	"fmt"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

// Evidence kinds of an idle tunnel.
const (
	// KindIdle: both sides keep sending small writes of random sizes on
	// their own timers, neither answering the other: an idle SoftEther
	// session (keep-alives with 0-511 random bytes, the virtual hub's
	// broadcasts) inside the SSH connection. Two people chatting through
	// one SSH connection (or an IRC or MQTT client) do the same, so it is
	// a session's second unit beside a tunnelled connect phase, never an
	// alert on its own: a capture that joined an idle session late is not
	// reported.
	KindIdle = detector.KindSSHIdle
	// KindIdleLong: the same for a minute or more.
	KindIdleLong = detector.KindSSHIdleLong
)

const (
	idleMin      = 64  // smallest keep-alive (25 B) in SSH framing
	idleMax      = 700 // largest (536 B) in SSH framing, with room
	idleAnswer   = 150 * time.Millisecond
	idleBurstGap = 500 * time.Millisecond
	idleNeed     = 8  // unanswered writes each way for KindIdle
	idleSizes    = 6  // of which distinct sizes
	idleLongNeed = 16 // for KindIdleLong
	idleLongSpan = time.Minute
	// idleSilence: neither side of an idle SoftEther session is silent for
	// longer than its keep-alive timer's longest span, Timeout/2 (10 s by
	// default; Connection.c GenNextKeepAliveSpan), plus the session loop's
	// latency. People are: a chat or a remote desktop through the tunnel
	// pauses longer now and then.
	idleSilence = 10500 * time.Millisecond
)

// idle counts unanswered writes each way. A write sent within idleAnswer
// of the peer's is an answer; the peer's write it answered no longer
// counts either (a ping and its pong, a request and its response). From
// the first write counted, no side may be silent for more than
// idleSilence: a longer silence starts the count again.
type idle struct {
	last      [2]time.Time
	lastCount [2]bool // the side's last write was counted
	n         [2]int
	sizes     [2][idleSizes]int32
	nsizes    [2]int
	first     time.Time
	stage     int
}

func (in *Inspector) idleWrite(d int, n int32, at time.Time, p *decode.Packet, f *detector.Flow, s detector.Sink) {
	r := &in.idle
	if r.stage == 2 {
		return
	}
	o := 1 - d
	if !r.first.IsZero() && (silent(r.last[d], at) || silent(r.last[o], at)) {
		// A side was silent longer than SoftEther's keep-alive timer
		// allows: what was counted is not an idle session's rhythm. The
		// count starts again (after KindIdle, the minute of KindIdleLong
		// too).
		r.n, r.nsizes, r.first, r.lastCount = [2]int{}, [2]int{}, time.Time{}, [2]bool{}
	}
	answered := !r.last[o].IsZero() && at.Sub(r.last[o]) < idleAnswer
	if answered && r.lastCount[o] {
		r.n[o]--
		r.lastCount[o] = false
	}
	burst := !r.last[d].IsZero() && at.Sub(r.last[d]) < idleBurstGap
	r.last[d] = at
	r.lastCount[d] = !answered && !burst && n >= idleMin && n <= idleMax
	if !r.lastCount[d] {
		return
	}
	if r.first.IsZero() {
		r.first = at
	}
	r.n[d]++
	if k := r.nsizes[d]; k < idleSizes {
		dup := false
		for _, x := range r.sizes[d][:k] {
			dup = dup || x == n
		}
		if !dup {
			r.sizes[d][k] = n
			r.nsizes[d]++
		}
	}
	if r.nsizes[0] < idleSizes || r.nsizes[1] < idleSizes {
		return
	}
	switch {
	case r.stage == 0 && r.n[0] >= idleNeed && r.n[1] >= idleNeed:
		r.stage = 1
		s.Report(in.evidence(p, f, KindIdle, fmt.Sprintf(
			"both sides send unanswered %d-%d-byte writes of random sizes on their own timers (%d and %d so far)",
			idleMin, idleMax, r.n[0], r.n[1]), Mode))
	case r.stage == 1 && r.n[0] >= idleLongNeed && r.n[1] >= idleLongNeed && at.Sub(r.first) >= idleLongSpan:
		r.stage = 2
		s.Report(in.evidence(p, f, KindIdleLong, fmt.Sprintf(
			"the same for %.0f s (%d and %d unanswered writes)", at.Sub(r.first).Seconds(), r.n[0], r.n[1]), Mode))
	}
}

// silent reports whether a side whose last write was at last (zero: none
// yet) has been silent at at for longer than idleSilence.
func silent(last, at time.Time) bool {
	return !last.IsZero() && at.Sub(last) > idleSilence
}

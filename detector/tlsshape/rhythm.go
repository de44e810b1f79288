package tlsshape

import (
	"fmt"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

// rhythm follows SoftEther's data-phase keep-alives: on every TCP
// connection each side independently sends one record of 25-536 bytes
// (0xFFFFFFFF, a length, 0-511 random bytes) after 4.0-10.0 s without
// sending anything else, a timer re-armed by any send. It needs no
// handshake, so it also recognises sessions a capture joined late. Ordinary
// keep-alives (HTTP/2 PING, long polling) are answered at once; SoftEther's
// two sides are not, so answered records do not count.
//
// Whatever else a session sends, neither side is ever silent for longer
// than the keep-alive timer's longest span (Timeout/2, 10 s by default):
// a flow whose two directions both keep that promise for 30 s is live
// the way a SoftEther tunnel is (liveness), even when data re-arms the
// timers and no keep-alive goes out alone.
type rhythm struct {
	last     [2]time.Time // last record each way
	maxGap   [2]time.Duration
	n        [2]int
	live     bool        // liveness reported
	idle     [2]int      // isolated keep-alive-sized records each way
	sizes    [2][4]int32 // first distinct sizes each way
	nsizes   [2]int
	answered int
	reported bool
	start    time.Time
}

const (
	// liveSpan and liveGap: 30 s of two-way records (three of the timer's
	// longest spans), neither side silent longer than the keep-alive's
	// 10 s (plus jitter).
	liveSpan   = 30 * time.Second
	liveGap    = 10500 * time.Millisecond
	liveRecs   = 5
	kaMinGap   = 3900 * time.Millisecond
	kaMaxGap   = 10500 * time.Millisecond
	kaNeed     = 3
	answerTime = 150 * time.Millisecond
	// rhythmSpan bounds how long a flow is followed for its rhythm.
	rhythmSpan = 3 * time.Minute
)

func (r *rhythm) record(dir int, length int, now time.Time, p *decode.Packet, f *detector.Flow, s detector.Sink, in *Inspector) {
	if r.reported && r.live {
		return
	}
	if r.start.IsZero() {
		r.start = now
	}
	other := 1 - dir
	gap := now.Sub(r.last[dir])
	if !r.last[dir].IsZero() && gap > r.maxGap[dir] {
		r.maxGap[dir] = gap
	}
	r.n[dir]++
	if !r.live && in.level == 2 && now.Sub(r.start) >= liveSpan && r.n[0] >= liveRecs && r.n[1] >= liveRecs &&
		r.maxGap[0] <= liveGap && r.maxGap[1] <= liveGap && now.Sub(r.last[other]) <= liveGap {
		// Only after a primary connection's connect phase: the promise
		// alone is kept by chatty applications too.
		r.live = true
		s.Report(in.evidence(p, f, detector.KindTLSLiveness, fmt.Sprintf(
			"both sides sent at least every %.1f s for %.0f s after the connect phase (%d client, %d server records)",
			max(r.maxGap[0], r.maxGap[1]).Seconds(), now.Sub(r.start).Seconds(), r.n[0], r.n[1])))
	}
	if r.reported {
		r.last[dir] = now
		return
	}
	isolated := !r.last[dir].IsZero() && gap >= kaMinGap && gap <= kaMaxGap && length >= 25 && length <= 536
	if isolated && !r.last[other].IsZero() && now.Sub(r.last[other]) < answerTime {
		// Sent right after the peer spoke: an answer, not a timer.
		r.answered++
		isolated = false
	}
	r.last[dir] = now
	if !isolated {
		return
	}
	r.idle[dir]++
	if n := r.nsizes[dir]; n < len(r.sizes[dir]) {
		dup := false
		for _, x := range r.sizes[dir][:n] {
			dup = dup || x == int32(length)
		}
		if !dup {
			r.sizes[dir][n] = int32(length)
			r.nsizes[dir]++
		}
	}
	if r.idle[0] >= kaNeed && r.idle[1] >= kaNeed && r.nsizes[0] >= 2 && r.nsizes[1] >= 2 && r.answered <= r.idle[0]+r.idle[1] {
		r.reported = true
		s.Report(in.evidence(p, f, detector.KindTLSKeepalive, fmt.Sprintf(
			"unanswered 25-536-byte records every 3.9-10.5 s from both sides (%d client, %d server)", r.idle[0], r.idle[1])))
	}
}

// finished: both reported, or followed long enough.
func (r *rhythm) finished(now time.Time) bool {
	return (r.reported && r.live) || (!r.start.IsZero() && now.Sub(r.start) > rhythmSpan)
}

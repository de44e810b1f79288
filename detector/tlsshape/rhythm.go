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
// The timer's span is max(rand() % (Timeout/2), Timeout/5) (Connection.c
// GenNextKeepAliveSpan; Timeout 20 s by default): an idle side never sends
// again sooner than 4 s, and two spans in five are exactly 4 s (plus the
// session loop's latency, up to its 256-ms select). So the keep-alives
// counted must follow one another with no record of that side in less than
// 3.9 s between them (kaRun in a row each way), and each side's run must
// hold a floor span (3.9-4.4 s). Applications whose two sides send small
// random-sized messages on timers of their own (WebSocket feeds, chat)
// send sooner now and then, or answer each other, and do not keep that up
// (the lab capture neg-lab-wss-feeds: four of its eight WebSocket
// connections reached the old count of three isolated records each way,
// none reaches this. Simulated, 20,000 runs of three minutes each: the
// same feed's timers, client every 0.5-8 s, server pushing every 3 s on
// average, reached the old count in 13 % of flows and this in 0.1 %; two
// sides on uniform timers of 0.5-9 s, never answering, reach it in 3 %;
// SoftEther's timers reach it within a minute in 97 % of runs and within
// three in all). Each side's records must also differ in size (two sizes
// at least): a keep-alive is 0-511 random bytes, while protocols of
// fixed-size cells (Tor's channel padding: one 531-byte record from each
// side on timers of its own) repeat one size.
//
// Whatever else a session sends, neither side is ever silent for longer
// than the keep-alive timer's longest span (Timeout/2, 10 s by default):
// a flow whose two directions both keep that promise for 30 s is live
// the way a SoftEther tunnel is (liveness), even when data re-arms the
// timers and no keep-alive goes out alone. Any chatty connection keeps
// that promise too, an API client polling every few seconds among them,
// and one whose first exchanges fall in the connect phase's size windows
// would be a session from one ordinary connection. So liveness is
// reported only on a connection that also showed bytes only SoftEther
// sends (Inspector.own: its CONNECT request, the /tcp SNI hint, its
// default certificate); a connection with sizes alone needs the rhythm.
type rhythm struct {
	last     [2]time.Time // last record each way
	maxGap   [2]time.Duration
	n        [2]int
	live     bool        // liveness reported
	idle     [2]int      // isolated keep-alive-sized records each way
	run      [2]int      // of them, in a row (no record of that side sooner than kaMinGap between)
	floor    [2]bool     // a gap of the side's run is a floor span
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
	liveSpan = 30 * time.Second
	liveGap  = 10500 * time.Millisecond
	liveRecs = 5
	kaMinGap = 3900 * time.Millisecond
	kaMaxGap = 10500 * time.Millisecond
	kaRun    = 5
	// kaFloorMax: a gap up to here is the timer's floor span, Timeout/5
	// (4 s), plus the session loop's latency (4.10 s in the corpus's idle
	// capture, 4.04-4.30 s with UDP acceleration waking the loop).
	kaFloorMax = 4400 * time.Millisecond
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
	if !r.live && in.level == 2 && in.own && now.Sub(r.start) >= liveSpan && r.n[0] >= liveRecs && r.n[1] >= liveRecs &&
		r.maxGap[0] <= liveGap && r.maxGap[1] <= liveGap && now.Sub(r.last[other]) <= liveGap {
		// Only after a primary connection's connect phase that carried
		// SoftEther's own bytes: the promise alone, and the sizes with
		// it, are kept by chatty applications too.
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
	if gap < kaMinGap {
		// Sent sooner than any keep-alive timer allows: data, or an
		// application's own chatter. The run starts again. (A side's first
		// record has no gap: measured from the zero time it is huge.)
		r.run[dir], r.floor[dir] = 0, false
	}
	r.last[dir] = now
	if !isolated {
		return
	}
	r.idle[dir]++
	r.run[dir]++
	r.floor[dir] = r.floor[dir] || gap <= kaFloorMax
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
	if r.run[0] >= kaRun && r.run[1] >= kaRun && r.floor[0] && r.floor[1] &&
		r.nsizes[0] >= 2 && r.nsizes[1] >= 2 && r.answered <= r.idle[0]+r.idle[1] {
		r.reported = true
		s.Report(in.evidence(p, f, detector.KindTLSKeepalive, fmt.Sprintf(
			"unanswered 25-536-byte records every 3.9-10.5 s from both sides, %d client and %d server in a row with none sooner, each side with a gap at the timer's 4-s floor", r.run[0], r.run[1])))
	}
}

// finished: both reported, or followed long enough.
func (r *rhythm) finished(now time.Time) bool {
	return (r.reported && r.live) || (!r.start.IsZero() && now.Sub(r.start) > rhythmSpan)
}

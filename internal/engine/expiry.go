package engine

import "time"

// DefaultExpireInterval is the capture time after which the flow table is
// expired again however few packets came in between.
const DefaultExpireInterval = time.Second

// expiryClock is the time half of the flow table's expiry points. An
// expiry run falls on every ExpireEvery-th packet and also on the first
// packet whose capture time is ExpireInterval or more past the previous
// run (or past the input's first packet).
//
// Why time as well as packets: counted in packets alone, a sparse capture
// never reached an expiry point (a capture of 177 packets over six weeks
// kept its flows open for all of it, so a client's flow that fell silent
// for days was still the same flow when it spoke again), and a live link
// carrying a few packets a second ran expiry minutes apart, so flows and
// sessions ended minutes after their timeouts.
//
// Every reader of a file (one worker, and both multi-worker paths) asks a
// clock of its own about the same packets in the same order, so the points,
// and therefore the events, do not depend on the worker count.
type expiryClock struct {
	interval int64 // ns
	next     int64 // capture time (ns) from which a run is due
	started  bool
	// every and left count the input's packets (point).
	every, left uint64
}

func newExpiryClock(cfg *Config) expiryClock {
	every := uint64(cfg.ExpireEvery)
	return expiryClock{interval: int64(cfg.ExpireInterval), every: every, left: every}
}

// due reports whether the packet of capture time ns (Unix ns) is a
// time-driven expiry point; the first packet only starts the clock. A
// capture time before the last run (captures concatenated out of order, a
// packet stamped in the future) is never due and starts the clock again
// from it, so that the time that follows drives expiry again.
func (c *expiryClock) due(ns int64) bool {
	if !c.started || ns < c.next-c.interval {
		c.started, c.next = true, ns+c.interval
		return false
	}
	return ns >= c.next
}

// ran records an expiry run (for either reason) at the packet of capture
// time ns.
func (c *expiryClock) ran(ns int64) {
	c.next = ns + c.interval
}

// point reports whether the input's next packet, of capture time ns, is an
// expiry point: every every-th packet of the input, or due by time. Counted
// down: a division per packet (every is not a constant) was a measurable
// part of the shared file walk.
func (c *expiryClock) point(ns int64) bool {
	run := c.due(ns)
	if c.left--; c.left == 0 {
		c.left, run = c.every, true
	}
	if run {
		c.ran(ns)
	}
	return run
}

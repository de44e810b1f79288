package main

import (
	"math"
	"time"
)

// pacer spaces frames at a fixed rate on a schedule: frame i is due at
// start + i/rate. A sender asks how many frames are due (at most one
// batch), sends them in one system call and waits for the next one. A
// sender that fell behind (the machine was busy) catches up in back-to-back
// batches, so the average rate over the run is the one asked; no batch is
// longer than the batch size, which bounds the burst. Rate 0 is top speed:
// every call allows a full batch.
type pacer struct {
	rate  float64 // frames per second; 0: no pacing
	batch int
	start time.Time
}

// due returns when frame i may go: the first nanosecond at or after
// start + i/rate.
func (p *pacer) due(i int) time.Time {
	return p.start.Add(time.Duration(math.Ceil(float64(i) / p.rate * 1e9)))
}

// allowed is how many frames may go at now when sent have gone (0 to
// batch); when it is 0, wait is how long until the next one is due.
func (p *pacer) allowed(now time.Time, sent int) (n int, wait time.Duration) {
	if p.rate <= 0 {
		return p.batch, 0
	}
	// The last frame due by now, k: i/rate <= elapsed, corrected by one
	// either way so that it agrees with due whatever the rounding.
	k := int(math.Floor(now.Sub(p.start).Seconds() * p.rate))
	if !p.due(k + 1).After(now) {
		k++
	} else if p.due(k).After(now) {
		k--
	}
	n = k + 1 - sent
	if n <= 0 {
		return 0, p.due(sent).Sub(now)
	}
	return min(n, p.batch), 0
}

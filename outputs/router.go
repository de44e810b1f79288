package outputs

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Policy is the one delivery policy every output shares.
type Policy struct {
	// Lossy: Send never blocks; when an output's queue is full the record is
	// dropped for that output and counted (live capture). Otherwise Send blocks
	// (back-pressure, pcap mode: nothing is lost).
	Lossy bool
	// QueueSize is the per-output queue length.
	QueueSize int
	// BatchSize is the largest batch handed to Output.Write.
	BatchSize int
	// BatchTimeout is how long a partial batch waits for more records; 0 sends
	// whatever is queued at once.
	BatchTimeout time.Duration
	// RetryMin and RetryMax bound the exponential back-off between failed writes.
	RetryMin, RetryMax time.Duration
}

// DefaultPolicy is a sane policy for pcap mode.
func DefaultPolicy() Policy {
	return Policy{QueueSize: 4096, BatchSize: 256, RetryMin: 100 * time.Millisecond, RetryMax: 5 * time.Second}
}

// Stats is one output's health.
type Stats struct {
	Name      string `json:"name"`
	Queued    int    `json:"queued"`
	Delivered uint64 `json:"delivered"`
	Retried   uint64 `json:"retried"`
	Spooled   uint64 `json:"spooled"`
	Dropped   uint64 `json:"dropped"`
}

// Router fans every record out to all outputs, each behind its own queue and goroutine.
type Router struct {
	pol   Policy
	log   *slog.Logger
	sinks []*sink
	wg    sync.WaitGroup
	// stop is closed by Close to end retry loops that outlive its deadline.
	stop     chan struct{}
	closeErr error
	once     sync.Once
}

type sink struct {
	out       Output
	name      string
	q         chan Record
	delivered atomic.Uint64
	retried   atomic.Uint64
	dropped   atomic.Uint64
	spooled   atomic.Uint64
}

// NewRouter starts one delivery goroutine per output.
func NewRouter(pol Policy, outs []Output, log *slog.Logger) *Router {
	if pol.QueueSize <= 0 {
		pol.QueueSize = 4096
	}
	if pol.BatchSize <= 0 {
		pol.BatchSize = 256
	}
	if pol.RetryMin <= 0 {
		pol.RetryMin = 100 * time.Millisecond
	}
	if pol.RetryMax < pol.RetryMin {
		pol.RetryMax = pol.RetryMin
	}
	r := &Router{pol: pol, log: log, stop: make(chan struct{})}
	for _, o := range outs {
		s := &sink{out: o, name: o.Name(), q: make(chan Record, pol.QueueSize)}
		r.sinks = append(r.sinks, s)
		r.wg.Add(1)
		go r.run(s)
	}
	return r
}

// Send hands a record to every output. In lossy mode it never blocks.
func (r *Router) Send(rec Record) {
	for _, s := range r.sinks {
		if r.pol.Lossy {
			select {
			case s.q <- rec:
			default:
				s.dropped.Add(1)
			}
			continue
		}
		s.q <- rec
	}
}

// Stats reports every output's counters.
func (r *Router) Stats() []Stats {
	st := make([]Stats, 0, len(r.sinks))
	for _, s := range r.sinks {
		st = append(st, Stats{Name: s.name, Queued: len(s.q), Delivered: s.delivered.Load(),
			Retried: s.retried.Load(), Spooled: s.spooled.Load(), Dropped: s.dropped.Load()})
	}
	return st
}

// Close stops accepting records, delivers what is queued (retrying until ctx
// is done), then closes every output. Records still undelivered when ctx ends
// are dropped and counted.
func (r *Router) Close(ctx context.Context) error {
	r.once.Do(func() {
		for _, s := range r.sinks {
			close(s.q)
		}
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			close(r.stop)
			<-done
		}
		var errs []error
		for _, s := range r.sinks {
			if err := s.out.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

func (r *Router) run(s *sink) {
	defer r.wg.Done()
	batch := make([]Record, 0, r.pol.BatchSize)
	var timer *time.Timer
	for {
		rec, ok := <-s.q
		if !ok {
			return
		}
		batch = append(batch[:0], rec)
		open := true
	fill:
		for len(batch) < r.pol.BatchSize {
			select {
			case rec, ok := <-s.q:
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, rec)
				continue
			default:
			}
			if r.pol.BatchTimeout <= 0 {
				break
			}
			if timer == nil {
				timer = time.NewTimer(r.pol.BatchTimeout)
			} else {
				timer.Reset(r.pol.BatchTimeout)
			}
			select {
			case rec, ok := <-s.q:
				if !timer.Stop() {
					<-timer.C
				}
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, rec)
			case <-timer.C:
				break fill
			}
		}
		r.deliver(s, batch)
		if !open {
			return
		}
	}
}

// deliver writes one batch, retrying with exponential back-off until it is
// delivered or the router is told to stop.
func (r *Router) deliver(s *sink, batch []Record) {
	wait := r.pol.RetryMin
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			select {
			case <-r.stop:
				cancel()
			case <-stopped:
			}
		}()
		err := s.out.Write(ctx, batch)
		close(stopped)
		cancel()
		if err == nil {
			s.delivered.Add(uint64(len(batch)))
			return
		}
		select {
		case <-r.stop:
			s.dropped.Add(uint64(len(batch)))
			r.log.Error("output gave up at shutdown", "output", s.name, "dropped", len(batch), "err", err)
			return
		default:
		}
		s.retried.Add(1)
		if attempt == 0 || attempt%20 == 0 {
			r.log.Warn("output write failed, retrying", "output", s.name, "attempt", attempt+1, "err", err)
		}
		select {
		case <-time.After(wait):
		case <-r.stop:
		}
		wait *= 2
		if wait > r.pol.RetryMax {
			wait = r.pol.RetryMax
		}
	}
}

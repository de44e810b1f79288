package outputs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sewatch/sewatch/outputs/spool"
)

// Policy is the one delivery policy every output shares.
type Policy struct {
	// Lossy: Send never blocks; when an output's queue is full, or its spool
	// is full, the record is dropped for that output and counted (live
	// capture). Otherwise Send blocks (back-pressure, pcap mode: nothing is
	// lost).
	Lossy bool
	// QueueSize is the per-output queue length; each output also holds up to
	// QueueSize records in memory behind the queue before it spills to its spool.
	QueueSize int
	// BatchSize is the largest batch handed to Output.Write.
	BatchSize int
	// BatchTimeout is how long a partial batch waits for more records; 0 sends
	// whatever is queued at once.
	BatchTimeout time.Duration
	// RetryMin and RetryMax bound the exponential back-off between failed writes.
	RetryMin, RetryMax time.Duration
	// SpoolDir enables the on-disk spool: each output gets a subdirectory
	// named after its identity (type and destination, see Identifier), so
	// reordering or renaming outputs finds the same spool. Empty: no spool
	// (records wait in memory only).
	SpoolDir string
	// SpoolMaxBytes bounds each output's spool on disk (default 256 MiB).
	SpoolMaxBytes int64
	// Types, index-aligned with the outputs, are the event types each
	// output takes (Spec.Types); a missing or empty entry: all. Records of
	// other types never enter its queue or spool.
	Types [][]string
	// StallTimeout bounds how long Send blocks (non-lossy mode) while an
	// output makes no progress and has no room left in memory or spool:
	// after it, that output's records are dropped and counted until it
	// delivers again, so a sink that is down for good cannot hang a pcap
	// run. 0: block for ever.
	StallTimeout time.Duration
}

// Identifier is implemented by outputs that can name their destination
// ("kafka:k1:9092/sewatch-eve", "file:/var/log/eve.json"). The identity
// names the output's spool directory; without it the output's Name is used.
type Identifier interface {
	Identity() string
}

// IdentityOf returns o's identity, or its name.
func IdentityOf(o Output) string {
	if id, ok := o.(Identifier); ok {
		if s := id.Identity(); s != "" {
			return s
		}
	}
	return o.Name()
}

// DefaultSpoolMaxBytes is each output's spool limit when none is set.
const DefaultSpoolMaxBytes = 256 << 20

// DefaultPolicy is a sane policy for pcap mode.
func DefaultPolicy() Policy {
	return Policy{QueueSize: 4096, BatchSize: 256, RetryMin: 100 * time.Millisecond, RetryMax: 5 * time.Second}
}

// Stats is one output's health.
type Stats struct {
	Name string `json:"name"`
	// Identity is the output's type and destination (see Identifier).
	Identity string `json:"identity"`
	// Queued is what waits for delivery: queue, memory and spool.
	Queued int `json:"queued"`
	// Delivered counts records the output accepted.
	Delivered uint64 `json:"delivered"`
	// Retried counts failed writes that were retried.
	Retried uint64 `json:"retried"`
	// Spooled counts records written to the spool (cumulative).
	Spooled uint64 `json:"spooled"`
	// Dropped counts records lost: spool (or queue without spool) full in
	// lossy mode, or undeliverable at shutdown without a spool.
	Dropped uint64 `json:"dropped"`
	// Rejected counts records the sink refused for good (e.g. mapping
	// errors), as reported by outputs implementing Rejecter.
	Rejected uint64 `json:"rejected,omitempty"`
	// InSpool and SpoolBytes describe the spool now; SpoolDir is empty
	// when the output has no spool.
	InSpool    int64  `json:"in_spool,omitempty"`
	SpoolBytes int64  `json:"spool_bytes,omitempty"`
	SpoolDir   string `json:"spool_dir,omitempty"`
}

// Undelivered is what did not reach the sink: dropped, rejected, or
// still waiting in the spool.
func (s Stats) Undelivered() uint64 { return s.Dropped + s.Rejected + uint64(s.InSpool) }

// OrphanSpool is a spool directory under SpoolDir that no output of this
// run owns, with the events it still holds.
type OrphanSpool struct {
	Dir      string
	Identity string // from the directory's identity file; empty if unknown
	Events   int64
	Bytes    int64
}

// Rejecter is implemented by outputs whose sink can refuse single records
// for good (they are logged and counted by the output, never retried).
type Rejecter interface {
	Rejected() uint64
}

// Router fans every record out to all outputs. Each output has its own queue
// and two goroutines: intake moves records from the queue to memory, or to
// the spool once memory is full or the spool is already in use (so order is
// kept); the writer batches them to Output.Write, oldest first, retrying
// with back-off. A failed in-memory batch and everything behind it in memory
// are moved to the front of the spool, so a crash loses at most what had not
// reached the spool yet.
type Router struct {
	pol   Policy
	log   *slog.Logger
	sinks []*sink
	wg    sync.WaitGroup
	// ctx is cancelled by Close when its deadline passes: it ends writes and
	// retry loops that outlive the deadline.
	ctx      context.Context
	cancel   context.CancelFunc
	closeErr error
	once     sync.Once
	orphans  []OrphanSpool
}

type sink struct {
	out  Output
	name string
	id   string
	// types are the event types it takes (nil: all).
	types map[string]bool
	q     chan Record
	sp    *spool.Spool // nil: no spool

	mu         sync.Mutex
	mem        []Record // oldest first; all older than anything in sp
	inflight   []Record // an in-memory batch being written (older than mem)
	intakeDone bool
	wake       chan struct{} // writer: new records or intake done
	room       chan struct{} // intake: memory or spool shrank

	delivered atomic.Uint64
	retried   atomic.Uint64
	dropped   atomic.Uint64
	spooled   atomic.Uint64
	// stalled: Send gave up waiting for room (StallTimeout); records are
	// dropped at once until the writer delivers again.
	stalled atomic.Bool
	// discarded counts damaged spool entries given up (logged by the spool callback).
	discarded *atomic.Uint64
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// NewRouter starts the delivery goroutines. An output whose spool cannot be
// opened runs without one (logged); use OpenRouter to treat that as an error.
func NewRouter(pol Policy, outs []Output, log *slog.Logger) *Router {
	r, err := newRouter(pol, outs, log, false)
	if err != nil {
		log.Error("output spool unavailable, delivering from memory only", "err", err)
	}
	return r
}

// OpenRouter is NewRouter that fails when a spool cannot be opened.
func OpenRouter(pol Policy, outs []Output, log *slog.Logger) (*Router, error) {
	return newRouter(pol, outs, log, true)
}

func newRouter(pol Policy, outs []Output, log *slog.Logger, strict bool) (*Router, error) {
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
	if pol.SpoolMaxBytes <= 0 {
		pol.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var sps []*spool.Spool
	var errs []error
	discards := make([]*atomic.Uint64, len(outs))
	owned := map[string]bool{}
	for i, o := range outs {
		var sp *spool.Spool
		discards[i] = new(atomic.Uint64)
		if pol.SpoolDir != "" {
			id := IdentityOf(o)
			name := SpoolDirName(id)
			owned[name] = true
			dir := filepath.Join(pol.SpoolDir, name)
			cnt, oname := discards[i], o.Name()
			var err error
			sp, err = spool.Open(dir, spool.Options{MaxBytes: pol.SpoolMaxBytes,
				OnDiscard: func(n int64, reason string) {
					cnt.Add(uint64(n))
					log.Error("output spool discarded damaged events", "output", oname, "events", n, "reason", reason)
				}})
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", o.Name(), err))
				sp = nil
			} else {
				writeIdentity(dir, id)
				if n := sp.Len(); n > 0 {
					log.Info("output spool holds events from an earlier run, delivering them first",
						"output", o.Name(), "events", n, "bytes", sp.Size())
				}
			}
		}
		sps = append(sps, sp)
	}
	if err := errors.Join(errs...); err != nil && strict {
		for _, sp := range sps {
			if sp != nil {
				sp.Close()
			}
		}
		return nil, err
	}
	r := &Router{pol: pol, log: log}
	if pol.SpoolDir != "" {
		r.orphans = findOrphans(pol.SpoolDir, owned)
		for _, o := range r.orphans {
			log.Warn("spool directory of an output not configured in this run holds undelivered events",
				"dir", o.Dir, "identity", o.Identity, "events", o.Events, "bytes", o.Bytes)
		}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for i, o := range outs {
		s := &sink{out: o, name: o.Name(), id: IdentityOf(o), q: make(chan Record, pol.QueueSize), sp: sps[i],
			wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
		// The spool's callback counts into the same counter, from Open on.
		s.discarded = discards[i]
		if i < len(pol.Types) && len(pol.Types[i]) > 0 {
			s.types = map[string]bool{}
			for _, t := range pol.Types[i] {
				s.types[t] = true
			}
		}
		r.sinks = append(r.sinks, s)
		r.wg.Add(2)
		go r.intake(s)
		go r.writer(s)
	}
	return r, errors.Join(errs...)
}

// SpoolDirName is the spool subdirectory of an output identity: its
// SpoolName form, cut to 80 bytes, plus 8 hex digits of its SHA-256 so two
// identities that read alike after cleaning never share a directory.
func SpoolDirName(identity string) string {
	n := SpoolName(identity)
	if len(n) > 80 {
		n = n[:80]
	}
	sum := sha256.Sum256([]byte(identity))
	return n + "-" + hex.EncodeToString(sum[:4])
}

const identityFile = "identity"

// writeIdentity records which output a spool directory belongs to, so an
// orphaned spool can be reported by name.
func writeIdentity(dir, id string) {
	_ = os.WriteFile(filepath.Join(dir, identityFile), []byte(id+"\n"), 0o640)
}

// findOrphans lists the spool directories under root that hold events and
// belong to no output of this run (another -o list, or an older layout
// named by position).
func findOrphans(root string, owned map[string]bool) []OrphanSpool {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var out []OrphanSpool
	for _, e := range ents {
		if !e.IsDir() || owned[e.Name()] {
			continue
		}
		dir := filepath.Join(root, e.Name())
		n, b, err := spool.Stat(dir)
		if err != nil || n == 0 {
			continue
		}
		o := OrphanSpool{Dir: dir, Events: n, Bytes: b}
		if id, err := os.ReadFile(filepath.Join(dir, identityFile)); err == nil {
			o.Identity = strings.TrimSpace(string(id))
		}
		out = append(out, o)
	}
	return out
}

// Orphans are the spool directories found at start that no output of this
// run owns but that hold events (logged at start).
func (r *Router) Orphans() []OrphanSpool { return r.orphans }

// SpoolName is the spool subdirectory of an output name: letters, digits,
// '.', '-' and '_' are kept, runs of anything else become one '_'.
func SpoolName(name string) string {
	var b strings.Builder
	under := false
	for _, c := range name {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' {
			b.WriteRune(c)
			under = false
		} else if !under {
			b.WriteByte('_')
			under = true
		}
	}
	out := strings.Trim(b.String(), "_.")
	if out == "" {
		out = "output"
	}
	return out
}

// Send hands a record to every output. In lossy mode it never blocks.
func (r *Router) Send(rec Record) {
	for _, s := range r.sinks {
		if s.types != nil && !s.types[rec.Type] {
			continue
		}
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
		s.mu.Lock()
		queued := len(s.q) + len(s.mem) + len(s.inflight)
		s.mu.Unlock()
		x := Stats{Name: s.name, Identity: s.id, Delivered: s.delivered.Load(),
			Retried: s.retried.Load(), Spooled: s.spooled.Load(), Dropped: s.dropped.Load() + s.discarded.Load()}
		if s.sp != nil {
			x.InSpool, x.SpoolBytes, x.SpoolDir = s.sp.Len(), s.sp.Size(), s.sp.Dir()
			queued += int(x.InSpool)
		}
		x.Queued = queued
		if rj, ok := s.out.(Rejecter); ok {
			x.Rejected = rj.Rejected()
		}
		st = append(st, x)
	}
	return st
}

// Close stops accepting records and delivers what is queued, in memory or
// spooled, retrying until ctx is done; then it closes every output. Records
// still undelivered when ctx ends stay in the spool for the next run; without
// a spool they are dropped and counted.
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
			r.cancel()
			<-done
		}
		r.cancel()
		var errs []error
		for _, s := range r.sinks {
			if err := s.out.Close(ctx); err != nil {
				errs = append(errs, err)
			}
			if s.sp != nil {
				if n := s.sp.Len(); n > 0 {
					r.log.Warn("output spool keeps undelivered events for the next run",
						"output", s.name, "events", n, "dir", s.sp.Dir())
				}
				if err := s.sp.Close(); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
				}
			}
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

func (r *Router) stopped() bool { return r.ctx.Err() != nil }

// intake moves records from the queue into memory or the spool.
func (r *Router) intake(s *sink) {
	defer r.wg.Done()
	buf := make([]Record, 0, 256)
	for {
		rec, ok := <-s.q
		if !ok {
			break
		}
		buf = append(buf[:0], rec)
	more:
		for len(buf) < cap(buf) {
			select {
			case rec, ok := <-s.q:
				if !ok {
					break more
				}
				buf = append(buf, rec)
			default:
				break more
			}
		}
		r.admit(s, buf)
	}
	s.mu.Lock()
	s.intakeDone = true
	s.mu.Unlock()
	signal(s.wake)
}

// admit places recs (in order) behind everything already held for s.
func (r *Router) admit(s *sink, recs []Record) {
	memCap := r.pol.QueueSize
	for len(recs) > 0 {
		s.mu.Lock()
		inSpool := s.sp != nil && s.sp.Len() > 0
		switch {
		case !inSpool && len(s.mem) < memCap:
			n := min(memCap-len(s.mem), len(recs))
			s.mem = append(s.mem, recs[:n]...)
			recs = recs[n:]
			s.mu.Unlock()
			signal(s.wake)
			continue
		case s.sp != nil:
			// Memory is full or the spool is in use: the spool takes them,
			// memory first when the spool was empty (order is kept).
			var ents [][]byte
			var fromMem int
			if !inSpool && len(s.mem) > 0 {
				var need int64
				for _, m := range s.mem {
					need += int64(encodedLen(m) + spool.Overhead)
				}
				if need <= s.sp.Free() {
					fromMem = len(s.mem)
					for _, m := range s.mem {
						ents = append(ents, encodeRecord(nil, m))
					}
				}
			}
			if fromMem > 0 || inSpool {
				for _, rec := range recs {
					ents = append(ents, encodeRecord(nil, rec))
				}
				n, err := s.sp.Append(ents)
				if n > 0 {
					s.spooled.Add(uint64(n))
				}
				if n >= fromMem {
					s.mem = s.mem[:0]
					recs = recs[n-fromMem:]
				}
				if err == nil {
					s.mu.Unlock()
					signal(s.wake)
					continue
				}
				if !errors.Is(err, spool.ErrFull) {
					r.log.Warn("output spool write failed", "output", s.name, "err", err)
				}
			}
		}
		// No room in memory nor in the spool.
		s.mu.Unlock()
		signal(s.wake)
		if r.pol.Lossy || r.stopped() || s.stalled.Load() {
			s.dropped.Add(uint64(len(recs)))
			return
		}
		var stall <-chan time.Time
		var t *time.Timer
		if r.pol.StallTimeout > 0 {
			t = time.NewTimer(r.pol.StallTimeout)
			stall = t.C
		}
		select {
		case <-s.room:
		case <-r.ctx.Done():
		case <-stall:
			s.stalled.Store(true)
			r.log.Error("output made no progress, dropping its events until it delivers again",
				"output", s.name, "waited", r.pol.StallTimeout, "spool", s.sp != nil)
		}
		if t != nil {
			t.Stop()
		}
	}
}

// writer delivers batches, oldest first.
func (r *Router) writer(s *sink) {
	defer r.wg.Done()
	var wait time.Duration
	for {
		batch, fromSpool, ok := r.next(s)
		if !ok {
			break
		}
		err := s.out.Write(r.ctx, batch)
		if err == nil {
			s.delivered.Add(uint64(len(batch)))
			s.stalled.Store(false)
			s.mu.Lock()
			if fromSpool {
				if cerr := s.sp.Commit(); cerr != nil {
					r.log.Warn("output spool commit failed", "output", s.name, "err", cerr)
				}
			} else {
				s.inflight = nil
			}
			s.mu.Unlock()
			signal(s.room)
			wait = 0
			continue
		}
		if r.stopped() {
			r.log.Error("output gave up at shutdown", "output", s.name, "undelivered", len(batch), "err", err)
			break
		}
		s.retried.Add(1)
		if n := s.retried.Load(); n == 1 || n%20 == 0 {
			r.log.Warn("output write failed, retrying", "output", s.name, "failures", n, "err", err)
		}
		if !fromSpool && s.sp != nil {
			r.spill(s)
		}
		if wait == 0 {
			wait = r.pol.RetryMin
		} else {
			wait = min(wait*2, r.pol.RetryMax)
		}
		select {
		case <-time.After(wait):
		case <-r.ctx.Done():
		}
	}
	r.finish(s)
}

// spill moves the failed in-memory batch and the memory behind it to the
// front of the spool. On failure they stay in memory and are retried there.
func (r *Router) spill(s *sink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.inflight) + len(s.mem)
	if n == 0 {
		return
	}
	ents := make([][]byte, 0, n)
	for _, m := range s.inflight {
		ents = append(ents, encodeRecord(nil, m))
	}
	for _, m := range s.mem {
		ents = append(ents, encodeRecord(nil, m))
	}
	if err := s.sp.Prepend(ents); err != nil {
		r.log.Warn("output spool write failed, holding events in memory", "output", s.name, "err", err)
		return
	}
	s.spooled.Add(uint64(n))
	s.inflight, s.mem = nil, s.mem[:0]
	signal(s.room)
}

// spillPrefix, at shutdown, moves the oldest records still in memory that
// fit under the spool's limit to the front of the spool; the newer rest is
// then counted as dropped by finish. (During the run this would put newer
// records in memory behind older ones in the spool; at shutdown nothing is
// read from memory any more.)
func (r *Router) spillPrefix(s *sink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := append(append([]Record(nil), s.inflight...), s.mem...)
	if len(held) == 0 {
		return
	}
	free := s.sp.Free()
	var ents [][]byte
	for _, m := range held {
		e := encodeRecord(nil, m)
		if free < int64(len(e)+spool.Overhead) {
			break
		}
		free -= int64(len(e) + spool.Overhead)
		ents = append(ents, e)
	}
	if len(ents) == 0 {
		return
	}
	if err := s.sp.Prepend(ents); err != nil {
		r.log.Warn("output spool write failed at shutdown", "output", s.name, "err", err)
		return
	}
	s.spooled.Add(uint64(len(ents)))
	rest := held[len(ents):]
	s.inflight, s.mem = nil, append(s.mem[:0], rest...)
}

// finish runs when the writer ends: records still in memory go to the spool
// for the next run, or are counted as dropped without one.
func (r *Router) finish(s *sink) {
	if s.sp != nil {
		r.spill(s)
		r.spillPrefix(s)
	}
	s.mu.Lock()
	n := len(s.inflight) + len(s.mem)
	s.inflight, s.mem = nil, nil
	s.mu.Unlock()
	if n > 0 {
		s.dropped.Add(uint64(n))
		r.log.Error("output dropped undelivered events at shutdown", "output", s.name, "dropped", n)
	}
	signal(s.room)
}

// next waits for the next batch: a failed in-memory batch again, else from
// memory, else from the spool. ok is false when there is nothing left and
// intake has ended, or at the shutdown deadline.
func (r *Router) next(s *sink) (batch []Record, fromSpool, ok bool) {
	var deadline time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if r.stopped() {
			return nil, false, false
		}
		s.mu.Lock()
		if s.inflight != nil {
			b := s.inflight
			s.mu.Unlock()
			return b, false, true
		}
		if len(s.mem) > 0 {
			full := len(s.mem) >= r.pol.BatchSize
			if full || r.pol.BatchTimeout <= 0 || s.intakeDone || (!deadline.IsZero() && !time.Now().Before(deadline)) {
				n := min(len(s.mem), r.pol.BatchSize)
				b := make([]Record, n)
				copy(b, s.mem)
				s.mem = append(s.mem[:0], s.mem[n:]...)
				s.inflight = b
				s.mu.Unlock()
				signal(s.room)
				return b, false, true
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(r.pol.BatchTimeout)
			}
		} else if s.sp != nil && s.sp.Len() > 0 {
			ents, err := s.sp.Peek(r.pol.BatchSize)
			if err != nil {
				// The spool cannot be read back: give its content up, counted.
				n, derr := s.sp.Discard()
				s.dropped.Add(uint64(n))
				r.log.Error("output spool unreadable, its events are dropped", "output", s.name,
					"dropped", n, "err", errors.Join(err, derr))
				s.mu.Unlock()
				continue
			}
			b := make([]Record, 0, len(ents))
			bad := 0
			for _, e := range ents {
				rec, derr := decodeRecord(e)
				if derr != nil {
					bad++
					continue
				}
				b = append(b, rec)
			}
			if bad > 0 {
				s.dropped.Add(uint64(bad))
				r.log.Error("output spool holds damaged events, skipping them", "output", s.name, "dropped", bad)
			}
			if len(b) == 0 {
				s.sp.Commit()
				s.mu.Unlock()
				continue
			}
			s.mu.Unlock()
			return b, true, true
		} else if s.intakeDone {
			s.mu.Unlock()
			return nil, false, false
		}
		s.mu.Unlock()
		var tc <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tc = timer.C
		}
		select {
		case <-s.wake:
		case <-tc:
		case <-r.ctx.Done():
		}
	}
}

// Spool record encoding: version byte, then uvarint-prefixed Type, Key, ID,
// varint time (Unix ns, 0 for zero), FlowID, SignatureID, and the JSON rest.
const recVersion = 1

func encodedLen(r Record) int {
	return 1 + 3*binary.MaxVarintLen64 + len(r.Type) + len(r.Key) + len(r.ID) + 3*binary.MaxVarintLen64 + len(r.JSON)
}

func encodeRecord(buf []byte, r Record) []byte {
	if buf == nil {
		buf = make([]byte, 0, encodedLen(r))
	}
	buf = append(buf, recVersion)
	for _, s := range [...]string{r.Type, r.Key, r.ID} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	var ns int64
	if !r.Time.IsZero() {
		ns = r.Time.UnixNano()
	}
	buf = binary.AppendVarint(buf, ns)
	buf = binary.AppendVarint(buf, r.FlowID)
	buf = binary.AppendVarint(buf, int64(r.SignatureID))
	return append(buf, r.JSON...)
}

var errBadRecord = errors.New("damaged spool record")

func decodeRecord(b []byte) (Record, error) {
	var r Record
	if len(b) == 0 || b[0] != recVersion {
		return r, errBadRecord
	}
	b = b[1:]
	var strs [3]string
	for i := range strs {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return r, errBadRecord
		}
		strs[i] = string(b[n : n+int(l)])
		b = b[n+int(l):]
	}
	var ints [3]int64
	for i := range ints {
		v, n := binary.Varint(b)
		if n <= 0 {
			return r, errBadRecord
		}
		ints[i] = v
		b = b[n:]
	}
	r.Type, r.Key, r.ID = strs[0], strs[1], strs[2]
	if ints[0] != 0 {
		r.Time = time.Unix(0, ints[0]).UTC()
	}
	r.FlowID, r.SignatureID = ints[1], int(ints[2])
	r.JSON = b
	return r, nil
}

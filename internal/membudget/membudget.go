// Package membudget bounds the bytes that per-flow buffers (handshake
// collection, reassembly) hold across all flows of an engine. Buffer owners
// reserve before they grow and release when they shrink or their flow ends;
// a refused reservation means the owner sheds its partial buffer.
//
// One Budget is shared by all workers of an engine: it is a handful of
// atomics, so reserving takes no lock and allocates nothing.
package membudget

import (
	"log/slog"
	"sync/atomic"
)

// DefaultBytes is the default budget (memory.flow-buffers).
const DefaultBytes = 256 << 20

// MinBytes is the smallest budget accepted: room for a few dozen full
// handshakes, so a budget cannot be set so low that every hello is shed.
const MinBytes = 1 << 20

// Budget accounts the buffer bytes of all flows. Flows that already gave
// SoftEther evidence are the last to be refused: other flows may only use
// the first 7/8 of the budget, the last eighth is kept for them.
type Budget struct {
	limit int64 // the whole budget: total reserved never exceeds it
	soft  int64 // what flows without evidence may use
	used  atomic.Int64
	peak  atomic.Int64
	shed  atomic.Uint64
	// shedKept counts refusals to flows with evidence (the reserve was
	// exhausted too); shedOther buffers dropped to make room for another.
	shedKept  atomic.Uint64
	shedOther atomic.Uint64
	// squeezed counts the reservations refused at first (before idle
	// pooled buffers were dropped or stale ones shed): each worker's pool
	// empties when it sees it move.
	squeezed atomic.Uint64
	logged   atomic.Bool
	log      *slog.Logger
}

// New makes a budget of limit bytes (DefaultBytes if limit <= 0). log (may
// be nil) receives one warning at the first refusal.
func New(limit int64, log *slog.Logger) *Budget {
	if limit <= 0 {
		limit = DefaultBytes
	}
	return &Budget{limit: limit, soft: limit - limit/8, log: log}
}

// Limit returns the whole budget in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Reserve accounts n more bytes for a flow; kept says the flow gave
// evidence (it may use the reserve). false means refused (not counted:
// Holder.Grow counts the buffers actually dropped). A nil budget accepts
// everything.
func (b *Budget) Reserve(n int, kept bool) bool {
	if b == nil || n <= 0 {
		return true
	}
	lim := b.soft
	if kept {
		lim = b.limit
	}
	for {
		cur := b.used.Load()
		next := cur + int64(n)
		if next > lim {
			return false
		}
		if b.used.CompareAndSwap(cur, next) {
			for {
				p := b.peak.Load()
				if next <= p || b.peak.CompareAndSwap(p, next) {
					return true
				}
			}
		}
	}
}

func (b *Budget) refused(kept bool) {
	b.shed.Add(1)
	if kept {
		b.shedKept.Add(1)
	}
	b.logOnce()
}

func (b *Budget) logOnce() {
	if b.log != nil && !b.logged.Swap(true) {
		b.log.Warn("flow buffer budget exhausted: partial handshakes of flows are dropped and counted (tcp.segment_memcap_drop); raise memory.flow-buffers if this repeats (logged once)",
			"budget_bytes", b.limit, "in_use_bytes", b.used.Load())
	}
}

// Release returns n bytes reserved earlier.
func (b *Budget) Release(n int) {
	if b == nil || n <= 0 {
		return
	}
	b.used.Add(-int64(n))
}

// Used returns the bytes reserved now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Peak returns the most bytes ever reserved at once.
func (b *Budget) Peak() int64 {
	if b == nil {
		return 0
	}
	return b.peak.Load()
}

// Shed returns how many buffers were dropped for want of room: all of
// them, those of flows with evidence, and those dropped to make room for
// another flow's buffer.
func (b *Budget) Shed() (all, kept, forOthers uint64) {
	if b == nil {
		return 0, 0, 0
	}
	return b.shed.Load() + b.shedOther.Load(), b.shedKept.Load(), b.shedOther.Load()
}

// Account is one worker's link to its engine's budget: L is the worker's
// list of buffers holding bytes (nil: none is ever shed for another). It
// also keeps the worker's pool of idle buffers (see Take), so only its
// worker may use it.
type Account struct {
	B    *Budget
	L    *Holders
	pool pool
}

// Shedder is a buffer's owner: ShedBuffer drops the buffer (its Holder is
// freed) and makes the owner give up on what it was collecting.
type Shedder interface{ ShedBuffer() }

// Holders is one worker's buffers that hold reserved bytes, least recently
// grown first. Only the worker that owns it touches it: no lock.
type Holders struct{ head, tail *Holder }

// maxVictims bounds how many buffers one refused reservation looks at.
const maxVictims = 64

// Holder is one buffer's reservation, embedded in its owner. When the
// budget refuses it room, the worker's least recently grown buffers of
// flows without evidence are shed first, so a flood of stale partial
// handshakes cannot keep a new flow from being inspected.
type Holder struct {
	prev, next *Holder
	acct       *Account
	kept       *bool // the flow gave evidence: its buffers are shed last
	owner      Shedder
	n          int
}

// Bind ties the holder to its worker's account (nil: no budget), to the
// flow's evidence flag (may be nil) and to the owner that sheds the buffer.
// Anything held is freed first.
func (h *Holder) Bind(a *Account, kept *bool, owner Shedder) {
	h.Free()
	h.acct, h.kept, h.owner = a, kept, owner
}

func (h *Holder) isKept() bool { return h.kept != nil && *h.kept }

// Held returns the bytes the holder has reserved.
func (h *Holder) Held() int { return h.n }

func (h *Holder) linked() bool {
	return h.prev != nil || (h.acct.L != nil && h.acct.L.head == h)
}

// Grow reserves n more bytes for the buffer (no account: always granted).
// false: refused even after shedding older buffers; the owner must drop
// its buffer (Free).
func (h *Holder) Grow(n int) bool {
	a := h.acct
	if a == nil || a.B == nil || n <= 0 {
		return true
	}
	if _, ok := h.reserve(n, -1); !ok {
		return false
	}
	h.held(n)
	return true
}

// reserve reserves n bytes in the budget for h. When the budget refuses,
// the account's idle pooled buffers are dropped first, then stale buffers
// shed one at a time until the reservation fits: shedding one may free
// others (a flow's inspector state takes its inspectors' buffers with it),
// so the budget, not a running sum, says when there is room. A shed buffer
// of pool class k that lands in the pool is taken instead (returned, its
// reservation now the caller's). false: refused (counted), nothing
// reserved.
func (h *Holder) reserve(n, k int) ([]byte, bool) {
	a := h.acct
	kept := h.isKept()
	if a.B.Reserve(n, kept) {
		return nil, true
	}
	a.B.squeezed.Add(1)
	a.pool.squeezed = a.B.squeezed.Load()
	if a.pool.trim(a.B) && a.B.Reserve(n, kept) {
		return nil, true
	}
	for i := 0; i < maxVictims && a.L != nil && a.L.shedOne(h); i++ {
		if b := a.pool.pop(k); b != nil {
			return b, true
		}
		a.pool.trim(a.B)
		if a.B.Reserve(n, kept) {
			return nil, true
		}
	}
	a.B.refused(kept)
	return nil, false
}

// held adds n reserved bytes to the holder, which becomes the most
// recently grown of its worker's buffers.
func (h *Holder) held(n int) {
	a := h.acct
	h.n += n
	if a.L != nil {
		if h.linked() {
			a.L.unlink(h)
		}
		a.L.push(h)
	}
}

// Shrink releases n of the bytes the holder reserved (all if n is more).
func (h *Holder) Shrink(n int) {
	if h.acct == nil || n <= 0 || h.n == 0 {
		return
	}
	if n >= h.n {
		h.Free()
		return
	}
	h.acct.B.Release(n)
	h.n -= n
}

// Free releases everything the holder reserved; it stays bound.
func (h *Holder) Free() {
	a := h.acct
	if a == nil || h.n == 0 {
		return
	}
	a.B.Release(h.n)
	h.n = 0
	if a.L != nil && h.linked() {
		a.L.unlink(h)
	}
}

// shedOne drops the least recently grown buffer of a flow without
// evidence (never except's); false if none was found among the first
// maxVictims. Evidence holders it passes are moved behind the others so
// later walks do not step over them again.
func (l *Holders) shedOne(except *Holder) bool {
	for looked, v := 0, l.head; v != nil && looked < maxVictims; looked++ {
		next := v.next
		switch {
		case v == except:
		case v.isKept():
			l.unlink(v)
			l.push(v)
		default:
			v.owner.ShedBuffer()
			v.Free() // in case the owner did not
			v.acct.B.shedOther.Add(1)
			v.acct.B.logOnce()
			return true
		}
		v = next
	}
	return false
}

func (l *Holders) push(h *Holder) {
	h.prev, h.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = h
	} else {
		l.head = h
	}
	l.tail = h
}

func (l *Holders) unlink(h *Holder) {
	if h.prev != nil {
		h.prev.next = h.next
	} else {
		l.head = h.next
	}
	if h.next != nil {
		h.next.prev = h.prev
	} else {
		l.tail = h.prev
	}
	h.prev, h.next = nil, nil
}

package membudget

// Handshake buffers are pooled per worker, in size classes, so that a new
// TLS connection takes its buffers from the buffers earlier connections
// gave back instead of allocating them.
//
// A pooled buffer stays reserved in the budget while it waits in the pool:
// the budget bounds the bytes flows hold and the bytes parked for reuse
// together, and a flood cannot park memory in the pool beyond it. The pool
// of one account is also capped (idleCap), and a reservation the budget
// refuses first empties the pool before any flow's buffer is shed; the
// other workers empty theirs at their next Take or Return.
//
// A buffer is in one place at a time: its owner (one Holder) or the pool.
// Take hands it out, Return takes it back; the owner must keep no slice of
// it after Return, since the next Take may give it to another flow.

// Pooled buffer sizes: powers of two from MinBuf to MaxBuf.
const (
	MinBuf   = 512
	MaxBuf   = 16 << 10
	nClasses = 6 // 512 B .. 16 KiB
)

// BufSize returns the pooled size that holds n bytes: the smallest power of
// two from MinBuf up that is at least n, or n itself above MaxBuf (such a
// buffer is not pooled).
func BufSize(n int) int {
	if n > MaxBuf {
		return n
	}
	s := MinBuf
	for s < n {
		s <<= 1
	}
	return s
}

// class is the pool index of a buffer capacity, -1 when it is not pooled.
func class(size int) int {
	if size < MinBuf || size > MaxBuf || size&(size-1) != 0 {
		return -1
	}
	k := 0
	for s := MinBuf; s < size; s <<= 1 {
		k++
	}
	return k
}

// pool is one account's idle buffers by class. Only its worker touches it.
type pool struct {
	free [nClasses][][]byte
	idle int // bytes of the buffers in free, reserved in the budget
	// squeezed is the budget's refusal count when the pool last looked:
	// a refusal anywhere empties every worker's pool.
	squeezed uint64
}

// idleCap bounds the bytes an account's pool keeps: 1/16 of the budget,
// from 64 KiB to 16 MiB (16 MiB with the default budget: enough for the
// buffers of every TLS handshake the benchmark mix has in progress at once
// but 612, when all its 67,794 flows start together).
func (a *Account) idleCap() int {
	if a.B == nil {
		return 16 << 20
	}
	return int(min(max(a.B.limit/16, 64<<10), 16<<20))
}

// squeeze empties the pool when the budget refused a reservation (in any
// worker) since the pool last looked.
func (a *Account) squeeze() {
	if a.B == nil {
		return
	}
	if n := a.B.squeezed.Load(); n != a.pool.squeezed {
		a.pool.squeezed = n
		a.pool.trim(a.B)
	}
}

// pop takes an idle buffer of class k (nil if none); its reservation
// passes to the caller.
func (p *pool) pop(k int) []byte {
	if k < 0 {
		return nil
	}
	l := p.free[k]
	if len(l) == 0 {
		return nil
	}
	b := l[len(l)-1]
	l[len(l)-1] = nil
	p.free[k] = l[:len(l)-1]
	p.idle -= cap(b)
	return b[:0]
}

// trim drops every idle buffer and releases its bytes; false if there was
// none.
func (p *pool) trim(b *Budget) bool {
	if p.idle == 0 {
		return false
	}
	for k := range p.free {
		l := p.free[k]
		for i := range l {
			l[i] = nil
		}
		p.free[k] = l[:0]
	}
	b.Release(p.idle)
	p.idle = 0
	return true
}

// Idle returns the bytes waiting in the account's pool (they count in the
// budget's Used).
func (a *Account) Idle() int {
	if a == nil {
		return 0
	}
	return a.pool.idle
}

// Trim empties the account's pool and releases its bytes to the budget
// (a worker that stops).
func (a *Account) Trim() {
	if a != nil {
		a.pool.trim(a.B)
	}
}

// Take returns an empty buffer of capacity size (see BufSize) for the
// holder's owner, its bytes reserved in the holder: from the account's pool
// when it has one of that size, else new. Room is made as Grow makes it.
// false: refused; nothing is reserved and the owner gives up what it was
// collecting. Without an account the buffer is new and unaccounted.
func (h *Holder) Take(size int) ([]byte, bool) {
	a := h.acct
	if a == nil {
		return make([]byte, 0, size), true
	}
	a.squeeze()
	k := class(size)
	b := a.pool.pop(k)
	if b == nil {
		var ok bool
		if b, ok = h.reserve(size, k); !ok {
			return nil, false
		}
		if b == nil {
			b = make([]byte, 0, size)
		}
	}
	h.held(size)
	return b, true
}

// Return takes back a buffer Take gave the holder: its bytes leave the
// holder and the buffer waits in the account's pool (still reserved) for
// the next Take, or is dropped and its bytes released when the pool is
// full or the size is not pooled. The caller must drop every slice of b.
func (h *Holder) Return(b []byte) {
	a, size := h.acct, cap(b)
	if a == nil || size == 0 || size > h.n {
		// Not reserved by this holder (no account, or freed since).
		return
	}
	h.n -= size
	if h.n == 0 && a.L != nil && h.linked() {
		a.L.unlink(h)
	}
	a.squeeze()
	if k := class(size); k >= 0 && a.pool.idle+size <= a.idleCap() {
		a.pool.free[k] = append(a.pool.free[k], b[:0])
		a.pool.idle += size
		return
	}
	a.B.Release(size)
}

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unsafe"
)

// Shared is a plain classic pcap file that several goroutines read at
// once, each with its own Cursor: one walks the records (NextFrame), the
// workers of a multi-core read take the frames the walk found for them
// (Frame), so no goroutine copies packets for the others.
//
// The file is walked in blocks of blockSize through a ring of blocks the
// cursors share, and every cursor reads records where they lie: nothing is
// copied in user space (but a record across two blocks, which a cursor
// puts together in a buffer of its own). A block is reused when every
// cursor is past it, so a cursor can run at most len(ring) blocks ahead of
// the slowest. Where the page cache maps the file in large pieces
// (mapFile), the blocks are views of the file mapped read-only, so not
// even the kernel copies a byte, and the pages of blocks every cursor is
// past are given back (MADV_DONTNEED) every dropChunk bytes, so the
// process's resident size does not grow with the file; else the first
// cursor to reach a block reads it into the slot's buffer (pread), and the
// kernel copies each byte once.
//
// The mapping is the file as it was when opened: a file that grows is
// read up to that size, and a page of a file that shrank under the reader
// faults (Fault turns that into the read error).
type Shared struct {
	f    *os.File
	name string
	size int64
	big  bool // byte order of the record headers
	nano bool
	link uint32
	// progress, if set, hears the packets and bytes read so far (the
	// input's progress lines).
	progress func(packets uint64, off int64)

	// m is the mapped file (nil: blocks are read with pread); its pages
	// before dropped were given back.
	m       []byte
	dropped int64

	mu    sync.Mutex
	cond  sync.Cond
	ring  []block
	live  uint64 // bit i: cursor i is open
	ncurs int
}

// Blocks of 256 KiB, so that the cursor that reads a block still finds it
// in its cache (the other cursors in the shared one); 16 of them let a
// cursor run up to 4 MiB (about 9,000 packets of a mixed capture) ahead of
// the slowest one. A bigger ring bought nothing measurable and its heap
// brought the collector's next cycle forward (64 blocks: one more cycle
// on the mix).
const (
	blockSize  = 256 << 10
	ringBlocks = 16
	// soloBlocks is the ring of a file read by one cursor, which never
	// waits for another: one block being read and the one before it. The
	// ring's buffers are first-touched memory, and 16 of them cost a small
	// capture's run 1,500 page faults (30 ms on the development VM) more
	// than the ordinary reader.
	soloBlocks = 2
	// prefetchAhead is how far ahead of the record being read a cursor
	// has the block's bytes fetched into the cache.
	prefetchAhead = 8 << 10
	// dropChunk is how many bytes of released blocks a mapped file's
	// pages are given back in, one madvise each (the mix: 120 calls).
	dropChunk = 4 << 20
)

// block is a ring slot: file bytes [num*blockSize, +n) once ready.
type block struct {
	num     int64 // -1: none yet
	ready   bool
	n       int
	err     error  // a read error other than the end of the file
	pending uint64 // cursors that have not moved past it
	buf     []byte
}

// pcapHeaderLen is the classic pcap file header.
const pcapHeaderLen = 24

// openShared opens path for shared reading if it is a plain (uncompressed)
// classic pcap file, else returns nil.
func openShared(path string, mode MapMode) *Shared {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	st, err := f.Stat()
	var h [pcapHeaderLen]byte
	if err != nil || !st.Mode().IsRegular() || st.Size() < pcapHeaderLen {
		f.Close()
		return nil
	}
	if _, err := f.ReadAt(h[:], 0); err != nil {
		f.Close()
		return nil
	}
	s := &Shared{f: f, name: path, size: st.Size()}
	s.cond.L = &s.mu
	switch binary.LittleEndian.Uint32(h[:4]) {
	case 0xa1b2c3d4:
	case 0xa1b23c4d:
		s.nano = true
	case 0xd4c3b2a1:
		s.big = true
	case 0x4d3cb2a1:
		s.big, s.nano = true, true
	default:
		f.Close()
		return nil // pcapng, compressed, or not a capture
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if s.big {
		order = binary.BigEndian
	}
	if order.Uint16(h[4:]) != 2 {
		f.Close()
		return nil // the ordinary reader reports the version
	}
	s.link = order.Uint32(h[20:]) & 0x0fffffff
	if mode != MapNever {
		s.m = mapFile(f, st.Size(), mode == MapAlways)
	}
	return s
}

// BlockSize and RingBlocks are the ring's block size and, with several
// cursors, its blocks: a cursor can be at most that far ahead of the
// slowest.
const (
	BlockSize  = blockSize
	RingBlocks = ringBlocks
)

// Mapped tells whether the file is mapped (else read with pread).
func (s *Shared) Mapped() bool { return s.m != nil }

// close unmaps and closes the file; no cursor may read after it.
func (s *Shared) close() error {
	if s.m != nil {
		unmapFile(s.m)
		s.m = nil
	}
	return s.f.Close()
}

// Fault returns the read error a panic stands for when r is a memory
// fault inside the mapping: a page of a file that shrank while it was read
// (another program truncated it) is a SIGBUS, which a goroutine that set
// debug.SetPanicOnFault gets as a panic. For anything else it returns nil.
func (s *Shared) Fault(r any) error {
	f, ok := r.(interface{ Addr() uintptr })
	if !ok || s.m == nil {
		return nil
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(s.m)))
	a := f.Addr()
	if a < base || a-base >= uintptr(len(s.m)) {
		return nil
	}
	return fmt.Errorf("%w: %s shrank while it was read (byte %d of its %d is gone)", ErrTruncated, s.name, a-base, len(s.m))
}

// LinkType is the file's link type.
func (s *Shared) LinkType() uint32 { return s.link }

// Cursor returns a cursor at the first record. Make every cursor before
// reading with any (a block is reused once the cursors that exist are past
// it), at most 64, and close each (the others wait for it to move past a
// block).
func (s *Shared) Cursor() *Cursor {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &Cursor{s: s, id: s.ncurs, blk: -1}
	s.ncurs++
	// The ring is sized by the cursors made so far (all are made before
	// any reads).
	n := ringBlocks
	if s.ncurs == 1 {
		n = soloBlocks
	}
	if len(s.ring) < n {
		s.ring = make([]block, n)
		for i := range s.ring {
			s.ring[i].num = -1
		}
	}
	s.live |= 1 << c.id
	return c
}

// Progress tells the input how far a cursor got (call it now and then from
// one goroutine; it logs the input's progress lines).
func (s *Shared) Progress(c *Cursor) {
	if s.progress != nil {
		s.progress(c.n, c.blk*blockSize+int64(c.pos))
	}
}

// Cursor reads the records of a Shared file in order.
type Cursor struct {
	s   *Shared
	id  int
	blk int64  // the block held (-1: none)
	b   *block // its slot
	pos int    // offset of the next record in the block
	n   uint64
	// rec holds a record that spans two blocks.
	rec []byte
	// pf: the block's bytes before pf were prefetched.
	pf int
	// sec, frac: the last record's capture time.
	sec, frac uint32
	// The workers' cursors are made one after the other and each writes
	// its own at every record: the padding keeps two cursors off one cache
	// line (88 bytes of fields would put them 88 bytes apart, and the line
	// between them went back and forth between the cores).
	_ [40]byte
}

// Packets is how many records the cursor has returned.
func (c *Cursor) Packets() uint64 { return c.n }

// End is the file offset just past the record NextFrame returned last
// (its frame of n bytes began at End()-n).
func (c *Cursor) End() int64 { return max(c.blk, 0)*blockSize + int64(c.pos) }

// Frame returns the file's n bytes at off, which another cursor's walk
// found to be a frame, moving this cursor there: a worker that does not
// walk the file itself takes the frames the walk listed for it with it.
// Offsets must not go backwards. The frame is valid until the next call.
func (c *Cursor) Frame(off int64, n int) []byte {
	c.SkipTo(off)
	p, _, _ := c.take(n) // the walk read it whole: it is there
	return p
}

// Prefetch has the first bytes of the frame at off fetched into the cache
// if they lie in the cursor's block: a worker asks it a few frames ahead
// of the one it takes, since another core read the block.
func (c *Cursor) Prefetch(off int64) {
	if b := c.b; b != nil && off/blockSize == c.blk {
		if p := int(off - c.blk*blockSize); p+128 <= b.n {
			prefetch(unsafe.Pointer(&b.buf[p])) // three lines
		}
	}
}

// SkipTo moves the cursor forward to file offset off, taking and
// releasing the blocks on the way: the others can reuse a block once
// every cursor is past it.
func (c *Cursor) SkipTo(off int64) {
	blk := off / blockSize
	for c.b == nil || c.blk < blk {
		c.acquire(c.blk + 1)
	}
	c.pos = int(off - blk*blockSize)
}

// acquire moves the cursor to block num (releasing the one it held): it
// waits until the slot is free of older blocks, and reads the block into it
// if no other cursor did.
func (c *Cursor) acquire(num int64) {
	s := c.s
	if c.b != nil {
		s.mu.Lock()
		c.b.pending &^= 1 << c.id
		s.cond.Broadcast()
		s.mu.Unlock()
	}
	b := &s.ring[num%int64(len(s.ring))]
	pf := 0
	s.mu.Lock()
	for {
		if b.num == num && b.ready {
			break
		}
		if b.num < num && b.pending&s.live == 0 && s.m != nil {
			// Free, and the file is mapped: the block is a view of the
			// mapping. Every cursor is past the block the slot held, and
			// so past all before it: their pages can go.
			var drop []byte
			if end := min((b.num+1)*blockSize, int64(len(s.m))); b.num >= 0 && end-s.dropped >= dropChunk {
				drop, s.dropped = s.m[s.dropped:end], end
			}
			off := min(num*blockSize, int64(len(s.m)))
			end := min(off+blockSize, int64(len(s.m)))
			b.num, b.ready, b.n, b.err = num, true, int(end-off), nil
			b.buf = s.m[off:end:end]
			b.pending = s.live
			s.cond.Broadcast()
			s.mu.Unlock()
			if drop != nil {
				dropPages(drop)
			}
			c.blk, c.b, c.pos, c.pf = num, b, 0, 0
			return
		}
		if b.num < num && b.pending&s.live == 0 {
			// Free: this cursor reads the block (others wait for it).
			b.num, b.ready, b.n, b.err = num, false, 0, nil
			b.pending = s.live
			s.mu.Unlock()
			if b.buf == nil {
				b.buf = make([]byte, blockSize)
			}
			n, err := s.f.ReadAt(b.buf, num*blockSize)
			if errors.Is(err, io.EOF) {
				err = nil
			}
			s.mu.Lock()
			b.n, b.err, b.ready = n, err, true
			s.cond.Broadcast()
			// The read left the block in this core's cache: nothing
			// to prefetch.
			pf = n
			break
		}
		s.cond.Wait()
	}
	s.mu.Unlock()
	c.blk, c.b, c.pos, c.pf = num, b, 0, pf
}

// Close releases the cursor's hold on the ring.
func (c *Cursor) Close() {
	s := c.s
	s.mu.Lock()
	s.live &^= 1 << c.id
	for i := range s.ring {
		s.ring[i].pending &^= 1 << c.id
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	c.b, c.blk = nil, max(c.blk, 0)
}

// take returns the next n bytes of the file, from the block when they lie
// in it, else put together in c.rec; ok is false at the end of the file or
// a read error (err).
func (c *Cursor) take(n int) (p []byte, ok bool, err error) {
	b := c.b
	if c.pos+n <= b.n {
		p = b.buf[c.pos : c.pos+n : c.pos+n]
		c.pos += n
		return p, true, nil
	}
	if b.err != nil {
		return nil, false, b.err
	}
	if b.n < blockSize {
		return nil, false, nil // the end of the file
	}
	// Across blocks: put together in c.rec.
	c.rec = append(c.rec[:0], b.buf[c.pos:b.n]...)
	for len(c.rec) < n {
		c.acquire(c.blk + 1)
		b = c.b
		if b.err != nil {
			return nil, false, b.err
		}
		k := min(n-len(c.rec), b.n)
		c.rec = append(c.rec, b.buf[:k]...)
		c.pos = k
		if len(c.rec) < n && b.n < blockSize {
			return nil, false, nil
		}
	}
	return c.rec, true, nil
}

// Next returns the next frame and its capture time, io.EOF at the end, or
// ErrTruncated for a record cut short or claiming more than any frame
// holds (with the messages of the ordinary reader, naming the file). The
// frame is valid until the next call.
func (c *Cursor) Next() ([]byte, time.Time, error) {
	d, err := c.NextFrame()
	if err != nil {
		return nil, time.Time{}, err
	}
	return d, c.Time(), nil
}

// UnixNano is Time as Unix nanoseconds, without making a time.Time: the
// workers of a shared file ask it of every record (the flow table's
// expiry points follow capture time).
func (c *Cursor) UnixNano() int64 {
	ns := int64(c.frac)
	if !c.s.nano {
		ns *= 1000
	}
	return int64(c.sec)*1e9 + ns
}

// Stamp is Time as Unix seconds and nanoseconds.
func (c *Cursor) Stamp() (sec, nsec uint32) {
	if c.s.nano {
		return c.sec, c.frac
	}
	return c.sec, c.frac * 1000
}

// Time is the capture time of the frame NextFrame returned last.
func (c *Cursor) Time() time.Time {
	ns := int64(c.frac)
	if !c.s.nano {
		ns *= 1000
	}
	return time.Unix(int64(c.sec), ns).UTC()
}

// NextFrame is Next without the capture time (Time gives it): a worker
// passes over most frames of a shared file and needs the time of its own
// only.
func (c *Cursor) NextFrame() ([]byte, error) {
	// The common record: header and frame within the block.
	if b := c.b; b != nil && c.pos+16 <= b.n {
		h := b.buf[c.pos : c.pos+16]
		var caplen uint32
		if c.s.big {
			c.sec, c.frac, caplen = binary.BigEndian.Uint32(h), binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
		} else {
			c.sec, c.frac, caplen = binary.LittleEndian.Uint32(h), binary.LittleEndian.Uint32(h[4:]), binary.LittleEndian.Uint32(h[8:])
		}
		if end := c.pos + 16 + int(caplen); caplen <= maxCaplen && end <= b.n {
			if c.pos+prefetchAhead > c.pf {
				c.prefetchMore()
			}
			start := c.pos + 16
			c.pos = end
			c.n++
			return b.buf[start:end:end], nil
		}
	}
	d, err := c.next()
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", c.s.name, err)
	}
	return d, err
}

// prefetchMore has the next 4 KiB of the block fetched into the cache. The
// records are a chain (each header gives the next one's place), which the
// processor cannot fetch ahead by itself: a cursor that did not read the
// block itself missed its caches on every header.
func (c *Cursor) prefetchMore() {
	if c.pf >= c.b.n {
		return
	}
	end := min(c.pf+4096, c.b.n)
	for p := c.pf; p < end; p += 3 * 64 {
		prefetch(unsafe.Pointer(&c.b.buf[p])) // three lines
	}
	c.pf = end
}

// next is NextFrame for records across blocks, at the end and on errors.
func (c *Cursor) next() ([]byte, error) {
	if c.b == nil {
		if c.blk >= 0 {
			return nil, io.EOF // closed
		}
		c.acquire(0)
		c.pos = pcapHeaderLen
	}
	if c.pos == c.b.n && c.b.n == blockSize {
		c.acquire(c.blk + 1) // a record ended exactly at the block's end
	}
	if c.pos == c.b.n && c.b.err == nil {
		return nil, io.EOF
	}
	if c.pos+prefetchAhead > c.pf {
		c.prefetchMore()
	}
	h, ok, err := c.take(16)
	if !ok {
		if err == nil {
			err = fmt.Errorf("%w: record header of packet %d cut short", ErrTruncated, c.n+1)
		}
		return nil, err
	}
	var caplen uint32
	if c.s.big {
		c.sec, c.frac, caplen = binary.BigEndian.Uint32(h), binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
	} else {
		c.sec, c.frac, caplen = binary.LittleEndian.Uint32(h), binary.LittleEndian.Uint32(h[4:]), binary.LittleEndian.Uint32(h[8:])
	}
	if caplen > maxCaplen {
		return nil, fmt.Errorf("%w: packet %d claims %d captured bytes", ErrTruncated, c.n+1, caplen)
	}
	data, ok, err := c.take(int(caplen))
	if !ok {
		if err == nil {
			err = fmt.Errorf("%w: packet %d cut short (%d bytes announced)", ErrTruncated, c.n+1, caplen)
		}
		return nil, err
	}
	c.n++
	return data, nil
}

// Shared opens the input for shared reading if it is one plain classic
// pcap file, not filtered and not read from yet; else it returns nil and
// the input is read with ReadPacket as before. Close closes it too.
func (m *multi) Shared() *Shared {
	if len(m.parts) != 1 || m.fc != nil || m.n != 0 || m.cur != 0 || m.shared != nil {
		return nil
	}
	p := &m.parts[0]
	if _, ok := p.src.(*pcapReader); !ok || p.name == "-" {
		return nil
	}
	s := openShared(p.name, m.o.Map)
	if s == nil {
		return nil
	}
	if m.o.Log != nil {
		m.o.Log.Debug("the workers read the file themselves", "file", p.name, "mapped", s.Mapped())
	}
	s.progress = func(n uint64, off int64) {
		m.n = n
		m.reported.Store(n)
		if m.o.Log != nil {
			m.progressAt(off)
		}
	}
	m.shared = s
	return s
}

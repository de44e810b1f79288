// Package spool is a bounded on-disk FIFO of opaque entries: the place an
// output's events wait while its sink is down or slow.
//
// Layout: a directory of segment files named by a 20-digit sequence number
// (00000001099511627776.seg …) plus a small "cursor" file holding the
// sequence number and byte offset of the next unread entry. Each entry is
// framed as
//
//	uint32 length | uint32 CRC-32C of the payload | payload
//
// (little endian). New entries go to the last segment, which is rolled once
// it grows past the segment size; fully read segments are deleted. Prepend
// writes a new segment in front of the first one (a lower sequence number),
// so records that were held in memory and turn out to be older than the
// spool can go back to where they belong in the order.
//
// Reading is two-step: Peek returns up to n entries without consuming them
// (a repeated Peek returns the same ones), Commit consumes what the last Peek
// returned. Together with the cursor this gives at-least-once delivery across
// restarts: a crash between delivery and Commit re-delivers that batch.
//
// The spool is written through the page cache without fsync: what was
// appended survives a crash of the process, not necessarily a power loss.
// A torn frame at the end of a segment (a crash in the middle of a write) is
// cut off when the spool is opened; a frame whose checksum fails is skipped.
// Both are counted (Discarded) and reported through Options.OnDiscard, so
// nothing disappears without a word.
//
// The byte limit holds for everything on disk: Append and Prepend refuse
// what would not fit (ErrFull). One process at a time owns a spool
// directory: Open takes an exclusive lock (flock) on its "lock" file and
// fails with ErrLocked while another process holds it.
//
// A Spool is safe for concurrent use.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ErrFull is returned by Append and Prepend when not every entry fits under
// the size limit.
var ErrFull = errors.New("spool full")

// ErrLocked is returned by Open when another process uses the directory.
var ErrLocked = errors.New("spool directory is in use by another process")

const (
	frameHeader = 8
	// firstSeq leaves room below for Prepend.
	firstSeq   = 1 << 40
	segSuffix  = ".seg"
	cursorName = "cursor"
	lockName   = "lock"
	// peekBytes bounds how much one Peek reads.
	peekBytes = 4 << 20
	// MaxEntry is the largest entry accepted.
	MaxEntry = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type segment struct {
	seq  uint64
	size int64
}

// Spool is a bounded on-disk FIFO. See the package documentation.
type Spool struct {
	mu     sync.Mutex
	dir    string
	max    int64
	segMax int64

	segs  []segment // first = head (being read), last = tail (being written)
	off   int64     // read offset in segs[0]
	count int64     // unread entries (including peeked, uncommitted ones)
	size  int64     // bytes on disk in segment files

	tail *os.File // open for append: segs[len-1]
	cur  *os.File // cursor file
	lock *os.File // held (flock) while open

	onDiscard func(entries int64, reason string)
	discarded int64 // entries given up because they were damaged

	peeked  [][]byte
	peekEnd int64

	closed bool
}

// Options tune a spool.
type Options struct {
	// MaxBytes bounds the bytes on disk (segment files). Required (> 0).
	MaxBytes int64
	// SegmentBytes is the size at which the tail segment is rolled; default
	// MaxBytes/16, at least 64 KiB, at most 64 MiB.
	SegmentBytes int64
	// OnDiscard, if set, is told about damaged data the spool gives up: a
	// torn or corrupt frame found at Open, a frame failing its checksum at
	// Peek. entries is how many entries were lost (at least 1 for a torn
	// region whose frames cannot be counted).
	OnDiscard func(entries int64, reason string)
}

// Open opens (creating it if needed) the spool in dir, validating what an
// earlier run left there.
func Open(dir string, o Options) (*Spool, error) {
	if o.MaxBytes <= 0 {
		return nil, errors.New("spool: max bytes must be positive")
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = min(max(o.MaxBytes/16, 64<<10), 64<<20)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{dir: dir, max: o.MaxBytes, segMax: o.SegmentBytes, onDiscard: o.OnDiscard}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	s.lock = lock
	cur, err := os.OpenFile(filepath.Join(dir, cursorName), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	s.cur = cur
	if err := s.load(); err != nil {
		cur.Close()
		lock.Close()
		if s.tail != nil {
			s.tail.Close()
		}
		return nil, err
	}
	return s, nil
}

func (s *Spool) segPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, segSuffix))
}

// load scans the directory: reads the cursor, drops consumed segments,
// validates frames (cutting a torn tail) and counts unread entries.
func (s *Spool) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })

	var cseq uint64
	var coff int64
	buf := make([]byte, 41)
	if n, _ := s.cur.ReadAt(buf, 0); n == 41 {
		f := strings.Fields(string(buf))
		if len(f) == 2 {
			cseq, _ = strconv.ParseUint(f[0], 10, 64)
			coff, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	for _, seq := range seqs {
		path := s.segPath(seq)
		if seq < cseq {
			// Fully consumed before the last run ended.
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			continue
		}
		from := int64(0)
		if seq == cseq {
			from = coff
		}
		n, valid, size, err := scan(path, from)
		if err != nil {
			return err
		}
		if valid < size {
			// Torn or damaged frame: keep what is whole, and say so.
			if err := os.Truncate(path, valid); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			s.discard(1, fmt.Sprintf("segment %s: %d damaged bytes at offset %d cut off (a torn or corrupt frame)",
				filepath.Base(path), size-valid, valid))
		}
		if len(s.segs) == 0 {
			if from > valid {
				from = valid
			}
			s.off = from
		}
		s.segs = append(s.segs, segment{seq: seq, size: valid})
		s.size += valid
		s.count += n
	}
	if s.count == 0 {
		return s.reset()
	}
	if err := s.writeCursor(); err != nil {
		return err
	}
	return s.openTail()
}

// scan counts the whole frames of a segment from offset from and returns the
// offset just past the last one. Frames are not checksummed here (Peek does
// that); a length running past the end of the file ends the valid part.
func scan(path string, from int64) (n, valid, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("spool: %w", err)
	}
	size = st.Size()
	valid = from
	if from > size {
		return 0, size, size, nil
	}
	hdr := make([]byte, frameHeader)
	var payload []byte
	for {
		if _, err := f.ReadAt(hdr, valid); err != nil {
			return n, valid, size, nil
		}
		l := int64(binary.LittleEndian.Uint32(hdr))
		if l > MaxEntry || valid+frameHeader+l > size {
			return n, valid, size, nil
		}
		if int64(cap(payload)) < l {
			payload = make([]byte, l)
		}
		payload = payload[:l]
		if _, err := f.ReadAt(payload, valid+frameHeader); err != nil {
			return n, valid, size, nil
		}
		// A frame whose checksum fails but whose length fits stays: it is
		// counted here and skipped (and reported) when Peek reaches it, so
		// the whole entries behind it are not lost with it.
		valid += frameHeader + l
		n++
	}
}

// discard counts and reports entries given up (s.mu held or not yet shared).
func (s *Spool) discard(n int64, reason string) {
	s.discarded += n
	if s.onDiscard != nil {
		s.onDiscard(n, reason)
	}
}

// Discarded is the number of damaged entries given up since Open.
func (s *Spool) Discarded() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discarded
}

func (s *Spool) openTail() error {
	if s.tail != nil {
		s.tail.Close()
		s.tail = nil
	}
	if len(s.segs) == 0 {
		return nil
	}
	f, err := os.OpenFile(s.segPath(s.segs[len(s.segs)-1].seq), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.tail = f
	return nil
}

func (s *Spool) writeCursor() error {
	var seq uint64
	if len(s.segs) > 0 {
		seq = s.segs[0].seq
	}
	line := fmt.Sprintf("%020d %020d\n", seq, s.off)
	if _, err := s.cur.WriteAt([]byte(line), 0); err != nil {
		return fmt.Errorf("spool: cursor: %w", err)
	}
	return nil
}

// reset deletes every segment of an empty spool.
func (s *Spool) reset() error {
	if s.tail != nil {
		s.tail.Close()
		s.tail = nil
	}
	for _, sg := range s.segs {
		if err := os.Remove(s.segPath(sg.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spool: %w", err)
		}
	}
	s.segs, s.off, s.size, s.count, s.peeked = nil, 0, 0, 0, nil
	return s.writeCursor()
}

func frame(buf, e []byte) []byte {
	var hdr [frameHeader]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(e)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(e, castagnoli))
	buf = append(buf, hdr[:]...)
	return append(buf, e...)
}

// Free reports how many bytes (framing included) can still be appended.
func (s *Spool) Free() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.max-s.size, 0)
}

// Overhead is the framing cost of one entry, for callers estimating Free.
const Overhead = frameHeader

// Append adds entries at the end. It appends the longest prefix that fits
// under the size limit and returns how many it appended; err is ErrFull when
// that was not all of them, or the I/O error (then nothing was appended).
func (s *Spool) Append(entries [][]byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errors.New("spool: closed")
	}
	n := 0
	var need int64
	for _, e := range entries {
		if len(e) > MaxEntry {
			break
		}
		sz := int64(frameHeader + len(e))
		if s.size+need+sz > s.max {
			break
		}
		need += sz
		n++
	}
	if n == 0 {
		if len(entries) == 0 {
			return 0, nil
		}
		return 0, ErrFull
	}
	if len(s.segs) == 0 || s.segs[len(s.segs)-1].size >= s.segMax {
		seq := uint64(firstSeq)
		if len(s.segs) > 0 {
			seq = s.segs[len(s.segs)-1].seq + 1
		}
		s.segs = append(s.segs, segment{seq: seq})
		if err := s.openTail(); err != nil {
			s.segs = s.segs[:len(s.segs)-1]
			s.openTail()
			return 0, err
		}
		if len(s.segs) == 1 {
			s.off = 0
			if err := s.writeCursor(); err != nil {
				return 0, err
			}
		}
	}
	buf := make([]byte, 0, need)
	for _, e := range entries[:n] {
		buf = frame(buf, e)
	}
	t := &s.segs[len(s.segs)-1]
	if _, err := s.tail.Write(buf); err != nil {
		// Leave no partial frame behind (a full disk).
		s.tail.Truncate(t.size)
		return 0, fmt.Errorf("spool: %w", err)
	}
	t.size += need
	s.size += need
	s.count += int64(n)
	if n < len(entries) {
		return n, ErrFull
	}
	return n, nil
}

// Prepend puts entries in front of everything in the spool, in their order:
// all of them, or none (ErrFull when they do not fit under the size limit,
// or an I/O error). It fails while a read of the first segment is in
// progress.
func (s *Spool) Prepend(entries [][]byte) error {
	if len(entries) == 0 {
		return nil
	}
	var need int64
	for _, e := range entries {
		need += int64(frameHeader + len(e))
	}
	s.mu.Lock()
	if s.size+need > s.max {
		s.mu.Unlock()
		return ErrFull
	}
	if len(s.segs) == 0 {
		s.mu.Unlock()
		n, err := s.Append(entries)
		if err != nil && n > 0 {
			// Cannot happen (the size was checked under the lock and only
			// this router's goroutines write), but never leave half.
			return fmt.Errorf("spool: prepend appended %d of %d: %w", n, len(entries), err)
		}
		return err
	}
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("spool: closed")
	}
	if s.off != 0 || s.peeked != nil {
		return errors.New("spool: prepend while reading")
	}
	seq := s.segs[0].seq - 1
	var buf []byte
	for _, e := range entries {
		buf = frame(buf, e)
	}
	path := s.segPath(seq)
	if err := os.WriteFile(path, buf, 0o640); err != nil {
		os.Remove(path)
		return fmt.Errorf("spool: %w", err)
	}
	s.segs = append([]segment{{seq: seq, size: int64(len(buf))}}, s.segs...)
	s.size += int64(len(buf))
	s.count += int64(len(entries))
	return s.writeCursor()
}

// Peek returns up to n unread entries without consuming them. Until Commit,
// further calls return the same entries. The slices stay valid after Commit.
func (s *Spool) Peek(n int) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peeked != nil {
		return s.peeked, nil
	}
	if s.count == 0 || n <= 0 {
		return nil, nil
	}
	for len(s.segs) > 1 && s.off >= s.segs[0].size {
		if err := s.dropHead(); err != nil {
			return nil, err
		}
	}
	h := s.segs[0]
	f, err := os.Open(s.segPath(h.seq))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	want := min(h.size-s.off, peekBytes)
	buf := make([]byte, want)
	if _, err := f.ReadAt(buf, s.off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var out [][]byte
	pos := int64(0)
	for len(out) < n && s.off+pos < h.size {
		if pos+frameHeader > int64(len(buf)) {
			if len(out) > 0 {
				break
			}
			return nil, errors.New("spool: short frame header")
		}
		l := int64(binary.LittleEndian.Uint32(buf[pos:]))
		sum := binary.LittleEndian.Uint32(buf[pos+4:])
		if pos+frameHeader+l > int64(len(buf)) {
			if len(out) > 0 {
				break
			}
			// One entry larger than peekBytes: read it alone.
			big := make([]byte, l)
			if _, err := f.ReadAt(big, s.off+pos+frameHeader); err != nil {
				return nil, fmt.Errorf("spool: %w", err)
			}
			if crc32.Checksum(big, castagnoli) != sum {
				s.off += frameHeader + l
				s.count--
				s.discard(1, fmt.Sprintf("segment %020d%s: entry at offset %d fails its checksum", h.seq, segSuffix, s.off-frameHeader-l))
				return nil, s.writeCursor()
			}
			out = append(out, big)
			pos += frameHeader + l
			break
		}
		e := buf[pos+frameHeader : pos+frameHeader+l : pos+frameHeader+l]
		if crc32.Checksum(e, castagnoli) != sum {
			if len(out) > 0 {
				break // handed out first; the next Peek skips it
			}
			// A damaged entry at the head: skip it, counted, and go on.
			pos += frameHeader + l
			s.off += pos
			buf, pos = buf[pos:], 0
			s.count--
			s.discard(1, fmt.Sprintf("segment %020d%s: entry at offset %d fails its checksum", h.seq, segSuffix, s.off-frameHeader-l))
			if err := s.writeCursor(); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, e)
		pos += frameHeader + l
	}
	if len(out) == 0 && s.count == 0 {
		return nil, s.reset() // only damaged entries were left
	}
	s.peeked, s.peekEnd = out, s.off+pos
	return out, nil
}

// Commit consumes the entries the last Peek returned.
func (s *Spool) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peeked == nil {
		return nil
	}
	s.count -= int64(len(s.peeked))
	s.off = s.peekEnd
	s.peeked = nil
	if s.count == 0 {
		return s.reset()
	}
	for len(s.segs) > 1 && s.off >= s.segs[0].size {
		if err := s.dropHead(); err != nil {
			return err
		}
	}
	return s.writeCursor()
}

// dropHead deletes the fully read first segment.
func (s *Spool) dropHead() error {
	h := s.segs[0]
	s.segs = s.segs[1:]
	s.off = 0
	s.size -= h.size
	if err := s.writeCursor(); err != nil {
		return err
	}
	if err := os.Remove(s.segPath(h.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// Discard deletes every unread entry (a spool that cannot be read back) and
// reports how many there were.
func (s *Spool) Discard() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.count
	return n, s.reset()
}

// Len is the number of unread entries.
func (s *Spool) Len() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Size is the number of bytes the spool occupies on disk.
func (s *Spool) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Close releases the files; unread entries stay for the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.tail != nil {
		errs = append(errs, s.tail.Close())
		s.tail = nil
	}
	errs = append(errs, s.cur.Close())
	errs = append(errs, s.lock.Close()) // releases the flock
	return errors.Join(errs...)
}

// Stat counts the unread entries and the segment bytes of a spool directory
// without opening it (no lock, nothing changed): for reporting spools that
// no configured output owns.
func Stat(dir string) (entries, bytes int64, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("spool: %w", err)
	}
	var cseq uint64
	var coff int64
	if b, err := os.ReadFile(filepath.Join(dir, cursorName)); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			cseq, _ = strconv.ParseUint(f[0], 10, 64)
			coff, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || seq < cseq {
			continue
		}
		from := int64(0)
		if seq == cseq {
			from = coff
		}
		n, _, size, err := scan(filepath.Join(dir, name), from)
		if err != nil {
			return entries, bytes, err
		}
		entries += n
		bytes += size
	}
	return entries, bytes, nil
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/decode"
)

// Reading a plain pcap file with several workers (capture.Shared).
//
// No goroutine copies packets for the workers: one walker goroutine walks
// the file's records with its cursor, finds each frame's worker from its
// headers (the same symmetric hash of the address pair as the chunked
// path: dispatchKey; peekOwner, or a decode for tunnels and the like) and
// the expiry points, and lists for each worker where its frames lie in the
// file. Each worker takes its frames where they lie, with a cursor of its
// own over the same ring of blocks, decodes and inspects them. A frame is
// never copied in user space, the file is walked once (when every worker
// walked the whole file itself, the second walk was about a ninth of a
// two-worker run's CPU), and a frame crosses cores once, from the core
// that read its block.
//
// The walk is cut in segments of at most segPackets packets and segBlocks
// blocks of the file; a segment carries the workers' lists to them and
// each worker's evidence (tagged with packet numbers, as in the chunked
// path) to the merge, which hands it to the verdict in packet order and
// expires the verdict where one worker would. Every worker runs its
// table's expiry at the same packet numbers, so the events are the same,
// in the same order, whatever the worker count.

const (
	// segPackets is the most packets of a segment: one handoff per worker
	// and segment, so large (the evidence of a segment is small).
	segPackets = 8192
	// segBlocks is the most blocks of the file a segment's walk moves
	// into: a worker takes a segment's frames once its walk is done, and
	// meanwhile holds the blocks from the segment's start, so the walk of
	// one segment must fit the ring with room for the next (a run of
	// frames of the largest size would otherwise fill the ring and stall
	// the walk for good).
	segBlocks = capture.RingBlocks / 3
	// segDepth is the segments in flight: how far one worker can run ahead
	// of the other (one host pair's burst) before it waits for the merge.
	segDepth = 16
)

// expPoint is a packet number where the tables and the verdict expire,
// and that packet's time.
type expPoint struct {
	idx uint64
	ts  time.Time
}

// segment is a run of packets [first, first+cnt) as the walk lists it for
// the workers and they report it to the merge.
type segment struct {
	// first is its first packet's number (the walk sets it).
	first uint64
	// exp is the expiry points in it.
	exp []expPoint
	// recs is, per worker, where its frames lie, in file order; endOff is
	// the file offset the walk of the segment ended at.
	recs   [][]fileRec
	endOff int64
	// Per worker: its evidence in packet order, the packets read in the
	// segment, and whether the input ended in it (with the read error, if
	// any, that ended it). The walk sets the last three for every worker.
	ev  [][]idxEvidence
	cnt []uint64
	end []bool
	err []error
	// walked is done when the walk of the segment is, wg when every
	// worker is done with it too.
	walked sync.WaitGroup
	wg     sync.WaitGroup
}

// prefetchRecs is how many frames ahead of the one it takes a worker has
// the next one's first bytes fetched.
const prefetchRecs = 2

// fileRec is a frame of a worker: where it lies in the file, its capture
// time and its number in the segment.
type fileRec struct {
	off       int64
	sec, nsec uint32
	n         uint32
	rel       uint32
}

func newSegment(n, every int) *segment {
	return &segment{exp: make([]expPoint, 0, segPackets/every+2), recs: make([][]fileRec, n),
		ev: make([][]idxEvidence, n), cnt: make([]uint64, n), end: make([]bool, n), err: make([]error, n)}
}

// runShared reads a plain pcap file with n >= 2 workers; it returns like
// RunParallel.
func (e *Engine) runShared(ctx context.Context, sf *capture.Shared, n int) error {
	link := decode.LinkType(sf.LinkType())
	n = min(n, 64)
	every := e.cfg.ExpireEvery
	ws := make([]*Worker, n)
	sinks := make([]*evidenceSink, n)
	maxFlows := e.cfg.MaxFlows
	if maxFlows > 0 {
		maxFlows = max(1, maxFlows/n) // the bound is global: each worker holds its share
	}
	for i := range ws {
		ws[i] = e.newWorker(link, maxFlows)
		sinks[i] = &evidenceSink{w: ws[i]}
		ws[i].sink = sinks[i]
	}
	work := make([]chan *segment, n)
	for i := range work {
		work[i] = make(chan *segment, segDepth)
	}
	merge := make(chan *segment, segDepth)
	walk := make(chan *segment, segDepth)
	issue := func(s *segment) {
		s.exp = s.exp[:0]
		clear(s.cnt)
		clear(s.end)
		clear(s.err)
		s.walked.Add(1)
		s.wg.Add(n)
		walk <- s
		for i := range work {
			work[i] <- s
		}
		merge <- s
	}
	for i := 0; i < segDepth; i++ {
		issue(newSegment(n, every))
	}

	var stop atomic.Bool                     // the merge took its last segment: the rest are skipped
	wk := newWalker(e, link, sf.Cursor(), n) // every cursor before any reads
	fs := make([]*follower, n)
	for i := range fs {
		fs[i] = &follower{w: ws[i], s: sinks[i], cur: sf.Cursor(), id: i}
	}
	var wwg sync.WaitGroup
	wwg.Add(1)
	go func() {
		defer wwg.Done()
		// The workers may wait for this cursor to move past a block.
		defer wk.cur.Close()
		for seg := range walk {
			if !stop.Load() && ctx.Err() == nil {
				// Past the end of the input the cursor ends again at
				// once: a segment issued beyond it is walked at once.
				if err := readMapped(sf, func() error { wk.walk(seg); return nil }); err != nil {
					wk.finish(seg, true, err)
				}
				sf.Progress(wk.cur)
			} else {
				// Empty, so nothing of the segment's last use is merged.
				wk.begin(seg)
				wk.finish(seg, false, nil)
			}
			seg.walked.Done()
		}
	}()
	for i := range fs {
		wwg.Add(1)
		go func(f *follower) {
			defer wwg.Done()
			// The walk may wait for this cursor to move past a block.
			defer f.cur.Close()
			for seg := range work[f.id] {
				seg.walked.Wait()
				if !stop.Load() && ctx.Err() == nil {
					if err := readMapped(sf, func() error { f.follow(seg); return nil }); err != nil {
						// A page of the file went while this worker read it.
						seg.ev[f.id] = f.s.evs
						seg.end[f.id], seg.err[f.id] = true, err
					}
				} else {
					// Hold no block the walk might wait for.
					f.cur.Close()
				}
				seg.wg.Done()
			}
		}(fs[i])
	}

	mirror := map[*detector.TLSInfo]*detector.TLSInfo{}
	var (
		ends    []*idxEvidence
		last    uint64 // the last packet merged
		readErr error
	)
	pos := make([]int, n)
	for seg := range merge {
		seg.wg.Wait()
		end, cnt := false, seg.cnt[0]
		for i := range seg.end {
			end = end || seg.end[i]
			if readErr == nil {
				readErr = seg.err[i]
			}
			if seg.cnt[i] != cnt && readErr == nil {
				readErr = fmt.Errorf("%w: the file changed while it was read (its workers read %d and %d packets)",
					capture.ErrTruncated, seg.first-1+cnt, seg.first-1+seg.cnt[i])
			}
		}
		e.mergeSegment(seg, pos, mirror, &ends)
		last = seg.first + cnt - 1
		if end || ctx.Err() != nil {
			break
		}
		issue(seg)
	}
	stop.Store(true)
	close(walk)
	for i := range work {
		close(work[i])
	}
	wwg.Wait()
	e.flushWorkers(ws, sinks, last+1, ends, mirror)
	return readErr
}

// runCursor reads a plain pcap file with one worker through the shared
// reader's one cursor: blocks of the file mapped (or read by pread) and
// frames used where they lie, where the ordinary reader copies every
// record twice (the kernel into bufio's buffer, bufio into the record
// buffer) and pays a call chain per record. It returns like RunParallel.
func (e *Engine) runCursor(ctx context.Context, sf *capture.Shared) error {
	w := e.NewWorker(decode.LinkType(sf.LinkType()))
	src := &cursorSource{sf: sf, cur: sf.Cursor()}
	defer src.cur.Close()
	err := readMapped(sf, func() error { return w.Run(ctx, src, nil) })
	sf.Progress(src.cur)
	w.Finish()
	return err
}

// cursorSource is one cursor of a shared file as a Source; it tells the
// input its progress every segPackets packets.
type cursorSource struct {
	sf  *capture.Shared
	cur *capture.Cursor
	n   int
}

func (s *cursorSource) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	d, ts, err := s.cur.Next()
	if err != nil {
		return nil, gopacket.CaptureInfo{}, err
	}
	if s.n++; s.n&(segPackets-1) == 0 {
		s.sf.Progress(s.cur)
	}
	return d, gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(d), Length: len(d)}, nil
}

// walker walks a shared file for its workers.
type walker struct {
	cur  *capture.Cursor
	link decode.LinkType
	n    uint32
	idx  uint64 // packets walked
	// clock: the time-driven expiry points, as one worker finds them.
	clock expiryClock
	// scan decodes the frames whose headers do not name their worker
	// (peekOwner) to find it; its counts are dropped (the owner counts).
	scan *decode.Decoder
	pkt  decode.Packet
}

func newWalker(e *Engine, link decode.LinkType, cur *capture.Cursor, n int) *walker {
	return &walker{cur: cur, link: link, n: uint32(n), scan: decode.NewDecoder(link), clock: newExpiryClock(&e.cfg)}
}

// walk walks the segment's records: its expiry points, and each worker's
// frames.
func (k *walker) walk(seg *segment) {
	k.begin(seg)
	k.scan.Counts = [decode.NumLayers]uint64{} // never collected
	k.scan.Skipped.Reset()
	limit := k.cur.End()/capture.BlockSize + segBlocks
	end, err := false, error(nil)
	for k.idx+1 < seg.first+segPackets && k.cur.End()/capture.BlockSize < limit {
		data, rerr := k.cur.NextFrame()
		if rerr != nil {
			end = true
			if !errors.Is(rerr, io.EOF) {
				err = rerr
			}
			break
		}
		k.idx++
		if k.clock.point(k.cur.UnixNano()) {
			seg.exp = append(seg.exp, expPoint{idx: k.idx, ts: k.cur.Time()})
		}
		owner, ok := peekOwner(k.link, data, k.n)
		if !ok {
			owner = k.scanOwner(data)
		}
		sec, nsec := k.cur.Stamp()
		seg.recs[owner] = append(seg.recs[owner], fileRec{off: k.cur.End() - int64(len(data)), sec: sec, nsec: nsec,
			n: uint32(len(data)), rel: uint32(k.idx - seg.first)})
	}
	k.finish(seg, end, err)
}

// begin starts the segment at the next packet, with no frames listed.
func (k *walker) begin(seg *segment) {
	seg.first = k.idx + 1
	for i := range seg.recs {
		seg.recs[i] = seg.recs[i][:0]
	}
}

// finish notes where the walk of the segment ended, with how many packets,
// and whether the input ended there (with the read error, if any).
func (k *walker) finish(seg *segment, end bool, err error) {
	seg.endOff = k.cur.End()
	for i := range seg.cnt {
		seg.cnt[i], seg.end[i], seg.err[i] = k.idx+1-seg.first, end, err
	}
}

// readMapped runs read, which reads sf's mapping, with memory faults made
// panics (debug.SetPanicOnFault): a fault inside the mapping, a page of a
// file another program truncated under the reader, becomes the read error
// (sf.Fault), after everything before it was processed. Any other fault
// stays the crash it was.
func readMapped(sf *capture.Shared, read func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if err = sf.Fault(r); err == nil {
				panic(r)
			}
		}
	}()
	return read()
}

// scanOwner decodes a frame whose headers do not name its worker
// (peekOwner) with the scan decoder, whose counts are dropped, and returns
// the worker of its flow (0 for a frame that is not IP or does not decode,
// or that panics the decoder: the owner decodes it again and counts it).
func (k *walker) scanOwner(data []byte) (owner uint32) {
	defer func() {
		if recover() != nil {
			owner = 0
		}
	}()
	if k.scan.Decode(data, &k.pkt) != nil {
		return 0
	}
	return dispatchKey(&k.pkt) % k.n
}

// follower is a worker taking its frames of a shared file as the walk
// listed them.
type follower struct {
	w   *Worker
	s   *evidenceSink
	cur *capture.Cursor
	id  int
}

// follow runs the worker over its frames of a walked segment, with the
// table expiry at the segment's expiry points, as one worker would.
func (f *follower) follow(seg *segment) {
	w, s := f.w, f.s
	s.evs = seg.ev[f.id][:0]
	recs := seg.recs[f.id]
	j := 0
	for _, x := range seg.exp {
		for ; j < len(recs) && seg.first+uint64(recs[j].rel) < x.idx; j++ {
			f.process(seg, recs, j)
		}
		// Every worker expires its table here, as one worker would.
		s.idx = x.idx
		w.publish()
		w.expireTable(x.ts)
	}
	for ; j < len(recs); j++ {
		f.process(seg, recs, j)
	}
	// Past the segment's blocks, this worker's frames in them or not.
	f.cur.SkipTo(seg.endOff)
	seg.ev[f.id] = s.evs
}

// process takes and inspects frame j of recs.
func (f *follower) process(seg *segment, recs []fileRec, j int) {
	if j+prefetchRecs < len(recs) {
		// Another core walked it: its lines are not in this one's cache.
		f.cur.Prefetch(recs[j+prefetchRecs].off)
	}
	r := &recs[j]
	i := seg.first + uint64(r.rel)
	f.s.idx = i
	f.w.process(f.cur.Frame(r.off, int(r.n)), time.Unix(int64(r.sec), int64(r.nsec)).UTC(), i)
}

// mergeSegment hands a segment's evidence to the verdict in packet order,
// expiring the verdict where one worker would: before each expiry point,
// everything reported at earlier packets (each packet's records come from
// the one worker that owns it), then the flows every worker's expiry ended
// there, in the order one table would have ended them.
func (e *Engine) mergeSegment(seg *segment, pos []int, mirror map[*detector.TLSInfo]*detector.TLSInfo, ends *[]*idxEvidence) {
	clear(pos)
	for _, x := range seg.exp {
		e.mergeBefore(seg, pos, x.idx, mirror)
		*ends = (*ends)[:0]
		for w := range seg.ev {
			for pos[w] < len(seg.ev[w]) && seg.ev[w][pos[w]].idx == x.idx && seg.ev[w][pos[w]].batch {
				*ends = append(*ends, &seg.ev[w][pos[w]])
				pos[w]++
			}
		}
		e.endFlows(*ends, mirror)
		e.verdict.Expire(x.ts)
	}
	e.mergeBefore(seg, pos, ^uint64(0), mirror)
	for i := range seg.ev {
		clear(seg.ev[i]) // drop references to evidence strings and TLS info
		seg.ev[i] = seg.ev[i][:0]
	}
}

// mergeBefore applies the workers' records numbered below limit, lowest
// number first.
func (e *Engine) mergeBefore(seg *segment, pos []int, limit uint64, mirror map[*detector.TLSInfo]*detector.TLSInfo) {
	for {
		best := -1
		for w := range seg.ev {
			if pos[w] < len(seg.ev[w]) && seg.ev[w][pos[w]].idx < limit &&
				(best < 0 || seg.ev[w][pos[w]].idx < seg.ev[best][pos[best]].idx) {
				best = w
			}
		}
		if best < 0 {
			return
		}
		e.apply(&seg.ev[best][pos[best]], mirror)
		pos[best]++
	}
}

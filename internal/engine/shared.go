package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// No goroutine reads the file for the others: every worker reads the whole
// file with its own cursor, decodes each frame far enough to know its
// flow's worker (the same symmetric hash of the address pair as the
// chunked path: dispatchKey) and inspects only its own. The frames are
// never copied in user space and never cross cores, and there is no
// per-chunk handoff of packets: what a reader goroutine did serially
// (read(), two copies, the decode, the dispatch) is spread over the
// workers, at the price of reading and decoding the other workers' frames
// too (the kernel's copy and a few nanoseconds of decoding per frame, most
// frames taking the decoder's IPv4 fast path).
//
// The workers walk the file in segments of segPackets packets; a segment
// carries each worker's evidence (tagged with packet numbers, as in the
// chunked path) to the merge, which hands it to the verdict in packet
// order and expires the verdict where one worker would. Every worker runs
// its table's expiry at the same packet numbers, so the events are the
// same, in the same order, whatever the worker count.

const (
	// segPackets is the packets of a segment: one handoff per worker and
	// segment, so large (the evidence of a segment is small).
	segPackets = 8192
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

// segment is a run of packets [first, first+segPackets) as the workers
// report it to the merge.
type segment struct {
	first uint64
	// exp is the expiry points in it (worker 0 notes them).
	exp []expPoint
	// Per worker: its evidence in packet order, the packets it read in
	// the segment, and whether its input ended in it (with the read
	// error, if any, that ended it). All workers read the same file, so
	// they agree unless the file changed under them.
	ev  [][]idxEvidence
	cnt []uint64
	end []bool
	err []error
	wg  sync.WaitGroup
}

func newSegment(n, every int) *segment {
	return &segment{exp: make([]expPoint, 0, segPackets/every+2), ev: make([][]idxEvidence, n),
		cnt: make([]uint64, n), end: make([]bool, n), err: make([]error, n)}
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
	next := uint64(1)
	issue := func(s *segment) {
		s.first = next
		s.exp = s.exp[:0]
		clear(s.cnt)
		clear(s.end)
		clear(s.err)
		next += segPackets
		s.wg.Add(n)
		for i := range work {
			work[i] <- s
		}
		merge <- s
	}
	for i := 0; i < segDepth; i++ {
		issue(newSegment(n, every))
	}

	var stop atomic.Bool // the merge took its last segment: workers skip the rest
	curs := make([]*capture.Cursor, n)
	for i := range curs {
		curs[i] = sf.Cursor() // all before any reads
	}
	var wwg sync.WaitGroup
	for i := range ws {
		wwg.Add(1)
		go func(id int) {
			defer wwg.Done()
			r := newFileReader(ws[id], sinks[id], curs[id], id, n)
			// The others may wait for this cursor to move past a block.
			defer r.cur.Close()
			for seg := range work[id] {
				if !stop.Load() && ctx.Err() == nil {
					// Past the end of the input the cursor ends again at
					// once: a segment issued beyond it is read at once.
					r.readSegment(seg)
					if id == 0 {
						sf.Progress(r.cur)
					}
				}
				seg.wg.Done()
			}
		}(i)
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
	for i := range work {
		close(work[i])
	}
	wwg.Wait()
	e.flushWorkers(ws, sinks, last+1, ends, mirror)
	return readErr
}

// runCursor reads a plain pcap file with one worker through the shared
// reader's one cursor: blocks of the file read by pread and frames used
// where they lie, where the ordinary reader copies every record twice
// (the kernel into bufio's buffer, bufio into the record buffer) and pays
// a call chain per record. It returns like RunParallel.
func (e *Engine) runCursor(ctx context.Context, sf *capture.Shared) error {
	w := e.NewWorker(decode.LinkType(sf.LinkType()))
	src := &cursorSource{sf: sf, cur: sf.Cursor()}
	defer src.cur.Close()
	err := w.Run(ctx, src, nil)
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

// fileReader is a worker reading a shared file.
type fileReader struct {
	w   *Worker
	s   *evidenceSink
	cur *capture.Cursor
	id  int
	n   uint32
	idx uint64 // packets read
	// clock: the time-driven expiry points, as one worker finds them.
	clock expiryClock
	// scan decodes the frames whose headers do not name their worker
	// (peekOwner) to find it; its counts are dropped (the owner counts).
	scan *decode.Decoder
}

func newFileReader(w *Worker, s *evidenceSink, cur *capture.Cursor, id, n int) *fileReader {
	return &fileReader{w: w, s: s, cur: cur, id: id, n: uint32(n), scan: decode.NewDecoder(w.link),
		clock: newExpiryClock(&w.e.cfg)}
}

// readSegment reads the segment's packets with the worker's cursor, runs
// the expiry points and inspects the worker's own packets.
func (r *fileReader) readSegment(seg *segment) {
	w, s, id := r.w, r.s, r.id
	s.evs = seg.ev[id][:0]
	end := seg.first + segPackets
	for r.idx+1 < end {
		data, err := r.cur.NextFrame()
		if err != nil {
			seg.end[id] = true
			if !errors.Is(err, io.EOF) {
				seg.err[id] = err
			}
			break
		}
		r.idx++
		i := r.idx
		if r.clock.point(r.cur.UnixNano()) {
			ts := r.cur.Time()
			// Every worker expires its table here, as one worker would.
			s.idx = i
			r.scan.Counts = [decode.NumLayers]uint64{} // never collected
			r.scan.Skipped.Reset()
			w.publish()
			w.expireTable(ts)
			if id == 0 {
				seg.exp = append(seg.exp, expPoint{idx: i, ts: ts})
			}
		}
		// The worker's own frames only are decoded (with the decoder that
		// counts them); another worker's frame is passed over once its
		// headers name its worker.
		owner, ok := peekOwner(w.link, data, r.n)
		if !ok {
			owner = w.scanOwner(r.scan, data, r.n)
		}
		if owner != uint32(id) {
			continue
		}
		s.idx = i
		w.c.packets++
		w.c.bytes += uint64(len(data))
		// Decoded and inspected under one recover, as by one worker (a
		// recover of its own around the decode cost a tenth of the
		// record walk).
		w.inspect(data, r.cur.Time(), i)
	}
	seg.cnt[id] = r.idx + 1 - seg.first
	seg.ev[id] = s.evs
}

// scanOwner decodes a frame whose headers do not name its worker
// (peekOwner) with the worker's scan decoder, whose counts are dropped,
// and returns the worker of its flow (0 for a frame that is not IP or does
// not decode, or that panics the decoder: the owner decodes it again and
// counts it).
func (w *Worker) scanOwner(dec *decode.Decoder, data []byte, n uint32) (owner uint32) {
	defer func() {
		if recover() != nil {
			owner = 0
		}
	}()
	if dec.Decode(data, &w.pkt) != nil {
		return 0
	}
	return dispatchKey(&w.pkt) % n
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

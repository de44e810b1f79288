package engine

import (
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/flow"
)

// Offline capture on several cores. One goroutine reads the file into
// chunks and tags every packet with a worker chosen by a symmetric hash of
// its addresses and ports, so both directions of a flow meet in one worker
// and each worker sees its flows' packets in file order. Workers do
// everything up to evidence; the evidence of a chunk is then handed to the
// shared verdict stage in packet order, with the verdict's expiry at the
// same packet numbers as one worker would run it. The verdict therefore
// sees exactly the sequence of calls it sees with one worker, and the same
// file gives the same alerts in the same order whatever the worker count.

const (
	chunkPackets = 2048
	chunkBytes   = 4 << 20
	chunkDepth   = 8 // chunks in flight: the reader runs ahead of the workers
)

// pktRef locates one packet of a chunk.
type pktRef struct {
	ts     time.Time
	idx    uint64
	off, n uint32
	w      uint32
}

// idxEvidence is evidence tagged with the number of the packet that raised
// it, or (op != opEvidence) a change of the TLS info evidence points at.
type idxEvidence struct {
	idx uint64
	op  uint8
	// opFlowEnd: the flow's timeout class and latest packet number (the
	// order one table would end flows in), and whether an expiry or flush
	// ended it rather than an eviction.
	cls   uint8
	batch bool
	last  uint64
	key   *detector.TLSInfo // the worker's TLS info (map key in the merge)
	snap  *detector.TLSInfo // its content at idx (opTLSNew, opTLSUpdate)
	ev    detector.Evidence
}

const (
	opEvidence = iota
	opTLSNew
	opTLSUpdate
	opTLSDrop
	opFlowEnd
)

// TLS info is shared: a detector reports a pointer and keeps filling it in
// (server hello, certificate) after the evidence was reported, and an
// alert shows the content at the moment it is raised. With one worker that
// moment is the trigger packet; the ordered merge runs later, so workers
// send the content of every change in packet order and the merge keeps a
// mirror object per TLS info that it updates in the same order.
type tlsTrack struct {
	ptr  *detector.TLSInfo
	snap detector.TLSInfo
}

func tlsChanged(a, b *detector.TLSInfo) bool {
	return a.SNI != b.SNI || a.Version != b.Version || a.JA3 != b.JA3 || a.JA3Hash != b.JA3Hash ||
		a.JA3S != b.JA3S || a.JA3SHash != b.JA3SHash || a.JA4 != b.JA4 || len(a.ALPN) != len(b.ALPN) ||
		a.Subject != b.Subject || a.Issuer != b.Issuer || a.Serial != b.Serial ||
		a.Fingerprint != b.Fingerprint || a.NotBefore != b.NotBefore || a.NotAfter != b.NotAfter
}

func tlsCopy(p *detector.TLSInfo) *detector.TLSInfo {
	c := *p
	c.ALPN = append([]string(nil), p.ALPN...)
	return &c
}

// trackTLS records a change of the flow's TLS info since the last packet.
func (w *Worker) trackTLS(st *flowState) {
	s, ok := w.sink.(*evidenceSink)
	if !ok || !tlsChanged(&st.tls.snap, st.tls.ptr) {
		return
	}
	st.tls.snap = *st.tls.ptr
	s.evs = append(s.evs, idxEvidence{idx: s.idx, op: opTLSUpdate, key: st.tls.ptr, snap: tlsCopy(st.tls.ptr)})
}

func (w *Worker) dropTLS(st *flowState) {
	if s, ok := w.sink.(*evidenceSink); ok {
		s.evs = append(s.evs, idxEvidence{idx: s.idx, op: opTLSDrop, key: st.tls.ptr, batch: w.expiring, cls: 255})
	}
	st.tls = nil
}

type chunk struct {
	buf  []byte
	pkts []pktRef
	ev   [][]idxEvidence // per worker, in packet order
	wg   sync.WaitGroup
}

// evidenceSink collects a worker's evidence for the ordered merge.
type evidenceSink struct {
	w   *Worker
	idx uint64
	evs []idxEvidence
}

func (s *evidenceSink) Report(ev detector.Evidence) {
	if ev.TLS != nil {
		if st := s.w.cur; st != nil && st.tls != nil && st.tls.ptr == ev.TLS {
			s.w.trackTLS(st)
		} else {
			if st != nil {
				if st.tls != nil {
					s.w.dropTLS(st)
				}
				st.tls = &tlsTrack{ptr: ev.TLS, snap: *ev.TLS}
			}
			s.evs = append(s.evs, idxEvidence{idx: s.idx, op: opTLSNew, key: ev.TLS, snap: tlsCopy(ev.TLS)})
		}
	}
	s.evs = append(s.evs, idxEvidence{idx: s.idx, ev: ev})
}

// RunParallel reads src (frames of the given link type) with n workers and
// returns like Worker.Run: nil at EOF or cancellation, else the read error
// after everything before it was processed. n < 2 runs one inline worker.
func (e *Engine) RunParallel(ctx context.Context, src Source, link decode.LinkType, n int) error {
	if n < 2 {
		w := e.NewWorker(link)
		err := w.Run(ctx, src, nil)
		w.Finish()
		return err
	}
	ws := make([]*Worker, n)
	sinks := make([]*evidenceSink, n)
	maxFlows := e.cfg.MaxFlows
	if maxFlows > 0 {
		// The bound is global: each worker holds its share.
		maxFlows = max(1, maxFlows/n)
	}
	for i := range ws {
		ws[i] = e.newWorker(link, maxFlows)
		sinks[i] = &evidenceSink{w: ws[i]}
		ws[i].sink = sinks[i]
	}
	free := make(chan *chunk, chunkDepth)
	for i := 0; i < chunkDepth; i++ {
		free <- &chunk{ev: make([][]idxEvidence, n)}
	}
	work := make([]chan *chunk, n)
	merge := make(chan *chunk, chunkDepth)
	var wwg sync.WaitGroup
	for i := range ws {
		work[i] = make(chan *chunk, chunkDepth)
		wwg.Add(1)
		go func(id int) {
			defer wwg.Done()
			w, s := ws[id], sinks[id]
			for c := range work[id] {
				s.evs = c.ev[id][:0]
				w.runChunk(c, uint32(id), s)
				c.ev[id] = s.evs
				c.wg.Done()
			}
		}(i)
	}
	mergeDone := make(chan struct{})
	mirror := map[*detector.TLSInfo]*detector.TLSInfo{}
	var ends []*idxEvidence
	go func() {
		defer close(mergeDone)
		pos := make([]int, n)
		for c := range merge {
			c.wg.Wait()
			e.mergeChunk(c, pos, mirror, &ends)
			free <- c
		}
	}()

	// Flows are hashed on the decoded flow key's addresses, the key the
	// tables use: tunnels and encapsulations put one flow's directions under
	// different outer headers, so only the inner key keeps them together.
	dec := decode.NewDecoder(link)
	var p decode.Packet
	var idx uint64
	var runErr error
	for done := false; !done; {
		c := <-free
		c.buf, c.pkts = c.buf[:0], c.pkts[:0]
		for len(c.pkts) < chunkPackets && len(c.buf) < chunkBytes {
			data, ci, err := src.ReadPacket()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					runErr = err
				}
				done = true
				break
			}
			idx++
			off := len(c.buf)
			c.buf = append(c.buf, data...)
			c.pkts = append(c.pkts, pktRef{ts: ci.Timestamp, idx: idx, off: uint32(off), n: uint32(len(data)),
				w: dispatch(dec, &p, data) % uint32(n)})
		}
		if !done && ctx.Err() != nil {
			done = true
		}
		c.wg.Add(n)
		for i := range work {
			work[i] <- c
		}
		merge <- c
	}
	for i := range work {
		close(work[i])
	}
	close(merge)
	wwg.Wait()
	<-mergeDone
	// End of input: every worker flushes its table; the flows end in the
	// order one table would end them, then the verdict flushes.
	ends = ends[:0]
	for i, w := range ws {
		s := sinks[i]
		s.idx, s.evs = idx+1, nil
		w.expiring = true
		w.table.Flush(w.flowEnded)
		w.expiring = false
		w.publish()
		for j := range s.evs {
			ends = append(ends, &s.evs[j])
		}
	}
	e.endFlows(ends, mirror)
	e.verdict.Flush()
	return runErr
}

// runChunk processes the chunk's packets that hash to worker id. Every
// worker runs its flow-table expiry at the same packet numbers, as one
// worker would.
func (w *Worker) runChunk(c *chunk, id uint32, s *evidenceSink) {
	every := uint64(w.e.cfg.ExpireEvery)
	for i := range c.pkts {
		r := &c.pkts[i]
		s.idx = r.idx
		if r.idx%every == 0 {
			w.publish()
			w.expireTable(r.ts)
		}
		if r.w != id {
			continue
		}
		w.process(c.buf[r.off:r.off+r.n], r.ts, r.idx)
	}
}

// mergeChunk hands a chunk's evidence to the verdict in packet order,
// expiring the verdict where one worker would.
func (e *Engine) mergeChunk(c *chunk, pos []int, mirror map[*detector.TLSInfo]*detector.TLSInfo, ends *[]*idxEvidence) {
	every := uint64(e.cfg.ExpireEvery)
	clear(pos)
	for i := range c.pkts {
		r := &c.pkts[i]
		if r.idx%every == 0 {
			// Every worker expired its table here: the flows it ended, in
			// the order one table would have ended them, then the verdict.
			*ends = (*ends)[:0]
			for w := range c.ev {
				for pos[w] < len(c.ev[w]) && c.ev[w][pos[w]].idx == r.idx && c.ev[w][pos[w]].batch {
					*ends = append(*ends, &c.ev[w][pos[w]])
					pos[w]++
				}
			}
			e.endFlows(*ends, mirror)
			e.verdict.Expire(r.ts)
		}
		evs := c.ev[r.w]
		// Records at earlier numbers are TLS-info drops of flows that ended
		// at an expiry run while the worker had no packet of its own.
		for pos[r.w] < len(evs) && evs[pos[r.w]].idx <= r.idx {
			e.apply(&evs[pos[r.w]], mirror)
			pos[r.w]++
		}
	}
	for i := range c.ev {
		for j := range c.ev[i][pos[i]:] {
			e.apply(&c.ev[i][pos[i]+j], mirror) // only drops can be left
		}
		clear(c.ev[i]) // drop references to evidence strings and TLS info
		c.ev[i] = c.ev[i][:0]
	}
}

// endFlows delivers flow ends (and TLS drops) of one expiry run or final
// flush of every worker, sorted as one table walks its flows: by timeout
// class, then least recently used first.
func (e *Engine) endFlows(recs []*idxEvidence, mirror map[*detector.TLSInfo]*detector.TLSInfo) {
	slices.SortStableFunc(recs, func(a, b *idxEvidence) int {
		if a.cls != b.cls {
			return int(a.cls) - int(b.cls)
		}
		return cmp.Compare(a.last, b.last)
	})
	for _, x := range recs {
		e.apply(x, mirror)
	}
}

// apply hands one record to the verdict stage (or to the TLS mirror).
func (e *Engine) apply(x *idxEvidence, mirror map[*detector.TLSInfo]*detector.TLSInfo) {
	switch x.op {
	case opTLSNew:
		mirror[x.key] = x.snap
	case opTLSUpdate:
		if m := mirror[x.key]; m != nil {
			*m = *x.snap
		} else {
			mirror[x.key] = x.snap
		}
	case opTLSDrop:
		delete(mirror, x.key)
	case opFlowEnd:
		e.verdict.FlowEnded(x.ev.Flow, x.ev.Time, x.ev.Detail)
	default:
		if x.ev.TLS != nil {
			if m := mirror[x.ev.TLS]; m != nil {
				x.ev.TLS = m
			}
		}
		e.Report(x.ev)
	}
}

// dispatch picks a worker for a frame: a hash of the canonical address
// pair of its flow key, the same for both directions. All flows between two
// hosts go to one worker, because detectors may keep state across the flows
// of a host pair (connect attempts): one worker updates it in packet order.
// Frames that do not decode go to worker 0 (they are only counted).
func dispatch(dec *decode.Decoder, p *decode.Packet, data []byte) uint32 {
	if dec.Decode(data, p) != nil {
		return 0
	}
	k, _ := flow.KeyOf(p)
	h := uint64(14695981039346656037)
	for _, b := range [2][16]byte{k.A, k.B} {
		for _, c := range b {
			h = (h ^ uint64(c)) * 1099511628211
		}
	}
	return uint32(h ^ h>>32)
}

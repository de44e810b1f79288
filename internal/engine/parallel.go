package engine

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/google/gopacket"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/decode"
)

// Offline capture on several cores. One goroutine reads the file into
// chunks, decodes every packet and tags it with a worker chosen by a
// symmetric hash of its addresses, so both directions of a flow (and every
// flow of a host pair) meet in one worker and each worker sees its flows'
// packets in file order. Workers do
// everything up to evidence; the evidence of a chunk is then handed to the
// shared verdict stage in packet order, with the verdict's expiry at the
// same packet numbers as one worker would run it. The verdict therefore
// sees exactly the sequence of calls it sees with one worker, and the same
// file gives the same alerts in the same order whatever the worker count.

const (
	chunkPackets = 1024
	// chunkBytes is the frame bytes a chunk holds (a frame that does not
	// fit opens the next chunk; a bigger one gets a chunk of its own).
	// Buffers are allocated once at full size (grown by append they left
	// ~130 MB of garbage per run on the mix capture) and kept small: every
	// fresh page costs a fault, and the chunks in flight should stay in the
	// caches between the reader and the workers.
	chunkBytes = 512 << 10
	// chunkDepth is the chunks in flight: a worker can run that far ahead
	// of the other (one host pair's burst), and the reader ahead of both.
	// On the mix capture, a model of two workers at one packet per tick
	// idles 5.2 % over the even split with 6 chunks, 3.3 % with 16.
	chunkDepth = 16
)

// Decoding outcome of a chunk's packet (pktMeta.st).
const (
	stOK uint8 = iota
	stNotIP
	stInvalid
	stPanic // the decoder panicked: counted and dropped
)

// pktMeta is what the reader learnt of one packet of a chunk.
type pktMeta struct {
	n  uint32 // frame length
	w  uint8  // worker
	st uint8  // decoding outcome
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

// chunk is a run of consecutive packets, read and decoded by the reader:
// packet i is number first+i, decoded into pkts[i] (payloads point into
// buf), mine[w] lists the packets of worker w in file order, and exps the
// packets before which every worker expires its table (the reader finds
// them as one worker would).
type chunk struct {
	first uint64
	buf   []byte
	pkts  []decode.Packet
	meta  []pktMeta
	mine  [][]uint32
	exps  []uint32
	ev    [][]idxEvidence // per worker, in packet order
	wg    sync.WaitGroup
}

func newChunk(n int) *chunk {
	c := &chunk{buf: make([]byte, 0, chunkBytes), pkts: make([]decode.Packet, chunkPackets),
		meta: make([]pktMeta, 0, chunkPackets), mine: make([][]uint32, n), ev: make([][]idxEvidence, n),
		exps: make([]uint32, 0, 8)}
	for i := range c.mine {
		c.mine[i] = make([]uint32, 0, chunkPackets)
	}
	return c
}

// evidenceSink collects a worker's evidence for the ordered merge.
type evidenceSink struct {
	w   *Worker
	idx uint64
	evs []idxEvidence
	// The workers' sinks are made one after the other and each worker
	// writes idx at every packet: the padding (to 128 bytes, a size the
	// allocator keeps on whole cache lines) keeps two sinks off one line.
	_ [88]byte
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
//
// The reader decodes every packet once, to pick its worker by the decoded
// flow key, and the worker takes the decoded packet as it is: a packet is
// decoded once whatever the worker count. The reader's decoder therefore
// holds the per-layer counters, collected once per chunk.
func (e *Engine) RunParallel(ctx context.Context, src Source, link decode.LinkType, n int) error {
	if m, ok := src.(interface{ Shared() *capture.Shared }); ok {
		if sf := m.Shared(); sf != nil {
			if n < 2 {
				return e.runCursor(ctx, sf)
			}
			return e.runShared(ctx, sf, n)
		}
	}
	if n < 2 {
		w := e.NewWorker(link)
		err := w.Run(ctx, src, nil)
		w.Finish()
		return err
	}
	n = min(n, 64)
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
		free <- newChunk(n)
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
				w.runChunk(c, id, s)
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

	dec := decode.NewDecoder(link)
	// A source whose packets differ in link type (pcapng interfaces, a
	// directory of captures) says which one each packet has.
	lt, _ := src.(interface{ PacketLinkType() uint32 })
	clock := newExpiryClock(&e.cfg)
	var (
		idx     uint64
		runErr  error
		carry   []byte // a frame that did not fit in the last chunk
		carryCI gopacket.CaptureInfo
		carried bool
		carryLT uint32
	)
	for done := false; !done; {
		c := <-free
		c.first = idx + 1
		c.buf, c.meta, c.exps = c.buf[:0], c.meta[:0], c.exps[:0]
		for i := range c.mine {
			c.mine[i] = c.mine[i][:0]
		}
		if carried {
			idx++
			e.readOne(c, dec, &clock, carryLT, carry, carryCI, idx)
			carried = false
		}
		for len(c.meta) < chunkPackets {
			data, ci, err := src.ReadPacket()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					runErr = err
				}
				done = true
				break
			}
			l := uint32(link)
			if lt != nil {
				l = lt.PacketLinkType()
			}
			if len(c.buf)+len(data) > cap(c.buf) && len(c.meta) > 0 {
				// No room: the frame opens the next chunk. The source's
				// buffer is only borrowed until the next read: keep a copy.
				carry, carryCI, carryLT, carried = append(carry[:0], data...), ci, l, true
				break
			}
			idx++
			e.readOne(c, dec, &clock, l, data, ci, idx)
		}
		if !done && ctx.Err() != nil {
			done = true
		}
		e.dec.collect(dec)
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
	e.flushWorkers(ws, sinks, idx+1, ends, mirror)
	return runErr
}

// flushWorkers ends the input: every worker flushes its table (next is
// the number after the last packet's), the flows end in the order one
// table would end them, then the verdict flushes.
func (e *Engine) flushWorkers(ws []*Worker, sinks []*evidenceSink, next uint64, ends []*idxEvidence, mirror map[*detector.TLSInfo]*detector.TLSInfo) {
	ends = ends[:0]
	for i, w := range ws {
		s := sinks[i]
		s.idx, s.evs = next, nil
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
}

// readOne appends a frame to the chunk: its bytes, its decoding and the
// worker it goes to, and whether one worker would expire its table before
// it (clock: the input's time-driven expiry points).
func (e *Engine) readOne(c *chunk, dec *decode.Decoder, clock *expiryClock, link uint32, data []byte, ci gopacket.CaptureInfo, idx uint64) {
	if l := decode.LinkType(link); l != dec.LinkType() {
		dec.SetLink(l)
	}
	if clock.point(ci.Timestamp.UnixNano()) {
		c.exps = append(c.exps, uint32(len(c.meta)))
	}
	off := len(c.buf)
	c.buf = append(c.buf, data...)
	i := len(c.meta)
	p := &c.pkts[i]
	st := e.decodeGuarded(dec, c.buf[off:len(c.buf):len(c.buf)], p, idx)
	p.Time, p.Index = ci.Timestamp, idx
	w := uint8(0)
	if st == stOK {
		w = uint8(dispatchKey(p) % uint32(len(c.mine)))
	}
	c.meta = append(c.meta, pktMeta{n: uint32(len(data)), w: w, st: st})
	c.mine[w] = append(c.mine[w], uint32(i))
}

// decodeGuarded decodes one frame in the reader; a panic in the decoder
// drops the frame only, as in a worker (Worker.recovered).
func (e *Engine) decodeGuarded(dec *decode.Decoder, data []byte, p *decode.Packet, idx uint64) (st uint8) {
	defer func() {
		if r := recover(); r != nil {
			st = stPanic
			e.C.Panics.Add(1)
			if _, seen := e.panicLogged.LoadOrStore("decoder", true); !seen {
				e.log.Error("recovered a panic; the packet is dropped and the sensor goes on (logged once per stage)",
					"stage", "decoder", "pcap_cnt", idx, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			}
		}
	}()
	switch err := dec.Decode(data, p); err {
	case nil:
		return stOK
	case decode.ErrNotIP:
		return stNotIP
	}
	return stInvalid
}

// runChunk processes the chunk's packets of worker id. Every worker runs
// its flow-table expiry at the same packet numbers, as one worker would:
// before the packet of that number (evidence of the run carries it).
func (w *Worker) runChunk(c *chunk, id int, s *evidenceSink) {
	k := 0
	for _, i := range c.mine[id] {
		for ; k < len(c.exps) && c.exps[k] <= i; k++ {
			w.expireAt(c, c.first+uint64(c.exps[k]), s)
		}
		s.idx = c.first + uint64(i)
		w.processDecoded(&c.pkts[i], c.meta[i])
	}
	for ; k < len(c.exps); k++ {
		w.expireAt(c, c.first+uint64(c.exps[k]), s)
	}
}

func (w *Worker) expireAt(c *chunk, idx uint64, s *evidenceSink) {
	s.idx = idx
	w.publish()
	w.expireTable(c.pkts[idx-c.first].Time)
}

// decodeErrs gives the worker back the decoder's verdict on a packet.
var decodeErrs = [...]error{stOK: nil, stNotIP: decode.ErrNotIP, stInvalid: decode.ErrMalformed}

// processDecoded is process for a packet the reader decoded.
func (w *Worker) processDecoded(p *decode.Packet, m pktMeta) {
	w.c.packets++
	w.c.bytes += uint64(m.n)
	if m.st == stPanic {
		return // counted and logged by the reader
	}
	defer w.recovered(p.Index)
	// The packet is inspected where the reader decoded it (no copy of it
	// crosses to this core); Report takes these from w.pkt.
	w.pkt.Index, w.pkt.ICMPType, w.pkt.ICMPCode = p.Index, p.ICMPType, p.ICMPCode
	w.inspectDecoded(p, decodeErrs[m.st])
}

// mergeChunk hands a chunk's evidence to the verdict in packet order,
// expiring the verdict where one worker would.
func (e *Engine) mergeChunk(c *chunk, pos []int, mirror map[*detector.TLSInfo]*detector.TLSInfo, ends *[]*idxEvidence) {
	clear(pos)
	k := 0
	for i := range c.meta {
		idx, wk := c.first+uint64(i), c.meta[i].w
		if k < len(c.exps) && c.exps[k] == uint32(i) {
			k++
			// Every worker expired its table here: the flows it ended, in
			// the order one table would have ended them, then the verdict.
			*ends = (*ends)[:0]
			for w := range c.ev {
				for pos[w] < len(c.ev[w]) && c.ev[w][pos[w]].idx == idx && c.ev[w][pos[w]].batch {
					*ends = append(*ends, &c.ev[w][pos[w]])
					pos[w]++
				}
			}
			e.endFlows(*ends, mirror)
			e.verdict.Expire(c.pkts[i].Time)
		}
		evs := c.ev[wk]
		// Records at earlier numbers are TLS-info drops of flows that ended
		// at an expiry run while the worker had no packet of its own.
		for pos[wk] < len(evs) && evs[pos[wk]].idx <= idx {
			e.apply(&evs[pos[wk]], mirror)
			pos[wk]++
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

// dispatchKey picks a worker for a decoded packet: a hash of the canonical
// address pair of its flow key (the key the tables use: tunnels and
// encapsulations put one flow's directions under different outer headers,
// so only the inner key keeps them together), the same for both
// directions. All flows between two hosts go to one worker, because
// detectors may keep state across the flows of a host pair (connect
// attempts): one worker updates it in packet order.
//
// The hash adds a hash of each address, so it is the same whichever
// direction the packet goes without ordering the pair (the flow key's
// canonical A and B are the same two addresses).
func dispatchKey(p *decode.Packet) uint32 { return pairKey(p.Src, p.Dst) }

func pairKey(a, b netip.Addr) uint32 {
	x := (addrHash(a) + addrHash(b)) * 0xbf58476d1ce4e5b9
	return uint32(x >> 32) // the high half depends on every input bit
}

// addrHash folds an address into a word, multiplies and shifts: short,
// since it runs for every packet, and not additive, so pairs with equal
// sums (.1 and .4, .2 and .3) do not all meet. IPv4 addresses take As4:
// As16's two halves come back through one 16-byte copy the processor
// cannot forward from the two 8-byte stores that wrote them.
func addrHash(a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		return addrHash4(b[:])
	}
	b := a.As16()
	return addrMix(binary.LittleEndian.Uint64(b[:8]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(b[8:]), 32))
}

func addrMix(x uint64) uint64 {
	x *= 0x9e3779b97f4a7c15
	return x ^ x>>31
}

// dispatch is the reader's choice for a raw frame: frames that do not
// decode go to worker 0 (they are only counted).
func dispatch(dec *decode.Decoder, p *decode.Packet, data []byte) uint32 {
	if dec.Decode(data, p) != nil {
		return 0
	}
	return dispatchKey(p)
}

// Package flow keeps the bidirectional flow table: fixed-size canonical keys,
// client/server direction, counters, packet-time expiry and a hard bound on
// the number of flows (the oldest idle flow is evicted and counted).
//
// A Table is not safe for concurrent use: each worker owns one. Time only
// enters through arguments (packet time), never from the wall clock.
package flow

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/sewatch/sewatch/internal/decode"
)

// Key identifies a flow regardless of direction: the endpoint that sorts
// lower is always A. It is comparable and pointer-free.
type Key struct {
	A, B         [16]byte
	APort, BPort uint16
	Proto        uint8
}

// eq is k == *o a word at a time: == on Key calls memequal for its
// 37 bytes, a call and a byte loop in every lookup.
func (k *Key) eq(o *Key) bool {
	le := binary.LittleEndian
	return le.Uint64(k.A[:]) == le.Uint64(o.A[:]) && le.Uint64(k.A[8:]) == le.Uint64(o.A[8:]) &&
		le.Uint64(k.B[:]) == le.Uint64(o.B[:]) && le.Uint64(k.B[8:]) == le.Uint64(o.B[8:]) &&
		k.APort == o.APort && k.BPort == o.BPort && k.Proto == o.Proto
}

// KeyOf returns the canonical key of p and whether p's source is endpoint A.
func KeyOf(p *decode.Packet) (k Key, srcIsA bool) {
	srcIsA = k.Set(p)
	return k, srcIsA
}

// Set makes k the canonical key of p and reports whether p's source is
// endpoint A. It works on the addresses' two 64-bit words (addrWords) and
// writes the key a word at a time, in place: copying a key
// returned by value, made the CPU wait on 16-byte loads of bytes it had
// just stored in 8-byte pieces (a store it cannot forward).
func (k *Key) Set(p *decode.Packet) (srcIsA bool) {
	be := binary.BigEndian
	s0, s1 := addrWords(p.Src)
	d0, d1 := addrWords(p.Dst)
	sp, dp := p.SrcPort, p.DstPort
	if !p.HasPorts() {
		sp, dp = 0, 0
	}
	k.Proto = p.Proto
	srcIsA = s0 < d0 || s0 == d0 && (s1 < d1 || s1 == d1 && sp <= dp)
	if !srcIsA {
		s0, s1, d0, d1, sp, dp = d0, d1, s0, s1, dp, sp
	}
	be.PutUint64(k.A[:8], s0)
	be.PutUint64(k.A[8:], s1)
	be.PutUint64(k.B[:8], d0)
	be.PutUint64(k.B[8:], d1)
	k.APort, k.BPort = sp, dp
	return srcIsA
}

// addrWords is a's 16-byte form (IPv4-mapped for IPv4; zeros for the zero
// Addr) as two big-endian words. It avoids As16: its array, built with two
// 8-byte stores and copied with a 16-byte load, stalled the CPU on every
// packet. An IPv4 address goes through As4; an IPv6 one through AsSlice,
// which is inlined and leaves its bytes where it stored them, so the words
// are read back with 8-byte loads the CPU forwards (BenchmarkKeyOf/ipv6;
// TestKeySetAllocs holds that the slice stays on the stack).
func addrWords(a netip.Addr) (hi, lo uint64) {
	if a.Is4() {
		b := a.As4()
		return 0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.AsSlice()
	if len(b) != 16 {
		return 0, 0 // the zero Addr
	}
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// Hash is a 32-bit FNV-1a hash of the canonical key (part of the EVE
// flow_id). It is deterministic so the same capture always yields the same
// flow ids, which golden files and re-runs rely on.
func (k Key) Hash() uint32 {
	var b [37]byte
	copy(b[:16], k.A[:])
	copy(b[16:32], k.B[:])
	binary.BigEndian.PutUint16(b[32:], k.APort)
	binary.BigEndian.PutUint16(b[34:], k.BPort)
	b[36] = k.Proto
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// Endpoint is an address and port.
type Endpoint struct {
	Addr netip.Addr
	Port uint16
}

// EndReason says why a flow left the table.
type EndReason uint8

// End reasons.
const (
	EndTimeout EndReason = iota
	EndEvicted
	EndShutdown
)

func (r EndReason) String() string {
	switch r {
	case EndTimeout:
		return "timeout"
	case EndEvicted:
		return "forced"
	}
	return "shutdown"
}

// Entry is one flow. Fields are owned by the worker that owns the table.
// It is kept small (an idle flow costs its entry and its index slot):
// endpoints are derived from the key, times are Unix nanoseconds.
type Entry[V any] struct {
	Key           Key
	ID            int64 // EVE flow_id: < 2^51, stable for the flow
	start, last   int64
	PktsToServer  uint64
	PktsToClient  uint64
	BytesToServer uint64
	BytesToClient uint64
	SYNSeen       bool // the client's SYN was seen: direction is certain
	Closed        bool // FIN or RST seen
	// Keep marks a flow its owner wants evicted last (it gave evidence):
	// a full table evicts the least recently used flow without it first.
	Keep bool
	// clientIsA caches the orientation for fast direction lookups.
	clientIsA bool
	class     uint8

	prev, next *Entry[V]

	V V
}

// Start is the time of the flow's first packet.
func (e *Entry[V]) Start() time.Time { return time.Unix(0, e.start) }

// Last is the time of the flow's latest packet.
func (e *Entry[V]) Last() time.Time { return time.Unix(0, e.last) }

// Client is the endpoint that opened the flow (as far as can be told).
func (e *Entry[V]) Client() Endpoint { return e.endpoint(e.clientIsA) }

// Server is the endpoint the client talks to.
func (e *Entry[V]) Server() Endpoint { return e.endpoint(!e.clientIsA) }

func (e *Entry[V]) endpoint(a bool) Endpoint {
	if a {
		return Endpoint{netip.AddrFrom16(e.Key.A).Unmap(), e.Key.APort}
	}
	return Endpoint{netip.AddrFrom16(e.Key.B).Unmap(), e.Key.BPort}
}

// ToServer reports whether a packet whose source is endpoint A (srcIsA from
// KeyOf) travels client → server.
func (e *Entry[V]) ToServer(srcIsA bool) bool { return srcIsA == e.clientIsA }

// Timeouts per class of flow, in packet time.
type Timeouts struct {
	TCP, TCPClosed, UDP, Other time.Duration
}

// DefaultTimeouts mirror common IDS defaults.
func DefaultTimeouts() Timeouts {
	return Timeouts{TCP: 10 * time.Minute, TCPClosed: 30 * time.Second, UDP: 5 * time.Minute, Other: time.Minute}
}

const (
	classTCP = iota
	classTCPClosed
	classUDP
	classOther
	numClasses
)

// Stats are the table's counters.
type Stats struct {
	Created, Expired, Evicted uint64
	Active                    int
}

// Table is a bounded flow table.
type Table[V any] struct {
	ix    index[V]
	max   int
	to    [numClasses]time.Duration
	lists [numClasses]list[V]
	free  *Entry[V]
	slab  []Entry[V] // entries not yet handed out
	stats Stats
	// last caches the most recent lookup: consecutive packets mostly
	// belong to the same flow.
	last    *Entry[V]
	onEvict func(*Entry[V], EndReason)
}

type list[V any] struct{ head, tail *Entry[V] }

// NewTable makes a table holding at most max flows. onEnd (may be nil) is
// called for flows evicted to make room.
func NewTable[V any](max int, to Timeouts, onEnd func(*Entry[V], EndReason)) *Table[V] {
	if max <= 0 {
		max = 65536
	}
	t := &Table[V]{ix: newIndex[V](), max: max, onEvict: onEnd}
	t.to[classTCP], t.to[classTCPClosed], t.to[classUDP], t.to[classOther] = to.TCP, to.TCPClosed, to.UDP, to.Other
	return t
}

// Range calls fn with the value of every flow in the table.
func (t *Table[V]) Range(fn func(*V)) {
	for _, e := range t.ix.slots {
		if e != nil {
			fn(&e.V)
		}
	}
}

// Stats returns the table's counters.
func (t *Table[V]) Stats() Stats {
	s := t.stats
	s.Active = t.ix.n
	return s
}

// Lookup finds or creates the flow of p (whose canonical key is k and
// orientation srcIsA), updates its counters and direction, and marks it
// most recently used. toServer tells the packet's direction.
func (t *Table[V]) Lookup(p *decode.Packet, k *Key, srcIsA bool) (e *Entry[V], created, toServer bool) {
	e, ok := t.last, t.last != nil && t.last.Key.eq(k)
	if !ok {
		e = t.ix.find(k)
		ok = e != nil
	}
	if !ok {
		if t.ix.n >= t.max {
			t.evictOne()
		}
		e = t.alloc()
		e.Key = *k
		e.start = p.Time.UnixNano()
		e.last = e.start
		e.clientIsA = srcIsA
		// A SYN-ACK or a reply from a service port seen first means the
		// capture missed the opening packet: the receiver is the client.
		if guessReversed(p) {
			e.clientIsA = !srcIsA
		}
		if p.Proto == decode.ProtoTCP && p.TCPFlags&(decode.FlagSYN|decode.FlagACK) == decode.FlagSYN {
			e.SYNSeen = true
		}
		e.ID = flowID(p.Time, &e.Key)
		e.class = classOf(p.Proto, false)
		t.ix.insert(e)
		t.lists[e.class].pushFront(e)
		t.stats.Created++
		created = true
	} else {
		if p.Proto == decode.ProtoTCP && !e.SYNSeen && p.TCPFlags&(decode.FlagSYN|decode.FlagACK) == decode.FlagSYN {
			// A fresh SYN fixes the direction of a flow first seen mid-stream.
			e.SYNSeen = true
			if e.clientIsA != srcIsA {
				e.clientIsA = srcIsA
				e.PktsToServer, e.PktsToClient = e.PktsToClient, e.PktsToServer
				e.BytesToServer, e.BytesToClient = e.BytesToClient, e.BytesToServer
			}
		}
		e.last = p.Time.UnixNano()
		closing := p.Proto == decode.ProtoTCP && p.TCPFlags&(decode.FlagFIN|decode.FlagRST) != 0 && !e.Closed
		if closing || t.lists[e.class].head != e {
			t.lists[e.class].remove(e)
			if closing {
				e.Closed = true
				e.class = classTCPClosed
			}
			t.lists[e.class].pushFront(e)
		}
	}
	t.last = e
	toServer = srcIsA == e.clientIsA
	if toServer {
		e.PktsToServer++
		e.BytesToServer += uint64(p.WireLen)
	} else {
		e.PktsToClient++
		e.BytesToClient += uint64(p.WireLen)
	}
	return e, created, toServer
}

func guessReversed(p *decode.Packet) bool {
	switch p.Proto {
	case decode.ProtoTCP:
		if p.TCPFlags&(decode.FlagSYN|decode.FlagACK) == decode.FlagSYN|decode.FlagACK {
			return true
		}
		if p.TCPFlags&decode.FlagSYN != 0 {
			return false
		}
		return servicePort(p.SrcPort) && !servicePort(p.DstPort)
	case decode.ProtoUDP:
		return servicePort(p.SrcPort) && !servicePort(p.DstPort)
	case decode.ProtoICMP:
		return p.ICMPType == 0 // echo reply seen before its request
	case decode.ProtoICMPv6:
		return p.ICMPType == 129
	}
	return false
}

// servicePort: ports below the usual ephemeral ranges are likely the server's.
func servicePort(port uint16) bool { return port != 0 && port < 10000 }

func classOf(proto uint8, closed bool) uint8 {
	switch proto {
	case decode.ProtoTCP:
		if closed {
			return classTCPClosed
		}
		return classTCP
	case decode.ProtoUDP:
		return classUDP
	}
	return classOther
}

// flowID follows Suricata's layout: 16 bits of start seconds, 16 bits of
// start microseconds, 32 bits of hash, truncated to 51 bits so JSON doubles
// keep it exact.
func flowID(start time.Time, k *Key) int64 {
	sec := uint64(start.Unix()) & 0xffff
	usec := uint64(start.Nanosecond()/1000) & 0xffff
	id := (sec<<48 | usec<<32 | uint64(k.Hash())) & 0x7ffffffffffff
	if id == 0 {
		id = 1
	}
	return int64(id)
}

// Expire removes every flow idle for longer than its class timeout at now,
// calling emit before each removal.
func (t *Table[V]) Expire(now time.Time, emit func(*Entry[V], EndReason)) {
	n := now.UnixNano()
	for c := range t.lists {
		l := &t.lists[c]
		for e := l.tail; e != nil && n-e.last > int64(t.to[c]); e = l.tail {
			t.remove(e, emit, EndTimeout)
			t.stats.Expired++
		}
	}
}

// Flush removes every flow (shutdown), oldest first.
func (t *Table[V]) Flush(emit func(*Entry[V], EndReason)) {
	for c := range t.lists {
		l := &t.lists[c]
		for e := l.tail; e != nil; e = l.tail {
			t.remove(e, emit, EndShutdown)
		}
	}
}

// evictScan bounds how many kept flows eviction steps over at the cold end
// of each class before it settles for the least recently used one anyway.
const evictScan = 64

func (t *Table[V]) evictOne() {
	var victim, kept *Entry[V]
	for c := range t.lists {
		n := 0
		for e := t.lists[c].tail; e != nil && n < evictScan; e, n = e.prev, n+1 {
			if e.Keep {
				if kept == nil || e.last < kept.last {
					kept = e
				}
				continue
			}
			if victim == nil || e.last < victim.last {
				victim = e
			}
			break
		}
	}
	if victim == nil {
		victim = kept
	}
	if victim != nil {
		t.remove(victim, t.onEvict, EndEvicted)
		t.stats.Evicted++
	}
}

func (t *Table[V]) remove(e *Entry[V], emit func(*Entry[V], EndReason), r EndReason) {
	if emit != nil {
		emit(e, r)
	}
	t.lists[e.class].remove(e)
	t.ix.remove(e)
	if t.last == e {
		t.last = nil
	}
	// V is kept: the owner's end callback has reset what must not outlive
	// the flow, and reusing V's buffers keeps new flows from allocating.
	*e = Entry[V]{V: e.V}
	e.next = t.free
	t.free = e
}

func (t *Table[V]) alloc() *Entry[V] {
	if e := t.free; e != nil {
		t.free = e.next
		e.next = nil
		return e
	}
	// New entries come in slabs: one allocation per slab instead of one
	// per flow while the table grows. Entries are never freed to the
	// heap one by one; they return to the free list.
	if len(t.slab) == 0 {
		t.slab = make([]Entry[V], min(max(t.max/64, 16), 1024))
	}
	e := &t.slab[0]
	t.slab = t.slab[1:]
	return e
}

func (l *list[V]) pushFront(e *Entry[V]) {
	e.prev, e.next = nil, l.head
	if l.head != nil {
		l.head.prev = e
	}
	l.head = e
	if l.tail == nil {
		l.tail = e
	}
}

func (l *list[V]) remove(e *Entry[V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

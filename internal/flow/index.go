package flow

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// index finds a flow's entry by key: open addressing with linear probing
// over a power-of-two array of entry pointers, at most 3/4 full. It costs
// 12 bytes a slot (16-32 bytes a flow) where a Go map of keys to pointers
// costs some 75, and an idle flow is little more than its entry and its
// slot. The hash is seeded per table, so keys chosen to collide in one
// sensor do not collide in another.
type index[V any] struct {
	slots []*Entry[V]
	// hashes holds the low 31 bits of each slot's key hash with bit 31 set
	// (0: empty). A probe compares it before it follows the entry pointer,
	// a cache miss; removal and growth find an entry's home slot from it,
	// where they followed the pointers of every entry they moved (removal
	// was a fifth of the cost of ending a flow on the many-flow mix).
	hashes []uint32
	mask   uint64
	n      int
	// seed keys the hash: random per table (see hash).
	seed [6]uint64
}

const minSlots = 64

func newIndex[V any]() index[V] {
	return index[V]{slots: make([]*Entry[V], minSlots), hashes: make([]uint32, minSlots), mask: minSlots - 1,
		seed: [6]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64()}}
}

// mix is wyhash's folded 64x64->128 multiply, the mixing step of the Go
// runtime's own fallback hash.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash returns k's home slot and its stored hash (never 0). It reads the
// key as five words and mixes them with the table's random seed, wyhash's
// way (both factors of every multiply carry a secret word, so no key can
// zero one): an attacker who cannot learn the seed cannot choose keys that
// collide, and it costs a few nanoseconds where maphash.Comparable walked
// the struct field by field (46 ns a packet, 8 % of the pipeline on the
// many-flow mix).
func (x *index[V]) hash(k *Key) (uint64, uint32) {
	le, s := binary.LittleEndian, &x.seed
	w := uint64(k.APort) | uint64(k.BPort)<<16 | uint64(k.Proto)<<32
	h := mix(le.Uint64(k.A[:8])^s[0], le.Uint64(k.A[8:])^s[1])
	h = mix(h^le.Uint64(k.B[:8])^s[2], le.Uint64(k.B[8:])^s[3])
	h = mix(h^w^s[4], s[5])
	// The multiplies leave the low bits (the home slot) weakly mixed when
	// keys differ only in a few bits of one word (a port): a final
	// avalanche (MurmurHash3's fmix64) spreads every bit over all of them.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	v := uint32(h) | 1<<31
	return x.home(v), v
}

// home is the home slot of a stored hash: its low bits, which the stored
// hash keeps (the array never reaches 2^31 slots).
func (x *index[V]) home(v uint32) uint64 { return uint64(v) & x.mask }

func (x *index[V]) find(k *Key) *Entry[V] {
	i, v := x.hash(k)
	for ; ; i = (i + 1) & x.mask {
		switch x.hashes[i] {
		case 0:
			return nil
		case v:
			if e := x.slots[i]; e.Key.eq(k) {
				return e
			}
		}
	}
}

// insert adds e, whose key is not in the index.
func (x *index[V]) insert(e *Entry[V]) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	_, v := x.hash(&e.Key)
	x.place(e, v)
	x.n++
}

func (x *index[V]) place(e *Entry[V], v uint32) {
	i := x.home(v)
	for x.hashes[i] != 0 {
		i = (i + 1) & x.mask
	}
	x.slots[i], x.hashes[i] = e, v
}

// remove deletes e (which is in the index) and shifts back the entries
// after it that would otherwise no longer be found (no tombstones, so
// lookups never slow down with churn).
func (x *index[V]) remove(e *Entry[V]) {
	i, _ := x.hash(&e.Key)
	for x.slots[i] != e {
		i = (i + 1) & x.mask
	}
	for j := (i + 1) & x.mask; x.hashes[j] != 0; j = (j + 1) & x.mask {
		// The entry at j may move to the hole at i unless its home lies
		// cyclically in (i, j].
		h := x.home(x.hashes[j])
		if (j-h)&x.mask >= (j-i)&x.mask {
			x.slots[i], x.hashes[i] = x.slots[j], x.hashes[j]
			i = j
		}
	}
	x.slots[i], x.hashes[i] = nil, 0
	x.n--
}

func (x *index[V]) grow() {
	old, oldh := x.slots, x.hashes
	x.slots = make([]*Entry[V], 2*len(old))
	x.hashes = make([]uint32, 2*len(old))
	x.mask = uint64(len(x.slots) - 1)
	for i, e := range old {
		if e != nil {
			x.place(e, oldh[i])
		}
	}
}

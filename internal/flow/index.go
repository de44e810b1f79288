package flow

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// index finds a flow's entry by key: open addressing with linear probing
// over a power-of-two array of entry pointers, at most 3/4 full. It costs
// 9 bytes a slot (12-24 bytes a flow) where a Go map of keys to pointers
// costs some 75, and an idle flow is little more than its entry and its
// slot. The hash is seeded per table, so keys chosen to collide in one
// sensor do not collide in another.
type index[V any] struct {
	slots []*Entry[V]
	// tags holds 8 bits of each slot's key hash (0: empty), so a probe
	// reads a byte per slot and follows an entry pointer, a cache miss,
	// only when the tag matches: new flows probe past several occupied
	// slots before they find none.
	tags []uint8
	mask uint64
	n    int
	// seed keys the hash: random per table (see hash).
	seed [6]uint64
}

const minSlots = 64

func newIndex[V any]() index[V] {
	return index[V]{slots: make([]*Entry[V], minSlots), tags: make([]uint8, minSlots), mask: minSlots - 1,
		seed: [6]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64()}}
}

// mix is wyhash's folded 64x64->128 multiply, the mixing step of the Go
// runtime's own fallback hash.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash returns k's home slot and its tag (never 0). It reads the key as
// five words and mixes them with the table's random seed, wyhash's way
// (both factors of every multiply carry a secret word, so no key can zero
// one): an attacker who cannot learn the seed cannot choose keys that
// collide, and it costs a few nanoseconds where maphash.Comparable walked the
// struct field by field (46 ns a packet, 8 % of the pipeline on the
// many-flow mix).
func (x *index[V]) hash(k *Key) (uint64, uint8) {
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
	t := uint8(h >> 56)
	if t == 0 {
		t = 1
	}
	return h & x.mask, t
}

func (x *index[V]) home(k *Key) uint64 {
	i, _ := x.hash(k)
	return i
}

func (x *index[V]) find(k *Key) *Entry[V] {
	i, t := x.hash(k)
	for ; ; i = (i + 1) & x.mask {
		switch x.tags[i] {
		case 0:
			return nil
		case t:
			if e := x.slots[i]; e.Key == *k {
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
	x.place(e)
	x.n++
}

func (x *index[V]) place(e *Entry[V]) {
	i, t := x.hash(&e.Key)
	for x.tags[i] != 0 {
		i = (i + 1) & x.mask
	}
	x.slots[i], x.tags[i] = e, t
}

// remove deletes e (which is in the index) and shifts back the entries
// after it that would otherwise no longer be found (no tombstones, so
// lookups never slow down with churn).
func (x *index[V]) remove(e *Entry[V]) {
	i := x.home(&e.Key)
	for x.slots[i] != e {
		i = (i + 1) & x.mask
	}
	for j := (i + 1) & x.mask; x.tags[j] != 0; j = (j + 1) & x.mask {
		// The entry at j may move to the hole at i unless its home lies
		// cyclically in (i, j].
		h := x.home(&x.slots[j].Key)
		if (j-h)&x.mask >= (j-i)&x.mask {
			x.slots[i], x.tags[i] = x.slots[j], x.tags[j]
			i = j
		}
	}
	x.slots[i], x.tags[i] = nil, 0
	x.n--
}

func (x *index[V]) grow() {
	old := x.slots
	x.slots = make([]*Entry[V], 2*len(old))
	x.tags = make([]uint8, 2*len(old))
	x.mask = uint64(len(x.slots) - 1)
	for _, e := range old {
		if e != nil {
			x.place(e)
		}
	}
}

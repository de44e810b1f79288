package flow

import "hash/maphash"

// index finds a flow's entry by key: open addressing with linear probing
// over a power-of-two array of entry pointers, at most 3/4 full. It costs
// 8 bytes a slot (11-21 bytes a flow) where a Go map of keys to pointers
// costs some 75, and an idle flow is little more than its entry and its
// slot. The hash is seeded per table, so keys chosen to collide in one
// sensor do not collide in another.
type index[V any] struct {
	slots []*Entry[V]
	mask  uint64
	n     int
	seed  maphash.Seed
}

const minSlots = 64

func newIndex[V any]() index[V] {
	return index[V]{slots: make([]*Entry[V], minSlots), mask: minSlots - 1, seed: maphash.MakeSeed()}
}

func (x *index[V]) home(k *Key) uint64 { return maphash.Comparable(x.seed, *k) & x.mask }

func (x *index[V]) find(k Key) *Entry[V] {
	for i := x.home(&k); ; i = (i + 1) & x.mask {
		e := x.slots[i]
		if e == nil || e.Key == k {
			return e
		}
	}
}

// insert adds e, whose key is not in the index.
func (x *index[V]) insert(e *Entry[V]) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	i := x.home(&e.Key)
	for x.slots[i] != nil {
		i = (i + 1) & x.mask
	}
	x.slots[i] = e
	x.n++
}

// remove deletes e (which is in the index) and shifts back the entries
// after it that would otherwise no longer be found (no tombstones, so
// lookups never slow down with churn).
func (x *index[V]) remove(e *Entry[V]) {
	i := x.home(&e.Key)
	for x.slots[i] != e {
		i = (i + 1) & x.mask
	}
	for j := (i + 1) & x.mask; x.slots[j] != nil; j = (j + 1) & x.mask {
		// The entry at j may move to the hole at i unless its home lies
		// cyclically in (i, j].
		h := x.home(&x.slots[j].Key)
		if (j-h)&x.mask >= (j-i)&x.mask {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = nil
	x.n--
}

func (x *index[V]) grow() {
	old := x.slots
	x.slots = make([]*Entry[V], 2*len(old))
	x.mask = uint64(len(x.slots) - 1)
	for _, e := range old {
		if e == nil {
			continue
		}
		i := x.home(&e.Key)
		for x.slots[i] != nil {
			i = (i + 1) & x.mask
		}
		x.slots[i] = e
	}
}

package flow

import (
	"math/rand"
	"testing"
)

// TestIndexAgainstMap: random inserts and removals (with growth, long
// probe runs and back-shifting across the array's end) keep the index in
// agreement with a Go map.
func TestIndexAgainstMap(t *testing.T) {
	for _, keys := range []int{8, 100, 5000} {
		rng := rand.New(rand.NewSource(int64(keys)))
		x := newIndex[int]()
		ref := map[Key]*Entry[int]{}
		pool := make([]Entry[int], keys)
		for i := range pool {
			pool[i].Key = Key{APort: uint16(i), BPort: uint16(i >> 16), Proto: 6}
			pool[i].Key.A[15] = byte(i)
			pool[i].V = i
		}
		for step := 0; step < 20*keys; step++ {
			e := &pool[rng.Intn(keys)]
			if _, in := ref[e.Key]; in {
				x.remove(e)
				delete(ref, e.Key)
			} else {
				x.insert(e)
				ref[e.Key] = e
			}
			if x.n != len(ref) {
				t.Fatalf("%d keys, step %d: index holds %d, want %d", keys, step, x.n, len(ref))
			}
			if step%97 == 0 || keys <= 100 {
				for i := range pool {
					want := ref[pool[i].Key]
					if got := x.find(&pool[i].Key); got != want {
						t.Fatalf("%d keys, step %d: find(%d) = %p, want %p", keys, step, i, got, want)
					}
				}
			}
		}
		if x.n*4 > len(x.slots)*3 {
			t.Errorf("index %d/%d past 3/4 full", x.n, len(x.slots))
		}
	}
}

// BenchmarkIndexChurn: a flow ending and another starting, over a table of
// 100,000 flows (removal shifts back the entries after the hole).
func BenchmarkIndexChurn(b *testing.B) {
	x := newIndex[int]()
	pool := make([]Entry[int], 200000)
	for i := range pool {
		pool[i].Key = Key{APort: uint16(i), BPort: uint16(i >> 16), Proto: 6}
		pool[i].Key.A[15] = byte(i >> 8)
	}
	for i := 0; i < len(pool)/2; i++ {
		x.insert(&pool[i])
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.remove(&pool[i%len(pool)])
		x.insert(&pool[(i+len(pool)/2)%len(pool)])
	}
}

func BenchmarkIndexFind(b *testing.B) {
	x := newIndex[int]()
	pool := make([]Entry[int], 100000)
	for i := range pool {
		pool[i].Key = Key{APort: uint16(i), BPort: uint16(i >> 16), Proto: 6}
		x.insert(&pool[i])
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if x.find(&pool[i%len(pool)].Key) == nil {
			b.Fatal("lost")
		}
	}
}

// BenchmarkIndexMiss looks up keys that are not there (every new flow's
// first lookup) in an index 3/4 full.
func BenchmarkIndexMiss(b *testing.B) {
	x := newIndex[int]()
	pool := make([]Entry[int], 98304)
	for i := range pool {
		pool[i].Key = Key{APort: uint16(i), BPort: uint16(i >> 16), Proto: 6}
		x.insert(&pool[i])
	}
	miss := make([]Key, 4096)
	for i := range miss {
		miss[i] = Key{APort: uint16(i), BPort: uint16(i >> 16), Proto: 17}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if x.find(&miss[i%len(miss)]) != nil {
			b.Fatal("found a key never inserted")
		}
	}
}

// TestIndexHashSpreads: keys that differ in one field only (a port, either
// half of either address, the protocol byte's neighbours) land on as many
// home slots as random keys would. A hash that ignored a field, or let a
// chosen value in one word cancel the others, puts whole families of keys
// on one slot, and the sensor's lookups on them become linear scans.
func TestIndexHashSpreads(t *testing.T) {
	const n = 1 << 14
	families := map[string]func(k *Key, i uint64){
		"A port":         func(k *Key, i uint64) { k.APort = uint16(i) },
		"B port":         func(k *Key, i uint64) { k.BPort = uint16(i) },
		"A high half":    func(k *Key, i uint64) { putWord(k.A[:8], i) },
		"A low half":     func(k *Key, i uint64) { putWord(k.A[8:], i) },
		"B high half":    func(k *Key, i uint64) { putWord(k.B[:8], i) },
		"B low half":     func(k *Key, i uint64) { putWord(k.B[8:], i) },
		"A low, B fixed": func(k *Key, i uint64) { putWord(k.A[8:], i<<40); k.B = [16]byte{} },
	}
	for name, set := range families {
		x := newIndex[int]()
		for x.mask+1 < 2*n {
			x.grow()
		}
		homes := map[uint64]bool{}
		for i := uint64(0); i < n; i++ {
			k := Key{Proto: 6, APort: 443, BPort: 50000}
			k.A[0], k.B[0] = 10, 192
			set(&k, i)
			h, _ := x.hash(&k)
			homes[h] = true
		}
		// n keys over 2n slots: about 0.79 n distinct homes expected.
		if len(homes) < n*7/10 {
			t.Errorf("%s: %d keys have %d distinct home slots of %d, want at least %d", name, n, len(homes), x.mask+1, n*7/10)
		}
	}
}

func putWord(b []byte, v uint64) {
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
}

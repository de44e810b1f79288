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
					if got := x.find(pool[i].Key); got != want {
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

func BenchmarkIndexFind(b *testing.B) {
	x := newIndex[int]()
	pool := make([]Entry[int], 100000)
	for i := range pool {
		pool[i].Key = Key{APort: uint16(i), BPort: uint16(i >> 16), Proto: 6}
		x.insert(&pool[i])
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if x.find(pool[i%len(pool)].Key) == nil {
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
		if x.find(miss[i%len(miss)]) != nil {
			b.Fatal("found a key never inserted")
		}
	}
}

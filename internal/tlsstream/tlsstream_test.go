package tlsstream

import (
	"encoding/binary"
	"testing"
)

func record(typ uint8, n int) []byte {
	b := make([]byte, 5+n)
	b[0], b[1], b[2] = typ, 3, 3
	binary.BigEndian.PutUint16(b[3:], uint16(n))
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// TestFeed: record headers are found across segment boundaries, through
// losses inside record bodies, retransmissions and reordering.
func TestFeed(t *testing.T) {
	stream := cat(record(22, 100), record(20, 1), record(23, 2000), record(23, 300), record(23, 50))
	want := []int{100, 1, 2000, 300, 50}
	type seg struct{ off, end int }
	tests := []struct {
		name string
		segs []seg
		want []int
	}{
		{"one segment", []seg{{0, len(stream)}}, want},
		{"header split across segments", []seg{{0, 3}, {3, 107}, {107, 500}, {500, len(stream)}}, want},
		{"lost segment inside a body", []seg{{0, 200}, {1000, len(stream)}}, want},
		{"retransmission", []seg{{0, 600}, {0, 600}, {600, len(stream)}}, want},
		{"reordered inside a body", []seg{{0, 200}, {900, len(stream)}, {200, 900}}, want},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Dir
			d.Collect = true
			d.Start(1000, true)
			var got []int
			for _, s := range tc.segs {
				d.Feed(1000+uint32(s.off), stream[s.off:s.end], func(r Record) bool {
					got = append(got, r.Length)
					return true
				})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("records %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("records %v, want %v", got, tc.want)
				}
			}
			if len(d.HS) != 100 {
				t.Errorf("collected %d handshake bytes, want 100", len(d.HS))
			}
		})
	}
}

// TestResync: after losing a header the tracker waits for a segment that
// starts with one.
func TestResync(t *testing.T) {
	var d Dir
	d.Start(0, true)
	var got []int
	fn := func(r Record) bool { got = append(got, r.Length); return true }
	d.Feed(0, record(23, 10), fn)
	d.Feed(100, []byte("garbage that is not a record"), fn) // header position lost
	d.Feed(500, record(23, 77), fn)
	if len(got) != 2 || got[1] != 77 || d.Synced() {
		t.Errorf("records %v synced %v", got, d.Synced())
	}
}

func FuzzFeed(f *testing.F) {
	f.Add(cat(record(22, 10), record(23, 20)), uint32(5), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, seq uint32, cut uint8) {
		var d Dir
		d.Collect = true
		d.Start(seq, true)
		c := int(cut)
		if c > len(b) {
			c = len(b)
		}
		d.Feed(seq+uint32(c), b[c:], func(Record) bool { return true })
		d.Feed(seq, b[:c], func(Record) bool { return true })
		if len(d.HS) > MaxHandshake {
			t.Fatal("handshake buffer over its bound")
		}
	})
}

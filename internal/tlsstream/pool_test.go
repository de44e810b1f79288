package tlsstream

import (
	"bytes"
	"testing"

	"github.com/sewatch/sewatch/internal/membudget"
)

// handshake returns a handshake record carrying one message of type typ
// whose body is n bytes of fill.
func handshake(typ uint8, n int, fill byte) []byte {
	r := record(22, 4+n)
	r[5], r[6], r[7], r[8] = typ, byte(n>>16), byte(n>>8), byte(n)
	for i := 9; i < len(r); i++ {
		r[i] = fill
	}
	return r
}

func feed(d *Dir, seq uint32, b []byte) { d.Feed(seq, b, func(Record) bool { return true }) }

// TestPooledBuffers: a Dir's buffer goes back to the worker's pool when it
// is freed, shed or outgrown, and the next Dir of that worker takes it. A
// message kept as a Msg reads nil once its buffer went back (the buffer
// now holds the other flow's bytes) and follows the bytes when the buffer
// grows; the pool's bytes stay counted in the budget.
func TestPooledBuffers(t *testing.T) {
	tests := []struct {
		name string
		// let A's first buffer go: free it, have the budget shed it, or
		// grow out of it (its message stays A's).
		how string
	}{
		{"freed", "free"},
		{"shed for another flow", "shed"},
		{"outgrown", "grow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := membudget.New(membudget.MinBytes, nil)
			var l membudget.Holders
			acct := &membudget.Account{B: b, L: &l}
			var keptA, keptB bool
			var a, o Dir
			a.Collect, o.Collect = true, true
			a.SetBudget(acct, &keptA)
			o.SetBudget(acct, &keptB)
			a.Start(1, true)
			o.Start(1, true)
			// A's first message (300 bytes of 'a') fills a 512-byte buffer.
			msgA := handshake(2, 300, 'a')
			feed(&a, 1, msgA)
			m, body := a.Message(2)
			if body == nil || cap(a.HS) != 512 {
				t.Fatalf("message not found or buffer of %d bytes", cap(a.HS))
			}
			first := a.HS[:1]
			switch tc.how {
			case "free":
				a.Free()
			case "shed":
				// The budget is full but for A's buffer: B's buffer sheds it.
				if !b.Reserve(int(b.Limit()-b.Limit()/8-b.Used()), true) {
					t.Fatal("fill refused")
				}
			case "grow":
				feed(&a, 1+uint32(len(msgA)), handshake(11, 900, 'c'))
				if cap(a.HS) != 2048 {
					t.Fatalf("grown to %d bytes, want 2048", cap(a.HS))
				}
			}
			// B's 300 bytes of 'b' take a 512-byte buffer: A's first one.
			feed(&o, 1, handshake(1, 300, 'b'))
			if &o.HS[0] != &first[0] {
				t.Fatal("B did not get A's first buffer from the pool: the test shows nothing")
			}
			got := a.Bytes(m)
			if tc.how == "grow" {
				if !bytes.Equal(got, bytes.Repeat([]byte{'a'}, 300)) {
					t.Fatalf("A's message after growth reads %.20q..., want A's bytes", got)
				}
				if c, cb := a.Message(11); cb == nil || a.Bytes(c) == nil {
					t.Fatal("A's second message not found after growth")
				}
			} else if got != nil {
				t.Fatalf("A's message after its buffer went back reads %.20q..., want nil", got)
			}
			if tc.how == "free" {
				// A collects again into a new buffer: the old message is
				// not read from it at its old position.
				feed(&a, 1+uint32(len(msgA)), handshake(11, 400, 'c'))
				if a.HS == nil || a.Bytes(m) != nil {
					t.Fatalf("after collecting again (%d bytes) A's old message reads %.20q...", len(a.HS), a.Bytes(m))
				}
			}
			if tc.how == "shed" && !a.Shed {
				t.Error("A's buffer was not shed")
			}
			// Reserved: the fill, what A and B hold, what waits in the pool.
			a.Free()
			o.Free()
			if left := b.Used() - int64(acct.Idle()); tc.how != "shed" && left != 0 {
				t.Errorf("%d bytes reserved after both freed, beside %d idle", left, acct.Idle())
			}
			acct.Trim()
			if acct.Idle() != 0 {
				t.Error("Trim left idle buffers")
			}
		})
	}
}

// TestPoolBounded: buffers given back beyond the pool's cap are dropped
// and their bytes released, so a flood cannot park memory in the pool.
func TestPoolBounded(t *testing.T) {
	b := membudget.New(membudget.MinBytes, nil) // pool cap 64 KiB
	acct := &membudget.Account{B: b}
	dirs := make([]Dir, 40)
	for i := range dirs {
		dirs[i].Collect = true
		dirs[i].SetBudget(acct, nil)
		dirs[i].Start(1, true)
		feed(&dirs[i], 1, handshake(1, 10000, 'x')) // 16 KiB buffers
	}
	if b.Used() != 40*16<<10 {
		t.Fatalf("%d bytes reserved for 40 buffers of 16 KiB", b.Used())
	}
	for i := range dirs {
		dirs[i].Free()
	}
	if acct.Idle() != 64<<10 || b.Used() != int64(acct.Idle()) {
		t.Errorf("pool keeps %d bytes, %d reserved; want 64 KiB in both", acct.Idle(), b.Used())
	}
}

// TestPooledCollectAllocs: once the pool holds buffers of every size a
// handshake grows through, collecting one allocates nothing.
func TestPooledCollectAllocs(t *testing.T) {
	acct := &membudget.Account{B: membudget.New(0, nil)}
	flight := cat(handshake(2, 90, 's'), handshake(11, 3000, 'c'), handshake(14, 0, 0))
	var d Dir // the inspectors that own Dirs are pooled too
	run := func() {
		d = Dir{Collect: true}
		d.SetBudget(acct, nil)
		d.Start(1, true)
		for off := 0; off < len(flight); off += 1000 {
			feed(&d, 1+uint32(off), flight[off:min(off+1000, len(flight))])
		}
		d.Messages(func(uint8, Msg, []byte) bool { return true })
		d.Free()
	}
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Errorf("%v allocations per handshake", n)
	}
}

// FuzzPooledMessages: two directions share a worker's small budget and
// pool and take turns collecting segments of the input; every message seen
// is kept as a Msg with a copy of its bytes, and now and then a direction
// frees its buffer. A kept Msg must read either nothing or exactly the
// bytes it was kept with, whatever the other direction wrote into the
// pooled buffers since.
func FuzzPooledMessages(f *testing.F) {
	f.Add(cat(handshake(1, 300, 'a'), handshake(2, 900, 'b')), []byte{7, 200, 3, 90}, uint8(3))
	f.Add(handshake(11, 5000, 'c'), []byte{255, 1, 255}, uint8(1))
	f.Fuzz(func(t *testing.T, stream, cuts []byte, freeEvery uint8) {
		b := membudget.New(membudget.MinBytes, nil)
		acct := &membudget.Account{B: b, L: &membudget.Holders{}}
		var d [2]Dir
		var seq [2]uint32
		for i := range d {
			d[i].Collect = true
			d[i].SetBudget(acct, nil)
			d[i].Start(1, true)
			seq[i] = 1
		}
		type kept struct {
			m    Msg
			body []byte
		}
		var ks [2][]kept
		check := func() {
			for i := range d {
				for _, k := range ks[i] {
					if got := d[i].Bytes(k.m); got != nil && !bytes.Equal(got, k.body) {
						t.Fatalf("direction %d: kept message reads %x, was %x", i, got, k.body)
					}
				}
			}
		}
		off := 0
		for n, c := range cuts {
			i := n % 2
			end := min(off+int(c)*16, len(stream))
			seg := stream[off:end]
			off = end
			feed(&d[i], seq[i], seg)
			seq[i] += uint32(len(seg))
			d[i].Messages(func(_ uint8, m Msg, body []byte) bool {
				ks[i] = append(ks[i], kept{m, append([]byte(nil), body...)})
				return true
			})
			if freeEvery > 0 && n%int(freeEvery) == 0 {
				d[i].Free()
			}
			check()
		}
		d[0].Free()
		d[1].Free()
		check()
		if u := b.Used() - int64(acct.Idle()); u != 0 {
			t.Fatalf("%d bytes reserved after both freed", u)
		}
	})
}

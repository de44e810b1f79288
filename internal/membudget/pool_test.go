package membudget

import "testing"

func TestBufSize(t *testing.T) {
	for _, c := range []struct{ n, size, class int }{
		{0, 512, 0}, {1, 512, 0}, {512, 512, 0}, {513, 1024, 1}, {1400, 2048, 2},
		{11200, 16384, 5}, {16384, 16384, 5}, {16385, 16385, -1},
	} {
		if s := BufSize(c.n); s != c.size || class(s) != c.class {
			t.Errorf("BufSize(%d) = %d (class %d), want %d (class %d)", c.n, s, class(s), c.size, c.class)
		}
	}
	if class(768) != -1 || class(256) != -1 {
		t.Error("sizes that are not pool classes must not be pooled")
	}
}

// pbuf owns one pooled buffer, as a handshake collector does.
type pbuf struct {
	h    Holder
	b    []byte
	shed bool
}

func (p *pbuf) ShedBuffer() { p.free(); p.shed = true }

func (p *pbuf) free() {
	p.h.Return(p.b)
	p.b = nil
}

// TestPoolTakeReturn: a returned buffer stays reserved in the pool and is
// the next Take of its size; a Take the budget refuses first lets the
// pool's idle buffers go, then sheds a stale buffer and takes that buffer
// itself when it is of the size asked.
func TestPoolTakeReturn(t *testing.T) {
	b := New(64<<10, nil) // 56 KiB for flows without evidence; pool cap 64 KiB
	var l Holders
	a := &Account{B: b, L: &l}
	no := false
	take := func(p *pbuf, n int) bool {
		if p.h.acct != a {
			p.h.Bind(a, &no, p)
		}
		nb, ok := p.h.Take(n)
		if ok {
			if p.b != nil {
				p.h.Return(p.b)
			}
			p.b = nb
		}
		return ok
	}
	x, y, z := &pbuf{}, &pbuf{}, &pbuf{}
	if !take(x, 16<<10) {
		t.Fatal("refused under the budget")
	}
	first := x.b[:1]
	x.free()
	if a.Idle() != 16<<10 || b.Used() != 16<<10 || x.h.Held() != 0 {
		t.Fatalf("after Return: idle %d, used %d, held %d", a.Idle(), b.Used(), x.h.Held())
	}
	if !take(y, 16<<10) || &y.b[:1][0] != &first[0] || a.Idle() != 0 || b.Used() != 16<<10 {
		t.Fatalf("Take did not reuse the pooled buffer (idle %d, used %d)", a.Idle(), b.Used())
	}
	// 16 KiB held by y, 16 KiB idle: 32 KiB more for z does not fit
	// under 56 KiB until the idle buffer goes; y keeps its buffer.
	if !take(x, 16<<10) {
		t.Fatal("refused")
	}
	x.free()
	if !take(z, 32<<10) || y.shed || a.Idle() != 0 || b.Used() != 48<<10 {
		t.Fatalf("idle buffers not dropped before shedding: y shed %v, idle %d, used %d", y.shed, a.Idle(), b.Used())
	}
	// Full for z's growth to 32+16: y (the stalest) is shed and z takes
	// y's very buffer from the pool.
	yb := y.b[:1]
	nb, ok := z.h.Take(16 << 10)
	if !ok || !y.shed || &nb[:1][0] != &yb[0] {
		t.Fatalf("Take with y shed %v: got y's buffer %v", y.shed, ok && &nb[:1][0] == &yb[0])
	}
	z.h.Return(nb)
	z.free()
	if all, _, others := b.Shed(); all != 1 || others != 1 {
		t.Errorf("shed %d (for others %d), want 1 (1)", all, others)
	}
	a.Trim()
	if b.Used() != 0 || a.Idle() != 0 {
		t.Errorf("after Trim used %d, idle %d", b.Used(), a.Idle())
	}
}

// TestPoolSqueezedByOtherWorker: a worker whose reservation the budget
// refuses cannot empty another worker's pool (no lock between them), so
// the other worker empties its own at its next Take or Return.
func TestPoolSqueezedByOtherWorker(t *testing.T) {
	b := New(32<<10, nil) // 28 KiB for flows without evidence
	var la, lb Holders
	wa, wb := &Account{B: b, L: &la}, &Account{B: b, L: &lb}
	x, y := &pbuf{}, &pbuf{}
	x.h.Bind(wa, nil, x)
	y.h.Bind(wb, nil, y)
	var err bool
	if x.b, err = x.h.Take(16 << 10); !err {
		t.Fatal("refused")
	}
	x.free() // 16 KiB idle in worker A's pool
	if _, ok := y.h.Take(16 << 10); ok {
		t.Fatal("granted past the budget: A's idle buffer counts in it")
	}
	if wa.Idle() != 16<<10 {
		t.Fatal("B emptied A's pool")
	}
	// A's next buffer operation lets its idle buffers go.
	nb, _ := x.h.Take(MinBuf)
	x.h.Return(nb)
	if wa.Idle() != MinBuf || b.Used() != MinBuf {
		t.Errorf("A's pool keeps %d bytes, %d reserved, want %d", wa.Idle(), b.Used(), MinBuf)
	}
	if _, ok := y.h.Take(16 << 10); !ok {
		t.Error("refused although the budget has room now")
	}
}

package membudget

import (
	"sync"
	"testing"
)

func TestReserveRelease(t *testing.T) {
	b := New(8<<10, nil) // 7 KiB for flows without evidence
	steps := []struct {
		n    int
		kept bool
		ok   bool
		used int64
	}{
		{4 << 10, false, true, 4 << 10},
		{3 << 10, false, true, 7 << 10},
		{1, false, false, 7 << 10},     // past the part for flows without evidence
		{1 << 10, true, true, 8 << 10}, // a flow with evidence may use the reserve
		{1, true, false, 8 << 10},      // but never pass the budget
		{0, false, true, 8 << 10},      // nothing asked, nothing refused
	}
	for i, s := range steps {
		if ok := b.Reserve(s.n, s.kept); ok != s.ok || b.Used() != s.used {
			t.Fatalf("step %d: Reserve(%d, %v) = %v, used %d; want %v, %d", i, s.n, s.kept, ok, b.Used(), s.ok, s.used)
		}
	}
	b.Release(8 << 10)
	if b.Used() != 0 || b.Peak() != 8<<10 {
		t.Errorf("after release used %d peak %d", b.Used(), b.Peak())
	}
	var nilB *Budget
	if !nilB.Reserve(1<<30, false) || nilB.Used() != 0 {
		t.Error("a nil budget must accept everything")
	}
	var h Holder
	if !h.Grow(1 << 30) {
		t.Error("no account must mean no limit")
	}
}

type buf struct {
	h    Holder
	shed bool
}

func (b *buf) ShedBuffer() { b.h.Free(); b.shed = true }

// TestHolderSheds: a refused buffer gets room by shedding the least
// recently grown buffers of flows without evidence; buffers of flows with
// evidence are never shed for others, and every byte comes back on Free.
func TestHolderSheds(t *testing.T) {
	b := New(64<<10, nil) // 56 KiB for flows without evidence
	var l Holders
	a := &Account{B: b, L: &l}
	no, yes := false, true
	plain, kept := &no, &yes
	bufs := make([]*buf, 5)
	for i := range bufs {
		bufs[i] = &buf{}
	}
	grow := func(i int, k *bool, n int) bool {
		if bufs[i].h.acct != a {
			bufs[i].h.Bind(a, k, bufs[i])
		}
		return bufs[i].h.Grow(n)
	}
	if !grow(0, kept, 16<<10) || !grow(1, plain, 16<<10) || !grow(2, plain, 16<<10) {
		t.Fatal("room refused under the budget")
	}
	grow(1, plain, 1<<10) // buffer 1 grew last: buffer 2 is now the older one
	// 49 KiB held; 16 more passes 56: buffer 2 (oldest without evidence) goes.
	if !grow(3, plain, 16<<10) {
		t.Fatal("refused although a stale buffer could be shed")
	}
	if bufs[0].shed || bufs[1].shed || !bufs[2].shed || bufs[2].h.Held() != 0 {
		t.Fatalf("shed %v %v %v, want only buffer 2", bufs[0].shed, bufs[1].shed, bufs[2].shed)
	}
	if all, _, others := b.Shed(); all != 1 || others != 1 {
		t.Errorf("shed %d (for others %d), want 1 (1)", all, others)
	}
	// Only the buffer with evidence and the requester itself are left
	// unsheddable: a request bigger than what could be freed is refused.
	if grow(4, plain, 60<<10) {
		t.Fatal("granted past the budget")
	}
	if !bufs[1].shed || !bufs[3].shed || bufs[0].shed || b.Used() != 16<<10 {
		t.Fatalf("after a refusal: shed %v %v %v, used %d", bufs[0].shed, bufs[1].shed, bufs[3].shed, b.Used())
	}
	if all, kept, others := b.Shed(); all != 4 || kept != 0 || others != 3 {
		t.Errorf("shed %d kept %d others %d, want 4 0 3", all, kept, others)
	}
	bufs[0].h.Free()
	if b.Used() != 0 || l.head != nil || l.tail != nil {
		t.Errorf("after Free used %d, list %p %p", b.Used(), l.head, l.tail)
	}
}

// group is an owner whose shedding frees other holders too, as a flow's
// inspector state takes its inspectors' buffers with it.
type group struct {
	buf
	members []*buf
}

func (g *group) ShedBuffer() {
	g.buf.ShedBuffer()
	for _, m := range g.members {
		m.ShedBuffer()
	}
}

// TestShedFreesSiblings: when shedding one holder frees the holders next to
// it in the list, the walk does not lose its place: the room they freed
// counts, and the request that needs all of it is granted.
func TestShedFreesSiblings(t *testing.T) {
	b := New(64<<10, nil) // 56 KiB for flows without evidence
	var l Holders
	a := &Account{B: b, L: &l}
	no := false
	g := &group{}
	m1, m2, req := &buf{}, &buf{}, &buf{}
	g.members = []*buf{m1, m2}
	for _, x := range []struct {
		h *Holder
		o Shedder
		n int
	}{{&g.h, g, 8 << 10}, {&m1.h, m1, 20 << 10}, {&m2.h, m2, 20 << 10}} {
		x.h.Bind(a, &no, x.o)
		if !x.h.Grow(x.n) {
			t.Fatal("room refused under the budget")
		}
	}
	req.h.Bind(a, &no, req)
	if !req.h.Grow(40 << 10) {
		t.Fatalf("refused although shedding the group frees 48 KiB (used %d)", b.Used())
	}
	if !g.shed || !m1.shed || !m2.shed || b.Used() != 40<<10 {
		t.Errorf("shed %v %v %v, used %d", g.shed, m1.shed, m2.shed, b.Used())
	}
}

// TestConcurrentNeverOver: workers reserving and releasing at once never
// push the total past the budget.
func TestConcurrentNeverOver(t *testing.T) {
	b := New(1<<20, nil)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kept := g == 0
			for i := 0; i < 20000; i++ {
				if b.Reserve(16<<10, kept) {
					if u := b.Used(); u > b.Limit() {
						t.Errorf("used %d > limit %d", u, b.Limit())
						return
					}
					b.Release(16 << 10)
				}
			}
		}()
	}
	wg.Wait()
	if b.Used() != 0 || b.Peak() > b.Limit() {
		t.Errorf("used %d, peak %d, limit %d", b.Used(), b.Peak(), b.Limit())
	}
}

func BenchmarkReserveRelease(b *testing.B) {
	bud := New(DefaultBytes, nil)
	var l Holders
	a := &Account{B: bud, L: &l}
	x := &buf{}
	x.h.Bind(a, nil, x)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		x.h.Grow(512)
		x.h.Free()
	}
}

package tlsstream

import (
	"testing"

	"github.com/sewatch/sewatch/internal/membudget"
)

// TestCollectBudget: handshake bytes are reserved before the buffer grows,
// returned by Free, and a refused reservation drops the partial handshake
// (Shed, HandshakeBroken) instead of holding it.
func TestCollectBudget(t *testing.T) {
	hello := record(22, 12000)
	tests := []struct {
		name     string
		limit    int64
		kept     bool
		fill     int // bytes another flow already holds
		wantShed bool
	}{
		{"room", 1 << 20, false, 0, false},
		{"budget full", 1 << 20, false, 900 << 10, true},
		{"budget full but the flow gave evidence", 1 << 20, true, 900 << 10, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := membudget.New(tc.limit, nil)
			if !b.Reserve(tc.fill, true) {
				t.Fatal("fill refused")
			}
			d := Dir{Collect: true}
			a := &membudget.Account{B: b}
			d.SetBudget(a, &tc.kept)
			d.Start(1, true)
			// The hello arrives in 1,400-byte segments.
			for off := 0; off < len(hello); off += 1400 {
				end := min(off+1400, len(hello))
				d.Feed(1+uint32(off), hello[off:end], func(Record) bool { return true })
				if held := b.Used() - int64(tc.fill) - int64(a.Idle()); held < int64(cap(d.HS)) {
					t.Fatalf("buffer of %d bytes with only %d reserved", cap(d.HS), held)
				}
			}
			if d.Shed != tc.wantShed || d.HandshakeBroken() != tc.wantShed {
				t.Fatalf("shed %v broken %v, want %v", d.Shed, d.HandshakeBroken(), tc.wantShed)
			}
			if !tc.wantShed && len(d.HS) != 12000 {
				t.Fatalf("collected %d bytes, want 12000", len(d.HS))
			}
			// What is reserved beyond the fill is the pool's idle buffers.
			if tc.wantShed && (d.HS != nil || b.Used() != int64(tc.fill+a.Idle())) {
				t.Fatalf("shed buffer still held: %d bytes, %d reserved", len(d.HS), b.Used()-int64(tc.fill))
			}
			d.Free()
			if b.Used() != int64(tc.fill+a.Idle()) || d.HS != nil {
				t.Fatalf("after Free %d bytes reserved, want %d + %d idle", b.Used(), tc.fill, a.Idle())
			}
			a.Trim()
			if b.Used() != int64(tc.fill) || a.Idle() != 0 {
				t.Fatalf("after Trim %d bytes reserved, %d idle, want %d", b.Used(), a.Idle(), tc.fill)
			}
			if n, _, _ := b.Shed(); (n > 0) != tc.wantShed {
				t.Fatalf("budget counted %d refusals", n)
			}
		})
	}
}

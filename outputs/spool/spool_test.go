package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func entries(from, n int) [][]byte {
	var out [][]byte
	for i := from; i < from+n; i++ {
		out = append(out, []byte(fmt.Sprintf("entry-%06d", i)))
	}
	return out
}

// drain reads everything, n entries at a time.
func drain(t *testing.T, s *Spool, n int) []string {
	t.Helper()
	var got []string
	for {
		es, err := s.Peek(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return got
		}
		for _, e := range es {
			got = append(got, string(e))
		}
		if err := s.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func want(from, n int) []string {
	var out []string
	for _, e := range entries(from, n) {
		out = append(out, string(e))
	}
	return out
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("entry %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestFIFOAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxBytes: 1 << 20, SegmentBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if n, err := s.Append(entries(i*100, 100)); n != 100 || err != nil {
			t.Fatal(n, err)
		}
	}
	if s.Len() != 1000 {
		t.Fatalf("len %d", s.Len())
	}
	// Read a third, then reopen: the rest comes back, in order.
	got := []string{}
	for len(got) < 333 {
		es, err := s.Peek(37)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := s.Peek(37)
		if len(again) != len(es) || string(again[0]) != string(es[0]) {
			t.Fatal("repeated Peek must return the same entries")
		}
		for _, e := range es {
			got = append(got, string(e))
		}
		s.Commit()
	}
	// A peeked but uncommitted batch is delivered again after a restart.
	if _, err := s.Peek(5); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir, Options{MaxBytes: 1 << 20, SegmentBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != int64(1000-len(got)) {
		t.Fatalf("after reopen len %d, want %d", s.Len(), 1000-len(got))
	}
	got = append(got, drain(t, s, 64)...)
	equal(t, got, want(0, 1000))
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 0 || s.Size() != 0 {
		t.Errorf("empty spool keeps %d segments, %d bytes", len(segs), s.Size())
	}
}

func TestFullAppendsPrefix(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MaxBytes: 10 * (8 + 12)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.Append(entries(0, 15))
	if n != 10 || !errors.Is(err, ErrFull) {
		t.Fatalf("append = %d, %v; want 10, ErrFull", n, err)
	}
	if s.Free() != 0 {
		t.Errorf("free %d", s.Free())
	}
	if n, err := s.Append(entries(15, 1)); n != 0 || !errors.Is(err, ErrFull) {
		t.Fatalf("append to a full spool = %d, %v", n, err)
	}
	equal(t, drain(t, s, 3), want(0, 10))
	if n, err := s.Append(entries(10, 5)); n != 5 || err != nil {
		t.Fatalf("append after drain = %d, %v", n, err)
	}
}

func TestPrependKeepsOrder(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxBytes: 1 << 20, SegmentBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	s.Append(entries(50, 50))
	if err := s.Prepend(entries(20, 30)); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepend(entries(0, 20)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir, Options{MaxBytes: 1 << 20, SegmentBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	equal(t, drain(t, s, 7), want(0, 100))
	// Prepend to an empty spool is an append.
	if err := s.Prepend(entries(0, 3)); err != nil {
		t.Fatal(err)
	}
	equal(t, drain(t, s, 7), want(0, 3))
}

func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s.Append(entries(0, 10))
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	// A crash in the middle of a write: half a frame at the end.
	f, _ := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{20, 0, 0, 0, 1, 2, 3, 4, 'p', 'a'})
	f.Close()
	s, err = Open(dir, Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != 10 {
		t.Fatalf("len %d after torn tail", s.Len())
	}
	s.Append(entries(10, 2))
	equal(t, drain(t, s, 4), want(0, 12))
}

func TestDiscard(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Append(entries(0, 10))
	if n, err := s.Discard(); n != 10 || err != nil || s.Len() != 0 {
		t.Fatalf("discard = %d, %v, len %d", n, err, s.Len())
	}
}

func BenchmarkAppendPeekCommit(b *testing.B) {
	s, err := Open(b.TempDir(), Options{MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([][]byte, 256)
	for i := range batch {
		batch[i] = make([]byte, 600)
	}
	b.SetBytes(600)
	b.ReportAllocs()
	for i := 0; i < b.N; i += len(batch) {
		if _, err := s.Append(batch); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Peek(len(batch)); err != nil {
			b.Fatal(err)
		}
		s.Commit()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

package spool

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Prepend honours the byte limit: all or nothing.
func TestPrependHonoursLimit(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MaxBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Prepend(entries(0, 20)); !errors.Is(err, ErrFull) { // 20 × (8+12) = 400 B
		t.Fatalf("prepend over the limit: %v", err)
	}
	if s.Len() != 0 || s.Size() != 0 {
		t.Fatalf("a refused prepend left %d entries, %d bytes", s.Len(), s.Size())
	}
	if err := s.Prepend(entries(0, 5)); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepend(entries(5, 6)); !errors.Is(err, ErrFull) {
		t.Fatalf("second prepend: %v", err)
	}
	if s.Size() > 200 {
		t.Fatalf("size %d over the limit", s.Size())
	}
}

// One process at a time: a second Open of the directory fails with ErrLocked
// until the first closes.
func TestOpenLocksDirectory(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{MaxBytes: 1 << 20}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	a.Close()
	b, err := Open(dir, Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

// A corrupt entry in the middle of a segment is skipped and reported; the
// entries behind it survive. A torn tail is cut and reported at Open.
func TestDamageIsReportedAndCounted(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s.Append(entries(0, 10))
	s.Close()
	seg, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	b, _ := os.ReadFile(seg[0])
	b[3*20+8] ^= 0xff                                  // payload of entry 3 (frames of 8+12 bytes)
	b = append(b, 0x40, 0, 0, 0, 1, 2, 3, 4, 'x', 'y') // a torn frame at the end
	os.WriteFile(seg[0], b, 0o640)

	var reports []string
	var lost int64
	s, err = Open(dir, Options{MaxBytes: 1 << 20, OnDiscard: func(n int64, why string) { lost += n; reports = append(reports, why) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := drain(t, s, 4)
	w := append(want(0, 3), want(4, 6)...)
	equal(t, got, w)
	if lost != 2 || len(reports) != 2 || s.Discarded() != 2 {
		t.Fatalf("lost %d, reports %q", lost, reports)
	}
	if n, _, _ := Stat(dir); n != 0 {
		t.Fatalf("Stat after drain: %d", n)
	}
}

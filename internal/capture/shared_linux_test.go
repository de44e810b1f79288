package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// manySizes is frames of 60-1459 bytes, about 30 MB in all: the mapping
// spans several drop chunks.
func manySizes() []int {
	var many []int
	for i := 0; i < 40_000; i++ {
		many = append(many, 60+(i*37)%1400)
	}
	return many
}

// mappingRSS is the resident kilobytes of the mapping that starts at m, from
// /proc/self/smaps.
func mappingRSS(t *testing.T, m []byte) int {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := fmt.Sprintf("%x-", uintptr(unsafe.Pointer(unsafe.SliceData(m))))
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "-") && !strings.Contains(l, ":") || strings.HasPrefix(l, start) {
			in = strings.HasPrefix(l, start)
			continue
		}
		var kb int
		if in && strings.HasPrefix(l, "Rss:") {
			fmt.Sscanf(strings.TrimPrefix(l, "Rss:"), "%d", &kb)
			return kb
		}
	}
	t.Fatalf("no mapping at %s in /proc/self/smaps", start)
	return 0
}

// openMapped opens path mapped, with one cursor; the test's end closes both.
func openMapped(t *testing.T, path string) (*Shared, *Cursor) {
	in, err := OpenInput(path, InputOptions{Map: MapAlways})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	sf := in.(*multi).Shared()
	if sf == nil || !sf.Mapped() {
		t.Fatal("the file is not read mapped")
	}
	c := sf.Cursor()
	t.Cleanup(c.Close)
	return sf, c
}

// TestSharedMappedDropsPages: reading a mapped file gives its pages back
// behind the cursors, so the process does not hold the whole file.
func TestSharedMappedDropsPages(t *testing.T) {
	path := pcapFile(t, manySizes(), 0)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sf, c := openMapped(t, path)
	n := 0
	for {
		if _, err := c.NextFrame(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		n++
	}
	rss := mappingRSS(t, sf.m)
	if n != 40_000 || rss > (dropChunk+soloBlocks*blockSize)>>10 {
		t.Errorf("read %d records; %d KiB of the %d KiB file still resident (want at most %d)",
			n, rss, st.Size()>>10, (dropChunk+soloBlocks*blockSize)>>10)
	}
}

// TestSharedMappedShrinks: a mapped file truncated by another program while
// a cursor reads it gives a read error naming the file, not a crash, and
// the records before the lost pages as they were.
func TestSharedMappedShrinks(t *testing.T) {
	path := pcapFile(t, manySizes(), 0)
	want, err := readOrdinary(t, path)
	if err != nil {
		t.Fatal(err)
	}
	sf, c := openMapped(t, path)
	var got []record
	readErr := func() (err error) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				if err = sf.Fault(r); err == nil {
					panic(r)
				}
			}
		}()
		for {
			d, ts, err := c.Next()
			if err != nil {
				return err
			}
			got = append(got, record{ts, string(d)})
			if len(got) == 100 {
				// Truncated to 1 MiB, past what was read so far.
				if err := os.Truncate(path, 1<<20); err != nil {
					t.Fatal(err)
				}
			}
		}
	}()
	if !errors.Is(readErr, ErrTruncated) || !strings.Contains(readErr.Error(), path) || !strings.Contains(readErr.Error(), "shrank") {
		t.Fatalf("error %v, want ErrTruncated naming %s and saying it shrank", readErr, path)
	}
	if len(got) < 100 || len(got) >= len(want) {
		t.Fatalf("%d records before the error, want at least 100 and fewer than %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("record %d differs from the ordinary reader's", i+1)
		}
	}
}

// evictedFile writes a capture of at least minMapped bytes and puts it out
// of the page cache (written back first); the caller reads it through f.
func evictedFile(t *testing.T) (string, *os.File, os.FileInfo) {
	t.Helper()
	path := pcapFile(t, manySizes(), 0)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil || st.Size() < minMapped {
		t.Fatalf("test file of %d bytes (%v), want at least %d", st.Size(), err, minMapped)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	return path, f, st
}

// TestSharedAutoSmallPages: a file the page cache holds in 4 KiB pages
// (read back in 4 KiB pieces without read-ahead) is not mapped by default,
// where each of its many faults could cost more than read()'s copy; with
// MapAlways it is.
func TestSharedAutoSmallPages(t *testing.T) {
	// Out of the page cache, then in again page by page.
	path, f, st := evictedFile(t)
	fd := int(f.Fd())
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for off := int64(0); off < st.Size(); off += 4096 {
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		mode   MapMode
		mapped bool
	}{{MapAuto, false}, {MapAlways, true}} {
		in, err := OpenInput(path, InputOptions{Map: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		sf := in.(*multi).Shared()
		if sf == nil || sf.Mapped() != c.mapped {
			t.Errorf("mode %d: shared %v, mapped %v, want mapped %v", c.mode, sf != nil, sf != nil && sf.Mapped(), c.mapped)
		}
		in.Close()
	}
}

// TestMostlyLarge: the probe's verdict over its windows' fault counts. A
// file cached in large folios with one stretch in 4 KiB pages (the
// benchmark capture's middle, after eviction: 16 faults in that window,
// 1 in the others) is still mapped; a file mostly in small pages, or
// mostly not cached, is not.
func TestMostlyLarge(t *testing.T) {
	for _, c := range []struct {
		faults []int64
		want   bool
	}{
		{[]int64{1, 1, 1, 1, 1}, true},
		{[]int64{1, 1, 16, 1, 1}, true},
		{[]int64{16, 16, 1, 1, 1}, true},
		{[]int64{4, 4, 4, 16, 16}, true},
		{[]int64{16, 16, 16, 1, 1}, false},
		{[]int64{5, 5, 5, 5, 5}, false},
		{[]int64{1, 1, notCached, notCached, notCached}, false},
		{[]int64{1, 1, 1, notCached, notCached}, true},
		{[]int64{256, 256, 256, 256, 256}, false},
	} {
		if got := mostlyLarge(c.faults); got != c.want {
			t.Errorf("mostlyLarge(%v) = %v, want %v", c.faults, got, c.want)
		}
	}
}

// TestSharedAutoNotCached: a file the page cache does not hold is read with
// pread, and the probe leaves its windows alone: touching them through the
// mapping would read them in at the faults' small size, and every later
// run would find them small and never map the file (the kernel's
// read-ahead for pread brings it in in large pieces instead).
func TestSharedAutoNotCached(t *testing.T) {
	path, f, st := evictedFile(t)
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	// The pages of the probe's windows that are cached.
	vec := make([]byte, (1<<20)/os.Getpagesize()+1)
	resident := func() int {
		n := 0
		for w := range probeWindows {
			start, end := probeWindow(len(m), w)
			k, pages := residentPages(m[start:end], vec)
			if pages == 0 {
				t.Fatalf("mincore of window %d failed", w)
			}
			n += k
		}
		return n
	}
	if before := resident(); before != 0 {
		t.Fatalf("%d pages of the probe windows still cached after FADV_DONTNEED", before)
	}
	in, err := OpenInput(path, InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sf := in.(*multi).Shared()
	if sf == nil || sf.Mapped() {
		t.Errorf("shared %v, mapped %v: want read with pread", sf != nil, sf != nil && sf.Mapped())
	}
	in.Close()
	if after := resident(); after != 0 {
		t.Errorf("the probe read %d pages of its windows in", after)
	}
}

// TestLinkTypeForHardware: Ethernet-like interfaces are read as Ethernet,
// interfaces without a link header as raw IP, and any other kind is
// refused with the hardware type named, not decoded as Ethernet.
func TestLinkTypeForHardware(t *testing.T) {
	for _, c := range []struct {
		hw   uint16
		want uint32
	}{
		{1, 1},        // Ethernet, veth, bridge, tap
		{772, 1},      // loopback
		{0xfffe, 101}, // tun (ARPHRD_NONE): OpenVPN, WireGuard
		{512, 101},    // PPP
		{519, 101},    // raw IP
		{768, 101},    // IP-in-IP
		{778, 101},    // GRE
		{803, 0},      // Wi-Fi monitor mode (radiotap)
		{32, 0},       // InfiniBand
		{280, 0},      // CAN
	} {
		got, err := linkTypeForHardware(c.hw)
		if got != c.want || (c.want == 0) != (err != nil) {
			t.Errorf("hardware type %d: link type %d, %v; want %d", c.hw, got, err, c.want)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprint(c.hw)) {
			t.Errorf("hardware type %d: error %q does not name it", c.hw, err)
		}
	}
}

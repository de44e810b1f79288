package outputs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sewatch/sewatch/outputs/spool"
)

// named is a switchable sink with a destination identity.
type named struct {
	switchable
	id string
}

func (n *named) Name() string     { return "outputs (" + n.id + ")" }
func (n *named) Identity() string { return n.id }

// lockedBuf is a log destination tests can read while the router writes.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func dirBytes(t *testing.T, dir string) (segs int64) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".seg") {
			segs += fi.Size()
		}
		return nil
	})
	return segs
}

// The spool's byte limit holds in pcap (blocking) mode with a sink down for
// the whole run: memory spilled at shutdown must fit too, and every record
// is delivered, spooled or counted as dropped.
func TestSpoolByteLimitHolds(t *testing.T) {
	dir := t.TempDir()
	sk := &named{id: "kafka:127.0.0.1:1/t"}
	sk.down.Store(true)
	const limit = 200000
	r, err := OpenRouter(Policy{QueueSize: 4096, BatchSize: 256, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		SpoolDir: dir, SpoolMaxBytes: limit, StallTimeout: 100 * time.Millisecond}, []Output{sk}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	js := bytes.Repeat([]byte("x"), 600)
	for i := 0; i < n; i++ {
		x := rec(i)
		x.JSON = js
		r.Send(x)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r.Close(ctx)
	st := r.Stats()[0]
	if got := dirBytes(t, dir); got > limit {
		t.Fatalf("spool holds %d bytes on disk, limit %d", got, limit)
	}
	if st.InSpool == 0 || st.Dropped == 0 {
		t.Fatalf("want some spooled and some dropped: %+v", st)
	}
	if st.Delivered+st.Dropped+uint64(st.InSpool) != n || st.Undelivered() != n {
		t.Fatalf("records unaccounted for: %+v", st)
	}
}

// A spool is found by the output's identity, not its position: the second
// run lists the outputs in another order and still delivers what the first
// run spooled.
func TestSpoolFollowsIdentityNotPosition(t *testing.T) {
	dir := t.TempDir()
	pol := Policy{QueueSize: 32, BatchSize: 10, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, SpoolDir: dir}
	other := &named{id: "file:/var/log/eve.json"}
	down := &named{id: "kafka:k1:9092/eve"}
	down.down.Store(true)
	r, err := OpenRouter(pol, []Output{other, down}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		r.Send(rec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r.Close(ctx)
	if st := r.Stats()[1]; st.InSpool != 50 {
		t.Fatalf("first run: %+v", st)
	}
	up := &named{id: "kafka:k1:9092/eve"}
	r, err = OpenRouter(pol, []Output{up, &named{id: "stdout"}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Orphans()) != 0 {
		t.Fatalf("no spool is orphaned: %+v", r.Orphans())
	}
	r.Close(context.Background())
	checkOrder(t, up.received(), 50)
}

// A spool whose output is not configured in this run is reported with its
// identity and event count, never silently left behind.
func TestOrphanSpoolReported(t *testing.T) {
	dir := t.TempDir()
	pol := Policy{QueueSize: 32, BatchSize: 10, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, SpoolDir: dir}
	down := &named{id: "kafka:k1:9092/eve"}
	down.down.Store(true)
	r, _ := OpenRouter(pol, []Output{down}, quiet)
	for i := 0; i < 7; i++ {
		r.Send(rec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r.Close(ctx)
	var logs lockedBuf
	r, err := OpenRouter(pol, []Output{&named{id: "stdout"}}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r.Close(context.Background())
	o := r.Orphans()
	if len(o) != 1 || o[0].Identity != "kafka:k1:9092/eve" || o[0].Events != 7 {
		t.Fatalf("orphans: %+v", o)
	}
	if !strings.Contains(logs.String(), "not configured in this run") {
		t.Fatalf("orphan not logged: %s", logs.String())
	}
}

// Two routers (processes) cannot share one spool directory.
func TestSpoolDirectoryLocked(t *testing.T) {
	dir := t.TempDir()
	pol := Policy{QueueSize: 8, BatchSize: 8, SpoolDir: dir}
	r1, err := OpenRouter(pol, []Output{&named{id: "kafka:k1:9092/eve"}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenRouter(pol, []Output{&named{id: "kafka:k1:9092/eve"}}, quiet)
	if !errors.Is(err, spool.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	r1.Close(context.Background())
	r3, err := OpenRouter(pol, []Output{&named{id: "kafka:k1:9092/eve"}}, quiet)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	r3.Close(context.Background())
}

// A damaged spool segment: the damaged entries are logged and counted as
// dropped, the rest delivered; nothing vanishes without a count.
func TestCorruptSpoolCounted(t *testing.T) {
	dir := t.TempDir()
	pol := Policy{QueueSize: 8, BatchSize: 10, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, SpoolDir: dir}
	down := &named{id: "kafka:k1:9092/eve"}
	down.down.Store(true)
	r, _ := OpenRouter(pol, []Output{down}, quiet)
	const n = 100
	for i := 0; i < n; i++ {
		r.Send(rec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r.Close(ctx)
	segs, _ := filepath.Glob(filepath.Join(dir, "*", "*.seg"))
	if len(segs) == 0 {
		t.Fatal("nothing spooled")
	}
	// Flip a byte inside the first entry's payload (frames are an 8-byte
	// header, then the payload).
	b, _ := os.ReadFile(segs[0])
	b[9] ^= 0xff
	os.WriteFile(segs[0], b, 0o640)

	var logs lockedBuf
	up := &named{id: "kafka:k1:9092/eve"}
	r, err := OpenRouter(pol, []Output{up}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r.Close(context.Background())
	st := r.Stats()[0]
	if st.Dropped != 1 || st.Delivered+st.Dropped != n {
		t.Fatalf("delivered %d + dropped %d != %d", st.Delivered, st.Dropped, n)
	}
	checkSubsequence(t, up.received(), n)
	if !strings.Contains(logs.String(), "discarded damaged events") {
		t.Fatalf("discard not logged: %s", logs.String())
	}
}

// In blocking (pcap) mode a sink that stays down with no spool cannot hang
// Send for ever: after StallTimeout its records are dropped and counted.
func TestStallTimeoutEndsBlocking(t *testing.T) {
	sk := &named{id: "kafka:127.0.0.1:1/t"}
	sk.down.Store(true)
	r, err := OpenRouter(Policy{QueueSize: 4, BatchSize: 4, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		StallTimeout: 50 * time.Millisecond}, []Output{sk}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			r.Send(rec(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Send blocked past the stall timeout")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r.Close(ctx)
	st := r.Stats()[0]
	if st.Delivered != 0 || st.Dropped != 100 || st.SpoolDir != "" {
		t.Fatalf("%+v", st)
	}
}

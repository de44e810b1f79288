package outputs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// switchable is a sink that can be down (every write fails) or up.
type switchable struct {
	mu     sync.Mutex
	down   atomic.Bool
	delay  time.Duration
	got    []string
	writes int
}

func (s *switchable) Name() string { return "outputs[0] (test)" }
func (s *switchable) Write(ctx context.Context, b []Record) error {
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.down.Load() {
		return fmt.Errorf("sink down")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	for _, r := range b {
		s.got = append(s.got, string(r.JSON))
	}
	return nil
}
func (s *switchable) Close(context.Context) error { return nil }
func (s *switchable) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func rec(i int) Record {
	return Record{Type: "alert", Time: time.Unix(1700000000, int64(i)), FlowID: int64(i), Key: "k" + strconv.Itoa(i%7),
		ID: "id" + strconv.Itoa(i), SignatureID: 8700001, JSON: []byte(strconv.Itoa(i))}
}

func checkOrder(t *testing.T, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("delivered %d, want %d", len(got), n)
	}
	for i, g := range got {
		if g != strconv.Itoa(i) {
			t.Fatalf("out of order at %d: %s", i, g)
		}
	}
}

// checkSubsequence: what arrived is in send order, without duplicates.
func checkSubsequence(t *testing.T, got []string, n int) {
	t.Helper()
	last := -1
	for _, g := range got {
		v, err := strconv.Atoi(g)
		if err != nil || v <= last || v >= n {
			t.Fatalf("out of order or duplicated: %s after %d", g, last)
		}
		last = v
	}
}

func TestRecordCodec(t *testing.T) {
	for _, r := range []Record{rec(42), {JSON: []byte("{}")}, {Type: "stats", ID: "x", FlowID: -1, SignatureID: 1 << 30}} {
		got, err := decodeRecord(encodeRecord(nil, r))
		if err != nil || got.Type != r.Type || got.Key != r.Key || got.ID != r.ID || got.FlowID != r.FlowID ||
			got.SignatureID != r.SignatureID || !got.Time.Equal(r.Time) || string(got.JSON) != string(r.JSON) {
			t.Errorf("round trip %+v -> %+v, %v", r, got, err)
		}
	}
	if _, err := decodeRecord([]byte{9, 1, 2}); err == nil {
		t.Error("bad version accepted")
	}
}

func TestSpoolName(t *testing.T) {
	for in, want := range map[string]string{"outputs[1] (kafka)": "outputs_1_kafka", "../x": "x", "": "output", "a.b-c_d": "a.b-c_d"} {
		if got := SpoolName(in); got != want {
			t.Errorf("SpoolName(%q) = %q, want %q", in, got, want)
		}
	}
}

// A sink that is down while events flow: they go to the spool and arrive in
// order once it is back. In pcap mode nothing is dropped; in live (lossy)
// mode Send never blocks, so a burst faster than the spool writer may drop
// a few records: each is then counted, none is lost silently.
func TestRouterSpoolsWhileDown(t *testing.T) {
	for _, lossy := range []bool{false, true} {
		t.Run(fmt.Sprintf("lossy=%v", lossy), func(t *testing.T) {
			sk := &switchable{}
			sk.down.Store(true)
			r, err := OpenRouter(Policy{Lossy: lossy, QueueSize: 64, BatchSize: 50, RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond,
				SpoolDir: t.TempDir(), SpoolMaxBytes: 8 << 20}, []Output{sk}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			const n = 20000
			for i := 0; i < n; i++ {
				r.Send(rec(i))
				if lossy && i%32 == 0 {
					time.Sleep(50 * time.Microsecond) // a live rate, not a tight loop
				}
				if i == n/2 {
					time.Sleep(20 * time.Millisecond)
				}
			}
			time.Sleep(50 * time.Millisecond)
			st := r.Stats()[0]
			if st.Spooled == 0 || st.InSpool == 0 || st.Queued == 0 {
				t.Errorf("while down: %+v", st)
			}
			sk.down.Store(false)
			if err := r.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			st = r.Stats()[0]
			if !lossy {
				checkOrder(t, sk.received(), n)
				if st.Delivered != n || st.Dropped != 0 || st.InSpool != 0 || st.Queued != 0 {
					t.Errorf("after: %+v", st)
				}
				return
			}
			got := sk.received()
			checkSubsequence(t, got, n)
			if st.Delivered != uint64(len(got)) || st.Delivered+st.Dropped != n || st.InSpool != 0 || st.Queued != 0 {
				t.Errorf("after: %+v (received %d)", st, len(got))
			}
		})
	}
}

// A slow sink: records overflow memory into the spool and still arrive in order.
func TestRouterSpoolsWhileSlow(t *testing.T) {
	for _, lossy := range []bool{false, true} {
		t.Run(fmt.Sprintf("lossy=%v", lossy), func(t *testing.T) {
			sk := &switchable{delay: 2 * time.Millisecond}
			r, err := OpenRouter(Policy{Lossy: lossy, QueueSize: 256, BatchSize: 8, SpoolDir: t.TempDir()}, []Output{sk}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			const n = 3000
			for i := 0; i < n; i++ {
				r.Send(rec(i))
				if i%16 == 0 {
					time.Sleep(50 * time.Microsecond)
				}
			}
			r.Close(context.Background())
			st := r.Stats()[0]
			if st.Spooled == 0 {
				t.Errorf("nothing spooled behind a slow sink: %+v", st)
			}
			if !lossy {
				checkOrder(t, sk.received(), n)
				if st.Dropped != 0 {
					t.Errorf("stats %+v", st)
				}
				return
			}
			// Live mode never blocks Send: what the spool writer cannot take
			// in time is dropped and counted, never lost silently.
			got := sk.received()
			checkSubsequence(t, got, n)
			if st.Delivered != uint64(len(got)) || st.Delivered+st.Dropped != n {
				t.Errorf("stats %+v, received %d", st, len(got))
			}
		})
	}
}

// A full spool drops (counted) and never blocks in lossy mode; what is
// delivered stays in order.
func TestRouterSpoolFullDrops(t *testing.T) {
	sk := &switchable{}
	sk.down.Store(true)
	r, err := OpenRouter(Policy{Lossy: true, QueueSize: 8, BatchSize: 8, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		SpoolDir: t.TempDir(), SpoolMaxBytes: 4096}, []Output{sk}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	done := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			r.Send(rec(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Send blocked with a full spool in lossy mode")
	}
	time.Sleep(20 * time.Millisecond)
	st := r.Stats()[0]
	if st.Dropped == 0 || st.SpoolBytes > 4096 {
		t.Errorf("full spool: %+v", st)
	}
	sk.down.Store(false)
	r.Close(context.Background())
	st = r.Stats()[0]
	if st.Delivered+st.Dropped != n {
		t.Errorf("every record must be delivered or counted: %+v", st)
	}
	prev := -1
	for _, g := range sk.received() {
		v, _ := strconv.Atoi(g)
		if v <= prev {
			t.Fatalf("out of order: %d after %d", v, prev)
		}
		prev = v
	}
}

// A sink down through shutdown: the spool keeps the events, the next run
// delivers them first, then the new ones.
func TestRouterSpoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	pol := Policy{QueueSize: 32, BatchSize: 10, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, SpoolDir: dir}
	down := &switchable{}
	down.down.Store(true)
	r, err := OpenRouter(pol, []Output{down}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		r.Send(rec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r.Close(ctx)
	st := r.Stats()[0]
	if st.Dropped != 0 || st.InSpool != 500 {
		t.Fatalf("first run: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, SpoolDirName(IdentityOf(down)), "cursor")); err != nil {
		t.Fatal(err)
	}
	up := &switchable{}
	r, err = OpenRouter(pol, []Output{up}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for i := 500; i < 600; i++ {
		r.Send(rec(i))
	}
	r.Close(context.Background())
	checkOrder(t, up.received(), 600)
}

func BenchmarkRouterSpoolBackedDown(b *testing.B) {
	// Throughput into the spool while the sink is down, then out of it.
	sk := &switchable{}
	sk.down.Store(true)
	r, err := OpenRouter(Policy{Lossy: false, QueueSize: 4096, BatchSize: 256, RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		SpoolDir: b.TempDir(), SpoolMaxBytes: 1 << 30}, []Output{sk}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	js := make([]byte, 600)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Send(Record{Type: "alert", ID: "x", JSON: js})
	}
	sk.down.Store(false)
	r.Close(context.Background())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if st := r.Stats()[0]; st.Delivered != uint64(b.N) {
		b.Fatalf("%+v", st)
	}
}

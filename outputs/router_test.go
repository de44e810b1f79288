package outputs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// flaky fails its first `fail` writes, then records everything.
type flaky struct {
	mu    sync.Mutex
	fail  int
	block chan struct{}
	got   []string
}

func (f *flaky) Name() string { return "flaky" }
func (f *flaky) Write(ctx context.Context, b []Record) error {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return errors.New("sink down")
	}
	for _, r := range b {
		f.got = append(f.got, string(r.JSON))
	}
	return nil
}
func (f *flaky) Close(context.Context) error { return nil }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestRouterRetriesInOrder(t *testing.T) {
	f := &flaky{fail: 3}
	r := NewRouter(Policy{QueueSize: 8, BatchSize: 4, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}, []Output{f}, quiet)
	for i := 0; i < 20; i++ {
		r.Send(Record{JSON: []byte{byte('a' + i)}})
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.got) != 20 {
		t.Fatalf("delivered %d, want 20", len(f.got))
	}
	for i, s := range f.got {
		if s != string(rune('a'+i)) {
			t.Fatalf("out of order at %d: %v", i, f.got)
		}
	}
	st := r.Stats()[0]
	if st.Delivered != 20 || st.Retried != 3 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// An output with event types takes only those (Suricata's eve-log
// types: alerts to the SIEM, stats to a file); one without takes all, and
// an unknown type in a Spec is a configuration error.
func TestRouterEventTypes(t *testing.T) {
	all, alerts := &flaky{}, &flaky{}
	r := NewRouter(Policy{Types: [][]string{nil, {"alert"}}}, []Output{all, alerts}, quiet)
	for _, typ := range []string{"alert", "stats", "flow", "alert"} {
		r.Send(Record{Type: typ, JSON: []byte(typ)})
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(all.got); got != "[alert stats flow alert]" {
		t.Errorf("the output without types got %s", got)
	}
	if got := fmt.Sprint(alerts.got); got != "[alert alert]" {
		t.Errorf("the alert output got %s", got)
	}
	if err := checkTypes([]string{"alert", "stats"}); err != nil {
		t.Error(err)
	}
	if err := checkTypes([]string{"alerts"}); err == nil || !strings.Contains(err.Error(), `"alerts" is not an event type`) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestRouterLossyNeverBlocks(t *testing.T) {
	f := &flaky{block: make(chan struct{})}
	r := NewRouter(Policy{Lossy: true, QueueSize: 4, BatchSize: 1, RetryMin: time.Millisecond}, []Output{f}, quiet)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			r.Send(Record{JSON: []byte("x")})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked in lossy mode")
	}
	close(f.block)
	r.Close(context.Background())
	st := r.Stats()[0]
	if st.Dropped == 0 || st.Delivered+st.Dropped != 100 {
		t.Errorf("stats %+v: every record must be delivered or counted as dropped", st)
	}
}

func TestRouterGivesUpAtDeadline(t *testing.T) {
	f := &flaky{fail: 1 << 30}
	r := NewRouter(Policy{QueueSize: 4, BatchSize: 2, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond}, []Output{f}, quiet)
	for i := 0; i < 4; i++ {
		r.Send(Record{JSON: []byte("x")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r.Close(ctx)
	if st := r.Stats()[0]; st.Dropped != 4 || st.Delivered != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestParseFlag(t *testing.T) {
	for in, want := range map[string]Spec{
		"stdout":                        {Type: "stdout"},
		"file:/var/log/eve.json":        {Type: "file", Arg: "/var/log/eve.json"},
		"kafka:b1:9092,b2:9092/eve":     {Type: "kafka", Arg: "b1:9092,b2:9092/eve"},
		"elasticsearch:http://es:9200/": {Type: "elasticsearch", Arg: "http://es:9200/"},
	} {
		got, err := ParseFlag(in)
		if err != nil || got.Type != want.Type || got.Arg != want.Arg {
			t.Errorf("ParseFlag(%q) = %+v, %v", in, got, err)
		}
	}
	if _, err := ParseFlag(":x"); err == nil {
		t.Error("empty type accepted")
	}
}

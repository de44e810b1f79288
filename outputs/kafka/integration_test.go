//go:build integration

package kafkaout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sewatch/sewatch/outputs"
)

// goldenRecords turns the bundled golden EVE files into records the way the
// engine does: key = community_id, else flow_id.
func goldenRecords(t testing.TB) []outputs.Record {
	t.Helper()
	files, _ := filepath.Glob("../../testdata/golden/*.eve.jsonl")
	if len(files) == 0 {
		t.Fatal("no golden EVE files")
	}
	var recs []outputs.Record
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var ev struct {
				EventType   string `json:"event_type"`
				FlowID      int64  `json:"flow_id"`
				CommunityID string `json:"community_id"`
				Alert       struct {
					SignatureID int `json:"signature_id"`
				} `json:"alert"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("%s:%d: %v", f, i+1, err)
			}
			key := ev.CommunityID
			if key == "" && ev.FlowID != 0 {
				key = fmt.Sprint(ev.FlowID)
			}
			recs = append(recs, outputs.Record{Type: ev.EventType, FlowID: ev.FlowID, Key: key,
				ID: fmt.Sprintf("%s-%d", filepath.Base(f), i), SignatureID: ev.Alert.SignatureID, JSON: line})
		}
	}
	return recs
}

type kcatMsg struct{ key, headers, value string }

// kcat reads the whole topic with Debian's kcat (librdkafka), an independent client.
func kcat(t testing.TB, addr string, want int) []kcatMsg {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is required (apt-get install -y kcat)")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(path, "-b", addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\t%h\t%s\n")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kcat: %v: %s", err, stderr.String())
		}
		var msgs []kcatMsg
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p := strings.SplitN(sc.Text(), "\t", 3)
			if len(p) != 3 {
				t.Fatalf("kcat line %q", sc.Text())
			}
			msgs = append(msgs, kcatMsg{p[0], p[1], p[2]})
		}
		if len(msgs) >= want || time.Now().After(deadline) {
			return msgs
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// The golden EVE lines go through the router and the Kafka output; kcat
// sees each one byte for byte, with its key and headers, once, and one
// flow's events in their order.
func TestKcatSeesEVEBytes(t *testing.T) {
	addr := cluster(t)
	recs := goldenRecords(t)
	// Repeat the corpus so every partition gets traffic.
	var all []outputs.Record
	for r := 0; r < 20; r++ {
		for _, rec := range recs {
			rec.ID = fmt.Sprintf("%d-%s", r, rec.ID)
			all = append(all, rec)
		}
	}
	for i := 0; i < 2000; i++ {
		all = append(all, eveLine(i, i%97))
	}
	o := open(t, outputs.Spec{Type: "kafka", Arg: addr + "/" + topic, Name: "outputs[0] (kafka)",
		Options: map[string]any{"compression": "lz4", "sensor-name": "sensor-1"}})
	rt, err := outputs.OpenRouter(outputs.Policy{QueueSize: 256, BatchSize: 128, BatchTimeout: 5 * time.Millisecond}, []outputs.Output{o}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range all {
		rt.Send(rec)
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := kcat(t, addr, len(all))
	if len(got) != len(all) {
		t.Fatalf("kcat read %d messages, want %d", len(got), len(all))
	}
	byID := map[string]outputs.Record{}
	for _, r := range all {
		byID[r.ID] = r
	}
	seen := map[string]bool{}
	lastPos := map[string]int{}
	pos := map[string]int{}
	for i, r := range all {
		pos[r.ID] = i
	}
	for _, m := range got {
		h := map[string]string{}
		for _, kv := range strings.Split(m.headers, ",") {
			k, v, _ := strings.Cut(kv, "=")
			h[k] = v
		}
		id := h[HeaderEventID]
		want, ok := byID[id]
		if !ok || seen[id] {
			t.Fatalf("unexpected or duplicate message %q", id)
		}
		seen[id] = true
		if m.value != string(want.JSON) {
			t.Fatalf("message %s differs:\n got %s\nwant %s", id, m.value, want.JSON)
		}
		if m.key != want.Key || h[HeaderEventType] != want.Type || h[HeaderSensorName] != "sensor-1" ||
			(want.SignatureID != 0 && h[HeaderSignatureID] != fmt.Sprint(want.SignatureID)) {
			t.Fatalf("message %s: key %q headers %q", id, m.key, m.headers)
		}
		if p, ok := lastPos[m.key]; ok && pos[id] < p {
			t.Fatalf("key %s out of order", m.key)
		}
		lastPos[m.key] = pos[id]
	}
	t.Logf("kcat read %d messages (%d distinct keys), all byte-identical", len(got), len(lastPos))
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func downTime() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SEWATCH_FAULT_DOWN")); err == nil {
		return d
	}
	return 30 * time.Second
}

// The broker goes away for 30 s while events keep coming (live mode: lossy
// router with a spool), then comes back on the same port with its data:
// every event arrives.
func TestBrokerRestart(t *testing.T) {
	port, data := freePort(t), t.TempDir()
	start := func() *kfake.Cluster {
		var c *kfake.Cluster
		var err error
		for i := 0; i < 50; i++ { // the port may take a moment to be free again
			c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(data), kfake.SeedTopics(3, topic))
			if err == nil {
				return c
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatal(err)
		return nil
	}
	c := start()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	o := open(t, outputs.Spec{Type: "kafka", Arg: addr + "/" + topic, Name: "outputs[0] (kafka)"})
	rt, err := outputs.OpenRouter(outputs.Policy{Lossy: true, QueueSize: 512, BatchSize: 100, BatchTimeout: 10 * time.Millisecond,
		RetryMin: 50 * time.Millisecond, RetryMax: time.Second, SpoolDir: t.TempDir(), SpoolMaxBytes: 256 << 20}, []outputs.Output{o}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	send := func(d time.Duration) {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			for i := 0; i < 20; i++ {
				rt.Send(eveLine(n, n%31))
				n++
			}
			time.Sleep(10 * time.Millisecond) // about 2,000 events/s

		}
	}
	send(time.Second)
	c.Close()
	down := downTime()
	t.Logf("broker stopped after %d events; down for %v", n, down)
	send(down)
	st := rt.Stats()[0]
	t.Logf("while down: %+v", st)
	if st.InSpool == 0 || st.Retried == 0 {
		t.Errorf("nothing spooled while the broker was down: %+v", st)
	}
	c = start()
	defer c.Close()
	send(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st = rt.Stats()[0]
	t.Logf("after restart: %+v, flushed in %v", st, time.Since(t0))
	if st.Dropped != 0 || st.Delivered < uint64(n) {
		t.Fatalf("stats %+v, sent %d", st, n)
	}
	got := kcat(t, addr, n)
	ids := map[string]int{}
	for _, m := range got {
		for _, kv := range strings.Split(m.headers, ",") {
			if k, v, _ := strings.Cut(kv, "="); k == HeaderEventID {
				ids[v]++
			}
		}
	}
	var missing []int
	for i := 0; i < n; i++ {
		if ids[fmt.Sprintf("%032x", i)] == 0 {
			missing = append(missing, i)
		}
	}
	sort.Ints(missing)
	if len(missing) > 0 {
		t.Fatalf("%d of %d events missing, first %v", len(missing), n, missing[:min(10, len(missing))])
	}
	t.Logf("all %d events arrived (%d messages read, %d re-deliveries)", n, len(got), len(got)-len(ids))
}

// The spool directory is tiny: while the broker is down, drops are counted,
// Send never blocks, and the engine keeps running and delivering later.
func TestSpoolFullWhileBrokerDown(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	o := open(t, outputs.Spec{Type: "kafka", Arg: dead + "/" + topic, Name: "outputs[0] (kafka)"})
	rt, err := outputs.OpenRouter(outputs.Policy{Lossy: true, QueueSize: 64, BatchSize: 64, RetryMin: 10 * time.Millisecond,
		RetryMax: 50 * time.Millisecond, SpoolDir: t.TempDir(), SpoolMaxBytes: 64 << 10}, []outputs.Output{o}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for i := 0; i < 5000; i++ {
			rt.Send(eveLine(i, i%5))
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Send blocked")
	}
	st := rt.Stats()[0]
	t.Logf("spool full: %+v", st)
	if st.Dropped == 0 || st.SpoolBytes > 64<<10 || st.Delivered != 0 {
		t.Errorf("stats %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	rt.Close(ctx)
	if st := rt.Stats()[0]; st.Delivered+st.Dropped+uint64(st.InSpool) != 5000 {
		t.Errorf("unaccounted events: %+v", st)
	}
}

//go:build integration

package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sewatch/sewatch/internal/estest"
)

// TestPcapToEveryOutput: `sewatch -r` with stdout, Kafka (a real
// Kafka-protocol broker) and Elasticsearch (the contract server) outputs
// delivers exactly the events stdout shows to both.
func TestPcapToEveryOutput(t *testing.T) {
	const topic = "sewatch-eve"
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	es := estest.New()
	defer es.Close()
	const stream = "logs-sewatch.alert-cli"
	out, errOut, code := sewatch(t, "-r", "../../testdata/pcap/se-via-http-proxy.pcap",
		"-o", "stdout", "-o", "kafka:"+broker.ListenAddrs()[0]+"/"+topic, "-o", "elasticsearch:"+es.URL+"/"+stream)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	kinds := map[string]int{}
	for _, l := range lines {
		var ev struct {
			EventType string `json:"event_type"`
		}
		json.Unmarshal([]byte(l), &ev)
		kinds[ev.EventType]++
	}
	if kinds["alert"] != 2 {
		t.Fatalf("stdout has %d alerts, want the 2 alerts of the capture:\n%s", kinds["alert"], out)
	}

	// Kafka: the same bytes, keyed by community_id.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: broker.ListenAddrs(), Topic: topic, GroupID: "cli-test", StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := map[string]bool{}
	for len(got) < len(lines) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("kafka: %v (have %d messages)", err, len(got))
		}
		var ev struct {
			CommunityID string `json:"community_id"`
		}
		json.Unmarshal(m.Value, &ev)
		if ev.CommunityID != "" && string(m.Key) != ev.CommunityID {
			t.Errorf("message key %q, want the community_id %q", m.Key, ev.CommunityID)
		}
		got[string(m.Value)] = true
	}
	for _, l := range lines {
		if !got[l] {
			t.Errorf("kafka lacks the line stdout printed: %s", l)
		}
	}

	// Elasticsearch: one ECS document per line in the data stream of its
	// kind (the path's namespace "cli"), the line itself in event.original.
	streams := map[string]string{"alert": stream, "flow": "logs-sewatch.flow-cli", "stats": "logs-sewatch.stats-cli"}
	total := 0
	for kind, ds := range streams {
		docs := es.Docs(ds)
		total += len(docs)
		if len(docs) != kinds[kind] {
			t.Errorf("%s: %d documents, want the %d %s lines", ds, len(docs), kinds[kind], kind)
		}
	}
	if total != len(lines) {
		t.Fatalf("%d documents indexed, want %d", total, len(lines))
	}
	for _, l := range lines {
		found := false
		for _, ds := range streams {
			for _, d := range es.Docs(ds) {
				ev, _ := d["event"].(map[string]any)
				if ev["original"] == l {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no document carries the line stdout printed in event.original: %s", l)
		}
	}
}

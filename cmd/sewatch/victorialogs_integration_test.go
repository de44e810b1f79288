//go:build integration

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// victoriaLogs starts VictoriaLogs, a log store with its own implementation
// of Elasticsearch's bulk API (the one Filebeat and Logstash write to), and
// returns its base URL. The binary is SEWATCH_VICTORIALOGS or victoria-logs
// on PATH; .ci/run builds it. Without it the test fails under
// SEWATCH_REQUIRE_TOOLS (CI) and is skipped elsewhere.
func victoriaLogs(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("SEWATCH_VICTORIALOGS")
	if bin == "" {
		bin, _ = exec.LookPath("victoria-logs")
	}
	if bin == "" {
		if os.Getenv("SEWATCH_REQUIRE_TOOLS") != "" {
			t.Fatal("victoria-logs not found (SEWATCH_VICTORIALOGS or PATH); .ci/run builds it")
		}
		t.Skip("victoria-logs not found (SEWATCH_VICTORIALOGS or PATH)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-storageDataPath", filepath.Join(t.TempDir(), "vl"), "-httpListenAddr", addr, "-loggerLevel", "WARN")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("victoria-logs log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; {
		res, err := http.Get(base + "/insert/elasticsearch/")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 && res.Header.Get("X-Elastic-Product") == "Elasticsearch" {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("victoria-logs did not answer at %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logsQL runs a LogsQL query and returns the documents, one JSON object per
// line, each field flattened to a dotted name with a string value.
func logsQL(t *testing.T, base, query string) []map[string]string {
	t.Helper()
	res, err := http.PostForm(base+"/select/logsql/query", url.Values{"query": {query}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("query %q: status %d", query, res.StatusCode)
	}
	var docs []map[string]string
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var d map[string]string
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("query %q: %v in %s", query, err, sc.Bytes())
		}
		docs = append(docs, d)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return docs
}

// TestPcapToVictoriaLogs: `sewatch -r` with its Elasticsearch output pointed
// at a server that is not ours, VictoriaLogs' Elasticsearch bulk endpoint
// (an address with a path, template installation off: it has no templates).
// Every line stdout prints arrives once, as the ECS document of its kind,
// and its ECS fields carry the line's join keys.
func TestPcapToVictoriaLogs(t *testing.T) {
	base := victoriaLogs(t)
	cfg := filepath.Join(t.TempDir(), "sewatch.yaml")
	// The trailing slash is what a user types; the client would double it.
	os.WriteFile(cfg, []byte(fmt.Sprintf(`outputs:
  - type: stdout
  - type: elasticsearch
    options:
      addresses: [%s/insert/elasticsearch/]
      template-install: false
      namespace: vl
`, base)), 0o644)
	out, errOut, code := sewatch(t, "-c", cfg, "-r", "../../testdata/pcap/se-via-http-proxy.pcap")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	alerts := strings.Count(out, `"event_type":"alert"`)
	if alerts != 2 {
		t.Fatalf("stdout has %d alerts, want the 2 alerts of the capture:\n%s", alerts, out)
	}

	// Ingested documents become searchable within about a second.
	var docs []map[string]string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		docs = logsQL(t, base, `data_stream.namespace:vl`)
		if len(docs) >= len(lines) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(docs) != len(lines) {
		t.Fatalf("%d documents in VictoriaLogs, want the %d lines stdout printed", len(docs), len(lines))
	}
	byLine := map[string]map[string]string{}
	for _, d := range docs {
		if byLine[d["event.original"]] != nil {
			t.Errorf("two documents carry one line: %s", d["event.original"])
		}
		byLine[d["event.original"]] = d
	}
	for _, l := range lines {
		d := byLine[l]
		if d == nil {
			t.Errorf("no document carries the line stdout printed in event.original: %s", l)
			continue
		}
		var ev struct {
			EventType   string `json:"event_type"`
			SrcIP       string `json:"src_ip"`
			CommunityID string `json:"community_id"`
			Alert       struct {
				SignatureID int `json:"signature_id"`
			} `json:"alert"`
		}
		json.Unmarshal([]byte(l), &ev)
		if want := "sewatch." + ev.EventType; d["data_stream.dataset"] != want {
			t.Errorf("%s line in data_stream.dataset %q, want %q", ev.EventType, d["data_stream.dataset"], want)
		}
		if ev.EventType != "alert" {
			continue
		}
		if d["source.ip"] != ev.SrcIP || d["network.community_id"] != ev.CommunityID ||
			d["rule.id"] != fmt.Sprint(ev.Alert.SignatureID) || d["event.kind"] != "alert" {
			t.Errorf("alert document source.ip %q network.community_id %q rule.id %q event.kind %q, want %s %s %d alert",
				d["source.ip"], d["network.community_id"], d["rule.id"], d["event.kind"], ev.SrcIP, ev.CommunityID, ev.Alert.SignatureID)
		}
	}
	// A Kibana-style search in the store's own language: the session alert
	// by its signature id.
	if hits := logsQL(t, base, `data_stream.namespace:vl rule.id:8700002`); len(hits) == 0 {
		t.Errorf("no document for rule.id 8700002 (the capture's HTTP-proxy session alert)")
	}
}

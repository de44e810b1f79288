package estest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// base is the server under test: this package's, or a real cluster when
// SEWATCH_ES_URL is set, so the contract asserted here is checked against
// Elasticsearch itself.
func base(t *testing.T) (string, *Server) {
	if u := os.Getenv("SEWATCH_ES_URL"); u != "" {
		return strings.TrimRight(u, "/"), nil
	}
	s := New()
	t.Cleanup(s.Close)
	return s.URL, s
}

func call(t *testing.T, c *http.Client, method, url, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if strings.Contains(url, "_bulk") {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return res.StatusCode, res.Header, m
}

func TestContract(t *testing.T) {
	url, srv := base(t)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	ds := fmt.Sprintf("logs-estest.contract-t%d", time.Now().UnixNano())
	tmpl := `{"index_patterns":["logs-estest.contract-*"],"data_stream":{},"priority":500,
	  "template":{"mappings":{"properties":{"@timestamp":{"type":"date"},"src_ip":{"type":"ip"},"host":{"type":"keyword"},"n":{"type":"long"}}}}}`

	st, h, _ := call(t, c, "GET", url+"/", "")
	if st != 200 || h.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Fatalf("GET /: %d, product header %q", st, h.Get("X-Elastic-Product"))
	}
	if st, _, _ := call(t, c, "PUT", url+"/_index_template/estest-contract", tmpl); st != 200 {
		t.Fatalf("PUT template: %d", st)
	}
	defer call(t, c, "DELETE", url+"/_index_template/estest-contract", "")
	defer call(t, c, "DELETE", url+"/_data_stream/"+ds, "")
	st, _, m := call(t, c, "GET", url+"/_index_template/estest-contract", "")
	if its, _ := m["index_templates"].([]any); st != 200 || len(its) != 1 {
		t.Fatalf("GET template: %d %v", st, m)
	}
	if st, _, _ := call(t, c, "GET", url+"/_index_template/estest-nope", ""); st != 404 {
		t.Errorf("missing template: %d, want 404", st)
	}

	doc := func(ip string, n int) string {
		return fmt.Sprintf(`{"@timestamp":"2026-11-22T11:11:12.000001Z","src_ip":%q,"host":"sensor-1","n":%d}`, ip, n)
	}
	bulk := strings.Join([]string{
		`{"create":{"_index":"` + ds + `","_id":"a"}}`, doc("10.1.2.3", 1),
		`{"create":{"_index":"` + ds + `","_id":"b"}}`, doc("not-an-ip", 2),
		`{"index":{"_index":"` + ds + `","_id":"c"}}`, doc("10.1.2.4", 3),
		`{"create":{"_index":"` + ds + `","_id":"a"}}`, doc("10.1.2.3", 1),
		`{"create":{"_index":"` + ds + `","_id":"d"}}`, `{"src_ip":"192.168.1.1"}`,
		`{"create":{"_index":"` + ds + `","_id":"e"}}`, doc("192.168.1.1", 5),
	}, "\n") + "\n"
	st, h, m = call(t, c, "POST", url+"/_bulk", bulk)
	if st != 200 || m["errors"] != true || h.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Fatalf("bulk: %d %v", st, m)
	}
	items, _ := m["items"].([]any)
	want := []struct {
		op     string
		status float64
		typ    string
	}{
		{"create", 201, ""},
		{"create", 400, "mapper_parsing_exception|document_parsing_exception"},
		{"index", 400, "illegal_argument_exception"}, // data streams take only create
		{"create", 409, "version_conflict_engine_exception"},
		{"create", 400, "mapper_parsing_exception|document_parsing_exception"}, // no @timestamp
		{"create", 201, ""},
	}
	if len(items) != len(want) {
		t.Fatalf("%d items for %d actions", len(items), len(want))
	}
	for i, w := range want {
		it, _ := items[i].(map[string]any)[w.op].(map[string]any)
		if it == nil || it["status"] != w.status {
			t.Errorf("item %d: %v, want %s %v", i, items[i], w.op, w.status)
			continue
		}
		if w.typ != "" {
			e, _ := it["error"].(map[string]any)
			if typ, _ := e["type"].(string); !strings.Contains("|"+w.typ+"|", "|"+typ+"|") {
				t.Errorf("item %d: error type %q, want %s", i, typ, w.typ)
			}
		}
	}
	call(t, c, "POST", url+"/"+ds+"/_refresh", "")
	count := func(q string) float64 {
		st, _, m := call(t, c, "POST", url+"/"+ds+"/_search", q)
		if st != 200 {
			t.Fatalf("search %s: %d %v", q, st, m)
		}
		hits, _ := m["hits"].(map[string]any)
		tot, _ := hits["total"].(map[string]any)
		v, _ := tot["value"].(float64)
		return v
	}
	if n := count(`{"query":{"match_all":{}}}`); n != 2 {
		t.Errorf("match_all: %v, want 2", n)
	}
	if n := count(`{"query":{"term":{"src_ip":"10.0.0.0/8"}}}`); n != 1 {
		t.Errorf("CIDR term: %v, want 1", n)
	}
	if n := count(`{"query":{"bool":{"filter":[{"term":{"host":"sensor-1"}},{"term":{"n":5}}]}}}`); n != 1 {
		t.Errorf("bool term: %v, want 1", n)
	}

	if srv == nil {
		return
	}
	// Fault knobs (this server only).
	srv.Reject429(2)
	st, _, m = call(t, c, "POST", url+"/_bulk", `{"create":{"_index":"`+ds+`","_id":"f"}}`+"\n"+doc("10.9.9.9", 6)+"\n"+
		`{"create":{"_index":"`+ds+`","_id":"g"}}`+"\n"+doc("10.9.9.8", 7)+"\n"+`{"create":{"_index":"`+ds+`","_id":"h"}}`+"\n"+doc("10.9.9.7", 8)+"\n")
	items, _ = m["items"].([]any)
	var got []float64
	for _, it := range items {
		got = append(got, it.(map[string]any)["create"].(map[string]any)["status"].(float64))
	}
	if st != 200 || fmt.Sprint(got) != "[429 429 201]" {
		t.Errorf("429 knob: %d %v", st, got)
	}
	srv.SetDown(true)
	if _, err := c.Get(url + "/"); err == nil {
		t.Error("down server answered")
	}
	srv.SetDown(false)
	c.CloseIdleConnections()
	if st, _, _ := call(t, c, "GET", url+"/", ""); st != 200 {
		t.Errorf("back up: %d", st)
	}
	if st, _, _ := call(t, c, "POST", url+"/_bulk", "{\"create\":{\"_index\":\"x\"}}\n{}"); st != 400 {
		t.Errorf("bulk without final newline: %d, want 400", st)
	}
}

// The built-in logs template maps host as an ECS object.
func TestBuiltinLogsTemplateClash(t *testing.T) {
	url, _ := base(t)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	ds := fmt.Sprintf("logs-estest.clash-t%d", time.Now().UnixNano())
	defer call(t, c, "DELETE", url+"/_data_stream/"+ds, "")
	_, _, m := call(t, c, "POST", url+"/_bulk", `{"create":{"_index":"`+ds+`"}}`+"\n"+`{"@timestamp":"2026-11-22T11:11:12Z","host":"sensor-1"}`+"\n")
	items, _ := m["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["create"].(map[string]any)["status"] != 400.0 {
		t.Errorf("string host under the ECS logs template: %v, want 400", m)
	}
}

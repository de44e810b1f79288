package elasticsearch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sewatch/sewatch/internal/estest"
	"github.com/sewatch/sewatch/outputs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// target is the cluster under test: the in-repo contract server, or a real
// cluster when SEWATCH_ES_URL is set (then srv is nil and fault tests skip).
func target(t testing.TB, opts ...estest.Option) (url string, srv *estest.Server) {
	t.Helper()
	if u := os.Getenv("SEWATCH_ES_URL"); u != "" && len(opts) == 0 {
		return u, nil
	}
	srv = estest.New(opts...)
	t.Cleanup(srv.Close)
	return srv.URL, srv
}

func needFaults(t testing.TB, srv *estest.Server) {
	if srv == nil {
		t.Skip("fault injection needs the in-repo server (SEWATCH_ES_URL is set)")
	}
}

func uniqueStream(t testing.TB) string {
	return fmt.Sprintf("logs-sewatch.alert-t%d", time.Now().UnixNano())
}

func eve(i int, src string) outputs.Record {
	js := fmt.Sprintf(`{"timestamp":"2026-11-22T11:11:12.%06d+0000","flow_id":%d,"event_type":"alert","src_ip":%q,"src_port":39086,"dest_ip":"198.18.2.2","dest_port":443,"proto":"TCP","community_id":"1:c%d=","alert":{"action":"allowed","gid":1,"signature_id":%d,"rev":1,"signature":"SEWATCH SoftEther VPN session (direct TLS)","category":"Potential Corporate Privacy Violation","severity":1,"metadata":{"softether_mode":["direct"]}},"flow":{"pkts_toserver":3,"start":"2026-11-22T11:11:12.000001+0000"},"host":"sensor-1"}`,
		i%1000000, 5000+i, src, i, 8700001+i%2)
	return outputs.Record{Type: "alert", Time: time.Date(2026, 11, 22, 11, 11, 12, i*1000, time.UTC), FlowID: int64(5000 + i),
		Key: fmt.Sprintf("1:c%d=", i), ID: fmt.Sprintf("%032x", i+1), SignatureID: 8700001 + i%2, JSON: []byte(js)}
}

func srcFor(i int) string {
	if i%3 == 0 {
		return fmt.Sprintf("192.168.%d.%d", i%200, 1+i%250)
	}
	return fmt.Sprintf("10.%d.%d.%d", i%200, i%250, 1+i%250)
}

func open(t testing.TB, spec outputs.Spec) *Output {
	t.Helper()
	o, err := outputs.Open(context.Background(), spec, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close(context.Background()) })
	return o.(*Output)
}

type searchResult struct {
	Hits struct {
		Total struct {
			Value int `json:"value"`
		} `json:"total"`
		Hits []struct {
			ID     string         `json:"_id"`
			Source map[string]any `json:"_source"`
		} `json:"hits"`
	} `json:"hits"`
}

func search(t testing.TB, o *Output, index string, query string) searchResult {
	t.Helper()
	if res, err := o.es.Indices.Refresh(o.es.Indices.Refresh.WithIndex(index)); err == nil {
		res.Body.Close()
	}
	res, err := o.es.Search(o.es.Search.WithIndex(index), o.es.Search.WithBody(strings.NewReader(query)), o.es.Search.WithSize(10000))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.IsError() {
		t.Fatalf("search: %s: %s", res.Status(), b)
	}
	var r searchResult
	json.Unmarshal(b, &r)
	return r
}

func TestTemplateCopyInSchemasIsIdentical(t *testing.T) {
	b, err := os.ReadFile("../../schemas/elasticsearch-index-template.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, Template) {
		t.Fatal("schemas/elasticsearch-index-template.json differs from outputs/elasticsearch/index-template.json (copy the latter over)")
	}
	var m struct {
		Priority int `json:"priority"`
		Meta     struct {
			Version int `json:"sewatch_template_version"`
		} `json:"_meta"`
	}
	if err := json.Unmarshal(Template, &m); err != nil || m.Meta.Version != TemplateVersion || m.Priority <= 100 {
		t.Fatalf("template: %+v, %v (priority must beat the built-in logs template's 100)", m, err)
	}
}

// TestKibanaSavedObjects: both files (ECS and EVE format) parse, every
// reference resolves inside the file, every object is stamped for Kibana
// 8.0.0 (coreMigrationVersion 8.0.0 and the pre-8.8 migrationVersion form,
// which later 8.x versions migrate on import; typeMigrationVersion, which
// Kibana before 8.8 does not know, is absent), the SoftEther search selects
// the SoftEther stream only, and every field a column or aggregation names
// is mapped by the format's template.
func TestKibanaSavedObjects(t *testing.T) {
	for _, tc := range []struct {
		file, format, softether string
	}{
		{"kibana-saved-objects.ndjson", FormatECS, `event.dataset:"sewatch.alert"`},
		{"kibana-saved-objects-eve.ndjson", FormatEVE, `alert.signature:*SoftEther*`},
	} {
		t.Run(tc.format, func(t *testing.T) {
			b, err := os.ReadFile("../../schemas/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			mapped := kibanaFields(t, tc.format)
			type ref struct{ ID, Name, Type string }
			type object struct {
				Type, ID             string
				CoreMigrationVersion string            `json:"coreMigrationVersion"`
				TypeMigrationVersion *string           `json:"typeMigrationVersion"`
				MigrationVersion     map[string]string `json:"migrationVersion"`
				References           []ref             `json:"references"`
				Attributes           map[string]any    `json:"attributes"`
			}
			var objs []object
			ids := map[string]string{}
			for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
				var o object
				if err := json.Unmarshal(line, &o); err != nil || o.ID == "" {
					t.Fatalf("line %d: %v", i+1, err)
				}
				objs = append(objs, o)
				ids[o.ID] = o.Type
			}
			types := map[string]int{}
			for _, o := range objs {
				types[o.Type]++
				if o.CoreMigrationVersion != "8.0.0" || o.TypeMigrationVersion != nil {
					t.Errorf("%s: coreMigrationVersion %q, typeMigrationVersion %v: want 8.0.0 and none", o.ID, o.CoreMigrationVersion, o.TypeMigrationVersion)
				}
				if v := o.MigrationVersion[o.Type]; v == "" || v > "8.0.0" {
					t.Errorf("%s: migrationVersion %v newer than Kibana 8.0", o.ID, o.MigrationVersion)
				}
				for _, r := range o.References {
					if ids[r.ID] != r.Type {
						t.Errorf("%s: reference %s (%s) not in the file", o.ID, r.ID, r.Type)
					}
				}
				var used []string
				if cols, ok := o.Attributes["columns"].([]any); ok {
					for _, c := range cols {
						used = append(used, c.(string))
					}
				}
				if vs, ok := o.Attributes["visState"].(string); ok {
					var v struct {
						Aggs []struct {
							Params map[string]any `json:"params"`
						} `json:"aggs"`
					}
					if err := json.Unmarshal([]byte(vs), &v); err != nil {
						t.Fatalf("%s: visState: %v", o.ID, err)
					}
					for _, a := range v.Aggs {
						if f, ok := a.Params["field"].(string); ok {
							used = append(used, f)
						}
					}
				}
				for _, f := range used {
					if !mapped(f) {
						t.Errorf("%s uses %s, which the %s template does not map", o.ID, f, tc.format)
					}
				}
				if o.Type == "dashboard" && o.Attributes["timeFrom"] == "now-24h" {
					t.Errorf("dashboard range 24 h hides alerts of older captures")
				}
			}
			for _, ty := range []string{"index-pattern", "search", "visualization", "dashboard"} {
				if types[ty] == 0 {
					t.Errorf("no %s object", ty)
				}
			}
			found := false
			for _, o := range objs {
				if o.Type != "search" || !strings.HasSuffix(o.ID, "softether-alerts") {
					continue
				}
				meta, _ := o.Attributes["kibanaSavedObjectMeta"].(map[string]any)
				src, _ := meta["searchSourceJSON"].(string)
				var ss struct {
					Query struct {
						Query string `json:"query"`
					} `json:"query"`
				}
				json.Unmarshal([]byte(src), &ss)
				found = strings.Contains(ss.Query.Query, tc.softether)
			}
			if !found {
				t.Errorf("the SoftEther search does not select %s", tc.softether)
			}
		})
	}
}

// kibanaFields says whether a field is mapped by the format's template.
func kibanaFields(t *testing.T, format string) func(string) bool {
	if format == FormatECS {
		f := ecsMappingLeaves(t)
		return func(n string) bool { _, ok := f[n]; return ok }
	}
	var tm struct {
		Template struct {
			Mappings struct {
				Properties map[string]any `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(Template, &tm); err != nil {
		t.Fatal(err)
	}
	f := map[string]map[string]any{}
	leaves(tm.Template.Mappings.Properties, "", f)
	return func(n string) bool {
		if _, ok := f[n]; ok {
			return true
		}
		// alert.metadata.* is mapped dynamically, strings as keywords.
		return strings.HasPrefix(n, "alert.metadata.")
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name, arg string
		opts      map[string]any
		err       string
		ds, index string
	}{
		{name: "flag", arg: "http://es:9200", ds: DefaultDataStream},
		{name: "flag stream", arg: "https://es:9200/logs-sewatch.alert-prod", ds: "logs-sewatch.alert-prod"},
		{name: "dated index", opts: map[string]any{"addresses": []any{"http://es:9200"}, "index": "sewatch-%{+yyyy.MM.dd}"}, index: "sewatch-%{+yyyy.MM.dd}"},
		{name: "bad scheme", arg: "es:9200", err: "want http(s)"},
		{name: "nested path", arg: "http://es:9200/a/b", err: "one data stream"},
		{name: "upper case", arg: "http://es:9200/Logs", err: "data stream name"},
		{name: "both", opts: map[string]any{"addresses": []any{"http://es:9200"}, "index": "x", "data-stream": "y"}, err: "exclude"},
		{name: "two auths", arg: "http://es:9200", opts: map[string]any{"api-key": "k", "bearer-token": "t"}, err: "one of"},
		{name: "no password", arg: "http://es:9200", opts: map[string]any{"username": "u"}, err: "password"},
		{name: "fingerprint", arg: "https://es:9200", opts: map[string]any{"tls": map[string]any{"fingerprint": "abc"}}, err: "SHA-256"},
		{name: "no address", err: "needs an address"},
		{name: "unknown", arg: "http://es:9200", opts: map[string]any{"pipeline": "x"}, err: "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := options(outputs.Spec{Type: "elasticsearch", Arg: tc.arg, Options: tc.opts})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || o.DataStream != tc.ds || o.Index != tc.index {
				t.Fatalf("%+v, %v", o, err)
			}
		})
	}
	o := &Output{opt: Options{Index: "sewatch-%{+yyyy.MM.dd}"}}
	if got := o.Target(eve(1, "10.0.0.1")); got != "sewatch-2026.11.22" {
		t.Errorf("target %q", got)
	}
	d := Document(nil, eve(1, "10.0.0.1"))
	var m map[string]any
	if err := json.Unmarshal(d, &m); err != nil || m["@timestamp"] != "2026-11-22T11:11:12.000001Z" || m["host"] != "sensor-1" {
		t.Errorf("document %s: %v", d, err)
	}
}

func TestConfigAddresses(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "http://es:9200", want: "http://es:9200"},
		{in: "https://proxy:443/es/", want: "https://proxy:443/es"},
		{in: "http://vl:9428/insert/elasticsearch", want: "http://vl:9428/insert/elasticsearch"},
		{in: "http://es:9200/?pretty", err: "want http(s)"},
		{in: "ftp://es:21/x", err: "want http(s)"},
		{in: "es:9200", err: "want http(s)"},
	} {
		o, err := options(outputs.Spec{Type: "elasticsearch", Options: map[string]any{"addresses": []any{tc.in}}})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || len(o.Addresses) != 1 || o.Addresses[0] != tc.want {
			t.Errorf("%s: addresses %q, %v, want %q", tc.in, o.Addresses, err, tc.want)
		}
	}
}

// TestAddressBehindProxyPath: a cluster reached through a reverse proxy at a
// path (addresses: [https://proxy/es/]): the templates and the documents
// reach it through that path, and nothing is asked outside it.
func TestAddressBehindProxyPath(t *testing.T) {
	srv := estest.New() // the in-repo server even with SEWATCH_ES_URL: its documents are read back
	defer srv.Close()
	up, _ := url.Parse(srv.URL)
	var outside atomic.Int32
	mux := http.NewServeMux()
	mux.Handle("/es/", http.StripPrefix("/es", httputil.NewSingleHostReverseProxy(up)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		outside.Add(1)
		http.NotFound(w, r)
	})
	proxy := httptest.NewServer(mux)
	defer proxy.Close()
	ds := uniqueStream(t)
	o := open(t, outputs.Spec{Type: "elasticsearch", Name: "outputs[0] (elasticsearch)",
		Options: map[string]any{"addresses": []any{proxy.URL + "/es/"}, "data-stream": ds, "format": "eve"}})
	var recs []outputs.Record
	for i := 0; i < 20; i++ {
		recs = append(recs, eve(i, srcFor(i)))
	}
	if err := o.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Docs(ds)); n != 20 {
		t.Errorf("%d documents behind the proxy, want 20", n)
	}
	if n := outside.Load(); n != 0 {
		t.Errorf("%d requests outside the proxy's path", n)
	}
}

// Events (format eve) go through the router into a data stream; Kibana-style queries
// (signature id and a CIDR on src_ip) find them; re-delivery creates nothing new.
func TestIndexSearchAndRedeliver(t *testing.T) {
	url, _ := target(t)
	ds := uniqueStream(t)
	o := open(t, outputs.Spec{Type: "elasticsearch", Arg: url + "/" + ds, Name: "outputs[1] (elasticsearch)", Options: map[string]any{"format": "eve"}})
	var recs []outputs.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, eve(i, srcFor(i)))
	}
	rt := outputs.NewRouter(outputs.Policy{BatchSize: 64}, []outputs.Output{o}, quiet)
	for _, r := range recs {
		rt.Send(r)
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := rt.Stats()[0]; st.Delivered != 300 || st.Rejected != 0 {
		t.Fatalf("stats %+v", st)
	}
	all := search(t, o, ds, `{"query":{"match_all":{}}}`)
	if all.Hits.Total.Value != 300 {
		t.Fatalf("%d documents, want 300", all.Hits.Total.Value)
	}
	want := 0
	for i := range recs {
		if i%2 == 0 && i%3 != 0 {
			want++
		}
	}
	q := `{"query":{"bool":{"filter":[{"term":{"alert.signature_id":8700001}},{"term":{"src_ip":"10.0.0.0/8"}}]}}}`
	if got := search(t, o, ds, q).Hits.Total.Value; got != want {
		t.Errorf("signature_id + CIDR: %d hits, want %d", got, want)
	}
	if got := search(t, o, ds, `{"query":{"term":{"community_id":"1:c7="}}}`).Hits.Total.Value; got != 1 {
		t.Errorf("community_id term: %d hits", got)
	}
	if got := search(t, o, ds, `{"query":{"term":{"alert.metadata.softether_mode":"direct"}}}`).Hits.Total.Value; got != 300 {
		t.Errorf("metadata term: %d hits", got)
	}
	if got := search(t, o, ds, `{"query":{"term":{"flow_id":"5007"}}}`).Hits.Total.Value; got != 1 {
		t.Errorf("flow_id keyword term: %d hits", got)
	}
	// At-least-once: the same events again change nothing.
	if err := o.Write(context.Background(), recs[:100]); err != nil {
		t.Fatal(err)
	}
	if got := search(t, o, ds, `{"query":{"match_all":{}}}`).Hits.Total.Value; got != 300 {
		t.Errorf("after re-delivery %d documents, want 300", got)
	}
	if o.conflict.Load() != 100 || o.Rejected() != 0 {
		t.Errorf("conflicts %d rejected %d", o.conflict.Load(), o.Rejected())
	}
	hit := search(t, o, ds, `{"query":{"term":{"community_id":"1:c7="}}}`).Hits.Hits[0]
	if hit.ID != recs[7].ID || hit.Source["@timestamp"] == nil || hit.Source["timestamp"] != "2026-11-22T11:11:12.000007+0000" {
		t.Errorf("document %s %v", hit.ID, hit.Source)
	}
}

// A document whose src_ip is no IP is refused for good: counted, logged once
// per cause, the others are indexed, the batch is not retried forever.
func TestMappingErrorsCountedOnce(t *testing.T) {
	url, _ := target(t)
	ds := uniqueStream(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) }), nil))
	oo, err := outputs.Open(context.Background(), outputs.Spec{Type: "elasticsearch", Arg: url + "/" + ds, Name: "outputs[0] (elasticsearch)"}, log)
	if err != nil {
		t.Fatal(err)
	}
	o := oo.(*Output)
	defer o.Close(context.Background())
	batch := []outputs.Record{eve(1, "10.0.0.1"), eve(2, "not-an-ip"), eve(3, "10.0.0.3"), eve(4, "also-bad"), eve(5, "10.0.0.5")}
	if err := o.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if o.Rejected() != 2 {
		t.Errorf("rejected %d, want 2", o.Rejected())
	}
	if got := search(t, o, ds, `{"query":{"match_all":{}}}`).Hits.Total.Value; got != 3 {
		t.Errorf("%d documents, want 3", got)
	}
	mu.Lock()
	n := strings.Count(logs.String(), "elasticsearch refused a document")
	mu.Unlock()
	if n != 1 {
		t.Errorf("cause logged %d times, want once:\n%s", n, logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Without sewatch's template, the built-in logs-*-* template (ECS host
// object) rejects EVE's string host: the reason the template must win.
func TestECSHostClashWithoutTemplate(t *testing.T) {
	url, _ := target(t)
	ds := uniqueStream(t)
	no := false
	o := open(t, outputs.Spec{Type: "elasticsearch", Arg: url + "/" + ds, Options: map[string]any{"template-install": no, "item-retries": 1, "format": "eve"}})
	if err := o.Write(context.Background(), []outputs.Record{eve(1, "10.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	if o.Rejected() != 1 {
		t.Fatalf("rejected %d: the ECS host object should refuse EVE's host string", o.Rejected())
	}
}

func TestTemplateInstalledOnce(t *testing.T) {
	url, srv := target(t)
	needFaults(t, srv)
	for i := 0; i < 2; i++ {
		open(t, outputs.Spec{Type: "elasticsearch", Arg: url})
	}
	puts := 0
	for _, r := range srv.Requests {
		if r == "PUT /_index_template/sewatch" {
			puts++
		}
	}
	if puts != 1 {
		t.Errorf("%d template PUTs, want 1 (idempotent install)", puts)
	}
	o := open(t, outputs.Spec{Type: "elasticsearch", Arg: url, Options: map[string]any{"index": "sewatch-%{+yyyy.MM.dd}", "template-name": "sewatch-daily"}})
	if err := o.Write(context.Background(), []outputs.Record{eve(1, "10.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	if len(srv.Docs("sewatch-2026.11.22")) != 1 {
		t.Error("dated index not written")
	}
	if err := o.Write(context.Background(), []outputs.Record{eve(2, "bad")}); err != nil || o.Rejected() != 1 {
		t.Errorf("dated index must carry the template's ip mapping: %v, rejected %d", err, o.Rejected())
	}
}

// The server answers 429 for a while: every document ends up indexed exactly once.
func TestBulk429IndexedExactlyOnce(t *testing.T) {
	url, srv := target(t)
	needFaults(t, srv)
	ds := uniqueStream(t)
	o := open(t, outputs.Spec{Type: "elasticsearch", Arg: url + "/" + ds, Options: map[string]any{"retry-backoff": "5ms", "item-retries": 2}})
	rt, err := outputs.OpenRouter(outputs.Policy{BatchSize: 50, RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		SpoolDir: t.TempDir()}, []outputs.Output{o}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv.Reject429(700)
	const n = 1000
	for i := 0; i < n; i++ {
		rt.Send(eve(i, srcFor(i)))
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, items, n429, _ := srv.Stats()
	docs := srv.Docs(ds)
	st := rt.Stats()[0]
	t.Logf("bulk items sent %d, answered 429: %d, router %+v", items, n429, st)
	if len(docs) != n || n429 != 700 || st.Delivered != n || st.Dropped != 0 || st.Rejected != 0 {
		t.Fatalf("%d documents, %d 429s, stats %+v", len(docs), n429, st)
	}
}

// The server goes down for a while: events wait in the spool and are indexed
// exactly once when it is back.
func TestServerDownThenBack(t *testing.T) {
	url, srv := target(t)
	needFaults(t, srv)
	ds := uniqueStream(t)
	o := open(t, outputs.Spec{Type: "elasticsearch", Arg: url + "/" + ds, Options: map[string]any{"retry-backoff": "5ms"}})
	rt, err := outputs.OpenRouter(outputs.Policy{Lossy: true, QueueSize: 64, BatchSize: 32, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		SpoolDir: t.TempDir()}, []outputs.Output{o}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := 0; i < n; i++ {
		if i == 200 {
			srv.SetDown(true)
		}
		if i == 1800 {
			time.Sleep(time.Second) // down long enough for writes to fail
			if st := rt.Stats()[0]; st.InSpool == 0 || st.Retried == 0 {
				t.Errorf("nothing spooled while down: %+v", st)
			}
			srv.SetDown(false)
		}
		rt.Send(eve(i, srcFor(i)))
		if i%16 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := rt.Stats()[0]
	t.Logf("router %+v", st)
	if got := len(srv.Docs(ds)); got != n || st.Dropped != 0 {
		t.Fatalf("%d documents of %d, %+v", got, n, st)
	}
}

func TestAuthAndTLS(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("id1:secretkey"))
	for _, tc := range []struct {
		name string
		opts map[string]any
		ok   bool
	}{
		{"api key", map[string]any{"api-key": key}, true},
		{"basic", map[string]any{"username": "elastic", "password": "changeme"}, true},
		{"bearer", map[string]any{"bearer-token": "tok123"}, true},
		{"wrong basic", map[string]any{"username": "elastic", "password": "nope"}, false},
		{"none", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := estest.New(estest.WithTLS(), estest.WithAuth(estest.Auth{APIKey: key, Username: "elastic", Password: "changeme", Bearer: "tok123"}))
			defer srv.Close()
			ca := filepath.Join(t.TempDir(), "ca.pem")
			os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate()}), 0o600)
			opts := map[string]any{"tls": map[string]any{"ca-file": ca}}
			for k, v := range tc.opts {
				opts[k] = v
			}
			o, err := outputs.Open(context.Background(), outputs.Spec{Type: "elasticsearch", Arg: srv.URL, Name: "outputs[3] (elasticsearch)", Options: opts}, quiet)
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), "outputs[3] (elasticsearch): ") || !strings.Contains(err.Error(), "401") {
					t.Fatalf("err = %v, want a 401", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close(context.Background())
			if err := o.Write(context.Background(), []outputs.Record{eve(1, "10.0.0.1")}); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("fingerprint", func(t *testing.T) {
		srv := estest.New(estest.WithTLS())
		defer srv.Close()
		sum := sha256.Sum256(srv.Certificate())
		o := open(t, outputs.Spec{Type: "elasticsearch", Arg: srv.URL, Options: map[string]any{"tls": map[string]any{"fingerprint": hex.EncodeToString(sum[:])}}})
		if err := o.Write(context.Background(), []outputs.Record{eve(1, "10.0.0.1")}); err != nil {
			t.Fatal(err)
		}
		sum[0] ^= 1
		o2, err := outputs.Open(context.Background(), outputs.Spec{Type: "elasticsearch", Arg: srv.URL, Options: map[string]any{"tls": map[string]any{"fingerprint": hex.EncodeToString(sum[:])}}}, quiet)
		if err != nil || o2 == nil {
			t.Fatalf("a wrong fingerprint is a write error, not an open error: %v", err)
		}
		defer o2.Close(context.Background())
		if err := o2.Write(context.Background(), []outputs.Record{eve(2, "10.0.0.2")}); err == nil || !strings.Contains(err.Error(), "fingerprint") {
			t.Fatalf("wrong fingerprint accepted: %v", err)
		}
	})
}

// BenchmarkRouterToElasticsearch measures events/s through the router
// (batch 512) and the bulk output into the in-repo server on loopback.
func BenchmarkRouterToElasticsearch(b *testing.B) {
	for _, format := range []string{FormatECS, FormatEVE} {
		b.Run(format, func(b *testing.B) {
			url, _ := target(b)
			o := open(b, outputs.Spec{Type: "elasticsearch", Arg: url + "/" + uniqueStream(b), Options: map[string]any{"format": format}})
			rt := outputs.NewRouter(outputs.Policy{QueueSize: 4096, BatchSize: 512, BatchTimeout: 5 * time.Millisecond}, []outputs.Output{o}, quiet)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rt.Send(eve(i, srcFor(i)))
			}
			if err := rt.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if st := rt.Stats()[0]; st.Delivered != uint64(b.N) {
				b.Fatalf("%+v", st)
			}
		})
	}
}

// BenchmarkECSDocument is the cost of mapping one EVE alert to ECS.
func BenchmarkECSDocument(b *testing.B) {
	r := eve(1, "10.0.0.1")
	now := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := ECSDocument(r, DatasetAlert, "default", now); err != nil {
			b.Fatal(err)
		}
	}
}

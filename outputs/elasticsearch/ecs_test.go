package elasticsearch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sewatch/sewatch/outputs"
)

// ecsField is one entry of ECS's generated ecs_flat.yml.
type ecsField struct {
	Type          string `yaml:"type"`
	Index         *bool  `yaml:"index"`
	DocValues     *bool  `yaml:"doc_values"`
	AllowedValues []struct {
		Name string `yaml:"name"`
	} `yaml:"allowed_values"`
}

// ecsReferences loads the ECS field references kept outside the repository
// (SEWATCH_ECS_REFERENCE, else ../shared/reference/ecs beside the repository,
// as CI has it): ecs_flat-<version>.yml for the 8.x and 9.x stacks.
func ecsReferences(t *testing.T) map[string]map[string]ecsField {
	t.Helper()
	dir := os.Getenv("SEWATCH_ECS_REFERENCE")
	if dir == "" {
		dir = "../../../shared/reference/ecs"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "ecs_flat-*.yml"))
	if len(files) == 0 {
		if os.Getenv("SEWATCH_REQUIRE_TOOLS") != "" {
			t.Fatalf("no ECS reference (ecs_flat-*.yml) in %s: set SEWATCH_ECS_REFERENCE", dir)
		}
		t.Skipf("no ECS reference in %s (set SEWATCH_ECS_REFERENCE; CI requires it)", dir)
	}
	refs := map[string]map[string]ecsField{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]ecsField
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ver := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "ecs_flat-"), ".yml")
		refs[ver] = m
	}
	if _, ok := refs[ECSVersion]; !ok {
		t.Fatalf("the ECS reference lacks %s, the version the documents declare", ECSVersion)
	}
	return refs
}

// leaves flattens a mapping's properties tree to field name -> mapping.
func leaves(props map[string]any, prefix string, out map[string]map[string]any) {
	for k, v := range props {
		mp := v.(map[string]any)
		if sub, ok := mp["properties"].(map[string]any); ok && mp["type"] == nil {
			leaves(sub, prefix+k+".", out)
			continue
		}
		out[prefix+k] = mp
	}
}

func ecsMappingLeaves(t *testing.T) map[string]map[string]any {
	var c struct {
		Template struct {
			Mappings struct {
				Properties map[string]any `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(ECSMappings, &c); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	leaves(c.Template.Mappings.Properties, "", out)
	return out
}

// TestECSMappingsAgainstReference: every field of the shipped component
// template is an ECS field with ECS's type (in every reference version:
// ECS 8.17 and 9.4), or a custom field under sewatch.*, a name ECS does not
// use.
func TestECSMappingsAgainstReference(t *testing.T) {
	refs := ecsReferences(t)
	fields := ecsMappingLeaves(t)
	if len(fields) < 50 {
		t.Fatalf("only %d fields in ecs-mappings.json", len(fields))
	}
	for ver, ref := range refs {
		for name := range ref {
			if name == "sewatch" || strings.HasPrefix(name, "sewatch.") {
				t.Errorf("ECS %s has a field %s: the custom namespace would clash", ver, name)
			}
		}
		for name, mp := range fields {
			if strings.HasPrefix(name, "sewatch.") {
				continue
			}
			f, ok := ref[name]
			if !ok {
				t.Errorf("ECS %s has no field %s", ver, name)
				continue
			}
			if mp["type"] != f.Type {
				t.Errorf("ECS %s: %s is %s, the template maps %v", ver, name, f.Type, mp["type"])
			}
			if f.Index != nil && mp["index"] != *f.Index {
				t.Errorf("ECS %s: %s index %v, template %v", ver, name, *f.Index, mp["index"])
			}
		}
	}
}

// goldenRecords turns every line of the golden EVE files into a record as
// the engine hands it to the outputs.
func goldenRecords(t *testing.T) []outputs.Record {
	files, _ := filepath.Glob("../../testdata/golden/*.eve.jsonl")
	var recs []outputs.Record
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			recs = append(recs, record(t, sc.Bytes()))
		}
		fh.Close()
	}
	if len(recs) < 10 {
		t.Fatalf("%d golden lines", len(recs))
	}
	return recs
}

func record(t *testing.T, line []byte) outputs.Record {
	var h struct {
		Timestamp string `json:"timestamp"`
		EventType string `json:"event_type"`
		FlowID    int64  `json:"flow_id"`
		Alert     struct {
			SignatureID int `json:"signature_id"`
		} `json:"alert"`
	}
	if err := json.Unmarshal(line, &h); err != nil {
		t.Fatal(err)
	}
	ts, _ := time.Parse("2006-01-02T15:04:05.000000-0700", h.Timestamp)
	return outputs.Record{Type: h.EventType, Time: ts, FlowID: h.FlowID, SignatureID: h.Alert.SignatureID,
		ID: fmt.Sprintf("%x", sha(line)), JSON: append([]byte(nil), line...)}
}

func sha(b []byte) []byte { s := DocID(outputs.Record{JSON: b}); return []byte(s) }

// extraLines cover what the goldens lack: a stats event, a live capture's
// interface, VLAN tags, IPv6, a certificate (TLS 1.2) and an other-VPN alert.
var extraLines = []string{
	`{"timestamp":"2026-11-22T11:12:00.000000+0000","event_type":"stats","stats":{"uptime":60,"decoder":{"pkts":10,"bytes":1000,"invalid":0,"ipv4":10,"ipv6":0,"tcp":10,"udp":0,"icmpv4":0,"icmpv6":0,"vlan":0,"max_pkt_size":100,"avg_pkt_size":100},"flow":{"total":1,"active":1,"tcp":1,"udp":0,"icmpv4":0,"icmpv6":0},"detect":{"alert":1,"alert_queue_overflow":0,"alerts_suppressed":0}},"host":"tap-1"}`,
	`{"timestamp":"2026-11-22T11:11:12.857458+0000","flow_id":1234,"in_iface":"eth1","event_type":"alert","vlan":[10,20],"src_ip":"2001:0db8:0000:0000:0000:0000:0000:0001","src_port":40000,"dest_ip":"2001:0db8:0000:0000:0000:0000:0000:0002","dest_port":443,"proto":"TCP","community_id":"1:ox/dfYX//sFRy0h3Hzd7f+xjafo=","alert":{"action":"allowed","gid":1,"signature_id":8700001,"rev":1,"signature":"SEWATCH SoftEther VPN session (direct TLS)","category":"Potential Corporate Privacy Violation","severity":1,"metadata":{"softether_mode":["direct"],"confidence":["0.97"],"evidence":["softether.tls.default-cert: x"],"session_flows":["TCP a -> b"]}},"tls":{"subject":"CN=1234567890ab","issuerdn":"CN=1234567890ab","serial":"00","fingerprint":"aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd","sni":"vpn.example.org","version":"TLS 1.2","notbefore":"2026-01-01T00:00:00","notafter":"2037-12-31T00:00:00","ja3":{"hash":"0123456789abcdef0123456789abcdef","string":"771,1-2,0,,"},"ja3s":{"hash":"0123456789abcdef0123456789abcdef","string":"771,1,"},"ja4":"t12d3112h1_a_b","client_alpns":["http/1.1"]},"app_proto":"tls","direction":"to_server","flow":{"pkts_toserver":5,"pkts_toclient":4,"bytes_toserver":5000,"bytes_toclient":4000,"start":"2026-11-22T11:11:12.000001+0000"},"host":"tap-1"}`,
	`{"timestamp":"2026-11-22T11:11:12.857458+0000","flow_id":99,"pcap_cnt":3,"event_type":"alert","src_ip":"10.0.0.1","src_port":1194,"dest_ip":"10.0.0.2","dest_port":1194,"proto":"UDP","community_id":"1:ox/dfYX//sFRy0h3Hzd7f+xjafo=","alert":{"action":"allowed","gid":1,"signature_id":8700101,"rev":1,"signature":"SEWATCH OpenVPN session (UDP)","category":"Generic Protocol Command Decode","severity":3,"metadata":{"vpn_protocol":["openvpn"],"confidence":["1.00"],"evidence":["vpn.openvpn: x"],"session_flows":["UDP a -> b"]}},"flow":{"pkts_toserver":2,"pkts_toclient":2,"bytes_toserver":200,"bytes_toclient":200,"start":"2026-11-22T11:11:12.000001+0000"}}`,
}

func allRecords(t *testing.T) []outputs.Record {
	recs := goldenRecords(t)
	for _, l := range extraLines {
		recs = append(recs, record(t, []byte(l)))
	}
	return recs
}

// docLeaves flattens a document to field -> values (arrays spread).
func docLeaves(v any, prefix string, out map[string][]any, flattened map[string]bool) {
	if obj, ok := v.(map[string]any); ok && !flattened[strings.TrimSuffix(prefix, ".")] {
		for k, e := range obj {
			docLeaves(e, prefix+k+".", out, flattened)
		}
		return
	}
	name := strings.TrimSuffix(prefix, ".")
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if _, isObj := e.(map[string]any); isObj {
				docLeaves(e, prefix, out, flattened)
			} else {
				out[name] = append(out[name], e)
			}
		}
		return
	}
	out[name] = append(out[name], v)
}

// TestECSDocumentsAgainstReference: every field of every ECS document made
// from the golden EVE lines (and the extra lines) is mapped by the shipped
// template, exists in ECS (8.17 and 9.4) unless it is under sewatch.*, and
// holds a value of its ECS type; event.kind/category/type use ECS's allowed
// values, and the documents carry what Elastic Security keys on.
func TestECSDocumentsAgainstReference(t *testing.T) {
	refs := ecsReferences(t)
	fields := ecsMappingLeaves(t)
	flattened := map[string]bool{}
	for n, mp := range fields {
		if mp["type"] == "flattened" || mp["dynamic"] == true {
			flattened[n] = true
		}
	}
	seen := map[string]bool{}
	for _, r := range allRecords(t) {
		b, err := ECSDocument(r, Dataset(r), "default", time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		out := map[string][]any{}
		docLeaves(doc, "", out, flattened)
		for name, vals := range out {
			seen[name] = true
			mp, ok := fields[name]
			if !ok {
				t.Errorf("%s: field not in the template's mappings (would be mapped dynamically)", name)
				continue
			}
			typ, _ := mp["type"].(string)
			if !strings.HasPrefix(name, "sewatch.") {
				for ver, ref := range refs {
					f, ok := ref[name]
					if !ok {
						t.Errorf("%s: not an ECS %s field", name, ver)
						continue
					}
					if len(f.AllowedValues) > 0 {
						for _, v := range vals {
							okv := false
							for _, a := range f.AllowedValues {
								okv = okv || a.Name == v
							}
							if !okv {
								t.Errorf("%s = %v: not an allowed value in ECS %s", name, v, ver)
							}
						}
					}
				}
			}
			for _, v := range vals {
				if err := valueOfType(typ, v); err != nil {
					t.Errorf("%s (%s) = %v: %v", name, typ, v, err)
				}
			}
		}
		ev := doc["event"].(map[string]any)
		if ev["original"] != strings.TrimSpace(string(r.JSON)) {
			t.Errorf("event.original is not the EVE line")
		}
		if r.Type == "alert" {
			for _, f := range []string{"rule.id", "rule.name", "source.ip", "destination.ip", "network.community_id", "network.transport",
				"threat.framework", "threat.tactic.id", "threat.technique.id", "observer.product", "event.severity", "event.risk_score", "message"} {
				if len(out[f]) == 0 {
					t.Errorf("alert document lacks %s: %s", f, b)
				}
			}
			if ev["kind"] != "alert" || out["threat.framework"][0] != "MITRE ATT&CK" {
				t.Errorf("alert document: %s", b)
			}
		}
		if ds := doc["data_stream"].(map[string]any); ds["dataset"] != ev["dataset"] {
			t.Errorf("data_stream.dataset %v != event.dataset %v", ds["dataset"], ev["dataset"])
		}
	}
	// The extra lines make these appear; a regression in the mapping code
	// that dropped them would go unnoticed otherwise.
	for _, f := range []string{"tls.client.ja3", "tls.client.server_name", "tls.server.x509.not_after", "tls.server.hash.sha1",
		"sewatch.tls.ja4", "network.vlan.id", "observer.ingress.interface.name", "sewatch.stats", "source.bytes", "event.start", "event.end", "sewatch.flow.alerted", "sewatch.session_flows"} {
		if !seen[f] {
			t.Errorf("no document carried %s", f)
		}
	}
}

func valueOfType(typ string, v any) error {
	_, isStr := v.(string)
	num, isNum := v.(json.Number)
	switch typ {
	case "keyword", "constant_keyword", "match_only_text", "wildcard", "text":
		if !isStr {
			return fmt.Errorf("want a string")
		}
	case "ip":
		if _, err := netip.ParseAddr(fmt.Sprint(v)); !isStr || err != nil {
			return fmt.Errorf("want an IP string")
		}
	case "date":
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v)); !isStr || err != nil {
			return fmt.Errorf("want an RFC 3339 date")
		}
	case "long":
		if _, err := num.Int64(); !isNum || err != nil {
			return fmt.Errorf("want an integer")
		}
	case "float", "scaled_float":
		if _, err := num.Float64(); !isNum || err != nil {
			return fmt.Errorf("want a number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("want a boolean")
		}
	case "flattened", "object":
	default:
		return fmt.Errorf("type %s not expected", typ)
	}
	return nil
}

// TestECSContractServerAcceptsDocuments: with the shipped ILM policy,
// component template and index template installed, the contract server (or
// a real cluster, SEWATCH_ES_URL) accepts every ECS document made from the
// golden lines; each kind lands in its own data stream; Security-style
// queries find them.
func TestECSContractServerAcceptsDocuments(t *testing.T) {
	url, srv := target(t)
	ns := fmt.Sprintf("t%d", time.Now().UnixNano())
	o := open(t, outputs.Spec{Type: "elasticsearch", Arg: url, Options: map[string]any{"namespace": ns, "retention": "30d"}})
	recs := allRecords(t)
	rt := outputs.NewRouter(outputs.Policy{BatchSize: 16}, []outputs.Output{o}, quiet)
	want := map[string]int{}
	for _, r := range recs {
		rt.Send(r)
		want["logs-"+Dataset(r)+"-"+ns]++
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := rt.Stats()[0]; st.Rejected != 0 || int(st.Delivered) != len(recs) {
		t.Fatalf("stats %+v for %d records", st, len(recs))
	}
	if len(want) != len(Datasets) {
		t.Fatalf("datasets %v: want one stream each for %v", want, Datasets)
	}
	for ds, n := range want {
		if got := search(t, o, ds, `{"query":{"match_all":{}}}`).Hits.Total.Value; got != n {
			t.Errorf("%s: %d documents, want %d", ds, got, n)
		}
	}
	alerts := "logs-" + DatasetAlert + "-" + ns
	q := `{"query":{"bool":{"filter":[{"term":{"event.kind":"alert"}},{"term":{"threat.technique.id":"T1572"}},{"term":{"source.ip":"198.18.0.0/15"}}]}}}`
	if got := search(t, o, alerts, q).Hits.Total.Value; got == 0 {
		t.Error("event.kind + threat.technique.id + source.ip CIDR found nothing")
	}
	if got := search(t, o, "logs-"+DatasetOtherVPN+"-"+ns, `{"query":{"term":{"rule.id":"8700101"}}}`).Hits.Total.Value; got != 1 {
		t.Errorf("other-VPN rule.id: %d hits", got)
	}
	if got := search(t, o, alerts, `{"query":{"term":{"rule.id":"8700101"}}}`).Hits.Total.Value; got != 0 {
		t.Errorf("other-VPN alert in the SoftEther stream: %d", got)
	}
	if srv == nil {
		return
	}
	// What the cluster holds: the policy, the component, the template, and
	// each data stream governed by them.
	res, err := o.es.Indices.GetDataStream(o.es.Indices.GetDataStream.WithName(alerts))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var dsr struct {
		DataStreams []struct {
			Template  string `json:"template"`
			ILMPolicy string `json:"ilm_policy"`
		} `json:"data_streams"`
	}
	json.NewDecoder(res.Body).Decode(&dsr)
	if len(dsr.DataStreams) != 1 || dsr.DataStreams[0].Template != "sewatch" || dsr.DataStreams[0].ILMPolicy != "sewatch" {
		t.Errorf("data stream %+v: want template sewatch and ILM policy sewatch", dsr)
	}
	mp := srv.Mappings(alerts)
	if typ := mp["source"].(map[string]any)["properties"].(map[string]any)["ip"].(map[string]any)["type"]; typ != "ip" {
		t.Errorf("source.ip mapped as %v", typ)
	}
	ds := mp["data_stream"].(map[string]any)["properties"].(map[string]any)["dataset"].(map[string]any)
	if ds["type"] != "constant_keyword" || ds["value"] != DatasetAlert {
		t.Errorf("data_stream.dataset mapping %v", ds)
	}
}

// TestLifecycleOptions: retention reaches the ILM policy's delete phase or
// the data stream lifecycle; the contract server refuses what Elasticsearch
// refuses (a lifecycle without a data stream, a bad duration).
func TestLifecycleOptions(t *testing.T) {
	url, srv := target(t)
	needFaults(t, srv)
	for _, tc := range []struct {
		opts map[string]any
		err  string
	}{
		{opts: map[string]any{"lifecycle": "data-stream", "retention": "14d", "namespace": "dsl"}},
		{opts: map[string]any{"retention": "0d"}, err: "retention"},
		{opts: map[string]any{"lifecycle": "forever"}, err: "lifecycle"},
		{opts: map[string]any{"lifecycle": "data-stream", "index": "sewatch-%{+yyyy.MM.dd}"}, err: "needs a data stream"},
		{opts: map[string]any{"format": "json"}, err: "format"},
		{opts: map[string]any{"namespace": "a-b"}, err: "namespace"},
	} {
		_, err := options(outputs.Spec{Type: "elasticsearch", Arg: url, Options: tc.opts})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want %q", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	o := open(t, outputs.Spec{Type: "elasticsearch", Arg: url, Options: map[string]any{"lifecycle": "data-stream", "retention": "14d"}})
	if err := o.Write(context.Background(), allRecords(t)[:1]); err != nil {
		t.Fatal(err)
	}
	tm := srv.Template("sewatch")["template"].(map[string]any)
	if lc := tm["lifecycle"].(map[string]any); lc["data_retention"] != "14d" {
		t.Errorf("lifecycle %v", lc)
	}
	var pol map[string]any
	if err := json.Unmarshal(ILMPolicyBody("30d", true), &pol); err != nil {
		t.Fatal(err)
	}
	phases := pol["policy"].(map[string]any)["phases"].(map[string]any)
	if del := phases["delete"].(map[string]any); del["min_age"] != "30d" || phases["hot"] == nil {
		t.Errorf("ILM phases %v", phases)
	}
	// A dated index has no rollover alias: its policy must not roll over.
	json.Unmarshal(ILMPolicyBody("30d", false), &pol)
	if phases := pol["policy"].(map[string]any)["phases"].(map[string]any); phases["hot"] != nil {
		t.Errorf("dated-index policy rolls over: %v", phases)
	}
	// A lifecycle on a template without data_stream is refused, as by
	// Elasticsearch.
	res, err := o.es.Indices.PutIndexTemplate("bad", strings.NewReader(`{"index_patterns":["bad-*"],"template":{"lifecycle":{"data_retention":"1d"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("lifecycle without data_stream: %s", res.Status())
	}
	res, err = o.es.Indices.PutIndexTemplate("bad2", strings.NewReader(`{"index_patterns":["bad2-*"],"composed_of":["missing@mappings"]}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("missing component template: %s", res.Status())
	}
}

// TestECSMappingsCopyInSchemasIsIdentical keeps schemas/ in step.
func TestECSMappingsCopyInSchemasIsIdentical(t *testing.T) {
	b, err := os.ReadFile("../../schemas/elasticsearch-ecs-mappings.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, ECSMappings) {
		t.Fatal("schemas/elasticsearch-ecs-mappings.json differs from outputs/elasticsearch/ecs-mappings.json (copy the latter over)")
	}
	var names []string
	for n := range ecsMappingLeaves(t) {
		names = append(names, n)
	}
	sort.Strings(names)
	if names[0] != "@timestamp" {
		t.Errorf("first field %s", names[0])
	}
}

// FuzzECSDocument: any line (a corrupt spool segment, a hand-written
// event) gives an error or a JSON document whose event.original is the
// line; never a panic.
func FuzzECSDocument(f *testing.F) {
	for _, l := range extraLines {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"event_type":"alert","alert":{"severity":"x"}}`))
	f.Add([]byte(`{"tls":{"version":"TLS"},"vlan":[1,2,3]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r := outputs.Record{Type: "alert", JSON: line}
		b, err := ECSDocument(r, Dataset(r), "default", time.Unix(0, 0))
		if err != nil {
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("not JSON: %v: %s", err, b)
		}
		if doc["event"].(map[string]any)["original"] != string(bytes.TrimSpace(line)) {
			t.Fatalf("event.original differs")
		}
	})
}

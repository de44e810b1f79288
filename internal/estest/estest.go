// Package estest is an in-process HTTP server that follows the parts of
// Elasticsearch's documented REST contract sewatch relies on, closely enough
// to catch real mistakes in a client:
//
//   - every response carries X-Elastic-Product: Elasticsearch (the Go client
//     refuses a server without it);
//   - GET / answers cluster info (version 8.x);
//   - PUT/GET/DELETE _index_template/{name}: templates are matched by
//     index_patterns, the highest priority wins, no merging between them;
//     a built-in "logs" template (priority 100, logs-*-*, data stream, ECS's
//     host object) is installed like Elasticsearch 8 does, so EVE's string
//     host clashes unless a higher-priority template takes over;
//   - POST [/{index}]/_bulk: NDJSON, positional per-item results, create and
//     index actions; data streams accept only create and need @timestamp;
//     a duplicate _id on create is 409 version_conflict_engine_exception;
//     documents are checked against the mappings (ip, date, long, integer,
//     boolean, keyword, object), a mismatch is 400 mapper_parsing_exception;
//     a field seen first as an object (or a value) keeps that kind;
//   - GET|POST {index}/_search and _count with a query DSL subset
//     (match_all, term, terms, match, bool, exists, range on numbers),
//     where a term on an ip field may be a CIDR; documents are searchable at
//     once (no refresh interval); _refresh is accepted;
//   - DELETE /{index} and /_data_stream/{name}; GET /_data_stream/{name}
//     names the template, ILM policy and data stream lifecycle that apply;
//   - PUT/GET _component_template/{name}: an index template's composed_of
//     must name existing component templates (else 400
//     invalid_index_template_exception); a new index gets the components'
//     mappings in order, then the template's own;
//   - PUT/GET _ilm/policy/{name}: phases must be known, min_age and
//     rollover/delete actions well-formed; a template's lifecycle
//     (data_retention) needs data_stream and a positive duration;
//   - mapping types: constant_keyword (the first value is the value; another
//     one is refused), flattened (any object), match_only_text, keyword
//     with index: false.
//
// Fault knobs: Reject429 answers 429 es_rejected_execution_exception for the
// next N bulk items; SetDown makes every request fail at the connection
// level; RejectRequests answers whole requests with a status.
//
// It is a test double, not a search engine: no analysis beyond lower-case
// whitespace tokens for text fields, no aggregations, no sorting.
package estest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Auth is what the server demands in the Authorization header (all optional;
// any one that matches is accepted).
type Auth struct {
	APIKey             string // "ApiKey <APIKey>" (the base64 id:key form)
	Username, Password string // Basic
	Bearer             string // "Bearer <token>"
}

// Server is the test server.
type Server struct {
	URL string
	srv *httptest.Server

	mu        sync.Mutex
	auth      Auth
	templates map[string]map[string]any
	comps     map[string]map[string]any
	policies  map[string]map[string]any
	indices   map[string]*index
	reject429 int
	down      bool
	rejectReq int // status for whole requests, 0 = off
	seq       int64

	// Counters.
	BulkRequests, BulkItems, Items429, Mapping int
	Requests                                   []string // "METHOD path"
}

type index struct {
	name       string
	dataStream bool
	backing    string
	mappings   map[string]any // "properties" tree
	template   string
	ilmPolicy  string
	lifecycle  any
	dynTmpls   []any
	docs       map[string]map[string]any
	order      []string
}

// Option configures a Server.
type Option func(*Server, *httptest.Server)

// WithAuth demands authentication.
func WithAuth(a Auth) Option { return func(s *Server, _ *httptest.Server) { s.auth = a } }

// WithTLS serves HTTPS with httptest's certificate (see Certificate).
func WithTLS() Option {
	return func(_ *Server, h *httptest.Server) { h.TLS = &tls.Config{} }
}

// New starts a server on 127.0.0.1.
func New(opts ...Option) *Server {
	s := &Server{templates: map[string]map[string]any{}, indices: map[string]*index{},
		comps: map[string]map[string]any{}, policies: map[string]map[string]any{}}
	s.templates["logs"] = builtinLogsTemplate()
	h := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	h.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are test cases
	for _, o := range opts {
		o(s, h)
	}
	if h.TLS != nil {
		h.StartTLS()
	} else {
		h.Start()
	}
	s.srv, s.URL = h, h.URL
	return s
}

// Certificate is the server's TLS certificate (nil without TLS).
func (s *Server) Certificate() []byte {
	if c := s.srv.Certificate(); c != nil {
		return c.Raw
	}
	return nil
}

// Close stops the server.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Reject429 makes the next n bulk items fail with 429.
func (s *Server) Reject429(n int) { s.mu.Lock(); s.reject429 = n; s.mu.Unlock() }

// SetDown makes every request fail at the connection level (true) or
// restores service (false).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
	if down {
		s.srv.CloseClientConnections()
	}
}

// RejectRequests answers every request with status (e.g. 503); 0 restores.
func (s *Server) RejectRequests(status int) { s.mu.Lock(); s.rejectReq = status; s.mu.Unlock() }

// Docs returns the documents of an index or data stream by _id.
func (s *Server) Docs(name string) map[string]map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]any{}
	if ix := s.indices[name]; ix != nil {
		for id, d := range ix.docs {
			out[id] = d
		}
	}
	return out
}

// Stats is a copy of the counters.
func (s *Server) Stats() (bulkRequests, bulkItems, items429, mapping int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.BulkRequests, s.BulkItems, s.Items429, s.Mapping
}

func builtinLogsTemplate() map[string]any {
	var t map[string]any
	// The parts of Elasticsearch 8's built-in "logs" template (logs@mappings,
	// ecs@mappings) that matter here: a data stream, and ECS objects.
	json.Unmarshal([]byte(`{
	  "index_patterns": ["logs-*-*"], "priority": 100, "data_stream": {},
	  "composed_of": ["logs@mappings", "logs@settings", "ecs@mappings"],
	  "_meta": {"managed": true, "description": "default logs template installed by x-pack"},
	  "template": {"mappings": {
	    "dynamic_templates": [{"strings_as_keyword": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}],
	    "properties": {
	      "@timestamp": {"type": "date"},
	      "host": {"type": "object", "properties": {"name": {"type": "keyword"}, "ip": {"type": "ip"}}},
	      "source": {"properties": {"ip": {"type": "ip"}}},
	      "data_stream": {"properties": {"type": {"type": "constant_keyword"}, "dataset": {"type": "constant_keyword"}, "namespace": {"type": "constant_keyword"}}}
	    }}}}`), &t)
	return t
}

type esError struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

func (s *Server) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, status int, typ, reason string) {
	s.reply(w, status, map[string]any{"error": map[string]any{"root_cause": []esError{{typ, reason}}, "type": typ, "reason": reason}, "status": status})
}

func (s *Server) authorized(r *http.Request) bool {
	a := s.auth
	if a == (Auth{}) {
		return true
	}
	// Authentication schemes are case-insensitive (RFC 9110): the Go client
	// sends "APIKey", the documentation writes "ApiKey".
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if a.APIKey != "" && strings.EqualFold(scheme, "ApiKey") && cred == a.APIKey {
		return true
	}
	if a.Bearer != "" && strings.EqualFold(scheme, "Bearer") && cred == a.Bearer {
		return true
	}
	if u, p, ok := r.BasicAuth(); ok && a.Username != "" && u == a.Username && p == a.Password {
		return true
	}
	return false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down, rejectReq := s.down, s.rejectReq
	s.Requests = append(s.Requests, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				if l, ok := c.(interface{ SetLinger(int) error }); ok {
					l.SetLinger(0)
				}
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="security", charset="UTF-8"`)
		s.fail(w, 401, "security_exception", "missing authentication credentials for REST request ["+r.URL.Path+"]")
		return
	}
	if rejectReq != 0 {
		s.fail(w, rejectReq, "es_rejected_execution_exception", "rejected execution (test knob)")
		return
	}
	body, _ := io.ReadAll(r.Body)
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.reply(w, 200, map[string]any{"name": "estest", "cluster_name": "estest", "cluster_uuid": "estest-0",
			"version": map[string]any{"number": "8.19.0", "build_flavor": "default", "lucene_version": "9.12.0",
				"minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0"},
			"tagline": "You Know, for Search"})
	case p[0] == "_component_template" && len(p) == 2:
		s.componentTemplate(w, r.Method, p[1], body)
	case p[0] == "_ilm" && len(p) == 3 && p[1] == "policy":
		s.ilmPolicy(w, r.Method, p[2], body)
	case p[0] == "_index_template" && len(p) == 2:
		s.indexTemplate(w, r.Method, p[1], body)
	case p[0] == "_bulk" && len(p) == 1 && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		s.bulk(w, r, "", body)
	case len(p) == 2 && p[1] == "_bulk" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		s.bulk(w, r, p[0], body)
	case len(p) == 2 && (p[1] == "_search" || p[1] == "_count"):
		s.search(w, r, p[0], p[1] == "_count", body)
	case len(p) == 2 && p[1] == "_refresh":
		s.reply(w, 200, map[string]any{"_shards": map[string]int{"total": 1, "successful": 1, "failed": 0}})
	case len(p) == 2 && p[0] == "_data_stream" && r.Method == http.MethodDelete:
		s.deleteIndex(w, p[1], true)
	case len(p) == 2 && p[0] == "_data_stream" && r.Method == http.MethodGet:
		s.getDataStream(w, p[1])
	case len(p) == 1 && r.Method == http.MethodDelete && !strings.HasPrefix(p[0], "_"):
		s.deleteIndex(w, p[0], false)
	default:
		s.fail(w, 400, "illegal_argument_exception", "no handler found for uri ["+r.URL.Path+"] and method ["+r.Method+"]")
	}
}

func (s *Server) indexTemplate(w http.ResponseWriter, method, name string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch method {
	case http.MethodPut, http.MethodPost:
		var t map[string]any
		if err := json.Unmarshal(body, &t); err != nil {
			s.fail(w, 400, "x_content_parse_exception", err.Error())
			return
		}
		pats, _ := t["index_patterns"].([]any)
		if len(pats) == 0 {
			s.fail(w, 400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
			return
		}
		prio, _ := t["priority"].(float64)
		var missing []string
		comps, _ := t["composed_of"].([]any)
		for _, c := range comps {
			if cs, _ := c.(string); s.comps[cs] == nil {
				missing = append(missing, cs)
			}
		}
		if len(missing) > 0 {
			s.fail(w, 400, "invalid_index_template_exception", fmt.Sprintf("index_template [%s] invalid, cause [index template [%s] specifies component templates %v that do not exist]", name, name, missing))
			return
		}
		if tm, _ := t["template"].(map[string]any); tm != nil && tm["lifecycle"] != nil {
			if _, ok := t["data_stream"]; !ok {
				s.fail(w, 400, "illegal_argument_exception", "index template ["+name+"] specifies lifecycle configuration that can only be used in combination with a data stream")
				return
			}
			lc, _ := tm["lifecycle"].(map[string]any)
			if r, ok := lc["data_retention"]; ok {
				if rs, _ := r.(string); !validDuration(rs) {
					s.fail(w, 400, "illegal_argument_exception", fmt.Sprintf("failed to parse setting [data_retention] with value [%v] as a time value", r))
					return
				}
			}
		}
		for other, ot := range s.templates {
			if other == name {
				continue
			}
			op, _ := ot["priority"].(float64)
			if op == prio && overlaps(pats, ot["index_patterns"]) {
				s.fail(w, 400, "illegal_argument_exception", fmt.Sprintf("index template [%s] has index patterns %v matching patterns from existing templates [%s] with patterns (%s => %v) that have the same priority [%v], multiple index templates may not match during index creation, please use a different priority", name, pats, other, other, ot["index_patterns"], prio))
				return
			}
		}
		s.templates[name] = t
		s.reply(w, 200, map[string]any{"acknowledged": true})
	case http.MethodGet:
		t, ok := s.templates[name]
		if !ok {
			s.fail(w, 404, "resource_not_found_exception", "index template matching ["+name+"] not found")
			return
		}
		s.reply(w, 200, map[string]any{"index_templates": []any{map[string]any{"name": name, "index_template": t}}})
	case http.MethodDelete:
		if _, ok := s.templates[name]; !ok {
			s.fail(w, 404, "resource_not_found_exception", "index_template ["+name+"] missing")
			return
		}
		delete(s.templates, name)
		s.reply(w, 200, map[string]any{"acknowledged": true})
	default:
		s.fail(w, 405, "illegal_argument_exception", "method not allowed")
	}
}

// overlaps is a cheap test: some pattern of a matches a literal-ized pattern of b or the reverse.
func overlaps(a any, b any) bool {
	as, _ := a.([]any)
	bs, _ := b.([]any)
	for _, x := range as {
		for _, y := range bs {
			xs, _ := x.(string)
			ys, _ := y.(string)
			if match(xs, strings.ReplaceAll(ys, "*", "x")) || match(ys, strings.ReplaceAll(xs, "*", "x")) {
				return true
			}
		}
	}
	return false
}

func match(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}

// create makes an index (or data stream) for name from the best template.
func (s *Server) create(name string) *index {
	var best map[string]any
	bestPrio := -1.0
	bestName := ""
	for tn, t := range s.templates {
		pats, _ := t["index_patterns"].([]any)
		for _, p := range pats {
			if ps, _ := p.(string); match(ps, name) {
				if pr, _ := t["priority"].(float64); pr > bestPrio {
					best, bestPrio, bestName = t, pr, tn
				}
			}
		}
	}
	ix := &index{name: name, docs: map[string]map[string]any{}, mappings: map[string]any{}}
	if best != nil {
		_, ix.dataStream = best["data_stream"]
		ix.template = bestName
		// Component templates first, in order, then the template's own
		// section: later ones override earlier ones, field by field.
		var parts []map[string]any
		comps, _ := best["composed_of"].([]any)
		for _, c := range comps {
			if cs, _ := c.(string); s.comps[cs] != nil {
				if tm, ok := s.comps[cs]["template"].(map[string]any); ok {
					parts = append(parts, tm)
				}
			}
		}
		if tm, ok := best["template"].(map[string]any); ok {
			parts = append(parts, tm)
		}
		for _, tm := range parts {
			if m, ok := tm["mappings"].(map[string]any); ok {
				if props, ok := m["properties"].(map[string]any); ok {
					mergeProps(ix.mappings, deepCopy(props).(map[string]any))
				}
				if d, ok := m["dynamic_templates"].([]any); ok {
					ix.dynTmpls = append(ix.dynTmpls, d...)
				}
			}
			if st, ok := tm["settings"].(map[string]any); ok {
				if n := lifecycleName(st); n != "" {
					ix.ilmPolicy = n
				}
			}
			if lc, ok := tm["lifecycle"]; ok {
				ix.lifecycle = lc
			}
		}
	}
	ix.backing = name
	if ix.dataStream {
		ix.backing = fmt.Sprintf(".ds-%s-%s-000001", name, time.Now().UTC().Format("2006.01.02"))
	}
	s.indices[name] = ix
	return ix
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

func (s *Server) deleteIndex(w http.ResponseWriter, name string, ds bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix, ok := s.indices[name]
	if !ok || ix.dataStream != ds {
		typ := "index_not_found_exception"
		if ds {
			typ = "resource_not_found_exception"
		}
		s.fail(w, 404, typ, "no such index ["+name+"]")
		return
	}
	delete(s.indices, name)
	s.reply(w, 200, map[string]any{"acknowledged": true})
}

func (s *Server) getDataStream(w http.ResponseWriter, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix, ok := s.indices[name]
	if !ok || !ix.dataStream {
		s.fail(w, 404, "index_not_found_exception", "no such index ["+name+"]")
		return
	}
	ds := map[string]any{"name": name, "template": ix.template,
		"timestamp_field": map[string]any{"name": "@timestamp"},
		"indices":         []any{map[string]any{"index_name": ix.backing}}, "generation": 1, "status": "GREEN"}
	if ix.ilmPolicy != "" {
		ds["ilm_policy"] = ix.ilmPolicy
	}
	if ix.lifecycle != nil {
		ds["lifecycle"] = ix.lifecycle
	}
	s.reply(w, 200, map[string]any{"data_streams": []any{ds}})
}

func (s *Server) bulk(w http.ResponseWriter, r *http.Request, defIndex string, body []byte) {
	if ct := r.Header.Get("Content-Type"); !strings.Contains(ct, "json") {
		s.fail(w, 406, "media_type_header_exception", "Content-Type header ["+ct+"] is not supported")
		return
	}
	start := time.Now()
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 100<<20)
	var items []any
	hasErr := false
	s.mu.Lock()
	defer s.mu.Unlock()
	s.BulkRequests++
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var action map[string]map[string]any
		if err := json.Unmarshal(line, &action); err != nil || len(action) != 1 {
			s.fail(w, 400, "illegal_argument_exception", "Malformed action/metadata line ["+strconv.Itoa(len(items)+1)+"], expected START_OBJECT or END_OBJECT")
			return
		}
		var op string
		var meta map[string]any
		for k, v := range action {
			op, meta = k, v
		}
		if op != "create" && op != "index" {
			s.fail(w, 400, "illegal_argument_exception", "Malformed action/metadata line, expected one of [create, index] (this server supports no other)")
			return
		}
		if !sc.Scan() {
			s.fail(w, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
			return
		}
		src := append([]byte(nil), sc.Bytes()...)
		s.BulkItems++
		res := s.item(op, meta, defIndex, src)
		if st, _ := res["status"].(int); st >= 300 {
			hasErr = true
		}
		items = append(items, map[string]any{op: res})
	}
	if len(body) > 0 && body[len(body)-1] != '\n' {
		s.fail(w, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
		return
	}
	if len(items) == 0 {
		s.fail(w, 400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
		return
	}
	s.reply(w, 200, map[string]any{"took": time.Since(start).Milliseconds(), "errors": hasErr, "items": items})
}

func itemErr(idx, id string, status int, typ, reason string) map[string]any {
	return map[string]any{"_index": idx, "_id": id, "status": status, "error": map[string]any{"type": typ, "reason": reason}}
}

// item applies one bulk action (called with s.mu held).
func (s *Server) item(op string, meta map[string]any, defIndex string, src []byte) map[string]any {
	name, _ := meta["_index"].(string)
	if name == "" {
		name = defIndex
	}
	id, _ := meta["_id"].(string)
	if name == "" {
		return itemErr("", id, 400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
	}
	if s.reject429 > 0 {
		s.reject429--
		s.Items429++
		return itemErr(name, id, 429, "es_rejected_execution_exception",
			"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=0]")
	}
	ix := s.indices[name]
	if ix == nil {
		ix = s.create(name)
	}
	if ix.dataStream && op != "create" {
		return itemErr(ix.backing, id, 400, "illegal_argument_exception",
			"only write ops with an op_type of create are allowed in data streams")
	}
	if id == "" {
		s.seq++
		id = fmt.Sprintf("auto%016x", s.seq)
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		s.Mapping++
		return itemErr(ix.backing, id, 400, "mapper_parsing_exception", "failed to parse: "+err.Error())
	}
	if ix.dataStream {
		if _, ok := doc["@timestamp"]; !ok {
			s.Mapping++
			return itemErr(ix.backing, id, 400, "mapper_parsing_exception", "failed to parse: data stream timestamp field [@timestamp] is missing")
		}
	}
	if _, exists := ix.docs[id]; exists && op == "create" {
		return itemErr(ix.backing, id, 409, "version_conflict_engine_exception",
			fmt.Sprintf("[%s]: version conflict, document already exists (current version [1])", id))
	}
	// Map against a scratch copy so a failed document leaves no new fields.
	scratch := deepCopy(ix.mappings).(map[string]any)
	if err := ix.check(scratch, "", doc, id); err != nil {
		s.Mapping++
		return itemErr(ix.backing, id, 400, "mapper_parsing_exception", err.Error())
	}
	ix.mappings = scratch
	result, status := "created", 201
	if _, exists := ix.docs[id]; exists {
		result, status = "updated", 200
	} else {
		ix.order = append(ix.order, id)
	}
	ix.docs[id] = doc
	return map[string]any{"_index": ix.backing, "_id": id, "_version": 1, "result": result, "status": status,
		"_shards": map[string]int{"total": 1, "successful": 1, "failed": 0}, "_seq_no": len(ix.order) - 1, "_primary_term": 1}
}

// check validates doc against props (mapping "properties"), adding dynamic
// mappings for new fields like Elasticsearch does.
func (ix *index) check(props map[string]any, prefix string, doc map[string]any, id string) error {
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := doc[k]
		full := prefix + k
		m, _ := props[k].(map[string]any)
		if m == nil {
			m = ix.dynamic(v)
			props[k] = m
		}
		if err := ix.checkValue(m, full, v, id); err != nil {
			return err
		}
	}
	return nil
}

func (ix *index) dynamic(v any) map[string]any {
	switch x := v.(type) {
	case map[string]any:
		return map[string]any{"properties": map[string]any{}}
	case []any:
		for _, e := range x {
			if e != nil {
				return ix.dynamic(e)
			}
		}
		return map[string]any{"type": "keyword"}
	case string:
		for _, t := range ix.dynTmpls {
			for _, body := range t.(map[string]any) {
				b := body.(map[string]any)
				if b["match_mapping_type"] == "string" {
					return deepCopy(b["mapping"]).(map[string]any)
				}
			}
		}
		return map[string]any{"type": "text", "fields": map[string]any{"keyword": map[string]any{"type": "keyword", "ignore_above": 256.0}}}
	case json.Number:
		if strings.ContainsAny(x.String(), ".eE") {
			return map[string]any{"type": "float"}
		}
		return map[string]any{"type": "long"}
	case bool:
		return map[string]any{"type": "boolean"}
	}
	return map[string]any{"type": "keyword"}
}

func preview(v any) string {
	b, _ := json.Marshal(v)
	s := strings.Trim(string(b), `"`)
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}

func (ix *index) checkValue(m map[string]any, field string, v any, id string) error {
	if v == nil {
		return nil
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if err := ix.checkValue(m, field, e, id); err != nil {
				return err
			}
		}
		return nil
	}
	typ, _ := m["type"].(string)
	if typ == "flattened" {
		return nil // any object or value: its leaves are keywords
	}
	props, isObj := m["properties"].(map[string]any)
	if typ == "object" || (typ == "" && (isObj || m["dynamic"] != nil)) {
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("object mapping for [%s] tried to parse field [%s] as object, but found a concrete value", field, field)
		}
		if props == nil {
			props = map[string]any{}
			m["properties"] = props
		}
		return ix.check(props, field+".", obj, id)
	}
	if _, ok := v.(map[string]any); ok {
		return fmt.Errorf("failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'", field, typ, id, preview(v))
	}
	bad := func() error {
		return fmt.Errorf("failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'", field, typ, id, preview(v))
	}
	switch typ {
	case "constant_keyword":
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if have, set := m["value"].(string); set && have != s {
			return fmt.Errorf("[constant_keyword] field [%s] only accepts values that are equal to the value defined in the mappings [%s], but got [%s]", field, have, s)
		}
		m["value"] = s
	case "match_only_text", "text", "wildcard":
		if _, ok := v.(string); !ok {
			return bad()
		}
	case "ip":
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if _, err := netip.ParseAddr(s); err != nil {
			return bad()
		}
	case "date":
		switch x := v.(type) {
		case string:
			if _, ok := parseDate(x); !ok {
				return bad()
			}
		case json.Number:
		default:
			return bad()
		}
	case "long", "integer", "short", "byte":
		switch x := v.(type) {
		case json.Number:
			f, err := x.Float64()
			if err != nil || f != math.Trunc(f) {
				return bad()
			}
			if typ == "integer" && (f > math.MaxInt32 || f < math.MinInt32) {
				return bad()
			}
		case string:
			if _, err := strconv.ParseInt(x, 10, 64); err != nil {
				return bad()
			}
		default:
			return bad()
		}
	case "float", "double", "scaled_float":
		switch x := v.(type) {
		case json.Number:
		case string:
			if _, err := strconv.ParseFloat(x, 64); err != nil {
				return bad()
			}
		default:
			return bad()
		}
	case "boolean":
		switch x := v.(type) {
		case bool:
		case string:
			if x != "true" && x != "false" && x != "" {
				return bad()
			}
		default:
			return bad()
		}
	}
	return nil
}

var dateLayouts = []string{
	"2006-01-02T15:04:05.000000-0700", // EVE
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999-0700",
	"2006-01-02T15:04:05",
	"2006-01-02",
}

func parseDate(s string) (time.Time, bool) {
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// resolve expands an index expression (comma list, wildcards) to indices.
func (s *Server) resolve(expr string) ([]*index, bool) {
	var out []*index
	for _, part := range strings.Split(expr, ",") {
		if part == "_all" || part == "*" {
			part = "*"
		}
		if !strings.Contains(part, "*") {
			ix, ok := s.indices[part]
			if !ok {
				return nil, false
			}
			out = append(out, ix)
			continue
		}
		for name, ix := range s.indices {
			if match(part, name) && !strings.HasPrefix(name, ".") {
				out = append(out, ix)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, true
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, expr string, count bool, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ixs, ok := s.resolve(expr)
	if !ok {
		s.fail(w, 404, "index_not_found_exception", "no such index ["+expr+"]")
		return
	}
	var req struct {
		Query map[string]any `json:"query"`
		Size  *int           `json:"size"`
		From  int            `json:"from"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&req); err != nil {
			s.fail(w, 400, "x_content_parse_exception", err.Error())
			return
		}
	}
	size := 10
	if req.Size != nil {
		size = *req.Size
	}
	if v := r.URL.Query().Get("size"); v != "" {
		size, _ = strconv.Atoi(v)
	}
	var hits []any
	total := 0
	for _, ix := range ixs {
		for _, id := range ix.order {
			doc := ix.docs[id]
			ok, err := ix.matches(req.Query, doc)
			if err != nil {
				s.fail(w, 400, "query_shard_exception", err.Error())
				return
			}
			if !ok {
				continue
			}
			total++
			if total > req.From && len(hits) < size {
				hits = append(hits, map[string]any{"_index": ix.backing, "_id": id, "_score": 1.0, "_source": doc})
			}
		}
	}
	if count {
		s.reply(w, 200, map[string]any{"count": total, "_shards": map[string]int{"total": 1, "successful": 1, "skipped": 0, "failed": 0}})
		return
	}
	if hits == nil {
		hits = []any{}
	}
	s.reply(w, 200, map[string]any{"took": 1, "timed_out": false,
		"_shards": map[string]int{"total": 1, "successful": 1, "skipped": 0, "failed": 0},
		"hits":    map[string]any{"total": map[string]any{"value": total, "relation": "eq"}, "max_score": 1.0, "hits": hits}})
}

// fieldType looks up the mapped type of a dotted field ("" if unmapped).
func (ix *index) fieldType(field string) string {
	props := ix.mappings
	parts := strings.Split(field, ".")
	for i, p := range parts {
		m, _ := props[p].(map[string]any)
		if m == nil {
			return ""
		}
		if i == len(parts)-1 {
			t, _ := m["type"].(string)
			return t
		}
		if f, ok := m["fields"].(map[string]any); ok && i == len(parts)-2 {
			if sub, ok := f[parts[i+1]].(map[string]any); ok {
				t, _ := sub["type"].(string)
				return t
			}
		}
		props, _ = m["properties"].(map[string]any)
	}
	return ""
}

// values returns the values at a dotted path (arrays flattened); a
// multi-field (signature.text) resolves to its parent's value.
func values(doc map[string]any, field string) []any {
	var cur []any = []any{doc}
	for _, p := range strings.Split(field, ".") {
		var next []any
		for _, c := range cur {
			m, ok := c.(map[string]any)
			if !ok {
				next = append(next, c) // multi-field: stay on the value
				continue
			}
			v, ok := m[p]
			if !ok {
				continue
			}
			if arr, ok := v.([]any); ok {
				next = append(next, arr...)
			} else {
				next = append(next, v)
			}
		}
		cur = next
	}
	var out []any
	for _, c := range cur {
		if _, isObj := c.(map[string]any); !isObj && c != nil {
			out = append(out, c)
		}
	}
	return out
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (ix *index) eq(typ string, have any, want any) (bool, error) {
	hs, ws := str(have), str(want)
	switch typ {
	case "ip":
		if strings.Contains(ws, "/") {
			pfx, err := netip.ParsePrefix(ws)
			if err != nil {
				return false, fmt.Errorf("failed to create query: '%s' is not an IP string literal", ws)
			}
			a, err := netip.ParseAddr(hs)
			return err == nil && pfx.Contains(a), nil
		}
		a, err1 := netip.ParseAddr(hs)
		b, err2 := netip.ParseAddr(ws)
		if err2 != nil {
			return false, fmt.Errorf("failed to create query: '%s' is not an IP string literal", ws)
		}
		return err1 == nil && a == b, nil
	case "long", "integer", "short", "byte", "float", "double":
		a, err1 := strconv.ParseFloat(hs, 64)
		b, err2 := strconv.ParseFloat(ws, 64)
		if err2 != nil {
			return false, fmt.Errorf("failed to create query: For input string: \"%s\"", ws)
		}
		return err1 == nil && a == b, nil
	case "text":
		for _, tok := range strings.Fields(strings.ToLower(hs)) {
			if strings.Trim(tok, ".,;:()[]\"'") == strings.ToLower(ws) {
				return true, nil
			}
		}
		return false, nil
	}
	return hs == ws, nil
}

func (ix *index) anyEq(doc map[string]any, field string, want any, analyzed bool) (bool, error) {
	typ := ix.fieldType(field)
	wants := []any{want}
	if analyzed && typ == "text" {
		wants = nil
		for _, tok := range strings.Fields(str(want)) {
			wants = append(wants, tok)
		}
	}
	for _, v := range values(doc, field) {
		for _, w := range wants {
			ok, err := ix.eq(typ, v, w)
			if err != nil || ok {
				return ok, err
			}
		}
	}
	return false, nil
}

func single(q any) (string, any, bool) {
	m, ok := q.(map[string]any)
	if !ok || len(m) != 1 {
		return "", nil, false
	}
	for k, v := range m {
		return k, v, true
	}
	return "", nil, false
}

func (ix *index) matches(q map[string]any, doc map[string]any) (bool, error) {
	if len(q) == 0 {
		return true, nil
	}
	kind, body, ok := single(q)
	if !ok {
		return false, fmt.Errorf("[_na] query malformed, must start with start_object")
	}
	switch kind {
	case "match_all":
		return true, nil
	case "term", "match", "match_phrase":
		field, v, ok := single(body)
		if !ok {
			return false, fmt.Errorf("[%s] query doesn't support multiple fields", kind)
		}
		if m, ok := v.(map[string]any); ok {
			if x, ok := m["value"]; ok {
				v = x
			} else if x, ok := m["query"]; ok {
				v = x
			}
		}
		return ix.anyEq(doc, field, v, kind != "term")
	case "terms":
		field, v, ok := single(body)
		list, _ := v.([]any)
		if !ok {
			return false, fmt.Errorf("[terms] query malformed")
		}
		for _, w := range list {
			if ok, err := ix.anyEq(doc, field, w, false); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case "exists":
		m, _ := body.(map[string]any)
		f, _ := m["field"].(string)
		return len(values(doc, f)) > 0, nil
	case "range":
		field, v, ok := single(body)
		m, _ := v.(map[string]any)
		if !ok || m == nil {
			return false, fmt.Errorf("[range] query malformed")
		}
		for _, hv := range values(doc, field) {
			h, err := strconv.ParseFloat(str(hv), 64)
			if err != nil {
				if t, ok := parseDate(str(hv)); ok {
					h = float64(t.UnixMilli())
				} else {
					continue
				}
			}
			in := true
			for op, lim := range m {
				l, err := strconv.ParseFloat(str(lim), 64)
				if err != nil {
					t, ok := parseDate(str(lim))
					if !ok {
						return false, fmt.Errorf("failed to parse range bound [%s]", str(lim))
					}
					l = float64(t.UnixMilli())
				}
				switch op {
				case "gte":
					in = in && h >= l
				case "gt":
					in = in && h > l
				case "lte":
					in = in && h <= l
				case "lt":
					in = in && h < l
				}
			}
			if in {
				return true, nil
			}
		}
		return false, nil
	case "bool":
		m, _ := body.(map[string]any)
		list := func(k string) []map[string]any {
			var out []map[string]any
			switch x := m[k].(type) {
			case map[string]any:
				out = append(out, x)
			case []any:
				for _, e := range x {
					if em, ok := e.(map[string]any); ok {
						out = append(out, em)
					}
				}
			}
			return out
		}
		for _, k := range []string{"must", "filter"} {
			for _, sub := range list(k) {
				if ok, err := ix.matches(sub, doc); err != nil || !ok {
					return false, err
				}
			}
		}
		for _, sub := range list("must_not") {
			if ok, err := ix.matches(sub, doc); err != nil || ok {
				return false, err
			}
		}
		if should := list("should"); len(should) > 0 && len(list("must"))+len(list("filter")) == 0 {
			for _, sub := range should {
				if ok, err := ix.matches(sub, doc); err != nil || ok {
					return ok, err
				}
			}
			return false, nil
		}
		return true, nil
	}
	return false, fmt.Errorf("unknown query [%s] (not supported by this test server)", kind)
}

// Listener-level helper for tests that need the address.
func (s *Server) Addr() net.Addr { return s.srv.Listener.Addr() }

// mergeProps overlays src's field mappings on dst (objects merged field by
// field, a leaf replaced), as Elasticsearch composes templates.
func mergeProps(dst, src map[string]any) {
	for k, v := range src {
		sv, _ := v.(map[string]any)
		dv, _ := dst[k].(map[string]any)
		sp, sok := sv["properties"].(map[string]any)
		dp, dok := dv["properties"].(map[string]any)
		if sok && dok {
			mergeProps(dp, sp)
			continue
		}
		dst[k] = v
	}
}

// lifecycleName reads index.lifecycle.name from settings in either the
// nested or the dotted form.
func lifecycleName(st map[string]any) string {
	if n, ok := st["index.lifecycle.name"].(string); ok {
		return n
	}
	idx, _ := st["index"].(map[string]any)
	if n, ok := idx["lifecycle.name"].(string); ok {
		return n
	}
	lc, _ := idx["lifecycle"].(map[string]any)
	n, _ := lc["name"].(string)
	return n
}

// validDuration is Elasticsearch's time value: a positive number and a unit.
func validDuration(s string) bool {
	for _, u := range []string{"nanos", "micros", "ms", "s", "m", "h", "d"} {
		if n, ok := strings.CutSuffix(s, u); ok {
			if v, err := strconv.ParseInt(n, 10, 64); err == nil && v >= 0 {
				return true
			}
		}
	}
	return false
}

func (s *Server) componentTemplate(w http.ResponseWriter, method, name string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch method {
	case http.MethodPut, http.MethodPost:
		var t map[string]any
		if err := json.Unmarshal(body, &t); err != nil {
			s.fail(w, 400, "x_content_parse_exception", err.Error())
			return
		}
		if _, ok := t["template"].(map[string]any); !ok {
			s.fail(w, 400, "action_request_validation_exception", "Validation Failed: 1: template is missing;")
			return
		}
		s.comps[name] = t
		s.reply(w, 200, map[string]any{"acknowledged": true})
	case http.MethodGet:
		t, ok := s.comps[name]
		if !ok {
			s.fail(w, 404, "resource_not_found_exception", "component template matching ["+name+"] not found")
			return
		}
		s.reply(w, 200, map[string]any{"component_templates": []any{map[string]any{"name": name, "component_template": t}}})
	default:
		s.fail(w, 405, "illegal_argument_exception", "method not allowed")
	}
}

var ilmActions = map[string]map[string]bool{
	"hot":    {"rollover": true, "set_priority": true, "forcemerge": true, "readonly": true, "shrink": true, "unfollow": true, "downsample": true},
	"warm":   {"allocate": true, "forcemerge": true, "migrate": true, "readonly": true, "set_priority": true, "shrink": true, "unfollow": true, "downsample": true},
	"cold":   {"allocate": true, "migrate": true, "readonly": true, "searchable_snapshot": true, "set_priority": true, "unfollow": true, "downsample": true},
	"frozen": {"searchable_snapshot": true, "unfollow": true},
	"delete": {"delete": true, "wait_for_snapshot": true},
}

func (s *Server) ilmPolicy(w http.ResponseWriter, method, name string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch method {
	case http.MethodPut:
		var p struct {
			Policy *struct {
				Phases map[string]struct {
					MinAge  *string                   `json:"min_age"`
					Actions map[string]map[string]any `json:"actions"`
				} `json:"phases"`
				Meta map[string]any `json:"_meta"`
			} `json:"policy"`
		}
		if err := json.Unmarshal(body, &p); err != nil || p.Policy == nil {
			s.fail(w, 400, "x_content_parse_exception", "[put_lifecycle_request] policy is missing or malformed")
			return
		}
		for ph, def := range p.Policy.Phases {
			allowed, ok := ilmActions[ph]
			if !ok {
				s.fail(w, 400, "illegal_argument_exception", "Timeseries lifecycle does not support phase ["+ph+"]")
				return
			}
			if def.MinAge != nil && !validDuration(*def.MinAge) {
				s.fail(w, 400, "illegal_argument_exception", "failed to parse setting [min_age] with value ["+*def.MinAge+"] as a time value")
				return
			}
			for a, cfg := range def.Actions {
				if !allowed[a] {
					s.fail(w, 400, "illegal_argument_exception", "invalid action ["+a+"] defined in phase ["+ph+"]")
					return
				}
				if a == "rollover" && len(cfg) == 0 {
					s.fail(w, 400, "illegal_argument_exception", "at least one max_* rollover condition must be set")
					return
				}
			}
		}
		var raw map[string]any
		json.Unmarshal(body, &raw)
		s.policies[name] = raw
		s.reply(w, 200, map[string]any{"acknowledged": true})
	case http.MethodGet:
		p, ok := s.policies[name]
		if !ok {
			s.fail(w, 404, "resource_not_found_exception", "Lifecycle policy not found: "+name)
			return
		}
		s.reply(w, 200, map[string]any{name: map[string]any{"version": 1, "policy": p["policy"]}})
	default:
		s.fail(w, 405, "illegal_argument_exception", "method not allowed")
	}
}

// Template returns an installed index template (nil if none).
func (s *Server) Template(name string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.templates[name]
}

// Mappings returns the field mappings ("properties" tree) of an index or
// data stream as they stand after the documents written so far.
func (s *Server) Mappings(name string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ix := s.indices[name]; ix != nil {
		return deepCopy(ix.mappings).(map[string]any)
	}
	return nil
}

// Package elasticsearch indexes EVE events into Elasticsearch with the bulk
// API (go-elasticsearch/v8).
//
// Documents are ECS documents made from the EVE line (format ecs, default;
// see ecs.go) or the EVE line with "@timestamp" put in front (format eve).
// Targets are data streams of Elastic's type-dataset-namespace scheme, one
// per kind of event (logs-sewatch.alert-NS, logs-sewatch.othervpn-NS,
// logs-sewatch.flow-NS, logs-sewatch.stats-NS), one data stream of another name, or a dated index
// pattern (index: "sewatch-%{+yyyy.MM.dd}", dated by event time). Every
// action is "create" with _id = the record's stable id, so a re-delivered
// event is answered 409 version_conflict and counted as delivered:
// at-least-once delivery never duplicates a document.
//
// Per-item results are read by position: 429 and 5xx items are retried with
// back-off (a few times inside Write, then the router retries the batch and
// spools it while the cluster is unavailable); other item errors (mapping
// errors) are permanent: logged once per cause, counted (Rejected) and not
// retried. The client's own transport retries 429/502/503/504 on whole
// requests.
//
// At start-up the ILM policy, the ECS component template and the index
// template are installed (skipped when the installed template carries the
// same digest; see templates.go for why priority 500 and explicit mappings).
package elasticsearch

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	es8 "github.com/elastic/go-elasticsearch/v8"

	"github.com/sewatch/sewatch/outputs"
)

// Template is the index template of the EVE format (canonical copy;
// schemas/ holds the same file).
//
//go:embed index-template.json
var Template []byte

// ECSMappings is the component template of the ECS format: the ECS mappings
// of every field sewatch writes, and sewatch's own fields under sewatch.*
// (canonical copy; schemas/ holds the same file).
//
//go:embed ecs-mappings.json
var ECSMappings []byte

// ECSMappingsName is the component template's name.
const ECSMappingsName = "sewatch-ecs@mappings"

// TemplateVersion is _meta.sewatch_template_version of Template.
const TemplateVersion = 1

// DefaultDataStream is the default target.
const DefaultDataStream = "logs-sewatch.alert-default"

func init() { outputs.Register("elasticsearch", opener{}) }

// Options are the Elasticsearch output's settings in the config file. The
// command line form `-o elasticsearch:http(s)://HOST:PORT[/DATA_STREAM]`
// sets Addresses and DataStream.
type Options struct {
	Addresses []string `yaml:"addresses"`
	// DataStream is the data stream to write to (default logs-sewatch.alert-default).
	DataStream string `yaml:"data-stream"`
	// Index, instead of a data stream, is a dated index pattern such as
	// "sewatch-%{+yyyy.MM.dd}" (tokens yyyy, MM, dd, HH; event time, UTC).
	Index string `yaml:"index"`
	// Template settings.
	TemplateName    string `yaml:"template-name"`    // default "sewatch"
	TemplateInstall *bool  `yaml:"template-install"` // default true
	// Authentication: one of api-key, username/password, bearer-token.
	APIKey       string `yaml:"api-key"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password-file"`
	BearerToken  string `yaml:"bearer-token"`
	TLS          *TLS   `yaml:"tls"`
	// ItemRetries is how often 429/5xx items are retried inside one Write
	// before the router takes over (default 3), starting at RetryBackoff
	// (default 200ms) and doubling.
	ItemRetries  int           `yaml:"item-retries"`
	RetryBackoff time.Duration `yaml:"retry-backoff"`
	// Timeout bounds one bulk request (default 30s).
	Timeout time.Duration `yaml:"timeout"`
	// CompatibilityMode sends the compatible-with=8 headers (for Elasticsearch 9).
	CompatibilityMode bool `yaml:"compatibility-mode"`
	// Format is "ecs" (default: ECS documents for Elastic Security) or
	// "eve" (the EVE line as it is, plus @timestamp).
	Format string `yaml:"format"`
	// Namespace is the data streams' namespace (default "default"): alerts
	// go to logs-sewatch.alert-NS, other-VPN alerts to
	// logs-sewatch.othervpn-NS, stats to logs-sewatch.stats-NS.
	Namespace string `yaml:"namespace"`
	// Lifecycle is "ilm" (default: an ILM policy that rolls over and deletes
	// after Retention), "data-stream" (the data stream lifecycle,
	// Elasticsearch 8.14+ and serverless) or "none".
	Lifecycle string `yaml:"lifecycle"`
	// Retention is how long documents are kept (default 90d; d, h or m).
	Retention string `yaml:"retention"`
	// ILMPolicy is the ILM policy's name (default "sewatch").
	ILMPolicy string `yaml:"ilm-policy"`

	// routed: one data stream per dataset in Namespace (set by options).
	routed bool
}

// TLS configures HTTPS.
type TLS struct {
	CAFile string `yaml:"ca-file"`
	// Fingerprint is the SHA-256 (hex, colons allowed) of a certificate in
	// the server's chain, as Elasticsearch prints at first start.
	Fingerprint        string `yaml:"fingerprint"`
	CertFile           string `yaml:"cert-file"`
	KeyFile            string `yaml:"key-file"`
	InsecureSkipVerify bool   `yaml:"insecure-skip-verify"`
}

type opener struct{}

// ParseArg splits the `-o elasticsearch:` argument http(s)://HOST:PORT[/DATA_STREAM].
func ParseArg(arg string) (address, dataStream string, err error) {
	u, err := url.Parse(arg)
	if err != nil || !httpURL(u) {
		return "", "", fmt.Errorf("elasticsearch output %q: want http(s)://HOST:PORT[/DATA_STREAM]", arg)
	}
	ds := strings.Trim(u.Path, "/")
	if strings.Contains(ds, "/") {
		return "", "", fmt.Errorf("elasticsearch output %q: the path is one data stream name", arg)
	}
	u.Path, u.RawPath = "", ""
	return u.String(), ds, nil
}

// httpURL: an http or https URL with a host.
func httpURL(u *url.URL) bool { return (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" }

// checkAddress checks one of the config's addresses, http(s)://HOST:PORT
// with an optional path: the cluster's API behind a reverse proxy at a path,
// or a bulk-compatible ingest endpoint such as VictoriaLogs'
// /insert/elasticsearch. The client puts the path before every API path,
// so a trailing slash would double: it is dropped.
func checkAddress(a string) (string, error) {
	u, err := url.Parse(a)
	if err != nil || !httpURL(u) || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("elasticsearch output: address %q: want http(s)://HOST:PORT[/PATH]", a)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

var (
	dsName    = regexp.MustCompile(`^[a-z0-9][a-z0-9._+-]*$`)
	dateToken = regexp.MustCompile(`%\{\+[^}]*\}`)
	// ownStream is a data stream name of sewatch's scheme; its namespace
	// routes every dataset.
	ownStream = regexp.MustCompile(`^logs-sewatch\.(alert|othervpn|flow|stats)-([a-z0-9][a-z0-9._+]*)$`)
	nsName    = regexp.MustCompile(`^[a-z0-9][a-z0-9._+]*$`)
	retention = regexp.MustCompile(`^[1-9][0-9]*[dhm]$`)
)

func options(s outputs.Spec) (Options, error) {
	var o Options
	if err := outputs.DecodeOptions(s, &o); err != nil {
		return o, err
	}
	if s.Arg != "" {
		a, ds, err := ParseArg(s.Arg)
		if err != nil {
			return o, err
		}
		o.Addresses = []string{a}
		if ds != "" {
			o.DataStream, o.Index = ds, ""
		}
	}
	if len(o.Addresses) == 0 {
		return o, errors.New("elasticsearch output needs an address (-o elasticsearch:http://HOST:9200 or addresses: in the config)")
	}
	for i, a := range o.Addresses {
		n, err := checkAddress(a)
		if err != nil {
			return o, err
		}
		o.Addresses[i] = n
	}
	if o.DataStream != "" && o.Index != "" {
		return o, errors.New("elasticsearch output: data-stream and index exclude each other")
	}
	switch o.Format {
	case "":
		o.Format = FormatECS
	case FormatECS, FormatEVE:
	default:
		return o, fmt.Errorf("elasticsearch output: format %q (want ecs or eve)", o.Format)
	}
	if o.Namespace != "" && !nsName.MatchString(o.Namespace) {
		return o, fmt.Errorf("elasticsearch output: namespace %q (lower case letters, digits, . _ +; no -)", o.Namespace)
	}
	if m := ownStream.FindStringSubmatch(o.DataStream); m != nil {
		if o.Namespace != "" && o.Namespace != m[2] {
			return o, fmt.Errorf("elasticsearch output: data stream %s and namespace %s disagree", o.DataStream, o.Namespace)
		}
		o.Namespace = m[2]
	}
	if o.Index == "" && (o.DataStream == "" || ownStream.MatchString(o.DataStream)) {
		if o.Namespace == "" {
			o.Namespace = "default"
		}
		o.routed = true
		o.DataStream = "logs-" + DatasetAlert + "-" + o.Namespace
	}
	switch o.Lifecycle {
	case "":
		o.Lifecycle = "ilm"
	case "ilm", "data-stream", "none":
	default:
		return o, fmt.Errorf("elasticsearch output: lifecycle %q (want ilm, data-stream or none)", o.Lifecycle)
	}
	if o.Retention == "" {
		o.Retention = "90d"
	}
	if !retention.MatchString(o.Retention) {
		return o, fmt.Errorf("elasticsearch output: retention %q (a number and d, h or m, e.g. 90d)", o.Retention)
	}
	if o.Lifecycle == "data-stream" && o.Index != "" {
		return o, errors.New("elasticsearch output: lifecycle data-stream needs a data stream, not index")
	}
	if o.ILMPolicy == "" {
		o.ILMPolicy = "sewatch"
	}
	if o.DataStream != "" && !dsName.MatchString(o.DataStream) {
		return o, fmt.Errorf("elasticsearch output: data stream name %q (lower case, no spaces or /\\*?\"<>|,#:)", o.DataStream)
	}
	if o.Index != "" && !dsName.MatchString(dateToken.ReplaceAllString(o.Index, "d")) {
		return o, fmt.Errorf("elasticsearch output: index pattern %q", o.Index)
	}
	if o.TemplateName == "" {
		o.TemplateName = "sewatch"
	}
	n := 0
	for _, set := range []bool{o.APIKey != "", o.Username != "", o.BearerToken != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return o, errors.New("elasticsearch output: use one of api-key, username/password, bearer-token")
	}
	if o.Username != "" && (o.Password == "") == (o.PasswordFile == "") {
		return o, errors.New("elasticsearch output: username needs one of password, password-file")
	}
	if t := o.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			return o, errors.New("elasticsearch output: tls cert-file and key-file go together")
		}
		if fp := normFingerprint(t.Fingerprint); t.Fingerprint != "" && len(fp) != 64 {
			return o, errors.New("elasticsearch output: tls fingerprint must be a SHA-256 in hex")
		}
	}
	if o.ItemRetries < 0 || o.RetryBackoff < 0 || o.Timeout < 0 {
		return o, errors.New("elasticsearch output: retry and timeout settings must not be negative")
	}
	if o.ItemRetries == 0 {
		o.ItemRetries = 3
	}
	if o.RetryBackoff == 0 {
		o.RetryBackoff = 200 * time.Millisecond
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	return o, nil
}

func normFingerprint(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
}

func (opener) Validate(s outputs.Spec) error { _, err := options(s); return err }

func (opener) Open(ctx context.Context, s outputs.Spec, log *slog.Logger) (outputs.Output, error) {
	o, err := options(s)
	if err != nil {
		return nil, err
	}
	name := s.Name
	if name == "" {
		name = "elasticsearch"
	}
	return Open(ctx, o, name, log)
}

// Output is a bulk indexer into one data stream or index pattern.
type Output struct {
	opt  Options
	name string
	log  *slog.Logger
	es   *es8.Client
	tr   *http.Transport

	tmplMu    sync.Mutex
	installed bool

	causesMu sync.Mutex
	causes   map[string]bool

	rejected atomic.Uint64
	retried  atomic.Uint64
	conflict atomic.Uint64
}

// Open builds the client and installs the index template. An unreachable
// cluster is not an error here: the template is installed before the first
// write that reaches it, and events wait in the router's spool meanwhile.
func Open(ctx context.Context, o Options, name string, log *slog.Logger) (*Output, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	tr.ResponseHeaderTimeout = o.Timeout
	if t := o.TLS; t != nil {
		if err := configureTLS(tr, t); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	cfg := es8.Config{
		Addresses:               o.Addresses,
		APIKey:                  o.APIKey,
		Username:                o.Username,
		Password:                o.Password,
		ServiceToken:            o.BearerToken,
		Transport:               tr,
		RetryOnStatus:           []int{429, 502, 503, 504},
		MaxRetries:              2,
		RetryBackoff:            func(n int) time.Duration { return time.Duration(n) * 100 * time.Millisecond },
		EnableCompatibilityMode: o.CompatibilityMode,
		DisableMetaHeader:       true,
	}
	if o.PasswordFile != "" {
		b, err := os.ReadFile(o.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("%s: password-file: %w", name, err)
		}
		p, _, _ := strings.Cut(string(b), "\n")
		cfg.Password = strings.TrimRight(p, "\r")
	}
	c, err := es8.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := &Output{opt: o, name: name, log: log, es: c, tr: tr, causes: map[string]bool{}}
	if o.TemplateInstall == nil || *o.TemplateInstall {
		if err := out.installTemplate(ctx); err != nil {
			var ue *unavailableError
			if !errors.As(err, &ue) {
				tr.CloseIdleConnections()
				return nil, err
			}
			log.Warn("elasticsearch unreachable at start-up, template install deferred, delivery will retry", "output", name, "err", err)
		}
	} else {
		out.installed = true
	}
	return out, nil
}

func configureTLS(tr *http.Transport, t *TLS) error {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return fmt.Errorf("tls ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls ca-file %s: no PEM certificates", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return fmt.Errorf("tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if fp := normFingerprint(t.Fingerprint); fp != "" {
		want, _ := hex.DecodeString(fp)
		// Pinning: the chain is trusted when one of its certificates has
		// the configured SHA-256, instead of by a CA.
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			for _, cert := range cs.PeerCertificates {
				sum := sha256.Sum256(cert.Raw)
				if bytes.Equal(sum[:], want) {
					return nil
				}
			}
			return errors.New("tls: no server certificate matches the configured fingerprint")
		}
	}
	tr.TLSClientConfig = c
	return nil
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

func reason(body []byte) string {
	var e struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Type != "" {
		return e.Error.Type + ": " + e.Error.Reason
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return string(body)
}

// Name implements outputs.Output.
func (o *Output) Name() string { return o.name }

// Rejected implements outputs.Rejecter: documents refused for good.
func (o *Output) Rejected() uint64 { return o.rejected.Load() }

// Target is the index or data stream a record goes to.
func (o *Output) Target(r outputs.Record) string {
	if o.opt.routed {
		return "logs-" + Dataset(r) + "-" + o.opt.Namespace
	}
	if o.opt.DataStream != "" {
		return o.opt.DataStream
	}
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	t = t.UTC()
	out := o.opt.Index
	for {
		i := strings.Index(out, "%{+")
		if i < 0 {
			return out
		}
		j := strings.IndexByte(out[i:], '}')
		if j < 0 {
			return out
		}
		layout := strings.NewReplacer("yyyy", "2006", "MM", "01", "dd", "02", "HH", "15").Replace(out[i+3 : i+j])
		out = out[:i] + t.Format(layout) + out[i+j+1:]
	}
}

// DocID is the document _id: the record's stable id, else a hash of the line.
func DocID(r outputs.Record) string {
	if r.ID != "" {
		return r.ID
	}
	h := sha1.Sum(r.JSON)
	return hex.EncodeToString(h[:16])
}

// Document is the indexed source: "@timestamp" then the EVE fields.
func Document(buf []byte, r outputs.Record) []byte {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	js := bytes.TrimSpace(r.JSON)
	buf = append(buf, `{"@timestamp":"`...)
	buf = t.UTC().AppendFormat(buf, "2006-01-02T15:04:05.000000Z")
	buf = append(buf, '"')
	if len(js) > 2 && js[0] == '{' {
		rest := bytes.TrimSpace(js[1:])
		if rest[0] != '}' {
			buf = append(buf, ',')
		}
		return append(buf, rest...)
	}
	return append(buf, '}')
}

type bulkItem struct {
	Index  string `json:"_index"`
	ID     string `json:"_id"`
	Status int    `json:"status"`
	Error  *struct {
		Type     string `json:"type"`
		Reason   string `json:"reason"`
		CausedBy *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"caused_by"`
	} `json:"error"`
}

// Write implements outputs.Output. See the package documentation.
func (o *Output) Write(ctx context.Context, batch []outputs.Record) error {
	if err := o.installTemplate(ctx); err != nil {
		return err
	}
	pending := batch
	wait := o.opt.RetryBackoff
	for attempt := 0; ; attempt++ {
		retry, err := o.bulk(ctx, pending)
		if err != nil {
			return err
		}
		if len(retry) == 0 {
			return nil
		}
		if attempt >= o.opt.ItemRetries {
			return fmt.Errorf("%s: %d of %d documents still refused (429/5xx) after %d attempts", o.name, len(retry), len(batch), attempt+1)
		}
		o.retried.Add(uint64(len(retry)))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", o.name, ctx.Err())
		}
		wait *= 2
		pending = retry
	}
}

var idInReason = regexp.MustCompile(`(?i)(document with id|id) '[^']*'|Preview of field's value: '.*'|\[[0-9a-f]{16,}\]`)

// bulk sends one request and returns the records to retry.
func (o *Output) bulk(ctx context.Context, recs []outputs.Record) ([]outputs.Record, error) {
	var body bytes.Buffer
	meta := map[string]map[string]string{"create": {}}
	now := time.Now()
	sent := recs[:0:0]
	for _, r := range recs {
		target := o.Target(r)
		doc := Document(nil, r)
		if o.opt.Format == FormatECS {
			ds, ns := o.datasetOf(r, target)
			var err error
			if doc, err = ECSDocument(r, ds, ns, now); err != nil {
				// A line that is not JSON cannot become a document: refused
				// for good, like a mapping error.
				o.reject(r, bulkItem{Index: target, ID: DocID(r), Status: 400,
					Error: &struct {
						Type     string `json:"type"`
						Reason   string `json:"reason"`
						CausedBy *struct {
							Type   string `json:"type"`
							Reason string `json:"reason"`
						} `json:"caused_by"`
					}{Type: "sewatch_ecs_exception", Reason: err.Error()}})
				continue
			}
		}
		meta["create"]["_index"] = target
		meta["create"]["_id"] = DocID(r)
		m, _ := json.Marshal(meta)
		body.Write(m)
		body.WriteByte('\n')
		body.Write(doc)
		body.WriteByte('\n')
		sent = append(sent, r)
	}
	if len(sent) == 0 {
		return nil, nil
	}
	recs = sent
	ctx, cancel := context.WithTimeout(ctx, o.opt.Timeout)
	defer cancel()
	res, err := o.es.Bulk(bytes.NewReader(body.Bytes()), o.es.Bulk.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("%s: bulk: %w", o.name, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: bulk: %w", o.name, err)
	}
	if res.IsError() {
		return nil, fmt.Errorf("%s: bulk: %s: %s", o.name, res.Status(), reason(raw))
	}
	var resp struct {
		Errors bool                  `json:"errors"`
		Items  []map[string]bulkItem `json:"items"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("%s: bulk response: %w", o.name, err)
	}
	if len(resp.Items) != len(recs) {
		return nil, fmt.Errorf("%s: bulk response has %d items for %d actions", o.name, len(resp.Items), len(recs))
	}
	if !resp.Errors {
		return nil, nil
	}
	var retry []outputs.Record
	for i, m := range resp.Items {
		var it bulkItem
		for _, v := range m {
			it = v
		}
		switch {
		case it.Status >= 200 && it.Status < 300:
		case it.Status == 409:
			// Already indexed by an earlier delivery of the same event.
			o.conflict.Add(1)
		case it.Status == 429 || it.Status >= 500:
			retry = append(retry, recs[i])
		default:
			o.reject(recs[i], it)
		}
	}
	return retry, nil
}

// reject counts a refused document and logs its cause once.
func (o *Output) reject(r outputs.Record, it bulkItem) {
	o.rejected.Add(1)
	typ, why := "unknown", ""
	if it.Error != nil {
		typ, why = it.Error.Type, it.Error.Reason
		if it.Error.CausedBy != nil {
			why += " (" + it.Error.CausedBy.Type + ": " + it.Error.CausedBy.Reason + ")"
		}
	}
	cause := fmt.Sprintf("%d %s: %s", it.Status, typ, idInReason.ReplaceAllString(why, "…"))
	o.causesMu.Lock()
	seen := o.causes[cause]
	if !seen && len(o.causes) < 1000 {
		o.causes[cause] = true
	}
	o.causesMu.Unlock()
	if !seen {
		o.log.Error("elasticsearch refused a document; further ones with the same cause are only counted",
			"output", o.name, "status", it.Status, "type", typ, "reason", why, "index", it.Index, "id", it.ID,
			"event_type", r.Type, "signature_id", r.SignatureID)
	} else {
		o.log.Debug("elasticsearch refused a document", "output", o.name, "id", it.ID, "type", typ)
	}
}

// Close implements outputs.Output.
func (o *Output) Close(context.Context) error {
	o.tr.CloseIdleConnections()
	return nil
}

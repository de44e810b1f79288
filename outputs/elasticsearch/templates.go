package elasticsearch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/sewatch/sewatch/outputs"
)

// Install is what the output puts into the cluster before its first write:
// an ILM policy (lifecycle ilm), the ECS component template (format ecs)
// and the index template that composes it.
type Install struct {
	ILMPolicy      []byte // nil unless lifecycle is ilm
	Component      []byte // nil unless format is ecs
	IndexTemplate  []byte
	ComponentName  string
	PolicyName     string
	TemplateDigest string
}

// Patterns are the index patterns of the index template for the options.
func Patterns(o Options) []string {
	switch {
	case o.routed:
		var p []string
		for _, d := range Datasets {
			p = append(p, "logs-"+d+"-*")
		}
		return p
	case o.DataStream != "":
		pat := o.DataStream
		if i := strings.LastIndexByte(pat, '-'); strings.HasPrefix(pat, "logs-") && i > len("logs-") {
			pat = pat[:i] + "-*" // keep the namespace open: logs-<dataset>-*
		}
		return []string{pat}
	}
	prefix, _, _ := strings.Cut(o.Index, "%{")
	return []string{prefix + "*"}
}

// ILMPolicyBody is the lifecycle policy: for data streams, roll the backing
// index over at 30 days or 50 GB per primary shard and delete it Retention
// after rollover; for dated indices (rollover there would need an alias),
// delete each index Retention after its creation.
func ILMPolicyBody(retention string, rollover bool) []byte {
	phases := map[string]any{"delete": map[string]any{"min_age": retention, "actions": map[string]any{"delete": map[string]any{}}}}
	desc := "sewatch events: delete " + retention + " after creation"
	if rollover {
		phases["hot"] = map[string]any{"actions": map[string]any{"rollover": map[string]any{"max_age": "30d", "max_primary_shard_size": "50gb"}}}
		desc = "sewatch events: delete " + retention + " after rollover"
	}
	b, _ := json.Marshal(map[string]any{"policy": map[string]any{
		"_meta": map[string]any{"managed_by": "sewatch", "description": desc}, "phases": phases}})
	return b
}

// TemplateFor returns the index template for the options (see Templates).
func TemplateFor(o Options) ([]byte, error) {
	in, err := Templates(o)
	return in.IndexTemplate, err
}

// Templates builds what Install holds for the options. Format eve uses
// index-template.json as before (its own mappings: EVE's host string clashes
// with ECS's host object). Format ecs composes sewatch-ecs@mappings, ECS
// types for every field sewatch writes; Elastic's own ecs@mappings is not
// composed because it exists only from Elasticsearch 8.11 on and maps by
// field-name rules, where these mappings are explicit and checked against
// the ECS reference in the tests. Both have priority 500, above the
// built-in logs-*-* template (100) and below nothing Fleet installs for
// these names. The lifecycle goes into the template itself: the ILM policy
// name in its settings, or a data stream lifecycle with data_retention.
func Templates(o Options) (Install, error) {
	var t map[string]any
	in := Install{PolicyName: o.ILMPolicy, ComponentName: ECSMappingsName}
	if o.Format == FormatECS {
		in.Component = ECSMappings
		t = map[string]any{
			"priority":    500,
			"composed_of": []string{ECSMappingsName},
			"_meta": map[string]any{"description": "sewatch events as ECS documents (SoftEther VPN detection)",
				"managed_by": "sewatch", "sewatch_template_version": TemplateVersion, "ecs_version": ECSVersion},
			"template": map[string]any{"settings": map[string]any{"index": map[string]any{
				"number_of_shards": 1, "mapping": map[string]any{"total_fields": map[string]any{"limit": 2000}}}}},
		}
	} else if err := json.Unmarshal(Template, &t); err != nil {
		return in, err
	}
	t["index_patterns"] = Patterns(o)
	if o.DataStream != "" {
		t["data_stream"] = map[string]any{}
	} else {
		delete(t, "data_stream")
	}
	meta, _ := t["_meta"].(map[string]any)
	meta["sewatch_format"] = o.Format
	meta["sewatch_lifecycle"] = o.Lifecycle
	tmpl, _ := t["template"].(map[string]any)
	settings, _ := tmpl["settings"].(map[string]any)
	index, _ := settings["index"].(map[string]any)
	switch o.Lifecycle {
	case "ilm":
		in.ILMPolicy = ILMPolicyBody(o.Retention, o.DataStream != "")
		index["lifecycle"] = map[string]any{"name": o.ILMPolicy}
		meta["sewatch_retention"] = o.Retention
	case "data-stream":
		tmpl["lifecycle"] = map[string]any{"data_retention": o.Retention}
		meta["sewatch_retention"] = o.Retention
	}
	// The digest covers everything installed, so a changed retention,
	// format or mapping is installed again, and an unchanged one never.
	h := sha256.New()
	body, _ := json.Marshal(t)
	h.Write(body)
	h.Write(in.ILMPolicy)
	h.Write(in.Component)
	in.TemplateDigest = hex.EncodeToString(h.Sum(nil))[:16]
	meta["sewatch_digest"] = in.TemplateDigest
	var err error
	in.IndexTemplate, err = json.Marshal(t)
	return in, err
}

func (o *Output) installTemplate(ctx context.Context) error {
	o.tmplMu.Lock()
	defer o.tmplMu.Unlock()
	if o.installed {
		return nil
	}
	in, err := Templates(o.opt)
	if err != nil {
		return fmt.Errorf("%s: %w", o.name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.opt.Timeout)
	defer cancel()
	res, err := o.es.Indices.GetIndexTemplate(o.es.Indices.GetIndexTemplate.WithName(o.opt.TemplateName),
		o.es.Indices.GetIndexTemplate.WithContext(ctx))
	if err != nil {
		return &unavailableError{fmt.Errorf("%s: get index template: %w", o.name, err)}
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	oldFormat := ""
	switch {
	case res.StatusCode == 200:
		var got struct {
			IndexTemplates []struct {
				IndexTemplate struct {
					Meta struct {
						Digest string `json:"sewatch_digest"`
						Format string `json:"sewatch_format"`
					} `json:"_meta"`
				} `json:"index_template"`
			} `json:"index_templates"`
		}
		if json.Unmarshal(body, &got) == nil && len(got.IndexTemplates) == 1 {
			m := got.IndexTemplates[0].IndexTemplate.Meta
			if m.Digest == in.TemplateDigest {
				o.installed = true
				return nil
			}
			oldFormat = m.Format
			if oldFormat == "" {
				oldFormat = FormatEVE // templates before the ECS format
			}
		}
	case res.StatusCode == 404:
	case res.StatusCode == 429 || res.StatusCode >= 500:
		return &unavailableError{fmt.Errorf("%s: get index template: %s", o.name, res.Status())}
	default:
		return fmt.Errorf("%s: get index template: %s: %s", o.name, res.Status(), reason(body))
	}
	put := func(what string, req esapi.Request) error {
		res, err := req.Do(ctx, o.es)
		if err != nil {
			return &unavailableError{fmt.Errorf("%s: put %s: %w", o.name, what, err)}
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.IsError() {
			err := fmt.Errorf("%s: put %s: %s: %s", o.name, what, res.Status(), reason(body))
			if res.StatusCode == 429 || res.StatusCode >= 500 {
				return &unavailableError{err}
			}
			return err
		}
		return nil
	}
	if in.ILMPolicy != nil {
		if err := put("ILM policy "+in.PolicyName+" (lifecycle: data-stream or none if the cluster has no ILM)",
			esapi.ILMPutLifecycleRequest{Policy: in.PolicyName, Body: bytes.NewReader(in.ILMPolicy)}); err != nil {
			return err
		}
	}
	if in.Component != nil {
		if err := put("component template "+in.ComponentName,
			esapi.ClusterPutComponentTemplateRequest{Name: in.ComponentName, Body: bytes.NewReader(in.Component)}); err != nil {
			return err
		}
	}
	if err := put(fmt.Sprintf("index template %q", o.opt.TemplateName),
		esapi.IndicesPutIndexTemplateRequest{Name: o.opt.TemplateName, Body: bytes.NewReader(in.IndexTemplate)}); err != nil {
		return err
	}
	if oldFormat != "" && oldFormat != o.opt.Format {
		o.log.Warn("elasticsearch index template replaced by one of another format; existing data streams keep the old mappings until they roll over (POST <stream>/_rollover) or use a new namespace",
			"output", o.name, "template", o.opt.TemplateName, "was", oldFormat, "now", o.opt.Format)
	}
	o.log.Info("elasticsearch index template installed", "output", o.name, "template", o.opt.TemplateName,
		"format", o.opt.Format, "lifecycle", o.opt.Lifecycle, "retention", o.opt.Retention)
	o.installed = true
	return nil
}

// datasetOf is the dataset and namespace an ECS document declares for a
// target: sewatch's own streams by record kind, another logs-<dataset>-<ns>
// data stream by its name, a plain index none (no data_stream fields).
func (o *Output) datasetOf(r outputs.Record, target string) (string, string) {
	if o.opt.routed {
		return Dataset(r), o.opt.Namespace
	}
	if o.opt.DataStream != "" {
		if rest, ok := strings.CutPrefix(target, "logs-"); ok {
			if i := strings.LastIndexByte(rest, '-'); i > 0 {
				return rest[:i], rest[i+1:]
			}
		}
	}
	return Dataset(r), ""
}

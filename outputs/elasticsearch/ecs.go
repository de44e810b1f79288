package elasticsearch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/outputs"
)

// ECSVersion is the ECS release the documents and ecs-mappings.json follow
// (the schema of Elastic Stack 8.x; every field also exists with the same
// type in ECS 9).
const ECSVersion = "8.17.0"

// Formats of the documents.
const (
	FormatECS = "ecs"
	FormatEVE = "eve"
)

// Datasets: SoftEther alerts, other-VPN alerts and stats each have their own
// data stream (logs-<dataset>-<namespace>), so a SoftEther view never mixes
// in the informational other-VPN signatures and stats never fill the alert
// stream.
const (
	DatasetAlert    = "sewatch.alert"
	DatasetOtherVPN = "sewatch.othervpn"
	DatasetStats    = "sewatch.stats"
	DatasetFlow     = "sewatch.flow"
)

// Datasets is every dataset the output writes.
var Datasets = []string{DatasetAlert, DatasetOtherVPN, DatasetFlow, DatasetStats}

// eveLine is the part of an EVE line the ECS document is built from.
type eveLine struct {
	Timestamp   string          `json:"timestamp"`
	FlowID      json.Number     `json:"flow_id"`
	InIface     string          `json:"in_iface"`
	PcapCnt     json.Number     `json:"pcap_cnt"`
	EventType   string          `json:"event_type"`
	VLAN        []int           `json:"vlan"`
	SrcIP       string          `json:"src_ip"`
	SrcPort     *int            `json:"src_port"`
	DestIP      string          `json:"dest_ip"`
	DestPort    *int            `json:"dest_port"`
	Proto       string          `json:"proto"`
	ICMPType    *int            `json:"icmp_type"`
	ICMPCode    *int            `json:"icmp_code"`
	CommunityID string          `json:"community_id"`
	AppProto    string          `json:"app_proto"`
	Host        string          `json:"host"`
	Stats       json.RawMessage `json:"stats"`
	Alert       *struct {
		Action      string              `json:"action"`
		SignatureID int                 `json:"signature_id"`
		Rev         int                 `json:"rev"`
		Signature   string              `json:"signature"`
		Category    string              `json:"category"`
		Severity    int                 `json:"severity"`
		Metadata    map[string][]string `json:"metadata"`
	} `json:"alert"`
	TLS *struct {
		Subject     string   `json:"subject"`
		IssuerDN    string   `json:"issuerdn"`
		Serial      string   `json:"serial"`
		Fingerprint string   `json:"fingerprint"`
		SNI         string   `json:"sni"`
		Version     string   `json:"version"`
		NotBefore   string   `json:"notbefore"`
		NotAfter    string   `json:"notafter"`
		JA3         *ja3     `json:"ja3"`
		JA3S        *ja3     `json:"ja3s"`
		JA4         string   `json:"ja4"`
		ClientALPNs []string `json:"client_alpns"`
	} `json:"tls"`
	Flow *struct {
		PktsToServer  int64  `json:"pkts_toserver"`
		PktsToClient  int64  `json:"pkts_toclient"`
		BytesToServer int64  `json:"bytes_toserver"`
		BytesToClient int64  `json:"bytes_toclient"`
		Start         string `json:"start"`
		End           string `json:"end"`
		Age           *int64 `json:"age"`
		State         string `json:"state"`
		Reason        string `json:"reason"`
		Alerted       *bool  `json:"alerted"`
	} `json:"flow"`
	Metadata *struct {
		Flowvars []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"flowvars"`
	} `json:"metadata"`
}

type ja3 struct {
	Hash   string `json:"hash"`
	String string `json:"string"`
}

// Dataset is the dataset an EVE record belongs to.
func Dataset(r outputs.Record) string {
	switch {
	case r.Type == "stats":
		return DatasetStats
	case r.Type == "flow":
		return DatasetFlow
	case r.Type == "alert" && isOtherVPN(r):
		return DatasetOtherVPN
	}
	return DatasetAlert
}

// isOtherVPN: the informational signatures for other VPN protocols (their
// alerts carry vpn_protocol instead of softether_mode).
func isOtherVPN(r outputs.Record) bool {
	if s, ok := detector.ByID(r.SignatureID); ok {
		return !strings.Contains(s.Msg, "SoftEther")
	}
	return bytes.Contains(r.JSON, []byte(`"vpn_protocol":`))
}

type m = map[string]any

// ECSDocument maps one EVE line to an ECS document the way Elastic's
// Suricata integration maps EVE in its ingest pipeline (event.kind alert,
// event.category network + intrusion_detection, rule.* from the signature,
// source/destination bytes and packets from the flow counters, tls.*,
// threat.* from the MITRE ATT&CK metadata), with sewatch as the module and
// observer. Fields ECS has no place for (confidence, mode, evidence, JA4,
// the whole alert.metadata) go under the custom "sewatch" namespace.
//
// message is the signature, not the EVE line: Elastic Security's promotion
// rules ("External Alerts") name each Security alert after message. The EVE
// line is kept, unchanged, in event.original (not indexed, as ECS defines it).
//
// ds is the data stream's dataset and namespace (empty namespace: no
// data_stream fields, for a plain index); ingested is the write time, which
// the External Alerts rule uses as the alert time so a replayed old capture
// is still picked up.
func ECSDocument(r outputs.Record, dataset, namespace string, ingested time.Time) ([]byte, error) {
	js := bytes.TrimSpace(r.JSON)
	if !utf8.Valid(js) {
		// JSON text is UTF-8; a line that is not (a corrupt spool segment)
		// could only be indexed with its bytes replaced, so event.original
		// would not be what was written.
		return nil, fmt.Errorf("ECS document: the EVE line is not valid UTF-8")
	}
	var e eveLine
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("ECS document: the EVE line does not parse: %w", err)
	}
	t := r.Time
	if t.IsZero() {
		if pt, err := time.Parse("2006-01-02T15:04:05.000000-0700", e.Timestamp); err == nil {
			t = pt
		} else {
			t = ingested
		}
	}
	ev := m{
		"module":   "sewatch",
		"dataset":  dataset,
		"ingested": ingested.UTC().Format(time.RFC3339Nano),
		"original": string(js),
	}
	if r.ID != "" {
		ev["id"] = r.ID
	}
	doc := m{
		"@timestamp": t.UTC().Format("2006-01-02T15:04:05.000000Z"),
		"ecs":        m{"version": ECSVersion},
		"event":      ev,
		"observer":   observer(e),
	}
	if namespace != "" {
		doc["data_stream"] = m{"type": "logs", "dataset": dataset, "namespace": namespace}
	}
	sw := m{}
	if e.FlowID != "" {
		sw["flow_id"] = e.FlowID.String()
	}
	if e.PcapCnt != "" {
		if n, err := e.PcapCnt.Int64(); err == nil {
			sw["pcap_cnt"] = n
		}
	}
	switch e.EventType {
	case "flow":
		// A session's flow record at its end (Suricata's flow event).
		ev["kind"] = "event"
		ev["category"] = []string{"network"}
		ev["type"] = []string{"connection", "end"}
		doc["message"] = "sewatch session flow"
		network(doc, e)
		fl := m{}
		if f := e.Flow; f != nil {
			if f.State != "" {
				fl["state"] = f.State
			}
			if f.Reason != "" {
				fl["reason"] = f.Reason
			}
			if f.Alerted != nil {
				fl["alerted"] = *f.Alerted
			}
			if f.Age != nil {
				fl["age"] = *f.Age
			}
			if et, err := time.Parse("2006-01-02T15:04:05.000000-0700", f.End); err == nil {
				ev["end"] = et.UTC().Format("2006-01-02T15:04:05.000000Z")
			}
			if st, err := time.Parse("2006-01-02T15:04:05.000000-0700", f.Start); err == nil {
				ev["start"] = st.UTC().Format("2006-01-02T15:04:05.000000Z")
			}
		}
		if len(fl) > 0 {
			sw["flow"] = fl
		}
		if md := e.Metadata; md != nil {
			for _, v := range md.Flowvars {
				switch v.Key {
				case "sewatch_session_signature_id":
					sw["session_signature_id"] = v.Value
				case "sewatch_session_flow":
					l, _ := sw["session_flows"].([]string)
					sw["session_flows"] = append(l, v.Value)
				}
			}
		}
	case "stats":
		ev["kind"] = "metric"
		ev["category"] = []string{"network"}
		ev["type"] = []string{"info"}
		doc["message"] = "sewatch stats"
		if len(e.Stats) > 0 {
			var st any
			d := json.NewDecoder(bytes.NewReader(e.Stats))
			d.UseNumber()
			if err := d.Decode(&st); err == nil {
				sw["stats"] = st
			}
		}
	default:
		ev["kind"] = "alert"
		ev["category"] = []string{"network", "intrusion_detection"}
		ev["type"] = []string{"allowed"}
		if a := e.Alert; a != nil {
			if a.Action == "blocked" {
				ev["type"] = []string{"denied"}
			}
			ev["severity"] = a.Severity
			ev["risk_score"] = riskScore(a.Severity)
			doc["message"] = a.Signature
			doc["rule"] = m{"id": strconv.Itoa(a.SignatureID), "name": a.Signature, "category": a.Category,
				"version": strconv.Itoa(a.Rev), "ruleset": "sewatch"}
			if th := threat(a.SignatureID); th != nil {
				doc["threat"] = th
			}
			md := a.Metadata
			if len(md) > 0 {
				sw["alert"] = m{"metadata": md}
			}
			if v := md["softether_mode"]; len(v) > 0 {
				sw["mode"] = v[0]
			}
			if v := md["vpn_protocol"]; len(v) > 0 {
				sw["vpn_protocol"] = v[0]
			}
			if v := md["confidence"]; len(v) > 0 {
				if f, err := strconv.ParseFloat(v[0], 64); err == nil {
					sw["confidence"] = f
				}
			}
		}
		network(doc, e)
		if tl := tlsFields(e, sw); tl != nil {
			doc["tls"] = tl
		}
		if f := e.Flow; f != nil {
			if st, err := time.Parse("2006-01-02T15:04:05.000000-0700", f.Start); err == nil {
				ev["start"] = st.UTC().Format("2006-01-02T15:04:05.000000Z")
			}
		}
	}
	if len(sw) > 0 {
		doc["sewatch"] = sw
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // "MITRE ATT&CK" as written, not \u0026
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

// riskScore maps Suricata's severity (1 highest) onto the 0-100 scale of
// event.risk_score that Elastic Security's promotion rules read: 1 high (73),
// 2 medium (47), 3 and below low (21).
func riskScore(sev int) float64 {
	switch sev {
	case 1:
		return 73
	case 2:
		return 47
	}
	return 21
}

func observer(e eveLine) m {
	o := m{"vendor": "sewatch", "product": "sewatch", "type": "ids"}
	if e.Host != "" {
		o["hostname"] = e.Host
		o["name"] = e.Host
	}
	if e.InIface != "" {
		o["ingress"] = m{"interface": m{"name": e.InIface}}
	}
	return o
}

// threat lists the signature's MITRE ATT&CK tactics and techniques.
func threat(sid int) m {
	s, ok := detector.ByID(sid)
	if !ok || len(s.Meta.Techniques) == 0 {
		return nil
	}
	var tacID, tacName, tecID, tecName []string
	seenTac, seenTec := map[string]bool{}, map[string]bool{}
	for _, t := range s.Meta.Techniques {
		if !seenTac[t.TacticID] {
			seenTac[t.TacticID] = true
			tacID, tacName = append(tacID, t.TacticID), append(tacName, t.TacticName)
		}
		if !seenTec[t.ID] {
			seenTec[t.ID] = true
			tecID, tecName = append(tecID, t.ID), append(tecName, t.Name)
		}
	}
	return m{"framework": "MITRE ATT&CK", "tactic": m{"id": tacID, "name": tacName},
		"technique": m{"id": tecID, "name": tecName}}
}

func network(doc m, e eveLine) {
	src, dst := m{}, m{}
	if e.SrcIP != "" {
		src["ip"], src["address"] = e.SrcIP, e.SrcIP
	}
	if e.DestIP != "" {
		dst["ip"], dst["address"] = e.DestIP, e.DestIP
	}
	if e.SrcPort != nil {
		src["port"] = *e.SrcPort
	}
	if e.DestPort != nil {
		dst["port"] = *e.DestPort
	}
	n := m{}
	if e.Proto != "" {
		n["transport"] = strings.ToLower(e.Proto)
	}
	if e.CommunityID != "" {
		n["community_id"] = e.CommunityID
	}
	if e.AppProto != "" && e.AppProto != "failed" {
		n["protocol"] = strings.ToLower(e.AppProto)
	}
	if strings.Contains(e.SrcIP, ":") {
		n["type"] = "ipv6"
	} else if e.SrcIP != "" {
		n["type"] = "ipv4"
	}
	if len(e.VLAN) > 0 {
		n["vlan"] = m{"id": strconv.Itoa(e.VLAN[0])}
		if len(e.VLAN) > 1 {
			n["inner"] = m{"vlan": m{"id": strconv.Itoa(e.VLAN[1])}}
		}
	}
	if f := e.Flow; f != nil {
		src["bytes"], src["packets"] = f.BytesToServer, f.PktsToServer
		dst["bytes"], dst["packets"] = f.BytesToClient, f.PktsToClient
		n["bytes"], n["packets"] = f.BytesToServer+f.BytesToClient, f.PktsToServer+f.PktsToClient
	}
	var related []string
	for _, ip := range []string{e.SrcIP, e.DestIP} {
		if ip != "" {
			related = append(related, ip)
		}
	}
	if len(src) > 0 {
		doc["source"] = src
	}
	if len(dst) > 0 {
		doc["destination"] = dst
	}
	if len(n) > 0 {
		doc["network"] = n
	}
	if len(related) > 0 {
		rel := m{"ip": related}
		// related.hosts holds names; an IP-literal SNI is in related.ip already.
		if _, err := netip.ParseAddr(sniOf(e)); sniOf(e) != "" && err != nil {
			rel["hosts"] = []string{sniOf(e)}
		}
		doc["related"] = rel
	}
}

func sniOf(e eveLine) string {
	if e.TLS == nil {
		return ""
	}
	return e.TLS.SNI
}

// tlsFields maps EVE's tls object; JA4 (no ECS field) goes to sw.
func tlsFields(e eveLine, sw m) m {
	t := e.TLS
	if t == nil {
		return nil
	}
	out, client, server, x509 := m{}, m{}, m{}, m{}
	if v, p, ok := tlsVersion(t.Version); ok {
		out["version"], out["version_protocol"] = v, p
	}
	if t.SNI != "" {
		client["server_name"] = t.SNI
	}
	if t.JA3 != nil && t.JA3.Hash != "" {
		client["ja3"] = t.JA3.Hash
	}
	if t.JA3S != nil && t.JA3S.Hash != "" {
		server["ja3s"] = t.JA3S.Hash
	}
	if t.Subject != "" {
		x509["subject"] = m{"distinguished_name": t.Subject}
	}
	if t.IssuerDN != "" {
		x509["issuer"] = m{"distinguished_name": t.IssuerDN}
	}
	if t.Serial != "" {
		// ECS: hexadecimal, upper case, no separators.
		x509["serial_number"] = strings.ToUpper(strings.ReplaceAll(t.Serial, ":", ""))
	}
	if t.NotBefore != "" {
		x509["not_before"] = t.NotBefore + "Z"
	}
	if t.NotAfter != "" {
		x509["not_after"] = t.NotAfter + "Z"
	}
	if len(x509) > 0 {
		server["x509"] = x509
	}
	if t.Fingerprint != "" {
		server["hash"] = m{"sha1": strings.ToUpper(strings.ReplaceAll(t.Fingerprint, ":", ""))}
	}
	if len(client) > 0 {
		out["client"] = client
	}
	if len(server) > 0 {
		out["server"] = server
	}
	st := m{}
	if t.JA4 != "" {
		st["ja4"] = t.JA4
	}
	if len(t.ClientALPNs) > 0 {
		st["client_alpns"] = t.ClientALPNs
	}
	if len(st) > 0 {
		sw["tls"] = st
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// tlsVersion splits EVE's "TLS 1.2" / "TLSv1.3" / "SSLv3" into ECS's
// version ("1.2") and version_protocol ("tls").
func tlsVersion(s string) (string, string, bool) {
	s = strings.TrimSpace(s)
	for _, p := range []string{"TLS", "SSL"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			rest = strings.TrimLeft(rest, " v")
			if rest == "" {
				return "", "", false
			}
			return rest, strings.ToLower(p), true
		}
	}
	return "", "", false
}

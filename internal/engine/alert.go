package engine

import (
	"github.com/sewatch/sewatch/outputs"
	"strconv"
	"strings"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/eve"
	"github.com/sewatch/sewatch/internal/verdict"
)

// alertEvent builds the EVE alert for a verdict. The 5-tuple is the anchor
// flow's, oriented client → server; timestamp and pcap_cnt are those of the
// packet that completed the verdict, so time-to-alert can be measured.
func (e *Engine) alertEvent(a verdict.Alert) *eve.Event {
	f := &a.Anchor.Flow
	c, s := f.Client, f.Server
	ev := &eve.Event{
		Timestamp:   eve.Timestamp(a.Trigger.Time, e.cfg.Location),
		FlowID:      f.ID,
		EventType:   "alert",
		SrcIP:       eve.IP(c.Addr()),
		DestIP:      eve.IP(s.Addr()),
		Proto:       eve.ProtoName(f.Proto),
		CommunityID: eve.CommunityID(e.cfg.CommunityIDSeed, c.Addr(), s.Addr(), f.Proto, c.Port(), s.Port()),
		Direction:   "to_server",
		Host:        e.cfg.Sensor,
	}
	if e.cfg.Iface != "" {
		ev.InIface = e.cfg.Iface
	} else {
		ev.PcapCnt = a.Trigger.PcapCnt
	}
	for i := 0; i < int(f.NVLAN); i++ {
		ev.VLAN = append(ev.VLAN, int(f.VLAN[i]))
	}
	if f.Proto == 6 || f.Proto == 17 {
		ev.SrcPort, ev.DestPort = eve.Int(int(c.Port())), eve.Int(int(s.Port()))
	}
	if f.Proto == 6 && a.TLS != nil {
		ev.AppProto = "tls"
	}
	modeKey := "softether_mode"
	if !strings.Contains(a.Signature.Msg, "SoftEther") {
		modeKey = "vpn_protocol"
	}
	md := map[string][]string{
		modeKey:         {string(a.Mode)},
		"confidence":    {strconv.FormatFloat(float64(a.Confidence), 'f', 2, 32)},
		"score":         {strconv.FormatFloat(float64(a.Score), 'f', 2, 32)},
		"units":         {strconv.Itoa(a.Units)},
		"session_flows": a.Flows,
	}
	// ET-style rule metadata (MITRE ATT&CK, signature_severity, ...) from
	// the signature table, so SIEM rules written for ET alerts apply.
	for k, v := range a.Signature.Meta.EVEMetadata() {
		md[k] = v
	}
	for k, v := range a.Extra {
		md[k] = v
	}
	seen := map[string]bool{}
	for _, x := range a.Evidence {
		line := string(x.Kind) + ": " + x.Detail
		if !seen[line] {
			seen[line] = true
			md["evidence"] = append(md["evidence"], line)
		}
	}
	ev.Alert = &eve.Alert{Action: "allowed", GID: detector.GID, SignatureID: a.Signature.ID, Rev: a.Signature.Rev,
		Signature: a.Signature.Msg, Category: a.Signature.Category, Severity: a.Signature.Severity, Metadata: md}
	if a.TLS != nil {
		ev.TLS = tlsObject(a.TLS)
	}
	ev.Flow = &eve.Flow{PktsToServer: f.PktsToServer, PktsToClient: f.PktsToClient,
		BytesToServer: f.BytesToServer, BytesToClient: f.BytesToClient,
		Start: eve.Timestamp(f.Start, e.cfg.Location), SrcIP: ev.SrcIP, DestIP: ev.DestIP,
		SrcPort: ev.SrcPort, DestPort: ev.DestPort}
	return ev
}

func tlsObject(t *detector.TLSInfo) *eve.TLS {
	o := &eve.TLS{SNI: t.SNI, Version: t.Version, JA4: t.JA4, ClientALPNs: t.ALPN,
		Subject: t.Subject, IssuerDN: t.Issuer, Serial: t.Serial, Fingerprint: t.Fingerprint,
		NotBefore: t.NotBefore, NotAfter: t.NotAfter}
	if t.JA3Hash != "" {
		o.JA3 = &eve.JA3{Hash: t.JA3Hash, String: t.JA3}
	}
	if t.JA3SHash != "" {
		o.JA3S = &eve.JA3{Hash: t.JA3SHash, String: t.JA3S}
	}
	return o
}

// sessionFlowEvent builds the EVE flow event that sums up an alerted
// session when its last flow has ended: the anchor flow's 5-tuple and
// flow_id (so it joins the alert), the session's start, end and age, and
// packets and bytes each way summed over its flows, which are listed in
// metadata.flowvars.
func (e *Engine) sessionFlowEvent(s verdict.SessionEnd) *eve.Event {
	f := &s.Anchor
	c, d := f.Client, f.Server
	alerted := true
	age := int64(s.End.Sub(s.Start).Seconds())
	if age < 0 {
		age = 0
	}
	ev := &eve.Event{
		Timestamp:   eve.Timestamp(s.End, e.cfg.Location),
		FlowID:      f.ID,
		InIface:     e.cfg.Iface,
		EventType:   "flow",
		SrcIP:       eve.IP(c.Addr()),
		DestIP:      eve.IP(d.Addr()),
		Proto:       eve.ProtoName(f.Proto),
		CommunityID: eve.CommunityID(e.cfg.CommunityIDSeed, c.Addr(), d.Addr(), f.Proto, c.Port(), d.Port()),
		Host:        e.cfg.Sensor,
	}
	for i := 0; i < int(f.NVLAN); i++ {
		ev.VLAN = append(ev.VLAN, int(f.VLAN[i]))
	}
	if f.Proto == 6 || f.Proto == 17 {
		ev.SrcPort, ev.DestPort = eve.Int(int(c.Port())), eve.Int(int(d.Port()))
	}
	state := "closed"
	if s.Reason == "shutdown" {
		state = "established"
	}
	ev.Flow = &eve.Flow{PktsToServer: s.PktsToServer, PktsToClient: s.PktsToClient,
		BytesToServer: s.BytesToServer, BytesToClient: s.BytesToClient,
		Start: eve.Timestamp(s.Start, e.cfg.Location), End: eve.Timestamp(s.End, e.cfg.Location),
		Age: &age, State: state, Reason: s.Reason, Alerted: &alerted}
	md := &eve.Metadata{}
	md.Flowvars = append(md.Flowvars, eve.Flowvar{Key: "sewatch_session_signature_id", Value: strconv.Itoa(s.Signature.ID)})
	for _, fl := range s.Flows {
		md.Flowvars = append(md.Flowvars, eve.Flowvar{Key: "sewatch_session_flow", Value: fl})
	}
	ev.Metadata = md
	return ev
}

// emitSessionEnd writes an alerted session's flow event.
func (e *Engine) emitSessionEnd(s verdict.SessionEnd) {
	ev := e.sessionFlowEvent(s)
	js, err := ev.Marshal()
	if err != nil {
		e.log.Error("encoding flow event", "err", err)
		return
	}
	key := ev.CommunityID
	if key == "" {
		key = strconv.FormatInt(ev.FlowID, 10)
	}
	e.out.Send(outputs.Record{Type: "flow", Time: s.End, FlowID: ev.FlowID, Key: key,
		ID: "flow-" + strconv.FormatInt(ev.FlowID, 10) + "-" + strconv.FormatInt(s.End.UnixNano(), 10), JSON: js})
}

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
// flow's, oriented client → server; timestamp is that of the packet that
// completed the verdict, so time-to-alert can be measured. pcap_cnt names a
// packet of the alerted flow (see alertPacket), and direction, icmp_type,
// icmp_code and community_id are that packet's.
func (e *Engine) alertEvent(a verdict.Alert) *eve.Event {
	f := &a.Anchor.Flow
	c, s := f.Client, f.Server
	pk := alertPacket(a)
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
	if pk.Pkt.Known && pk.Pkt.Src == s.Addr() && pk.Pkt.Src != c.Addr() {
		ev.Direction = "to_client"
	}
	if f.Proto == 1 || f.Proto == 58 {
		// ICMP has no ports: the Community ID uses the packet's type and
		// code in their place, oriented as the packet travelled (one-way
		// types keep that order), as the specification and Suricata do.
		if pk.Pkt.Known {
			src, dst := c.Addr(), s.Addr()
			if ev.Direction == "to_client" {
				src, dst = dst, src
			}
			ev.ICMPType, ev.ICMPCode = eve.Int(int(pk.Pkt.ICMPType)), eve.Int(int(pk.Pkt.ICMPCode))
			ev.CommunityID = eve.CommunityID(e.cfg.CommunityIDSeed, src, dst, f.Proto, uint16(pk.Pkt.ICMPType), uint16(pk.Pkt.ICMPCode))
		}
	}
	if len(e.cfg.Ifaces) > 0 {
		ev.InIface = e.inIface(f)
	} else {
		ev.PcapCnt = pk.PcapCnt
	}
	for i := 0; i < int(f.NVLAN); i++ {
		ev.VLAN = append(ev.VLAN, int(f.VLAN[i]))
	}
	if f.Proto == 6 || f.Proto == 17 {
		ev.SrcPort, ev.DestPort = eve.Int(int(c.Port())), eve.Int(int(s.Port()))
	}
	ev.AppProto = appProto(a)
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

// alertPacket picks the evidence whose packet the alert names: the one that
// completed the verdict when it lies on the alerted (anchor) flow, else the
// anchor evidence itself, so pcap_cnt always names a packet of the flow
// the alert's addresses, ports and community_id describe.
func alertPacket(a verdict.Alert) detector.Evidence {
	if a.Trigger.Flow.ID == a.Anchor.Flow.ID || a.Anchor.PcapCnt == 0 {
		return a.Trigger
	}
	return a.Anchor
}

// appProto is Suricata's app_proto for the alerted flow, when the
// protocol on the wire is known: the value Suricata's own parsers would
// have given it (CONNECT through an HTTP proxy is "http", as Suricata
// names the flow it first parsed as HTTP). Flows Suricata has no parser
// for (SOCKS, OpenVPN, WireGuard, UDP acceleration, ICMP, ...) get none.
func appProto(a verdict.Alert) string {
	proto := a.Anchor.Flow.Proto
	switch a.Signature.ID {
	case detector.SIDHTTPProxy, detector.SIDVendorDDNS:
		if proto == 6 {
			return "http"
		}
	case detector.SIDSSH:
		return "ssh"
	case detector.SIDOverDNS, detector.SIDVendorDNS:
		if proto == 6 || proto == 17 {
			return "dns"
		}
	case detector.SIDIKE:
		return "ike"
	case detector.SIDSOCKS:
		return ""
	}
	switch a.Mode {
	case detector.ModeHTTPProxy:
		if proto == 6 {
			return "http"
		}
	case detector.ModeSSH:
		return "ssh"
	case detector.ModeSOCKS5, detector.ModeSOCKS4:
		return ""
	}
	if proto == 6 && a.TLS != nil {
		return "tls"
	}
	return ""
}

// inIface is the in_iface of a flow's events: the live interface its first
// packet came in on ("" when reading files).
func (e *Engine) inIface(f *detector.Flow) string {
	if len(e.cfg.Ifaces) == 0 {
		return ""
	}
	return e.cfg.Ifaces[min(int(f.Iface), len(e.cfg.Ifaces)-1)]
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
		InIface:     e.inIface(f),
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

package verdict

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sewatch/sewatch/detector"
)

// AllowRule names sanctioned SoftEther servers. A session whose server
// matches any of the rule's addresses, SNI names or certificate
// fingerprints is suppressed (no alert, counted) or downgraded (severity 3,
// with the reason in alert.metadata.allowlisted).
type AllowRule struct {
	Name     string         `yaml:"name"`
	CIDRs    []netip.Prefix `yaml:"cidrs"`
	SNIs     []string       `yaml:"sni"`       // exact name, or "*.example.com"
	CertSHA1 []string       `yaml:"cert-sha1"` // "aa:bb:…", as EVE's tls.fingerprint
	Action   string         `yaml:"action"`    // "suppress" or "downgrade"
}

// Validate checks a rule without I/O.
func (r AllowRule) Validate() error {
	if r.Action != "suppress" && r.Action != "downgrade" {
		return fmt.Errorf("allowlist rule %q: action must be suppress or downgrade", r.Name)
	}
	if len(r.CIDRs)+len(r.SNIs)+len(r.CertSHA1) == 0 {
		return fmt.Errorf("allowlist rule %q matches nothing (give cidrs, sni or cert-sha1)", r.Name)
	}
	return nil
}

// match says why the rule covers an alert, or "".
func (r AllowRule) match(a *Alert) string {
	srv := a.Anchor.Flow.Server.Addr()
	for _, p := range r.CIDRs {
		if p.Contains(srv) {
			return fmt.Sprintf("server %s in %s", srv, p)
		}
	}
	if a.TLS == nil {
		return ""
	}
	for _, s := range r.SNIs {
		sni := strings.ToLower(a.TLS.SNI)
		s = strings.ToLower(s)
		if sni != "" && (sni == s || (strings.HasPrefix(s, "*.") && strings.HasSuffix(sni, s[1:]))) {
			return fmt.Sprintf("SNI %s matches %s", a.TLS.SNI, s)
		}
	}
	for _, fp := range r.CertSHA1 {
		if a.TLS.Fingerprint != "" && strings.EqualFold(fp, a.TLS.Fingerprint) {
			return "certificate fingerprint " + fp
		}
	}
	return ""
}

// relayClients is how many distinct outside clients make a relay.
const relayClients = 3

// applyPolicy runs on every session alert before it is emitted. It returns
// false when the alert is suppressed.
func (v *Verdict) applyPolicy(a *Alert) bool {
	for _, r := range v.cfg.Allow {
		if why := r.match(a); why != "" {
			reason := r.Name + ": " + why
			if r.Action == "suppress" {
				v.suppressed++
				return false
			}
			a.Signature.Severity = 3
			// ET's scale follows the downgrade, so SIEM rules keyed on
			// signature_severity treat it like severity 3.
			a.Signature.Meta.SignatureSeverity = "Informational"
			a.Extra = map[string][]string{"allowlisted": {reason}}
		}
	}
	if name, ok := v.cfg.VPNGate[a.Anchor.Flow.Server.Addr().Unmap()]; ok {
		if a.Extra == nil {
			a.Extra = map[string][]string{}
		}
		// Corroboration only: the list mixes in innocent addresses.
		a.Extra["vpngate_listed"] = []string{name}
	}
	return true
}

// serverRole raises, once per host, an alert that a host of the home
// networks accepts SoftEther sessions from outside, and when several
// distinct outside clients use it, that it acts as a public relay (such as
// VPN Gate). Called under the lock after a session alert.
func (v *Verdict) serverRole(a Alert, o *outbox) {
	if len(v.cfg.HomeNets) == 0 || a.Mode == detector.ModeAdmin {
		return
	}
	srv, cli := a.Anchor.Flow.Server.Addr().Unmap(), a.Anchor.Flow.Client.Addr().Unmap()
	if !inNets(v.cfg.HomeNets, srv) || inNets(v.cfg.HomeNets, cli) {
		return
	}
	if v.clients[srv] == nil {
		if len(v.clients) >= maxServers {
			for k := range v.clients { // any one: bounded memory
				delete(v.clients, k)
				break
			}
		}
		v.clients[srv] = map[netip.Addr]bool{}
	}
	if len(v.clients[srv]) < relayClients {
		v.clients[srv][cli] = true // only how many, up to relayClients, matters
	}
	n := len(v.clients[srv])
	emit := func(sid int, why string) {
		sig, _ := detector.ByID(sid)
		x := a
		x.Signature, x.Mode = sig, detector.ModeServer
		x.Evidence = append([]detector.Evidence{{Kind: detector.KindServerRole, Detail: why, Weight: 1}}, a.Evidence...)
		x.Extra = map[string][]string{"server_host": {srv.String()}}
		v.alerts++
		o.alerts = append(o.alerts, x)
		if len(v.roles) >= 2*maxServers {
			for k := range v.roles { // bounded: a forgotten role may be reported again
				delete(v.roles, k)
				break
			}
		}
	}
	if n == 1 && !v.roles[roleKey{srv, detector.SIDServerInside}] {
		v.roles[roleKey{srv, detector.SIDServerInside}] = true
		emit(detector.SIDServerInside, fmt.Sprintf("internal host %s accepts SoftEther sessions from %s", srv, cli))
	}
	if n >= relayClients && !v.roles[roleKey{srv, detector.SIDRelayInside}] {
		v.roles[roleKey{srv, detector.SIDRelayInside}] = true
		emit(detector.SIDRelayInside, fmt.Sprintf("internal host %s serves SoftEther sessions to %d distinct outside clients", srv, n))
	}
}

type roleKey struct {
	host netip.Addr
	sid  int
}

func inNets(nets []netip.Prefix, a netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

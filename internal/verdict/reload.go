package verdict

import "net/netip"

// SetLists replaces the allowlist and the VPN Gate list while the engine
// runs (the command reloads them on SIGHUP). Alerts after the call use the
// new lists; sessions already alerted are not re-evaluated.
func (v *Verdict) SetLists(allow []AllowRule, vpnGate map[netip.Addr]string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cfg.Allow, v.cfg.VPNGate = allow, vpnGate
}

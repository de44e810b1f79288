package verdict

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/sewatch/sewatch/detector"
)

// maxServers bounds the hosts remembered as SoftEther servers.
const maxServers = 4096

// A cascade (a Virtual Hub linked to another server's hub, site-to-site)
// logs in exactly as a VPN client does; what it says about itself travels
// encrypted. The wire tells it apart only through the initiator: a host the
// tap has already seen acting as a SoftEther server (accepting a session or
// an admin connection, registering a DDNS name) that then opens a session
// to another server is a server linking to a server.

// noteServer remembers the SoftEther server of an alert. For proxied and
// SSH-forwarded sessions the flow's server is the proxy, not SoftEther.
func (v *Verdict) noteServer(a Alert) {
	switch a.Mode {
	case detector.ModeHTTPProxy, detector.ModeSOCKS5, detector.ModeSOCKS4, detector.ModeSSH:
		return
	}
	srv := a.Anchor.Server.Unmap()
	if a.Anchor.Flow.Server.IsValid() {
		srv = a.Anchor.Flow.Server.Addr().Unmap()
	}
	what := "accepted a SoftEther session"
	if a.Mode == detector.ModeAdmin {
		what = "accepted a SoftEther admin connection"
	}
	v.rememberServer(srv, what, a.Anchor.Time)
}

// serverSeen is how and when a host was seen acting as a SoftEther server.
type serverSeen struct {
	what string
	at   time.Time
}

func (v *Verdict) rememberServer(h netip.Addr, what string, at time.Time) {
	if !h.IsValid() {
		return
	}
	if _, ok := v.servers[h]; ok {
		return
	}
	if len(v.servers) >= maxServers {
		for k := range v.servers { // any one: the map only corroborates
			delete(v.servers, k)
			break
		}
	}
	v.servers[h] = serverSeen{what, at}
}

// markCascade turns a client session whose initiator is a known SoftEther
// server into a cascade session.
func (v *Verdict) markCascade(a *Alert) {
	switch a.Mode {
	case detector.ModeDirect, detector.ModeMidSession, detector.ModeUDPAccel, detector.ModeHTTPProxy, detector.ModeSOCKS5, detector.ModeSOCKS4:
	default:
		return
	}
	cli := a.Anchor.Flow.Client.Addr().Unmap()
	seen, ok := v.servers[cli]
	if !ok {
		return
	}
	a.Mode = detector.ModeCascade
	a.Signature = detector.SessionSignature(detector.ModeCascade)
	a.Evidence = append([]detector.Evidence{{Kind: detector.KindCascadeInitiator,
		Detail: fmt.Sprintf("the initiator %s is itself a SoftEther server: it %s at %s", cli, seen.what,
			seen.at.UTC().Format(time.RFC3339))}}, a.Evidence...)
}

// softetherServerHint: SoftEther's server sends a NetBIOS node-status query
// to the peer of every TCP connection it accepts, whatever the protocol
// (SoftEther, OpenVPN, SSTP), within milliseconds. Seen right at the start
// of another VPN's connection, it hints that the server is SoftEther; the
// alert stays the other VPN's.
func (v *Verdict) softetherServerHint(e detector.Evidence) string {
	srv, cli := e.Flow.Server.Addr().Unmap(), e.Flow.Client.Addr().Unmap()
	t, ok := v.nbstat[pairKey{srv, cli}]
	if !ok || e.Flow.Start.IsZero() {
		return ""
	}
	d := t.Sub(e.Flow.Start)
	if d < -100*time.Millisecond || d > time.Second {
		return ""
	}
	return fmt.Sprintf("; the server sent a NetBIOS node-status query to the client %d ms after the connection began, as SoftEther's server does for every TCP connection it accepts", d.Milliseconds())
}

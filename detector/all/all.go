// Package all registers every detector; only cmd/ imports it.
package all

import (
	_ "github.com/sewatch/sewatch/detector/attempt"     // repeated connect attempts without a session
	_ "github.com/sewatch/sewatch/detector/cleartunnel" // the tunnel in clear (encryption off)
	_ "github.com/sewatch/sewatch/detector/nbnsprobe"   // NBSTAT probes
	_ "github.com/sewatch/sewatch/detector/othervpn"    // OpenVPN, WireGuard, IPsec, L2TP, PPTP
	_ "github.com/sewatch/sewatch/detector/rudpprobe"   // R-UDP DNS/ICMP probes and sessions
	_ "github.com/sewatch/sewatch/detector/sshtunnel"   // SoftEther inside an SSH port forward
	_ "github.com/sewatch/sewatch/detector/sstp"        // SSTP (other VPN)
	_ "github.com/sewatch/sewatch/detector/tlsshape"    // SoftEther TLS session shape
	_ "github.com/sewatch/sewatch/detector/udpaccel"    // UDP acceleration
	_ "github.com/sewatch/sewatch/detector/vendor"      // vendor cloud services
)

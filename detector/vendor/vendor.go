// Package vendor recognises SoftEther's cleartext contacts with its
// vendor's cloud services, each a separate, lower-severity signature that
// says "SoftEther software is present on this host", not "a tunnel is up":
//
//   - DNS queries for the vendor's names (NAT traversal, DDNS, keep-alive,
//     VPN Azure, DDNS host names, VPN Gate),
//   - the cleartext PACK exchange of NAT traversal on UDP (opcodes,
//     "svc_name", "IP=...,PORT=..." replies, the 1-byte 'A'/'B' probes),
//   - the UDP "Internet Connection Keep Alive Packet",
//   - the DDNS HTTP requests (/ddns/ddns.aspx, /ddns/getmyip.ashx),
//   - the VPN Azure control channel ("ACTL"),
//   - TLS with SNI "DDNS" (DDNS and update checks).
package vendor

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/tlshello"
	"github.com/sewatch/sewatch/internal/tlsstream"
)

// Name is the detector's registered name.
const Name = "vendor"

// Kind is the evidence kind of every vendor contact.
const Kind = "softether.vendor-service"

func init() { detector.Register(Name, func() detector.Detector { return Detector{} }) }

// Detector is the vendor-service detector.
type Detector struct{}

// Name implements detector.Detector.
func (Detector) Name() string { return Name }

// NewInspector looks at the first payloads of UDP and TCP flows.
func (Detector) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	switch p.Proto {
	case decode.ProtoUDP:
		return newInspector()
	case decode.ProtoTCP:
		// Only the client's first payload is looked at.
		if pl := p.Payload; len(pl) > 0 && toServer && !vendorTCP(pl) {
			return nil
		}
		return newInspector()
	}
	return nil
}

type inspector struct{ n int }

// ddnsRequest: the client's request to the vendor's dynamic DNS service.
func ddnsRequest(b []byte) bool {
	return bytes.HasPrefix(b, []byte("GET /ddns/getmyip.ashx?v=")) || bytes.HasPrefix(b, []byte("POST /ddns/ddns.aspx?v="))
}

// vendorTCP: a client's first payload the TCP checks below can match.
func vendorTCP(b []byte) bool {
	return ddnsRequest(b) || bytes.HasPrefix(b, []byte("ACTL")) || tlsstream.LooksLikeTLS(b)
}

// vendorSuffixes are the vendor's domains where every name but the domain
// itself and its www name (their web sites) is the software's: users'
// servers' DDNS names (<name>.softether.net, .sedns.cn), VPN Gate hosts
// (public-vpn-N.opengw.net), VPN Azure relays, the services' hosts
// (x?.x?.dev.servers.nat-traversal.softether-network.net). A query for one
// means a SoftEther component (or its VPN Gate plug-in) runs on the host.
var vendorSuffixes = []string{
	".softether-network.net", ".softether.net", ".sedns.cn", ".vpnazure.net", ".opengw.net", ".vpngate.net",
}

// vendorHosts are the software's own names under the vendor's web domains,
// all that SoftEther's source (4.x and 5.x) names there: the server's
// keep-alive target and the client manager's speed-test and public-server
// hosts. Every other name under softether.org, .com and .jp is web content
// a browser reads (language sites, documentation, the corporate site),
// which says nothing about software on the host.
var vendorHosts = []string{"keepalive.softether.org", "speed.softether.com", "public.softether.com"}

func (in *inspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	in.n++
	if in.n > 6 {
		return false
	}
	b := p.Payload
	if len(b) == 0 {
		return true
	}
	report := func(sid int, why string) {
		client, server := p.Src, p.Dst
		if !toServer {
			client, server = p.Dst, p.Src
		}
		s.Report(detector.Evidence{Kind: Kind, Detail: why, Weight: 1, Signature: sid, Mode: "vendor",
			Client: client, Server: server, Flow: *f, Time: p.Time, PcapCnt: p.Index})
	}
	if p.Proto == decode.ProtoUDP {
		var buf [256 + 64]byte
		if name, ok := dnsQueryName(buf[:0], b); ok {
			if vendorNameBytes(name) {
				report(detector.SIDVendorDNS, "DNS query for "+string(name))
			}
			return false
		}
		switch {
		case bytes.Equal(b, []byte("Internet Connection Keep Alive Packet")):
			report(detector.SIDVendorKeepAlive, "UDP datagram \"Internet Connection Keep Alive Packet\" (SoftEther server keep-alive)")
			return false
		case isNATTPack(b):
			report(detector.SIDVendorNATT, "cleartext SoftEther PACK of the NAT traversal service")
			return false
		case bytes.HasPrefix(b, []byte("IP=")) && bytes.Contains(b, []byte(",PORT=")) && len(b) < 64:
			report(detector.SIDVendorNATT, fmt.Sprintf("NAT traversal reply %q", b))
			return false
		}
		return true
	}
	// TCP: the client's first payload.
	if !toServer {
		return true
	}
	switch {
	case ddnsRequest(b):
		line, _, _ := bytes.Cut(b, []byte("\r\n"))
		report(detector.SIDVendorDDNS, fmt.Sprintf("DDNS request %q", line))
	case bytes.HasPrefix(b, []byte("ACTL")):
		report(detector.SIDVendorAzure, "VPN Azure control channel (ACTL)")
	case tlsstream.LooksLikeTLS(b):
		if sni := clientHelloSNI(b); string(sni) == "DDNS" || vendorSNI(sni) {
			report(detector.SIDVendorDDNSTLS, fmt.Sprintf("TLS to a SoftEther vendor service (SNI %q)", sni))
		}
	}
	return false
}

// vendorName is vendorNameBytes on a name with bytes beyond ASCII, which
// strings.ToLower may fold into ASCII.
func vendorName(name string) bool { return vendorNameBytes([]byte(strings.ToLower(name))) }

// dnsQueryName appends the first question of a standard DNS query to dst
// (a caller's buffer: every DNS flow passes here, so no string is made).
func dnsQueryName(dst, b []byte) ([]byte, bool) {
	if len(b) < 17 || b[2]&0x80 != 0 || b[2]&0x78 != 0 || b[4] != 0 || b[5] == 0 {
		return nil, false
	}
	n := len(dst)
	i := 12
	for i < len(b) {
		l := int(b[i])
		if l == 0 {
			return dst, len(dst) > n
		}
		if l > 63 || i+1+l > len(b) || len(dst)-n > 255 {
			return nil, false
		}
		if len(dst) > n {
			dst = append(dst, '.')
		}
		dst = append(dst, b[i+1:i+1+l]...)
		i += 1 + l
	}
	return nil, false
}

// vendorNameBytes tells whether a name (a DNS question's or an SNI's bytes,
// any ASCII case, an optional final dot) is one of the software's own
// names, without copying it.
func vendorNameBytes(name []byte) bool {
	if len(name) > 0 && name[len(name)-1] == '.' {
		name = name[:len(name)-1]
	}
	for _, h := range vendorHosts {
		if len(name) == len(h) && foldEqual(name, h) {
			return true
		}
	}
	for _, s := range vendorSuffixes { // each begins with '.'
		if len(name) > len(s) && foldEqual(name[len(name)-len(s):], s) {
			head := name[:len(name)-len(s)]
			return !(len(head) == 3 && foldEqual(head, "www")) // not the web site
		}
	}
	return false
}

// foldEqual compares ASCII case-insensitively; suffix s is lower case.
func foldEqual(b []byte, s string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// isNATTPack recognises SoftEther's PACK serialisation carrying the NAT
// traversal fields: a big-endian element count followed by
// length-prefixed element names such as "opcode", "tran_id", "svc_name".
func isNATTPack(b []byte) bool {
	if len(b) == 1 && (b[0] == 'A' || b[0] == 'B') {
		return true
	}
	if len(b) < 16 || b[0] != 0 || b[1] != 0 {
		return false
	}
	for _, key := range [][]byte{[]byte("opcode"), []byte("svc_name"), []byte("nat_traversal_version"), []byte("tran_id")} {
		if bytes.Contains(b, key) {
			return true
		}
	}
	return false
}

// clientHelloSNI returns the SNI of a ClientHello carried in one segment
// (it aliases b; nil when there is none). Every TLS connection passes
// here: the hello is scanned, which allocates nothing, and succeeds
// exactly when the full parse does.
func clientHelloSNI(b []byte) []byte {
	if len(b) < 9 {
		return nil
	}
	n := int(b[3])<<8 | int(b[4])
	rec := b[5:]
	if len(rec) > n {
		rec = rec[:n]
	}
	var sni []byte
	tlshello.Messages(rec, func(typ uint8, body []byte) bool {
		if typ == tlshello.TypeClientHello {
			if sc, err := tlshello.ScanClientHello(body); err == nil {
				sni = sc.SNI
			}
		}
		return false
	})
	return sni
}

// vendorSNI is vendorName on a server name in the hello's bytes, without
// making a string of it; a name with bytes beyond ASCII (which
// strings.ToLower may fold into ASCII) takes vendorName itself.
func vendorSNI(sni []byte) bool {
	for _, c := range sni {
		if c >= 0x80 {
			return vendorName(string(sni))
		}
	}
	return vendorNameBytes(sni)
}

// Inspectors come from a pool and go back when the flow ends (Release), so
// a new flow allocates nothing once the pool is warm.
var pool detector.FreeList[inspector]

func newInspector() *inspector {
	in := pool.Get()
	return in
}

// Release returns the inspector to the pool; the engine calls it once, when
// the flow ends or Inspect returned false.
func (in *inspector) Release() { pool.Put(in) }

package vendor

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

func dnsQuery(name string) []byte {
	b := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0, 0, 1, 0, 1)
}

type sink struct{ sids []int }

func (s *sink) Report(e detector.Evidence) { s.sids = append(s.sids, e.Signature) }

func TestVendor(t *testing.T) {
	tests := []struct {
		name  string
		proto uint8
		b     []byte
		want  int
	}{
		{"nat-t name", decode.ProtoUDP, dnsQuery("x1.xc.dev.servers.nat-traversal.softether-network.net"), detector.SIDVendorDNS},
		{"vpn gate host", decode.ProtoUDP, dnsQuery("public-vpn-113.opengw.net"), detector.SIDVendorDNS},
		{"ordinary name", decode.ProtoUDP, dnsQuery("www.example.org"), 0},
		{"look-alike name", decode.ProtoUDP, dnsQuery("notsoftether.net"), 0},
		{"server keep-alive name", decode.ProtoUDP, dnsQuery("keepalive.softether.org"), detector.SIDVendorDNS},
		{"user's DDNS server name", decode.ProtoUDP, dnsQuery("vpn123456789.softether.net."), detector.SIDVendorDNS},
		// The vendor's web sites: a browser reading them, not software.
		{"vendor web site", decode.ProtoUDP, dnsQuery("www.softether.org"), 0},
		{"VPN Gate web site", decode.ProtoUDP, dnsQuery("WWW.VPNGATE.NET"), 0},
		{"vendor domain itself", decode.ProtoUDP, dnsQuery("softether.org."), 0},
		// Under the vendor's web domains only the names SoftEther's source
		// uses are the software's; the rest is web content.
		{"client manager speed test host", decode.ProtoUDP, dnsQuery("SPEED.softether.com"), detector.SIDVendorDNS},
		{"public server host", decode.ProtoUDP, dnsQuery("public.softether.com."), detector.SIDVendorDNS},
		{"Japanese web site", decode.ProtoUDP, dnsQuery("ja.softether.org"), 0},
		{"forum", decode.ProtoUDP, dnsQuery("forum.softether.org"), 0},
		{"corporate site", decode.ProtoUDP, dnsQuery("www.softether.jp"), 0},
		{"corporate mail host", decode.ProtoUDP, dnsQuery("mail.softether.co.jp"), 0},
		{"keep-alive name under another domain", decode.ProtoUDP, dnsQuery("keepalive.softether.org.example.net"), 0},
		{"keep-alive", decode.ProtoUDP, []byte("Internet Connection Keep Alive Packet"), detector.SIDVendorKeepAlive},
		{"nat-t pack", decode.ProtoUDP, append([]byte{0, 0, 0, 3, 0, 0, 0, 7}, "opcode\x00\x00\x00\x02get_token"...), detector.SIDVendorNATT},
		{"nat-t reply", decode.ProtoUDP, []byte("IP=203.0.113.5,PORT=40001"), detector.SIDVendorNATT},
		{"getmyip", decode.ProtoTCP, []byte("GET /ddns/getmyip.ashx?v=1241781624 HTTP/1.1\r\nHost: x\r\n\r\n"), detector.SIDVendorDDNS},
		{"azure", decode.ProtoTCP, []byte("ACTL\x00\x00\x01\x00"), detector.SIDVendorAzure},
		{"web request", decode.ProtoTCP, []byte("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"), 0},
		{"TLS to the DDNS service", decode.ProtoTCP, helloWithSNI("x1.xc.dev.servers.ddns.softether-network.net"), detector.SIDVendorDDNSTLS},
		{"TLS with SoftEther's DDNS SNI", decode.ProtoTCP, helloWithSNI("DDNS"), detector.SIDVendorDDNSTLS},
		{"TLS to the Japanese web site", decode.ProtoTCP, helloWithSNI("ja.softether.org"), 0},
		{"TLS to the VPN Gate web site", decode.ProtoTCP, helloWithSNI("www.vpngate.net"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &detector.Flow{Proto: tc.proto, Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:53")}
			p := &decode.Packet{Proto: tc.proto, Payload: tc.b}
			s := &sink{}
			in := Detector{}.NewInspector(p, true, f)
			if in == nil {
				// Declined at the first payload: nothing can match.
				if tc.want != 0 {
					t.Fatalf("no inspector for a flow that should give %d", tc.want)
				}
				return
			}
			in.Inspect(p, true, f, s)
			if (tc.want == 0 && len(s.sids) != 0) || (tc.want != 0 && (len(s.sids) != 1 || s.sids[0] != tc.want)) {
				t.Errorf("signatures %v, want %d", s.sids, tc.want)
			}
		})
	}
}

// helloWithSNI is a TLS record holding a minimal ClientHello that names sni.
func helloWithSNI(sni string) []byte {
	n := len(sni)
	ext := []byte{0, 0, byte((n + 5) >> 8), byte(n + 5), byte((n + 3) >> 8), byte(n + 3), 0, byte(n >> 8), byte(n)}
	ext = append(ext, sni...)
	body := append([]byte{3, 3}, make([]byte, 32)...)
	body = append(body, 0, 0, 2, 0, 0x2f, 1, 0, byte(len(ext)>>8), byte(len(ext)))
	body = append(body, ext...)
	hs := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{22, 3, 1, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}

func FuzzInspect(f *testing.F) {
	f.Add(dnsQuery("keepalive.softether.org"), true)
	f.Fuzz(func(t *testing.T, b []byte, tcp bool) {
		proto := decode.ProtoUDP
		if tcp {
			proto = decode.ProtoTCP
		}
		fl := &detector.Flow{Proto: proto}
		p := &decode.Packet{Proto: proto, Payload: b}
		if in := (Detector{}).NewInspector(p, true, fl); in != nil {
			in.Inspect(p, true, fl, &sink{})
		}
	})
}

// FuzzVendorName: the byte matcher (DNS names, ASCII SNIs) and the string
// one (SNIs with other bytes) agree on every ASCII name, web sites
// (the domain itself, its www name) included.
func FuzzVendorName(f *testing.F) {
	for _, n := range []string{"keepalive.softether.org", "www.softether.org", "softether.org.", "WWW.VPNGATE.NET",
		"wwww.vpngate.net", "www.x.opengw.net", "x.www.softether.net", "notsoftether.net", "ww.sedns.cn", ""} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, name string) {
		for i := 0; i < len(name); i++ {
			if name[i] >= 0x80 {
				return // strings.ToLower folds more than ASCII there
			}
		}
		if a, b := vendorName(name), vendorNameBytes([]byte(name)); a != b {
			t.Fatalf("%q: vendorName %v, vendorNameBytes %v", name, a, b)
		}
	})
}

package vpngate

import (
	"net/netip"
	"strings"
	"testing"
)

const sample = "*vpn_servers\r\n" +
	"#HostName,IP,Score,Ping,Speed,CountryLong,CountryShort,NumVpnSessions,Uptime,TotalUsers,TotalTraffic,LogType,Operator,Message,OpenVPN_ConfigData_Base64\r\n" +
	"public-vpn-113,192.0.2.113,1000,5,100000,Japan,JP,10,100,1000,1000,2weeks,Daiyuu Nobori_ Japan. Academic Use Only.,\"hello, world\",AAAA\r\n" +
	"vpn123456789,2001:db8::5,900,7,1000,Korea Republic of,KR,3,10,10,10,2weeks,op,,BBBB\r\n" +
	"broken,not-an-ip,1\r\n" +
	"*\r\n"

func TestParse(t *testing.T) {
	l, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 2 || l[netip.MustParseAddr("192.0.2.113")] != "public-vpn-113" || l[netip.MustParseAddr("2001:db8::5")] != "vpn123456789" {
		t.Errorf("list %v", l)
	}
	if _, err := Parse(strings.NewReader("just,some,csv\n")); err == nil {
		t.Error("file without header accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Fuzz(func(t *testing.T, s string) { Parse(strings.NewReader(s)) })
}

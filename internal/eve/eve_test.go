package eve

import (
	"net/netip"
	"testing"
	"time"
)

func TestCommunityID(t *testing.T) {
	// Vectors from the Community ID specification's baseline and from
	// tshark's communityid post-dissector on the bundled captures.
	a := netip.MustParseAddr
	tests := []struct {
		name       string
		seed       uint16
		src, dst   string
		proto      uint8
		sport, dpt uint16
		want       string
	}{
		{"tcp", 0, "1.2.3.4", "5.6.7.8", 6, 1122, 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
		{"tcp reversed", 0, "5.6.7.8", "1.2.3.4", 6, 3344, 1122, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
		{"udp", 0, "1.2.3.4", "5.6.7.8", 17, 1122, 3344, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="},
		{"sctp", 0, "1.2.3.4", "5.6.7.8", 132, 1122, 3344, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8="},
		{"icmp echo", 0, "1.2.3.4", "5.6.7.8", 1, 8, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="},
		{"icmp echo reply", 0, "5.6.7.8", "1.2.3.4", 1, 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="},
		{"icmp one-way", 0, "1.2.3.4", "5.6.7.8", 1, 11, 0, "1:f/YiSyWqczrTgfUCZlBUnvHRcPk="},
		{"icmp6", 0, "fe80:1:203:405:607:809:a0b:c0d", "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", 58, 128, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="},
		{"rsvp", 0, "1.2.3.4", "5.6.7.8", 46, 0, 0, "1:ikv3kmf89luf73WPz1jOs49S768="},
		{"seed 1", 1, "1.2.3.4", "5.6.7.8", 6, 1122, 3344, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="},
		{"ipv6 tcp", 0, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 6, 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
		{"dns", 0, "192.168.1.52", "8.8.8.8", 17, 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CommunityID(tc.seed, a(tc.src), a(tc.dst), tc.proto, tc.sport, tc.dpt)
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestTimestamp(t *testing.T) {
	ts := time.Date(2026, 11, 22, 10, 13, 1, 120000000, time.UTC)
	if got, want := Timestamp(ts, nil), "2026-11-22T10:13:01.120000+0000"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	cet := time.FixedZone("CET", 3600)
	if got, want := Timestamp(ts, cet), "2026-11-22T11:13:01.120000+0100"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestIP(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.1.2":             "198.18.1.2",
		"::ffff:10.0.0.1":        "10.0.0.1",
		"2001:db8::1":            "2001:0db8:0000:0000:0000:0000:0000:0001",
		"fe80::a:b:c:d":          "fe80:0000:0000:0000:000a:000b:000c:000d",
		"2607:f8b0:400c:c03::1a": "2607:f8b0:400c:0c03:0000:0000:0000:001a",
	} {
		if got := IP(netip.MustParseAddr(in)); got != want {
			t.Errorf("IP(%s) = %s, want %s", in, got, want)
		}
	}
}

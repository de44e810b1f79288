package tlshello

import (
	"errors"
	"io"
	"testing"

	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/decode"
)

// handshakes returns, from a bundled capture, the cleartext handshake bytes
// (record headers stripped) of the first record of every TCP segment that
// starts a handshake record, in capture order.
func handshakes(t testing.TB, file string, server bool) [][]byte {
	t.Helper()
	src, err := capture.OpenFile("../../testdata/pcap/"+file, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dec := decode.NewDecoder(decode.LinkType(src.LinkType()))
	var out [][]byte
	var p decode.Packet
	for {
		d, _, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if dec.Decode(d, &p) != nil || p.Proto != decode.ProtoTCP || len(p.Payload) < 9 {
			continue
		}
		pl := p.Payload
		if pl[0] != 22 || pl[1] != 3 {
			continue
		}
		want := TypeClientHello
		if server {
			want = TypeServerHello
		}
		if pl[5] != want {
			continue
		}
		// Concatenate consecutive handshake records of this segment.
		var hs []byte
		for len(pl) >= 5 && pl[0] == 22 {
			n := int(pl[3])<<8 | int(pl[4])
			if 5+n > len(pl) {
				hs = append(hs, pl[5:]...)
				break
			}
			hs = append(hs, pl[5:5+n]...)
			pl = pl[5+n:]
		}
		out = append(out, hs)
	}
}

func firstMessage(t *testing.T, hs []byte, typ uint8) []byte {
	t.Helper()
	var body []byte
	Messages(hs, func(ty uint8, b []byte) bool {
		if ty == typ {
			body = b
			return false
		}
		return true
	})
	if body == nil {
		t.Fatalf("no handshake message of type %d", typ)
	}
	return body
}

func TestClientHello(t *testing.T) {
	tests := []struct {
		name, file string
		index      int
		ja3, ja4   string
		sni        string
		alpn       int
		ticket     bool
	}{
		{"softether client", "se-direct-443.pcap", 0, "55ed5da8a9fd9dfe64815f295dbb9f87", "t13d310900_e8f1e7e78f70_c9e58cc61e36", "198.18.2.2", 0, false},
		{"openssl s_client tls1.2", "se-tls12-probe.pcap", 0, "871a754af286dfb70c1b53c6887c62e0", "", "198.18.2.2", 0, true},
		{"curl", "se-tls12-probe.pcap", 2, "78f0dc5ac5b19daf131a133cfdee9691", "", "", 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := handshakes(t, tc.file, false)
			if len(hs) <= tc.index {
				t.Fatalf("only %d hellos", len(hs))
			}
			ch, err := ParseClientHello(firstMessage(t, hs[tc.index], TypeClientHello))
			if err != nil {
				t.Fatal(err)
			}
			if _, h := JA3(&ch); h != tc.ja3 {
				t.Errorf("JA3 %s, want %s", h, tc.ja3)
			}
			if tc.ja4 != "" && JA4(&ch) != tc.ja4 {
				t.Errorf("JA4 %s, want %s", JA4(&ch), tc.ja4)
			}
			if ch.SNI != tc.sni || len(ch.ALPN) != tc.alpn || ch.HasExtension(ExtSessionTicket) != tc.ticket {
				t.Errorf("sni %q alpn %v ticket %v", ch.SNI, ch.ALPN, ch.HasExtension(ExtSessionTicket))
			}
		})
	}
}

func TestServerHelloAndCertificate(t *testing.T) {
	// TLS 1.3 server of a SoftEther session.
	sh, err := ParseServerHello(firstMessage(t, handshakes(t, "se-direct-443.pcap", true)[0], TypeServerHello))
	if err != nil {
		t.Fatal(err)
	}
	if _, h := JA3S(&sh); h != "15af977ce25de452b96affa2addb1036" || sh.SelectedVersion != 0x0304 {
		t.Errorf("JA3S %s version %x", h, sh.SelectedVersion)
	}
	// TLS 1.2: the SoftEther server's default certificate in clear.
	hs := handshakes(t, "se-tls12-probe.pcap", true)[0]
	sh12, err := ParseServerHello(firstMessage(t, hs, TypeServerHello))
	if err != nil || sh12.SelectedVersion != 0 || VersionString(sh12.LegacyVersion) != "TLS 1.2" {
		t.Fatalf("server hello %+v %v", sh12, err)
	}
	c, err := ParseCertificate(firstMessage(t, hs, TypeCertificate), false)
	if err != nil {
		t.Fatal(err)
	}
	if !c.SelfSigned || !c.IsCA || c.Serial != "00" || c.ExtKeyUsageCount != 9 || c.HasSAN || c.HasSKI || c.HasAKI {
		t.Errorf("certificate fields %+v", c)
	}
	if y, m, d := c.NotAfter.UTC().Date(); y != 2037 || m != 12 || d != 31 {
		t.Errorf("notAfter %v", c.NotAfter)
	}
	if c.Subject == "" || c.Subject != c.Issuer || len(c.FingerprintSHA1) != 59 {
		t.Errorf("subject %q issuer %q fingerprint %q", c.Subject, c.Issuer, c.FingerprintSHA1)
	}
}

func TestTruncatedHellosNeverPanic(t *testing.T) {
	body := firstMessage(t, handshakes(t, "se-direct-443.pcap", false)[0], TypeClientHello)
	for i := 0; i < len(body); i++ {
		if _, err := ParseClientHello(body[:i]); err == nil && i < 40 {
			t.Errorf("prefix of %d bytes parsed without error", i)
		}
	}
	if IsGREASE(0x0303) || !IsGREASE(0x2a2a) {
		t.Error("GREASE detection")
	}
}

func FuzzParseClientHello(f *testing.F) {
	for _, hs := range handshakes(f, "se-tls12-probe.pcap", false) {
		f.Add(hs)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		Messages(b, func(typ uint8, body []byte) bool {
			if ch, err := ParseClientHello(body); err == nil {
				JA3(&ch)
				JA4(&ch)
			}
			return true
		})
		if ch, err := ParseClientHello(b); err == nil {
			JA4(&ch)
		}
	})
}

func FuzzParseServerHello(f *testing.F) {
	for _, hs := range handshakes(f, "se-tls12-probe.pcap", true) {
		f.Add(hs)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		Messages(b, func(typ uint8, body []byte) bool {
			if sh, err := ParseServerHello(body); err == nil {
				JA3S(&sh)
			}
			ParseCertificate(body, false)
			ParseCertificate(body, true)
			return true
		})
	})
}

package tlshello

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The files under testdata/ hold handshake messages (4-byte header
// included) from the shared capture corpus; testdata/README.md says which
// frame each comes from and where the expected values were taken.

func loadHex(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// message returns the body of the first message of type typ in hs.
func message(t testing.TB, hs []byte, typ uint8) []byte {
	t.Helper()
	body := Message(hs, typ)
	if body == nil {
		t.Fatalf("no handshake message of type %d", typ)
	}
	return body
}

func TestClientHello(t *testing.T) {
	tests := []struct {
		name, file      string
		ja3, ja3str     string // ja3 from tshark -e tls.handshake.ja3 / ja3_full
		ja4, ja4raw     string // from the reference ja4.py (JA4 and JA4_r)
		sni             string
		alpn            []string
		ciphers, exts   int
		sid             int
		legacy, max     uint16
		groups, sigalgs int
		points          []uint8
	}{
		{
			name: "softether client", file: "se-direct-443.client-hello.hex",
			ja3:    "55ed5da8a9fd9dfe64815f295dbb9f87",
			ja3str: "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-10-22-23-13-43-45-51,29-23-30-25-24-256-257-258-259-260,0-1-2",
			ja4:    "t13d310900_e8f1e7e78f70_c9e58cc61e36",
			ja4raw: "t13d310900_002f,0033,0035,0039,003c,003d,0067,006b,009c,009d,009e,009f,00ff,1301,1302,1303,c009,c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9,ccaa_000a,000b,000d,0016,0017,002b,002d,0033_0403,0503,0603,0807,0808,0809,080a,080b,0804,0805,0806,0401,0501,0601,0303,0301,0302,0402,0502,0602",
			sni:    "198.18.2.2", ciphers: 31, exts: 9, sid: 32, legacy: VersionTLS12, max: VersionTLS13,
			groups: 10, sigalgs: 20, points: []uint8{0, 1, 2},
		},
		{
			name: "curl h2 with sni", file: "neg-https-browse.client-hello-h2.hex",
			ja3:    "0149f47eabf9a20d0893e2a44e5a6323",
			ja3str: "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-10-16-22-23-49-13-43-45-51-21,29-23-30-25-24-256-257-258-259-260,0-1-2",
			ja4:    "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6",
			ja4raw: "t13d3112h2_002f,0033,0035,0039,003c,003d,0067,006b,009c,009d,009e,009f,00ff,1301,1302,1303,c009,c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9,ccaa_000a,000b,000d,0015,0016,0017,002b,002d,0031,0033_0403,0503,0603,0807,0808,0809,080a,080b,0804,0805,0806,0401,0501,0601,0303,0301,0302,0402,0502,0602",
			sni:    "www.neg-lab.example", alpn: []string{"h2", "http/1.1"}, ciphers: 31, exts: 12, sid: 32,
			legacy: VersionTLS12, max: VersionTLS13, groups: 10, sigalgs: 20, points: []uint8{0, 1, 2},
		},
		{
			name: "curl by address, no sni", file: "neg-https-browse.client-hello-nosni.hex",
			ja3:  "78f0dc5ac5b19daf131a133cfdee9691",
			ja4:  "t13i3111h1_e8f1e7e78f70_b26ce05bbdd6",
			alpn: []string{"http/1.1"}, ciphers: 31, exts: 11, sid: 32,
			legacy: VersionTLS12, max: VersionTLS13, groups: 10, sigalgs: 20, points: []uint8{0, 1, 2},
		},
		{
			name: "curl forced tls 1.2", file: "neg-https-browse.client-hello-tls12.hex",
			ja3:    "87b9bfc7da97115ed2276737b09f8d74",
			ja3str: "771,49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-10-16-22-23-13,29-23-30-25-24,0-1-2",
			ja4:    "t12d2807h1_d943125447b4_a44c6288192a",
			ja4raw: "t12d2807h1_002f,0033,0035,0039,003c,003d,0067,006b,009c,009d,009e,009f,00ff,c009,c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9,ccaa_000a,000b,000d,0016,0017_0403,0503,0603,0807,0808,0809,080a,080b,0804,0805,0806,0401,0501,0601,0303,0301,0302,0402,0502,0602",
			sni:    "api.neg-lab.example", alpn: []string{"http/1.1"}, ciphers: 28, exts: 7, sid: 0,
			legacy: VersionTLS12, max: VersionTLS12, groups: 5, sigalgs: 20, points: []uint8{0, 1, 2},
		},
		{
			name: "openssl s_client tls 1.2 probe", file: "se-tls12-probe.client-hello.hex",
			ja3: "871a754af286dfb70c1b53c6887c62e0",
			ja4: "t12d280700_d943125447b4_e7e480e5a997",
			sni: "198.18.2.2", ciphers: 28, exts: 7, sid: 0,
			legacy: VersionTLS12, max: VersionTLS12, groups: 5, sigalgs: 20, points: []uint8{0, 1, 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := ParseClientHello(message(t, loadHex(t, tc.file), TypeClientHello))
			if err != nil {
				t.Fatal(err)
			}
			str, h := JA3(&ch)
			if h != tc.ja3 {
				t.Errorf("JA3 %s, want %s (string %s)", h, tc.ja3, str)
			}
			if tc.ja3str != "" && str != tc.ja3str {
				t.Errorf("JA3 string\n got %s\nwant %s", str, tc.ja3str)
			}
			if got := JA4(&ch); got != tc.ja4 {
				t.Errorf("JA4 %s, want %s", got, tc.ja4)
			}
			if tc.ja4raw != "" {
				if got := JA4Raw(&ch); got != tc.ja4raw {
					t.Errorf("JA4_r\n got %s\nwant %s", got, tc.ja4raw)
				}
			}
			if ch.SNI != tc.sni {
				t.Errorf("SNI %q, want %q", ch.SNI, tc.sni)
			}
			if !slices.Equal(ch.ALPN, tc.alpn) {
				t.Errorf("ALPN %q, want %q", ch.ALPN, tc.alpn)
			}
			if len(ch.Ciphers) != tc.ciphers || len(ch.Extensions) != tc.exts || ch.SessionIDLen != tc.sid {
				t.Errorf("%d ciphers, %d extensions, session id %d; want %d, %d, %d",
					len(ch.Ciphers), len(ch.Extensions), ch.SessionIDLen, tc.ciphers, tc.exts, tc.sid)
			}
			if ch.LegacyVersion != tc.legacy || ch.MaxVersion() != tc.max {
				t.Errorf("legacy %#04x max %#04x, want %#04x %#04x", ch.LegacyVersion, ch.MaxVersion(), tc.legacy, tc.max)
			}
			if len(ch.Groups) != tc.groups || len(ch.SigAlgs) != tc.sigalgs || !slices.Equal(ch.PointFormats, tc.points) {
				t.Errorf("%d groups, %d sigalgs, points %v", len(ch.Groups), len(ch.SigAlgs), ch.PointFormats)
			}
			if ch.HasExtension(ExtALPN) != (tc.alpn != nil) || ch.HasExtension(ExtServerName) != (tc.sni != "") {
				t.Errorf("HasExtension disagrees with ALPN/SNI: %v", ch.Extensions)
			}
		})
	}
}

func TestSoftEtherClientHelloDetails(t *testing.T) {
	// The values listed for frame 10 in the corpus documentation.
	ch, err := ParseClientHello(message(t, loadHex(t, "se-direct-443.client-hello.hex"), TypeClientHello))
	if err != nil {
		t.Fatal(err)
	}
	wantCiphers := []uint16{0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0x009f, 0xcca9, 0xcca8, 0xccaa, 0xc02b, 0xc02f,
		0x009e, 0xc024, 0xc028, 0x006b, 0xc023, 0xc027, 0x0067, 0xc00a, 0xc014, 0x0039, 0xc009, 0xc013, 0x0033,
		0x009d, 0x009c, 0x003d, 0x003c, 0x0035, 0x002f, 0x00ff}
	wantExts := []uint16{0, 11, 10, 22, 23, 13, 43, 45, 51}
	wantVersions := []uint16{0x0304, 0x0303, 0x0302, 0x0301}
	wantGroups := []uint16{0x001d, 0x0017, 0x001e, 0x0019, 0x0018, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104}
	if !slices.Equal(ch.Ciphers, wantCiphers) || !slices.Equal(ch.Extensions, wantExts) ||
		!slices.Equal(ch.SupportedVersions, wantVersions) || !slices.Equal(ch.Groups, wantGroups) {
		t.Errorf("lists differ: %+v", ch)
	}
	if ch.ALPN != nil || ch.HasExtension(ExtSessionTicket) {
		t.Errorf("ALPN %v, session ticket %v", ch.ALPN, ch.HasExtension(ExtSessionTicket))
	}
	// Appending to one list must not clobber another sharing its array.
	_ = append(ch.Ciphers, 0xffff)
	_ = append(ch.Extensions, 0xffff)
	if !slices.Equal(ch.Extensions, wantExts) || ch.Groups[0] != 0x001d {
		t.Error("lists share capacity")
	}
}

func TestServerHello(t *testing.T) {
	tests := []struct {
		name, file string
		ja3s, str  string // tshark ja3s / ja3s_full
		version    string
		selected   uint16
		cipher     uint16
		exts       []uint16
		alpn       string
	}{
		{"softether server tls 1.3", "se-direct-443.server-hello.hex", "15af977ce25de452b96affa2addb1036", "771,4866,43-51",
			"TLS 1.3", VersionTLS13, 0x1302, []uint16{43, 51}, ""},
		{"softether server tls 1.2 probe", "se-tls12-probe.server-flight.hex", "e54965894d6b45ecb4323c7ea3d6c115", "771,49200,65281-11-23",
			"TLS 1.2", 0, 0xc030, []uint16{0xff01, 11, 23}, ""},
		{"nginx tls 1.2", "neg-https-browse.server-flight-tls12.hex", "263c859c5391203d774bc0599793d915", "771,49200,65281-0-11-16-23",
			"TLS 1.2", 0, 0xc030, []uint16{0xff01, 0, 11, 16, 23}, "http/1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sh, err := ParseServerHello(message(t, loadHex(t, tc.file), TypeServerHello))
			if err != nil {
				t.Fatal(err)
			}
			str, h := JA3S(&sh)
			if h != tc.ja3s || str != tc.str {
				t.Errorf("JA3S %s %s, want %s %s", str, h, tc.str, tc.ja3s)
			}
			if VersionString(sh.Version()) != tc.version || sh.SelectedVersion != tc.selected || sh.Cipher != tc.cipher {
				t.Errorf("version %q selected %#04x cipher %#04x", VersionString(sh.Version()), sh.SelectedVersion, sh.Cipher)
			}
			if !slices.Equal(sh.Extensions, tc.exts) || sh.ALPN != tc.alpn || sh.HelloRetryRequest || sh.SessionIDLen != 32 {
				t.Errorf("extensions %v ALPN %q HRR %v session id %d", sh.Extensions, sh.ALPN, sh.HelloRetryRequest, sh.SessionIDLen)
			}
		})
	}
}

func TestMessages(t *testing.T) {
	flight := loadHex(t, "se-tls12-probe.server-flight.hex")
	var types []uint8
	n := Messages(flight, func(typ uint8, body []byte) bool {
		types = append(types, typ)
		return true
	})
	want := []uint8{TypeServerHello, TypeCertificate, TypeServerKeyExchange, TypeServerHelloDone}
	if n != len(flight) || !slices.Equal(types, want) {
		t.Fatalf("consumed %d of %d, types %v", n, len(flight), types)
	}
	// A message cut anywhere is left for later: consumption stops at the
	// end of the last complete message.
	ends := []int{0}
	Messages(flight, func(_ uint8, body []byte) bool {
		ends = append(ends, ends[len(ends)-1]+4+len(body))
		return true
	})
	for i := 0; i <= len(flight); i++ {
		calls := 0
		got := Messages(flight[:i], func(uint8, []byte) bool { calls++; return true })
		wantN, wantCalls := 0, 0
		for k, e := range ends {
			if e <= i {
				wantN, wantCalls = e, k
			}
		}
		if got != wantN || calls != wantCalls {
			t.Fatalf("prefix %d: consumed %d in %d calls, want %d in %d", i, got, calls, wantN, wantCalls)
		}
	}
	// Stopping early consumes the message stopped on, not the rest.
	n = Messages(flight, func(typ uint8, _ []byte) bool { return typ != TypeCertificate })
	if n != ends[2] {
		t.Errorf("stop on certificate consumed %d, want %d", n, ends[2])
	}
	// A body cannot be grown into the next message.
	Messages(flight, func(_ uint8, body []byte) bool {
		if cap(body) != len(body) {
			t.Errorf("body capacity %d > length %d", cap(body), len(body))
		}
		return true
	})
	if Messages([]byte{1, 0xff, 0xff, 0xff, 0}, func(uint8, []byte) bool { t.Error("called"); return true }) != 0 {
		t.Error("hostile length consumed")
	}
}

func TestVersionString(t *testing.T) {
	for v, want := range map[uint16]string{
		0x0304: "TLS 1.3", 0x0303: "TLS 1.2", 0x0302: "TLS 1.1", 0x0301: "TLSv1", 0x0300: "SSLv3", 0x0200: "SSLv2",
		0x7f1c: "TLS 1.3 draft-28", 0x7f10: "TLS 1.3 draft-16", 0x7f01: "TLS 1.3 draft-<16", 0xfb1a: "TLS 1.3 draft-26-fb",
		0xfb14: "TLS 1.3 draft-20-fb", 0: "UNDETERMINED", 0x0305: "UNDETERMINED", 0x7f1d: "UNDETERMINED",
		0xfb18: "UNDETERMINED", 0x0a0a: "UNDETERMINED", 0xfeff: "UNDETERMINED",
	} {
		if got := VersionString(v); got != want {
			t.Errorf("VersionString(%#04x) = %q, want %q", v, got, want)
		}
	}
}

// hello builds a ClientHello body from its parts.
type hello struct {
	version uint16
	sid     int
	ciphers []uint16
	exts    [][]byte // each a full extension (type, length, data)
	noExt   bool
}

func (h hello) body() []byte {
	b := []byte{byte(h.version >> 8), byte(h.version)}
	b = append(b, make([]byte, 32)...)
	b = append(b, byte(h.sid))
	b = append(b, make([]byte, h.sid)...)
	b = append(b, byte(len(h.ciphers)*2>>8), byte(len(h.ciphers)*2))
	for _, c := range h.ciphers {
		b = append(b, byte(c>>8), byte(c))
	}
	b = append(b, 1, 0)
	if h.noExt {
		return b
	}
	var e []byte
	for _, x := range h.exts {
		e = append(e, x...)
	}
	b = append(b, byte(len(e)>>8), byte(len(e)))
	return append(b, e...)
}

func ext(typ uint16, data ...byte) []byte {
	return append([]byte{byte(typ >> 8), byte(typ), byte(len(data) >> 8), byte(len(data))}, data...)
}

func u16s(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = append(b, byte(v>>8), byte(v))
	}
	return b
}

func vec16(b []byte) []byte { return append([]byte{byte(len(b) >> 8), byte(len(b))}, b...) }

func alpnExt(names ...string) []byte {
	var l []byte
	for _, n := range names {
		l = append(l, byte(len(n)))
		l = append(l, n...)
	}
	return ext(ExtALPN, vec16(l)...)
}

func TestJA4Specification(t *testing.T) {
	// The worked example of technical_details/JA4.md, with GREASE added in
	// every list: GREASE must change neither JA4 nor JA3.
	ciphers := []uint16{0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035}
	extOrder := []uint16{0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015}
	sigs := []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}
	build := func(grease bool, alpn []byte) hello {
		h := hello{version: 0x0303, sid: 32}
		if grease {
			h.ciphers = append(h.ciphers, 0x3a3a)
			h.exts = append(h.exts, ext(0xdada))
		}
		h.ciphers = append(h.ciphers, ciphers...)
		for _, e := range extOrder {
			switch e {
			case ExtServerName:
				h.exts = append(h.exts, ext(e, vec16(append([]byte{0}, vec16([]byte("example.com"))...))...))
			case ExtALPN:
				h.exts = append(h.exts, alpn)
			case ExtSupportedVersions:
				v := u16s(0x0304, 0x0303)
				if grease {
					v = u16s(0x7a7a, 0x0304, 0x0303)
				}
				h.exts = append(h.exts, ext(e, append([]byte{byte(len(v))}, v...)...))
			case ExtSignatureAlgorithms:
				s := u16s(sigs...)
				if grease {
					s = append(u16s(0x1a1a), s...)
				}
				h.exts = append(h.exts, ext(e, vec16(s)...))
			case ExtSupportedGroups:
				g := u16s(0x001d, 0x0017)
				if grease {
					g = u16s(0x4a4a, 0x001d, 0x0017)
				}
				h.exts = append(h.exts, ext(e, vec16(g)...))
			case ExtECPointFormats:
				h.exts = append(h.exts, ext(e, 1, 0))
			default:
				h.exts = append(h.exts, ext(e))
			}
		}
		if grease {
			h.exts = append(h.exts, ext(0x8a8a, 0))
		}
		return h
	}
	parse := func(h hello) ClientHello {
		t.Helper()
		ch, err := ParseClientHello(h.body())
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	plain, greased := parse(build(false, alpnExt("h2"))), parse(build(true, alpnExt("h2")))
	for _, ch := range []ClientHello{plain, greased} {
		if got := JA4(&ch); got != "t13d1516h2_8daaf6152771_e5627efa2ab1" {
			t.Errorf("JA4 %s, want the specification's t13d1516h2_8daaf6152771_e5627efa2ab1", got)
		}
	}
	if a, _ := JA3(&plain); a != func() string { s, _ := JA3(&greased); return s }() {
		t.Errorf("GREASE changes JA3: %s", a)
	}
	// "If there are no signature algorithms in the hello packet, then the
	// string ends without an underscore": the specification's example
	// hashes its extension list alone to 6d807ffa2a79.
	noSig := ClientHello{LegacyVersion: 0x0303, SupportedVersions: []uint16{0x0304}, Ciphers: ciphers,
		Extensions: extOrder, ALPN: []string{"h2"}}
	if got := JA4(&noSig); got != "t13d1516h2_8daaf6152771_6d807ffa2a79" {
		t.Errorf("JA4 without signature algorithms %s, want t13d1516h2_8daaf6152771_6d807ffa2a79", got)
	}
	if got := JA4Raw(&noSig); !strings.HasSuffix(got, "_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01") {
		t.Errorf("JA4_r without signature algorithms: %s", got)
	}

	// ALPN characters, from the specification's examples.
	for _, tc := range []struct {
		alpn []byte
		want string
	}{
		{alpnExt("h2"), "h2"}, {alpnExt("http/1.1"), "h1"}, {alpnExt("b"), "bb"},
		{alpnExt("\xab"), "ab"}, {alpnExt(" "), "20"}, {alpnExt("\xab\xcd"), "ad"}, {alpnExt(" a"), "21"},
		{alpnExt("0\xab"), "3b"}, {alpnExt("a "), "60"}, {alpnExt("01\xab\xcd"), "3d"}, {alpnExt("0\xab\xcd1"), "01"},
		{alpnExt("", "h2"), "00"}, {alpnExt("\x0a\x0a", "h2"), "h2"}, {alpnExt("spdy/3", "h2"), "s3"},
		{ext(0x0a0a), "00"},
	} {
		h := hello{version: 0x0303, ciphers: []uint16{0x1301}, exts: [][]byte{tc.alpn}}
		ch, err := ParseClientHello(h.body())
		if err != nil {
			t.Fatalf("alpn %q: %v", tc.alpn, err)
		}
		if got := JA4(&ch)[8:10]; got != tc.want {
			t.Errorf("ALPN %q gives %q, want %q", ch.ALPN, got, tc.want)
		}
	}

	// Edge cases: no ciphers hash as zeros; so does an extension list with
	// only SNI and ALPN; counts stop at 99; unknown versions are "00".
	many := hello{version: 0x0301, noExt: true}
	for i := range 120 {
		many.ciphers = append(many.ciphers, uint16(0x0100+i))
	}
	ch := parse(many)
	if got := JA4(&ch); !strings.HasPrefix(got, "t10i9900") || !strings.HasSuffix(got, "_000000000000") {
		t.Errorf("JA4 of 120 ciphers, no extensions: %s", got)
	}
	only := parse(hello{version: 0x0399, ciphers: []uint16{0x2a2a}, exts: [][]byte{alpnExt("h2"),
		ext(ExtServerName, vec16(append([]byte{0}, vec16([]byte("a"))...))...)}})
	if got := JA4(&only); got != "t00d0002h2_000000000000_000000000000" {
		t.Errorf("JA4 of a GREASE-only cipher list with SNI and ALPN: %s", got)
	}
}

func TestTruncatedHellos(t *testing.T) {
	for _, file := range []string{"se-direct-443.client-hello.hex", "neg-https-browse.client-hello-h2.hex", "se-tls12-probe.client-hello.hex"} {
		msg := loadHex(t, file)
		body := message(t, msg, TypeClientHello)
		// Where the extensions block starts, a hello is complete without
		// extensions (TLS 1.0 allows that): that prefix alone parses.
		noExt := 2 + 32 + 1 + int(body[34])
		noExt += 2 + (int(body[noExt])<<8 | int(body[noExt+1]))
		noExt += 1 + int(body[noExt])
		for i := range len(body) {
			_, err := ParseClientHello(body[:i])
			switch {
			case i == noExt:
				if err != nil {
					t.Errorf("%s: hello without extensions (%d bytes): %v", file, i, err)
				}
			case err == nil:
				t.Errorf("%s: prefix of %d bytes parsed without error", file, i)
			case !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed):
				t.Errorf("%s: prefix %d: error %v wraps no sentinel", file, i, err)
			case i > noExt && !errors.Is(err, ErrTruncated):
				t.Errorf("%s: prefix %d inside the extensions: %v, want truncated", file, i, err)
			}
			if n := Messages(msg[:4+i], func(uint8, []byte) bool { return true }); n != 0 {
				t.Errorf("%s: incomplete message of %d bytes consumed %d", file, 4+i, n)
			}
		}
		// One byte too many after the extensions is malformed.
		if _, err := ParseClientHello(append(slices.Clip(body), 0)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: trailing byte: %v", file, err)
		}
	}
	for _, file := range []string{"se-direct-443.server-hello.hex", "neg-https-browse.server-flight-tls12.hex"} {
		body := message(t, loadHex(t, file), TypeServerHello)
		noExt := 2 + 32 + 1 + int(body[34]) + 3
		for i := range len(body) {
			if _, err := ParseServerHello(body[:i]); (err == nil) != (i == noExt) {
				t.Errorf("%s: prefix of %d bytes: %v", file, i, err)
			}
		}
	}
}

func TestHostileHellos(t *testing.T) {
	good := hello{version: 0x0303, sid: 32, ciphers: []uint16{0x1301}, exts: [][]byte{ext(ExtExtendedMasterSec)}}.body()
	set := func(b []byte, off int, vs ...byte) []byte {
		c := slices.Clone(b)
		copy(c[off:], vs)
		return c
	}
	sidOff := 34
	csOff := sidOff + 1 + 32
	extOff := csOff + 2 + 2 + 2 // ciphers length, one cipher, compression vector
	sni := func(data ...byte) []byte {
		return hello{version: 0x0303, ciphers: []uint16{0x1301}, exts: [][]byte{ext(ExtServerName, data...)}}.body()
	}
	one := func(e ...[]byte) []byte {
		return hello{version: 0x0303, ciphers: []uint16{0x1301}, exts: e}.body()
	}
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"session id 255", set(good, sidOff, 0xff), ErrTruncated},
		{"session id 33", append(set(good[:sidOff+1], sidOff, 33), append(make([]byte, 33), good[csOff:]...)...), ErrMalformed},
		{"cipher length 0xffff", set(good, csOff, 0xff, 0xff), ErrTruncated},
		{"cipher length odd", append(set(good[:csOff+2], csOff, 0, 3), append([]byte{0x13, 0x01, 0x00}, good[csOff+4:]...)...), ErrMalformed},
		{"no ciphers", append(set(good[:csOff+2], csOff, 0, 0), good[csOff+4:]...), ErrMalformed},
		{"no compression", append(good[:csOff+4:csOff+4], 0), ErrMalformed},
		{"one stray byte for extensions", good[:extOff+1], ErrTruncated},
		{"extension block 0xffff", set(good, extOff, 0xff, 0xff), ErrTruncated},
		{"extension overruns block", set(good, extOff+4, 0, 9), ErrMalformed},
		{"extension header cut inside block", append(slices.Clone(good[:extOff]), 0, 3, 0, 23, 0), ErrMalformed},
		{"data after extensions", append(slices.Clone(good), 0), ErrMalformed},
		{"sni list overruns", sni(0, 9, 0, 0, 1, 'a'), ErrMalformed},
		{"sni name overruns", sni(0, 4, 0, 0, 9, 'a'), ErrMalformed},
		{"sni empty list", sni(0, 0), ErrMalformed},
		{"sni trailing", sni(0, 4, 0, 0, 1, 'a', 0), ErrMalformed},
		{"alpn name overruns", one(ext(ExtALPN, 0, 2, 5, 'h')), ErrMalformed},
		{"alpn empty list", one(ext(ExtALPN, 0, 0)), ErrMalformed},
		{"groups odd", one(ext(ExtSupportedGroups, 0, 3, 0, 0x1d, 0)), ErrMalformed},
		{"groups empty", one(ext(ExtSupportedGroups, 0, 0)), ErrMalformed},
		{"sigalgs overrun", one(ext(ExtSignatureAlgorithms, 0, 8, 4, 3)), ErrMalformed},
		{"versions odd", one(ext(ExtSupportedVersions, 3, 3, 4, 3)), ErrMalformed},
		{"point formats overrun", one(ext(ExtECPointFormats, 5, 0)), ErrMalformed},
		{"duplicate sni", one(ext(ExtServerName, 0, 4, 0, 0, 1, 'a'), ext(ExtServerName, 0, 4, 0, 0, 1, 'b')), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := ParseClientHello(tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if msg := err.Error(); strings.ToLower(msg) != msg {
				t.Errorf("error not lower-case: %q", msg)
			}
			JA3(&ch) // whatever was read must still fingerprint
			JA4(&ch)
		})
	}
	// A malformed extension body still leaves the extension list complete.
	ch, err := ParseClientHello(one(ext(ExtSupportedGroups, 0, 3, 0, 0x1d, 0), ext(ExtExtendedMasterSec)))
	if !errors.Is(err, ErrMalformed) || !slices.Equal(ch.Extensions, []uint16{ExtSupportedGroups, ExtExtendedMasterSec}) {
		t.Errorf("extensions %v, error %v", ch.Extensions, err)
	}
	if ch, err := ParseClientHello(one(ext(ExtServerName, 0, 4, 0, 0, 1, 'a'))); err != nil || ch.SNI != "a" {
		t.Errorf("minimal SNI: %q %v", ch.SNI, err)
	}

	sh := func(exts ...[]byte) []byte {
		b := append([]byte{3, 3}, make([]byte, 32)...)
		b = append(b, 0, 0x13, 0x01, 0)
		var e []byte
		for _, x := range exts {
			e = append(e, x...)
		}
		return append(b, vec16(e)...)
	}
	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"session id 255", append(append([]byte{3, 3}, make([]byte, 32)...), 255, 1, 2), ErrTruncated},
		{"extension block cut", sh(ext(ExtKeyShare, 1, 2, 3))[:45], ErrTruncated},
		{"extension overruns block", set(sh(ext(ExtKeyShare, 1, 2)), 42, 0, 7), ErrMalformed},
		{"supported_versions long", sh(ext(ExtSupportedVersions, 3, 4, 0)), ErrMalformed},
		{"supported_versions short", sh(ext(ExtSupportedVersions, 3)), ErrMalformed},
		{"alpn two names", sh(alpnExt("h2", "h3")), ErrMalformed},
		{"alpn empty name", sh(alpnExt("")), ErrMalformed},
		{"data after extensions", append(sh(), 0), ErrMalformed},
	} {
		t.Run("server "+tc.name, func(t *testing.T) {
			s, err := ParseServerHello(tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			JA3S(&s)
		})
	}
	// HelloRetryRequest is recognised by its random.
	hrr := sh(ext(ExtSupportedVersions, 3, 4))
	copy(hrr[2:], helloRetryRandom[:])
	if s, err := ParseServerHello(hrr); err != nil || !s.HelloRetryRequest || s.Version() != VersionTLS13 {
		t.Errorf("HRR %+v %v", s, err)
	}
}

func TestIsGREASE(t *testing.T) {
	n := 0
	for v := range 1 << 16 {
		if IsGREASE(uint16(v)) {
			n++
			if v&0x0f0f != 0x0a0a || v>>8 != v&0xff {
				t.Errorf("%#04x", v)
			}
		}
	}
	if n != 16 {
		t.Errorf("%d GREASE values, want 16", n)
	}
}

func BenchmarkParseClientHello(b *testing.B) {
	body := message(b, loadHex(b, "neg-https-browse.client-hello-h2.hex"), TypeClientHello)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseClientHello(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJA4(b *testing.B) {
	ch, err := ParseClientHello(message(b, loadHex(b, "neg-https-browse.client-hello-h2.hex"), TypeClientHello))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		JA4(&ch)
	}
}

// TestScanAllocatesNothing: the scans of every bundled hello agree with the
// parses and allocate nothing (they run on every TLS connection).
func TestScanAllocatesNothing(t *testing.T) {
	for _, name := range seedFiles {
		raw := loadHex(t, name)
		Messages(raw, func(typ uint8, body []byte) bool {
			switch typ {
			case TypeClientHello:
				ch, err := ParseClientHello(body)
				checkScan(t, body, &ch, err)
				if n := testing.AllocsPerRun(10, func() { ScanClientHello(body) }); n != 0 {
					t.Errorf("%s: client hello scan allocates %v times", name, n)
				}
			case TypeServerHello:
				if n := testing.AllocsPerRun(10, func() { ScanServerHello(body) }); n != 0 {
					t.Errorf("%s: server hello scan allocates %v times", name, n)
				}
			}
			return true
		})
	}
}

func TestOpenSSLOrder(t *testing.T) {
	for _, c := range []struct {
		name string
		exts []uint16
		want bool
	}{
		// Orders seen in the corpus and the third-party captures.
		{"SoftEther's client (OpenSSL 3)", []uint16{0, 11, 10, 22, 23, 13, 43, 45, 51}, true},
		{"OpenSSL 3, no SNI, padding", []uint16{11, 10, 22, 23, 13, 43, 45, 51, 21}, true},
		{"curl on OpenSSL 3", []uint16{0, 11, 10, 35, 16, 22, 23, 13, 43, 45, 51, 21}, true},
		{"OpenSSL 3 with post_handshake_auth", []uint16{11, 10, 16, 22, 23, 49, 13, 43, 45, 51, 21}, true},
		{"OpenSSL 1.1.1 with status_request and NPN", []uint16{11, 10, 35, 5, 13172, 22, 23, 13, 43, 45, 51}, true},
		{"OpenSSL 1.0.x with heartbeat and padding", []uint16{0, 11, 10, 13, 15, 21}, true},
		{"OpenSSL 1.1.0", []uint16{0, 11, 10, 35, 13, 22, 23}, true},
		{"OpenSSL 1.0.x, no SNI", []uint16{11, 10}, true},
		{"TLS 1.3 resumption, psk last", []uint16{0, 11, 10, 22, 23, 13, 43, 45, 51, 42, 21, 41}, true},
		{"supported_groups before ec_point_formats (Java, SChannel)", []uint16{0, 10, 11, 13, 5, 18, 23}, false},
		{"extended_master_secret second (NSS)", []uint16{65281, 0, 23, 13, 5, 18, 11, 10}, false},
		{"renegotiation_info after server_name", []uint16{0, 65281, 10, 11, 13}, false},
		{"GREASE (BoringSSL, Chrome)", []uint16{0x5a5a, 0, 23, 65281, 10, 11, 5, 13, 18, 51, 45, 43, 0x4a4a, 21}, false},
		{"an extension these tables do not know (a later OpenSSL's)", []uint16{0, 11, 10, 17513, 22, 23}, true},
		{"only extensions these tables do not know", []uint16{17513, 0x5a5a}, false},
		{"padding before key_share", []uint16{0, 11, 10, 21, 51}, false},
		{"heartbeat in the 1.1.1 order", []uint16{0, 11, 10, 22, 23, 13, 15, 43}, false},
		{"duplicate", []uint16{11, 10, 22, 22}, false},
		{"no extensions", nil, false},
	} {
		ch := ClientHello{Extensions: c.exts}
		if got := ch.OpenSSLOrder(); got != c.want {
			t.Errorf("%s %v: OpenSSLOrder %v, want %v", c.name, c.exts, got, c.want)
		}
		// The scan reads the same from a hello on the wire.
		b := []byte{3, 3}
		b = append(b, make([]byte, 32)...)
		b = append(b, 0, 0, 2, 0x13, 0x01, 1, 0)
		var ext []byte
		for _, e := range c.exts {
			body := map[uint16][]byte{ExtServerName: {0, 4, 0, 0, 1, 'a'}, ExtALPN: {0, 3, 2, 'h', '2'},
				ExtSupportedGroups: {0, 2, 0, 0x1d}, ExtECPointFormats: {1, 0}, ExtSignatureAlgorithms: {0, 2, 4, 3},
				ExtSupportedVersions: {2, 3, 4}}[e]
			ext = append(ext, byte(e>>8), byte(e), 0, byte(len(body)))
			ext = append(ext, body...)
		}
		if ext != nil {
			b = append(b, byte(len(ext)>>8), byte(len(ext)))
			b = append(b, ext...)
		}
		sc, err := ScanClientHello(b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if sc.OpenSSLOrder != c.want {
			t.Errorf("%s: scan says %v", c.name, sc.OpenSSLOrder)
		}
	}
	// Hellos from captures: SoftEther's own, and GnuTLS's without ALPN or
	// ticket (the lab's gnutls-pairs negative).
	for file, want := range map[string]bool{"se-direct-443.client-hello.hex": true, "neg-lab-gnutls-pairs.client-hello.hex": false} {
		ch, err := ParseClientHello(message(t, loadHex(t, file), TypeClientHello))
		if err != nil || ch.OpenSSLOrder() != want || ch.HasExtension(ExtALPN) || ch.HasExtension(ExtSessionTicket) {
			t.Errorf("%s: OpenSSLOrder %v, want %v; ALPN %v, ticket %v (%v)", file, ch.OpenSSLOrder(), want,
				ch.HasExtension(ExtALPN), ch.HasExtension(ExtSessionTicket), err)
		}
	}
}

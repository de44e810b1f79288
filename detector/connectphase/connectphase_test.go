package connectphase

import "testing"

// TestSeparations: the detectors tell messages apart by these spans, so the
// orderings they rely on must hold.
func TestSeparations(t *testing.T) {
	checks := []struct {
		name string
		ok   bool
	}{
		{"an admin login or additional_connect is shorter than any login", AddConnect.Hi < Login.Lo},
		{"the watermark is longer than the GET probe", GetProbe.Hi < Watermark.Lo},
		{"admin answers reach below additional_connect answers", AdminAnswer.Lo < AddResponse.Lo && AdminAnswer.Hi == AddResponse.Hi},
		{"every span is ordered", GetProbe.Lo <= GetProbe.Hi && Page403.Lo <= Page403.Hi && Watermark.Lo <= Watermark.Hi &&
			Hello.Lo <= Hello.Hi && Login.Lo <= Login.Hi && Welcome.Lo <= Welcome.Hi && AddConnect.Lo <= AddConnect.Hi},
	}
	for _, c := range checks {
		if !c.ok {
			t.Error(c.name)
		}
	}
	if w := Hello.Widen(39, 105); w.Lo != Hello.Lo+39 || w.Hi != Hello.Hi+105 || !w.Has(Hello.Hi+100) || w.Has(Hello.Lo) {
		t.Errorf("Widen: %+v", w)
	}
}

func TestConnectFingerprint(t *testing.T) {
	const ua = "User-Agent: Mozilla/5.0 (Windows NT 6.3; WOW64; rv:29.0) Gecko/20100101 Firefox/29.0\r\n"
	tests := []struct {
		name string
		req  string
		want float32
	}{
		{"softether", "CONNECT 198.18.2.2:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: 198.18.2.2\r\nPragma: no-cache\r\nProxy-Connection: Keep-Alive\r\n" + ua + "\r\n", 0.6},
		{"softether with auth", "CONNECT vpn.example:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: vpn.example\r\nPragma: no-cache\r\nProxy-Authorization: Basic dTpw\r\nProxy-Connection: Keep-Alive\r\n" + ua + "\r\n", 0.6},
		{"custom user agent", "CONNECT 198.18.2.2:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: 198.18.2.2\r\nPragma: no-cache\r\nProxy-Connection: Keep-Alive\r\nUser-Agent: corp\r\n\r\n", 0.4},
		{"curl", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: curl/7.88.1\r\nProxy-Connection: Keep-Alive\r\n\r\n", 0},
		{"host with port", "CONNECT 198.18.2.2:443 HTTP/1.0\r\nContent-Length: 0\r\nHost: 198.18.2.2:443\r\nPragma: no-cache\r\nProxy-Connection: Keep-Alive\r\n" + ua + "\r\n", 0},
		{"unterminated", "CONNECT 198.18.2.2:443 HTTP/1.0\r\nContent-Length: 0\r\n", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := ConnectFingerprint([]byte(tc.req)); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

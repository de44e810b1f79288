package engine

import (
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/testpkt"
	"github.com/sewatch/sewatch/internal/verdict"
)

// offered wraps a detector and records the flows it took an inspector for.
type offered struct {
	detector.Detector
	took *[]string
}

func (o offered) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	in := o.Detector.NewInspector(p, toServer, f)
	if in != nil {
		*o.took = append(*o.took, o.Name())
	}
	return in
}

// TestInspectorsStartAtFirstPayload: a flow costs detector state only once
// it carries data, and then only for the detectors its first payload can
// matter to.
func TestInspectorsStartAtFirstPayload(t *testing.T) {
	const cli, srv = "10.0.0.1", "10.0.0.2"
	syn := testpkt.Spec{Src: cli, Dst: srv, Proto: "tcp", SrcPort: 40000, DstPort: 443, SYN: true}
	synAck := testpkt.Spec{Src: srv, Dst: cli, Proto: "tcp", SrcPort: 443, DstPort: 40000, SYN: true, ACK: true}
	ack := testpkt.Spec{Src: cli, Dst: srv, Proto: "tcp", SrcPort: 40000, DstPort: 443, Seq: 1, ACK: true}
	cliData := func(b string) testpkt.Spec {
		s := ack
		s.Payload = []byte(b)
		return s
	}
	srvData := func(b string) testpkt.Spec {
		s := synAck
		s.SYN, s.Seq, s.Payload = false, 1, []byte(b)
		return s
	}
	hello := "\x16\x03\x01\x00\x40\x01\x00\x00\x3c\x03\x03" + string(make([]byte, 58))
	tests := []struct {
		name string
		pkts []testpkt.Spec
		want []string
	}{
		{"handshake only", []testpkt.Spec{syn, synAck, ack}, nil},
		{"refused", []testpkt.Spec{syn}, nil},
		{"tls client hello", []testpkt.Spec{syn, synAck, ack, cliData(hello)},
			[]string{"attempt", "cleartunnel", "sstp", "tlsshape", "vendor"}},
		{"http request", []testpkt.Spec{syn, synAck, ack, cliData("GET / HTTP/1.1\r\nHost: a\r\n\r\n")},
			[]string{"tlsshape"}},
		{"http connect", []testpkt.Spec{syn, synAck, ack, cliData("CONNECT a:443 HTTP/1.0\r\n\r\n")},
			[]string{"attempt", "cleartunnel", "tlsshape"}},
		{"softether keep-alive in clear, joined late", []testpkt.Spec{cliData("\xff\xff\xff\xff\x00\x00\x00\x04abcd")},
			[]string{"cleartunnel", "othervpn", "sshtunnel", "tlsshape"}},
		{"server speaks first", []testpkt.Spec{syn, synAck, ack, srvData("220 mail ESMTP\r\n")},
			// The server's first bytes rule nothing out: junk in a SYN-ACK
			// comes before a client's TLS or OpenVPN opening.
			[]string{"othervpn", "sstp", "tlsshape", "vendor"}},
		{"ssh", []testpkt.Spec{syn, synAck, ack, cliData("SSH-2.0-OpenSSH_9.6\r\n")},
			[]string{"sshtunnel", "tlsshape"}},
		{"openvpn over tcp", []testpkt.Spec{syn, synAck, ack, cliData("\x00\x0e\x38" + string(make([]byte, 13)))},
			[]string{"othervpn", "tlsshape"}},
		{"dns", []testpkt.Spec{{Src: cli, Dst: srv, Proto: "udp", SrcPort: 40000, DstPort: 53, Payload: make([]byte, 30)}},
			[]string{"othervpn", "rudpprobe", "vendor"}},
		{"udp data", []testpkt.Spec{{Src: cli, Dst: srv, Proto: "udp", SrcPort: 40000, DstPort: 9000, Payload: make([]byte, 30)}},
			[]string{"othervpn", "udpaccel", "vendor"}},
	}
	base, err := detector.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var took []string
			var dets []detector.Detector
			for _, d := range base {
				dets = append(dets, offered{d, &took})
			}
			e := New(Config{Detectors: dets, Verdict: verdict.DefaultConfig()}, &collector{}, nil)
			w := e.NewWorker(decode.LinkEthernet)
			t0 := time.Unix(1700000000, 0)
			for i, s := range tc.pkts {
				w.process(testpkt.Ethernet(s), t0.Add(time.Duration(i)*time.Millisecond), uint64(i+1))
			}
			w.Finish()
			sort.Strings(took)
			if !slices.Equal(took, tc.want) {
				t.Errorf("inspectors %v, want %v", took, tc.want)
			}
		})
	}
}

package sstp

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

type sink struct{ ev []detector.Evidence }

func (s *sink) Report(e detector.Evidence) { s.ev = append(s.ev, e) }

// conn plays a TLS connection as records: handshake first, then
// application-data records of the given lengths ("c"/"s" + length).
type conn struct {
	in  detector.Inspector
	f   *detector.Flow
	s   *sink
	seq [2]uint32
}

func newConn() *conn {
	c := &conn{f: &detector.Flow{Proto: decode.ProtoTCP}, s: &sink{}, seq: [2]uint32{1000, 5000}}
	c.in = Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, c.f)
	c.send(0, 22, 512) // ClientHello
	c.send(1, 22, 122) // ServerHello
	return c
}

func (c *conn) send(d int, typ uint8, n int) {
	b := make([]byte, 5+n)
	b[0], b[1], b[2] = typ, 3, 3
	binary.BigEndian.PutUint16(b[3:], uint16(n))
	if typ == 22 && d == 0 {
		b[1], b[2], b[5] = 3, 1, 1
	}
	p := &decode.Packet{Proto: decode.ProtoTCP, Seq: c.seq[d], Payload: b, Time: time.Unix(100, 0)}
	c.seq[d] += uint32(len(b))
	c.in.Inspect(p, d == 0, c.f, c.s)
}

func (c *conn) app(recs ...int) {
	for i := 0; i+1 < len(recs); i += 2 {
		c.send(recs[i], 23, recs[i+1])
	}
}

const C, S = 0, 1

func TestSSTP(t *testing.T) {
	tests := []struct {
		name string
		recs []int
		want string // "" = no alert; else a substring of the detail
	}{
		{"SoftEther's SSTP server, TLS 1.3 (lab)", []int{S, 1347, C, 69, S, 74, S, 74, C, 208, S, 142, C, 31, S, 65, C, 39}, "125 B"},
		{"Windows-sized answer, TLS 1.2 AES-GCM", []int{C, 12, S, 12, C, 214, S, 146, C, 38, S, 72}, "122 B"},
		{"TLS 1.2 CBC with SHA-256 MAC", []int{C, 64, S, 64, C, 256, S, 176, C, 64, S, 112}, "CBC with a 32-B MAC"},
		{"overheads disagree", []int{C, 208, S, 142, C, 31, S, 72}, ""},
		{"no request/answer before", []int{C, 31, S, 65}, ""},
		{"web request then small records", []int{C, 517, S, 4000, C, 31, S, 65}, ""},
		{"HTTP/2 settings exchange", []int{C, 90, S, 60, C, 40, S, 26, C, 300, S, 1200}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newConn()
			c.app(tc.recs...)
			switch {
			case tc.want == "" && len(c.s.ev) != 0:
				t.Errorf("alert: %s", c.s.ev[0].Detail)
			case tc.want != "" && len(c.s.ev) != 1:
				t.Errorf("%d alerts, want 1", len(c.s.ev))
			case tc.want != "":
				e := c.s.ev[0]
				if e.Signature != detector.SIDSSTP || e.Mode != "sstp" || !strings.Contains(e.Detail, tc.want) {
					t.Errorf("got sid %d mode %q detail %q", e.Signature, e.Mode, e.Detail)
				}
			}
		})
	}
}

func TestNotTLS(t *testing.T) {
	in := Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, &detector.Flow{})
	if in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Payload: []byte("SSH-2.0-x\r\n")}, true, &detector.Flow{}, &sink{}) {
		t.Error("kept following a non-TLS flow")
	}
}

func FuzzInspect(f *testing.F) {
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0}, []byte{23, 3, 3, 0, 31}, []byte{23, 3, 3, 0, 65}, uint32(9))
	f.Fuzz(func(t *testing.T, hello, c, s []byte, seq uint32) {
		in := Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, &detector.Flow{})
		fl := &detector.Flow{Proto: decode.ProtoTCP}
		sk := &sink{}
		cs, ss := seq, seq*7
		in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Seq: cs, Payload: hello}, true, fl, sk)
		cs += uint32(len(hello))
		for i := 0; i < 8; i++ {
			in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Seq: ss, Payload: s}, false, fl, sk)
			in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Seq: cs, Payload: c}, true, fl, sk)
			cs += uint32(len(c))
			ss += uint32(len(s))
		}
	})
}

// TestInspectAllocs: following a TLS flow's records allocates nothing.
func TestInspectAllocs(t *testing.T) {
	c := newConn()
	in := c.in.(*Inspector)
	rec := []byte{23, 3, 3, 0, 3, 0, 0, 0}
	p := &decode.Packet{Proto: decode.ProtoTCP, Payload: rec}
	f, s := &detector.Flow{Proto: decode.ProtoTCP}, &sink{}
	n := testing.AllocsPerRun(20, func() {
		in.segs, in.nrecs = 0, 0
		p.Seq = c.seq[1]
		c.seq[1] += uint32(len(rec))
		in.Inspect(p, false, f, s)
	})
	if n != 0 {
		t.Errorf("%v allocations per segment", n)
	}
}

package sshtunnel

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
)

type sink struct{ ev []detector.Evidence }

func (s *sink) Report(e detector.Evidence) { s.ev = append(s.ev, e) }

// score reads the evidence as the verdict stage does (detector.Score):
// the total counts only when the session would alert.
func (s *sink) score() (sum float32, kinds map[detector.Kind]bool) {
	kinds = map[detector.Kind]bool{}
	for _, e := range s.ev {
		kinds[e.Kind] = true
	}
	if sc := detector.Score(s.ev); sc.Alerts() {
		return sc.Total, kinds
	}
	return 0, kinds
}

// feeder plays one SSH connection: identification strings, then writes
// ("c" client, "s" server) split into 1448-byte segments, PSH on the last.
type feeder struct {
	in  detector.Inspector
	f   *detector.Flow
	s   *sink
	seq [2]uint32
	at  time.Time
	mss int
}

func newFeeder() *feeder {
	fd := &feeder{f: &detector.Flow{Proto: decode.ProtoTCP}, s: &sink{}, at: time.Unix(1000, 0), mss: 1448, seq: [2]uint32{100, 9000}}
	fd.in = Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, fd.f)
	fd.seg(1, []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u7\r\n"), true)
	fd.seg(0, []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u7\r\n"), true)
	return fd
}

func (fd *feeder) seg(d int, pl []byte, psh bool) {
	p := &decode.Packet{Proto: decode.ProtoTCP, Seq: fd.seq[d], Payload: pl, Time: fd.at,
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), SrcPort: 40000, DstPort: 22}
	if psh {
		p.TCPFlags = pshFlag
	}
	fd.seq[d] += uint32(len(pl))
	fd.in.Inspect(p, d == 0, fd.f, fd.s)
}

func (fd *feeder) write(d int, n int) {
	for n > 0 {
		k := min(n, fd.mss)
		n -= k
		fd.seg(d, make([]byte, k), n == 0)
	}
}

// play feeds "c348 s1540 ..." style steps, 5 ms apart; "+N" waits N ms.
func (fd *feeder) play(steps ...any) {
	for i := 0; i < len(steps); i += 2 {
		switch steps[i].(string) {
		case "c":
			fd.write(0, steps[i+1].(int))
		case "s":
			fd.write(1, steps[i+1].(int))
		case "+":
			fd.at = fd.at.Add(time.Duration(steps[i+1].(int)) * time.Millisecond)
			continue
		}
		fd.at = fd.at.Add(5 * time.Millisecond)
	}
}

// Connect phases taken from real SSH legs: the shared corpus's
// se-via-ssh-forward (OpenSSH, chacha20-poly1305) and the project's lab.
var (
	kex        = []any{"c", 1560, "s", 1088, "c", 1208, "s", 1564, "c", 16, "c", 44, "s", 44, "c", 60, "s", 76, "c", 140, "s", 100, "c", 308, "s", 28, "c", 60, "s", 256, "s", 140}
	primary    = []any{"c", 92, "s", 44, "c", 348, "s", 1540, "c", 116, "s", 116, "c", 1756, "s", 116, "s", 1148, "c", 2900, "s", 2764}
	dataPhase  = []any{"c", 740, "s", 628, "c", 412, "s", 412, "c", 108, "s", 108, "c", 164, "s", 164}
	additional = []any{"c", 92, "s", 44, "c", 348, "s", 1540, "c", 2308, "s", 116, "s", 1376, "c", 1244, "s", 372}
	reconnect  = []any{"c", 92, "s", 44, "c", 348, "s", 1540, "c", 116, "c", 3052, "s", 1244, "c", 3980, "s", 3004}
	// HTTP/1.1 through the forward: two requests with kilobyte cookies,
	// then the channel closes (lab look-alike).
	cookies = []any{"c", 92, "s", 44, "c", 556, "s", 1268, "c", 132, "s", 92, "c", 1964, "s", 1004, "c", 3164, "s", 3308, "c", 68, "c", 36, "s", 72, "c", 36}
	// The same client's next connection with requests of new sizes, which
	// the server answers with the same two responses (lab ssh-forward-api).
	apiBatch = []any{"c", 92, "s", 44, "c", 556, "s", 1268, "c", 132, "s", 92, "c", 2500, "s", 1004, "c", 5484, "s", 3308, "c", 68, "c", 36, "s", 72, "c", 36}
	// The same client's next connection with a second request in the size
	// of SoftEther's additional_connect, answered by the first file again.
	apiOtherKind = []any{"c", 92, "s", 44, "c", 556, "s", 1268, "c", 132, "s", 92, "c", 2500, "s", 1004, "c", 1244, "s", 1004, "c", 68, "c", 36, "s", 72, "c", 36}
	// A reconnect whose hello write is 12 B from the first's (the corpus's
	// se-via-ssh-forward-default has two 16 B apart).
	reconnectNearHello = []any{"c", 92, "s", 44, "c", 348, "s", 1540, "c", 116, "c", 3052, "s", 1160, "c", 3980, "s", 3004}
)

func seq(parts ...[]any) []any {
	var out []any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestSSHLeg(t *testing.T) {
	tests := []struct {
		name  string
		steps []any
		alert bool // the evidence alone reaches the verdict's threshold of 1.0
		kinds []detector.Kind
	}{
		// Data right after the welcome is what a web page's subresources
		// through a forward look like too: it adds to the reading only.
		{"connect phase then tunnel data, one connection: no alert", seq(kex, []any{"+", 600}, primary, []any{"+", 50}, dataPhase), false,
			[]detector.Kind{KindShape, KindDataPhase}},
		{"connect phase, tunnel data, additional connection 1.2 s later", seq(kex, primary, []any{"+", 50}, dataPhase, []any{"+", 1200}, additional), true,
			[]detector.Kind{KindShape, KindDataPhase, KindRepeat}},
		{"second connect phase 90 s after the first is not the next leg", seq(kex, primary, []any{"+", 90000}, reconnect), false,
			[]detector.Kind{KindShape}},
		{"third connect phase 20 s after the second (90 s after the first)", seq(kex, primary, []any{"+", 90000}, reconnect, []any{"+", 20000}, additional), true,
			[]detector.Kind{KindShape, KindRepeat}},
		{"connect phase, additional connection 1.2 s later", seq(kex, primary, []any{"+", 1200}, additional), true,
			[]detector.Kind{KindShape, KindRepeat}},
		{"torn down and reconnected 15 s later (corpus, UDP acceleration failure)", seq(kex, primary, []any{"+", 15000}, reconnect), true,
			[]detector.Kind{KindShape, KindRepeat}},
		{"connect phase alone is not enough", seq(kex, primary), false, []detector.Kind{KindShape}},
		{"tunnel data that starts late is not the data phase", seq(kex, primary, []any{"+", 1000}, dataPhase), false, []detector.Kind{KindShape}},
		{"HTTP/1.1 with kilobyte cookies, twice, same sizes", seq(kex, cookies, []any{"+", 1000}, cookies), false, []detector.Kind{KindShape}},
		{"requests of new sizes answered with the same two responses", seq(kex, cookies, []any{"+", 2000}, apiBatch), false, []detector.Kind{KindShape}},
		{"requests of new sizes, the second of another kind, the same first answer", seq(kex, cookies, []any{"+", 2000}, apiOtherKind), false, []detector.Kind{KindShape}},
		{"reconnect with a hello near the first's", seq(kex, primary, []any{"+", 15000}, reconnectNearHello), true,
			[]detector.Kind{KindShape, KindRepeat}},
		{"key exchange and auth only", kex, false, nil},
		{"steps too far apart", seq(kex, primary[:12], []any{"+", 4000}, primary[12:], dataPhase), false, nil},
		{"interactive typing", seq(kex, []any{"c", 36, "s", 36, "c", 36, "s", 36, "c", 36, "s", 120, "c", 36, "s", 1400, "c", 36, "s", 300}), false, nil},
		{"scp upload", seq(kex, []any{"c", 92, "s", 44, "c", 32768, "s", 52, "c", 32768, "s", 52, "c", 32768, "s", 52}), false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fd := newFeeder()
			fd.play(tc.steps...)
			sum, kinds := fd.s.score()
			if got := sum >= 1.0; got != tc.alert {
				t.Errorf("score %.2f (kinds %v), alert %v, want %v", sum, kinds, got, tc.alert)
			}
			if len(kinds) != len(tc.kinds) {
				t.Errorf("kinds %v, want %v", kinds, tc.kinds)
			}
			for _, k := range tc.kinds {
				if !kinds[k] {
					t.Errorf("missing %s (got %v)", k, kinds)
				}
			}
			for _, e := range fd.s.ev {
				if e.Mode != Mode {
					t.Errorf("evidence %s: mode %q", e.Kind, e.Mode)
				}
			}
		})
	}
}

// TestNotSSH: the first payload decides; TLS or HTTP flows are dropped.
func TestNotSSH(t *testing.T) {
	in := Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, &detector.Flow{})
	p := &decode.Packet{Proto: decode.ProtoTCP, Payload: []byte{22, 3, 1, 0, 200}, TCPFlags: pshFlag}
	if in.Inspect(p, true, &detector.Flow{}, &sink{}) {
		t.Error("inspector kept a TLS flow")
	}
	if (Detector{}).NewInspector(&decode.Packet{Proto: decode.ProtoUDP}, true, &detector.Flow{}) != nil {
		t.Error("inspector for UDP")
	}
}

// TestRetransmission: a retransmitted segment is not a second write.
func TestRetransmission(t *testing.T) {
	fd := newFeeder()
	fd.play(kex...)
	fd.play(primary...)
	// Replay the welcome's segments with their old sequence numbers.
	fd.seq[1] -= 2764
	fd.write(1, 2764)
	fd.play(dataPhase...)
	if _, kinds := fd.s.score(); !kinds[KindShape] || !kinds[KindDataPhase] {
		t.Errorf("retransmission broke the match: %v", kinds)
	}
}

// TestSegmentation: GSO captures deliver a write as one large segment;
// small-MSS paths split it finely. Both assemble the same writes.
func TestSegmentation(t *testing.T) {
	for _, mss := range []int{536, 1448, 65000} {
		fd := newFeeder()
		fd.mss = mss
		fd.play(seq(kex, primary, dataPhase, []any{"+", 1200}, additional)...)
		if sum, kinds := fd.s.score(); sum < 1.0 || !kinds[KindDataPhase] || !kinds[KindRepeat] {
			t.Errorf("mss %d: %.2f %v", mss, sum, kinds)
		}
	}
}

// TestInspectAllocs: following an established SSH connection allocates
// nothing.
func TestInspectAllocs(t *testing.T) {
	fd := newFeeder()
	fd.play(kex...)
	pl := make([]byte, 1448)
	p := &decode.Packet{Proto: decode.ProtoTCP}
	send := func(d int, n int, psh bool) {
		p.Seq, p.Payload, p.Time, p.TCPFlags = fd.seq[d], pl[:n], fd.at, 0
		if psh {
			p.TCPFlags = pshFlag
		}
		fd.seq[d] += uint32(n)
		fd.in.Inspect(p, d == 0, fd.f, fd.s)
	}
	n := testing.AllocsPerRun(1000, func() {
		fd.at = fd.at.Add(time.Millisecond)
		send(0, 1448, false)
		send(0, 300, true)
		send(1, 52, true)
	})
	if n != 0 {
		t.Errorf("%v allocations per write", n)
	}
}

func FuzzInspect(f *testing.F) {
	f.Add([]byte("SSH-2.0-x\r\n"), []byte("SSH-2.0-y\r\n"), uint16(348), uint16(1540), uint8(8))
	f.Add([]byte("SSH-1.99-x\r\n"), []byte("SSH-2.0-y\r\n"), uint16(3000), uint16(900), uint8(0))
	f.Fuzz(func(t *testing.T, c, s []byte, cn, sn uint16, flags uint8) {
		in := Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, &detector.Flow{})
		fl := &detector.Flow{Proto: decode.ProtoTCP}
		sk := &sink{}
		at := time.Unix(1, 0)
		cs, ss := uint32(cn)*7, uint32(sn)*13
		in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Seq: cs, Payload: c, Time: at, TCPFlags: flags}, true, fl, sk)
		in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Seq: ss, Payload: s, Time: at, TCPFlags: flags}, false, fl, sk)
		cs += uint32(len(c))
		ss += uint32(len(s))
		for i := 0; i < 12; i++ {
			a, b := make([]byte, int(cn)%9000+1), make([]byte, int(sn)%9000+1)
			in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Seq: cs, Payload: a, Time: at, TCPFlags: flags ^ uint8(i)}, true, fl, sk)
			in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Seq: ss, Payload: b, Time: at, TCPFlags: flags}, false, fl, sk)
			cs += uint32(len(a))
			ss += uint32(len(b))
			cn, sn = cn*3+sn, sn^cn
			at = at.Add(time.Duration(i*97) * time.Millisecond)
		}
	})
}

// TestMidSession: a capture that joins an established SSH connection (no
// identification strings, no SYN) recognises SSH by its packet sizes; an
// encrypted flow whose writes are not SSH-sized is dropped.
func TestMidSession(t *testing.T) {
	run := func(steps []any) (*feeder, float32) {
		fd := &feeder{f: &detector.Flow{Proto: decode.ProtoTCP}, s: &sink{}, at: time.Unix(1000, 0), mss: 1448, seq: [2]uint32{100, 9000}}
		fd.in = Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, fd.f)
		fd.play(steps...)
		sum, _ := fd.s.score()
		return fd, sum
	}
	if _, sum := run(seq(primary, []any{"+", 50}, dataPhase, []any{"+", 1200}, additional)); sum < 1.0 {
		t.Errorf("mid-session SSH leg: score %.2f", sum)
	}
	// The same write pattern shifted by 3 bytes is not SSH framing.
	var odd []any
	for i := 0; i < len(primary); i += 2 {
		odd = append(odd, primary[i], primary[i+1].(int)+3)
	}
	if fd, sum := run(seq(odd, dataPhase)); sum != 0 || !fd.in.(*Inspector).finished {
		t.Errorf("non-SSH sizes: score %.2f, finished %v", sum, fd.in.(*Inspector).finished)
	}
	// A TLS record or text at the start is not the middle of SSH.
	for _, pl := range [][]byte{{23, 3, 3, 0, 40}, []byte("GET / HTTP/1.1\r\nHost: x\r\n")} {
		in := Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, &detector.Flow{})
		if in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Payload: pl, TCPFlags: pshFlag}, true, &detector.Flow{}, &sink{}) {
			t.Errorf("kept following %q", pl)
		}
	}
	// With a SYN seen, no identification string means not SSH.
	in := Detector{}.NewInspector(&decode.Packet{Proto: decode.ProtoTCP}, true, &detector.Flow{SYNSeen: true})
	if in.Inspect(&decode.Packet{Proto: decode.ProtoTCP, Payload: make([]byte, 36), TCPFlags: pshFlag}, true, &detector.Flow{SYNSeen: true}, &sink{}) {
		t.Error("followed a fresh connection without identification strings")
	}
}

// TestIdleRhythm: an idle tunnel (both sides sending unanswered writes of
// random sizes on their own timers) shows the rhythm, and after a minute
// its sustained form; pings answered at once, fixed-size keep-alives and
// one-sided output do not. The rhythm alerts beside a tunnelled connect
// phase, never alone: two people chatting through one SSH connection (or
// an IRC or MQTT client) without long pauses show the same rhythm.
func TestIdleRhythm(t *testing.T) {
	type w struct {
		d    int
		size int
		gap  int // ms before this write
	}
	gen := func(n int, f func(i int) []w) []any {
		var out []any
		for i := 0; i < n; i++ {
			for _, x := range f(i) {
				out = append(out, "+", x.gap, []string{"c", "s"}[x.d], x.size)
			}
		}
		return out
	}
	tests := []struct {
		name       string
		steps      []any
		idle, long bool // rhythm and sustained rhythm reported
	}{
		{"idle SoftEther over SSH (lab sizes)", gen(40, func(i int) []w {
			return []w{{0, 84 + (i*97)%480, 1300 + (i*311)%1700}, {1, 92 + (i*131)%460, 900 + (i*173)%1500}}
		}), true, true},
		{"both sides ping, each answered at once", gen(40, func(i int) []w {
			return []w{{0, 100 + (i*97)%400, 3000}, {1, 100 + (i*37)%400, 20}, {1, 120 + (i*53)%300, 2000}, {0, 90 + (i*71)%300, 30}}
		}), false, false},
		{"fixed-size keep-alives both ways", gen(40, func(i int) []w { return []w{{0, 164, 2500}, {1, 196, 2100}} }), false, false},
		{"server output only (top, tail -f)", gen(40, func(i int) []w { return []w{{1, 200 + (i*97)%450, 2000}, {0, 36, 900}} }), false, false},
		{"too short to be sure (30 s)", gen(12, func(i int) []w {
			return []w{{0, 84 + (i*97)%480, 1300}, {1, 92 + (i*131)%460, 1200}}
		}), true, false},
		// Two people typing through the tunnel (or a remote desktop): the
		// same writes, but now and then one side pauses for 11-15 s, longer
		// than SoftEther's keep-alive timer ever lets a side be silent.
		{"chat with pauses longer than the keep-alive timer", gen(40, func(i int) []w {
			pause := 0
			if i%7 == 6 {
				pause = 11000 + (i*389)%4000
			}
			return []w{{0, 84 + (i*97)%480, 1300 + (i*311)%1700 + pause}, {1, 92 + (i*131)%460, 900 + (i*173)%1500}}
		}), false, false},
		{"the same pauses kept under 10.5 s", gen(40, func(i int) []w {
			pause := 0
			if i%7 == 6 {
				pause = 6000
			}
			return []w{{0, 84 + (i*97)%480, 1300 + (i*311)%1700 + pause}, {1, 92 + (i*131)%460, 900 + (i*173)%1500}}
		}), true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fd := newFeeder()
			fd.play(kex...)
			fd.play(tc.steps...)
			sum, kinds := fd.s.score()
			if kinds[KindIdle] != tc.idle || kinds[KindIdleLong] != tc.long {
				t.Errorf("rhythm %v, sustained %v; want %v, %v", kinds[KindIdle], kinds[KindIdleLong], tc.idle, tc.long)
			}
			if sum != 0 {
				t.Errorf("one SSH connection's rhythm alone alerts: score %.2f %v", sum, kinds)
			}
			// After a tunnelled connect phase the rhythm is the session's
			// second unit.
			fd = newFeeder()
			fd.play(seq(kex, primary)...)
			fd.play(tc.steps...)
			if sum, kinds := fd.s.score(); (sum >= 1.0) != tc.idle {
				t.Errorf("after a connect phase: score %.2f %v, want alert %v", sum, kinds, tc.idle)
			}
		})
	}
}

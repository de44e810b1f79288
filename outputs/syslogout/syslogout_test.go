package syslogout

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sewatch/sewatch/outputs"
)

func records(n int) []outputs.Record {
	var rs []outputs.Record
	for i := 0; i < n; i++ {
		rs = append(rs, outputs.Record{Type: "alert", JSON: []byte(fmt.Sprintf(`{"event_type":"alert","n":%d}`, i))})
	}
	return rs
}

func open(t *testing.T, s outputs.Spec) outputs.Output {
	t.Helper()
	out, err := opener{}.Open(context.Background(), s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// message is what a remote collector receives: priority (local5.info =
// 21*8+6 = 174 by default), an RFC 3339 time stamp, the host name, the tag
// with the process id, then the EVE line.
var message = regexp.MustCompile(`^<(\d+)>\d{4}-\d\d-\d\dT\S+ \S+ (\S+)\[\d+\]: (\{.*\})$`)

func TestUDPOneMessagePerEvent(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	out := open(t, outputs.Spec{Type: "syslog", Arg: "udp://" + pc.LocalAddr().String()})
	defer out.Close(context.Background())
	if err := out.Write(context.Background(), records(3)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for i := 0; i < 3; i++ {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := message.FindStringSubmatch(strings.TrimSuffix(string(buf[:n]), "\n"))
		if m == nil || m[1] != "174" || m[2] != "sewatch" || m[3] != fmt.Sprintf(`{"event_type":"alert","n":%d}`, i) {
			t.Fatalf("message %d = %q", i, buf[:n])
		}
	}
}

// Over TCP each message is a line; a collector that restarts is found
// again at the next write after the failed one.
func TestTCPReconnects(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	lines := make(chan string, 100)
	// serve runs a collector on l; the function it returns stops it,
	// listener and connections.
	serve := func(l net.Listener) (stop func()) {
		conns := make(chan net.Conn, 10)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				conns <- c
				go func() {
					s := bufio.NewScanner(c)
					for s.Scan() {
						lines <- s.Text()
					}
				}()
			}
		}()
		return func() {
			l.Close()
			for len(conns) > 0 {
				(<-conns).Close()
			}
		}
	}
	stop := serve(l)
	out := open(t, outputs.Spec{Type: "syslog", Arg: "tcp://" + addr,
		Options: map[string]any{"facility": "local0", "level": "notice", "tag": "ids"}})
	defer out.Close(context.Background())
	if err := out.Write(context.Background(), records(2)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		m := message.FindStringSubmatch(<-lines)
		if m == nil || m[1] != "133" || m[2] != "ids" { // local0.notice = 16*8+5
			t.Fatalf("line %d: %q", i, m)
		}
	}
	stop()
	// The collector is gone: writes fail once the peer's close is seen.
	var werr error
	for i := 0; i < 50 && werr == nil; i++ {
		werr = out.Write(context.Background(), records(1))
		time.Sleep(10 * time.Millisecond)
	}
	if werr == nil {
		t.Fatal("writes to a collector that went away kept succeeding")
	}
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	defer serve(l2)()
	for len(lines) > 0 {
		<-lines
	}
	if err := out.Write(context.Background(), records(1)); err != nil {
		t.Fatalf("write after the collector came back: %v", err)
	}
	if m := message.FindStringSubmatch(<-lines); m == nil || m[3] != `{"event_type":"alert","n":0}` {
		t.Fatalf("after reconnecting: %q", m)
	}
}

func TestOptions(t *testing.T) {
	for _, c := range []struct {
		spec outputs.Spec
		err  string
	}{
		{outputs.Spec{Type: "syslog"}, ""},
		{outputs.Spec{Type: "syslog", Arg: "udp://siem.example:514"}, ""},
		{outputs.Spec{Type: "syslog", Arg: "siem.example:514"}, "want udp://HOST:PORT"},
		{outputs.Spec{Type: "syslog", Arg: "tcp://siem.example"}, "want udp://HOST:PORT"},
		{outputs.Spec{Type: "syslog", Options: map[string]any{"facility": "local9"}}, "unknown facility"},
		{outputs.Spec{Type: "syslog", Options: map[string]any{"level": "loud"}}, "unknown level"},
		{outputs.Spec{Type: "syslog", Options: map[string]any{"severity": "info"}}, "severity"},
	} {
		err := opener{}.Validate(c.spec)
		if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%+v: %v, want %q", c.spec, err, c.err)
		}
	}
}

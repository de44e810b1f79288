package unixsock

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sewatch/sewatch/outputs"
)

func records(from, n int) []outputs.Record {
	var rs []outputs.Record
	for i := from; i < from+n; i++ {
		rs = append(rs, outputs.Record{Type: "alert", JSON: []byte(fmt.Sprintf(`{"event_type":"alert","n":%d}`, i))})
	}
	return rs
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A stream consumer gets one line per event; when it goes away the write
// fails (the router retries), and once it listens again the next write
// connects again and delivers the retried batch whole.
func TestStreamReconnects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.sock")
	out := New(Options{Path: path, Mode: "stream"}, "unix", quiet())
	ctx := context.Background()
	if err := out.Write(ctx, records(0, 1)); err == nil {
		t.Fatal("write with no consumer listening succeeded")
	}

	lines := make(chan string, 100)
	// listen starts a consumer; stop ends it, socket and connection.
	listen := func() (stop func()) {
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conns := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
			s := bufio.NewScanner(c)
			for s.Scan() {
				lines <- s.Text()
			}
		}()
		return func() {
			l.Close()
			if c, ok := <-conns; ok {
				c.Close()
			}
		}
	}
	stop := listen()
	if err := out.Write(ctx, records(0, 3)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if got, want := <-lines, fmt.Sprintf(`{"event_type":"alert","n":%d}`, i); got != want {
			t.Fatalf("line %d = %q, want %q", i, got, want)
		}
	}

	// The consumer restarts: its old connection and socket go away.
	stop()
	var err error
	for i := 0; i < 50 && err == nil; i++ { // the peer's close reaches the writer within a few writes
		err = out.Write(ctx, records(3, 1))
		time.Sleep(10 * time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a consumer that went away kept succeeding")
	}
	for len(lines) > 0 {
		<-lines // what the old consumer read before it went
	}
	stop = listen()
	defer stop()
	if err := out.Write(ctx, records(10, 2)); err != nil {
		t.Fatalf("write after the consumer came back: %v", err)
	}
	for i := 10; i < 12; i++ {
		if got, want := <-lines, fmt.Sprintf(`{"event_type":"alert","n":%d}`, i); got != want {
			t.Fatalf("after reconnecting: %q, want %q", got, want)
		}
	}
	if err := out.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// On a datagram socket every event is one datagram, without the newline.
func TestDatagramPerEvent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	out := New(Options{Path: path, Mode: "dgram"}, "unix", quiet())
	if err := out.Write(context.Background(), records(0, 3)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for i := 0; i < 3; i++ {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(buf[:n]), fmt.Sprintf(`{"event_type":"alert","n":%d}`, i); got != want {
			t.Fatalf("datagram %d = %q, want %q", i, got, want)
		}
	}
	out.Close(context.Background())
}

func TestOptionsAndCheck(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		spec outputs.Spec
		err  string
	}{
		{outputs.Spec{Type: "unix"}, "needs the consumer's socket path"},
		{outputs.Spec{Type: "unix", Arg: "/run/x.sock", Options: map[string]any{"mode": "seqpacket"}}, "neither stream nor dgram"},
		{outputs.Spec{Type: "unix", Options: map[string]any{"path": "/run/x.sock", "modus": "dgram"}}, "modus"},
		{outputs.Spec{Type: "unix", Arg: "/run/x.sock"}, ""},
	} {
		err := opener{}.Validate(c.spec)
		if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%+v: %v, want %q", c.spec, err, c.err)
		}
	}
	// --check-config: something must listen there.
	path := filepath.Join(dir, "in.sock")
	spec := outputs.Spec{Type: "unix", Arg: path}
	if err := (opener{}).Check(context.Background(), spec); err == nil {
		t.Error("check passed with nothing listening")
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := (opener{}).Check(context.Background(), spec); err != nil {
		t.Errorf("check with a listener: %v", err)
	}
}

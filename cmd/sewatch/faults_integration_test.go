//go:build integration

package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sewatch/sewatch/internal/estest"
)

// A capture with two SoftEther sessions (one via the proxy, one direct).
const twoAlerts = "../../testdata/pcap/se-via-http-proxy.pcap"

// eveLines runs the capture to stdout: the events every output must get.
func eveLines(t *testing.T, pcap string) []string {
	t.Helper()
	out, errOut, code := sewatch(t, "-r", pcap)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	return strings.Split(strings.TrimSpace(out), "\n")
}

// problemLines are the command's own messages (not slog's key=value logs).
func problemLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "sewatch: ") {
			out = append(out, l)
		}
	}
	return out
}

// faultConfig writes a configuration with a short flush deadline (and a spool
// when spoolDir is set).
func faultConfig(t *testing.T, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sewatch.yaml")
	if err := os.WriteFile(p, []byte("delivery:\n  flush-deadline: 2s\n"+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Every delivery fault in pcap mode: a non-zero exit and exactly one line
// naming the output and how many events did not arrive.
func TestDeliveryFaultsExitNonZero(t *testing.T) {
	es := estest.New(estest.WithAuth(estest.Auth{Username: "elastic", Password: "right"}))
	defer es.Close()
	sasl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "eve"),
		kfake.EnableSASL(), kfake.Superuser("PLAIN", "sewatch", "right"))
	if err != nil {
		t.Fatal(err)
	}
	defer sasl.Close()
	wrongPw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(wrongPw, []byte("wrong\n"), 0o600)
	down := "127.0.0.1:" + itoa(freePort(t))
	n := itoa(len(eveLines(t, twoAlerts)))
	all := n + ` events not delivered \(` + n + ` dropped, no spool configured\)$`

	tests := []struct {
		name string
		args []string
		code int
		line string // regexp the one line must match
	}{
		{"kafka down for the whole run", []string{"-c", faultConfig(t, ""), "-o", "kafka:" + down + "/eve"}, 3,
			`^sewatch: output kafka:` + regexp.QuoteMeta(down) + `/eve: ` + all},
		// The broker drops the connection on a refused password, which
		// the client cannot tell from a broker going away: delivery is
		// retried until the flush deadline, then counted.
		{"kafka wrong SASL password", []string{"-c", faultConfig(t, "outputs:\n  - type: kafka\n    options: {brokers: ["+sasl.ListenAddrs()[0]+"], topic: eve, sasl: {mechanism: PLAIN, username: sewatch, password-file: "+wrongPw+"}}\n")}, 3,
			`^sewatch: output kafka:` + regexp.QuoteMeta(sasl.ListenAddrs()[0]) + `/eve: ` + all},
		{"elasticsearch down for the whole run", []string{"-c", faultConfig(t, ""), "-o", "elasticsearch:http://" + down + "/logs-sewatch.alert-fault"}, 3,
			`^sewatch: output elasticsearch:http://` + regexp.QuoteMeta(down) + `/logs-sewatch.alert-fault: ` + all},
		{"elasticsearch wrong password", []string{"-c", faultConfig(t, "outputs:\n  - type: elasticsearch\n    options: {addresses: ["+es.URL+"], username: elastic, password: wrong}\n")}, 1,
			`^sewatch: outputs\[0\] \(elasticsearch\): .*401`},
		{"full disk (file output on /dev/full)", []string{"-c", faultConfig(t, ""), "-o", "file:/dev/full"}, 3,
			`^sewatch: output file:/dev/full: ` + all},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out, errOut, code := sewatch(t, append([]string{"-r", twoAlerts}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errOut)
			}
			lines := problemLines(errOut)
			if len(lines) != 1 || !regexp.MustCompile(tc.line).MatchString(lines[0]) {
				t.Fatalf("want one line matching %s, got %q\nstderr:\n%s", tc.line, lines, errOut)
			}
			if out != "" {
				t.Errorf("stdout: %s", out)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("took %v: the flush deadline (2s) must bound a dead output", d)
			}
		})
	}
}

// A full spool: what does not fit is dropped and counted, what fits waits;
// the next run (broker back at the same address) delivers what waited,
// first, and exits 0. Nothing is stranded.
func TestFullSpoolThenDeliveredNextRun(t *testing.T) {
	port := freePort(t)
	addr := "127.0.0.1:" + itoa(port)
	spool := t.TempDir()
	events := eveLines(t, twoAlerts)
	n := len(events)
	// Room for the first event only (its spool record is the line plus
	// under 200 bytes); the second is an alert, larger than 200 bytes.
	limit := len(events[0]) + 200
	cfg := faultConfig(t, "  spool-dir: "+spool+"\n  spool-max-bytes: "+itoa(limit)+"\n")
	_, errOut, code := sewatch(t, "-r", twoAlerts, "-c", cfg, "-o", "kafka:"+addr+"/eve")
	lines := problemLines(errOut)
	if code != 3 || len(lines) != 1 ||
		!regexp.MustCompile(`^sewatch: output kafka:`+regexp.QuoteMeta(addr)+`/eve: `+itoa(n)+` events not delivered \(`+itoa(n-1)+` dropped, spool full; 1 wait in the spool .+ for the next run\)$`).MatchString(lines[0]) {
		t.Fatalf("first run: exit %d, lines %q\n%s", code, lines, errOut)
	}
	segs, _ := filepath.Glob(filepath.Join(spool, "*", "*.seg"))
	var size int64
	for _, s := range segs {
		st, _ := os.Stat(s)
		size += st.Size()
	}
	if size == 0 || size > int64(limit) {
		t.Fatalf("spool holds %d bytes (limit %d)", size, limit)
	}

	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, "eve"))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	before := time.Now()
	second := eveLines(t, "../../testdata/pcap/se-direct-443.pcap")
	_, errOut, code = sewatch(t, "-r", "../../testdata/pcap/se-direct-443.pcap", "-c", cfg, "-o", "kafka:"+addr+"/eve")
	if code != 0 || len(problemLines(errOut)) != 0 {
		t.Fatalf("second run: exit %d\n%s", code, errOut)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "eve", MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []kafka.Message
	for len(got) < 1+len(second) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %d messages: %v", len(got), err)
		}
		got = append(got, m)
	}
	// The spooled event (from the first run) comes first, byte for byte,
	// then the second run's.
	if string(got[0].Value) != events[0] {
		t.Errorf("first message is not the spooled one: %s", got[0].Value)
	}
	for i, l := range second {
		if strings.Contains(l, `"event_type":"stats"`) {
			continue // stamped with the wall clock: differs between runs
		}
		if string(got[1+i].Value) != l {
			t.Errorf("message %d = %s, want %s", 1+i, got[1+i].Value, l)
		}
	}
	// Message timestamps are the produce time, not the capture time (2026-11-22).
	for _, m := range got {
		if m.Time.Before(before.Add(-time.Minute)) {
			t.Errorf("message time %v is not the produce time", m.Time)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

//go:build integration

package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPcapToFever: `sewatch -r` with the unix output delivers every event
// stdout shows to a real EVE consumer listening on a Unix stream socket,
// DCSO's fever (Debian package fever), as Suricata's `filetype:
// unix_stream` does; fever forwards each line it took to a socket of the
// test's, and logs no warning (it drops lines whose ports, counters or
// timestamps are not Suricata's types). fever must be on PATH: the test
// fails without it under SEWATCH_REQUIRE_TOOLS (CI) and is skipped
// elsewhere.
func TestPcapToFever(t *testing.T) {
	bin, err := exec.LookPath("fever")
	if err != nil {
		if os.Getenv("SEWATCH_REQUIRE_TOOLS") != "" {
			t.Fatal("fever not found on PATH (Debian package fever; .ci/run installs it)")
		}
		t.Skip("fever not found on PATH (Debian package fever)")
	}
	dir := t.TempDir()
	in, fwd := filepath.Join(dir, "in.sock"), filepath.Join(dir, "fwd.sock")

	// fever forwards what it took to a socket it connects to: the test's.
	l, err := net.Listen("unix", fwd)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var (
		mu        sync.Mutex
		forwarded []string
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				s.Buffer(make([]byte, 1<<20), 1<<20)
				for s.Scan() {
					mu.Lock()
					forwarded = append(forwarded, s.Text())
					mu.Unlock()
				}
			}()
		}
	}()
	cfg := filepath.Join(dir, "fever.yaml")
	// multi-forward with a buffer: the single-output form drops events
	// when its forwarder is busy.
	writeFile(t, cfg, "input:\n  socket: "+in+"\nmulti-forward:\n  all:\n    socket: "+fwd+
		"\n    all: true\n    buffer-length: 100000\n    types: []\n")
	var logs syncBuffer
	fever := exec.Command(bin, "run", "--config", cfg, "-i", in, "--dummy", "-v", "--mgmt-socket", filepath.Join(dir, "mgmt.sock"))
	fever.Stdout, fever.Stderr = &logs, &logs
	if err := fever.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { fever.Process.Kill(); fever.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(in); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fever did not listen on %s:\n%s", in, logs.String())
		}
	}

	out, errOut, code := sewatch(t, "-r", "../../testdata/pcap/se-via-http-proxy.pcap", "-o", "stdout", "-o", "unix:"+in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := strings.Split(strings.TrimSpace(out), "\n")
	var got []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		got = append(got[:0], forwarded...)
		mu.Unlock()
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("fever forwarded %d lines, stdout printed %d; they differ\nforwarded:\n%s\nstdout:\n%s",
			len(got), len(want), strings.Join(got, "\n"), out)
	}
	if !strings.Contains(out, `"event_type":"alert"`) {
		t.Errorf("no alert on stdout:\n%s", out)
	}
	if bad := regexp.MustCompile(`(?m)^.*level=(warning|error).*$`).FindAllString(logs.String(), -1); len(bad) > 0 {
		t.Errorf("fever complained:\n%s", strings.Join(bad, "\n"))
	}
}

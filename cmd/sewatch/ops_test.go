package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a stream the test polls while the child writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// child is a running sewatch process (this test binary acting as main).
type child struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int
}

func start(t *testing.T, stdin *os.File, args ...string) *child {
	t.Helper()
	return startCmd(t, stdin, exec.Command(os.Args[0], args...))
}

// startCmd starts cmd, which runs this test binary as sewatch (through a
// wrapper such as ip netns exec, if need be).
func startCmd(t *testing.T, stdin *os.File, cmd *exec.Cmd) *child {
	t.Helper()
	c := &child{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), "SEWATCH_TEST_MAIN=1")
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if stdin != nil {
		c.cmd.Stdin = stdin
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.cmd.Wait()
		c.code = c.cmd.ProcessState.ExitCode()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// waitLog waits until stderr matches re and returns the first submatch.
func (c *child) waitLog(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := rx.FindStringSubmatch(c.stderr.String()); m != nil {
			return m[len(m)-1]
		}
		select {
		case <-c.done:
			t.Fatalf("exited (%d) before logging %q:\n%s", c.code, re, c.stderr.String())
		default:
		}
	}
	t.Fatalf("no %q in stderr:\n%s", re, c.stderr.String())
	return ""
}

// wait waits for the exit and returns the status and how long it took.
func (c *child) wait(t *testing.T) (int, time.Duration) {
	t.Helper()
	t0 := time.Now()
	select {
	case <-c.done:
		return c.code, time.Since(t0)
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after the signal:\n%s", c.stderr.String())
	}
	return 0, 0
}

func mkfifo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "capture.fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignalOnStalledInput: SIGINT and SIGTERM stop a run whose input is a
// pipe or FIFO that stalls (tcpdump -w - | sewatch -r /dev/stdin): the
// events found so far are delivered, the log says the run stopped early,
// and the exit status is 128 + the signal.
func TestSignalOnStalledInput(t *testing.T) {
	golden, err := os.ReadFile("../../testdata/golden/se-direct-443.eve.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	capture, err := os.ReadFile(direct)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		input  string // "fifo", "stdin" (an os.Pipe as /dev/stdin), "fifo-no-writer"
		sig    syscall.Signal
		code   int
		stdout string
	}{
		{"FIFO, SIGTERM", "fifo", syscall.SIGTERM, 143, string(golden)},
		{"pipe as /dev/stdin, SIGINT", "stdin", syscall.SIGINT, 130, string(golden)},
		{"pipe as /dev/stdin, SIGTERM", "stdin", syscall.SIGTERM, 143, string(golden)},
		{"FIFO never opened by a writer, SIGTERM", "fifo-no-writer", syscall.SIGTERM, 143, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c *child
			switch tc.input {
			case "stdin":
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				c = start(t, r, "-r", "/dev/stdin")
				r.Close()
				defer w.Close() // held open: the reader stalls after the last packet
				if _, err := w.Write(capture); err != nil {
					t.Fatal(err)
				}
			default:
				fifo := mkfifo(t)
				c = start(t, nil, "-r", fifo)
				if tc.input == "fifo" {
					w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for the reader
					if err != nil {
						t.Fatal(err)
					}
					defer w.Close()
					if _, err := w.Write(capture); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The whole capture is in the pipe; give the reader time to
			// process it and block on the next read.
			time.Sleep(1500 * time.Millisecond)
			c.cmd.Process.Signal(tc.sig)
			code, took := c.wait(t)
			t.Logf("%s: exit %d %v after the signal", tc.name, code, took.Round(time.Millisecond))
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, c.stderr.String())
			}
			// The final stats event ends a read that got packets; the
			// rest is the golden file's events.
			var events, stats []string
			for _, l := range strings.SplitAfter(c.stdout.String(), "\n") {
				if strings.Contains(l, `"event_type":"stats"`) {
					stats = append(stats, l)
				} else if l != "" {
					events = append(events, l)
				}
			}
			if got := strings.Join(events, ""); got != tc.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", got, tc.stdout)
			}
			if tc.stdout != "" && len(stats) != 1 {
				t.Errorf("%d stats events, want the final one", len(stats))
			}
			if !strings.Contains(c.stderr.String(), "stopped early by a signal") {
				t.Errorf("stderr does not say the run stopped early:\n%s", c.stderr.String())
			}
		})
	}
}

// TestSIGHUP: SIGHUP reopens the file output (logrotate moved it) and
// reloads the VPN Gate list; a bad list keeps the old one and says why.
// The reloaded list marks the alert of packets fed after the reload.
func TestSIGHUP(t *testing.T) {
	capture, err := os.ReadFile(direct)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	list := filepath.Join(dir, "vpngate.csv")
	const header = "*vpn_servers\n#HostName,IP,Score,Ping,Speed,CountryLong,CountryShort,NumVpnSessions,Uptime,TotalUsers,TotalTraffic,LogType,Operator,Message,OpenVPN_ConfigData_Base64\n"
	writeFile(t, list, header+"*\n")
	eve := filepath.Join(dir, "log", "eve.json")
	cfg := filepath.Join(dir, "sewatch.yaml")
	writeFile(t, cfg, fmt.Sprintf("vpngate-list: %s\noutputs:\n  - type: file\n    options: {path: %s}\n", list, eve))
	fifo := mkfifo(t)
	c := start(t, nil, "-c", cfg, "-r", fifo)
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(capture[:24]) // the pcap header only: the run waits for packets
	c.waitLog(t, `VPN Gate list loaded`)

	writeFile(t, list, "garbage\n")
	c.cmd.Process.Signal(syscall.SIGHUP)
	c.waitLog(t, `VPN Gate list not reloaded; the old allowlist and VPN Gate list stay in force.*(no #HostName)`)

	if err := os.Rename(eve, eve+".1"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, list, header+"vpn-test-1,198.18.2.2,1,1,1,Japan,JP,1,1,1,1,2weeks,op,,AAAA\n*\n")
	c.cmd.Process.Signal(syscall.SIGHUP)
	c.waitLog(t, `lists reloaded.* vpngate_servers=(1)`)
	c.waitLog(t, `output reopened`)

	w.Write(capture[24:])
	w.Close()
	if code, _ := c.wait(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, c.stderr.String())
	}
	rotated, _ := os.ReadFile(eve + ".1")
	fresh, err := os.ReadFile(eve)
	if err != nil || len(rotated) != 0 {
		t.Fatalf("after rotation: old file %q, new file %v", rotated, err)
	}
	if !strings.Contains(string(fresh), `"vpngate_listed":["vpn-test-1"]`) {
		t.Errorf("alert after the reload lacks the VPN Gate mark:\n%s", fresh)
	}
}

// TestMetricsEndpoint: --metrics-listen serves the stats counters in the
// Prometheus text format while the run goes on.
func TestMetricsEndpoint(t *testing.T) {
	capture, err := os.ReadFile(direct)
	if err != nil {
		t.Fatal(err)
	}
	fifo := mkfifo(t)
	c := start(t, nil, "-r", fifo, "--metrics-listen", "127.0.0.1:0", "-o", "file:"+filepath.Join(t.TempDir(), "eve.json"))
	addr := c.waitLog(t, `serving Prometheus metrics"? addr=(\S+)`)
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Workers publish their counters at expiry points (every 4096 packets,
	// and each second of capture time): send the capture's packets five
	// times (4,775) so that publications happen while the input is open.
	w.Write(capture)
	for i := 0; i < 4; i++ {
		w.Write(capture[24:])
	}
	published := regexp.MustCompile(`\nsewatch_packets_total ([0-9]+)\n`)
	var body string
	n := 0
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		body = scrape(t, "http://"+addr+"/metrics")
		if m := published.FindStringSubmatch(body); m != nil {
			if n, _ = strconv.Atoi(m[1]); n >= 4096 {
				break
			}
		}
	}
	if n < 4096 || n > 4775 {
		t.Errorf("sewatch_packets_total %d while the input is open, want 4096-4775 (a publication at or after packet 4096):\n%s", n, body)
	}
	for _, want := range []string{"\nsewatch_flows_total ", "\nsewatch_flows_evicted_total 0\n",
		"\nsewatch_panics_total 0\n", "\nsewatch_alerts_total 1\n", `sewatch_output_queued{output="outputs[0] (file)"}`,
		"\ngo_goroutines ", "\nprocess_resident_memory_bytes "} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", strings.TrimSpace(want), body)
		}
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := c.wait(t); code != 143 {
		t.Errorf("exit %d, want 143", code)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %s %v", url, res.Status, err)
	}
	return "\n" + string(b)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

//go:build lab

package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLiveMetrics (root): a live run on lo serves the kernel counters of
// its rings (packets, drops, freezes) on /metrics and logs the final ones
// at the end.
func TestLiveMetrics(t *testing.T) {
	c := start(t, nil, "-i", "lo", "--metrics-listen", "127.0.0.1:0", "-ring-blocks", "4",
		"-o", "file:"+filepath.Join(t.TempDir(), "eve.json"), "icmp")
	addr := c.waitLog(t, `serving Prometheus metrics"? addr=(\S+)`)
	c.waitLog(t, `msg=capturing`)
	if out, err := exec.Command("ping", "-c", "3", "-i", "0.2", "-W", "1", "127.0.0.1").CombinedOutput(); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	packets := regexp.MustCompile(`\nsewatch_kernel_packets_total (\d+)\n`)
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		body = scrape(t, "http://"+addr+"/metrics")
		// Three echo requests and three replies, each seen once on lo.
		if m := packets.FindStringSubmatch(body); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 6 {
				break
			}
		}
	}
	for _, want := range []string{"\nsewatch_kernel_drops_total 0\n", "\nsewatch_kernel_ring_freezes_total 0\n", "\nsewatch_capture_link_downs_total 0\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", strings.TrimSpace(want), body)
		}
	}
	if m := packets.FindStringSubmatch(body); m == nil {
		t.Errorf("no sewatch_kernel_packets_total:\n%s", body)
	} else if n, _ := strconv.Atoi(m[1]); n < 6 {
		t.Errorf("sewatch_kernel_packets_total %d, want ≥ 6 (3 pings)", n)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := c.wait(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, c.stderr.String())
	}
	if !regexp.MustCompile(`msg="capture ended" packets=([6-9]|\d\d+) kernel_drops=0 ring_freezes=0 ring_errors=0`).MatchString(c.stderr.String()) {
		t.Errorf("no final capture counters in the log:\n%s", c.stderr.String())
	}
}

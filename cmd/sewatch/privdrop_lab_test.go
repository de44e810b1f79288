//go:build lab

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procStatus returns the fields of /proc/PID/task/TID/status for every
// thread of pid (what each thread sees as /proc/self/status).
func procStatus(t *testing.T, pid int) map[string]map[string]string {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of %d: %v", pid, err)
	}
	out := map[string]map[string]string{}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				f[k] = strings.Join(strings.Fields(v), " ")
			}
		}
		out[p] = f
	}
	return out
}

// TestPrivilegeDrop (root): with --user, live mode opens its capture
// sockets as root, then every thread runs as that user with no
// capability, and the sockets still capture.
func TestPrivilegeDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the lab tests run as root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	eve := filepath.Join(dir, "eve.json")
	cfg := filepath.Join(dir, "sewatch.yaml")
	// Stats every 100 ms: under -race this is the live-mode race test too
	// (the stats goroutine reads the counters the capture workers write).
	writeFile(t, cfg, "stats: {interval: 100ms}\ncapture: {workers: 2}\n")
	c := start(t, nil, "-c", cfg, "-i", "lo", "--user", "nobody", "-o", "file:"+eve, "icmp")
	c.waitLog(t, `privileges dropped`)
	ids := strings.Repeat(nobody.Uid+" ", 4)
	gids := strings.Repeat(nobody.Gid+" ", 4)
	for task, st := range procStatus(t, c.cmd.Process.Pid) {
		t.Logf("%s: Uid %s Gid %s Groups %q CapInh %s CapPrm %s CapEff %s CapBnd %s CapAmb %s NoNewPrivs %s",
			task, st["Uid"], st["Gid"], st["Groups"], st["CapInh"], st["CapPrm"], st["CapEff"], st["CapBnd"], st["CapAmb"], st["NoNewPrivs"])
		if st["Uid"]+" " != ids || st["Gid"]+" " != gids {
			t.Errorf("%s: Uid %q Gid %q, want %s/%s everywhere", task, st["Uid"], st["Gid"], nobody.Uid, nobody.Gid)
		}
		for _, k := range []string{"CapPrm", "CapEff", "CapAmb", "CapInh"} {
			if st[k] != "0000000000000000" {
				t.Errorf("%s: %s = %s, want no capability", task, k, st[k])
			}
		}
		if g := st["Groups"]; g != "" && g != nobody.Gid {
			t.Errorf("%s: supplementary groups %q", task, g)
		}
	}
	// The sockets opened as root still capture.
	if out, err := exec.Command("ping", "-c", "3", "-i", "0.2", "-W", "1", "127.0.0.1").CombinedOutput(); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond) // a few stats events while capturing
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := c.wait(t); code != 0 {
		t.Fatalf("live run stopped by SIGTERM exited %d, want 0\n%s", code, c.stderr.String())
	}
	b, err := os.ReadFile(eve)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		EventType string `json:"event_type"`
		Stats     struct{ Decoder struct{ Pkts uint64 } }
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil || ev.EventType != "stats" || ev.Stats.Decoder.Pkts < 6 {
		t.Errorf("final stats after the drop: %s (%v); want ≥ 6 ICMP packets on lo", lines[len(lines)-1], err)
	}
}

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

// TestLinkFlapAfterPrivilegeDrop (root): a live sensor running as another
// user rides out its interface going down and up (the kernel resumes the
// sockets it opened as root) and counts it in stats as Suricata's
// capture.afpacket.poll_errors; when the interface is deleted and made
// again, which needs new sockets it may no longer open, it exits 1 with
// the reason, so the service manager starts it again.
func TestLinkFlapAfterPrivilegeDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the lab tests run as root")
	}
	ns := fmt.Sprintf("sw-flap-%d", os.Getpid())
	here, peer := fmt.Sprintf("swf%da", os.Getpid()), fmt.Sprintf("swf%db", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// 203.0.113.0/24: the capture package's lab tests, which go test runs
	// beside these, put 198.51.100.0/24 on a veth of the root namespace.
	link := func() {
		run("ip", "link", "add", here, "type", "veth", "peer", "name", peer)
		run("ip", "link", "set", peer, "netns", ns)
		run("ip", "addr", "add", "203.0.113.1/24", "dev", here)
		run("ip", "link", "set", here, "up")
		run("ip", "-n", ns, "addr", "add", "203.0.113.2/24", "dev", peer)
		run("ip", "-n", ns, "link", "set", peer, "up")
	}
	exec.Command("ip", "netns", "del", ns).Run()
	run("ip", "netns", "add", ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", here).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	link()

	dir := t.TempDir()
	eve := filepath.Join(dir, "eve.json")
	cfg := filepath.Join(dir, "sewatch.yaml")
	writeFile(t, cfg, "stats: {interval: 100ms}\ncapture: {workers: 2}\n")
	c := start(t, nil, "-c", cfg, "-i", here, "--user", "nobody", "-o", "file:"+eve, "icmp")
	c.waitLog(t, `msg=capturing`)
	run("ip", "link", "set", here, "down")
	c.waitLog(t, `interface went down or away`)
	run("ip", "link", "set", here, "up")
	c.waitLog(t, `interface is back`)
	run("ip", "netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "1", "203.0.113.1")

	// A stats event after the flap counts both sockets' poll errors and the
	// packets read since (the workers publish their counters at least once
	// a read timeout).
	type stats struct {
		EventType string `json:"event_type"`
		Stats     struct {
			Decoder struct{ Pkts uint64 }
			Capture struct {
				AFPacket struct {
					PollErrors uint64 `json:"poll_errors"`
				}
			}
		}
	}
	var last string
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		b, err := os.ReadFile(eve)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		last = lines[len(lines)-1]
		var ev stats
		if json.Unmarshal([]byte(last), &ev) == nil && ev.EventType == "stats" && ev.Stats.Decoder.Pkts >= 6 {
			if ev.Stats.Capture.AFPacket.PollErrors != 2 {
				t.Errorf("stats after the flap: %s; want 2 poll errors (one a socket)", last)
			}
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no stats event with the 6 ICMP packets after the flap; last line %s", last)
		}
	}

	run("ip", "link", "del", here)
	link()
	code, _ := c.wait(t)
	if log := c.stderr.String(); code != 1 || !strings.Contains(log, "made again") || !strings.Contains(log, "gave up root") {
		t.Errorf("after the interface was made again: exit %d, want 1 with the reason:\n%s", code, log)
	}
}

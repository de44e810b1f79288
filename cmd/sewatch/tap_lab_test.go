//go:build lab

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPassiveTapBridge (root): a passive network tap gives each direction
// of a link on a port of its own. Enslaved to a Linux bridge whose ports
// are isolated (nothing forwarded between them), the two ports reach one
// interface, the bridge, in the order the frames arrived, and a sensor on
// it sees whole sessions. A bundled SoftEther capture is replayed with
// tcpreplay's two-interface mode (client to server on one port, server to
// client on the other); the sensor on the bridge raises the session's
// alert, one on the server-to-client port alone none.
func TestPassiveTapBridge(t *testing.T) {
	for _, tool := range []string{"tcpprep", "tcpreplay"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required (Debian package tcpreplay): %v", tool, err)
		}
	}
	id := os.Getpid()
	ns := fmt.Sprintf("sw-tap-%d", id)
	br, toServer, toClient := fmt.Sprintf("swtb%d", id), fmt.Sprintf("swta%d", id), fmt.Sprintf("swtc%d", id)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	exec.Command("ip", "netns", "del", ns).Run()
	run("ip", "netns", "add", ns)
	t.Cleanup(func() {
		for _, l := range []string{toServer, toClient, br} {
			exec.Command("ip", "link", "del", l).Run()
		}
		exec.Command("ip", "netns", "del", ns).Run()
	})
	run("ip", "link", "add", br, "type", "bridge")
	for _, port := range []string{toServer, toClient} {
		// The tap's port here, the tap itself (tcpreplay) in the namespace.
		run("ip", "link", "add", port, "type", "veth", "peer", "name", port+"p")
		run("ip", "link", "set", port+"p", "netns", ns)
		run("ip", "-n", ns, "link", "set", port+"p", "up")
		run("ip", "link", "set", port, "master", br)
		run("ip", "link", "set", port, "type", "bridge_slave", "isolated", "on")
		run("ip", "link", "set", port, "up")
	}
	run("ip", "link", "set", br, "up")

	capture := "../../testdata/pcap/se-direct-443.pcap"
	cache := filepath.Join(t.TempDir(), "tap.cache")
	// The host that sent the first SYN is the client.
	run("tcpprep", "--auto=first", "-i", capture, "-o", cache)
	dir := t.TempDir()
	sensors := map[string]*child{}
	for _, iface := range []string{br, toClient} {
		c := start(t, nil, "-i", iface, "-o", "file:"+filepath.Join(dir, iface+".json"))
		c.waitLog(t, `msg=capturing`)
		sensors[iface] = c
	}
	run("ip", "netns", "exec", ns, "tcpreplay", "-q", "--pps=2000", "-c", cache, "-i", toServer+"p", "-I", toClient+"p", capture)
	time.Sleep(500 * time.Millisecond) // the last ring block is handed over within 50 ms
	alerts := map[string]int{}
	for iface, c := range sensors {
		c.cmd.Process.Signal(syscall.SIGTERM)
		if code, _ := c.wait(t); code != 0 {
			t.Fatalf("sensor on %s: exit %d\n%s", iface, code, c.stderr.String())
		}
		b, err := os.ReadFile(filepath.Join(dir, iface+".json"))
		if err != nil {
			t.Fatal(err)
		}
		alerts[iface] = strings.Count(string(b), `"signature_id":8700001`)
	}
	if alerts[br] != 1 || alerts[toClient] != 0 {
		t.Errorf("SoftEther session alerts: %d on the bridge (want 1), %d on the server-to-client port alone (want 0)\nbridge sensor's log:\n%s",
			alerts[br], alerts[toClient], sensors[br].stderr.String())
	}
}

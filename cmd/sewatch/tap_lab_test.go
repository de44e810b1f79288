//go:build lab

package main

import (
	"bufio"
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
// alert, one on the server-to-client port alone none. A sensor given both
// ports (-i A,B, two workers; or capture.interfaces in its configuration)
// raises it too, without a bridge, and names the port the session's first
// packet came in on as its in_iface.
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
	both := toServer + "," + toClient
	for _, iface := range []string{br, toClient, both} {
		c := start(t, nil, "-i", iface, "--workers", "2", "-o", "file:"+filepath.Join(dir, iface+".json"))
		c.waitLog(t, `msg=capturing`)
		sensors[iface] = c
	}
	// The two ports from the configuration (capture.interfaces), no -i.
	cfg := filepath.Join(dir, "ports.yaml")
	if err := os.WriteFile(cfg, []byte("capture:\n  interfaces: ["+toServer+", "+toClient+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	configured := "configured"
	sensors[configured] = start(t, nil, "-c", cfg, "-o", "file:"+filepath.Join(dir, configured+".json"))
	sensors[configured].waitLog(t, `msg=capturing`)
	run("ip", "netns", "exec", ns, "tcpreplay", "-q", "--pps=2000", "-c", cache, "-i", toServer+"p", "-I", toClient+"p", capture)
	time.Sleep(500 * time.Millisecond) // the last ring block is handed over within 50 ms
	alerts := map[string]int{}
	eves := map[string]string{}
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
		eves[iface] = string(b)
	}
	if alerts[br] != 1 || alerts[toClient] != 0 || alerts[both] != 1 || alerts[configured] != 1 {
		t.Errorf("SoftEther session alerts: %d on the bridge (want 1), %d on the server-to-client port alone (want 0), %d on both ports (want 1), %d on both ports from the configuration (want 1)\nbridge sensor's log:\n%s\nboth ports' sensor's log:\n%s",
			alerts[br], alerts[toClient], alerts[both], alerts[configured], sensors[br].stderr.String(), sensors[both].stderr.String())
	}
	for iface, want := range map[string]string{br: br, both: toServer, configured: toServer} {
		for _, line := range strings.Split(eves[iface], "\n") {
			if strings.Contains(line, `"signature_id":8700001`) && !strings.Contains(line, `"in_iface":"`+want+`"`) {
				t.Errorf("sensor on %s: the alert's in_iface is not %s:\n%s", iface, want, line)
			}
		}
	}
}

// tunReplay makes a tun device (argv 1) in the namespace it runs in, says
// "ready", waits for a line on stdin, then writes the IP packets of the
// pcap (argv 2) into it, as a VPN's tun device hands the kernel what came
// through the tunnel, and says how many.
const tunReplay = `
import fcntl, os, struct, sys, time
name, pcap = sys.argv[1], sys.argv[2]
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', name.encode(), 0x1001))  # TUNSETIFF, IFF_TUN|IFF_NO_PI
os.system('ip link set %s up' % name)
print('ready', flush=True)
sys.stdin.readline()
with open(pcap, 'rb') as f:
    magic = f.read(24)[:4]
    e = '<' if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
    n = 0
    while True:
        rh = f.read(16)
        if len(rh) < 16:
            break
        frame = f.read(struct.unpack(e + 'IIII', rh)[2])
        et, off = frame[12:14], 14
        while et in (b'\x81\x00', b'\x88\xa8'):
            et, off = frame[off + 2:off + 4], off + 4
        if et in (b'\x08\x00', b'\x86\xdd'):
            os.write(fd, frame[off:])
            n += 1
            if n % 50 == 0:
                time.sleep(0.01)
print('sent', n, flush=True)
time.sleep(0.5)
`

// TestSoftEtherOnTunInterface (root): a sensor on a tun device (the inner
// interface of an OpenVPN or WireGuard gateway) finds a SoftEther session
// carried inside that VPN. The bundled session's IP packets are written
// into a tun device in a network namespace of the test's own (forwarding
// off there: they go nowhere); the sensor in that namespace raises the
// session's alert. Before live capture read tun devices as raw IP it
// decoded them as Ethernet and found no flow at all.
func TestSoftEtherOnTunInterface(t *testing.T) {
	ns, tun := fmt.Sprintf("sw-tun-%d", os.Getpid()), "swtun0"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	py := exec.Command("ip", "netns", "exec", ns, "python3", "-c", tunReplay, tun, "../../testdata/pcap/se-direct-443.pcap")
	stdin, err := py.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := py.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	py.Stderr = os.Stderr
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { py.Process.Kill(); py.Wait() })
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("tun writer: %q, want ready", lines.Text())
	}

	eve := filepath.Join(t.TempDir(), "eve.json")
	c := startCmd(t, nil, exec.Command("ip", "netns", "exec", ns, os.Args[0], "-i", tun, "-o", "file:"+eve))
	c.waitLog(t, `msg=capturing`)
	fmt.Fprintln(stdin, "go")
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "sent ") {
		t.Fatalf("tun writer: %q, want the packets sent", lines.Text())
	}
	time.Sleep(500 * time.Millisecond)
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code, _ := c.wait(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, c.stderr.String())
	}
	b, err := os.ReadFile(eve)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"signature_id":8700001`); n != 1 {
		t.Errorf("%d SoftEther session alerts on the tun device (%s), want 1\n%s", n, lines.Text(), c.stderr.String())
	}
}

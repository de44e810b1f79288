//go:build lab

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// sh runs a command and fails the test with its output on error.
func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// The lab link's names carry the process id, so runs in parallel (other
// checkouts on the same machine) never share or delete each other's link.
var (
	labNS   = fmt.Sprintf("sw-cap-%d", os.Getpid())
	labHere = fmt.Sprintf("swc%da", os.Getpid())
	labPeer = fmt.Sprintf("swc%db", os.Getpid())
)

// labLink makes a veth pair: labHere here, labPeer in namespace labNS, with
// 198.51.100.1/.2. Traffic only ever flows between these two ends.
func labLink(t *testing.T) {
	exec.Command("ip", "netns", "del", labNS).Run()
	exec.Command("ip", "link", "del", labHere).Run()
	sh(t, "ip", "netns", "add", labNS)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", labHere).Run()
		exec.Command("ip", "netns", "del", labNS).Run()
	})
	sh(t, "ip", "link", "add", labHere, "type", "veth", "peer", "name", labPeer)
	sh(t, "ip", "link", "set", labPeer, "netns", labNS)
	sh(t, "ip", "addr", "add", "198.51.100.1/24", "dev", labHere)
	sh(t, "ip", "link", "set", labHere, "up")
	sh(t, "ip", "-n", labNS, "addr", "add", "198.51.100.2/24", "dev", labPeer)
	sh(t, "ip", "-n", labNS, "link", "set", labPeer, "up")
}

// sendTagged writes n 802.1Q-tagged (VLAN 100) IPv4/ICMP frames on the
// peer from inside the namespace with a raw packet socket (this kernel may
// have no VLAN devices, so the tag is built by hand). Arguments: interface,
// count.
const sendTagged = `
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
ip = bytes.fromhex("4500001c0001000040010000c6336502c6336501") + bytes.fromhex("0800f7ff00000000")
frame = b"\xff"*6 + b"\x02\x00\x00\x00\x00\x02" + struct.pack("!HH", 0x8100, 100) + b"\x08\x00" + ip
for _ in range(int(sys.argv[2])):
    s.send(frame)
`

func TestLiveCapture(t *testing.T) {
	labLink(t)
	srcs, err := OpenLive(labHere, LiveOptions{Workers: 2, Promisc: true, ReadTimeout: 200 * time.Millisecond, Filter: "icmp or vlan"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	type seen struct {
		n, tagged int
		bad       bool
	}
	results := make(chan seen, len(srcs))
	start := time.Now()
	for _, s := range srcs {
		go func(s Source) {
			var r seen
			deadline := time.Now().Add(4 * time.Second)
			for time.Now().Before(deadline) {
				d, ci, err := s.ReadPacket()
				if errors.Is(err, ErrTimeout) {
					continue
				}
				if err != nil {
					break
				}
				r.n++
				if ci.Timestamp.Before(start.Add(-time.Second)) || ci.Timestamp.After(time.Now().Add(time.Second)) {
					r.bad = true
				}
				if len(d) >= 18 && binary.BigEndian.Uint16(d[12:]) == 0x8100 && binary.BigEndian.Uint16(d[14:])&0xfff == 100 {
					r.tagged++
				}
			}
			results <- r
		}(s)
	}
	time.Sleep(300 * time.Millisecond)
	sh(t, "ip", "netns", "exec", labNS, "ping", "-c", "5", "-i", "0.2", "-W", "1", "198.51.100.1")
	sh(t, "ip", "netns", "exec", labNS, "python3", "-c", sendTagged, labPeer, "5")
	var total seen
	for range srcs {
		r := <-results
		total.n += r.n
		total.tagged += r.tagged
		total.bad = total.bad || r.bad
	}
	// 5 echo requests, 5 replies and 5 tagged frames cross swcap0.
	if total.n < 15 || total.tagged < 5 || total.bad {
		t.Errorf("saw %d packets, %d with the VLAN 100 tag, bad timestamps %v", total.n, total.tagged, total.bad)
	}
	var st Stats
	for _, s := range srcs {
		x := s.Stats()
		st.Packets += x.Packets
	}
	if st.Packets != uint64(total.n) {
		t.Errorf("stats count %d packets, read %d", st.Packets, total.n)
	}
}

//go:build lab

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// twoLinks makes two veth pairs, here in this namespace and their peers
// (the names with "p" added) up in a namespace of the test's own, and
// returns the two names here.
func twoLinks(t *testing.T, tag string) (ns string, here []string) {
	ns = fmt.Sprintf("sw-%s-%d", tag, os.Getpid())
	here = []string{fmt.Sprintf("sw%s%da", tag[:1], os.Getpid()), fmt.Sprintf("sw%s%db", tag[:1], os.Getpid())}
	exec.Command("ip", "netns", "del", ns).Run()
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		for _, l := range here {
			exec.Command("ip", "link", "del", l).Run()
		}
		exec.Command("ip", "netns", "del", ns).Run()
	})
	for _, l := range here {
		exec.Command("ip", "link", "del", l).Run()
		sh(t, "ip", "link", "add", l, "type", "veth", "peer", "name", l+"p")
		sh(t, "ip", "link", "set", l+"p", "netns", ns)
		sh(t, "ip", "-n", ns, "link", "set", l+"p", "up")
		sh(t, "ip", "link", "set", l, "up")
	}
	return ns, here
}

// drain hands each packet of s to fn until a read times out.
func drain(t *testing.T, s Source, fn func([]byte)) {
	t.Helper()
	for {
		d, _, err := s.ReadPacket()
		if errors.Is(err, ErrTimeout) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(d)
	}
}

// sendTwoWays writes, for each of 16 UDP flows in turn (each between two
// hosts of its own), a frame from client to server on one interface (argv 1) and the server's answer on
// another (argv 2), as a tap gives the two directions of a link on two
// ports, a millisecond apart. Each payload is the frame's number (4 bytes).
const sendTwoWays = `
import socket, struct, sys, time
a = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); a.bind((sys.argv[1], 0))
b = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); b.bind((sys.argv[2], 0))
def frame(src, dst, sport, dport, seq):
    udp = struct.pack('!HHHH', sport, dport, 12, 0) + struct.pack('!I', seq)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return b'\x02\x00\x00\x00\x00\x02' + b'\x02\x00\x00\x00\x00\x01' + b'\x08\x00' + ip + udp
seq = 0
for i in range(16):
    c, s = '198.18.0.%d' % (i + 1), '198.18.1.%d' % (i + 1)
    a.send(frame(c, s, 7000 + i, 9, seq)); seq += 1
    time.sleep(0.001)
    b.send(frame(s, c, 9, 7000 + i, seq)); seq += 1
    time.sleep(0.001)
`

// TestLiveInterfacesOneCapture (root): two interfaces read as one capture
// by two workers. Both directions of every flow reach one worker although
// each direction came in on its own interface (the kernel's fanout hash is
// symmetric and the same on both), each packet says which interface it
// came in on, and a worker hands its packets out in the order they were
// sent across the two interfaces (both rings are read by capture time).
func TestLiveInterfacesOneCapture(t *testing.T) {
	ns, here := twoLinks(t, "multi")
	srcs, err := OpenLiveInterfaces(here, LiveOptions{Workers: 2, ReadTimeout: 200 * time.Millisecond,
		Filter: "udp and net 198.18.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	if len(srcs) != 2 {
		t.Fatalf("%d sources, want one per worker (2)", len(srcs))
	}
	sh(t, "ip", "netns", "exec", ns, "python3", "-c", sendTwoWays, here[0]+"p", here[1]+"p")
	// Every block is handed over within the ring's retire timeout: both
	// rings now hold all their frames, and the order is the reader's.
	time.Sleep(300 * time.Millisecond)

	type pkt struct{ worker, iface, seq, flow int }
	var got []pkt
	for w, s := range srcs {
		drain(t, s, func(d []byte) {
			if len(d) < 46 {
				t.Fatalf("a %d-byte frame", len(d))
			}
			sport, dport := int(binary.BigEndian.Uint16(d[34:])), int(binary.BigEndian.Uint16(d[36:]))
			got = append(got, pkt{worker: w, iface: s.(interface{ Iface() int }).Iface(),
				seq: int(binary.BigEndian.Uint32(d[42:])), flow: max(sport, dport) - 7000})
		})
	}
	if len(got) != 32 {
		t.Fatalf("read %d frames, want 32: %v", len(got), got)
	}
	workerOf := map[int]int{}
	lastSeq := map[int]int{0: -1, 1: -1}
	perWorker := map[int]int{}
	for _, p := range got {
		// Even frames went client to server on the first interface.
		if want := p.seq % 2; p.iface != want {
			t.Errorf("frame %d: interface %d, want %d", p.seq, p.iface, want)
		}
		if w, ok := workerOf[p.flow]; ok && w != p.worker {
			t.Errorf("flow %d: its directions reached workers %d and %d", p.flow, w, p.worker)
		}
		workerOf[p.flow] = p.worker
		if p.seq <= lastSeq[p.worker] {
			t.Errorf("worker %d: frame %d after frame %d", p.worker, p.seq, lastSeq[p.worker])
		}
		lastSeq[p.worker] = p.seq
		perWorker[p.worker]++
	}
	if perWorker[0] == 0 || perWorker[1] == 0 {
		t.Errorf("frames per worker %v: the fanout hash sent every flow to one worker", perWorker)
	}
	var st Stats
	for _, s := range srcs {
		st.Packets += s.Stats().Packets
	}
	if st.Packets != 32 {
		t.Errorf("stats count %d packets, read 32", st.Packets)
	}
}

// TestLiveInterfacesRefused: an interface listed twice, or interfaces of
// two link types, are refused before anything is read.
func TestLiveInterfacesRefused(t *testing.T) {
	if _, err := OpenLiveInterfaces([]string{"lo", "lo"}, LiveOptions{}); err == nil {
		t.Error("lo listed twice: opened")
	}
	tun := fmt.Sprintf("swm%dt", os.Getpid())
	makeTun(t, tun)
	srcs, err := OpenLiveInterfaces([]string{"lo", tun}, LiveOptions{})
	for _, s := range srcs {
		s.Close()
	}
	if err == nil {
		t.Error("lo (Ethernet) and a tun device (raw IP) opened as one capture")
	}
}

// sendQuietFirst writes one frame on a quiet interface (argv 2), then,
// 5 ms later, 100 on a busy one (argv 1): numbered 0, then 1-100.
const sendQuietFirst = `
import socket, struct, sys, time
a = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); a.bind((sys.argv[1], 0))
b = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); b.bind((sys.argv[2], 0))
def frame(seq):
    udp = struct.pack('!HHHH', 7000, 9, 12, 0) + struct.pack('!I', seq)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton('198.18.0.1'), socket.inet_aton('198.18.0.2'))
    return b'\x02\x00\x00\x00\x00\x02' + b'\x02\x00\x00\x00\x00\x01' + b'\x08\x00' + ip + udp
b.send(frame(0))
time.sleep(0.005)
for seq in range(1, 101):
    a.send(frame(seq))
`

// TestLiveInterfacesWaitForQuietRing (root): a packet of a busy interface
// waits for an earlier one of a quiet interface that the kernel has not
// handed over yet. Small ring blocks make the busy ring's blocks full,
// and handed over at once, while the quiet ring's only packet stays in
// its block until the 300 ms retire timer: read as soon as they are there,
// the 100 later packets would come first.
func TestLiveInterfacesWaitForQuietRing(t *testing.T) {
	ns, here := twoLinks(t, "quiet")
	srcs, err := OpenLiveInterfaces(here, LiveOptions{Workers: 1, Snaplen: 1500, ReadTimeout: 2 * time.Second,
		Filter: "udp and net 198.18.0.0/24", Ring: RingOptions{BlockSize: 4096, Blocks: 16, Retire: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer srcs[0].Close()
	type pkt struct{ iface, seq int }
	got := make(chan pkt, 200)
	go func() {
		defer close(got)
		for n := 0; n < 101; n++ {
			d, _, err := srcs[0].ReadPacket()
			if err != nil || len(d) < 46 {
				return
			}
			got <- pkt{srcs[0].(interface{ Iface() int }).Iface(), int(binary.BigEndian.Uint32(d[42:]))}
		}
	}()
	sh(t, "ip", "netns", "exec", ns, "python3", "-c", sendQuietFirst, here[0]+"p", here[1]+"p")
	var seqs []int
	for p := range got {
		want := 0 // the busy interface
		if p.seq == 0 {
			want = 1
		}
		if p.iface != want {
			t.Errorf("frame %d read from interface %d, want %d", p.seq, p.iface, want)
		}
		seqs = append(seqs, p.seq)
	}
	if len(seqs) != 101 {
		t.Fatalf("read %d frames, want 101", len(seqs))
	}
	for i, s := range seqs {
		if s != i {
			t.Fatalf("frames read in the order %v, want 0-100 in order", seqs)
		}
	}
}

// TestLiveInterfacesClockSetBack (root): after the wall clock is set back
// (an NTP step), capture times lie in the future; a packet of a busy
// interface beside a quiet one is still let go after the usual wait, not
// held for as long as the step.
func TestLiveInterfacesClockSetBack(t *testing.T) {
	defer func(c func() time.Time) { wallClock = c }(wallClock)
	wallClock = func() time.Time { return time.Now().Add(-time.Hour) }
	ns, here := twoLinks(t, "step")
	srcs, err := OpenLiveInterfaces(here, LiveOptions{Workers: 1, ReadTimeout: 5 * time.Second,
		Filter: "udp and net 198.18.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	defer srcs[0].Close()
	got := make(chan error, 1)
	go func() {
		_, _, err := srcs[0].ReadPacket()
		got <- err
	}()
	// sendQuietFirst's busy interface alone: its quiet frame goes to the
	// namespace's loopback, and the quiet interface gets nothing.
	sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	sh(t, "ip", "netns", "exec", ns, "python3", "-c", sendQuietFirst, here[0]+"p", "lo")
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no packet 3 s after it was sent: held for the clock's step")
	}
}

// sendIPsec writes, for each of 16 host pairs, an ESP packet each way, each
// direction with an SPI of its own, as an IPsec SA's two directions have
// (argv 1: the interface). Each payload ends with the frame's number.
const sendIPsec = `
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((sys.argv[1], 0))
def frame(src, dst, spi, seq):
    esp = struct.pack('!II', spi, 1) + struct.pack('!I', seq)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(esp), 0, 0, 64, 50, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return b'\x02\x00\x00\x00\x00\x02' + b'\x02\x00\x00\x00\x00\x01' + b'\x08\x00' + ip + esp
seq = 0
for i in range(16):
    a, b = '198.18.1.%d' % (i + 1), '198.18.2.%d' % (i + 1)
    s.send(frame(a, b, 0x1000 + i, seq)); seq += 1
    s.send(frame(b, a, 0x2000 + i, seq)); seq += 1
`

// TestLiveFanoutKeepsIPsecTogether (root): both directions of an IPsec SA
// reach one worker. The kernel's own fanout hash reads the SPI as ports,
// and each direction has its own SPI, so it split SAs between two workers;
// sewatch's fanout program hashes the address pair.
func TestLiveFanoutKeepsIPsecTogether(t *testing.T) {
	ns, here := twoLinks(t, "esp")
	srcs, err := OpenLive(here[0], LiveOptions{Workers: 2, ReadTimeout: 200 * time.Millisecond, Filter: "ip proto 50"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	sh(t, "ip", "netns", "exec", ns, "python3", "-c", sendIPsec, here[0]+"p")
	time.Sleep(300 * time.Millisecond)
	workerOf := map[[4]byte]int{} // the SA's client address -> worker
	per := map[int]int{}
	n := 0
	for w, s := range srcs {
		drain(t, s, func(d []byte) {
			n++
			per[w]++
			src, dst := [4]byte(d[26:30]), [4]byte(d[30:34])
			client := src
			if src[2] == 2 {
				client = dst
			}
			if prev, ok := workerOf[client]; ok && prev != w {
				t.Errorf("the SA of %v: its two directions reached workers %d and %d", client, prev, w)
			}
			workerOf[client] = w
		})
	}
	if n != 32 {
		t.Fatalf("read %d ESP packets, want 32", n)
	}
	if per[0] == 0 || per[1] == 0 {
		t.Errorf("packets per worker %v: every host pair went to one worker", per)
	}
}

// TestLiveInterfacesHoldDoesNotSpin (root): while a packet waits for a
// quiet interface, the reader sleeps in poll until that interface has a
// packet or the wait ends. Polling the busy socket too returned at once,
// since its ring still held packets, and the reader spun for the whole
// wait: a core busy for every packet while one interface was quiet (5.0
// CPU-s for 5 s of 1,000 packets/s on one of two ports; 0.08 after).
func TestLiveInterfacesHoldDoesNotSpin(t *testing.T) {
	ns, here := twoLinks(t, "poll")
	srcs, err := OpenLiveInterfaces(here, LiveOptions{Workers: 1, ReadTimeout: 2 * time.Second,
		Filter: "udp and net 198.18.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	defer srcs[0].Close()
	sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	// Frame 0 to the namespace's loopback, 1-100 on the busy interface;
	// the quiet one gets nothing.
	sh(t, "ip", "netns", "exec", ns, "python3", "-c", sendQuietFirst, here[0]+"p", "lo")
	for n := 0; n < 100; n++ {
		if _, _, err := srcs[0].ReadPacket(); err != nil {
			t.Fatalf("packet %d: %v", n+1, err)
		}
	}
	// One wait for the first packet (the others were sent within it);
	// spinning made tens of thousands.
	if p := srcs[0].(*multiLive).polls; p > 20 {
		t.Errorf("%d polls for 100 packets held for a quiet interface", p)
	}
}

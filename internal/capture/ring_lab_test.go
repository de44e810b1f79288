//go:build lab

package capture

import (
	"encoding/binary"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// bulkCapture is the largest bundled capture (about 12,000 packets).
const bulkCapture = "../../testdata/pcap/se-bulk.pcap"

// sendMixed writes pairs of frames on the peer: one 802.1Q-tagged
// (VLAN 100, the kernel strips the tag into the ring header and the reader
// re-inserts it) and one untagged. Arguments: interface, pairs.
const sendMixed = `
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
ip = bytes.fromhex("4500001c0001000040010000c6336502c6336501") + bytes.fromhex("0800f7ff00000000")
head = b"\xff"*6 + b"\x02\x00\x00\x00\x00\x02"
tagged = head + struct.pack("!HH", 0x8100, 100) + b"\x08\x00" + ip
plain = head + b"\x08\x00" + ip
for _ in range(int(sys.argv[2])):
    s.send(tagged)
    s.send(plain)
`

// quietLink turns IPv6 off on both ends so the link carries only what a
// test sends (no neighbour discovery or MLD reports).
func quietLink(t *testing.T) {
	sh(t, "sysctl", "-qw", "net.ipv6.conf."+labHere+".disable_ipv6=1")
	sh(t, "ip", "netns", "exec", labNS, "sysctl", "-qw", "net.ipv6.conf."+labPeer+".disable_ipv6=1")
}

// TestLiveRingAllocs: reading from the ring allocates nothing per packet,
// tagged (copied to the scratch buffer) or not.
func TestLiveRingAllocs(t *testing.T) {
	labLink(t)
	quietLink(t)
	srcs, err := OpenLive(labHere, LiveOptions{Workers: 1, ReadTimeout: 200 * time.Millisecond, Filter: "icmp or vlan",
		Ring: RingOptions{BlockSize: 1 << 16, Blocks: 64}})
	if err == nil {
		// The 64 KiB blocks need the snap length to fit.
		t.Fatal("a 64 KiB block was accepted with the 256 KiB default snap length")
	}
	srcs, err = OpenLive(labHere, LiveOptions{Workers: 1, Snaplen: 2048, ReadTimeout: 200 * time.Millisecond,
		Filter: "icmp or vlan", Ring: RingOptions{BlockSize: 1 << 16, Blocks: 64}})
	if err != nil {
		t.Fatal(err)
	}
	s := srcs[0]
	defer s.Close()
	const pairs = 1500 // 3,000 frames of 60 bytes: well within the 4 MiB ring
	sh(t, "ip", "netns", "exec", labNS, "python3", "-c", sendMixed, labPeer, strconv.Itoa(pairs))
	var read, tagged, timeouts int
	readOne := func() {
		d, ci, err := s.ReadPacket()
		switch {
		case errors.Is(err, ErrTimeout):
			timeouts++
		case err != nil:
			t.Fatal(err)
		default:
			read++
			if len(d) != ci.CaptureLength || ci.Timestamp.IsZero() {
				t.Fatalf("packet %d: %d bytes, capture info %+v", read, len(d), ci)
			}
			if len(d) >= 16 && binary.BigEndian.Uint16(d[12:]) == 0x8100 && binary.BigEndian.Uint16(d[14:])&0xfff == 100 {
				tagged++
			}
		}
	}
	readOne() // the first read waits for the first block
	if allocs := testing.AllocsPerRun(2*pairs-100, readOne); allocs != 0 {
		t.Errorf("%.2f allocations per ReadPacket, want 0", allocs)
	}
	if read < 2*pairs-100 || tagged < read/2-1 || timeouts > 0 {
		t.Errorf("read %d packets (%d tagged) with %d timeouts; sent %d, half tagged", read, tagged, timeouts, 2*pairs)
	}
	if st := s.Stats(); st.Packets != uint64(read) || st.KernelDrops != 0 || st.Errors != 0 {
		t.Errorf("stats %+v after reading %d packets", st, read)
	}
}

// TestLiveReplayNoDrops replays the bulk capture with tcpreplay at a modest
// 10,000 packets/s into the link: every packet sent is read, the kernel
// reports no drop, and the ring's blocks go back and forth (12,000 packets
// of about 500 bytes fill several 1 MiB blocks). Not a speed figure
// (scripts/live-replay.sh measures that): a check that the ring loses
// nothing at a rate any machine sustains.
func TestLiveReplayNoDrops(t *testing.T) {
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		t.Fatalf("tcpreplay is required (Debian package tcpreplay): %v", err)
	}
	labLink(t)
	quietLink(t)
	srcs, err := OpenLive(labHere, LiveOptions{Workers: 1, ReadTimeout: 200 * time.Millisecond,
		Ring: RingOptions{BlockSize: 1 << 20, Blocks: 8}})
	if err != nil {
		t.Fatal(err)
	}
	s := srcs[0]
	defer s.Close()
	type result struct {
		n     int
		bytes int
	}
	stop := make(chan struct{})
	done := make(chan result, 1)
	go func() {
		var r result
		for {
			d, _, err := s.ReadPacket()
			if errors.Is(err, ErrTimeout) {
				select {
				case <-stop:
					done <- r
					return
				default:
					continue
				}
			}
			if err != nil {
				t.Error(err)
				done <- r
				return
			}
			r.n++
			r.bytes += len(d)
		}
	}()
	out, err := exec.Command("ip", "netns", "exec", labNS, "tcpreplay", "-q", "--pps=10000", "-i", labPeer, bulkCapture).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpreplay: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Actual: (\d+) packets`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no packet count in tcpreplay's output:\n%s", out)
	}
	sent, _ := strconv.Atoi(string(m[1]))
	// PACKET_FANOUT_FLAG_DEFRAG reassembles IPv4 fragments before the
	// ring: a datagram is one packet, however many fragments carried it.
	want := sent - laterFragments(t, bulkCapture)
	close(stop) // the reader ends at its next timeout, once the ring is drained
	r := <-done
	st := s.Stats()
	if r.n != want || st.KernelDrops != 0 || st.KernelFreezes != 0 {
		t.Errorf("tcpreplay sent %d packets (%d once fragments are reassembled); read %d, kernel drops %d, freezes %d",
			sent, want, r.n, st.KernelDrops, st.KernelFreezes)
	}
	t.Logf("sent %d, read %d packets (%d bytes)", sent, r.n, r.bytes)
}

// laterFragments counts the IPv4 fragments of a capture that are not a
// datagram's first (untagged Ethernet, as in the bundled captures).
func laterFragments(t *testing.T, path string) int {
	src, err := OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n := 0
	for {
		d, _, err := src.ReadPacket()
		if err != nil {
			return n
		}
		if len(d) >= 34 && binary.BigEndian.Uint16(d[12:]) == 0x0800 && binary.BigEndian.Uint16(d[20:])&0x1fff != 0 {
			n++
		}
	}
}

// TestLiveCloseWithPacketHeld: Close while the caller still holds the last
// packet read leaves that slice readable (the ring's range is replaced by
// an empty mapping, not unmapped), and the next read says ErrClosed.
func TestLiveCloseWithPacketHeld(t *testing.T) {
	labLink(t)
	quietLink(t)
	srcs, err := OpenLive(labHere, LiveOptions{Workers: 1, Snaplen: 2048, ReadTimeout: 200 * time.Millisecond,
		Filter: "icmp or vlan", Ring: RingOptions{BlockSize: 1 << 16, Blocks: 4}})
	if err != nil {
		t.Fatal(err)
	}
	s := srcs[0]
	sh(t, "ip", "netns", "exec", labNS, "python3", "-c", sendMixed, labPeer, "2")
	var d []byte
	for i := 0; i < 20 && d == nil; i++ {
		p, _, err := s.ReadPacket()
		if err == nil && len(p) >= 14 && binary.BigEndian.Uint16(p[12:]) == 0x0800 {
			d = p // an untagged frame: a slice into the ring itself
		} else if err != nil && !errors.Is(err, ErrTimeout) {
			t.Fatal(err)
		}
	}
	if d == nil {
		t.Fatal("no untagged frame read")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, b := range d { // would fault if the range were unmapped
		sum += int(b)
	}
	if _, _, err := s.ReadPacket(); !errors.Is(err, ErrClosed) {
		t.Errorf("read after Close: %v, want ErrClosed", err)
	}
	if _, _, err := s.ReadPacket(); !errors.Is(err, ErrClosed) {
		t.Errorf("second read after Close: %v, want ErrClosed", err)
	}
	t.Logf("read %d bytes of the held packet after Close (sum %d)", len(d), sum)
}

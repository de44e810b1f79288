//go:build lab

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestLiveRawIPInterface: on an interface with no link header (a tun
// device, as OpenVPN's tun0 or WireGuard's wg0) the live source says its
// frames are raw IP and hands them over from the IP header.
func TestLiveRawIPInterface(t *testing.T) {
	name := fmt.Sprintf("swt%d", os.Getpid())
	tun := makeTun(t, name)
	sh(t, "ip", "addr", "add", "198.51.100.1/24", "dev", name)

	srcs, err := OpenLive(name, LiveOptions{Workers: 1, ReadTimeout: 200 * time.Millisecond, Filter: "icmp"})
	if err != nil {
		t.Fatal(err)
	}
	defer srcs[0].Close()
	if lt := srcs[0].LinkType(); lt != 101 {
		t.Fatalf("link type %d on a tun device, want 101 (raw IP)", lt)
	}
	// An echo request from 198.51.100.2 enters the kernel through the tun
	// device; the kernel's reply leaves through it. (The subnet of this
	// package's veth tests, which run one after the other; the cmd
	// package's, which go test runs beside these, use another.)
	req := echoRequest(net.IPv4(198, 51, 100, 2), net.IPv4(198, 51, 100, 1))
	if _, err := tun.Write(req); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for deadline := time.Now().Add(3 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		d, _, err := srcs[0].ReadPacket()
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, append([]byte(nil), d...))
	}
	if len(got) != 2 || string(got[0]) != string(req) || len(got[1]) != len(req) || got[1][0] != 0x45 ||
		!net.IP(got[1][12:16]).Equal(net.IPv4(198, 51, 100, 1)) || got[1][20] != 0 {
		t.Errorf("read % x, want the request % x and its reply from 198.51.100.1, both from the IP header", got, req)
	}
}

// echoRequest is an IPv4 ICMP echo request from src to dst.
func echoRequest(src, dst net.IP) []byte {
	p := make([]byte, 20+8+16)
	p[0], p[8], p[9] = 0x45, 64, 1
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:], src.To4())
	copy(p[16:], dst.To4())
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20]))
	icmp := p[20:]
	icmp[0] = 8
	binary.BigEndian.PutUint16(icmp[4:], 1)
	binary.BigEndian.PutUint16(icmp[6:], 1)
	copy(icmp[8:], "sewatch tun test")
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	return p
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// makeTun makes a tun device (IP packets, no link header) named name, up,
// for as long as the test runs.
func makeTun(t *testing.T, name string) *os.File {
	t.Helper()
	tun, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tun.Close() })
	var ifr [40]byte // struct ifreq: name, then flags
	copy(ifr[:unix.IFNAMSIZ-1], name)
	binary.NativeEndian.PutUint16(ifr[unix.IFNAMSIZ:], unix.IFF_TUN|unix.IFF_NO_PI)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, tun.Fd(), unix.TUNSETIFF, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		t.Fatalf("TUNSETIFF: %v", e)
	}
	sh(t, "ip", "link", "set", name, "up")
	return tun
}

// TestLiveInterfaceMadeAgainAsTun: an Ethernet interface deleted and made
// again under its name as a tun device ends the capture with the reason
// (its workers decode one link type), rather than decode raw IP as
// Ethernet or wait for good.
func TestLiveInterfaceMadeAgainAsTun(t *testing.T) {
	labLink(t)
	srcs, err := OpenLive(labHere, LiveOptions{Workers: 1, ReadTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srcs[0].Close()
	done := make(chan error, 1)
	go func() {
		for {
			if _, _, err := srcs[0].ReadPacket(); err != nil && !errors.Is(err, ErrTimeout) {
				done <- err
				return
			}
		}
	}()
	sh(t, "ip", "link", "del", labHere)
	makeTun(t, labHere)
	select {
	case err := <-done:
		if !errors.Is(err, errLinkChanged) || !strings.Contains(err.Error(), "link type 101, where it had 1") {
			t.Errorf("read error %v, want the interface made again as another kind", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the capture went on for 5 s on an interface made again as a tun device")
	}
}

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

type result struct {
	sent, failed            int // handed to the kernel; refused by it (too long for the link, ...)
	elapsed                 time.Duration
	kernelTx, kernelDropped uint64 // the interface's transmit counters over the run
}

// send opens the socket, sends loops copies of fr and reads the
// interface's counters around the run.
func send(iface string, fr *frames, mode string, rate float64, batch, loops int) (result, error) {
	var res result
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return res, err
	}
	// Protocol 0: a socket that only sends receives nothing.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return res, fmt.Errorf("socket: %w (needs CAP_NET_RAW)", err)
	}
	defer unix.Close(fd)
	// The frames go straight to the driver: the queueing discipline would
	// only add a lock and a queue per frame.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return res, fmt.Errorf("PACKET_QDISC_BYPASS: %w", err)
	}
	var s sender
	switch mode {
	case "ring":
		s, err = newRingSender(fd, fr.max)
	default:
		s, err = newMmsgSender(fd, batch)
	}
	if err != nil {
		return res, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return res, fmt.Errorf("bind %s: %w", iface, err)
	}
	// A short nanosleep must not be stretched by the default 50 µs slack.
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	// Frames longer than the link carries (MTU plus the Ethernet header
	// and one VLAN tag) are counted as failed and not sent: the kernel
	// would refuse them anyway.
	fr, tooLong := fr.upTo(ifi.MTU + 14 + 4)
	res.failed = tooLong * loops
	if fr.len() == 0 {
		return res, fmt.Errorf("every frame is longer than %s carries (MTU %d)", iface, ifi.MTU)
	}
	tx0, drop0 := ifCounters(iface)
	p := pacer{rate: rate, batch: batch, start: time.Now()}
	total := fr.len() * loops
	i := 0
	for i < total {
		n, wait := p.allowed(time.Now(), i)
		if n == 0 {
			sleep(p.due(i), wait)
			continue
		}
		n = min(n, total-i)
		sent, failed, err := s.send(fr, i, n)
		if err != nil {
			return res, err
		}
		res.sent += sent
		res.failed += failed
		i += sent + failed
	}
	failed, err := s.flush()
	if err != nil {
		return res, err
	}
	res.sent -= failed
	res.failed += failed
	res.elapsed = time.Since(p.start)
	tx1, drop1 := ifCounters(iface)
	res.kernelTx, res.kernelDropped = tx1-tx0, drop1-drop0
	return res, nil
}

// sleep waits until t, wait from now: nanosleep for all but the last
// 20 µs, which are spun (a wake-up is late by some microseconds).
func sleep(t time.Time, wait time.Duration) {
	if wait > 40*time.Microsecond {
		ts := unix.NsecToTimespec(int64(wait - 20*time.Microsecond))
		unix.Nanosleep(&ts, nil)
	}
	for time.Now().Before(t) {
	}
}

type sender interface {
	// send hands frames i .. i+n-1 (modulo the capture) to the kernel,
	// or a prefix of them: sent went, failed were refused.
	send(fr *frames, i, n int) (sent, failed int, err error)
	// flush waits until the kernel has taken every frame and returns how
	// many of those counted as sent it refused after all.
	flush() (failed int, err error)
}

// mmsgSender sends a batch with one sendmmsg: the kernel copies each frame
// into a socket buffer.
type mmsgSender struct {
	fd   int
	iov  []unix.Iovec
	msgs []unix.Mmsghdr
}

func newMmsgSender(fd, batch int) (*mmsgSender, error) {
	// A deep socket buffer: a batch must not wait for the previous one's
	// buffers to be freed.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 64<<20)
	s := &mmsgSender{fd: fd, iov: make([]unix.Iovec, batch), msgs: make([]unix.Mmsghdr, batch)}
	for k := range s.msgs {
		s.msgs[k].Hdr.Iov = &s.iov[k]
		s.msgs[k].Hdr.Iovlen = 1
	}
	return s, nil
}

func (s *mmsgSender) send(fr *frames, i, n int) (int, int, error) {
	for k := 0; k < n; k++ {
		f := fr.frame((i + k) % fr.len())
		s.iov[k].Base = unsafe.SliceData(f)
		s.iov[k].SetLen(len(f))
	}
	r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(n), 0, 0, 0)
	runtime.KeepAlive(fr)
	switch {
	case errno == 0:
		return int(r), 0, nil
	case errno == unix.ENOBUFS || errno == unix.EAGAIN || errno == unix.EINTR:
		// The device's queue is full for a moment: try again.
		runtime.Gosched()
		return 0, 0, nil
	case errno == unix.EMSGSIZE || errno == unix.EINVAL || errno == unix.ENXIO:
		// The first frame of the batch cannot be sent: skip it.
		return 0, 1, nil
	default:
		return 0, 0, fmt.Errorf("sendmmsg: %w", errno)
	}
}

func (s *mmsgSender) flush() (int, error) { return 0, nil }

// ringSender writes frames into a memory-mapped TPACKET_V2 transmit ring
// and asks the kernel to send every frame marked since the last call with
// one send; the kernel hands a slot back (TP_STATUS_AVAILABLE) when its
// frame has left. With PACKET_LOSS a frame the kernel refuses is skipped
// rather than stopping the ring; send filters out the frames the link
// cannot carry beforehand, so that does not happen.
type ringSender struct {
	fd        int
	ring      []byte
	frameSize int
	slots     int
	next      int // slot the next frame goes into
	pending   int // frames marked since the last send
}

// tpacket2Data is where a transmitted frame starts in its slot without
// PACKET_TX_HAS_OFF: TPACKET2_HDRLEN minus the sockaddr_ll.
const tpacket2Data = 32

func newRingSender(fd, maxFrame int) (*ringSender, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return nil, fmt.Errorf("TPACKET_V2: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_LOSS, 1); err != nil {
		return nil, fmt.Errorf("PACKET_LOSS: %w", err)
	}
	frameSize := 2048
	for frameSize < tpacket2Data+maxFrame {
		frameSize <<= 1
	}
	blockSize := max(1<<20, frameSize)
	blocks := max(4, 64*frameSize/blockSize)
	req := unix.TpacketReq{Block_size: uint32(blockSize), Block_nr: uint32(blocks), Frame_size: uint32(frameSize),
		Frame_nr: uint32(blockSize / frameSize * blocks)}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		return nil, fmt.Errorf("transmit ring of %d × %d KiB: %w", blocks, blockSize>>10, err)
	}
	ring, err := unix.Mmap(fd, 0, blockSize*blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mapping the transmit ring: %w", err)
	}
	return &ringSender{fd: fd, ring: ring, frameSize: frameSize, slots: int(req.Frame_nr)}, nil
}

func (s *ringSender) status(slot int) *uint32 {
	return (*uint32)(unsafe.Pointer(&s.ring[slot*s.frameSize]))
}

func (s *ringSender) send(fr *frames, i, n int) (sent, failed int, err error) {
	for k := 0; k < n; k++ {
		st := s.status(s.next)
		v := atomic.LoadUint32(st)
		if v&(unix.TP_STATUS_SEND_REQUEST|unix.TP_STATUS_SENDING) != 0 {
			// The ring is full: the kernel still owns this slot. Send
			// what is marked and come back for the rest.
			if err := s.kick(0); err != nil {
				return sent, failed, err
			}
			if k == 0 {
				// Nothing was marked in this call and the slot is still
				// busy: let the kernel finish.
				runtime.Gosched()
			}
			return sent, failed, nil
		}
		f := fr.frame((i + k) % fr.len())
		h := (*unix.Tpacket2Hdr)(unsafe.Pointer(st))
		h.Len = uint32(len(f))
		copy(s.ring[s.next*s.frameSize+tpacket2Data:], f)
		atomic.StoreUint32(st, unix.TP_STATUS_SEND_REQUEST)
		s.next = (s.next + 1) % s.slots
		s.pending++
		sent++
	}
	return sent, failed, s.kick(unix.MSG_DONTWAIT)
}

// kick asks the kernel to send the marked frames.
func (s *ringSender) kick(flags int) error {
	if s.pending == 0 && flags != 0 {
		return nil
	}
	for {
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, uintptr(flags), 0, 0)
		switch errno {
		case 0:
			s.pending = 0
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.ENOBUFS:
			// Frames stay marked; the next kick sends them.
			return nil
		default:
			return fmt.Errorf("send from the transmit ring: %w", errno)
		}
	}
}

func (s *ringSender) flush() (int, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := s.kick(0); err != nil {
			return 0, err
		}
		busy := 0
		for slot := 0; slot < s.slots; slot++ {
			if atomic.LoadUint32(s.status(slot))&(unix.TP_STATUS_SEND_REQUEST|unix.TP_STATUS_SENDING) != 0 {
				busy++
			}
		}
		if busy == 0 {
			return 0, nil
		}
		if time.Now().After(deadline) {
			return 0, errors.New("the kernel did not send the last frames within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ifCounters reads the interface's transmit counters (its network
// namespace's sysfs).
func ifCounters(iface string) (tx, dropped uint64) {
	read := func(name string) uint64 {
		b, err := os.ReadFile("/sys/class/net/" + iface + "/statistics/" + name)
		if err != nil {
			return 0
		}
		v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return v
	}
	return read("tx_packets"), read("tx_dropped")
}

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// LiveOptions configure OpenLive.
type LiveOptions struct {
	Workers     int
	Promisc     bool
	Snaplen     int
	Filter      string
	ReadTimeout time.Duration
	Ring        RingOptions
	// OnLink, if set, hears a socket's interface go down or away and come
	// back, from the goroutine reading the socket. A socket waits for its
	// interface rather than fail: the kernel stops a packet socket on an
	// interface that goes down and resumes it when the interface comes up,
	// and one whose interface was deleted is opened again on the interface
	// of that name once there is one.
	OnLink func(iface string, s LinkState, err error)
}

// LinkState is what LiveOptions.OnLink reports.
type LinkState uint8

const (
	// LinkDown: the kernel stopped the socket (ENETDOWN): its interface
	// went down or was deleted.
	LinkDown LinkState = iota + 1
	// LinkUp: the interface is up again (or packets came).
	LinkUp
	// LinkReopenFailed: the interface was made again (a new index under
	// the same name) and a socket could not be opened on it (err says
	// why); it is tried again at every read timeout, and reported again
	// only when the error changes.
	LinkReopenFailed
)

// live is one AF_PACKET socket of a fanout group with a memory-mapped
// TPACKET_V3 receive ring: the kernel fills blocks of packets, the reader
// walks a block it owns (TP_STATUS_USER) and hands it back
// (TP_STATUS_KERNEL) once every packet in it has been read, so a packet
// costs no system call and no copy.
type live struct {
	fd   int
	wake int // eventfd: Close wakes a reader waiting in poll
	ring []byte
	// m holds the mapping for the cleanup that unmaps it should the
	// source become unreachable with the last packet still handed out.
	m         *mapping
	blockSize int
	blocks    int
	snaplen   int
	timeout   time.Duration

	// What opening the socket again takes (its interface was deleted and
	// one of the same name came back): the options and filter, the
	// interface's name and the index the socket is bound to.
	opts    LiveOptions
	prog    []unix.SockFilter
	fan     *fanout
	iface   string
	ifindex int
	// link is the pcap link type of the interface's frames (linkTypeOf),
	// fixed when the capture opens.
	link uint32
	// down: the kernel reported the interface down (ENETDOWN); downs
	// counts those reports.
	down      bool
	downs     atomic.Uint64
	reopenErr string // the last LinkReopenFailed reported

	// mu is held by ReadPacket and by Close: the descriptors and the ring
	// stay valid for the whole of a read.
	mu      sync.Mutex
	pfd     [2]unix.PollFd
	cur     int  // block read now or waited for
	inBlock bool // cur is owned by the reader
	left    int  // packets of cur not yet handed out
	off     int  // ring offset of the next packet of cur
	held    bool // the last read handed out a packet the caller may still read
	scratch []byte
	closed  atomic.Bool
	// fdMu keeps the socket open while Stats reads its counters.
	fdMu sync.RWMutex

	packets, drops, freezes, bad atomic.Uint64
}

type mapping struct{ b []byte }

// OpenLive opens Workers AF_PACKET sockets bound to iface in one
// PACKET_FANOUT group that hands each packet over by its IP address pair
// (fanoutHashProgram: every packet between two hosts reaches the same
// socket), in promiscuous mode, each with its own TPACKET_V3 ring; kernel
// timestamps and VLAN tags come from the ring's packet headers.
func OpenLive(iface string, o LiveOptions) ([]Source, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	if o.Workers < 1 {
		o.Workers = 1
	}
	if o.Snaplen <= 0 || o.Snaplen > maxCaplen {
		o.Snaplen = maxCaplen
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 500 * time.Millisecond
	}
	if err := CheckRing(o.Ring, o.Snaplen); err != nil {
		return nil, err
	}
	o.Ring = o.Ring.withDefaults(o.Snaplen)
	// The filter is compiled for what the sockets will read.
	link, err := InterfaceLinkType(iface)
	if err != nil {
		return nil, err
	}
	var prog []unix.SockFilter
	if o.Filter != "" {
		p, err := CompileFilter(o.Filter, link)
		if err != nil {
			return nil, err
		}
		raw, err := rawFilter(p)
		if err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		for _, r := range raw {
			prog = append(prog, unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K})
		}
	}
	var srcs []Source
	fan := &fanout{groups: map[int]uint16{}}
	for i := 0; i < o.Workers; i++ {
		l, err := openSocket(ifi, link, o, prog, fan)
		if err != nil {
			for _, s := range srcs {
				s.Close()
			}
			return nil, fmt.Errorf("af_packet on %s: %w", iface, err)
		}
		srcs = append(srcs, l)
	}
	return srcs, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// fanout is the fanout groups of one capture's sockets, by interface
// index: the first socket on an interface asks the kernel for a group id
// no other socket in the network namespace uses
// (PACKET_FANOUT_FLAG_UNIQUEID), the others join that group. (An id made
// from the process id, as before, was shared by two processes whose ids
// differ in the last bit: a second sensor on another interface could not
// start, and one on the same interface joined the first one's group, each
// then seeing only part of the flows.)
//
// A group hands each packet to a socket by sewatch's own program
// (fanoutHashProgram: the IP address pair), which the first socket sets.
type fanout struct {
	mu     sync.Mutex
	groups map[int]uint16
}

// join puts fd, bound to interface index, in the capture's group of that
// interface, making the group if there is none yet.
func (f *fanout) join(fd, index int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	const mode = unix.PACKET_FANOUT_CBPF | unix.PACKET_FANOUT_FLAG_DEFRAG
	if id, ok := f.groups[index]; ok {
		return unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, int(id)|mode<<16)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, (mode|unix.PACKET_FANOUT_FLAG_UNIQUEID)<<16); err != nil {
		return err
	}
	v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
	if err != nil {
		return err
	}
	// Until the program is set the group hands every packet to its first
	// socket; the capture starts reading after its sockets are open.
	raw, err := bpf.Assemble(fanoutHashProgram())
	if err != nil {
		return fmt.Errorf("fanout program: %w", err)
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA,
		&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
		return fmt.Errorf("fanout program: %w", err)
	}
	f.groups[index] = uint16(v) // the id, below the type and flags
	return nil
}

func openSocket(ifi *net.Interface, link uint32, o LiveOptions, prog []unix.SockFilter, fan *fanout) (*live, error) {
	l := &live{fd: -1, wake: -1, snaplen: o.Snaplen, timeout: o.ReadTimeout, blockSize: o.Ring.BlockSize,
		blocks: o.Ring.Blocks, scratch: make([]byte, o.Snaplen+4), opts: o, prog: prog, fan: fan, iface: ifi.Name,
		link: link, m: &mapping{}}
	var err error
	if l.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := l.open(ifi); err != nil {
		unix.Close(l.wake)
		return nil, err
	}
	runtime.AddCleanup(l, func(m *mapping) {
		if m.b != nil {
			unix.Munmap(m.b)
		}
	}, l.m)
	return l, nil
}

// open makes the socket and its ring, bound to ifi in the capture's
// fanout group of ifi, and makes them l's (the reader starts at the ring's
// first block). On error nothing of it is left open and l is unchanged.
func (l *live) open(ifi *net.Interface) error {
	o, prog := l.opts, l.prog
	// Protocol 0: the socket receives nothing until it is bound to the
	// interface below, so no other interface's packet enters the ring.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w (needs CAP_NET_RAW)", err)
	}
	var ring []byte
	fail := func(what string, err error) error {
		if ring != nil {
			unix.Munmap(ring)
		}
		unix.Close(fd)
		return fmt.Errorf("%s: %w", what, err)
	}
	// The filter was compiled, and the workers decode, for l.link.
	if link, err := linkTypeOf(fd, ifi.Name); err != nil {
		return fail("interface "+ifi.Name, err)
	} else if link != l.link {
		return fail("interface "+ifi.Name, fmt.Errorf("%w: link type %d, where it had %d", errLinkChanged, link, l.link))
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fail("TPACKET_V3", err)
	}
	if len(prog) > 0 {
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
			return fail("attach filter", err)
		}
	}
	r := o.Ring
	req := unix.TpacketReq3{Block_size: uint32(r.BlockSize), Block_nr: uint32(r.Blocks), Frame_size: uint32(r.FrameSize),
		Frame_nr: uint32(r.BlockSize / r.FrameSize * r.Blocks), Retire_blk_tov: uint32(max(r.Retire/time.Millisecond, 1))}
	size := r.BlockSize * r.Blocks
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail(fmt.Sprintf("receive ring of %d blocks × %d KiB (%d MiB) refused by the kernel; lower capture.ring-blocks or capture.ring-block-size",
			r.Blocks, r.BlockSize>>10, size>>20), err)
	}
	if ring, err = unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return fail(fmt.Sprintf("mapping the %d MiB receive ring; lower capture.ring-blocks or capture.ring-block-size", size>>20), err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	if o.Promisc {
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail("promiscuous mode", err)
		}
	}
	if err := l.fan.join(fd, ifi.Index); err != nil {
		return fail("fanout", err)
	}
	l.fd, l.ring, l.m.b, l.ifindex = fd, ring, ring, ifi.Index
	l.cur, l.inBlock, l.left, l.off = 0, false, 0, 0
	l.pfd = [2]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLERR}, {Fd: int32(l.wake), Events: unix.POLLIN}}
	return nil
}

// Offsets in a block descriptor (tpacket_block_desc with tpacket_hdr_v1).
const (
	bdStatus   = 8
	bdNumPkts  = 12
	bdFirstPkt = 16
)

func (l *live) word(off int) *uint32 { return (*uint32)(unsafe.Pointer(&l.ring[off])) }

// ReadPacket implements Source. The data lies in the ring (or, for a frame
// whose VLAN tag is restored, in a per-socket buffer) and stays valid until
// the next call, which is when a finished block goes back to the kernel.
// It returns ErrTimeout when no packet came within the read timeout, so the
// engine can expire flows on an idle link.
func (l *live) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = false
	if l.closed.Load() {
		l.unmap()
		return nil, gopacket.CaptureInfo{}, ErrClosed
	}
	var deadline time.Time
	for {
		if l.ready() {
			if data, ci, ok := l.take(); ok {
				return data, ci, nil
			}
			continue
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(l.timeout)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			if err := l.idle(); err != nil {
				return nil, gopacket.CaptureInfo{}, err
			}
			return nil, gopacket.CaptureInfo{}, ErrTimeout
		}
		l.pfd[0].Revents, l.pfd[1].Revents = 0, 0
		_, err := unix.Poll(l.pfd[:], int((wait+time.Millisecond-1)/time.Millisecond))
		if l.closed.Load() {
			return nil, gopacket.CaptureInfo{}, ErrClosed
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, gopacket.CaptureInfo{}, fmt.Errorf("poll: %w", err)
		}
		if err := l.polled(l.pfd[0].Revents); err != nil {
			return nil, gopacket.CaptureInfo{}, err
		}
	}
}

// ready reports whether a packet of the ring waits to be read: it hands a
// block whose packets were all read back to the kernel (the caller is done
// with the last one: a read began) and takes the next block once the
// kernel has filled it. The caller holds mu.
func (l *live) ready() bool {
	for {
		if l.inBlock {
			if l.left > 0 {
				return true
			}
			atomic.StoreUint32(l.word(l.cur*l.blockSize+bdStatus), unix.TP_STATUS_KERNEL)
			l.inBlock = false
			l.cur = (l.cur + 1) % l.blocks
		}
		base := l.cur * l.blockSize
		if atomic.LoadUint32(l.word(base+bdStatus))&unix.TP_STATUS_USER == 0 {
			return false
		}
		l.inBlock = true
		l.left = int(*l.word(base + bdNumPkts))
		l.off = base + int(*l.word(base + bdFirstPkt))
	}
}

// take hands out the next packet of the block ready found; ok is false
// when the block ended early (a malformed header, counted in next). The
// caller holds mu.
func (l *live) take() ([]byte, gopacket.CaptureInfo, bool) {
	data, ci, ok := l.next()
	if !ok {
		return nil, ci, false
	}
	if l.down {
		l.linkUp()
	}
	l.held = true
	l.packets.Add(1)
	return data, ci, true
}

// idle is what a read timeout does beside returning ErrTimeout: while the
// interface is down it looks for it again (checkLink). The caller holds mu.
func (l *live) idle() error {
	if l.down {
		return l.checkLink()
	}
	return nil
}

// polled handles the socket's poll events: an error the socket reports
// ends the read, except that its interface went down or away (ENETDOWN),
// which is waited for. The caller holds mu.
func (l *live) polled(revents int16) error {
	if revents&(unix.POLLERR|unix.POLLNVAL) == 0 {
		return nil
	}
	// The socket says why (reading the error clears it).
	if e, err := unix.GetsockoptInt(l.fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
		if unix.Errno(e) == unix.ENETDOWN {
			// The interface went down or away: wait for it.
			l.linkDown()
			return nil
		}
		return fmt.Errorf("capture socket: %w", unix.Errno(e))
	}
	if revents&unix.POLLNVAL != 0 {
		return errors.New("capture socket: invalid descriptor")
	}
	return nil
}

// linkDown notes that the interface went down (the caller holds mu).
func (l *live) linkDown() {
	if l.down {
		return
	}
	l.down, l.reopenErr = true, ""
	l.downs.Add(1)
	if l.opts.OnLink != nil {
		l.opts.OnLink(l.iface, LinkDown, unix.ENETDOWN)
	}
}

// linkUp notes that packets flow again (the caller holds mu).
func (l *live) linkUp() {
	l.down = false
	if l.opts.OnLink != nil {
		l.opts.OnLink(l.iface, LinkUp, nil)
	}
}

// errLinkChanged: an interface made again is of another kind (the workers
// decode one link type from start to end; a restart reads the new one).
var errLinkChanged = errors.New("made again as another kind of interface")

// checkLink looks for the interface of a socket whose interface went
// down, at each read timeout while it is down (the caller holds mu). The
// kernel resumes the socket itself when its interface comes up again; an
// interface deleted and made again (a new index under the same name) needs
// a new socket, which joins a fanout group of the new interface's own: the
// group of the old one lives on while the other workers' sockets are still
// in it, and a group serves one interface. It fails only when the process
// may no longer open one (it gave up root after opening the first) or the
// new interface is of another kind: waiting would capture nothing for
// good, while an exit lets the service manager start it again.
func (l *live) checkLink() error {
	ifi, err := net.InterfaceByName(l.iface)
	if err != nil {
		return nil // gone for now
	}
	if ifi.Index != l.ifindex {
		oldFd, oldRing := l.fd, l.ring
		l.fdMu.Lock()
		l.readKernelStats() // the old socket's last counters
		err := l.open(ifi)
		l.fdMu.Unlock()
		if err != nil {
			err = fmt.Errorf("interface %s made again (index %d): %w", l.iface, ifi.Index, err)
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
				return fmt.Errorf("%w; the process gave up root after opening its first sockets", err)
			}
			if errors.Is(err, errLinkChanged) {
				return err
			}
			if msg := err.Error(); msg != l.reopenErr && l.opts.OnLink != nil {
				l.reopenErr = msg
				l.opts.OnLink(l.iface, LinkReopenFailed, err)
			}
			return nil
		}
		// The caller is done with the last packet of the old ring (a read
		// began).
		unix.Munmap(oldRing)
		unix.Close(oldFd)
	}
	if ifi.Flags&net.FlagUp != 0 {
		l.linkUp()
	}
	return nil
}

// next takes the next packet of the current block. A header that points
// outside its block (which a correct kernel never writes) ends the block
// rather than reading out of bounds; it is counted as an error.
func (l *live) next() ([]byte, gopacket.CaptureInfo, bool) {
	var ci gopacket.CaptureInfo
	start := l.cur * l.blockSize
	end := start + l.blockSize
	off := l.off
	if off < start+blockHdrLen || off+unix.SizeofTpacket3Hdr > end {
		l.left = 0
		l.bad.Add(1)
		return nil, ci, false
	}
	h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&l.ring[off]))
	l.left--
	if h.Next_offset == 0 {
		l.left = 0
	}
	l.off = off + int(h.Next_offset)
	if l.left > 0 && l.off+192 <= end {
		// The next packet's header and first frame bytes were written by
		// the core that received it; loading them now overlaps that miss
		// with this packet's processing (on a veth replay at 300 kpps the
		// ring walk and link decode went from about 145 to 95 ns a packet).
		prefetch(unsafe.Pointer(&l.ring[l.off]))
	}
	mac, snap := off+int(h.Mac), int(h.Snaplen)
	if int(h.Mac) < unix.SizeofTpacket3Hdr || mac+snap > end {
		l.left = 0
		l.bad.Add(1)
		return nil, ci, false
	}
	data := l.ring[mac : mac+min(snap, l.snaplen) : mac+snap]
	ci.Timestamp = time.Unix(int64(h.Sec), int64(h.Nsec))
	ci.Length = int(h.Len)
	if h.Status&unix.TP_STATUS_VLAN_VALID != 0 && len(data) >= 12 {
		// Re-insert the 802.1Q tag the NIC or kernel stripped.
		tpid := uint16(0x8100)
		if h.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			tpid = h.Hv1.Vlan_tpid
		}
		s := l.scratch[:len(data)+4]
		copy(s, data[:12])
		binary.BigEndian.PutUint16(s[12:], tpid)
		binary.BigEndian.PutUint16(s[14:], uint16(h.Hv1.Vlan_tci))
		copy(s[16:], data[12:])
		data = s
		ci.Length += 4
	}
	ci.CaptureLength = len(data)
	return data, ci, true
}

// LinkType implements Source: Ethernet on Ethernet-like interfaces, raw IP
// on tunnels (linkTypeOf).
func (l *live) LinkType() uint32 { return l.link }

// ARPHRD_* hardware types (linux/if_arp.h) of interfaces whose frames
// sewatch decodes.
const (
	arphrdEther    = 1
	arphrdIEEE802  = 6
	arphrdPPP      = 512
	arphrdRawIP    = 519
	arphrdTunnel   = 768
	arphrdTunnel6  = 769
	arphrdLoopback = 772
	arphrdSit      = 776
	arphrdIPGRE    = 778
	arphrdIP6GRE   = 823
	arphrdNone     = 0xfffe
)

// InterfaceLinkType returns the pcap link type live capture reads on the
// named interface (linkTypeOf), or why it cannot capture there: no such
// interface, or a kind it does not decode. It needs no privilege.
func InterfaceLinkType(name string) (uint32, error) {
	if _, err := net.InterfaceByName(name); err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	// Any socket answers SIOCGIFHWADDR; a datagram one needs no privilege.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	defer unix.Close(fd)
	link, err := linkTypeOf(fd, name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return link, nil
}

// linkTypeOf returns the pcap link type of what a raw packet socket reads
// on the interface, from its hardware type (SIOCGIFHWADDR): Ethernet for
// Ethernet, veth, bridges, bonds, VLAN and tap devices and loopback; raw IP
// (101) for interfaces with no link header, whose packets the kernel hands
// over from the IP header: tun devices (OpenVPN's tun0, WireGuard's wg0),
// PPP, IP-in-IP and GRE tunnels. Any other kind (Wi-Fi monitor mode,
// InfiniBand, CAN) is refused, rather than decoded as Ethernet into
// nothing.
func linkTypeOf(fd int, name string) (uint32, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, fmt.Errorf("hardware type: %w", err)
	}
	return linkTypeForHardware(ifr.Uint16())
}

// linkTypeForHardware maps an ARPHRD_* hardware type to the link type of
// linkTypeOf.
func linkTypeForHardware(t uint16) (uint32, error) {
	switch t {
	case arphrdEther, arphrdIEEE802, arphrdLoopback:
		return 1, nil
	case arphrdNone, arphrdPPP, arphrdRawIP, arphrdTunnel, arphrdTunnel6, arphrdSit, arphrdIPGRE, arphrdIP6GRE:
		return 101, nil
	}
	return 0, fmt.Errorf("hardware type %d (linux/if_arp.h) is neither Ethernet-like nor a raw-IP tunnel, which are what live capture decodes", t)
}

// Stats implements Source. Packets counts the packets read; the kernel's
// counters (reset by the kernel on every read) are accumulated here.
func (l *live) Stats() Stats {
	l.fdMu.RLock()
	if !l.closed.Load() {
		l.readKernelStats()
	}
	l.fdMu.RUnlock()
	return Stats{Packets: l.packets.Load(), KernelDrops: l.drops.Load(), KernelFreezes: l.freezes.Load(), Errors: l.bad.Load(),
		LinkDowns: l.downs.Load()}
}

// readKernelStats adds the kernel's counters since the last read (the
// caller holds fdMu).
func (l *live) readKernelStats() {
	if st, err := unix.GetsockoptTpacketStatsV3(l.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		l.drops.Add(uint64(st.Drops))
		l.freezes.Add(uint64(st.Freeze_q_cnt))
	}
}

// Close implements Source. A read waiting for packets returns ErrClosed at
// once (an eventfd wakes its poll); Close waits for it, reads the kernel's
// last counters and closes the socket. The ring is unmapped now, unless the
// last read handed out a packet the caller may still be reading: then an
// empty anonymous mapping replaces the ring at the same address (the ring's
// memory goes back to the kernel with the socket, and the caller's slice
// stays readable), and the next read or the collector unmaps it.
func (l *live) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(l.wake, one[:])
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		// On failure the ring stays mapped rather than be pulled from
		// under the caller; it goes with the next read or the collector.
		unix.MmapPtr(-1, 0, unsafe.Pointer(&l.ring[0]), uintptr(len(l.ring)), unix.PROT_READ,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	} else {
		l.unmap()
	}
	l.fdMu.Lock()
	defer l.fdMu.Unlock()
	l.readKernelStats()
	unix.Close(l.wake)
	return unix.Close(l.fd)
}

// unmap releases the ring's address range (the caller holds mu).
func (l *live) unmap() {
	if l.ring != nil {
		unix.Munmap(l.ring)
		l.ring = nil
		l.m.b = nil
	}
}

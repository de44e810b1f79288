package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"golang.org/x/sys/unix"
)

// LiveOptions configure OpenLive.
type LiveOptions struct {
	Workers     int
	Promisc     bool
	Snaplen     int
	Filter      string
	FanoutGroup uint16
	ReadTimeout time.Duration
}

// live is one AF_PACKET socket of a fanout group.
type live struct {
	fd     int
	buf    []byte
	oob    []byte
	closed atomic.Bool
	// fdMu keeps the descriptor open while a recvmsg or getsockopt uses
	// it: closing it under a pending call could let the number be reused
	// by another open and the call read from the wrong file.
	fdMu    sync.RWMutex
	stats   Stats
	packets atomic.Uint64
	drops   atomic.Uint64
}

// OpenLive opens Workers AF_PACKET sockets bound to iface in one
// PACKET_FANOUT hash group (a flow's packets always reach the same
// socket), in promiscuous mode, with kernel timestamps and VLAN tags
// restored from PACKET_AUXDATA.
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
	if o.FanoutGroup == 0 {
		o.FanoutGroup = uint16(unix.Getpid()&0xffff) | 1
	}
	var prog []unix.SockFilter
	if o.Filter != "" {
		p, err := CompileFilter(o.Filter, 1)
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
	for i := 0; i < o.Workers; i++ {
		l, err := openSocket(ifi, o, prog)
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

func openSocket(ifi *net.Interface, o LiveOptions, prog []unix.SockFilter) (*live, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("socket: %w (needs CAP_NET_RAW)", err)
	}
	fail := func(what string, err error) (*live, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(prog) > 0 {
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
			return fail("attach filter", err)
		}
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
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return fail("auxdata", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail("timestamps", err)
	}
	tv := unix.NsecToTimeval(o.ReadTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("read timeout", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	fanout := int(o.FanoutGroup) | (unix.PACKET_FANOUT_HASH|unix.PACKET_FANOUT_FLAG_DEFRAG)<<16
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, fanout); err != nil {
		return fail("fanout", err)
	}
	return &live{fd: fd, buf: make([]byte, o.Snaplen+4), oob: make([]byte, 256)}, nil
}

// ReadPacket implements Source. It returns ErrTimeout when no packet came
// within the read timeout, so the engine can expire flows on an idle link.
func (l *live) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	var ci gopacket.CaptureInfo
	for {
		if l.closed.Load() {
			return nil, ci, ErrClosed
		}
		// Leave 4 bytes in front for a VLAN tag the kernel stripped.
		l.fdMu.RLock()
		if l.closed.Load() {
			l.fdMu.RUnlock()
			return nil, ci, ErrClosed
		}
		n, oobn, flags, _, err := unix.Recvmsg(l.fd, l.buf[4:], l.oob, unix.MSG_TRUNC)
		l.fdMu.RUnlock()
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				if l.closed.Load() {
					return nil, ci, ErrClosed
				}
				return nil, ci, ErrTimeout
			}
			if l.closed.Load() {
				return nil, ci, ErrClosed
			}
			return nil, ci, fmt.Errorf("recvmsg: %w", err)
		}
		_ = flags
		wire := n
		if n > len(l.buf)-4 {
			n = len(l.buf) - 4
		}
		ci.Length = wire
		ci.Timestamp = time.Now()
		data := l.buf[4 : 4+n]
		if msgs, err := unix.ParseSocketControlMessage(l.oob[:oobn]); err == nil {
			for _, m := range msgs {
				switch {
				case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16:
					ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
					ci.Timestamp = time.Unix(ts.Unix())
				case m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
					aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
					if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 && n >= 12 {
						// Re-insert the 802.1Q tag the NIC or kernel stripped.
						tpid := uint16(0x8100)
						if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
							tpid = aux.Vlan_tpid
						}
						copy(l.buf[0:12], l.buf[4:16])
						binary.BigEndian.PutUint16(l.buf[12:], tpid)
						binary.BigEndian.PutUint16(l.buf[14:], aux.Vlan_tci)
						data = l.buf[0 : 4+n]
						ci.Length += 4
					}
				}
			}
		}
		ci.CaptureLength = len(data)
		l.packets.Add(1)
		return data, ci, nil
	}
}

// LinkType implements Source: AF_PACKET raw sockets deliver Ethernet frames
// (on Ethernet-like interfaces, including veth and VLAN devices).
func (l *live) LinkType() uint32 { return 1 }

// Stats implements Source, reading (and accumulating) the kernel's counters.
func (l *live) Stats() Stats {
	l.fdMu.RLock()
	if !l.closed.Load() {
		if st, err := unix.GetsockoptTpacketStats(l.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			l.drops.Add(uint64(st.Drops))
		}
	}
	l.fdMu.RUnlock()
	return Stats{Packets: l.packets.Load(), KernelDrops: l.drops.Load()}
}

// Close implements Source. It waits for a pending read to return (within
// the read timeout) before closing the descriptor that read uses.
func (l *live) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.fdMu.Lock()
	defer l.fdMu.Unlock()
	return unix.Close(l.fd)
}

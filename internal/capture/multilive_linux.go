package capture

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"golang.org/x/sys/unix"
)

// OpenLiveInterfaces captures on several interfaces as one capture, as
// Suricata's af-packet section lists several: a passive tap that gives each
// direction of a link on a port of its own, or the two legs of a router.
// Each interface gets Workers sockets in a fanout group of its own, and
// worker i reads socket i of every interface: the groups' program
// (fanoutHashProgram) hashes the IP address pair, the same way on every
// interface and for both directions, so both directions of a flow reach
// the same worker whichever interface each direction came in on, and
// its flow table sees the whole flow. The interfaces must have one link
// type (the workers decode one).
//
// A worker's source hands out its interfaces' packets in capture-time
// order: a packet waits until every other interface's ring shows a later
// one, or for the ring's retire timeout (50 ms by default) past its
// capture time, by when the kernel has handed over any earlier packet of
// another interface. So a capture of several interfaces costs up to that
// much latency when one of them is quiet. Its Iface method says which
// interface (index into ifaces) the last packet came in on.
func OpenLiveInterfaces(ifaces []string, o LiveOptions) ([]Source, error) {
	if len(ifaces) == 0 {
		return nil, errors.New("no interface to capture on")
	}
	if len(ifaces) == 1 {
		return OpenLive(ifaces[0], o)
	}
	if len(ifaces) > maxInterfaces {
		return nil, fmt.Errorf("%d interfaces: at most %d in one capture", len(ifaces), maxInterfaces)
	}
	seen := map[string]bool{}
	for _, name := range ifaces {
		if seen[name] {
			return nil, fmt.Errorf("interface %s is listed twice", name)
		}
		seen[name] = true
	}
	per := make([][]Source, 0, len(ifaces))
	closeAll := func() {
		for _, srcs := range per {
			for _, s := range srcs {
				s.Close()
			}
		}
	}
	for _, name := range ifaces {
		srcs, err := OpenLive(name, o)
		if err != nil {
			closeAll()
			return nil, err
		}
		per = append(per, srcs)
		if a, b := per[0][0].LinkType(), srcs[0].LinkType(); a != b {
			closeAll()
			return nil, fmt.Errorf("interfaces %s and %s carry different link types (%d and %d): capture them in two runs",
				ifaces[0], name, a, b)
		}
	}
	out := make([]Source, len(per[0]))
	for i := range out {
		m := &multiLive{subs: make([]*live, len(per)), pfd: make([]unix.PollFd, 2*len(per))}
		for j := range per {
			m.subs[j] = per[j][i].(*live)
		}
		out[i] = m
	}
	return out, nil
}

// maxInterfaces bounds one capture's interfaces (a flow records its
// interface in a byte).
const maxInterfaces = 64

// multiLive is one worker's sockets on several interfaces, read as one
// source.
type multiLive struct {
	subs []*live
	pfd  []unix.PollFd
	last int // the interface of the last packet handed out
	// polls counts the waits in poll (the reader's own; a test reads it).
	polls uint64
}

// Iface is the index (in the list given to OpenLiveInterfaces) of the
// interface the last packet came in on.
func (m *multiLive) Iface() int { return m.last }

// ReadPacket implements Source: of the packets waiting in the sockets'
// rings, the one with the earliest capture time; ErrTimeout when none came
// within the read timeout; the first socket error. Each socket keeps its
// own link handling (an interface that goes down is waited for).
func (m *multiLive) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	for _, l := range m.subs {
		l.mu.Lock()
	}
	defer func() {
		for _, l := range m.subs {
			l.mu.Unlock()
		}
	}()
	for _, l := range m.subs {
		l.held = false
	}
	if m.closed() {
		for _, l := range m.subs {
			if l.closed.Load() {
				l.unmap() // a ring Close left mapped for the last packet
			}
		}
		return nil, gopacket.CaptureInfo{}, ErrClosed
	}
	timeout := m.subs[0].timeout
	// A packet still in a block the kernel has not handed over is handed
	// over within the ring's retire timeout (the kernel's block timer); a
	// packet of one ring is therefore held that long past its capture time
	// unless every other ring shows a later one, so an earlier packet of
	// another ring can still come before it: a tap's SYN on one port must
	// not follow the SYN-ACK on the other.
	hold := (m.subs[0].opts.Ring.Retire + holdSlack).Nanoseconds()
	// holdStart: when this read began holding a packet (monotonic). A
	// packet is also let go once it was held that long, whatever its
	// capture time says: after the wall clock is set back, capture times
	// lie in the future and would hold it for as long as the step.
	var deadline, holdStart time.Time
	for {
		best, bestT, all := -1, int64(0), true
		for i, l := range m.subs {
			if !l.ready() {
				all = false
				continue
			}
			if t := l.peekTime(); best < 0 || t < bestT {
				best, bestT = i, t
			}
		}
		var wait time.Duration
		if best >= 0 {
			if !all {
				now := wallClock()
				wait = time.Duration(bestT + hold - now.UnixNano())
				if wait > 0 {
					if holdStart.IsZero() {
						holdStart = now
					}
					wait = min(wait, time.Duration(hold)-now.Sub(holdStart))
				}
			}
			if wait <= 0 {
				if data, ci, ok := m.subs[best].take(); ok {
					m.last = best
					return data, ci, nil
				}
				continue
			}
		} else {
			if deadline.IsZero() {
				deadline = time.Now().Add(timeout)
			}
			if wait = time.Until(deadline); wait <= 0 {
				for _, l := range m.subs {
					if err := l.idle(); err != nil {
						return nil, gopacket.CaptureInfo{}, err
					}
				}
				return nil, gopacket.CaptureInfo{}, ErrTimeout
			}
		}
		// Built at every wait: a socket opened again has a new descriptor.
		// A socket with packets waiting is left out (a negative descriptor):
		// it stays readable, and polling it while a packet is held for
		// the other rings returned at once, over and over (a core spun
		// for the whole wait of every packet while one interface was
		// quiet).
		for i, l := range m.subs {
			m.pfd[2*i], m.pfd[2*i+1] = l.pfd[0], l.pfd[1]
			if l.inBlock && l.left > 0 {
				m.pfd[2*i].Fd = -1
			}
		}
		m.polls++
		_, err := unix.Poll(m.pfd, int((wait+time.Millisecond-1)/time.Millisecond))
		if m.closed() {
			return nil, gopacket.CaptureInfo{}, ErrClosed
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, gopacket.CaptureInfo{}, fmt.Errorf("poll: %w", err)
		}
		for i, l := range m.subs {
			if err := l.polled(m.pfd[2*i].Revents); err != nil {
				return nil, gopacket.CaptureInfo{}, fmt.Errorf("%s: %w", l.iface, err)
			}
		}
	}
}

// wallClock is the clock capture times are compared with (a test sets it
// back, as an NTP step would).
var wallClock = time.Now

// holdSlack is how late past its retire timeout the kernel's block timer
// may hand a block over (it counts in jiffies, up to 10 ms each).
const holdSlack = 20 * time.Millisecond

func (m *multiLive) closed() bool {
	for _, l := range m.subs {
		if l.closed.Load() {
			return true
		}
	}
	return false
}

// LinkType implements Source (every interface has it).
func (m *multiLive) LinkType() uint32 { return m.subs[0].link }

// Stats implements Source: the sums over the interfaces' sockets.
func (m *multiLive) Stats() Stats {
	var st Stats
	for _, l := range m.subs {
		st.Add(l.Stats())
	}
	return st
}

// Close implements Source: it closes every socket (a read waiting in poll
// wakes on the first one's eventfd and returns ErrClosed).
func (m *multiLive) Close() error {
	var first error
	for _, l := range m.subs {
		if err := l.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// peekTime is the capture time, in Unix nanoseconds, of the packet take
// would hand out next (after ready); a header outside its block reads as
// the earliest, so take meets it at once and ends the block.
func (l *live) peekTime() int64 {
	off, end := l.off, (l.cur+1)*l.blockSize
	if off < l.cur*l.blockSize+blockHdrLen || off+unix.SizeofTpacket3Hdr > end {
		return 0
	}
	h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&l.ring[off]))
	return int64(h.Sec)*1e9 + int64(h.Nsec)
}

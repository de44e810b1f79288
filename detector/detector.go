// Package detector defines how detectors see traffic and what they report.
//
// A Detector is created once per configuration and shared by workers; for
// each new flow it may return an Inspector, which is fed that flow's packets
// by one goroutine. Inspectors report Evidence: a constant Kind, a weight,
// and whether the flow it was found on can carry a SoftEther session alert
// (an anchor). One place, the verdict stage, groups evidence by host pair
// into sessions and turns it into alerts with stable signature ids.
package detector

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/membudget"
	"github.com/sewatch/sewatch/internal/tlshello"
)

// Flow is the engine's read-only view of the flow being inspected.
type Flow struct {
	ID             int64
	Client, Server netip.AddrPort
	Start          time.Time
	Proto          uint8
	SYNSeen        bool
	VLAN           [3]uint16
	NVLAN          uint8
	// Iface is the capture interface the flow's first packet came in on,
	// as an index into the engine's list (live capture on several
	// interfaces; 0 otherwise).
	Iface uint8
	// Reported: an inspector reported evidence on this flow (its buffers
	// are the last shed when the buffer budget is full).
	Reported      bool
	PktsToServer  uint64
	PktsToClient  uint64
	BytesToServer uint64
	BytesToClient uint64
	// Mem is the worker's account in the engine's budget for per-flow
	// buffers (nil: unbounded): inspectors reserve from it before growing
	// a buffer and shed the buffer when refused.
	Mem *membudget.Account
}

// ProxyOpening names the proxy handshake a client's first payload opens: an
// HTTP CONNECT request (ModeHTTPProxy), a SOCKS5 greeting (ModeSOCKS5) or a
// SOCKS4 connect request (ModeSOCKS4); ModeNone when it is none. SoftEther's
// client opens its connection with one of these when it uses a proxy.
func ProxyOpening(pl []byte) Mode {
	switch {
	case bytes.HasPrefix(pl, []byte("CONNECT ")):
		return ModeHTTPProxy
	case len(pl) >= 3 && pl[0] == 5 && int(pl[1])+2 == len(pl):
		return ModeSOCKS5
	case len(pl) >= 9 && pl[0] == 4 && pl[1] == 1:
		return ModeSOCKS4
	}
	return ModeNone
}

// TLSInfo is what a detector learned of a flow's TLS handshake; the verdict
// stage copies it into the alert's tls object.
type TLSInfo struct {
	SNI, Version        string
	JA3, JA3Hash        string
	JA3S, JA3SHash      string
	JA4                 string
	ALPN                []string
	Subject, Issuer     string
	Serial, Fingerprint string
	NotBefore, NotAfter string
}

// SetClientHello fills the client side of the info from a parsed hello.
func (i *TLSInfo) SetClientHello(ch *tlshello.ClientHello) {
	i.SNI, i.ALPN = ch.SNI, ch.ALPN
	i.JA3, i.JA3Hash = tlshello.JA3(ch)
	i.JA4 = tlshello.JA4(ch)
}

// Evidence is one observation. Kind is a constant with a row in Kinds
// (the weights table), which says how it counts towards a session; Detail
// is a short human-readable explanation.
type Evidence struct {
	Kind   Kind
	Detail string
	// Weight is the confidence of own-signature evidence (other VPNs,
	// vendor services). Session evidence takes its weight from Kinds.
	Weight float32
	// Mode is the SoftEther transport when the evidence says which, or
	// the protocol of own-signature evidence.
	Mode Mode
	// Signature, when non-zero, asks for an alert of its own (for
	// detections that are not SoftEther sessions: other VPNs, vendor
	// services). Such evidence bypasses session scoring.
	Signature int
	// Client and Server name the host pair the evidence is about. For
	// probes they are the flow's endpoints; they may differ from Flow.
	Client, Server netip.Addr
	// Symmetric: the detector cannot tell which host is the VPN client
	// (e.g. a UDP flow whose first packet came from the server); the
	// verdict stage attaches it to whichever orientation has a session.
	Symmetric bool
	Flow      Flow
	TLS       *TLSInfo
	Time      time.Time
	PcapCnt   uint64
	// Opening is, for a reading of a TLS connection's connect phase with
	// both sides seen, the sizes of its first exchanges: the client's
	// watermark record and second record (login or additional_connect)
	// and the server's hello. SoftEther pads all three at random (0-1999
	// and 0-999 bytes) on every connection, so two connections of one
	// session open alike (Repeats) about once in 1,000 pairs; the verdict
	// stage takes connections that do for one exchange repeated by other
	// software. Zero elsewhere.
	Opening Opening
	// Pkt describes the packet PcapCnt names; the engine fills it (detectors
	// leave it zero).
	Pkt PacketInfo
}

// Opening is the sizes of a connection's first exchanges (see
// Evidence.Opening).
type Opening struct{ Watermark, Second, Hello int32 }

// Repeats tells whether o and x are one exchange repeated by one side: the
// server's hello answered with the same size (a server answering requests
// of other sizes with the same response: an API client's), or both of the
// client's records within 16 bytes (the same requests, a header value one
// digit longer). SoftEther's hellos are the same in about 1 in 1,000 pairs
// of its connections, its requests in about 1 in 2,000. Zero openings
// repeat nothing.
func (o Opening) Repeats(x Opening) bool {
	if o.Hello == 0 || x.Hello == 0 {
		return false
	}
	near := func(a, b int32) bool { return a-b >= -16 && a-b <= 16 }
	return o.Hello == x.Hello || near(o.Watermark, x.Watermark) && near(o.Second, x.Second)
}

// PacketInfo is what the alert needs of the packet that evidence was found
// on: who sent it (for EVE's direction) and, for ICMP, its type and code
// (EVE's icmp_type/icmp_code, and the Community ID's port pair).
type PacketInfo struct {
	Known              bool
	Src                netip.Addr
	ICMPType, ICMPCode uint8
}

// Sink receives evidence. The engine's verdict stage implements it.
type Sink interface {
	Report(e Evidence)
}

// Detector creates per-flow inspectors. Safe for concurrent use.
type Detector interface {
	Name() string
	// NewInspector is called once per flow, for its first packet that
	// carries payload (TCP and UDP; the first packet for other protocols),
	// with that packet's direction: a flow that never carries data (a scan,
	// a refused or idle connection) costs no detector state. It returns nil
	// when the detector has no interest in the flow, which it should decide
	// from that first payload where it can, so that a flow's state is only
	// what the detectors it can matter to keep.
	NewInspector(p *decode.Packet, toServer bool, f *Flow) Inspector
}

// Inspector follows one flow. Inspect is given every packet of the flow
// with its direction; p.Payload is borrowed. It returns false when it needs
// no more packets. The common path must not allocate.
type Inspector interface {
	Inspect(p *decode.Packet, toServer bool, f *Flow, s Sink) bool
}

// Factory builds a detector. Detectors register a factory at init.
type Factory func() Detector

var (
	mu       sync.Mutex
	registry = map[string]Factory{}
)

// Register adds a detector factory; a duplicate name panics at init.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("detector: duplicate detector %q", name))
	}
	registry[name] = f
}

// Names lists registered detectors, sorted.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	n := make([]string, 0, len(registry))
	for k := range registry {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Build instantiates the named detectors (all registered when names is empty).
func Build(names []string) ([]Detector, error) {
	if len(names) == 0 {
		names = Names()
	}
	mu.Lock()
	defer mu.Unlock()
	var ds []Detector
	for _, n := range names {
		f, ok := registry[n]
		if !ok {
			return nil, fmt.Errorf("unknown detector %q", n)
		}
		ds = append(ds, f())
	}
	return ds, nil
}

// FreeList keeps released inspectors for reuse. Unlike sync.Pool it is not
// emptied by the garbage collector, so a steady rate of new flows allocates
// nothing; it holds at most as many values as were ever live at once. Safe
// for concurrent use (workers share detectors).
type FreeList[T any] struct {
	mu   sync.Mutex
	free []*T
}

// Get returns a zeroed value, reused when one was released.
func (l *FreeList[T]) Get() *T {
	l.mu.Lock()
	if n := len(l.free); n > 0 {
		v := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		l.mu.Unlock()
		var zero T
		*v = zero
		return v
	}
	l.mu.Unlock()
	v := new(T)
	touch(v)
	return v
}

// touch writes a fresh value's memory. The allocator hands out pages the
// kernel has not mapped yet; an inspector's first access is usually a
// read, which maps the shared zero page, and its first write then faults
// again and must flush that mapping from every core running the process
// (an inter-processor interrupt when several workers run). Writing first
// takes one fault and no flush.
//
//go:noinline
func touch[T any](v *T) {
	var zero T
	*v = zero
}

// Put releases v for reuse; the caller must not use it afterwards.
func (l *FreeList[T]) Put(v *T) {
	l.mu.Lock()
	l.free = append(l.free, v)
	l.mu.Unlock()
}

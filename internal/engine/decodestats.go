package engine

import (
	"sort"
	"sync"

	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/eve"
)

// decodeTotals sums the workers' per-layer counters and their undecoded
// frames by kind. Workers add to it when they publish (at every expiry
// run), so a mutex costs nothing per packet.
type decodeTotals struct {
	mu      sync.Mutex
	layers  [decode.NumLayers]uint64
	skipped map[skipKey]uint64
	other   uint64
}

type skipKey struct {
	why decode.Why
	val uint32
}

// collect moves a decoder's counters into the totals and zeroes them.
func (t *decodeTotals) collect(d *decode.Decoder) {
	t.mu.Lock()
	for i, n := range d.Counts {
		t.layers[i] += n
	}
	if d.Skipped.Used > 0 || d.Skipped.Other > 0 {
		if t.skipped == nil {
			t.skipped = map[skipKey]uint64{}
		}
		for _, k := range d.Skipped.Kinds[:d.Skipped.Used] {
			t.skipped[skipKey{k.Why, k.Val}] += k.N
		}
		t.other += d.Skipped.Other
	}
	t.mu.Unlock()
	d.Counts = [decode.NumLayers]uint64{}
	d.Skipped.Reset()
}

// Undecoded lists the frames not decoded to an IP flow, by kind, most
// frequent first; a kind with Why 0 sums kinds beyond the decoders' tables.
func (e *Engine) Undecoded() []decode.Skipped {
	t := &e.dec
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]decode.Skipped, 0, len(t.skipped)+1)
	for k, n := range t.skipped {
		out = append(out, decode.Skipped{Why: k.why, Val: k.val, N: n})
	}
	if t.other > 0 {
		out = append(out, decode.Skipped{N: t.other})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].String() < out[j].String()
	})
	return out
}

// LogUndecoded writes one line per kind of frame that was not decoded
// (end of a capture file): nothing is skipped without a word.
func (e *Engine) LogUndecoded() {
	for _, s := range e.Undecoded() {
		e.log.Warn("packets not decoded", "count", s.N, "kind", s.String())
	}
}

// fillDecoderLayers copies the layer totals into a stats event.
func (e *Engine) fillDecoderLayers(st *eve.DecoderStats) {
	t := &e.dec
	t.mu.Lock()
	l := t.layers
	t.mu.Unlock()
	st.Ethernet, st.SLL, st.SLL2, st.Null, st.Raw = l[decode.LayerEthernet], l[decode.LayerSLL], l[decode.LayerSLL2], l[decode.LayerNull], l[decode.LayerRaw]
	st.PPP, st.PPPoE, st.MPLS, st.CHDLC = l[decode.LayerPPP], l[decode.LayerPPPoE], l[decode.LayerMPLS], l[decode.LayerCHDLC]
	st.GRE, st.ERSPAN, st.VXLAN, st.Geneve, st.Teredo = l[decode.LayerGRE], l[decode.LayerERSPAN], l[decode.LayerVXLAN], l[decode.LayerGeneve], l[decode.LayerTeredo]
	st.NSH, st.VNTag, st.IEEE8021ah, st.VLANQinQ = l[decode.LayerNSH], l[decode.LayerVNTag], l[decode.Layer8021ah], l[decode.LayerQinQ]
	st.IPv4InIPv4, st.IPv6InIPv4, st.IPv4InIPv6, st.IPv6InIPv6 = l[decode.LayerIPv4inIPv4], l[decode.LayerIPv6inIPv4], l[decode.LayerIPv4inIPv6], l[decode.LayerIPv6inIPv6]
	st.ARP, st.UnknownEthertype, st.TooManyLayers = l[decode.LayerARP], l[decode.LayerUnknownEthertype], l[decode.LayerTooMany]
}

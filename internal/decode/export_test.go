package decode

import "reflect"

// NewLayeredDecoder is a decoder without the IPv4 and IPv6 fast paths,
// for tests that compare the two paths.
func NewLayeredDecoder(link LinkType) *Decoder {
	d := NewDecoder(link)
	d.slowOnly = true
	return d
}

// Same reports whether two decodes of one frame agree: the packet (its
// payload the same bytes of the frame, not only equal ones), the error,
// the bytes after the IP header, and the counters.
func Same(a, b *Decoder, pa, pb *Packet, ea, eb error) string {
	switch {
	case ea != eb:
		return "errors differ"
	case !samePacket(pa, pb):
		return "packets differ"
	case !sameSlice(a.ipPayload, b.ipPayload):
		return "ip payloads differ"
	case a.Counts != b.Counts:
		return "layer counts differ"
	}
	return ""
}

func sameSlice(x, y []byte) bool {
	return len(x) == len(y) && (len(x) == 0 || &x[0] == &y[0])
}

func samePacket(x, y *Packet) bool {
	xp, yp := x.Payload, y.Payload
	cx, cy := *x, *y
	cx.Payload, cy.Payload = nil, nil
	return reflect.DeepEqual(cx, cy) && sameSlice(xp, yp)
}

// TookFastPath reports whether the last Decode took a fast path (IPv4 or
// IPv6; of a tunnel, the outer or the inner packet).
func (d *Decoder) TookFastPath() bool { return d.fast }

// Package connectphase holds the sizes of SoftEther's connect-phase
// messages as TLS record lengths, from SoftEther's message builders and the
// lab's captures. Every detector that recognises the connect phase (inside
// TLS, inside an SSH forward) reads them here, so one correction reaches
// them all.
//
// Plaintext sizes come from the source; the spans add 16-80 bytes of record
// overhead (TLS 1.3 AEAD +17, TLS 1.2 GCM +24, CBC with MAC and padding up
// to ~80) and room for IPv6 or host names in the Host header. Most messages
// carry 0-999 bytes of random "pencore" padding (Network.c
// CreateDummyValue), which is why the spans are wide.
package connectphase

// Span is an inclusive range of record lengths.
type Span struct{ Lo, Hi int }

// Has reports whether n lies in the span.
func (s Span) Has(n int) bool { return n >= s.Lo && n <= s.Hi }

// Widen adds a framing overhead range (lo..hi bytes per record) to a span.
func (s Span) Widen(lo, hi int) Span { return Span{s.Lo + lo, s.Hi + hi} }

var (
	GetProbe  = Span{265, 380}   // GET / with X-VPN: 1 (249-257 B for IPv4 Host)
	Page403   = Span{460, 600}   // 403 page naming the server's address and port
	Page202   = Span{2100, 2260} // Stable builds: 202 + index.html with the GUID comment
	Watermark = Span{1550, 3800} // POST connect.cgi + 1411-B GIF + 0-1999 random bytes
	Hello     = Span{360, 1460}  // hello PACK + 0-999 B pencore
	Login     = Span{2400, 6800} // login PACK (password or certificate auth)
	Welcome   = Span{1800, 4800} // welcome PACK with policies (and UDP accel keys)
	// AddConnect is the additional_connect PACK, also vpncmd's admin
	// login: the lab has seen admin logins of 795-1616 B, so the PACK's
	// fixed part is 617-795 B before 0-999 B of pencore; the top leaves
	// room for a host name in the Host header and stays well below any
	// login (2400).
	AddConnect  = Span{440, 1850}
	AddResponse = Span{255, 1340} // error=0/direction answer
	// AdminAnswer: vpncmd's admin login is answered by a PACK that may
	// hold nothing but pencore (Admin.c AdminAccept): ~200 B of HTTP
	// header and PACK framing plus 0-999 random bytes, so it can be shorter
	// than any additional_connect answer.
	AdminAnswer = Span{205, 1340}
)

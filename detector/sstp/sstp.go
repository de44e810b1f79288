// Package sstp recognises SSTP (Microsoft's Secure Socket Tunneling
// Protocol, also served by SoftEther's built-in SSTP server) inside TLS from
// record sizes alone. After the TLS handshake an SSTP client sends its
// SSTP_DUPLEX_POST request and the server answers HTTP 200; then the client
// sends Call Connect Request, a control message of exactly 14 bytes
// (MS-SSTP 2.2.9: 4-byte header, 4-byte control header, one 6-byte
// Encapsulated Protocol attribute), and the server answers Call Connect Ack,
// exactly 48 bytes (its Crypto Binding Request attribute is 40). Both
// records carry the same cipher's overhead, so the pair of record lengths,
// right after a request/answer pair, pins SSTP down.
//
// SSTP is another VPN: the alert is informational and never a SoftEther
// signature. SoftEther's SSTP server answers the request with a 125-byte
// header ("HTTP/1.1 200 OK", Content-Length, Server, Date: Proto_SSTP.c)
// where Windows sends 122 ("HTTP/1.1 200" without "OK", MS-SSTP's example);
// the alert notes the answer's size as a hint, not as a verdict.
package sstp

import (
	"fmt"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/tlsstream"
)

// Name is the detector's registered name.
const Name = "sstp"

// Kind is the evidence kind.
const Kind = "vpn.sstp"

func init() { detector.Register(Name, func() detector.Detector { return Detector{} }) }

// Detector is the SSTP detector.
type Detector struct{}

// Name implements detector.Detector.
func (Detector) Name() string { return Name }

// NewInspector follows TCP flows whose first client payload is TLS.
func (Detector) NewInspector(p *decode.Packet, toServer bool, f *detector.Flow) detector.Inspector {
	if p.Proto != decode.ProtoTCP {
		return nil
	}
	if pl := p.Payload; len(pl) > 0 && toServer && !tlsstream.LooksLikeTLS(pl) {
		return nil
	}
	return newInspector()
}

const (
	callConnectRequest = 14
	callConnectAck     = 48
	// maxRecs: the pattern sits within the first application-data records
	// (TLS 1.3 adds the encrypted handshake, Finished and tickets).
	maxRecs = 16
	maxSegs = 64
)

type rec struct {
	client bool
	n      int32
}

// Inspector follows one TCP flow.
type Inspector struct {
	c, s     tlsstream.Dir
	cliTLS   bool
	srvTLS   bool
	segs     int
	recs     [maxRecs]rec
	nrecs    int
	finished bool
}

// Inspect implements detector.Inspector.
func (in *Inspector) Inspect(p *decode.Packet, toServer bool, f *detector.Flow, s detector.Sink) bool {
	if in.finished {
		return false
	}
	pl := p.Payload
	if len(pl) == 0 {
		return true
	}
	in.segs++
	if in.segs > maxSegs {
		return false
	}
	if toServer {
		if !in.cliTLS {
			if !tlsstream.LooksLikeTLS(pl) {
				return false
			}
			in.cliTLS = true
			in.c.Start(p.Seq, true)
		}
		in.c.Feed(p.Seq, pl, func(r tlsstream.Record) bool { return in.record(true, r, p, f, s) })
	} else {
		if !in.cliTLS {
			return true
		}
		if !in.srvTLS {
			if !tlsstream.LooksLikeRecord(pl) {
				return false
			}
			in.srvTLS = true
			in.s.Start(p.Seq, true)
		}
		in.s.Feed(p.Seq, pl, func(r tlsstream.Record) bool { return in.record(false, r, p, f, s) })
	}
	return !in.finished
}

func (in *Inspector) record(client bool, r tlsstream.Record, p *decode.Packet, f *detector.Flow, s detector.Sink) bool {
	if in.finished || r.Type != tlsstream.TypeApplicationData {
		return !in.finished
	}
	if in.nrecs >= maxRecs {
		in.finished = true
		return false
	}
	in.recs[in.nrecs] = rec{client, int32(r.Length)}
	in.nrecs++
	if !client {
		in.match(p, f, s)
	}
	return !in.finished
}

// match looks at the newest server record as a Call Connect Ack.
func (in *Inspector) match(p *decode.Packet, f *detector.Flow, s detector.Sink) {
	n := in.nrecs
	if n < 4 {
		return
	}
	ack := in.recs[n-1]
	// The Call Connect Request is the client's last record before the ack.
	i := n - 2
	for i >= 0 && !in.recs[i].client {
		i--
	}
	if i < 2 {
		return
	}
	req := in.recs[i]
	seal, ok := sealFor(req.n, ack.n)
	if !ok {
		return
	}
	// Before it: the HTTP answer (server) and, before that, the request.
	j := i - 1
	if in.recs[j].client {
		return
	}
	answer := in.recs[j]
	k := j - 1
	for k >= 0 && !in.recs[k].client {
		k--
	}
	if k < 0 {
		return
	}
	request := in.recs[k]
	reqPlain, ansPlain := seal.plain(request.n), seal.plain(answer.n)
	// SSTP_DUPLEX_POST /sra_{GUID}/ with Host, SSTPCORRELATIONID and the
	// 2^64-1 Content-Length: 150-400 B; the answer 100-250 B.
	if reqPlain < 150 || reqPlain > 400 || ansPlain < 100 || ansPlain > 250 {
		return
	}
	hint := ""
	switch {
	case seal.fixed && ansPlain == 125:
		hint = "; HTTP answer of 125 B, the length SoftEther's SSTP server sends (Windows sends 122)"
	case seal.fixed && ansPlain == 122:
		hint = "; HTTP answer of 122 B, the length Windows' SSTP server sends"
	}
	in.finished = true
	s.Report(detector.Evidence{Kind: Kind, Weight: 1, Signature: detector.SIDSSTP, Mode: "sstp",
		Detail: fmt.Sprintf("SSTP over TLS: request %d, answer %d, then a %d-B Call Connect Request answered by a %d-B Call Connect Ack (%s)%s",
			request.n, answer.n, req.n, ack.n, seal, hint),
		Client: f.Client.Addr(), Server: f.Server.Addr(), Flow: *f, Time: p.Time, PcapCnt: p.Index})
}

// seal is how a cipher suite grows a plaintext into a record.
type seal struct {
	fixed bool
	add   int32 // fixed: AEAD tag, explicit nonce, TLS 1.3 content type
	mac   int32 // CBC: MAC length (16-byte blocks, explicit IV)
}

func (c seal) size(plain int32) int32 {
	if c.fixed {
		return plain + c.add
	}
	return 16 + (plain+c.mac+1+15)/16*16
}

// plain estimates a plaintext length (the low end for CBC).
func (c seal) plain(rec int32) int32 {
	if c.fixed {
		return rec - c.add
	}
	return rec - 16 - c.mac - 16
}

func (c seal) String() string {
	if c.fixed {
		return fmt.Sprintf("+%d B per record", c.add)
	}
	return fmt.Sprintf("CBC with a %d-B MAC", c.mac)
}

var seals = [...]seal{
	{fixed: true, add: 17}, // TLS 1.3 AEAD
	{fixed: true, add: 24}, // TLS 1.2 AES-GCM/CCM (explicit nonce)
	{fixed: true, add: 16}, // TLS 1.2 ChaCha20-Poly1305
	{mac: 20}, {mac: 32}, {mac: 48},
}

// sealFor finds a cipher overhead that makes req and ack records of a
// Call Connect Request and a Call Connect Ack.
func sealFor(req, ack int32) (seal, bool) {
	for _, c := range seals {
		if c.size(callConnectRequest) == req && c.size(callConnectAck) == ack {
			return c, true
		}
	}
	return seal{}, false
}

// Inspectors come from a pool and go back when the flow ends (Release), so
// a new flow allocates nothing once the pool is warm.
var pool detector.FreeList[Inspector]

func newInspector() *Inspector {
	in := pool.Get()
	return in
}

// Release returns the inspector to the pool; the engine calls it once, when
// the flow ends or Inspect returned false.
func (in *Inspector) Release() { pool.Put(in) }

// Command floodgen writes a pcap (to stdout) of many TCP connections that
// each open, send the first part of a TLS handshake record announcing a
// 16,000-byte ClientHello, and never finish it, with a SoftEther capture
// spliced into the middle: the input of scripts/mem-flood.sh, which
// measures sewatch's peak RSS against its flow buffer budget.
//
//	go run ./scripts/floodgen [-flows N] [-segs N] [-softether FILE] > flood.pcap
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/sewatch/sewatch/internal/testpkt"
)

func main() {
	flows := flag.Int("flows", 100000, "half-finished handshakes")
	segs := flag.Int("segs", 8, "1,400-byte segments of each handshake sent (0-11; 0: idle connections, a handshake and nothing more)")
	se := flag.String("softether", "testdata/pcap/se-direct-443.pcap", "capture spliced into the flood (empty: none)")
	flag.Parse()
	if err := run(os.Stdout, *flows, min(max(*segs, 0), 11), *se); err != nil {
		fmt.Fprintln(os.Stderr, "floodgen:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, flows, segs int, sePath string) error {
	bw := bufio.NewWriterSize(out, 1<<20)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return err
	}
	var se [][]byte
	if sePath != "" {
		f, err := os.Open(sePath)
		if err != nil {
			return err
		}
		r, err := pcapgo.NewReader(f)
		if err != nil {
			return err
		}
		for {
			d, _, err := r.ReadPacketData()
			if err != nil {
				break
			}
			se = append(se, d)
		}
		f.Close()
	}
	// One template per packet of a connection; each flow patches its
	// client address and port into copies (the decoder does not verify
	// checksums, so they are left as built).
	cli := testpkt.Spec{Src: "10.64.0.1", Dst: "10.77.0.1", Proto: "tcp", SrcPort: 1024, DstPort: 443}
	srv := testpkt.Spec{Src: cli.Dst, Dst: cli.Src, Proto: "tcp", SrcPort: 443, DstPort: 1024}
	syn, synack, ack := cli, srv, cli
	syn.SYN, syn.Seq = true, 1000
	synack.SYN, synack.ACK, synack.Seq = true, true, 5000
	ack.ACK, ack.Seq = true, 1001
	body := make([]byte, 16005)
	body[0], body[1], body[2] = 22, 3, 1
	binary.BigEndian.PutUint16(body[3:], 16000)
	binary.BigEndian.PutUint32(body[5:], 1<<24|15996) // ClientHello, 15,996 bytes
	tmpl := [][]byte{testpkt.Ethernet(syn), testpkt.Ethernet(synack), testpkt.Ethernet(ack)}
	for i := 0; i < segs; i++ {
		d := cli
		d.ACK, d.Seq = true, 1001+uint32(i*1400)
		d.Payload = body[i*1400 : (i+1)*1400]
		tmpl = append(tmpl, testpkt.Ethernet(d))
	}
	const ipSrc, ipDst, tcpSrc, tcpDst = 14 + 12, 14 + 16, 14 + 20, 14 + 22
	ts := time.Unix(1767225600, 0)
	buf := make([]byte, 2048)
	write := func(b []byte) error {
		ts = ts.Add(time.Microsecond)
		return w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b)
	}
	// Every flow sends packet j before any sends packet j+1: all the
	// handshakes are open at once. The SoftEther capture runs in the
	// middle, while the flood's buffers fill the budget.
	for j, t := range tmpl {
		if j == len(tmpl)/2 {
			for _, d := range se {
				if err := write(d); err != nil {
					return err
				}
			}
		}
		b := buf[:len(t)]
		copy(b, t)
		for f := 0; f < flows; f++ {
			host, port := uint16(f/50000), uint16(1024+f%50000)
			if j == 1 { // server to client
				binary.BigEndian.PutUint16(b[ipDst+2:], host)
				binary.BigEndian.PutUint16(b[tcpDst:], port)
			} else {
				binary.BigEndian.PutUint16(b[ipSrc+2:], host)
				binary.BigEndian.PutUint16(b[tcpSrc:], port)
			}
			if err := write(b); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// Command sewatch-send replays a capture onto a network interface faster
// than tcpreplay can on a small machine: it loads every frame into memory
// first, then sends them through an AF_PACKET socket that bypasses the
// qdisc, either from a memory-mapped TPACKET_V2 transmit ring (one system
// call per batch, no per-frame copy into a socket buffer) or with sendmmsg
// batches, paced to a rate (frame i leaves at start + i/rate, in batches of
// at most -batch frames; nanosleep with a 1 ns timer slack, then a short
// spin) or at top speed. It prints one line: frames handed to the kernel,
// frames the kernel refused, seconds, the rate by its own clock, and the
// interface's own transmit counters over the run (what really left).
// scripts/live-replay.sh uses it (SENDER=sewatch-send, the default).
//
//	sewatch-send -i IFACE [-rate PPS] [-mode ring|mmsg] [-batch N] [-loops N] CAPTURE
//
// Needs CAP_NET_RAW. Linux only.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	iface := flag.String("i", "", "interface to send on (required)")
	rate := flag.Float64("rate", 0, "frames per second (0: top speed)")
	mode := flag.String("mode", "ring", "ring (PACKET_TX_RING) or mmsg (sendmmsg)")
	batch := flag.Int("batch", 64, "frames per system call at most (1-1024)")
	loops := flag.Int("loops", 1, "times the capture is sent")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: sewatch-send -i IFACE [-rate PPS] [-mode ring|mmsg] [-batch N] [-loops N] CAPTURE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *iface == "" || flag.NArg() != 1 || *batch < 1 || *batch > 1024 || *loops < 1 || *rate < 0 ||
		(*mode != "ring" && *mode != "mmsg") {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*iface, flag.Arg(0), *mode, *rate, *batch, *loops); err != nil {
		fmt.Fprintln(os.Stderr, "sewatch-send:", err)
		os.Exit(1)
	}
}

func run(iface, path, mode string, rate float64, batch, loops int) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	var size int64
	if st, err := in.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	fr, err := loadFrames(in, size)
	in.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	res, err := send(iface, fr, mode, rate, batch, loops)
	if err != nil {
		return err
	}
	fmt.Printf("sent %d failed %d seconds %.3f pps %.0f kernel_tx %d kernel_tx_dropped %d\n",
		res.sent, res.failed, res.elapsed.Seconds(), float64(res.sent)/res.elapsed.Seconds(), res.kernelTx, res.kernelDropped)
	return nil
}

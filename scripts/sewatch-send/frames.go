package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// frames holds every frame of a capture back to back in one buffer, so a
// send walks memory in order and loading costs two allocations that grow,
// not one per frame.
type frames struct {
	data []byte
	off  []int // frame i is data[off[i]:off[i+1]]
	max  int   // longest frame
}

func (f *frames) len() int { return len(f.off) - 1 }

func (f *frames) frame(i int) []byte { return f.data[f.off[i]:f.off[i+1]] }

// loadFrames reads a pcap or pcapng capture of Ethernet frames whole. Each
// frame is sent as captured (its captured bytes, like tcpreplay), so a
// truncated capture sends truncated frames. A capture that ends in the
// middle of a record is an error: a replay of part of a file would not be
// the file.
//
// sizeHint (the file's size, or 0) reserves the buffer at once: growing a
// 500 MB buffer by appending costs seconds of page faults and copies.
func loadFrames(r io.Reader, sizeHint int64) (*frames, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("capture header: %w", err)
	}
	var next func() ([]byte, error)
	var link layers.LinkType
	if magic[0] == 0x0a && magic[1] == 0x0d && magic[2] == 0x0d && magic[3] == 0x0a {
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, err
		}
		link = ng.LinkType()
		next = func() ([]byte, error) { d, _, err := ng.ZeroCopyReadPacketData(); return d, err }
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, err
		}
		link = pr.LinkType()
		next = func() ([]byte, error) { d, _, err := pr.ZeroCopyReadPacketData(); return d, err }
	}
	if link != layers.LinkTypeEthernet {
		return nil, fmt.Errorf("link type %v: only Ethernet captures can be sent on an Ethernet interface", link)
	}
	f := &frames{off: []int{0}}
	if sizeHint > 0 {
		// A pcap record header is 16 bytes and a frame at least 14.
		f.data = make([]byte, 0, sizeHint)
		f.off = make([]int, 1, sizeHint/64+1)
	}
	for {
		d, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", f.len()+1, err)
		}
		f.data = append(f.data, d...)
		f.off = append(f.off, len(f.data))
		f.max = max(f.max, len(d))
	}
	if f.len() == 0 {
		return nil, errors.New("the capture holds no frame")
	}
	return f, nil
}

// upTo returns the frames at most limit bytes long and how many were
// longer (f itself when none was).
func (f *frames) upTo(limit int) (*frames, int) {
	if f.max <= limit {
		return f, 0
	}
	g := &frames{off: []int{0}}
	for i := 0; i < f.len(); i++ {
		d := f.frame(i)
		if len(d) > limit {
			continue
		}
		g.data = append(g.data, d...)
		g.off = append(g.off, len(g.data))
		g.max = max(g.max, len(d))
	}
	return g, f.len() - g.len()
}

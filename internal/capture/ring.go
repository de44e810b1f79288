package capture

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Ring defaults: 64 blocks of 1 MiB (64 MiB per socket) absorb about a
// fifth of a second of a saturated 1 Gb/s link while the reader is busy,
// and a block that is not full is handed over after 50 ms, so a quiet
// link still sees its packets promptly.
const (
	DefaultRingBlockSize = 1 << 20
	DefaultRingBlocks    = 64
	DefaultRingRetire    = 50 * time.Millisecond
	// maxRingBytes is the kernel's bound: block size × block count must
	// fit in 32 bits.
	maxRingBytes = 1<<32 - 1
	// tpacket3HdrLen is TPACKET3_HDRLEN: the aligned tpacket3_hdr (48
	// bytes) and the sockaddr_ll (20) the kernel writes before the frame.
	tpacket3HdrLen = 48 + 20
	// blockHdrLen is the block descriptor the kernel puts at the head of
	// each block (tpacket_block_desc, aligned to 8 bytes).
	blockHdrLen = 48
	// frameSlack covers the alignment the kernel adds before the MAC
	// header (it aligns the network header to 16 bytes) and a VLAN tag.
	frameSlack = 16 + 4
)

// RingOptions size the TPACKET_V3 receive ring of one socket. Zero fields
// take the defaults above.
type RingOptions struct {
	// BlockSize in bytes: a power of two and a multiple of the page size.
	BlockSize int
	// Blocks per socket (at least 2: the kernel fills one while the
	// reader walks another).
	Blocks int
	// FrameSize is the kernel's nominal frame slot (TPACKET_V3 packs
	// frames of their real size into a block; the slot only has to hold
	// the largest one). Zero derives it from the snap length.
	FrameSize int
	// Retire hands a block that is not yet full to the reader after this
	// long (millisecond resolution).
	Retire time.Duration
}

// withDefaults fills the zero fields, the frame size from snaplen.
func (r RingOptions) withDefaults(snaplen int) RingOptions {
	if r.BlockSize == 0 {
		r.BlockSize = DefaultRingBlockSize
	}
	if r.Blocks == 0 {
		r.Blocks = DefaultRingBlocks
	}
	if r.Retire == 0 {
		r.Retire = DefaultRingRetire
	}
	if r.FrameSize == 0 {
		r.FrameSize = align16(tpacket3HdrLen + frameSlack + snaplen)
	}
	return r
}

func align16(n int) int { return (n + 15) &^ 15 }

// CheckRing validates a ring geometry for a snap length (0 = the default
// 256 KiB) without touching the kernel, so a configuration is refused at
// start with a message naming the setting.
func CheckRing(r RingOptions, snaplen int) error {
	if snaplen <= 0 || snaplen > maxCaplen {
		snaplen = maxCaplen
	}
	if r.BlockSize < 0 || r.Blocks < 0 || r.FrameSize < 0 || r.Retire < 0 {
		return errors.New("capture ring sizes and retire timeout must not be negative")
	}
	r = r.withDefaults(snaplen)
	page := os.Getpagesize()
	var errs []error
	if r.BlockSize%page != 0 || r.BlockSize&(r.BlockSize-1) != 0 {
		errs = append(errs, fmt.Errorf("capture.ring-block-size %d must be a power of two and a multiple of the page size (%d)", r.BlockSize, page))
	}
	if r.Blocks < 2 {
		errs = append(errs, fmt.Errorf("capture.ring-blocks %d: at least 2 (the kernel fills one while sewatch reads another)", r.Blocks))
	}
	if r.FrameSize%16 != 0 {
		errs = append(errs, fmt.Errorf("ring frame size %d must be a multiple of 16", r.FrameSize))
	}
	if need := align16(tpacket3HdrLen + frameSlack + snaplen); r.FrameSize < need {
		errs = append(errs, fmt.Errorf("ring frame size %d cannot hold a %d-byte packet (capture.snaplen) and its header: at least %d", r.FrameSize, snaplen, need))
	}
	if r.FrameSize+blockHdrLen > r.BlockSize {
		errs = append(errs, fmt.Errorf("capture.ring-block-size %d cannot hold one frame of capture.snaplen %d: at least %d (the next power of two)",
			r.BlockSize, snaplen, max(page, nextPow2(r.FrameSize+blockHdrLen))))
	}
	if r.Blocks > 0 && uint64(r.BlockSize)*uint64(r.Blocks) > maxRingBytes {
		errs = append(errs, fmt.Errorf("capture ring of %d × %d bytes exceeds the kernel's 4 GiB per socket", r.Blocks, r.BlockSize))
	}
	if r.Retire < time.Millisecond || r.Retire > time.Minute {
		errs = append(errs, fmt.Errorf("capture.ring-retire %v must be between 1ms and 1m", r.Retire))
	}
	return errors.Join(errs...)
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

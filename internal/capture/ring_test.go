package capture

import (
	"strings"
	"testing"
	"time"
)

func TestCheckRing(t *testing.T) {
	for _, c := range []struct {
		name    string
		r       RingOptions
		snaplen int
		want    string // "" = accepted
	}{
		{"defaults", RingOptions{}, 0, ""},
		{"small blocks, small snaplen", RingOptions{BlockSize: 4096, Blocks: 2}, 1500, ""},
		{"largest ring", RingOptions{BlockSize: 1 << 30, Blocks: 3}, 0, ""},
		{"not a power of two", RingOptions{BlockSize: 3 << 20}, 0, "must be a power of two"},
		{"below the page size", RingOptions{BlockSize: 2048}, 100, "multiple of the page size"},
		{"one block", RingOptions{Blocks: 1}, 0, "at least 2"},
		{"block smaller than a frame", RingOptions{BlockSize: 1 << 16}, 0, "at least 524288"},
		{"frame smaller than snaplen", RingOptions{FrameSize: 1024}, 1500, "cannot hold a 1500-byte packet"},
		{"frame not aligned", RingOptions{FrameSize: 4100}, 1500, "multiple of 16"},
		{"over 4 GiB", RingOptions{BlockSize: 1 << 30, Blocks: 4}, 0, "exceeds the kernel's 4 GiB"},
		{"retire too short", RingOptions{Retire: time.Microsecond}, 0, "between 1ms and 1m"},
		{"negative", RingOptions{Blocks: -1}, 0, "must not be negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckRing(c.r, c.snaplen)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

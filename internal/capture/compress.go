package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// closers closes several things in order, keeping the first error.
type closers []io.Closer

func (cs closers) Close() error {
	var first error
	for _, c := range cs {
		if c == nil {
			continue
		}
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

type closeFunc func()

func (f closeFunc) Close() error { f(); return nil }

// decompressor recognises gzip and zstd by their magic and returns a
// reader of the decompressed stream. ok is false for anything else.
func decompressor(r io.Reader, magic []byte) (io.Reader, io.Closer, bool, error) {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, true, fmt.Errorf("%w: gzip header: %v", ErrNotPcap, err)
		}
		// Concatenated gzip members (pigz, appended files) read as one.
		zr.Multistream(true)
		return compressErrs{zr, "gzip"}, zr, true, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		// One decoding goroutine at most: the reader runs beside a busy
		// pipeline, and a window bound keeps a hostile frame from claiming
		// gigabytes.
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(256<<20))
		if err != nil {
			return nil, nil, true, fmt.Errorf("%w: zstd: %v", ErrNotPcap, err)
		}
		return compressErrs{zr, "zstd"}, closeFunc(zr.Close), true, nil
	}
	return nil, nil, false, nil
}

// compressErrs turns a decompression failure into a truncation error, so a
// damaged compressed capture ends the run like a damaged plain one (exit 1,
// what came before kept) and an abrupt end of the stream is not a clean EOF.
type compressErrs struct {
	r    io.Reader
	kind string
}

func (c compressErrs) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: %s stream: %v", ErrTruncated, c.kind, err)
	}
	return n, err
}

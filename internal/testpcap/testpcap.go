// Package testpcap opens capture files for tests.
package testpcap

import (
	"bufio"
	"os"
	"testing"

	"github.com/google/gopacket/pcapgo"
)

// Open opens the classic pcap file at path for reading; the test fails if
// it cannot, and the file is closed when the test ends.
func Open(tb testing.TB, path string) *pcapgo.Reader {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	r, err := pcapgo.NewReader(bufio.NewReader(f))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

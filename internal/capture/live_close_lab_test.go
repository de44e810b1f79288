//go:build lab

package capture

import (
	"errors"
	"testing"
	"time"
)

// TestLiveCloseDuringRead: Close while a read waits in recvmsg returns
// after that read ends (never closing the descriptor under it), and the
// read reports ErrClosed. Run with -race.
func TestLiveCloseDuringRead(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srcs, err := OpenLive("lo", LiveOptions{Workers: 2, ReadTimeout: timeout, Filter: "udp port 9"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, len(srcs))
	for _, s := range srcs {
		go func() {
			for {
				_, _, err := s.ReadPacket()
				if err != nil && !errors.Is(err, ErrTimeout) {
					done <- err
					return
				}
				_ = s.Stats()
			}
		}()
	}
	time.Sleep(timeout / 2) // the readers wait in recvmsg now
	t0 := time.Now()
	for _, s := range srcs {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	took := time.Since(t0)
	for range srcs {
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("read after Close: %v, want ErrClosed", err)
		}
	}
	if took > 3*timeout {
		t.Errorf("Close took %v with a %v read timeout", took, timeout)
	}
	t.Logf("Close of %d sockets with reads pending took %v", len(srcs), took.Round(time.Millisecond))
}

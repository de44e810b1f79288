//go:build lab

package capture

import (
	"errors"
	"testing"
	"time"
)

// TestLiveCloseDuringRead: Close while a read waits in poll returns after
// that read ends (never closing the descriptor under it), and the read
// reports ErrClosed; the same for a capture of two interfaces, whose read
// waits on both. Run with -race.
func TestLiveCloseDuringRead(t *testing.T) {
	t.Run("one interface", func(t *testing.T) {
		srcs, err := OpenLive("lo", LiveOptions{Workers: 2, ReadTimeout: closeTimeout, Filter: "udp port 9"})
		if err != nil {
			t.Fatal(err)
		}
		closeDuringRead(t, srcs)
	})
	t.Run("two interfaces", func(t *testing.T) {
		_, here := twoLinks(t, "close")
		srcs, err := OpenLiveInterfaces(here, LiveOptions{Workers: 2, ReadTimeout: closeTimeout, Filter: "udp port 9"})
		if err != nil {
			t.Fatal(err)
		}
		closeDuringRead(t, srcs)
	})
}

const closeTimeout = 300 * time.Millisecond

func closeDuringRead(t *testing.T, srcs []Source) {
	const timeout = closeTimeout
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
	t.Logf("Close of %d sources with reads pending took %v", len(srcs), took.Round(time.Millisecond))
}

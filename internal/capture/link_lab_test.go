//go:build lab

package capture

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLiveLinkFlap: a live capture outlives its interface going down and
// coming back, and its interface being deleted and made again under the
// same name (a new index): every socket of the fanout group reports the
// change, none fails, and packets are read again afterwards.
func TestLiveLinkFlap(t *testing.T) {
	labLink(t)
	var (
		mu     sync.Mutex
		events = map[LinkState]int{}
		failed []error
	)
	srcs, err := OpenLive(labHere, LiveOptions{Workers: 2, ReadTimeout: 200 * time.Millisecond, Filter: "icmp",
		OnLink: func(iface string, s LinkState, err error) {
			mu.Lock()
			defer mu.Unlock()
			if iface != labHere {
				t.Errorf("OnLink for %s", iface)
			}
			events[s]++
			if s == LinkReopenFailed {
				failed = append(failed, err)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	var (
		read    atomic.Int64
		readErr = make(chan error, len(srcs))
		wg      sync.WaitGroup
	)
	for _, s := range srcs {
		wg.Add(1)
		go func(s Source) {
			defer wg.Done()
			for {
				_, _, err := s.ReadPacket()
				switch {
				case err == nil:
					read.Add(1)
				case errors.Is(err, ErrTimeout):
				case errors.Is(err, ErrClosed):
					return
				default:
					readErr <- err
					return
				}
			}
		}(s)
	}
	stop := func() {
		for _, s := range srcs {
			s.Close()
		}
		wg.Wait()
	}
	defer stop()
	count := func(s LinkState) int {
		mu.Lock()
		defer mu.Unlock()
		return events[s]
	}
	// waitFor polls cond for up to 5 s.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			select {
			case err := <-readErr:
				t.Fatalf("%s: a socket failed: %v", what, err)
			default:
			}
			if time.Now().After(end) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("%s: not within 5 s (packets read %d, link events %v, reopen errors %v)", what, read.Load(), events, failed)
			}
		}
	}
	ping := func(what string) {
		t.Helper()
		before := read.Load()
		sh(t, "ip", "netns", "exec", labNS, "ping", "-c", "3", "-i", "0.2", "-W", "1", "198.51.100.1")
		// 3 echo requests and 3 replies cross the link.
		waitFor(what, func() bool { return read.Load() >= before+6 })
	}

	ping("before any change")
	sh(t, "ip", "link", "set", labHere, "down")
	waitFor("both sockets report the interface down", func() bool { return count(LinkDown) == 2 })
	sh(t, "ip", "link", "set", labHere, "up")
	waitFor("both sockets report it up", func() bool { return count(LinkUp) == 2 })
	ping("after down and up")

	// Deleting one end of the pair deletes both; labLink makes them again,
	// and the interface here gets a new index.
	sh(t, "ip", "link", "del", labHere)
	waitFor("both sockets report the interface gone", func() bool { return count(LinkDown) == 4 })
	labLink(t)
	waitFor("both sockets open again on the new interface", func() bool { return count(LinkUp) == 4 })
	ping("on the interface made again")

	var downs uint64
	for _, s := range srcs {
		downs += s.Stats().LinkDowns
	}
	if downs != 4 || count(LinkReopenFailed) != 0 {
		t.Errorf("link downs counted %d, want 4; reopen failures %v", downs, failed)
	}
	select {
	case err := <-readErr:
		t.Errorf("a socket failed: %v", err)
	default:
	}
}

// TestLiveTwoCaptures: two captures on one interface (two sensors, or two
// instances of one) each read every packet: each has a fanout group of its
// own. With group ids made from the process id, two sensors whose ids
// differed only in the last bit shared one, and the kernel split the
// packets between them.
func TestLiveTwoCaptures(t *testing.T) {
	labLink(t)
	var caps [2][]Source
	for i := range caps {
		srcs, err := OpenLive(labHere, LiveOptions{Workers: 2, ReadTimeout: 200 * time.Millisecond, Filter: "icmp"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			for _, s := range srcs {
				s.Close()
			}
		}()
		caps[i] = srcs
	}
	var counts [2]atomic.Int64
	var wg sync.WaitGroup
	for i, srcs := range caps {
		for _, s := range srcs {
			wg.Add(1)
			go func(s Source) {
				defer wg.Done()
				for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
					if _, _, err := s.ReadPacket(); err == nil {
						counts[i].Add(1)
					} else if !errors.Is(err, ErrTimeout) {
						t.Error(err)
						return
					}
				}
			}(s)
		}
	}
	time.Sleep(300 * time.Millisecond)
	sh(t, "ip", "netns", "exec", labNS, "ping", "-c", "5", "-i", "0.2", "-W", "1", "198.51.100.1")
	wg.Wait()
	// 5 echo requests and 5 replies, seen by each capture.
	if a, b := counts[0].Load(), counts[1].Load(); a != 10 || b != 10 {
		t.Errorf("the two captures read %d and %d packets, want 10 each", a, b)
	}
}

package tlsstream

import (
	"slices"
	"testing"
	"time"
)

// TestFlights: records of one direction add up until the other side sends;
// an intercepting proxy's re-framing yields the same flights as the
// original framing.
func TestFlights(t *testing.T) {
	type rec struct {
		toServer bool
		n        int
	}
	tests := []struct {
		name   string
		recs   []rec
		want   []int
		closed int
	}{
		{"one record per message (direct)", []rec{{true, 2374}, {false, 586}, {true, 2924}, {false, 2112}},
			[]int{2374, -586, 2924, -2112}, 3},
		{"header and body apart (re-encrypted by a proxy)", []rec{{true, 250}, {true, 2124}, {false, 262}, {false, 930}, {true, 2924}, {false, 263}, {false, 2662}},
			[]int{2374, -1192, 2924, -2925}, 3},
		{"server first", []rec{{false, 74}, {false, 74}, {true, 90}}, []int{-148, 90}, 1},
		{"empty", nil, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var fl Flights
			t0 := time.Unix(0, 0)
			for i, r := range tc.recs {
				if !fl.Add(r.toServer, r.n, t0.Add(time.Duration(i)*time.Millisecond)) {
					t.Fatalf("record %d refused", i)
				}
			}
			if got := fl.Sizes(nil); !slices.Equal(got, tc.want) {
				t.Errorf("sizes %v, want %v", got, tc.want)
			}
			if fl.Closed() != tc.closed {
				t.Errorf("closed %d, want %d", fl.Closed(), tc.closed)
			}
			if n := len(tc.recs); n > 0 && !fl.At(fl.Len()-1).Last.Equal(t0.Add(time.Duration(n-1)*time.Millisecond)) {
				t.Errorf("last record time %v", fl.At(fl.Len()-1).Last)
			}
		})
	}
}

// TestFlightsBounded: the flight after MaxFlights is refused, never stored.
func TestFlightsBounded(t *testing.T) {
	var fl Flights
	for i := 0; i < MaxFlights; i++ {
		if !fl.Add(i%2 == 0, 100, time.Time{}) {
			t.Fatalf("flight %d refused", i)
		}
	}
	if fl.Full() {
		t.Fatal("full before the limit")
	}
	if !fl.Add(MaxFlights%2 == 1, 50, time.Time{}) {
		t.Fatal("a record continuing the last flight must be counted")
	}
	if fl.Add(MaxFlights%2 == 0, 100, time.Time{}) || !fl.Full() || fl.Len() != MaxFlights {
		t.Fatalf("flight beyond the limit accepted: len %d full %v", fl.Len(), fl.Full())
	}
	if got := fl.At(MaxFlights - 1).Bytes; got != 150 {
		t.Errorf("last flight %d bytes, want 150", got)
	}
}

func TestFlightsAllocs(t *testing.T) {
	var fl Flights
	n := testing.AllocsPerRun(100, func() {
		fl = Flights{}
		for i := 0; i < 20; i++ {
			fl.Add(i%3 == 0, 300, time.Time{})
		}
	})
	if n != 0 {
		t.Errorf("%v allocations", n)
	}
}

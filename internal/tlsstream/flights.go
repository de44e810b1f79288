package tlsstream

import "time"

// Flight is what one side sent between two turns of the other: the sum of
// its records' lengths.
type Flight struct {
	ToServer bool
	Bytes    int
	Records  int
	Last     time.Time // capture time of the flight's last record
}

// MaxFlights bounds the flights a Flights keeps.
const MaxFlights = 12

// Flights sums a connection's records into flights: the records of one
// direction between direction changes. An intercepting proxy (squid
// ssl-bump and the gateways that work the same way) re-encrypts what it
// relays and writes an HTTP header and its body as separate records, so one
// message arrives as several smaller records; the flight keeps the
// message's size. The zero value is ready to use and never allocates.
type Flights struct {
	f    [MaxFlights]flight
	n    int
	full bool
}

// flight is a Flight as kept: half its size, so that a connection's
// Flights (in every TLS connection's attempt inspector) stays small.
type flight struct {
	last     int64 // unix nanoseconds
	bytes    int32
	records  int32
	toServer bool
}

// Add counts one record of length bytes sent at t. It returns false, and
// counts nothing, when the record would start a flight beyond MaxFlights.
func (fl *Flights) Add(toServer bool, length int, t time.Time) bool {
	if fl.n > 0 && fl.f[fl.n-1].toServer == toServer {
		last := &fl.f[fl.n-1]
		last.bytes = int32(min(int64(last.bytes)+int64(length), 1<<31-1))
		last.records++
		last.last = t.UnixNano()
		return true
	}
	if fl.n == MaxFlights {
		fl.full = true
		return false
	}
	fl.f[fl.n] = flight{toServer: toServer, bytes: int32(min(length, 1<<31-1)), records: 1, last: t.UnixNano()}
	fl.n++
	return true
}

// Len is the number of flights begun (the last one may still grow).
func (fl *Flights) Len() int { return fl.n }

// Closed is the number of flights that can no longer grow: every one but
// the last, which the other side has not answered yet.
func (fl *Flights) Closed() int { return max(fl.n-1, 0) }

// At returns flight i (0 <= i < Len()).
func (fl *Flights) At(i int) Flight {
	f := &fl.f[i]
	return Flight{ToServer: f.toServer, Bytes: int(f.bytes), Records: int(f.records), Last: time.Unix(0, f.last)}
}

// Full reports that a record was refused because MaxFlights were begun.
func (fl *Flights) Full() bool { return fl.full }

// Sizes appends the flights' sizes to dst, client flights positive and
// server flights negative, so a detector can match a sequence of messages
// whatever the record framing.
func (fl *Flights) Sizes(dst []int) []int {
	for i := 0; i < fl.n; i++ {
		if fl.f[i].toServer {
			dst = append(dst, int(fl.f[i].bytes))
		} else {
			dst = append(dst, -int(fl.f[i].bytes))
		}
	}
	return dst
}

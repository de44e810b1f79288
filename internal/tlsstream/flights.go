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
	f    [MaxFlights]Flight
	n    int
	full bool
}

// Add counts one record of length bytes sent at t. It returns false, and
// counts nothing, when the record would start a flight beyond MaxFlights.
func (fl *Flights) Add(toServer bool, length int, t time.Time) bool {
	if fl.n > 0 && fl.f[fl.n-1].ToServer == toServer {
		last := &fl.f[fl.n-1]
		last.Bytes += length
		last.Records++
		last.Last = t
		return true
	}
	if fl.n == MaxFlights {
		fl.full = true
		return false
	}
	fl.f[fl.n] = Flight{ToServer: toServer, Bytes: length, Records: 1, Last: t}
	fl.n++
	return true
}

// Len is the number of flights begun (the last one may still grow).
func (fl *Flights) Len() int { return fl.n }

// Closed is the number of flights that can no longer grow: every one but
// the last, which the other side has not answered yet.
func (fl *Flights) Closed() int { return max(fl.n-1, 0) }

// At returns flight i (0 <= i < Len()).
func (fl *Flights) At(i int) Flight { return fl.f[i] }

// Full reports that a record was refused because MaxFlights were begun.
func (fl *Flights) Full() bool { return fl.full }

// Sizes appends the flights' sizes to dst, client flights positive and
// server flights negative, so a detector can match a sequence of messages
// whatever the record framing.
func (fl *Flights) Sizes(dst []int) []int {
	for i := 0; i < fl.n; i++ {
		if fl.f[i].ToServer {
			dst = append(dst, fl.f[i].Bytes)
		} else {
			dst = append(dst, -fl.f[i].Bytes)
		}
	}
	return dst
}

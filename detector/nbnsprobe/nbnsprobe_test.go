package nbnsprobe

import (
	"bytes"
	"testing"
)

func nbstat() []byte {
	b := []byte{0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	b = append(b, wildcard...)
	return append(b, 0, 0, 0x21, 0, 1)
}

func TestIsNBSTAT(t *testing.T) {
	nameQuery := nbstat()
	nameQuery[12+35] = 0x20 // NB instead of NBSTAT
	other := nbstat()
	copy(other[13:], bytes.Repeat([]byte{'E'}, 4))
	response := nbstat()
	response[2] = 0x84
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"nbstat query for *", nbstat(), true},
		{"name query", nameQuery, false},
		{"other name", other, false},
		{"response", response, false},
		{"empty", nil, false},
	}
	for _, tc := range tests {
		if got := IsNBSTAT(tc.b); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzIsNBSTAT(f *testing.F) {
	f.Add(nbstat())
	f.Fuzz(func(t *testing.T, b []byte) { IsNBSTAT(b) })
}

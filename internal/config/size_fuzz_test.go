package config

import "testing"

// FuzzParseByteSize: any text either is refused or gives a non-negative
// size whose String form reads back as the same size.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"256MiB", "1GiB", "512 KiB", "300MB", "10B", "0", "-1", "MiB", "9223372036854775807", "4611686018427387904KiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("%q gave %d", s, n)
		}
		back, err := ParseByteSize(n.String())
		if err != nil || back != n {
			t.Fatalf("%q gave %d, written %q, read back %d, %v", s, n, n.String(), back, err)
		}
	})
}

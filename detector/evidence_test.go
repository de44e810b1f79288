package detector

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// TestREADMEEvidenceTable keeps README.md's evidence table equal to Kinds.
func TestREADMEEvidenceTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- evidence-table:begin -->\n", "<!-- evidence-table:end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README.md has no evidence-table markers")
	}
	want := EvidenceTable()
	if got := s[i+len(begin) : j]; got != want {
		if os.Getenv("SEWATCH_UPDATE_README") != "" {
			if err := os.WriteFile("../README.md", []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's evidence table differs from detector.Kinds (SEWATCH_UPDATE_README=1 go test ./detector rewrites it):\n%s", want)
	}
}

// TestKindsRules: the rules that keep one connection from alerting hold
// for the table as written.
func TestKindsRules(t *testing.T) {
	if UnitCap >= Threshold || MinUnits < 2 {
		t.Fatalf("unit cap %.2f, threshold %.2f, min units %d: one unit could alert", UnitCap, Threshold, MinUnits)
	}
	for _, s := range Kinds {
		if s.Source == "" || s.Detector == "" {
			t.Errorf("%s: no source or detector", s.Kind)
		}
		if s.Class == ClassCorroborator && (s.Strong || s.PerFlow) {
			t.Errorf("%s: a corroborator can neither carry an alert nor count twice", s.Kind)
		}
		if s.Class != ClassOwnSignature && (s.Weight <= 0 || s.Weight > 1) {
			t.Errorf("%s: weight %.2f", s.Kind, s.Weight)
		}
		if s.NeedsPrimary && s.Strong {
			t.Errorf("%s: needs a primary yet carries an alert", s.Kind)
		}
	}
	if SpecOf("no.such.kind").Class != ClassOwnSignature {
		t.Error("an unknown kind must not be scored")
	}
}

// TestCanAlertIsNecessary: over random sessions (kinds from the weights
// table, up to four flows, TCP or UDP), whenever CanAlert says no, Score
// does not alert; and CanAlert says yes for some that do alert, so it is
// not vacuous.
func TestCanAlertIsNecessary(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var kinds []Kind
	for _, s := range Kinds {
		if s.Class != ClassOwnSignature {
			kinds = append(kinds, s.Kind)
		}
	}
	t0 := time.Unix(1700000000, 0)
	alerted, pruned := 0, 0
	for i := 0; i < 20000; i++ {
		var evs []Evidence
		for j := r.IntN(6) + 1; j > 0; j-- {
			id := int64(r.IntN(4) + 1)
			proto := uint8(6)
			if id == 4 {
				proto = 17
			}
			evs = append(evs, Evidence{Kind: kinds[r.IntN(len(kinds))], Time: t0.Add(time.Duration(r.IntN(3000)) * time.Millisecond),
				Flow: Flow{ID: id, Proto: proto, Start: t0.Add(time.Duration(id) * 100 * time.Millisecond)}})
		}
		sc := Score(evs)
		if !CanAlert(evs) {
			pruned++
			if sc.OK {
				t.Fatalf("CanAlert says no, Score alerts: %+v", evs)
			}
		} else if sc.Alerts() {
			alerted++
		}
	}
	if alerted == 0 || pruned == 0 {
		t.Errorf("%d alerting and %d pruned random sessions: the test exercises nothing", alerted, pruned)
	}
	t.Logf("%d alerting, %d pruned of 20000", alerted, pruned)
}

func TestProxyOpening(t *testing.T) {
	tests := []struct {
		name string
		pl   string
		want Mode
	}{
		{"HTTP CONNECT", "CONNECT 10.0.0.2:443 HTTP/1.0\r\n\r\n", ModeHTTPProxy},
		{"SOCKS5 greeting, one method", "\x05\x01\x00", ModeSOCKS5},
		{"SOCKS5 greeting, two methods", "\x05\x02\x00\x02", ModeSOCKS5},
		{"SOCKS5 greeting whose method count does not fit", "\x05\x02\x00", ModeNone},
		{"SOCKS4 connect", "\x04\x01\x01\xbb\x0a\x00\x00\x02\x00", ModeSOCKS4},
		{"SOCKS4 bind is not a connect", "\x04\x02\x01\xbb\x0a\x00\x00\x02\x00", ModeNone},
		{"GET", "GET / HTTP/1.1\r\n\r\n", ModeNone},
		{"lowercase connect", "connect a:443 HTTP/1.0\r\n\r\n", ModeNone},
		{"TLS", "\x16\x03\x01\x00\x40\x01", ModeNone},
		{"empty", "", ModeNone},
	}
	for _, tc := range tests {
		if got := ProxyOpening([]byte(tc.pl)); got != tc.want {
			t.Errorf("%s: ProxyOpening = %q, want %q", tc.name, got, tc.want)
		}
	}
}

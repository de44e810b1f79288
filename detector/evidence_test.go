package detector

import (
	"os"
	"strings"
	"testing"
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

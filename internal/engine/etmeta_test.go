package engine

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sewatch/sewatch/detector"
)

// TestGoldenETMetadata: every alert of every golden file carries the
// Emerging Threats metadata keys, with the values of its signature's row in
// detector.Signatures, so SIEM rules written for ET alerts (keyed on
// mitre_technique_id, signature_severity, ...) see sewatch's alerts.
func TestGoldenETMetadata(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/golden/*.eve.jsonl")
	alerts := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev struct {
				EventType string `json:"event_type"`
				Alert     struct {
					SignatureID int                 `json:"signature_id"`
					Severity    int                 `json:"severity"`
					Metadata    map[string][]string `json:"metadata"`
				} `json:"alert"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if ev.EventType != "alert" {
				continue
			}
			alerts++
			sig, ok := detector.ByID(ev.Alert.SignatureID)
			if !ok {
				t.Fatalf("%s: unknown signature %d", f, ev.Alert.SignatureID)
			}
			want := sig.Meta.EVEMetadata()
			if _, ok := ev.Alert.Metadata["allowlisted"]; ok {
				want["signature_severity"] = []string{"Informational"}
			}
			for _, k := range detector.ETKeys {
				if !reflect.DeepEqual(ev.Alert.Metadata[k], want[k]) {
					t.Errorf("%s sid %d: metadata %s = %q, want %q", filepath.Base(f), sig.ID, k, ev.Alert.Metadata[k], want[k])
				}
			}
		}
		fh.Close()
	}
	if alerts < 10 {
		t.Fatalf("only %d alerts in the golden files", alerts)
	}
}

// TestSignatureMetadataTable: every signature has ATT&CK techniques and the
// ET keys in ET's forms.
func TestSignatureMetadataTable(t *testing.T) {
	for _, s := range detector.Signatures {
		m := s.Meta.EVEMetadata()
		if len(s.Meta.Techniques) == 0 {
			t.Errorf("%d: no ATT&CK technique", s.ID)
		}
		for _, k := range detector.ETKeys {
			if len(m[k]) == 0 {
				t.Errorf("%d: metadata %s empty", s.ID, k)
			}
		}
		if n := len(m["mitre_tactic_id"]); len(m["mitre_technique_id"]) != n || len(m["mitre_tactic_name"]) != n || len(m["mitre_technique_name"]) != n {
			t.Errorf("%d: ATT&CK lists not aligned: %v", s.ID, m)
		}
	}
	if got := detector.Signatures[0].Meta.EVEMetadata()["mitre_tactic_name"]; !reflect.DeepEqual(got, []string{"Command_And_Control"}) {
		t.Errorf("ET form of the tactic name: %q", got)
	}
}

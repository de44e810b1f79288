// Package archtest keeps the data path's shape: each stage imports only
// what it may, and every package says what it is.
package archtest

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/sewatch/sewatch"

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	GoFiles    []string
}

func list(t *testing.T) []pkg {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	var ps []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// TestImports: detectors see decoded packets and TLS parsing only; outputs
// know nothing internal; EVE encoding stands alone; only cmd links the
// registries of every detector and output.
func TestImports(t *testing.T) {
	for _, p := range list(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			bad := ""
			switch {
			case strings.HasPrefix(rel, "detector") && strings.HasPrefix(dep, "internal/") &&
				dep != "internal/decode" && dep != "internal/tlshello" && dep != "internal/tlsstream" && dep != "internal/membudget":
				bad = "detectors may import only internal/decode, internal/tlshello, internal/tlsstream and internal/membudget"
			case strings.HasPrefix(rel, "outputs") && strings.HasPrefix(dep, "internal/"):
				bad = "outputs import no internal package"
			case rel == "internal/eve" && strings.HasPrefix(dep, "internal/"):
				bad = "internal/eve imports no other internal package"
			case strings.HasSuffix(dep, "/all") && !strings.HasPrefix(rel, "cmd/"):
				bad = "only cmd links every detector and output"
			}
			if bad != "" {
				t.Errorf("%s imports %s: %s", rel, dep, bad)
			}
		}
	}
}

// TestPackageDocs: every package has a doc comment.
func TestPackageDocs(t *testing.T) {
	for _, p := range list(t) {
		documented := false
		for _, f := range p.GoFiles {
			af, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				documented = true
			}
		}
		if !documented && len(p.GoFiles) > 0 {
			t.Errorf("package %s has no doc comment", p.ImportPath)
		}
	}
}

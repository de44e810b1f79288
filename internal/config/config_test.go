package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/sewatch/sewatch/outputs/file"
	_ "github.com/sewatch/sewatch/outputs/stdout"
)

func TestConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata configs")
	}
	wantErr := map[string]string{
		"unknown-key.bad.yaml":        "field colour not found",
		"workers.bad.yaml":            "capture.workers must be 1-64",
		"threshold.bad.yaml":          "verdict.threshold",
		"output-type.bad.yaml":        "unknown output type",
		"file-no-path.bad.yaml":       "file output needs a path",
		"output-option.bad.yaml":      "field compress not found",
		"session-gap.bad.yaml":        "session-gap must be at least 20s",
		"log-level.bad.yaml":          "log-level",
		"timeout-negative.bad.yaml":   "flow.udp-timeout must be positive",
		"allow-action.bad.yaml":       "action must be suppress or downgrade",
		"home-net.bad.yaml":           "10.0.0.0/33",
		"two-documents.bad.yaml":      "line 2: a second YAML document",
		"log-format.bad.yaml":         "log-format must be text or json",
		"ring-block-size.bad.yaml":    "capture.ring-block-size 3000000 must be a power of two",
		"ring-block-snaplen.bad.yaml": "capture.ring-block-size 65536 cannot hold one frame of capture.snaplen 262144: at least 524288",
		"ring-blocks.bad.yaml":        "capture.ring-blocks 1: at least 2",
		"flow-buffers-small.bad.yaml": "memory.flow-buffers must be at least 1MiB, got 64KiB",
		"flow-buffers-unit.bad.yaml":  "line 2: \"12 parsecs\" is not a size",
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			c, err := Load(f)
			if strings.HasSuffix(name, ".good.yaml") {
				if err != nil {
					t.Fatalf("good config rejected: %v", err)
				}
				if c.Capture.Workers < 1 || c.Verdict.Threshold <= 0 {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			want, ok := wantErr[name]
			if !ok {
				t.Fatalf("no expected error listed for %s", name)
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want it to contain %q", err, want)
			}
		})
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "empty.yaml")
	os.WriteFile(p, nil, 0o644)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Flow.TCP != 10*time.Minute || c.Verdict.SessionGap != 2*time.Minute || c.Location() != time.UTC {
		t.Errorf("defaults: %+v", c)
	}
}

func TestByteSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{"262144", 262144, false},
		{"256MiB", 256 << 20, false},
		{"1GiB", 1 << 30, false},
		{"512 KiB", 512 << 10, false},
		{"300MB", 300e6, false},
		{"10B", 10, false},
		{"-1", 0, true},
		{"MiB", 0, true},
		{"1.5GiB", 0, true},
		{"99999999999999GiB", 0, true},
	} {
		got, err := ParseByteSize(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
	}
	if s := ByteSize(256 << 20).String(); s != "256MiB" {
		t.Errorf("String = %q", s)
	}
	c, err := Parse([]byte("memory:\n  flow-buffers: 64MiB\n"))
	if err != nil || c.Memory.FlowBuffers != 64<<20 {
		t.Errorf("flow-buffers: %v, %v", c.Memory.FlowBuffers, err)
	}
	if c.Memory.HugePages != nil {
		t.Errorf("huge-pages unset parsed as %v, want nil (on)", *c.Memory.HugePages)
	}
	c, err = Parse([]byte("memory:\n  huge-pages: false\n"))
	if err != nil || c.Memory.HugePages == nil || *c.Memory.HugePages {
		t.Errorf("huge-pages: false parsed as %v, %v", c.Memory.HugePages, err)
	}
}

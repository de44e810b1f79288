package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestMain lets the test binary act as sewatch itself when re-executed,
// so the tests drive the real command line, exit codes and streams.
func TestMain(m *testing.M) {
	if os.Getenv("SEWATCH_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func sewatch(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SEWATCH_TEST_MAIN=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

const direct = "../../testdata/pcap/se-direct-443.pcap"

func TestCLI(t *testing.T) {
	golden, err := os.ReadFile("../../testdata/golden/se-direct-443.eve.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	raw, _ := os.ReadFile(direct)
	truncated := filepath.Join(dir, "truncated.pcap")
	os.WriteFile(truncated, raw[:len(raw)/2+7], 0o644)
	notPcap := filepath.Join(dir, "notes.txt")
	os.WriteFile(notPcap, []byte("hello, this is not a capture\n"), 0o644)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("sensor-name: tap1\noutputs:\n  - type: stdout\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("sensor-name: tap1\nno-such-key: 1\n"), 0o644)
	eve := filepath.Join(dir, "log", "eve.json")
	twoDocs := filepath.Join(dir, "two.yaml")
	os.WriteFile(twoDocs, []byte("sensor-name: tap1\n---\nsensor-name: tap2\n"), 0o644)

	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // exact, when set
		stdoutHas  string
		stderrHas  string
		stderrNot  string
		fileEquals string
	}{
		{name: "pcap to stdout", args: []string{"-r", direct}, code: 0, stdout: string(golden)},
		{name: "missing file", args: []string{"-r", filepath.Join(dir, "nope.pcap")}, code: 1, stdout: "", stderrHas: "no such file"},
		{name: "not a pcap", args: []string{"-r", notPcap}, code: 1, stdout: "", stderrHas: "not a pcap"},
		// The alert comes before the damage; the session's flow event then
		// ends where the capture does.
		{name: "truncated keeps earlier alerts", args: []string{"-r", truncated}, code: 1, stdoutHas: firstLine(golden), stderrHas: "truncated"},
		{name: "file output", args: []string{"-r", direct, "-o", "file:" + eve}, code: 0, stdout: "", fileEquals: string(golden)},
		{name: "filter excludes the session", args: []string{"-r", direct, "udp"}, code: 0, stdoutHas: "UDP acceleration"},
		{name: "check good config", args: []string{"-c", good, "--check-config"}, code: 0, stderrHas: "configuration OK"},
		{name: "check bad config", args: []string{"-c", bad, "--check-config"}, code: 2, stderrHas: "no-such-key"},
		{name: "unknown output", args: []string{"-r", direct, "-o", "carrier-pigeon"}, code: 2, stderrHas: "unknown output type"},
		{name: "no source", args: nil, code: 2, stderrHas: "exactly one of -r FILE or -i IFACE"},
		{name: "help", args: []string{"-h"}, code: 0, stderrHas: "-check-config"},
		{name: "unknown flag", args: []string{"--no-such-flag"}, code: 2, stderrHas: "flag provided but not defined"},
		{name: "negative workers", args: []string{"-r", direct, "--workers", "-1"}, code: 2, stderrHas: "--workers must be 1-64"},
		{name: "flow buffer budget", args: []string{"-r", direct, "--flow-buffer-budget", "2MiB"}, code: 0, stdout: string(golden), stderrHas: "buffers_shed=0"},
		{name: "flow buffer budget too small", args: []string{"-r", direct, "--flow-buffer-budget", "4KiB"}, code: 2, stderrHas: "memory.flow-buffers must be at least 1MiB"},
		{name: "flow buffer budget not a size", args: []string{"-r", direct, "--flow-buffer-budget", "lots"}, code: 2, stderrHas: "--flow-buffer-budget: \"lots\" is not a size"},
		{name: "second YAML document", args: []string{"-c", twoDocs, "-r", direct}, code: 2, stderrHas: "second YAML document"},
		{name: "bad log format", args: []string{"-r", direct, "--log-format", "xml"}, code: 2, stderrHas: "log-format must be text or json"},
		{name: "missing config file", args: []string{"-c", filepath.Join(dir, "nope.yaml"), "-r", direct}, code: 2, stderrHas: "no such file"},
		{name: "malformed elasticsearch URL hides the password", args: []string{"-r", direct, "-o", "elasticsearch:http://elastic:s3cret@[::1"},
			code: 2, stderrHas: "REDACTED@", stderrNot: "s3cret"},
		{name: "output error named once", args: []string{"-r", direct, "-o", "file:" + filepath.Join(notPcap, "eve.json")},
			code: 1, stderrHas: "outputs[0] (file): ", stderrNot: "outputs[0] (file): outputs[0] (file):"},
		{name: "version", args: []string{"--version"}, code: 0, stdoutHas: "sewatch ", stderrNot: "level="},
		{name: "json logs", args: []string{"-r", direct, "--log-format", "json", "-o", "file:" + filepath.Join(dir, "j", "eve.json")},
			code: 0, stderrHas: `{"time":`, stderrNot: "level=INFO"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "filter excludes the session" {
				if _, err := exec.LookPath("tcpdump"); err != nil && os.Getenv("SEWATCH_REQUIRE_TOOLS") == "" {
					t.Skip("tcpdump not installed (CI installs it)")
				}
			}
			out, errOut, code := sewatch(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tc.code, errOut)
			}
			// A run that read packets ends with one stats event.
			out, nstats := splitStats(out)
			if wantStats := slices.Contains(tc.args, "-r") && (tc.stdout != "" || tc.stdoutHas != ""); (nstats == 1) != wantStats {
				t.Errorf("%d stats events on stdout, want stats %v", nstats, wantStats)
			}
			if tc.stdout != "" || tc.stdoutHas == "" {
				if out != tc.stdout {
					t.Errorf("stdout:\n%s\nwant:\n%s", out, tc.stdout)
				}
			}
			if tc.stdoutHas != "" && !strings.Contains(out, tc.stdoutHas) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdoutHas, out)
			}
			if tc.stderrHas != "" && !strings.Contains(errOut, tc.stderrHas) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderrHas, errOut)
			}
			if tc.stderrNot != "" && strings.Contains(errOut, tc.stderrNot) {
				t.Errorf("stderr has %q:\n%s", tc.stderrNot, errOut)
			}
			if strings.Contains(errOut, `"event_type"`) {
				t.Errorf("EVE on stderr: %s", errOut)
			}
			if tc.fileEquals != "" {
				b, err := os.ReadFile(eve)
				alerts, nstats := splitStats(string(b))
				if err != nil || alerts != tc.fileEquals || nstats != 1 {
					t.Errorf("eve.json = %q, %v", b, err)
				}
			}
		})
	}
}

// splitStats removes EVE stats lines from out and counts them.
func splitStats(out string) (string, int) {
	var keep []string
	n := 0
	for _, l := range strings.SplitAfter(out, "\n") {
		if strings.Contains(l, `"event_type":"stats"`) {
			n++
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, ""), n
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i+1]
	}
	return s
}

// An output's `types` (Suricata's eve-log types) choose the event types it
// takes: a file of alerts only beside one of everything; an unknown type
// is a configuration error.
func TestOutputEventTypes(t *testing.T) {
	dir := t.TempDir()
	alerts, all := filepath.Join(dir, "alerts.json"), filepath.Join(dir, "all.json")
	cfg := filepath.Join(dir, "sewatch.yaml")
	os.WriteFile(cfg, []byte("outputs:\n  - type: file\n    types: [alert]\n    options: {path: "+alerts+"}\n"+
		"  - type: file\n    options: {path: "+all+"}\n"), 0o644)
	if _, errOut, code := sewatch(t, "-c", cfg, "-r", direct); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	kinds := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var ev struct {
				EventType string `json:"event_type"`
			}
			json.Unmarshal([]byte(l), &ev)
			ks = append(ks, ev.EventType)
		}
		sort.Strings(ks)
		return strings.Join(ks, " ")
	}
	if got := kinds(alerts); got != "alert" {
		t.Errorf("the alerts-only file has %q", got)
	}
	if got := kinds(all); got != "alert flow stats" {
		t.Errorf("the file of everything has %q", got)
	}
	// -o keeps a configured output's settings of the same type, its types too.
	viaFlag := filepath.Join(dir, "flag.json")
	if _, errOut, code := sewatch(t, "-c", cfg, "-o", "file:"+viaFlag, "-r", direct); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := kinds(viaFlag); got != "alert" {
		t.Errorf("-o file: with a configured alerts-only file output wrote %q", got)
	}
	os.WriteFile(cfg, []byte("outputs:\n  - type: stdout\n    types: [alerts]\n"), 0o644)
	if _, errOut, code := sewatch(t, "-c", cfg, "-r", direct); code != 2 || !strings.Contains(errOut, `"alerts" is not an event type`) {
		t.Errorf("unknown type: exit %d, want 2 with the reason: %s", code, errOut)
	}
}

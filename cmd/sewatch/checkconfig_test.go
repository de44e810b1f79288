package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// --check-config checks what the run needs: each problem on its own line,
// exit 1; --offline skips only the network checks.
func TestCheckConfigFindsWhatTheRunNeeds(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there any more
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	os.WriteFile(filepath.Join(dir, "not-a-dir"), nil, 0o644)
	bad := write("bad.yaml", `vpngate-list: `+dir+`/missing-vpngate.csv
capture:
  filter: "tcp port and"
outputs:
  - type: kafka
    options:
      brokers: [`+dead+`]
      topic: eve
      tls: {ca-file: `+dir+`/missing-ca.pem}
  - type: elasticsearch
    options:
      addresses: [http://`+dead+`]
      username: elastic
      password-file: `+dir+`/missing-pw
  - type: file
    options: {path: `+dir+`/not-a-dir/eve.json}
`)
	unreachable := write("unreachable.yaml", "outputs:\n  - type: kafka\n    options: {brokers: ["+dead+"], topic: eve}\n")
	ifaces := write("ifaces.yaml", "capture:\n  interfaces: [lo, sewatch-nosuch0]\n")
	pcap, err := filepath.Abs("../../testdata/pcap/se-direct-443.pcap")
	if err != nil {
		t.Fatal(err)
	}

	haveTcpdump := true
	if _, err := exec.LookPath("tcpdump"); err != nil {
		haveTcpdump = false
	}
	tests := []struct {
		name  string
		args  []string
		code  int
		lines []string // each must be one line of stderr starting "sewatch: check: "
		has   string
	}{
		{"every problem on its own line", []string{"-c", bad, "--check-config"}, 1, []string{
			"vpngate-list: ", "capture.filter \"tcp port and\": ", "outputs[0] (kafka): tls.ca-file: ",
			"outputs[1] (elasticsearch): password-file: ", "outputs[2] (file): ",
		}, "configuration has 5 problem(s)"},
		{"unreachable broker", []string{"-c", unreachable, "--check-config"}, 1, []string{"outputs[0] (kafka): "}, "connection refused"},
		{"offline skips the network", []string{"-c", unreachable, "--check-config", "--offline"}, 0, nil, "configuration OK: "},
		// The live interface: it must exist (no privilege needed to check).
		{"live interface missing", []string{"--check-config", "--offline", "-i", "sewatch-nosuch0"}, 1,
			[]string{"-i: interface sewatch-nosuch0: "}, "no such network interface"},
		{"live interface present", []string{"--check-config", "--offline", "-i", "lo"}, 0, nil, "configuration OK: "},
		// Several interfaces (-i A,B or -i A -i B): each is checked.
		{"one of two interfaces missing", []string{"--check-config", "--offline", "-i", "lo,sewatch-nosuch0"}, 1,
			[]string{"-i: interface sewatch-nosuch0: "}, "no such network interface"},
		{"an interface listed twice", []string{"--check-config", "--offline", "-i", "lo", "-i", "lo"}, 1,
			[]string{"-i: interface lo is listed twice"}, "configuration has 1 problem(s)"},
		// capture.interfaces: the input when the command line names none.
		{"configured interfaces", []string{"-c", ifaces, "--check-config", "--offline"}, 1,
			[]string{"capture.interfaces: interface sewatch-nosuch0: "}, "no such network interface"},
		{"-i over configured interfaces", []string{"-c", ifaces, "--check-config", "--offline", "-i", "lo"}, 0, nil, "configuration OK: "},
		{"-r over configured interfaces", []string{"-c", ifaces, "--check-config", "--offline", "-r", pcap}, 0, nil, "configuration OK: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !haveTcpdump && strings.Contains(tc.name, "every problem") {
				if os.Getenv("SEWATCH_REQUIRE_TOOLS") != "" {
					t.Fatal("tcpdump not installed")
				}
				t.Skip("tcpdump not installed (CI installs it)")
			}
			_, errOut, code := sewatch(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errOut)
			}
			var checks []string
			for _, l := range strings.Split(errOut, "\n") {
				if strings.HasPrefix(l, "sewatch: check: ") {
					checks = append(checks, strings.TrimPrefix(l, "sewatch: check: "))
				}
			}
			if len(checks) != len(tc.lines) {
				t.Fatalf("%d problem lines, want %d:\n%s", len(checks), len(tc.lines), errOut)
			}
			for i, want := range tc.lines {
				if !strings.HasPrefix(checks[i], want) {
					t.Errorf("line %d = %q, want it to start with %q", i, checks[i], want)
				}
			}
			if !strings.Contains(errOut, tc.has) {
				t.Errorf("stderr lacks %q:\n%s", tc.has, errOut)
			}
		})
	}
}

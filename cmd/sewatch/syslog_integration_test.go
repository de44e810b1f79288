//go:build integration

package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freeUDPPort returns a UDP port nothing is bound to now (freePort's, for
// a server that takes only fixed ports).
func freeUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
}

// TestPcapToRsyslog: `sewatch -r` with the syslog output delivers every
// event stdout shows to a real rsyslogd (Debian package rsyslog), once over
// UDP and once over TCP, each as one message of facility local5, severity
// info, program sewatch, whose text is the EVE line. rsyslogd must be on
// PATH or in /usr/sbin: the test fails without it under
// SEWATCH_REQUIRE_TOOLS (CI) and is skipped elsewhere.
func TestPcapToRsyslog(t *testing.T) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/rsyslogd"); serr == nil {
			bin, err = "/usr/sbin/rsyslogd", nil
		}
	}
	if err != nil {
		if os.Getenv("SEWATCH_REQUIRE_TOOLS") != "" {
			t.Fatal("rsyslogd not found (Debian package rsyslog; .ci/run installs it)")
		}
		t.Skip("rsyslogd not found (Debian package rsyslog)")
	}
	dir := t.TempDir()
	udp, tcp := freeUDPPort(t), strconv.Itoa(freePort(t))
	out := filepath.Join(dir, "out.log")
	cfg := filepath.Join(dir, "rsyslog.conf")
	// sewatch's alerts are 2-5 KiB; rsyslog's default limit is 8 KiB.
	writeFile(t, cfg, `global(workDirectory="`+dir+`" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="`+udp+`")
input(type="imtcp" address="127.0.0.1" port="`+tcp+`")
template(name="eve" type="string" string="%syslogfacility-text%.%syslogseverity-text% %programname% %msg%\n")
action(type="omfile" file="`+out+`" template="eve")
`)
	var logs syncBuffer
	d := exec.Command(bin, "-n", "-f", cfg, "-i", filepath.Join(dir, "rsyslogd.pid"))
	d.Stdout, d.Stderr = &logs, &logs
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { d.Process.Kill(); d.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+tcp); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd did not listen on %s:\n%s", tcp, logs.String())
		}
	}

	var want []string
	for _, to := range []string{"udp://127.0.0.1:" + udp, "tcp://127.0.0.1:" + tcp} {
		stdout, errOut, code := sewatch(t, "-r", "../../testdata/pcap/se-via-http-proxy.pcap", "-o", "stdout", "-o", "syslog:"+to)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", to, code, errOut)
		}
		for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
			want = append(want, "local5.info sewatch "+l)
		}
	}
	var got []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(out)
		got = got[:0]
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "" {
				// rsyslog keeps the space after the tag's colon in msg.
				f := strings.SplitN(l, " ", 3)
				if len(f) == 3 {
					l = f[0] + " " + f[1] + " " + strings.TrimSpace(f[2])
				}
				got = append(got, l)
			}
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rsyslogd stored %d messages, want %d (stdout's lines over UDP, then over TCP)\ngot:\n%s\nwant:\n%s\nrsyslogd:\n%s",
			len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"), logs.String())
	}
	if !strings.Contains(strings.Join(want, "\n"), `"event_type":"alert"`) {
		t.Error("no alert among the events")
	}
}

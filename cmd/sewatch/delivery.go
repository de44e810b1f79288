package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/config"
	"github.com/sewatch/sewatch/internal/vpngate"
	"github.com/sewatch/sewatch/outputs"
)

// exitUndelivered is the exit status of a pcap run that could not deliver
// every event to every output (see README, "Exit status").
const exitUndelivered = 3

// undeliveredError ends a pcap run in which some output did not deliver
// every event: exit status 3 (or the cause's, when the run also failed
// otherwise), one line per output.
type undeliveredError struct {
	lines []string
	cause error
}

func (u undeliveredError) Error() string { return strings.Join(u.lines, "; ") }
func (u undeliveredError) Unwrap() error { return u.cause }

// undeliveredLines is one line per output that did not deliver every event,
// and one per spool directory of an output absent from this run.
func undeliveredLines(stats []outputs.Stats, orphans []outputs.OrphanSpool) []string {
	var lines []string
	for _, st := range stats {
		n := st.Undelivered()
		if n == 0 {
			continue
		}
		var parts []string
		if st.Dropped > 0 {
			why := "dropped"
			if st.SpoolDir == "" {
				why += ", no spool configured"
			} else {
				why += ", spool full"
			}
			parts = append(parts, fmt.Sprintf("%d %s", st.Dropped, why))
		}
		if st.Rejected > 0 {
			parts = append(parts, fmt.Sprintf("%d rejected by the sink", st.Rejected))
		}
		if st.InSpool > 0 {
			parts = append(parts, fmt.Sprintf("%d wait in the spool %s for the next run", st.InSpool, st.SpoolDir))
		}
		lines = append(lines, fmt.Sprintf("output %s: %d events not delivered (%s)", st.Identity, n, strings.Join(parts, "; ")))
	}
	for _, o := range orphans {
		id := o.Identity
		if id == "" {
			id = "an output of an older version"
		}
		lines = append(lines, fmt.Sprintf("spool %s holds %d events for %s, which is not configured in this run", o.Dir, o.Events, id))
	}
	return lines
}

// stallTimeout: in pcap mode an output that makes no progress for the flush
// deadline gives up (drops and counts) instead of blocking the run for ever.
func stallTimeout(cfg config.Config, live bool) time.Duration {
	if live {
		return 0
	}
	return cfg.Delivery.FlushDeadline
}

// runCheckConfig checks what a run needs beyond the configuration's syntax:
// every file it will read, the live interfaces (ifaces, named by ifaceKey
// in its messages, if given: each exists and is of a kind live capture
// decodes, all of one link type), the BPF filter (for that link type), the
// spool directory, and (unless offline) that
// every output's destination answers and accepts the credentials. Each
// problem is one line; the exit status is 1 if any.
func runCheckConfig(w io.Writer, cfg config.Config, detectors int, ifaces []string, ifaceKey string, offline bool) int {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	if cfg.VPNGateList != "" {
		if _, err := vpngate.Load(cfg.VPNGateList); err != nil {
			add("vpngate-list: %v", err)
		}
	}
	// Ethernet: what live capture and nearly every pcap use.
	link, linkOK := uint32(1), true
	listed := map[string]bool{}
	for i, name := range ifaces {
		l, err := capture.InterfaceLinkType(name)
		switch {
		case listed[name]:
			add("%s: interface %s is listed twice", ifaceKey, name)
		case err != nil:
			add("%s: %v", ifaceKey, err)
			linkOK = false
		case i == 0:
			link = l
		case l != link && linkOK:
			add("%s: interfaces %s and %s carry different link types (%d and %d): capture them in two runs", ifaceKey, ifaces[0], name, link, l)
		}
		listed[name] = true
	}
	if cfg.Capture.Filter != "" && linkOK {
		if _, err := capture.CompileFilter(cfg.Capture.Filter, link); err != nil {
			add("capture.filter %q: %v", cfg.Capture.Filter, err)
		}
	}
	if d := cfg.Delivery.SpoolDir; d != "" {
		if err := writableDir(d); err != nil {
			add("delivery.spool-dir: %v", err)
		}
	}
	filesOK := make([]bool, len(cfg.Outputs))
	for i, o := range cfg.Outputs {
		filesOK[i] = true
		for _, f := range optionFiles(o.Options, "") {
			if fh, err := os.Open(f.path); err != nil {
				add("%s: %s: %v", o.Name, f.key, err)
				filesOK[i] = false
			} else {
				fh.Close()
			}
		}
	}
	if !offline {
		for i, o := range cfg.Outputs {
			if !filesOK[i] {
				continue // the missing file is the problem already reported
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			if err := outputs.Check(ctx, o); err != nil {
				add("%s: %v", o.Name, err)
			}
			cancel()
		}
	}
	for _, p := range problems {
		fmt.Fprintf(w, "sewatch: check: %s\n", oneLine(p))
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "configuration has %d problem(s)\n", len(problems))
		return 1
	}
	net := "outputs reachable"
	if offline {
		net = "network checks skipped"
	}
	fmt.Fprintf(w, "configuration OK: %d detectors, %d outputs (%s)\n", detectors, len(cfg.Outputs), net)
	return 0
}

type optionFile struct{ key, path string }

// optionFiles finds every "*-file" option (tls ca-file, cert-file,
// key-file, sasl password-file, ...) at any depth of an output's options.
func optionFiles(opts map[string]any, prefix string) []optionFile {
	var out []optionFile
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := opts[k].(type) {
		case string:
			if strings.HasSuffix(k, "-file") && v != "" {
				out = append(out, optionFile{prefix + k, v})
			}
		case map[string]any:
			out = append(out, optionFiles(v, prefix+k+".")...)
		}
	}
	return out
}

// writableDir: dir exists and is writable, or can be created under its
// nearest existing parent.
func writableDir(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			if err := unix.Access(d, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("%s is not writable: %w", d, err)
			}
			return nil
		}
		if filepath.Dir(d) == d {
			return err
		}
	}
}

// oneLine folds a multi-line message (tcpdump's answer) into one line,
// leaving out tcpdump's "reading from file" preamble.
func oneLine(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, "reading from file "); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		if l != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, " ")
}

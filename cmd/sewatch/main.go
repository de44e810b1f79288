// Command sewatch finds SoftEther VPN sessions in a pcap file or on a live
// interface and writes Suricata-EVE alerts to stdout, files, Kafka or
// Elasticsearch. It only wires the stages together; see the engine package.
//
// The command is split by stage: flags.go (command line), settings.go
// (flags over the configuration file), outputs.go (outputs and router),
// engine.go (engine and verdict), input.go (file and live capture),
// signals.go (INT/TERM/HUP) and exit.go (exit statuses).
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/sewatch/sewatch/detector"
	_ "github.com/sewatch/sewatch/detector/all"
	"github.com/sewatch/sewatch/internal/config"
	_ "github.com/sewatch/sewatch/outputs/all"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status (see exit.go).
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return exitStatus(err, stderr)
	}
	if opts.help {
		return exitOK
	}
	if opts.version {
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	cfg, err := settings(opts)
	if err != nil {
		return exitStatus(err, stderr)
	}
	ifaceKey := "-i"
	if len(opts.ifaces) == 0 && opts.readFile == "" && len(cfg.Capture.Interfaces) > 0 {
		// The configuration's interfaces, unless the command line names
		// an input.
		opts.ifaces, ifaceKey = cfg.Capture.Interfaces, "capture.interfaces"
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	dets, err := detector.Build(cfg.Detectors)
	if err != nil {
		return exitStatus(usage(err), stderr)
	}
	if opts.checkConfig {
		return runCheckConfig(stderr, cfg, len(dets), opts.ifaces, ifaceKey, opts.offline)
	}
	if err := opts.checkSource(); err != nil {
		return exitStatus(err, stderr)
	}
	return exitStatus(execute(opts, cfg, dets, log), stderr)
}

// newLogger makes the program's own logger on stderr (EVE never goes there).
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	o := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// configDefaults is the one place the command reads built-in defaults.
var configDefaults = config.Default

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sewatch/sewatch/detector"
	"github.com/sewatch/sewatch/outputs"
)

const usageText = `usage: sewatch [-r FILE | -i IFACE[,IFACE...]] [options] [BPF filter]

Finds SoftEther VPN use and writes Suricata-EVE alerts (one JSON object per
line). With no -o, EVE goes to stdout; program logs go to stderr.

`

// options is the parsed command line. Zero values mean "not given": the
// configuration file (or its defaults) decides.
type options struct {
	readFile, cfgPath, logDir  string
	ifaces                     []string // -i, in the order given
	logLevel, logFormat        string
	user, metricsListen        string
	workers                    int
	flowBuffers                string
	workersSet                 bool
	ringBlocks, ringBlockSize  int
	checkConfig, version, help bool
	offline                    bool
	outs                       []string
	filter                     string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// ifaceFlag is -i: repeatable, and each value a comma-separated list.
type ifaceFlag []string

func (m *ifaceFlag) String() string { return strings.Join(*m, ",") }
func (m *ifaceFlag) Set(v string) error {
	for _, name := range strings.Split(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			*m = append(*m, name)
		}
	}
	return nil
}

// parseFlags parses the command line; a bad one is a usage error.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("sewatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.readFile, "r", "", "read packets from a pcap or pcapng `file` (gzip/zstd too), a directory of them, or - for stdin")
	fs.Var((*ifaceFlag)(&o.ifaces), "i", "capture live on `interface` (AF_PACKET; needs CAP_NET_RAW); repeat it or list them with commas to read several as one capture (a tap's two ports)")
	fs.StringVar(&o.cfgPath, "c", "", "configuration `file` (YAML)")
	fs.StringVar(&o.logDir, "l", "", "log `dir`: with no -o, EVE goes to DIR/eve.json")
	fs.BoolVar(&o.checkConfig, "check-config", false, "check the configuration, the files it names, the filter and the outputs (reachable, credentials accepted), then exit")
	fs.BoolVar(&o.offline, "offline", false, "with -check-config: skip the network checks of the outputs")
	fs.BoolVar(&o.version, "version", false, "print the version and build information, then exit")
	fs.IntVar(&o.workers, "workers", 0, "workers: live AF_PACKET sockets in one fanout group, or cores reading a file (default from config, 1)")
	fs.IntVar(&o.ringBlocks, "ring-blocks", 0, "live: receive ring blocks per worker (default from config, 64)")
	fs.IntVar(&o.ringBlockSize, "ring-block-size", 0, "live: receive ring block `bytes`, a power of two (default from config, 1048576)")
	fs.StringVar(&o.flowBuffers, "flow-buffer-budget", "", "bytes all flows' handshake buffers and inspector state may hold, e.g. 256MiB (memory.flow-buffers)")
	fs.StringVar(&o.logLevel, "log-level", "", "program log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "", "program log format on stderr: text or json")
	fs.StringVar(&o.user, "user", "", "live mode: switch to this `user` once the capture sockets are open")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus /metrics on `address` (e.g. 127.0.0.1:9717)")
	outs := (*multiFlag)(&o.outs)
	fs.Var(outs, "o", "output `TYPE[:ARG]`, repeatable: stdout, file:PATH, unix:SOCKET, syslog[:udp://HOST:PORT], kafka:HOST:PORT[,..]/TOPIC, elasticsearch:URL[/STREAM]")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\noutput types: %s\ndetectors: %s\n", strings.Join(outputs.Types(), ", "), strings.Join(detector.Names(), ", "))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			o.help = true
			return o, nil
		}
		// The flag package already printed the problem and the usage.
		return o, usage(nil)
	}
	fs.Visit(func(f *flag.Flag) { o.workersSet = o.workersSet || f.Name == "workers" })
	if o.workersSet && (o.workers < 1 || o.workers > 64) {
		return o, usage(fmt.Errorf("--workers must be 1-64, got %d", o.workers))
	}
	o.filter = strings.TrimSpace(strings.Join(fs.Args(), " "))
	return o, nil
}

// checkSource: exactly one input.
func (o *options) checkSource() error {
	if (o.readFile == "") == (len(o.ifaces) == 0) {
		return usage(errors.New("give exactly one of -r FILE or -i IFACE, or capture.interfaces in the configuration (-h for help)"))
	}
	return nil
}

// live reports whether packets come from an interface.
func (o *options) live() bool { return len(o.ifaces) > 0 }

// Command sewatch finds SoftEther VPN sessions in a pcap file or on a live
// interface and writes Suricata-EVE alerts to stdout, files, Kafka or
// Elasticsearch. It only wires the stages together; see the engine package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sewatch/sewatch/detector"
	_ "github.com/sewatch/sewatch/detector/all"
	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/config"
	"github.com/sewatch/sewatch/internal/decode"
	"github.com/sewatch/sewatch/internal/engine"
	"github.com/sewatch/sewatch/internal/flow"
	"github.com/sewatch/sewatch/internal/verdict"
	"github.com/sewatch/sewatch/internal/vpngate"
	"github.com/sewatch/sewatch/outputs"
	_ "github.com/sewatch/sewatch/outputs/all"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

const usage = `usage: sewatch [-r FILE | -i IFACE] [options] [BPF filter]

Finds SoftEther VPN use and writes Suricata-EVE alerts (one JSON object per
line). With no -o, EVE goes to stdout; program logs go to stderr.

`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sewatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		readFile    = fs.String("r", "", "read packets from a pcap or pcapng `file`")
		iface       = fs.String("i", "", "capture live on `interface` (AF_PACKET; needs CAP_NET_RAW)")
		cfgPath     = fs.String("c", "", "configuration `file` (YAML)")
		logDir      = fs.String("l", "", "log `dir`: with no -o, EVE goes to DIR/eve.json")
		checkConfig = fs.Bool("check-config", false, "validate the configuration and outputs, then exit")
		workers     = fs.Int("workers", 0, "workers: live AF_PACKET sockets in one fanout group, or cores reading a file (default from config, 1)")
		logLevel    = fs.String("log-level", "", "program log level: debug, info, warn, error")
		outs        multiFlag
	)
	fs.Var(&outs, "o", "output `TYPE[:ARG]`, repeatable: stdout, file:PATH, kafka:HOST:PORT[,..]/TOPIC, elasticsearch:URL[/STREAM]")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\noutput types: %s\ndetectors: %s\n", strings.Join(outputs.Types(), ", "), strings.Join(detector.Names(), ", "))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}

	cfg := config.Default()
	if *cfgPath != "" {
		c, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "sewatch: %v\n", err)
			return 1
		}
		cfg = c
	}
	if *logLevel != "" {
		cfg.LogLevel = *logLevel
	}
	if *workers > 0 {
		cfg.Capture.Workers = *workers
	}
	if f := strings.TrimSpace(strings.Join(fs.Args(), " ")); f != "" {
		cfg.Capture.Filter = f
	}
	var flagged []outputs.Spec
	for _, o := range outs {
		s, err := outputs.ParseFlag(o)
		if err != nil {
			fmt.Fprintf(stderr, "sewatch: -o %s: %v\n", o, err)
			return 2
		}
		// -o replaces the configured outputs but keeps the settings (auth,
		// TLS, batching) of the configured output of the same type.
		for _, c := range cfg.Outputs {
			if c.Type == s.Type && s.Options == nil {
				s.Options = c.Options
			}
		}
		flagged = append(flagged, s)
	}
	if len(flagged) > 0 {
		cfg.Outputs = flagged
	}
	if len(cfg.Outputs) == 0 {
		if *logDir != "" {
			cfg.Outputs = []outputs.Spec{{Type: "file", Arg: filepath.Join(*logDir, "eve.json")}}
		} else {
			cfg.Outputs = []outputs.Spec{{Type: "stdout"}}
		}
	}
	for i := range cfg.Outputs {
		o := &cfg.Outputs[i]
		o.Name = fmt.Sprintf("outputs[%d] (%s)", i, o.Type)
		if o.Type == "kafka" && cfg.SensorName != "" {
			if _, set := o.Options["sensor-name"]; !set {
				opts := map[string]any{"sensor-name": cfg.SensorName}
				for k, v := range o.Options {
					opts[k] = v
				}
				o.Options = opts
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "sewatch: invalid configuration: %v\n", err)
		return 1
	}
	log := newLogger(stderr, cfg.LogLevel)
	dets, err := detector.Build(cfg.Detectors)
	if err != nil {
		fmt.Fprintf(stderr, "sewatch: %v\n", err)
		return 1
	}
	if *checkConfig {
		fmt.Fprintf(stderr, "configuration OK: %d detectors, %d outputs\n", len(dets), len(cfg.Outputs))
		return 0
	}
	if (*readFile == "") == (*iface == "") {
		fmt.Fprint(stderr, "sewatch: give exactly one of -r FILE or -i IFACE (-h for help)\n")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Outputs and the router: pcap mode applies back-pressure, live mode drops and counts.
	var opened []outputs.Output
	for _, s := range cfg.Outputs {
		o, err := outputs.Open(ctx, s, log)
		if err != nil {
			fmt.Fprintf(stderr, "sewatch: %s: %v\n", s.Name, err)
			closeAll(opened)
			return 1
		}
		opened = append(opened, o)
	}
	pol := outputs.DefaultPolicy()
	pol.Lossy = *iface != ""
	pol.QueueSize, pol.BatchSize, pol.BatchTimeout = cfg.Delivery.QueueSize, cfg.Delivery.BatchSize, cfg.Delivery.BatchTimeout
	pol.SpoolDir, pol.SpoolMaxBytes = cfg.Delivery.SpoolDir, cfg.Delivery.SpoolMaxBytes
	router, err := outputs.OpenRouter(pol, opened, log)
	if err != nil {
		fmt.Fprintf(stderr, "sewatch: %v\n", err)
		closeAll(opened)
		return 1
	}
	reopenOnHUP(ctx, opened, log)
	outputDrops := func() uint64 {
		var n uint64
		for _, st := range router.Stats() {
			n += st.Dropped
		}
		return n
	}

	vcfg := verdict.Config{Threshold: cfg.Verdict.Threshold, SessionGap: cfg.Verdict.SessionGap, Window: 5 * time.Minute,
		MaxSessions: 65536, Allow: cfg.Allowlist, HomeNets: cfg.HomeNets}
	if cfg.VPNGateList != "" {
		l, err := vpngate.Load(cfg.VPNGateList)
		if err != nil {
			fmt.Fprintf(stderr, "sewatch: %v\n", err)
			return 1
		}
		vcfg.VPNGate = l
		log.Info("VPN Gate list loaded (corroboration only)", "servers", len(l))
	}
	eng := engine.New(engine.Config{
		Detectors: dets,
		Verdict:   vcfg,
		MaxFlows:  cfg.Flow.MaxFlows,
		Timeouts:  flow.Timeouts{TCP: cfg.Flow.TCP, TCPClosed: cfg.Flow.TCPClosed, UDP: cfg.Flow.UDP, Other: cfg.Flow.Other},
		Iface:     *iface, Sensor: cfg.SensorName, Location: cfg.Location(), CommunityIDSeed: cfg.CommunityIDSeed,
	}, router, log)
	eng.SetOutputDrops(outputDrops)

	var runErr error
	if *readFile != "" {
		runErr = runFile(ctx, eng, *readFile, cfg, log)
	} else {
		runErr = runLive(ctx, eng, *iface, cfg, log)
	}
	if *iface != "" && cfg.Stats.Interval > 0 {
		eng.SendStats() // final counters at shutdown
	}
	fctx, cancel := context.WithTimeout(context.Background(), cfg.Delivery.FlushDeadline)
	defer cancel()
	if err := router.Close(fctx); err != nil {
		log.Error("closing outputs", "err", err)
		if runErr == nil {
			runErr = err
		}
	}
	for _, st := range router.Stats() {
		if st.Dropped > 0 {
			log.Warn("output dropped events", "output", st.Name, "dropped", st.Dropped)
		}
	}
	log.Info("done", "packets", eng.C.Packets.Load(), "invalid", eng.C.Invalid.Load(), "alerts", eng.Verdict().Alerts())
	if runErr != nil {
		fmt.Fprintf(stderr, "sewatch: %v\n", runErr)
		return 1
	}
	return 0
}

func runFile(ctx context.Context, eng *engine.Engine, path string, cfg config.Config, log *slog.Logger) error {
	src, err := capture.OpenFile(path, cfg.Capture.Filter)
	if err != nil {
		return err
	}
	defer src.Close()
	// Several workers: flows hashed to cores, alerts in the same order as one.
	err = eng.RunParallel(ctx, src, decode.LinkType(src.LinkType()), cfg.Capture.Workers)
	if err != nil {
		return fmt.Errorf("%s: %w (alerts before the damage were written)", path, err)
	}
	return nil
}

func runLive(ctx context.Context, eng *engine.Engine, iface string, cfg config.Config, log *slog.Logger) error {
	promisc := cfg.Capture.Promisc == nil || *cfg.Capture.Promisc
	srcs, err := capture.OpenLive(iface, capture.LiveOptions{Workers: cfg.Capture.Workers, Promisc: promisc,
		Snaplen: cfg.Capture.Snaplen, Filter: cfg.Capture.Filter, ReadTimeout: 500 * time.Millisecond})
	if err != nil {
		return err
	}
	log.Info("capturing", "iface", iface, "workers", len(srcs))
	eng.SetCaptureStats(kernelStats(srcs))
	if cfg.Stats.Interval > 0 {
		go func() {
			t := time.NewTicker(cfg.Stats.Interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					eng.SendStats()
				}
			}
		}()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(srcs))
	for i, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := eng.NewWorker(decode.LinkType(s.LinkType()))
			errs[i] = w.Run(ctx, s, func(err error) bool { return errors.Is(err, capture.ErrTimeout) })
			w.Finish()
		}()
	}
	<-ctx.Done()
	for _, s := range srcs {
		s.Close()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// kernelStats sums the kernel counters of every socket of the fanout group.
type kernelStats []capture.Source

func (k kernelStats) KernelStats() (packets, drops, ifdrops uint64) {
	for _, s := range k {
		st := s.Stats()
		packets += st.Packets
		drops += st.KernelDrops
		ifdrops += st.IfDrops
	}
	return
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func closeAll(os []outputs.Output) {
	for _, o := range os {
		o.Close(context.Background())
	}
}

// reopenOnHUP reopens file outputs on SIGHUP (logrotate).
func reopenOnHUP(ctx context.Context, outs []outputs.Output, log *slog.Logger) {
	type reopener interface{ Reopen() error }
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				for _, o := range outs {
					if r, ok := o.(reopener); ok {
						if err := r.Reopen(); err != nil {
							log.Error("reopen after SIGHUP", "output", o.Name(), "err", err)
						}
					}
				}
			}
		}
	}()
}

// Package config loads sewatch's YAML configuration strictly (unknown keys
// are errors), fills defaults, and validates without doing any I/O.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sewatch/sewatch/internal/capture"
	"github.com/sewatch/sewatch/internal/flow"
	"github.com/sewatch/sewatch/internal/membudget"
	"github.com/sewatch/sewatch/internal/verdict"
	"github.com/sewatch/sewatch/outputs"
)

// Config is the whole configuration file.
type Config struct {
	SensorName      string `yaml:"sensor-name"`
	CommunityIDSeed uint16 `yaml:"community-id-seed"`
	Timezone        string `yaml:"timezone"`
	LogLevel        string `yaml:"log-level"`
	// LogFormat is the program log's format on stderr: text or json.
	LogFormat string `yaml:"log-format"`
	// User, if set, is the account live mode switches to once its capture
	// sockets are open (root needed only to open them).
	User string `yaml:"user"`
	// MetricsListen, if set, is the address of a Prometheus /metrics
	// endpoint (e.g. 127.0.0.1:9717); empty serves none.
	MetricsListen string   `yaml:"metrics-listen"`
	Stats         Stats    `yaml:"stats"`
	Capture       Capture  `yaml:"capture"`
	Flow          Flow     `yaml:"flow"`
	Memory        Memory   `yaml:"memory"`
	Verdict       Verdict  `yaml:"verdict"`
	Detectors     []string `yaml:"detectors"`
	// HomeNets are the protected networks (Suricata's HOME_NET): an
	// internal host serving SoftEther sessions to outside clients is
	// reported as a server or relay.
	HomeNets []netip.Prefix `yaml:"home-nets"`
	// Allowlist of sanctioned SoftEther servers.
	Allowlist []verdict.AllowRule `yaml:"allowlist"`
	// VPNGateList is a file in VPN Gate's public CSV format, used only to
	// corroborate alerts (alert.metadata.vpngate_listed).
	VPNGateList string         `yaml:"vpngate-list"`
	Delivery    Delivery       `yaml:"delivery"`
	Outputs     []outputs.Spec `yaml:"outputs"`
}

// Stats configures the periodic EVE stats event.
type Stats struct {
	// Interval between EVE stats events in live mode; 0 disables them.
	// Reading a pcap writes no stats events (stdout carries alerts only).
	Interval time.Duration `yaml:"interval"`
}

// Capture configures packet sources.
type Capture struct {
	// Interfaces are captured live, as one capture, when the command line
	// names neither -r nor -i (Suricata's af-packet interface list).
	Interfaces []string `yaml:"interfaces"`
	Filter     string   `yaml:"filter"`
	Workers    int      `yaml:"workers"`
	Promisc    *bool    `yaml:"promisc"`
	Snaplen    int      `yaml:"snaplen"`
	// Live mode's TPACKET_V3 receive ring, per socket: RingBlocks blocks
	// of RingBlockSize bytes; a block not yet full goes to sewatch after
	// RingRetire.
	RingBlockSize int           `yaml:"ring-block-size"`
	RingBlocks    int           `yaml:"ring-blocks"`
	RingRetire    time.Duration `yaml:"ring-retire"`
}

// Ring is the live ring geometry of the configuration.
func (c Capture) Ring() capture.RingOptions {
	return capture.RingOptions{BlockSize: c.RingBlockSize, Blocks: c.RingBlocks, Retire: c.RingRetire}
}

// Flow configures the flow table.
type Flow struct {
	MaxFlows  int           `yaml:"max-flows"`
	TCP       time.Duration `yaml:"tcp-timeout"`
	TCPClosed time.Duration `yaml:"tcp-closed-timeout"`
	UDP       time.Duration `yaml:"udp-timeout"`
	Other     time.Duration `yaml:"other-timeout"`
}

// Memory bounds what flows hold beyond their flow-table entry.
type Memory struct {
	// FlowBuffers is the budget shared by all flows' inspector buffers
	// (partial handshakes): past it a flow's buffer is dropped and
	// counted; flows with SoftEther evidence keep the last eighth.
	FlowBuffers ByteSize `yaml:"flow-buffers"`
	// HugePages (default true) asks Linux for transparent huge pages on
	// the heap when the system leaves that to programs (madvise mode):
	// fewer page faults and TLB misses as new flows touch new memory.
	HugePages *bool `yaml:"huge-pages"`
}

// Verdict configures the session verdict stage.
type Verdict struct {
	Threshold  float32       `yaml:"threshold"`
	SessionGap time.Duration `yaml:"session-gap"`
}

// Delivery configures the output router shared by all outputs.
type Delivery struct {
	QueueSize     int           `yaml:"queue-size"`
	BatchSize     int           `yaml:"batch-size"`
	BatchTimeout  time.Duration `yaml:"batch-timeout"`
	FlushDeadline time.Duration `yaml:"flush-deadline"`
	SpoolDir      string        `yaml:"spool-dir"`
	SpoolMaxBytes int64         `yaml:"spool-max-bytes"`
}

// Default returns the built-in configuration. Tunings owned by a package
// (flow timeouts, verdict threshold, queue sizes) come from that package so
// each default lives in one place.
func Default() Config {
	t := flow.DefaultTimeouts()
	v := verdict.DefaultConfig()
	p := outputs.DefaultPolicy()
	return Config{
		LogLevel:  "info",
		LogFormat: "text",
		Stats:     Stats{Interval: time.Minute},
		Capture: Capture{Workers: 1, Snaplen: 262144, RingBlockSize: capture.DefaultRingBlockSize,
			RingBlocks: capture.DefaultRingBlocks, RingRetire: capture.DefaultRingRetire},
		Flow:     Flow{MaxFlows: 262144, TCP: t.TCP, TCPClosed: t.TCPClosed, UDP: t.UDP, Other: t.Other},
		Memory:   Memory{FlowBuffers: membudget.DefaultBytes},
		Verdict:  Verdict{Threshold: v.Threshold, SessionGap: v.SessionGap},
		Delivery: Delivery{QueueSize: p.QueueSize, BatchSize: p.BatchSize, FlushDeadline: 10 * time.Second},
	}
}

// Load reads a file over the defaults.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML strictly over the defaults and validates the result.
func Parse(b []byte) (Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty file means "all defaults".
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, err
	}
	// A second document ("---") would otherwise be ignored without a word.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return Config{}, err
		}
		return Config{}, fmt.Errorf("line %d: a second YAML document; the configuration is one document", extra.Line)
	}
	return c, c.Validate()
}

// Validate checks the configuration without I/O.
func (c *Config) Validate() error {
	var errs []error
	if c.Capture.Workers < 1 || c.Capture.Workers > 64 {
		errs = append(errs, fmt.Errorf("capture.workers must be 1-64, got %d", c.Capture.Workers))
	}
	if c.Capture.Snaplen < 0 {
		errs = append(errs, errors.New("capture.snaplen must not be negative"))
	} else if err := capture.CheckRing(c.Capture.Ring(), c.Capture.Snaplen); err != nil {
		errs = append(errs, err)
	}
	if c.Flow.MaxFlows < 1024 {
		errs = append(errs, fmt.Errorf("flow.max-flows must be at least 1024, got %d", c.Flow.MaxFlows))
	}
	if c.Memory.FlowBuffers < membudget.MinBytes {
		errs = append(errs, fmt.Errorf("memory.flow-buffers must be at least %v, got %v", ByteSize(membudget.MinBytes), c.Memory.FlowBuffers))
	}
	for name, d := range map[string]time.Duration{"tcp-timeout": c.Flow.TCP, "tcp-closed-timeout": c.Flow.TCPClosed,
		"udp-timeout": c.Flow.UDP, "other-timeout": c.Flow.Other} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("flow.%s must be positive", name))
		}
	}
	if c.Verdict.Threshold <= 0 || c.Verdict.Threshold > 10 {
		errs = append(errs, fmt.Errorf("verdict.threshold must be in (0, 10], got %v", c.Verdict.Threshold))
	}
	if c.Verdict.SessionGap < 20*time.Second {
		errs = append(errs, errors.New("verdict.session-gap must be at least 20s (SoftEther's session timeout)"))
	}
	if c.Stats.Interval < 0 {
		errs = append(errs, errors.New("stats.interval must not be negative"))
	}
	if c.Delivery.QueueSize < 1 || c.Delivery.BatchSize < 1 {
		errs = append(errs, errors.New("delivery.queue-size and delivery.batch-size must be positive"))
	}
	if c.Delivery.SpoolMaxBytes < 0 {
		errs = append(errs, errors.New("delivery.spool-max-bytes must not be negative"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level must be debug, info, warn or error, got %q", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log-format must be text or json, got %q", c.LogFormat))
	}
	if c.Timezone != "" && c.Timezone != "Local" && c.Timezone != "UTC" {
		if _, err := time.LoadLocation(c.Timezone); err != nil {
			errs = append(errs, fmt.Errorf("timezone: %w", err))
		}
	}
	for _, r := range c.Allowlist {
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	for i, o := range c.Outputs {
		if err := outputs.Validate(o); err != nil {
			errs = append(errs, fmt.Errorf("outputs[%d] (%s): %w", i, o.Type, err))
		}
	}
	return errors.Join(errs...)
}

// Location returns the zone EVE timestamps are written in (UTC by default,
// "Local" for the machine's zone as Suricata does).
func (c *Config) Location() *time.Location {
	switch c.Timezone {
	case "", "UTC":
		return time.UTC
	case "Local":
		return time.Local
	}
	l, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC
	}
	return l
}

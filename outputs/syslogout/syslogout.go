// Package syslogout sends EVE lines to syslog, one message per event, as
// Suricata's eve-log does with `filetype: syslog` (facility local5, level
// info by default): the local daemon (rsyslog, syslog-ng, journald's
// socket) stores or forwards them, and SIEMs that take syslog find the
// JSON after the tag. It can also send straight to a remote collector over
// UDP or TCP.
//
// The connection is made at the first event and made again after any
// error (a daemon restarted under sewatch); the failed batch is retried by
// the router's shared policy. Messages longer than the daemon's limit
// (rsyslog's default is 8 KiB; sewatch's alerts are 2-5 KiB) are cut by
// the daemon, not here.
package syslogout

import (
	"context"
	"fmt"
	"log/slog"
	"log/syslog"
	"net/url"
	"sync"

	"github.com/sewatch/sewatch/outputs"
)

func init() { outputs.Register("syslog", opener{}) }

// Options are the syslog output's settings in the config file.
type Options struct {
	// Address is empty for the local daemon (/dev/log, or the other
	// sockets Go's log/syslog tries: messages in the local format, no
	// host name), else udp://HOST:PORT or tcp://HOST:PORT for a remote
	// collector (RFC 3164 with an RFC 3339 time stamp and this host's
	// name; over TCP each message ends with a newline)
	// (-o syslog:udp://siem:514).
	Address string `yaml:"address"`
	// Facility is Suricata's default local5 unless set (kern ... local7).
	Facility string `yaml:"facility"`
	// Level is the severity of every message (default info).
	Level string `yaml:"level"`
	// Tag is the program name in each message (default sewatch).
	Tag string `yaml:"tag"`
}

var facilities = map[string]syslog.Priority{
	"kern": syslog.LOG_KERN, "user": syslog.LOG_USER, "mail": syslog.LOG_MAIL, "daemon": syslog.LOG_DAEMON,
	"auth": syslog.LOG_AUTH, "syslog": syslog.LOG_SYSLOG, "lpr": syslog.LOG_LPR, "news": syslog.LOG_NEWS,
	"uucp": syslog.LOG_UUCP, "cron": syslog.LOG_CRON, "authpriv": syslog.LOG_AUTHPRIV, "ftp": syslog.LOG_FTP,
	"local0": syslog.LOG_LOCAL0, "local1": syslog.LOG_LOCAL1, "local2": syslog.LOG_LOCAL2, "local3": syslog.LOG_LOCAL3,
	"local4": syslog.LOG_LOCAL4, "local5": syslog.LOG_LOCAL5, "local6": syslog.LOG_LOCAL6, "local7": syslog.LOG_LOCAL7,
}

var levels = map[string]syslog.Priority{
	"emerg": syslog.LOG_EMERG, "alert": syslog.LOG_ALERT, "crit": syslog.LOG_CRIT, "err": syslog.LOG_ERR,
	"warning": syslog.LOG_WARNING, "notice": syslog.LOG_NOTICE, "info": syslog.LOG_INFO, "debug": syslog.LOG_DEBUG,
}

// target is where the messages go: network and address for syslog.Dial
// (both empty for the local daemon).
type target struct{ network, addr string }

type config struct {
	opt      Options
	to       target
	priority syslog.Priority
}

type opener struct{}

func parse(s outputs.Spec) (config, error) {
	var c config
	if err := outputs.DecodeOptions(s, &c.opt); err != nil {
		return c, err
	}
	o := &c.opt
	if s.Arg != "" {
		o.Address = s.Arg
	}
	if o.Facility == "" {
		o.Facility = "local5"
	}
	if o.Level == "" {
		o.Level = "info"
	}
	if o.Tag == "" {
		o.Tag = "sewatch"
	}
	f, ok := facilities[o.Facility]
	if !ok {
		return c, fmt.Errorf("syslog output: unknown facility %q (kern, user, daemon, ..., local0-local7)", o.Facility)
	}
	l, ok := levels[o.Level]
	if !ok {
		return c, fmt.Errorf("syslog output: unknown level %q (emerg, alert, crit, err, warning, notice, info, debug)", o.Level)
	}
	c.priority = f | l
	if o.Address != "" {
		u, err := url.Parse(o.Address)
		if err != nil {
			return c, fmt.Errorf("syslog output address %q: %w", o.Address, err)
		}
		if (u.Scheme != "udp" && u.Scheme != "tcp") || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return c, fmt.Errorf("syslog output address %q: want udp://HOST:PORT or tcp://HOST:PORT (or none: the local daemon)", o.Address)
		}
		c.to = target{u.Scheme, u.Host}
	}
	return c, nil
}

func (opener) Validate(s outputs.Spec) error { _, err := parse(s); return err }

func (opener) Open(_ context.Context, s outputs.Spec, log *slog.Logger) (outputs.Output, error) {
	c, err := parse(s)
	if err != nil {
		return nil, err
	}
	name := s.Name
	if name == "" {
		name = "syslog"
	}
	return &Output{c: c, name: name, log: log}, nil
}

// Check implements outputs.Checker: the daemon or collector takes a
// connection (over UDP nothing can be checked beyond the address).
func (opener) Check(_ context.Context, s outputs.Spec) error {
	c, err := parse(s)
	if err != nil {
		return err
	}
	w, err := syslog.Dial(c.to.network, c.to.addr, c.priority, c.opt.Tag)
	if err != nil {
		return fmt.Errorf("syslog output: %w", err)
	}
	return w.Close()
}

// Output sends each event as one syslog message.
type Output struct {
	mu   sync.Mutex
	c    config
	name string
	log  *slog.Logger
	w    *syslog.Writer
}

// Name implements outputs.Output.
func (o *Output) Name() string { return o.name }

// Identity implements outputs.Identifier.
func (o *Output) Identity() string {
	if o.c.to.network == "" {
		return "syslog:local"
	}
	return "syslog:" + o.c.to.network + "://" + o.c.to.addr
}

// Write implements outputs.Output.
func (o *Output) Write(_ context.Context, batch []outputs.Record) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.w == nil {
		w, err := syslog.Dial(o.c.to.network, o.c.to.addr, o.c.priority, o.c.opt.Tag)
		if err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
		o.w = w
	}
	for _, r := range batch {
		// One message per event; log/syslog has already tried once
		// more on a fresh connection when this fails.
		if _, err := o.w.Write(r.JSON); err != nil {
			o.w.Close()
			o.w = nil
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	return nil
}

// Close implements outputs.Output.
func (o *Output) Close(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.w == nil {
		return nil
	}
	err := o.w.Close()
	o.w = nil
	return err
}
